"""Standby replicas without a broker: where the standbys go (a pure function every instance
computes alike from the group's members), and the checkpoints that let a task restore only
the changelog's tail. The live fail-over is in tests/integration/test_streams_standby_live.py."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig
from tomyum.streams._checkpoint import read_checkpoint, write_checkpoint
from tomyum.streams._plan import plan
from tomyum.streams._record_collector import RecordCollector
from tomyum.streams._runtime_config import RuntimeConfig
from tomyum.streams._standby import GroupMember, assign_standbys, task_order
from tomyum.streams._task_manager import TaskManager
from tests.unit.test_streams_record_collector import FakeConsumer, FakeProducer

pytestmark = pytest.mark.timeout(30)


def member(name: str, *tasks: str) -> GroupMember:
    return GroupMember(member_id=f"m-{name}", client_id=f"app-{name}-StreamThread-1-consumer",
                       active_tasks=frozenset(tasks))


def test_with_two_instances_each_holds_the_standbys_of_the_others_tasks() -> None:
    a, b = member("a", "0_0", "1_0"), member("b", "0_1", "1_1")
    assert assign_standbys([a, b], ["1_0", "1_1"], 1) == {"m-a": {"1_1"}, "m-b": {"1_0"}}


def test_no_standbys_by_default_and_never_beside_the_active_task() -> None:
    a, b = member("a", "1_0"), member("b", "1_1")
    assert assign_standbys([a, b], ["1_0", "1_1"], 0) == {"m-a": frozenset(), "m-b": frozenset()}
    # two replicas asked, one other instance: one standby each (Kafka: as many as there is room for)
    assert assign_standbys([a, b], ["1_0", "1_1"], 2) == {"m-a": {"1_1"}, "m-b": {"1_0"}}
    assert assign_standbys([member("alone", "1_0", "1_1")], ["1_0", "1_1"], 1) == {"m-alone": frozenset()}


def test_a_task_nobody_runs_gets_no_standby() -> None:
    assert assign_standbys([member("a", "1_0"), member("b")], ["1_0", "1_1"], 1) == {
        "m-a": frozenset(), "m-b": {"1_0"}}


@pytest.mark.parametrize("seed", range(20))
def test_placement_is_distinct_complete_and_the_same_whatever_the_members_order(seed: int) -> None:
    rng = random.Random(seed)
    n_members, n_tasks, replicas = rng.randint(2, 6), rng.randint(1, 24), rng.randint(1, 3)
    tasks = [f"{rng.randint(0, 2)}_{p}" for p in range(n_tasks)]
    owners: dict[str, list[str]] = {str(i): [] for i in range(n_members)}
    for task in tasks:
        owners[str(rng.randrange(n_members))].append(task)
    members = [member(name, *owned) for name, owned in owners.items()]
    placed = assign_standbys(members, tasks, replicas)
    shuffled = members[:]
    rng.shuffle(shuffled)
    assert assign_standbys(shuffled, tasks, replicas) == placed  # every instance computes the same
    for task in set(tasks):
        holders = [m for m in members if task in placed[m.member_id]]
        assert len(holders) == min(replicas, n_members - 1)
        assert not any(task in m.active_tasks for m in holders)


@pytest.mark.parametrize(("n_members", "n_tasks", "replicas"), [(2, 8, 1), (3, 6, 1), (3, 7, 2), (5, 12, 2), (4, 3, 1)])
def test_standbys_spread_evenly_when_the_active_tasks_do(n_members: int, n_tasks: int, replicas: int) -> None:
    tasks = [f"1_{p}" for p in range(n_tasks)]
    members = [member(str(i), *tasks[i::n_members]) for i in range(n_members)]
    loads = sorted(len(s) for s in assign_standbys(members, tasks, replicas).values())
    assert loads[-1] - loads[0] <= 1 and sum(loads) == n_tasks * replicas


def test_tasks_order_by_number() -> None:
    assert sorted(["10_0", "2_1", "2_0"], key=task_order) == ["2_0", "2_1", "10_0"]


def test_a_checkpoint_round_trips_and_a_damaged_one_is_not_trusted(tmp_path: Path) -> None:
    write_checkpoint(tmp_path / "1_0", {"app-counts-changelog": 42})
    assert read_checkpoint(tmp_path / "1_0") == {"app-counts-changelog": 42}
    assert not (tmp_path / "1_0" / ".checkpoint.tmp").exists()
    assert read_checkpoint(tmp_path / "0_0") is None
    (tmp_path / "1_0" / ".checkpoint").write_text('{"app-counts-changelog": "4')
    assert read_checkpoint(tmp_path / "1_0") is None
    (tmp_path / "1_0" / ".checkpoint").write_text('{"app-counts-changelog": "42"}')
    assert read_checkpoint(tmp_path / "1_0") is None


class ChangelogEnds(FakeConsumer):
    """The main consumer as the task manager sees it: every changelog partition ends at 7."""

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float = -1,
                              cached: bool = False) -> tuple[int, int]:
        return 0, 7


def counting_manager(tmp_path: Path, *, exactly_once: bool) -> TaskManager:
    b = StreamsBuilder()
    b.stream("in", key_serde=Serdes.string(), value_serde=Serdes.string()).group_by_key().count(
        Materialized(store_name="counts"))
    topology = b.build()
    config = RuntimeConfig(topology=topology, config=StreamsConfig(application_id="app", state_dir=str(tmp_path)),
                           bootstrap_servers="unused:9092", exactly_once=exactly_once, client_config={},
                           state_root=tmp_path / "tomyum-streams")
    tasks = TaskManager(config, threading.Event())
    tasks.use_plan(plan(topology, {"in": 1}))
    tasks.collector = RecordCollector(FakeProducer(), exactly_once=exactly_once, application_id="app")
    tasks.consumer = ChangelogEnds()  # type: ignore[assignment]  # a fake of confluent-kafka's Consumer
    return tasks


@pytest.mark.parametrize("exactly_once", [False, True])
def test_a_checkpoint_is_kept_while_running_only_under_at_least_once(tmp_path: Path, exactly_once: bool) -> None:
    """At-least-once: each commit leaves a checkpoint (the stores flushed, the changelog
    acknowledged), and opening a task keeps it — a crash then restores only the tail.
    Exactly-once: a store may hold writes of a transaction a crash aborts, so the checkpoint
    is taken away when the task opens (as Kafka does), and only a clean close writes one."""
    tasks = counting_manager(tmp_path, exactly_once=exactly_once)
    task_dir = tasks.config.task_dir("0_0")
    write_checkpoint(task_dir, {"app-counts-changelog": 5})
    assert tasks._take_checkpoint("0_0", ["counts"], 0) == {"app-counts-changelog": 5}
    assert (read_checkpoint(task_dir) is None) == exactly_once
    tasks.tasks["0_0"] = tasks._new_task("0_0", None, ("counts",), 0)
    tasks._dirty = True
    assert tasks.commit()
    assert read_checkpoint(task_dir) == (None if exactly_once else {"app-counts-changelog": 7})
    tasks.close_all()
    assert read_checkpoint(task_dir) == {"app-counts-changelog": 7}


def test_a_checkpoint_beyond_the_changelog_is_not_trusted(tmp_path: Path) -> None:
    tasks = counting_manager(tmp_path, exactly_once=False)
    write_checkpoint(tasks.config.task_dir("0_0"), {"app-counts-changelog": 8})  # the changelog ends at 7
    assert tasks._take_checkpoint("0_0", ["counts"], 0) is None
    assert read_checkpoint(tasks.config.task_dir("0_0")) is None
