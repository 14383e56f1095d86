"""``Producer``: ``await producer.send(topic, messages=[...])`` over a librdkafka producer.

``send`` queues every message with librdkafka, then waits in a worker thread for their
delivery reports (``flush``); it returns when the broker has acknowledged all of them with the
producer's ``acks`` (-1 by default, as in KafkaJS), or raises the first delivery error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypedDict

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException
from confluent_kafka import Message as RdKafkaMessage
from confluent_kafka import Producer as RdKafkaProducer

from tomyum.client._connection import ClientConfig, probe
from tomyum.client._errors import ClientError
from tomyum.client._message import RecordMetadata

log = logging.getLogger("tomyum.client")

Data = str | bytes | None
DeliveryCallback = Callable[[RdKafkaError | None, RdKafkaMessage | None], None]


class OutgoingMessage(TypedDict, total=False):
    """A message to send, as KafkaJS takes it. Strings are sent UTF-8 encoded. Without a
    ``partition``, the key chooses one (murmur2, as the Java client and KafkaJS do), or any
    partition when there is no key."""

    key: Data
    value: Data
    headers: Mapping[str, str | bytes]
    partition: int
    timestamp: int


def _bytes(data: Data, what: str) -> bytes | None:
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    raise TypeError(f"message {what} must be str, bytes or None, not {type(data).__name__}")


class Producer:
    """Sends messages; create with :meth:`tomyum.client.Kafka.producer`.

    ``connect`` before ``send``, ``disconnect`` at the end (it waits for anything still in
    flight). ``send`` may be awaited by several tasks at once.
    """

    def __init__(self, config: ClientConfig, settings: Mapping[str, Any]) -> None:
        self._config = config
        self._settings = config.librdkafka({"acks": "all", "partitioner": "murmur2_random"}, settings)
        self._producer: RdKafkaProducer | None = None

    async def connect(self) -> None:
        """Create the librdkafka producer and reach the cluster (raises :class:`ClientError`)."""
        if self._producer is not None:
            return
        producer = RdKafkaProducer(self._settings)
        await probe(producer.list_topics, self._config, "producer")
        self._producer = producer

    async def send(self, topic: str, messages: Sequence[OutgoingMessage]) -> list[RecordMetadata]:
        """Send ``messages`` to ``topic``; returns where each one was stored, in order, once all
        are acknowledged. Raises :class:`ClientError` if any was not delivered (librdkafka
        retries for up to ``message.timeout.ms``, five minutes unless configured)."""
        records = [self._record(m) for m in messages]
        producer = self._require()
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in records]

        def report(future: asyncio.Future[RecordMetadata], err: RdKafkaError | None,
                   msg: RdKafkaMessage | None) -> None:
            if future.done():  # the send was cancelled
                return
            if err is not None or msg is None:
                future.set_exception(ClientError(err or RdKafkaError(RdKafkaError._FAIL), f"send to {topic}"))
            else:
                future.set_result(RecordMetadata(topic=topic, partition=msg.partition() or 0,
                                                 offset=msg.offset() or 0, timestamp=msg.timestamp()[1]))

        def on_delivery(future: asyncio.Future[RecordMetadata]) -> DeliveryCallback:
            def callback(err: RdKafkaError | None, msg: RdKafkaMessage | None) -> None:
                loop.call_soon_threadsafe(report, future, err, msg)
            return callback

        await asyncio.to_thread(self._produce_and_flush, producer, topic, records,
                                [on_delivery(f) for f in futures])
        results = await asyncio.gather(*futures, return_exceptions=True)
        sent: list[RecordMetadata] = []
        for r in results:
            if isinstance(r, BaseException):
                raise r
            sent.append(r)
        return sent

    async def disconnect(self) -> None:
        """Wait up to ``connection_timeout_ms`` for messages still in flight (the rest are dropped,
        with a warning), then close the producer. Idempotent."""
        producer, self._producer = self._producer, None
        if producer is not None:
            left = await asyncio.to_thread(producer.flush, self._config.connection_timeout_ms / 1000)
            if left:
                log.warning("producer %s: %d messages were not delivered before disconnect",
                            self._config.client_id, left)
                producer.purge()
            await asyncio.to_thread(producer.close)

    def _require(self) -> RdKafkaProducer:
        if self._producer is None:
            raise RuntimeError("producer is not connected: await producer.connect() first")
        return self._producer

    @staticmethod
    def _record(m: OutgoingMessage) -> dict[str, Any]:
        record: dict[str, Any] = {"key": _bytes(m.get("key"), "key"), "value": _bytes(m.get("value"), "value")}
        if "headers" in m:
            record["headers"] = [(k, _bytes(v, f"header {k!r}")) for k, v in m["headers"].items()]
        if m.get("partition") is not None:
            record["partition"] = m["partition"]
        if m.get("timestamp") is not None:
            record["timestamp"] = m["timestamp"]
        return record

    @staticmethod
    def _produce_and_flush(producer: RdKafkaProducer, topic: str, records: Iterable[dict[str, Any]],
                           callbacks: Iterable[DeliveryCallback]) -> None:
        """In a worker thread: queue every record (waiting while librdkafka's queue is full),
        then serve delivery reports until none is outstanding."""
        for record, callback in zip(records, callbacks):
            while True:
                try:
                    producer.produce(topic, on_delivery=callback, **record)
                    break
                except BufferError:
                    producer.poll(0.1)
                except KafkaException as e:
                    callback(e.args[0], None)
                    break
        producer.flush()
