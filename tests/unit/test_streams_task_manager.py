"""The task manager on its own (no broker): tasks follow the assignment, consumed records reach
their task and advance the positions that a commit hands to the record collector, and lost
partitions drop the tasks and abort the open transaction. The producer and consumer are fakes
that write down what they are asked (those of the record collector's tests)."""

from __future__ import annotations

import threading
from typing import Any
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, TopicPartition

from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig
from tomyum.streams._plan import plan
from tomyum.streams._record_collector import RecordCollector
from tomyum.streams._runtime_config import RuntimeConfig
from tomyum.client._watermarks import watermark_offsets
from tomyum.streams._task_manager import TaskManager
from tomyum.streams.processor import StateRestoreListener
from tests.unit.test_streams_record_collector import FakeConsumer, FakeProducer

pytestmark = pytest.mark.timeout(30)


class FakeMainConsumer(FakeConsumer):
    """The main consumer as the task manager sees it: a clean task close asks for watermarks."""

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float = -1,
                              cached: bool = False) -> tuple[int, int]:
        return 0, 0


def manager(tmp_path: Path, *, exactly_once: bool) -> tuple[TaskManager, FakeProducer, FakeMainConsumer]:
    b = StreamsBuilder()
    b.stream("in", value_serde=Serdes.string()).map_values(str.upper).to("out", value_serde=Serdes.string())
    topology = b.build()
    config = RuntimeConfig(topology=topology, config=StreamsConfig(application_id="app", state_dir=str(tmp_path)),
                           bootstrap_servers="unused:9092", exactly_once=exactly_once, client_config={},
                           state_root=tmp_path / "tomyum-streams")
    tasks = TaskManager(config, threading.Event())
    tasks.use_plan(plan(topology, {"in": 2, "out": 2}))
    producer, consumer = FakeProducer(), FakeMainConsumer()
    tasks.collector = RecordCollector(producer, exactly_once=exactly_once, application_id="app")
    tasks.consumer = consumer  # type: ignore[assignment]  # a fake of confluent-kafka's Consumer
    return tasks, producer, consumer


def message(partition: int, offset: int, value: bytes) -> Message:
    return Message(topic="in", partition=partition, offset=offset, key=None, value=value, timestamp=(1, offset))


def test_tasks_follow_the_assignment(tmp_path: Path) -> None:
    tasks, _, _ = manager(tmp_path, exactly_once=False)
    tasks.assign([TopicPartition("in", 0), TopicPartition("in", 1)])
    assert sorted(tasks.tasks) == ["0_0", "0_1"]
    kept = tasks.tasks["0_0"]
    tasks.assign([TopicPartition("in", 0)])
    assert list(tasks.tasks) == ["0_0"] and tasks.tasks["0_0"] is kept


def test_processed_records_are_committed_with_the_next_offsets(tmp_path: Path) -> None:
    tasks, producer, consumer = manager(tmp_path, exactly_once=False)
    tasks.assign([TopicPartition("in", 0), TopicPartition("in", 1)])
    tasks.process_messages([message(0, 4, b"a"), message(1, 9, b"b"), message(0, 5, b"c")])
    assert [call[3] for call in producer.calls] == [b"A", b"C", b"B"]  # task by task, each in its order
    assert tasks.commit()
    assert producer.calls[-1] == ("flush",)
    assert consumer.commits == [[("in", 0, 6), ("in", 1, 10)]]
    assert tasks.committed == {("in", 0): 6, ("in", 1): 10}
    assert tasks.commit() and len(consumer.commits) == 1  # nothing new: nothing committed


def test_revoking_commits_first_then_forgets_the_partitions(tmp_path: Path) -> None:
    tasks, _, consumer = manager(tmp_path, exactly_once=False)
    tasks.assign([TopicPartition("in", 0), TopicPartition("in", 1)])
    tasks.process_messages([message(0, 0, b"a"), message(1, 0, b"b")])
    tasks.revoke([TopicPartition("in", 1)])
    assert consumer.commits == [[("in", 0, 1), ("in", 1, 1)]]
    assert tasks.positions == {("in", 0): 1}


def test_lost_partitions_abort_the_transaction_and_drop_the_tasks(tmp_path: Path) -> None:
    tasks, producer, consumer = manager(tmp_path, exactly_once=True)
    tasks.assign([TopicPartition("in", 0)])
    tasks.process_messages([message(0, 0, b"a")])
    tasks.lose()
    assert producer.calls[0] == ("begin_transaction",) and producer.calls[-1] == ("abort_transaction",)
    assert tasks.tasks == {} and tasks.positions == {}
    assert tasks.commit() and consumer.commits == []


class RewindingConsumer(FakeMainConsumer):
    """Knows committed offsets (-1001: none) and writes down the seeks."""

    def __init__(self, committed: dict[int, int]) -> None:
        super().__init__()
        self.committed_offsets = committed
        self.seeks: list[tuple[str, int, int]] = []

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.committed_offsets[tp.partition]) for tp in partitions]

    def seek(self, partition: TopicPartition) -> None:
        self.seeks.append((partition.topic, partition.partition, partition.offset))


def test_a_failed_exactly_once_commit_is_rebuilt_from_the_committed_offsets(tmp_path: Path) -> None:
    """The stale-generation path: the commit fails, the tasks are dropped (their transaction
    aborted), the consumer goes back to what was committed, and the tasks are created again."""
    tasks, producer, _ = manager(tmp_path, exactly_once=True)
    consumer = tasks.consumer = RewindingConsumer({0: 3, 1: -1001})  # type: ignore[assignment]
    assignment = [TopicPartition("in", 0), TopicPartition("in", 1)]
    tasks.assign(assignment)
    tasks.process_messages([message(0, 3, b"a")])
    producer.fail["commit_transaction"] = KafkaException(KafkaError(KafkaError.ILLEGAL_GENERATION, "stale"))
    assert not tasks.commit()
    assert tasks.committed == {}
    tasks.lose()
    tasks.rewind(assignment)
    tasks.assign(assignment)
    assert producer.calls[-1] == ("abort_transaction",)
    assert consumer.seeks == [("in", 0, 3), ("in", 1, OFFSET_BEGINNING)]
    assert sorted(tasks.tasks) == ["0_0", "0_1"] and tasks.positions == {}


def joined_manager(tmp_path: Path, max_task_idle_ms: int) -> tuple[TaskManager, FakeProducer, list[int]]:
    """A stream-table join (``orders`` with the table ``rates``) whose task has two partitions."""
    b = StreamsBuilder()
    S = Serdes.string()
    (b.stream("orders", key_serde=S, value_serde=S)
        .join(b.table("rates", key_serde=S, value_serde=S,
                      materialized=Materialized(store_type="in_memory", logging_enabled=False)),  # nothing to restore
              lambda o, r: f"{o}@{r}").to("out", value_serde=S))
    topology = b.build()
    config = RuntimeConfig(topology=topology, config=StreamsConfig(application_id="app", state_dir=str(tmp_path),
                                                                   max_task_idle_ms=max_task_idle_ms),
                           bootstrap_servers="unused:9092", exactly_once=False, client_config={},
                           state_root=tmp_path / "tomyum-streams")
    tasks = TaskManager(config, threading.Event())
    tasks.use_plan(plan(topology, {"orders": 1, "rates": 1, "out": 1}))
    producer = FakeProducer()
    tasks.collector = RecordCollector(producer, exactly_once=False, application_id="app")
    tasks.consumer = FakeMainConsumer()  # type: ignore[assignment]
    now = [0]
    tasks.clock_ms = lambda: now[0]
    tasks.assign([TopicPartition("orders", 0), TopicPartition("rates", 0)])
    return tasks, producer, now


def keyed(topic: str, offset: int, value: bytes, timestamp: int) -> Message:
    return Message(topic=topic, partition=0, offset=offset, key=b"k", value=value, timestamp=(1, timestamp))


def test_a_join_waits_up_to_max_task_idle_ms_for_its_empty_side(tmp_path: Path) -> None:
    tasks, producer, now = joined_manager(tmp_path, max_task_idle_ms=1000)
    tasks.process_messages([keyed("orders", 0, b"o1", 20)])
    now[0] = 999
    tasks.process_messages([])
    assert producer.calls == [] and tasks.positions == {}  # waiting for the table side
    tasks.process_messages([keyed("rates", 0, b"r1", 10)])  # the late table record arrives in time
    # r1 (earlier) goes into the table; the table side is empty again, so o1 waits again, as in
    # Kafka (a partition that runs dry starts a new wait)
    assert producer.calls == [] and tasks.positions == {("rates", 0): 1}
    now[0] = 1999
    tasks.process_messages([])
    assert [call[3] for call in producer.calls] == [b"o1@r1"]
    assert tasks.positions == {("orders", 0): 1, ("rates", 0): 1}
    assert tasks.partition_groups["0_0"].enforced_processing == 1


def test_without_waiting_the_join_misses_a_late_table_record(tmp_path: Path) -> None:
    tasks, producer, _ = joined_manager(tmp_path, max_task_idle_ms=-1)
    tasks.process_messages([keyed("orders", 0, b"o1", 20)])
    tasks.process_messages([keyed("rates", 0, b"r1", 10)])
    assert producer.calls == []  # the inner join found no rate for o1


def test_records_of_both_sides_are_taken_in_timestamp_order(tmp_path: Path) -> None:
    tasks, producer, _ = joined_manager(tmp_path, max_task_idle_ms=0)
    tasks.process_messages([keyed("orders", 0, b"o1", 20), keyed("orders", 1, b"o2", 40),
                            keyed("rates", 0, b"r1", 10), keyed("rates", 1, b"r2", 30)])
    assert [call[3] for call in producer.calls] == [b"o1@r1", b"o2@r2"]


def test_revoked_partitions_leave_their_buffers(tmp_path: Path) -> None:
    tasks, producer, now = joined_manager(tmp_path, max_task_idle_ms=1000)
    tasks.process_messages([keyed("orders", 0, b"o1", 20)])
    tasks.revoke([TopicPartition("orders", 0), TopicPartition("rates", 0)])
    assert tasks.partition_groups["0_0"].buffered == 0

class NotLedYet:
    """A consumer whose broker has not taken a new partition up for ``misses`` requests (Kafka
    just after CreateTopics), then knows its watermarks."""

    def __init__(self, misses: int, code: int = KafkaError.NOT_LEADER_FOR_PARTITION) -> None:
        self.misses, self.code, self.asked = misses, code, 0

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float, cached: bool) -> tuple[int, int]:
        self.asked += 1
        if self.asked <= self.misses:
            raise KafkaException(KafkaError(self.code))
        return (0, 7)


def test_watermarks_are_asked_again_while_the_partition_is_not_led_yet() -> None:
    consumer = NotLedYet(misses=2)
    assert watermark_offsets(consumer, TopicPartition("changelog", 0), timeout=10) == (0, 7)
    assert consumer.asked == 3


def test_watermarks_fail_at_once_on_an_error_that_is_not_about_leadership() -> None:
    consumer = NotLedYet(misses=1, code=KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        watermark_offsets(consumer, TopicPartition("changelog", 0), timeout=10)
    assert consumer.asked == 1


# cooperative rebalancing (KIP-848): the callbacks carry only what is added or revoked

def test_cooperative_assignment_adds_tasks_and_leaves_the_running_ones_alone(tmp_path: Path) -> None:
    tasks, producer, _ = manager(tmp_path, exactly_once=False)
    tasks.add([TopicPartition("in", 0)])
    kept = tasks.tasks["0_0"]
    tasks.process_messages([message(0, 4, b"a")])
    tasks.add([TopicPartition("in", 1)])
    assert sorted(tasks.tasks) == ["0_0", "0_1"] and tasks.tasks["0_0"] is kept
    assert tasks.positions == {("in", 0): 5}  # nothing committed, nothing forgotten
    tasks.process_messages([message(0, 5, b"b"), message(1, 0, b"c")])
    assert [call[3] for call in producer.calls] == [b"A", b"B", b"C"]


def test_cooperative_revocation_commits_every_task_then_closes_only_the_revoked(tmp_path: Path) -> None:
    tasks, producer, consumer = manager(tmp_path, exactly_once=False)
    tasks.add([TopicPartition("in", 0), TopicPartition("in", 1)])
    kept = tasks.tasks["0_0"]
    tasks.process_messages([message(0, 0, b"a"), message(1, 0, b"b")])
    assert tasks.revoke_incrementally([TopicPartition("in", 1)])
    assert consumer.commits == [[("in", 0, 1), ("in", 1, 1)]]
    assert list(tasks.tasks) == ["0_0"] and tasks.tasks["0_0"] is kept
    assert list(tasks.partition_groups) == ["0_0"] and tasks.positions == {("in", 0): 1}
    tasks.process_messages([message(0, 1, b"c"), message(1, 1, b"late")])  # (a record of 1 consumed before it went)
    assert [call[3] for call in producer.calls if call[0] == "produce"] == [b"A", b"B", b"C"]
    assert tasks.positions == {("in", 0): 2}


def test_a_task_gains_and_gives_up_its_co_partitioned_inputs_one_at_a_time(tmp_path: Path) -> None:
    """A join's task (orders-0 with rates-0) may get its partitions in separate assignments:
    it opens with the first, takes the second in, and closes only when its last one goes."""
    tasks, producer, now = joined_manager(tmp_path, max_task_idle_ms=1000)
    tasks.revoke_incrementally([TopicPartition("orders", 0), TopicPartition("rates", 0)])
    assert tasks.tasks == {}
    tasks.add([TopicPartition("orders", 0)])
    task = tasks.tasks["0_0"]
    tasks.add([TopicPartition("rates", 0)])
    assert tasks.tasks["0_0"] is task and sorted(tasks.partition_groups["0_0"].queues) == [("orders", 0), ("rates", 0)]
    tasks.process_messages([keyed("rates", 0, b"r1", 10), keyed("orders", 0, b"o1", 20)])
    assert producer.calls == []  # r1 went into the table; o1 waits for the table side
    now[0] = 1000
    tasks.process_messages([])
    assert [call[3] for call in producer.calls if call[0] == "produce"] == [b"o1@r1"]
    assert tasks.revoke_incrementally([TopicPartition("rates", 0)])
    assert tasks.tasks["0_0"] is task and list(tasks.partition_groups["0_0"].queues) == [("orders", 0)]
    tasks.process_messages([keyed("orders", 0, b"o2", 30)])  # no longer waits for rates
    assert [call[3] for call in producer.calls if call[0] == "produce"] == [b"o1@r1", b"o2@r1"]
    assert tasks.revoke_incrementally([TopicPartition("orders", 0)])
    assert tasks.tasks == {} and tasks.partition_groups == {}


def test_a_failed_commit_before_a_cooperative_revocation_drops_every_task(tmp_path: Path) -> None:
    """Under exactly-once the tasks share one transaction: if its commit fails (the member is
    fenced), every task is dropped and the transaction aborted, and the caller rebuilds the
    tasks it keeps."""
    tasks, producer, consumer = manager(tmp_path, exactly_once=True)
    tasks.add([TopicPartition("in", 0), TopicPartition("in", 1)])
    tasks.process_messages([message(0, 0, b"a"), message(1, 0, b"b")])
    producer.fail["commit_transaction"] = KafkaException(KafkaError(KafkaError.ILLEGAL_GENERATION, "stale"))
    assert not tasks.revoke_incrementally([TopicPartition("in", 1)])
    assert producer.calls[-1] == ("abort_transaction",)
    assert tasks.tasks == {} and tasks.positions == {} and consumer.commits == []


def test_the_group_protocol_is_classic_or_consumer_and_consumer_takes_no_classic_settings() -> None:
    from tomyum.streams.runtime import KafkaStreams

    b = StreamsBuilder()
    b.stream("in").to("out")
    topology = b.build()

    def app(**kwargs: object) -> KafkaStreams:
        return KafkaStreams(topology, StreamsConfig(application_id="app"), bootstrap_servers="unused:9092",
                            **kwargs)  # type: ignore[arg-type]

    assert app(group_protocol="consumer")._config.cooperative and not app()._config.cooperative
    with pytest.raises(ValueError, match="group_protocol must be classic or consumer, not 'cooperative'"):
        app(group_protocol="cooperative")
    with pytest.raises(ValueError, match="client_config sets heartbeat.interval.ms, session.timeout.ms, which"):
        app(group_protocol="consumer", client_config={"consumer.session.timeout.ms": 6000,
                                                      "heartbeat.interval.ms": 1000, "producer.linger.ms": 5})
    assert app(client_config={"consumer.session.timeout.ms": 6000})  # (the classic protocol takes them)


class AssignedConsumer(RewindingConsumer):
    """Also knows its assignment (as the rebalance callbacks find it)."""

    def __init__(self, committed: dict[int, int], assigned: list[int]) -> None:
        super().__init__(committed)
        self.assigned = assigned

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("in", p) for p in self.assigned]


def cooperative_app(tasks: TaskManager) -> Any:
    from tomyum.streams.runtime import KafkaStreams, State

    app = KafkaStreams(tasks.topology, StreamsConfig(application_id="app"), bootstrap_servers="unused:9092",
                       group_protocol="consumer")
    app._task_manager = tasks
    app.state = State.RUNNING
    return app


def test_under_the_consumer_protocol_the_callbacks_keep_the_kept_tasks_running(tmp_path: Path) -> None:
    from tomyum.streams.runtime import State

    tasks, _, _ = manager(tmp_path, exactly_once=False)
    app, states = cooperative_app(tasks), []
    app.set_state_listener(lambda new, old: states.append(new))
    consumer = AssignedConsumer({0: 0, 1: 0}, [0, 1])
    app._on_assign(consumer, [TopicPartition("in", 0), TopicPartition("in", 1)])
    kept = tasks.tasks["0_0"]
    app._on_revoke(consumer, [TopicPartition("in", 1)])
    app._on_assign(consumer, [])
    assert list(tasks.tasks) == ["0_0"] and tasks.tasks["0_0"] is kept
    assert app.state is State.RUNNING and states == []


def test_under_the_consumer_protocol_a_failed_commit_rebuilds_the_kept_tasks_at_once(tmp_path: Path) -> None:
    tasks, producer, _ = manager(tmp_path, exactly_once=True)
    app = cooperative_app(tasks)
    consumer = tasks.consumer = AssignedConsumer({0: 3, 1: 5}, [0, 1])  # type: ignore[assignment]
    app._on_assign(consumer, [TopicPartition("in", 0), TopicPartition("in", 1)])
    lost = tasks.tasks["0_0"]
    tasks.process_messages([message(0, 3, b"a"), message(1, 5, b"b")])
    producer.fail["commit_transaction"] = KafkaException(KafkaError(KafkaError.ILLEGAL_GENERATION, "stale"))
    app._on_revoke(consumer, [TopicPartition("in", 1)])
    assert producer.calls[-1] == ("abort_transaction",)
    assert list(tasks.tasks) == ["0_0"] and tasks.tasks["0_0"] is not lost  # rebuilt from its changelogs
    assert consumer.seeks == [("in", 0, 3)] and tasks.positions == {}


# restoring a gained task between batches (Kafka's RESTORING, before the state updater thread)

class FakeChangelogs:
    """The restore consumer over changelog partitions kept in memory (``records``: topic,
    partition -> (key, value) list), handing at most ``batch`` records per consume."""

    def __init__(self, records: dict[tuple[str, int], list[tuple[bytes, bytes | None]]], batch: int) -> None:
        self.records, self.batch = records, batch
        self.assigned: list[tuple[str, int]] = []
        self.positions: dict[tuple[str, int], int] = {}

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float = -1,
                              cached: bool = False) -> tuple[int, int]:
        return 0, len(self.records.get((tp.topic, tp.partition), []))

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = [(tp.topic, tp.partition) for tp in partitions]
        for tp in partitions:
            self.positions[(tp.topic, tp.partition)] = max(tp.offset, 0)

    def unassign(self) -> None:
        self.assigned = []

    def close(self) -> None:
        self.assigned = []

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.positions.get((tp.topic, tp.partition), -1001))
                for tp in partitions]

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        out: list[Message] = []
        for topic, partition in self.assigned:
            start = self.positions[(topic, partition)]
            taken = self.records[(topic, partition)][start:start + min(num_messages, self.batch)]
            out += [Message(topic=topic, partition=partition, offset=start + i, key=k, value=v)
                    for i, (k, v) in enumerate(taken)]
            self.positions[(topic, partition)] = start + len(taken)
        return out


class PausingConsumer(FakeMainConsumer):
    """Writes down the pauses and resumes in ``events``."""

    def __init__(self, events: list[tuple[Any, ...]]) -> None:
        super().__init__()
        self.events = events

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.events.append(("pause", *[(tp.topic, tp.partition) for tp in partitions]))

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.events.append(("resume", *[(tp.topic, tp.partition) for tp in partitions]))


class Listener(StateRestoreListener):
    def __init__(self, events: list[tuple[Any, ...]]) -> None:
        self.events = events

    def on_restore_start(self, topic_partition: Any, store_name: str, starting_offset: int,
                         ending_offset: int) -> None:
        self.events.append(("start", topic_partition.partition, starting_offset, ending_offset))

    def on_batch_restored(self, topic_partition: Any, store_name: str, batch_end_offset: int,
                          num_restored: int) -> None:
        self.events.append(("batch", batch_end_offset, num_restored))

    def on_restore_end(self, topic_partition: Any, store_name: str, total_restored: int) -> None:
        self.events.append(("end", total_restored))


def counting_manager(tmp_path: Path, changelog: list[tuple[bytes, bytes | None]] | None = None, batch: int = 2
                     ) -> tuple[TaskManager, FakeProducer, list[tuple[Any, ...]]]:
    """A count per key (in-memory store, logged) over ``in`` (2 partitions), whose task 0_1's
    changelog holds ``changelog``, read ``batch`` records at a time."""
    b = StreamsBuilder()
    S = Serdes.string()
    (b.stream("in", key_serde=S, value_serde=S).group_by_key()
        .count(Materialized(store_name="counts", store_type="in_memory"))
        .to_stream().to("out", value_serde=Serdes.long()))
    topology = b.build()
    config = RuntimeConfig(topology=topology, config=StreamsConfig(application_id="app", state_dir=str(tmp_path)),
                           bootstrap_servers="unused:9092", exactly_once=False, client_config={},
                           state_root=tmp_path / "tomyum-streams")
    tasks = TaskManager(config, threading.Event())
    tasks.use_plan(plan(topology, {"in": 2, "out": 2}))
    events: list[tuple[Any, ...]] = []
    producer = FakeProducer()
    tasks.collector = RecordCollector(producer, exactly_once=False, application_id="app")
    tasks.consumer = PausingConsumer(events)  # type: ignore[assignment]
    tasks._changelogs = FakeChangelogs({("app-counts-changelog", 0): [],  # type: ignore[assignment]
                                        ("app-counts-changelog", 1): changelog or []}, batch)
    tasks.changelog_reader.batch_records = batch
    tasks.add_state_restore_listener(Listener(events))
    return tasks, producer, events


def key_message(partition: int, offset: int, key: bytes) -> Message:
    return Message(topic="in", partition=partition, offset=offset, key=key, value=b"x", timestamp=(1, offset))


def counted(producer: FakeProducer, topic: str = "out") -> list[tuple[bytes, bytes]]:
    return [(call[2], call[3]) for call in producer.calls if call[0] == "produce" and call[1] == topic]


def changelog_of_counts(tmp_path: Path, keys: list[bytes]) -> list[tuple[bytes, bytes | None]]:
    """The changelog task 0_1 writes counting ``keys`` (from a task manager of its own)."""
    tasks, producer, _ = counting_manager(tmp_path / "first")
    tasks.add([TopicPartition("in", 1)])
    tasks.process_messages([key_message(1, i, k) for i, k in enumerate(keys)])
    return counted(producer, "app-counts-changelog")


def test_a_gained_task_restores_a_batch_per_turn_with_its_inputs_paused_while_the_running_ones_process(
        tmp_path: Path) -> None:
    changelog = changelog_of_counts(tmp_path, [b"k", b"k", b"k", b"j", b"k"])  # k: 4, j: 1
    tasks, producer, events = counting_manager(tmp_path / "second", changelog, batch=2)
    tasks.add([TopicPartition("in", 0)])  # nothing in its changelog: RUNNING at once
    tasks.add([TopicPartition("in", 1)])
    assert tasks.restoring == {"0_1"} and events == []
    tasks.process_messages([key_message(0, 0, b"a"), key_message(1, 5, b"k")])  # in-1's fetched before the pause
    assert counted(producer) == [(b"a", (1).to_bytes(8, "big"))]  # 0_1 waits: its store is not caught up
    tasks.restore()
    assert events == [("pause", ("in", 1)), ("start", 1, 0, 5), ("batch", 1, 2)]
    tasks.process_messages([key_message(0, 1, b"a")])  # the running task processes between batches
    assert tasks.commit()
    assert tasks.consumer.commits == [[("in", 0, 2)]]  # type: ignore[union-attr]  # (nothing of 0_1)
    tasks.restore()
    assert tasks.restoring == {"0_1"} and events[-1] == ("batch", 3, 2)
    tasks.restore()
    assert tasks.restoring == set() and events[-3:] == [("batch", 4, 1), ("end", 5), ("resume", ("in", 1))]
    tasks.process_messages([])
    assert counted(producer)[-1] == (b"k", (5).to_bytes(8, "big"))  # 4 restored, then the waiting record
    assert tasks.positions == {("in", 0): 2, ("in", 1): 6}
    assert tasks._changelogs.assigned == []  # type: ignore[union-attr]  # (nothing read in the background)


def test_a_task_revoked_while_restoring_closes_without_a_checkpoint_and_restores_no_more(tmp_path: Path) -> None:
    changelog = changelog_of_counts(tmp_path, [b"k"] * 6)
    tasks, producer, events = counting_manager(tmp_path / "second", changelog, batch=2)
    tasks.add([TopicPartition("in", 0), TopicPartition("in", 1)])
    tasks.restore()
    assert tasks.restoring == {"0_1"} and events[-1] == ("batch", 1, 2)
    assert tasks.revoke_incrementally([TopicPartition("in", 1)])
    assert sorted(tasks.tasks) == ["0_0"] and tasks.restoring == set()
    assert tasks._changelogs.assigned == []  # type: ignore[union-attr]
    assert not (tasks.config.task_dir("0_1") / ".checkpoint").exists()
    tasks.restore()
    tasks.process_messages([key_message(0, 0, b"a")])
    assert "end" not in [e[0] for e in events] and counted(producer) == [(b"a", (1).to_bytes(8, "big"))]


def test_a_task_lost_while_restoring_is_dropped_and_its_pauses_forgotten(tmp_path: Path) -> None:
    changelog = changelog_of_counts(tmp_path, [b"k"] * 6)
    tasks, _, events = counting_manager(tmp_path / "second", changelog, batch=2)
    tasks.add([TopicPartition("in", 1)])
    tasks.restore()
    tasks.lose()
    assert tasks.tasks == {} and tasks.restoring == set()
    assert tasks._changelogs.assigned == []  # type: ignore[union-attr]
    tasks.add([TopicPartition("in", 1)])  # rebuilt: restored from the start again
    while tasks.restoring:
        tasks.restore()
    assert [e for e in events if e[0] in ("start", "end")] == [("start", 1, 0, 6), ("start", 1, 0, 6), ("end", 6)]
    assert [e for e in events if e[0] in ("pause", "resume")] == [("pause", ("in", 1)), ("pause", ("in", 1)),
                                                                  ("resume", ("in", 1))]


def test_eager_assignment_restores_the_new_tasks_at_once(tmp_path: Path) -> None:
    changelog = changelog_of_counts(tmp_path, [b"k"] * 5)
    tasks, producer, events = counting_manager(tmp_path / "second", changelog, batch=2)
    tasks.assign([TopicPartition("in", 1)])
    assert tasks.restoring == set() and events[0] == ("start", 1, 0, 5) and events[-1] == ("end", 5)
    tasks.process_messages([key_message(1, 5, b"k")])
    assert counted(producer) == [(b"k", (6).to_bytes(8, "big"))]
    assert not [e for e in events if e[0] == "pause"]  # (nothing to pause: restored before any fetch)


def test_a_promoted_standby_restores_only_the_tail_in_turns(tmp_path: Path) -> None:
    changelog = changelog_of_counts(tmp_path, [b"k"] * 5)
    tasks, producer, events = counting_manager(tmp_path / "second", changelog[:3], batch=2)
    records = tasks._changelogs.records  # type: ignore[union-attr]
    tasks.standbys._consumer = FakeChangelogs(records, batch=10)  # type: ignore[assignment]
    tasks.standbys.update({"0_1": (("counts",), 1)})
    assert tasks.standbys.poll() == 3  # the warm copy: k = 3
    records[("app-counts-changelog", 1)] += changelog[3:]  # the active task wrote on elsewhere
    tasks.add([TopicPartition("in", 1)])
    assert tasks.standbys.tasks == {} and tasks.restoring == {"0_1"}
    while tasks.restoring:
        tasks.restore()
    assert [e for e in events if e[0] != "pause"] == [("start", 1, 3, 5), ("batch", 4, 2), ("end", 2),
                                                      ("resume", ("in", 1))]
    tasks.process_messages([key_message(1, 5, b"k")])
    assert counted(producer) == [(b"k", (6).to_bytes(8, "big"))]
