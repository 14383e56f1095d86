"""The record collector: everything an instance writes goes through here, to its one producer —
the tasks' results, repartition records and changelog records — and so does the commit of
what was written (Kafka Streams' ``RecordCollectorImpl`` and ``StreamsProducer`` in one).

* ``at_least_once``: records are handed to the producer as they come; :meth:`commit` waits
  until all are acknowledged (``flush``), then commits the input offsets with the consumer.
* ``exactly_once_v2``: the first record after a commit begins a transaction; :meth:`commit`
  adds the input offsets to it (``send_offsets_to_transaction`` with the group's metadata,
  KIP-447) and commits it; :meth:`abort_if_open` aborts it when the tasks are dropped.
* A fenced producer (another instance took over this one's ``transactional.id``, or the
  coordinator aborted a transaction that outlived ``transaction.timeout.ms``) raises
  :class:`Fenced` from any call: the task manager's work since its last commit belongs to
  another instance now. Fatal client errors are raised as they are; any other failed commit is
  logged, and under exactly-once reported (``commit`` returns False) so that the tasks are
  rebuilt.
* Delivery: records are checked at commit (the flush, or the transaction's commit); between
  commits :meth:`poll` serves the producer's delivery reports. Under at-least-once a record
  the producer could not deliver (or still holds when the flush gives up) fails the commit
  with :class:`SendFailed` before the input offsets are committed, and the next send too, as
  Kafka Streams' default production exception handler does: the input is processed again
  after a restart rather than lost.

Calls only its producer and, at commit, the consumer it is given. Not thread-safe: one
instance per life of an application's clients, used from the streams thread.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, Protocol

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from tomyum.streams._runtime_config import RuntimeConfig

__all__ = ["EOS_TRANSACTION_TIMEOUT_MS", "Fenced", "GroupConsumer", "RecordCollector", "TransactionalProducer",
           "fenced"]

log = logging.getLogger(__name__)

EOS_TRANSACTION_TIMEOUT_MS = 10_000  # Kafka Streams' default under exactly-once
Headers = list[tuple[str, str | bytes | None]]


class Fenced(Exception):
    """This instance's producer was fenced: its tasks belong to another instance now."""


_FENCING_CODES = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


def fenced(e: KafkaException) -> bool:
    error = e.args[0] if e.args else None
    return isinstance(error, KafkaError) and error.code() in _FENCING_CODES


class TransactionalProducer(Protocol):
    """What the collector uses of confluent-kafka's ``Producer``."""

    def produce(self, topic: str, *, key: bytes | None, value: bytes | None, partition: int, timestamp: int,
                headers: Headers | None, on_delivery: Any = None) -> None: ...
    def poll(self, timeout: float) -> int: ...
    def flush(self, timeout: float) -> int: ...
    def begin_transaction(self) -> None: ...
    def send_offsets_to_transaction(self, positions: list[TopicPartition], group_metadata: Any,
                                    timeout: float) -> None: ...
    def commit_transaction(self, timeout: float) -> None: ...
    def abort_transaction(self, timeout: float) -> None: ...


class GroupConsumer(Protocol):
    """What the collector uses of the application's consumer at commit."""

    def consumer_group_metadata(self) -> Any: ...
    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[False]) -> list[TopicPartition]: ...


class SendFailed(Exception):
    """A record could not be delivered under at-least-once: the application stops before it
    commits input whose results are missing (Kafka Streams' default production handler)."""


class RecordCollector:
    def __init__(self, producer: TransactionalProducer, *, exactly_once: bool, application_id: str) -> None:
        self.producer = producer
        self.exactly_once = exactly_once
        self.application_id = application_id
        self.in_transaction = False
        #: the first record the producer could not deliver (at-least-once), raised at the next
        #: send or commit
        self._send_error: str | None = None
        self.dirty = False
        """Records handed to the producer since the last commit."""
        self.delivered: dict[tuple[str, int], int] = {}
        """Per (topic, partition): the offset after the last record delivered there (after a
        commit, every record sent before it has been delivered)."""

    @classmethod
    def connect(cls, config: RuntimeConfig, process_id: str) -> RecordCollector:
        """A collector with a new producer; under exactly-once, a transactional one named after
        the instance's ``process_id``, whose ``init_transactions`` fences an earlier run of
        this instance (may block up to 60 s)."""
        settings = config.client("producer", **{"linger.ms": 5, "partitioner": "murmur2_random"})
        if config.exactly_once:
            settings["transactional.id"] = f"{config.application_id}-{process_id}"
            settings.setdefault("transaction.timeout.ms", EOS_TRANSACTION_TIMEOUT_MS)
        producer = Producer(settings)
        if config.exactly_once:
            producer.init_transactions(60)
        return cls(producer, exactly_once=config.exactly_once, application_id=config.application_id)

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int, timestamp: int,
             headers: Headers | None) -> None:
        """Hand a record to the producer (``partition`` -1: the producer's partitioner picks;
        delivery is checked at commit); while its queue is full, let it send."""
        self._check_delivery()
        self._begin()
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, partition=partition, timestamp=timestamp,
                                      headers=headers, on_delivery=self._delivered)
                break
            except BufferError:
                self.producer.poll(0.05)
            except KafkaException as e:
                if fenced(e):
                    raise Fenced(str(e)) from e
                error = e.args[0] if e.args else None
                if isinstance(error, KafkaError) and error.fatal():
                    raise
                # e.g. _UNKNOWN_TOPIC for an output topic that does not exist: say which (as Kafka does)
                raise SendFailed(f"streams {self.application_id}: sending a record to {topic} failed: "
                                 f"{error if error is not None else e}") from e
        self.dirty = True

    def poll(self) -> None:
        """Serve the producer's delivery reports and errors, without waiting."""
        self.producer.poll(0)

    def commit(self, offsets: list[TopicPartition], consumer: GroupConsumer) -> bool:
        """Make what was sent durable together with the input ``offsets`` (one transaction
        under exactly-once). False if an exactly-once commit failed: the transaction is lost
        and the tasks must be rebuilt from their changelogs."""
        try:
            if self.exactly_once:
                if offsets:
                    self._begin()
                    self.producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
                if self.in_transaction:
                    self.producer.commit_transaction(30)
                    self.in_transaction = False
            else:
                left = self.producer.flush(30)
                if left:
                    self._send_error = self._send_error or f"{left} records still undelivered after 30 s"
                self._check_delivery()
                if offsets:
                    consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            if fenced(e):
                raise Fenced(str(e)) from e
            error = e.args[0] if e.args else None
            if error is not None and hasattr(error, "fatal") and error.fatal():
                raise
            log.warning("streams %s: commit failed (%s)", self.application_id, e)
            if self.exactly_once:
                return False
        self.dirty = False
        return True

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is None:
            self.delivered[(msg.topic(), msg.partition())] = msg.offset() + 1
        elif self._send_error is None and not self.exactly_once:
            self._send_error = f"sending a record to {msg.topic()} failed: {err}"

    def _check_delivery(self) -> None:
        if self._send_error is not None:
            raise SendFailed(f"streams {self.application_id}: {self._send_error}; the input offsets are not "
                             "committed (they are processed again after a restart)")

    def abort_if_open(self) -> None:
        """Abort the open transaction, if any: its records are never read committed."""
        if self.exactly_once and self.in_transaction:
            self.in_transaction = False
            self.producer.abort_transaction(10)

    def flush(self, timeout_s: float) -> None:
        self.producer.flush(timeout_s)

    def _begin(self) -> None:
        if self.exactly_once and not self.in_transaction:
            try:
                self.producer.begin_transaction()
            except KafkaException as e:
                if fenced(e):
                    raise Fenced(str(e)) from e
                raise
            self.in_transaction = True
