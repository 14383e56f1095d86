"""A compacted topic read from the beginning into memory (Kafka's KafkaBasedLog / TopicAdmin).

Distributed workers keep their three internal topics — configs, offsets, statuses — this way: a
thread consumes every partition from the start and hands each record to a callback; writes are
produced (acks=all) and may be waited for; :meth:`KafkaBasedLog.read_to_end` blocks until every
record written before the call has been handed to the callback, which is how a worker catches
up before it acts (Kafka's ``readToEnd``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from tomyum.client._watermarks import watermark_offsets
from tomyum.connect.connector import ConnectError

log = logging.getLogger("tomyum.connect.kafka_log")

Callback = Callable[[bytes | None, bytes | None, int, int], None]


def create_compacted_topic(admin_config: Mapping[str, str], topic: str, partitions: int,
                           replication_factor: int, timeout_s: float = 30.0) -> None:
    """Create ``topic`` with ``cleanup.policy=compact`` unless it exists (Kafka's TopicAdmin);
    a replication factor of -1 takes the broker's default."""
    error = _create_topic(admin_config, topic, partitions, replication_factor, timeout_s)
    if error:
        raise ConnectError(f"Unable to create topic {topic!r} ({partitions} partitions, replication "
                           f"factor {replication_factor}): {error}")


def _create_topic(admin_config: Mapping[str, str], topic: str, partitions: int, replication_factor: int,
                  timeout_s: float) -> str | None:
    """The broker's refusal, or None; the admin client is gone when this returns (nothing of it
    kept alive by a traceback until the process exits)."""
    admin = AdminClient(dict(admin_config))
    new = NewTopic(topic, partitions, replication_factor, config={"cleanup.policy": "compact"})
    for future in admin.create_topics([new], request_timeout=timeout_s).values():
        try:
            future.result(timeout=timeout_s + 5)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                return str(e.args[0].str())
    return None


class KafkaBasedLog:
    """One internal topic: ``start()`` reads it from the beginning in a thread of its own."""

    def __init__(self, topic: str, client_config: Mapping[str, str], callback: Callback,
                 producer_config: Mapping[str, str] | None = None) -> None:
        self.topic = topic
        self.callback = callback
        self.client_config = dict(client_config)
        self.producer_config = dict(producer_config or {})
        self._positions: dict[int, int] = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kafka-log-{topic}", daemon=True)
        self._send_error: KafkaError | None = None
        # end offsets are asked by callers' threads, never through the reading consumer
        self._offsets_lock = threading.Lock()
        self._clients: _Clients | None = None  # made by start(): a log never started has none to close

    @property
    def clients(self) -> _Clients:
        if self._clients is None:
            raise ConnectError(f"The log of {self.topic} is not started")
        return self._clients

    def start(self, timeout_s: float = 30.0) -> None:
        group = {"group.id": f"tomyum-connect-{self.topic}", "enable.auto.commit": "false"}
        self._clients = _Clients(
            reader=Consumer({**self.client_config, **group, "enable.partition.eof": "true",
                             "auto.offset.reset": "earliest", "isolation.level": "read_committed"}),
            # read_committed: the end is the last stable offset, which the reader can reach
            # while a transaction (an exactly-once source task's) is still open
            offsets=Consumer({**self.client_config, **group, "isolation.level": "read_committed"}),
            producer=Producer({**self.client_config, **self.producer_config, "acks": "all",
                               "enable.idempotence": "true"}))
        self._partitions = partitions = self._partitions_of_topic(timeout_s)
        self._clients.reader.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        self._thread.start()
        self.read_to_end(timeout_s)

    def _partitions_of_topic(self, timeout_s: float) -> list[int]:
        """The topic's partitions, asked again while the broker does not list them yet (Kafka's
        brokers learn of a topic just created a moment after the controller answered), as
        Kafka's KafkaBasedLog retries ``partitionsFor``."""
        deadline = time.monotonic() + timeout_s
        while True:
            metadata = self.clients.reader.list_topics(self.topic, timeout=max(deadline - time.monotonic(), 0.1))
            topic = metadata.topics.get(self.topic)
            if topic is not None and topic.error is None and topic.partitions:
                return sorted(topic.partitions)
            if time.monotonic() > deadline:
                why = topic.error.str() if topic is not None and topic.error is not None else "no partitions"
                raise ConnectError(f"Topic {self.topic!r} is not available: {why}")
            time.sleep(0.1)  # librdkafka's retry.backoff.ms

    def _run(self) -> None:
        reader = self.clients.reader
        while not self._stopping.is_set():
            try:
                messages = reader.consume(500, 0.2)
            except RuntimeError:  # closed under us while stopping
                return
            for m in messages:
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        self._advance(int(m.partition() or 0), int(m.offset() or 0))
                    else:
                        log.warning("Error reading %s: %s", self.topic, err)
                    continue
                partition, offset = int(m.partition() or 0), int(m.offset() or 0)
                try:
                    self.callback(m.key(), m.value(), partition, offset)
                except Exception as e:  # noqa: BLE001 - a bad record must not stop the reader
                    log.error("Could not apply a record of %s at %d/%d", self.topic, partition, offset, exc_info=e)
                self._advance(partition, offset + 1)

    def _advance(self, partition: int, position: int) -> None:
        with self._cond:
            if position > self._positions.get(partition, 0):
                self._positions[partition] = position
                self._cond.notify_all()

    def end_offsets(self, timeout_s: float) -> dict[int, int]:
        out = {}
        with self._offsets_lock:
            for p in self._partitions:
                _, high = watermark_offsets(self.clients.offsets, TopicPartition(self.topic, p), timeout_s)
                out[p] = int(high)
        return out

    def read_to_end(self, timeout_s: float = 30.0) -> None:
        """Block until every record in the topic when called has reached the callback."""
        deadline = time.monotonic() + timeout_s
        ends = self.end_offsets(timeout_s)
        with self._cond:
            while any(self._positions.get(p, 0) < end for p, end in ends.items()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ConnectError(f"Timed out reading {self.topic} to its end")
                self._cond.wait(min(left, 0.5))

    def send(self, key: bytes | None, value: bytes | None) -> None:
        def delivered(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                self._send_error = err
        while True:
            try:
                self.clients.producer.produce(self.topic, key=key, value=value, on_delivery=delivered)
                break
            except BufferError:
                self.clients.producer.poll(0.1)
        self.clients.producer.poll(0)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until everything sent has been acknowledged; raise if it was not."""
        remaining = self.clients.producer.flush(timeout_s)
        error, self._send_error = self._send_error, None
        if remaining or error is not None:
            raise ConnectError(f"Failed to write to {self.topic}: {error or 'timed out'}")

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(5)
        clients, self._clients = self._clients, None
        if clients is not None:
            clients.producer.flush(5)
            clients.reader.close()
            with self._offsets_lock:
                clients.offsets.close()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Clients:
    reader: Consumer
    offsets: Consumer
    producer: Producer
