"""The record collector on its own, against a fake producer and consumer that write down what
they are asked (no broker): the exactly-once transaction's sequence, at-least-once's flush before
the offset commit, and what a fenced, fatal or failed commit does."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from tomyum.streams._record_collector import Fenced, RecordCollector, SendFailed

pytestmark = pytest.mark.timeout(30)

GROUP_METADATA = object()


class FakeProducer:
    """Writes down each call; ``fail`` maps a method name to the exception its next call raises."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail: dict[str, BaseException] = {}
        self.reports: list[tuple[Any, str, int]] = []
        self.ends: dict[tuple[str, int], int] = {}
        """The next offset of each partition produced to (a partition -1 counts as 0)."""

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        error = self.fail.pop(name, None)
        if error is not None:
            raise error

    def produce(self, topic: str, *, key: bytes | None, value: bytes | None, partition: int, timestamp: int,
                headers: list[tuple[str, str | bytes | None]] | None, on_delivery: Any = None) -> None:
        self._call("produce", topic, key, value, partition)
        self.reports.append((on_delivery, topic, max(partition, 0)))

    def report(self, error: Any = None) -> None:
        """Deliver the reports of what was produced (``error``: each failed so)."""
        for callback, topic, partition in self.reports:
            offset = self.ends.get((topic, partition), 0)
            self.ends[(topic, partition)] = offset + 1
            if callback is not None:
                callback(error, FakeMessage(topic, partition, offset))
        self.reports.clear()

    def poll(self, timeout: float) -> int:
        self._call("poll", timeout)
        return 0

    def flush(self, timeout: float) -> int:
        self._call("flush")
        return 0

    def begin_transaction(self) -> None:
        self._call("begin_transaction")

    def send_offsets_to_transaction(self, positions: list[TopicPartition], group_metadata: Any,
                                    timeout: float) -> None:
        assert group_metadata is GROUP_METADATA
        self._call("send_offsets_to_transaction", [(tp.topic, tp.partition, tp.offset) for tp in positions])

    def commit_transaction(self, timeout: float) -> None:
        self._call("commit_transaction")

    def abort_transaction(self, timeout: float) -> None:
        self._call("abort_transaction")


class FakeMessage:
    def __init__(self, topic: str, partition: int = 0, offset: int = 0) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


class FakeConsumer:
    def __init__(self) -> None:
        self.commits: list[list[tuple[str, int, int]]] = []

    def consumer_group_metadata(self) -> Any:
        return GROUP_METADATA

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[False]) -> list[TopicPartition]:
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])
        return offsets


def collector(exactly_once: bool) -> tuple[RecordCollector, FakeProducer]:
    producer = FakeProducer()
    return RecordCollector(producer, exactly_once=exactly_once, application_id="app"), producer


def error(code: int, **flags: bool) -> KafkaException:
    return KafkaException(KafkaError(code, "from the test", **flags))


OFFSETS = [TopicPartition("in", 0, 7)]


def test_exactly_once_sends_records_and_offsets_in_one_transaction() -> None:
    c, producer = collector(exactly_once=True)
    c.send("out", b"k", b"v", -1, 5, None)
    c.send("app-counts-changelog", b"k", b"1", 0, 0, None)
    assert c.in_transaction and c.dirty
    assert c.commit(OFFSETS, FakeConsumer())
    assert producer.calls == [
        ("begin_transaction",),
        ("produce", "out", b"k", b"v", -1),
        ("produce", "app-counts-changelog", b"k", b"1", 0),
        ("send_offsets_to_transaction", [("in", 0, 7)]),
        ("commit_transaction",),
    ]
    assert not c.in_transaction and not c.dirty


def test_exactly_once_commits_offsets_alone_in_a_transaction_and_nothing_when_idle() -> None:
    c, producer = collector(exactly_once=True)
    assert c.commit(OFFSETS, FakeConsumer())
    assert c.commit([], FakeConsumer())
    assert producer.calls == [("begin_transaction",), ("send_offsets_to_transaction", [("in", 0, 7)]),
                              ("commit_transaction",)]


def test_at_least_once_flushes_before_the_consumer_commits_offsets() -> None:
    c, producer = collector(exactly_once=False)
    consumer = FakeConsumer()
    c.send("out", None, b"v", 2, 5, None)
    assert c.commit(OFFSETS, consumer)
    assert producer.calls == [("produce", "out", None, b"v", 2), ("flush",)]
    assert consumer.commits == [[("in", 0, 7)]]
    c.abort_if_open()  # nothing to abort without transactions
    assert producer.calls[-1] == ("flush",)


def test_a_full_queue_is_drained_by_polling_then_the_record_sent() -> None:
    c, producer = collector(exactly_once=False)
    producer.fail["produce"] = BufferError("queue full")
    c.send("out", b"k", b"v", -1, 0, None)
    assert producer.calls == [("produce", "out", b"k", b"v", -1), ("poll", 0.05), ("produce", "out", b"k", b"v", -1)]


@pytest.mark.parametrize("step", ["begin_transaction", "produce", "commit_transaction"])
def test_a_fenced_producer_raises_fenced_from_any_step(step: str) -> None:
    c, producer = collector(exactly_once=True)
    producer.fail[step] = error(KafkaError.PRODUCER_FENCED)
    with pytest.raises(Fenced):
        c.send("out", b"k", b"v", -1, 0, None)
        c.commit(OFFSETS, FakeConsumer())


def test_a_failed_exactly_once_commit_reports_false_and_the_transaction_can_be_aborted() -> None:
    c, producer = collector(exactly_once=True)
    producer.fail["send_offsets_to_transaction"] = error(KafkaError.ILLEGAL_GENERATION, txn_requires_abort=True)
    c.send("out", b"k", b"v", -1, 0, None)
    assert not c.commit(OFFSETS, FakeConsumer())
    assert c.dirty and c.in_transaction
    c.abort_if_open()
    assert producer.calls[-1] == ("abort_transaction",) and not c.in_transaction


def test_a_failed_at_least_once_commit_is_logged_and_processing_goes_on() -> None:
    c, producer = collector(exactly_once=False)
    producer.fail["flush"] = error(KafkaError._TIMED_OUT)
    c.send("out", b"k", b"v", -1, 0, None)
    assert c.commit(OFFSETS, FakeConsumer())
    assert not c.dirty


def test_a_fatal_error_is_raised_as_it_is() -> None:
    c, producer = collector(exactly_once=True)
    producer.fail["commit_transaction"] = error(KafkaError._FATAL, fatal=True)
    c.send("out", b"k", b"v", -1, 0, None)
    with pytest.raises(KafkaException):
        c.commit(OFFSETS, FakeConsumer())


def test_an_undelivered_record_fails_the_at_least_once_commit_before_offsets_are_committed() -> None:
    """Kafka Streams' default production handler: the input whose results are missing is not
    committed (it is processed again after a restart), and the next send fails too."""
    c, producer = collector(exactly_once=False)
    consumer = FakeConsumer()
    c.send("out", None, b"v", 0, 5, None)
    producer.report(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large"))
    with pytest.raises(SendFailed, match="sending a record to out failed"):
        c.commit(OFFSETS, consumer)
    assert consumer.commits == []
    with pytest.raises(SendFailed):
        c.send("out", None, b"next", 0, 6, None)


@pytest.mark.parametrize("exactly_once", [False, True])
def test_a_record_the_producer_refuses_fails_naming_its_topic(exactly_once: bool) -> None:
    """librdkafka refuses a record for a topic it knows to be missing (``_UNKNOWN_TOPIC``) in
    ``produce`` itself; the error names the topic, as Kafka Streams' does."""
    c, producer = collector(exactly_once=exactly_once)
    producer.fail["produce"] = error(KafkaError._UNKNOWN_TOPIC)
    with pytest.raises(SendFailed, match="sending a record to missing-out failed: .*from the test"):
        c.send("missing-out", None, b"v", -1, 5, None)
    producer.fail["produce"] = error(KafkaError._FATAL, fatal=True)
    with pytest.raises(KafkaException) as raised:
        c.send("out", None, b"v", -1, 6, None)
    assert not isinstance(raised.value, SendFailed)


def test_records_still_queued_when_the_flush_gives_up_fail_the_commit() -> None:
    c, producer = collector(exactly_once=False)
    consumer = FakeConsumer()
    c.send("out", None, b"v", 0, 5, None)
    producer.flush = lambda timeout: 1  # type: ignore[method-assign]
    with pytest.raises(SendFailed, match="1 records still undelivered"):
        c.commit(OFFSETS, consumer)
    assert consumer.commits == []
