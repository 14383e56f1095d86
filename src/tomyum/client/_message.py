"""Values the client hands out: messages read, batches of them, and where a sent message landed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from confluent_kafka import Message as RdKafkaMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A record read from a partition.

    ``key`` and ``value`` are the bytes as stored (``None`` when absent: a ``None`` value is a
    tombstone). ``headers`` maps each header key to its value; when a record repeats a key, the
    last value wins. ``timestamp`` is in milliseconds since the epoch (create or log-append
    time, as the topic's ``message.timestamp.type`` says).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, bytes] = field(default_factory=dict)
    timestamp: int

    @classmethod
    def from_rdkafka(cls, m: RdKafkaMessage) -> Message:
        topic, partition, offset = m.topic(), m.partition(), m.offset()
        assert topic is not None and partition is not None and offset is not None
        headers = m.headers() or []
        pairs = headers.items() if isinstance(headers, dict) else headers
        return cls(topic=topic, partition=partition, offset=offset, key=m.key(), value=m.value(),
                   headers={k: v.encode() if isinstance(v, str) else v or b"" for k, v in pairs},
                   timestamp=m.timestamp()[1])


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """Consecutive messages of one partition, in offset order, as ``each_batch`` receives them.

    ``high_watermark`` is the partition's high watermark as of the last fetch (-1 if not known
    yet): the lag after this batch is ``high_watermark - messages[-1].offset - 1``.
    """

    topic: str
    partition: int
    high_watermark: int
    messages: tuple[Message, ...]

    def first_offset(self) -> int:
        return self.messages[0].offset

    def last_offset(self) -> int:
        return self.messages[-1].offset


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordMetadata:
    """Where the broker stored a sent message: ``send`` returns one per message, in order."""

    topic: str
    partition: int
    offset: int
    timestamp: int
