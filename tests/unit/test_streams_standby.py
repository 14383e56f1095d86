"""Standby replicas without a broker: where the standbys go (a pure function every instance
computes alike from the group's members), and the checkpoints that let a task restore only
the changelog's tail. The live fail-over is in tests/integration/test_streams_standby_live.py."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition

from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig
from tomyum.streams._checkpoint import read_checkpoint, write_checkpoint
from tomyum.streams._metadata import HostInfo, InstanceMap, KeyQueryMetadata, default_partition
from tomyum.streams._plan import plan
from tomyum.streams._record import Record
from tomyum.streams._record_collector import RecordCollector
from tomyum.streams._runtime_config import RuntimeConfig
from tomyum.streams._standby import GroupMember, StandbyTasks, assign_standbys, range_owner, task_order
from tomyum.streams._task_manager import TaskManager
from tomyum.streams.processor import StandbyUpdateListener, SuspendReason
from tests.unit.test_streams_record_collector import FakeConsumer, FakeProducer, error

pytestmark = pytest.mark.timeout(30)


def member(name: str, *tasks: str) -> GroupMember:
    return GroupMember(member_id=f"m-{name}", client_id=f"app-{name}-StreamThread-1-consumer",
                       active_tasks=frozenset(tasks))


def tasks_of(*ids: str, partitions: int = 2) -> dict[str, int]:
    return {task_id: partitions for task_id in ids}


def test_with_two_instances_each_holds_the_standbys_of_the_others_tasks() -> None:
    a, b = member("a", "0_0", "1_0"), member("b", "0_1", "1_1")
    assert assign_standbys([a, b], tasks_of("1_0", "1_1"), 1) == {"m-a": {"1_1"}, "m-b": {"1_0"}}


def test_no_standbys_by_default_and_never_beside_the_active_task() -> None:
    a, b = member("a", "1_0"), member("b", "1_1")
    assert assign_standbys([a, b], tasks_of("1_0", "1_1"), 0) == {"m-a": frozenset(), "m-b": frozenset()}
    # two replicas asked, one other instance: one standby each (Kafka: as many as there is room for)
    assert assign_standbys([a, b], tasks_of("1_0", "1_1"), 2) == {"m-a": {"1_1"}, "m-b": {"1_0"}}
    assert assign_standbys([member("alone", "1_0", "1_1")], tasks_of("1_0", "1_1"), 1) == {"m-alone": frozenset()}


def test_a_task_nobody_runs_gets_no_standby() -> None:
    assert assign_standbys([member("a", "1_0"), member("b")], tasks_of("1_0", "1_1"), 1) == {
        "m-a": frozenset(), "m-b": {"1_0"}}


@pytest.mark.parametrize(("partitions", "members", "owner"), [
    (2, ["a", "b"], ["a", "b"]), (7, ["a", "b", "c"], ["a", "a", "a", "b", "b", "c", "c"]),
    (2, ["a", "b", "c"], ["a", "b"]), (6, ["b", "a"], ["a", "a", "a", "b", "b", "b"])])
def test_range_owner_is_the_range_assignors_choice(partitions: int, members: list[str], owner: list[str]) -> None:
    assert [range_owner(p, partitions, members) for p in range(partitions)] == owner


def range_members(n_members: int, partitions: dict[int, int]) -> list[GroupMember]:
    """Members whose active tasks are what the range assignor gives them."""
    ids = [f"m-{i}" for i in range(n_members)]
    owned: dict[str, set[str]] = {i: set() for i in ids}
    for sub, count in partitions.items():
        for p in range(count):
            owned[range_owner(p, count, ids)].add(f"{sub}_{p}")
    return [GroupMember(member_id=i, client_id=f"app-{i}", active_tasks=frozenset(owned[i])) for i in ids]


@pytest.mark.parametrize("seed", range(30))
def test_one_standby_is_always_where_the_range_assignor_moves_a_dead_instances_tasks(seed: int) -> None:
    """Whichever instance dies, each of its stateful tasks goes (by the range assignor, among
    the survivors) to an instance that held a standby of it: a single failure never restores in
    full. Also: every instance computes the same placement whatever order it lists the members
    in, each task has min(replicas, instances - 1) standbys, never beside its active task."""
    rng = random.Random(seed)
    n_members, replicas = rng.randint(2, 6), rng.randint(1, 3)
    partitions = {sub: rng.randint(1, 12) for sub in range(rng.randint(1, 3))}
    members = range_members(n_members, partitions)
    stateful = {f"{sub}_{p}": count for sub, count in partitions.items() for p in range(count)}
    placed = assign_standbys(members, stateful, replicas)
    shuffled = members[:]
    rng.shuffle(shuffled)
    assert assign_standbys(shuffled, stateful, replicas) == placed
    for task in stateful:
        holders = [m for m in members if task in placed[m.member_id]]
        assert len(holders) == min(replicas, n_members - 1)
        assert not any(task in m.active_tasks for m in holders)
    for dead in members:
        survivors = [m.member_id for m in members if m is not dead]
        for task in dead.active_tasks:
            heir = range_owner(task_order(task)[1], stateful[task], survivors)
            assert task in placed[heir], (task, dead.member_id, heir)


def test_further_standbys_go_to_the_least_loaded_instances() -> None:
    """Three instances, two tasks each, two replicas: the first standbys follow the range
    assignor (m-1 would inherit four of them), the second ones even that out."""
    members = range_members(3, {1: 6})
    placed = assign_standbys(members, {f"1_{p}": 6 for p in range(6)}, 2)
    assert sorted(len(s) for s in placed.values()) == [4, 4, 4]


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


def counting_manager(tmp_path: Path, *, exactly_once: bool) -> tuple[TaskManager, FakeProducer]:
    b = StreamsBuilder()
    b.stream("in", key_serde=Serdes.string(), value_serde=Serdes.string()).group_by_key().count(
        Materialized(store_name="counts"))
    topology = b.build()
    config = RuntimeConfig(topology=topology, config=StreamsConfig(application_id="app", state_dir=str(tmp_path)),
                           bootstrap_servers="unused:9092", exactly_once=exactly_once, client_config={},
                           state_root=tmp_path / "tomyum-streams")
    tasks = TaskManager(config, threading.Event())
    tasks.use_plan(plan(topology, {"in": 1}))
    producer = FakeProducer()
    tasks.collector = RecordCollector(producer, exactly_once=exactly_once, application_id="app")
    tasks.consumer = ChangelogEnds()  # type: ignore[assignment]  # a fake of confluent-kafka's Consumer
    tasks._changelogs = tasks.consumer  # the restore consumer, which asks the changelogs' watermarks
    tasks.tasks["0_0"] = tasks._new_task("0_0", None, ("counts",), 0)
    return tasks, producer


def count(tasks: TaskManager, producer: FakeProducer, *keys: str) -> None:
    """Process records of ``keys`` in task 0_0, their changelog records delivered."""
    for offset, key in enumerate(keys):
        tasks.tasks["0_0"].process(Record(key=key.encode(), value=b"x", timestamp=1, topic="in", partition=0,
                                          offset=offset))
    tasks._dirty = True
    producer.report()


@pytest.mark.parametrize("exactly_once", [False, True])
def test_a_commit_leaves_a_checkpoint_at_the_changelog_records_delivered(tmp_path: Path, exactly_once: bool) -> None:
    """After each commit that wrote to a task's changelog, the task's checkpoint names the
    offset after the last changelog record delivered: a crash from there restores only what
    comes after. A clean close writes one from the changelog's end."""
    tasks, producer = counting_manager(tmp_path, exactly_once=exactly_once)
    task_dir = tasks.config.task_dir("0_0")
    count(tasks, producer, "a", "b", "a")
    assert tasks.commit()
    assert read_checkpoint(task_dir) == {"app-counts-changelog": 3}
    count(tasks, producer, "c")
    assert tasks.commit()
    assert read_checkpoint(task_dir) == {"app-counts-changelog": 4}
    tasks.close_all()
    assert read_checkpoint(task_dir) == {"app-counts-changelog": 7}  # (the fake changelog's end)


def test_under_exactly_once_no_checkpoint_vouches_for_a_store_with_uncommitted_writes(tmp_path: Path) -> None:
    """The checkpoint goes before the stores flush writes of a transaction, and comes back only
    once the transaction committed: a commit that fails, or a task dropped without a commit
    (its stores flush as they close), leaves none — the state is rebuilt from the changelog."""
    tasks, producer = counting_manager(tmp_path, exactly_once=True)
    task_dir = tasks.config.task_dir("0_0")
    count(tasks, producer, "a")
    assert tasks.commit() and read_checkpoint(task_dir) == {"app-counts-changelog": 1}
    count(tasks, producer, "b")
    producer.fail["commit_transaction"] = error(KafkaError._TIMED_OUT)
    assert not tasks.commit()
    assert read_checkpoint(task_dir) is None
    tasks.tasks["0_0"] = tasks._new_task("0_0", None, ("counts",), 0)
    count(tasks, producer, "c")
    assert tasks.commit() and read_checkpoint(task_dir) == {"app-counts-changelog": 3}
    count(tasks, producer, "d")
    tasks.lose()
    assert read_checkpoint(task_dir) is None


@pytest.mark.parametrize("exactly_once", [False, True])
def test_opening_a_task_keeps_its_checkpoint_only_under_at_least_once(tmp_path: Path, exactly_once: bool) -> None:
    """Exactly-once takes the checkpoint away as the task opens (as Kafka does): from there on
    only a commit or a clean close writes one."""
    tasks, _ = counting_manager(tmp_path, exactly_once=exactly_once)
    task_dir = tasks.config.task_dir("0_0")
    write_checkpoint(task_dir, {"app-counts-changelog": 5})
    assert tasks._take_checkpoint("0_0", ["counts"], 0) == {"app-counts-changelog": 5}
    assert (read_checkpoint(task_dir) is None) == exactly_once


def test_a_checkpoint_beyond_the_changelog_is_not_trusted(tmp_path: Path) -> None:
    tasks, _ = counting_manager(tmp_path, exactly_once=False)
    write_checkpoint(tasks.config.task_dir("0_0"), {"app-counts-changelog": 8})  # the changelog ends at 7
    assert tasks._take_checkpoint("0_0", ["counts"], 0) is None
    assert read_checkpoint(tasks.config.task_dir("0_0")) is None


def test_queries_learn_which_instances_hold_a_keys_standbys() -> None:
    """Interactive queries' metadata (Kafka's ``standbyHosts``, ``standbyStateStoreNames``,
    ``standbyTopicPartitions``): each instance's standby tasks as last placed, by client id."""
    builder = StreamsBuilder()
    builder.stream("clicks", key_serde=Serdes.string()).group_by_key().count(Materialized(store_name="counts"))
    topology = builder.build()
    the_plan = plan(topology, {"clicks": 2})
    members = [("x@a:1", [("clicks", 0)]), ("y@b:2", [("clicks", 1)]), ("z@c:3", [])]
    placement: list[dict[str, set[str]]] = [{"x@a:1": {"0_1"}, "z@c:3": {"0_0", "0_1"}}]
    instances = InstanceMap(topology, lambda: {"clicks": "clicks"}, lambda: the_plan, lambda: members,
                            HostInfo("a", 1), lambda: placement[0])
    by_host = {m.host: m for m in instances.all_metadata()}
    assert by_host["a"].standby_topic_partitions == {("clicks", 1)} and by_host["a"].standby_state_store_names == {
        "counts"}
    assert by_host["b"].standby_topic_partitions == frozenset() and by_host["b"].standby_state_store_names == frozenset()
    assert by_host["c"].standby_topic_partitions == {("clicks", 0), ("clicks", 1)}
    for i in range(10):
        partition = default_partition(f"user-{i}".encode(), 2)
        assert instances.for_key("counts", f"user-{i}") == KeyQueryMetadata(
            active_host=HostInfo("a", 1) if partition == 0 else HostInfo("b", 2),
            standby_hosts=frozenset({HostInfo("c", 3)} | ({HostInfo("a", 1)} if partition == 1 else set())),
            partition=partition)
    placement[0] = {}  # placed again (a moment after a rebalance): read at every call
    assert all(not m.standby_topic_partitions for m in instances.all_metadata())


# standby tasks of in-memory stores, and what their StandbyUpdateListener hears -------------------

class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, key: bytes, value: bytes | None) -> None:
        self._at, self._key, self._value = (topic, partition, offset), key, value

    def topic(self) -> str:
        return self._at[0]

    def partition(self) -> int:
        return self._at[1]

    def offset(self) -> int:
        return self._at[2]

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> None:
        return None


class FakeChangelogReader:
    """A changelog consumer over one partition's records (the standby's reader)."""

    def __init__(self, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
        self.records = [FakeMessage(topic, 0, i, k, v) for i, (k, v) in enumerate(records)]
        self.next = 0

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.next = max(0, partitions[0].offset)

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        batch = self.records[self.next:self.next + num_messages]
        self.next += len(batch)
        return batch

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.next) for tp in partitions]

    def get_watermark_offsets(self, partition: TopicPartition, cached: bool = False) -> tuple[int, int]:
        return 0, len(self.records)

    def close(self) -> None:
        return None


class Heard(StandbyUpdateListener):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_update_start(self, topic_partition: Any, store_name: str, starting_offset: int) -> None:
        self.calls.append(("start", topic_partition.topic, store_name, starting_offset))

    def on_batch_loaded(self, topic_partition: Any, store_name: str, task_id: str, batch_end_offset: int,
                        batch_size: int, current_end_offset: int) -> None:
        self.calls.append(("batch", store_name, task_id, batch_end_offset, batch_size, current_end_offset))

    def on_update_suspended(self, topic_partition: Any, store_name: str, store_offset: int, current_end_offset: int,
                            reason: SuspendReason) -> None:
        self.calls.append(("suspended", store_name, store_offset, current_end_offset, reason))


def in_memory_standbys(tmp_path: Path) -> tuple[StandbyTasks, Heard, FakeChangelogReader]:
    b = StreamsBuilder()
    b.stream("in", key_serde=Serdes.string(), value_serde=Serdes.string()).group_by_key().count(
        Materialized(store_name="counts", store_type="in_memory"))
    config = RuntimeConfig(topology=b.build(), config=StreamsConfig(application_id="app", state_dir=str(tmp_path)),
                           bootstrap_servers="unused:9092", exactly_once=False, client_config={},
                           state_root=tmp_path / "tomyum-streams")
    standbys, heard = StandbyTasks(config, lambda consumer, tp: (0, 3)), Heard()
    standbys.listeners.append(heard)
    reader = FakeChangelogReader("app-counts-changelog", [(b"a", b"1"), (b"b", b"1"), (b"a", b"2")])
    standbys._consumer = reader  # type: ignore[assignment]  # a fake of confluent-kafka's Consumer
    standbys.update({"0_0": (("counts",), 0)})
    return standbys, heard, reader


def test_a_promoted_in_memory_standby_hands_its_store_over_and_the_listener_hears_it(tmp_path: Path) -> None:
    standbys, heard, _ = in_memory_standbys(tmp_path)
    assert standbys.poll() == 3
    engines, offsets = standbys.promote("0_0")
    assert list(engines) == ["counts"] and offsets == {"app-counts-changelog": 3}  # where to go on from
    assert sorted(engines["counts"].range(None, None)) == [(b"a", b"2"), (b"b", b"1")]
    assert heard.calls == [("start", "app-counts-changelog", "counts", 0), ("batch", "counts", "0_0", 2, 3, 3),
                           ("suspended", "counts", 2, 3, SuspendReason.PROMOTED)]
    assert read_checkpoint(standbys.config.task_dir("0_0")) is None  # in memory: nothing on disk vouches for it


def test_a_standby_that_leaves_is_suspended_as_migrated_and_hands_nothing_over(tmp_path: Path) -> None:
    standbys, heard, _ = in_memory_standbys(tmp_path)
    standbys.poll()
    standbys.update({})
    assert heard.calls[-1] == ("suspended", "counts", 2, 3, SuspendReason.MIGRATED)
    assert standbys.tasks == {} and standbys.promote("0_0") == ({}, {})
