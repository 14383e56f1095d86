"""The record that flows between processors, and the change a KTable forwards.

A :class:`Record` is immutable; operators derive new records with ``with_key`` /
``with_value`` / ``with_timestamp`` and keep the rest (headers and the source topic,
partition and offset the record was read from), as Kafka Streams' ``Record`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
K2 = TypeVar("K2")
V2 = TypeVar("V2")

Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Record(Generic[K, V]):
    """One key/value with its timestamp (ms), headers and, when read from a topic, where
    it came from (``topic``, ``partition``, ``offset``; ``None`` for derived records that
    have no single origin, such as suppressed results)."""

    key: K
    value: V
    timestamp: int
    headers: Headers = ()
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None

    def with_key(self, key: K2) -> Record[K2, V]:
        return Record(key=key, value=self.value, timestamp=self.timestamp, headers=self.headers,
                      topic=self.topic, partition=self.partition, offset=self.offset)

    def with_value(self, value: V2) -> Record[K, V2]:
        return Record(key=self.key, value=value, timestamp=self.timestamp, headers=self.headers,
                      topic=self.topic, partition=self.partition, offset=self.offset)

    def with_timestamp(self, timestamp: int) -> Record[K, V]:
        return Record(key=self.key, value=self.value, timestamp=timestamp, headers=self.headers,
                      topic=self.topic, partition=self.partition, offset=self.offset)


@dataclass(frozen=True, slots=True)
class Change(Generic[V]):
    """What a KTable forwards: the new value for a key and the one it replaces
    (``None`` for an insert; ``new_value`` is ``None`` for a delete)."""

    new_value: V | None
    old_value: V | None
