"""The state-store seam: a small ordered bytes store, and the typed, change-logging
key-value store the DSL's processors use on top of it.

Layering follows Kafka Streams' (``MeteredKeyValueStore`` → ``ChangeLoggingKeyValueBytesStore``
→ inner bytes store): an engine (:class:`BytesStore`) only stores ordered bytes; the typed
layer applies serdes and, for every write, hands a :class:`ChangelogRecord` to the task's
changelog sink. A runtime appends those to the store's compacted changelog topic
(``<application_id>-<store>-changelog``) and, on start, replays the topic through
:meth:`KeyValueStore.restore`, which writes without logging again.

Keys order by their serialized bytes (unsigned, lexicographic), in every engine, so a range
scan returns the same thing whichever engine is underneath. Stores are not thread-safe: a
store belongs to one task, and a task runs on one thread.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from tomyum.streams._record import Headers
from tomyum.streams.serdes import Serde

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["BytesStore", "ChangelogRecord", "ChangelogSink", "KeyValueStore", "ValueAndTimestamp"]

_TIME = struct.Struct(">q")


@dataclass(frozen=True, slots=True)
class ValueAndTimestamp(Generic[V]):
    """A stored value and its timestamp (Kafka's ``ValueAndTimestamp``)."""

    value: V
    timestamp: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangelogRecord:
    """One write to a store, as its changelog topic would carry it: ``value`` is ``None``
    for a delete (a tombstone, which compaction eventually removes)."""

    store_name: str
    key: bytes
    value: bytes | None
    timestamp: int


ChangelogSink = Callable[[ChangelogRecord], None]


class BytesStore(Protocol):
    """An engine: ordered bytes keys to bytes values. ``flush`` makes every write so far
    durable (a no-op in memory); ``close`` flushes; a closed store is not used again."""

    name: str

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def range(self, lower: bytes | None, upper: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Entries with ``lower <= key <= upper`` in key order; ``None`` is unbounded."""
        ...

    def approximate_num_entries(self) -> int: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class KeyValueStore(Generic[K, V]):
    """A typed key-value store over a :class:`BytesStore`, logging every write.

    ``timestamp`` on writes is the changelog record's timestamp (the timestamp of the record
    being processed). A *timestamped* store (Kafka's ``TimestampedKeyValueStore``: the stores
    of source tables and aggregations) also keeps it with the value, for
    :meth:`get_with_timestamp`; the engine then holds ``timestamp ‖ value`` (8-byte big-endian
    timestamp first, Kafka's ``ValueAndTimestampSerializer`` layout), and so does the
    changelog, so that a restore brings the timestamps back (Kafka logs the plain value and
    puts the timestamp in the changelog record's timestamp; a producer cannot send timestamp 0
    as such, so it travels in the value here). Readers of values (``get``, ``range``, ``all``)
    never see timestamps.
    """

    def __init__(
        self,
        inner: BytesStore,
        key_serde: Serde[K],
        value_serde: Serde[V],
        changelog: ChangelogSink | None = None,
        *,
        timestamped: bool = False,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.key_serde = key_serde
        self.value_serde = value_serde
        self._changelog = changelog
        self.timestamped = timestamped

    def _plain(self, stored: bytes | None) -> bytes | None:
        """The value bytes of what the engine holds (without the timestamp)."""
        return stored[8:] if stored is not None and self.timestamped else stored

    def _key(self, key: K) -> bytes:
        data = self.key_serde.serialize(key)
        if data is None:
            raise ValueError(f"store {self.name}: a key may not be None")
        return data

    def get(self, key: K) -> V | None:
        return self.value_serde.deserialize(self._plain(self.inner.get(self._key(key))))

    def get_with_timestamp(self, key: K) -> ValueAndTimestamp[V] | None:
        """The value and its timestamp (``-1`` unless the store is timestamped)."""
        stored = self.inner.get(self._key(key))
        if stored is None:
            return None
        if not self.timestamped:
            return ValueAndTimestamp(self.value_serde.deserializer(stored), -1)
        return ValueAndTimestamp(self.value_serde.deserializer(stored[8:]), _TIME.unpack_from(stored)[0])

    def put(self, key: K, value: V | None, timestamp: int = 0) -> None:
        """Store ``value`` (``None`` deletes) and log the write."""
        key_bytes = self._key(key)
        value_bytes = self.value_serde.serialize(value)
        self.put_bytes(key_bytes, value_bytes, timestamp)

    def put_bytes(self, key: bytes, value: bytes | None, timestamp: int, headers: Headers = ()) -> None:
        """Write engine-format bytes and log them (``headers``: the written record's, which
        only a caching layer keeps, to forward with the update when it flushes)."""
        if value is not None and self.timestamped:
            value = _TIME.pack(timestamp) + value
        if value is None:
            self.inner.delete(key)
        else:
            self.inner.put(key, value)
        if self._changelog is not None:
            self._changelog(ChangelogRecord(store_name=self.name, key=key, value=value, timestamp=timestamp))

    def put_if_absent(self, key: K, value: V, timestamp: int = 0) -> V | None:
        """Store ``value`` unless the key has one; return the value that was there."""
        old = self.get(key)
        if old is None:
            self.put(key, value, timestamp)
        return old

    def delete(self, key: K, timestamp: int = 0) -> V | None:
        old = self.get(key)
        self.put(key, None, timestamp)
        return old

    def range(self, lower: K | None, upper: K | None) -> list[tuple[K, V]]:
        """Entries with ``lower <= key <= upper`` in serialized-key order."""
        low = None if lower is None else self._key(lower)
        high = None if upper is None else self._key(upper)
        return [self._decode(k, v[8:] if self.timestamped else v) for k, v in self.inner.range(low, high)]

    def all(self) -> list[tuple[K, V]]:
        return self.range(None, None)

    def _decode(self, key: bytes, value: bytes) -> tuple[K, V]:
        return self.key_serde.deserializer(key), self.value_serde.deserializer(value)

    def approximate_num_entries(self) -> int:
        return self.inner.approximate_num_entries()

    def restore(self, records: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Apply changelog records (key, value or ``None``) without logging them again."""
        for key, value in records:
            if value is None:
                self.inner.delete(key)
            else:
                self.inner.put(key, value)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()
