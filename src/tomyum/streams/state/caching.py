"""The record cache (Kafka's ``ThreadCache`` and ``CachingKeyValueStore``): in front of the
key-value stores of aggregations and tables, a cache of ``statestore.cache.max.bytes`` per
instance (the test driver's or a ``KafkaStreams``'s; Kafka's per thread) that holds each
key's latest write. Writes to the same key between two flushes become one: one write to the
store below (so one changelog record) and one update forwarded downstream, ``Change(latest
value, value in the store before)``. The cache flushes every dirty entry on commit (every
``commit.interval.ms``; after each input record in the test driver) and, when a write takes
the instance's cache over its size, the least recently written entries of the store being
written, as Kafka does — so at every commit the stores, their changelogs and what went
downstream are exactly what they are without a cache; between commits downstream sees fewer,
later updates. A delete of a key the store below does not hold is neither written nor
forwarded.

An entry's size is its serialized key and value plus 8 bytes for the timestamp (Kafka adds
its own overheads, so its numbers are a little larger). With size 0 there is no cache (the
default here; Kafka's default is 10 MiB). Not thread-safe: one cache per streams thread.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tomyum.streams._record import Change, Headers, Record
from tomyum.streams.state.base import KeyValueStore, ValueAndTimestamp

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["CachingKeyValueStore", "ThreadCache"]

FlushListener = Callable[[Record[Any, Any]], None]


@dataclass(slots=True)
class _Entry:
    value: bytes | None
    timestamp: int
    headers: Headers
    size: int


class ThreadCache:
    """The byte budget the caching stores of one instance share."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"statestore.cache.max.bytes must be at least 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.size_bytes = 0
        self.evictions = 0
        self.flushes = 0


class CachingKeyValueStore(Generic[K, V]):
    """A :class:`KeyValueStore` behind the record cache. Reads see the cache first; writes
    stay in it until a flush or an eviction passes them on (see the module docstring) and
    call the flush listener a processor registered with :meth:`set_flush_listener`."""

    def __init__(self, wrapped: KeyValueStore[K, V], cache: ThreadCache) -> None:
        self.wrapped = wrapped
        self.name = wrapped.name
        self.key_serde = wrapped.key_serde
        self.value_serde = wrapped.value_serde
        self.timestamped = wrapped.timestamped
        self._cache = cache
        self._dirty: OrderedDict[bytes, _Entry] = OrderedDict()
        self._listener: FlushListener | None = None

    def set_flush_listener(self, listener: FlushListener) -> None:
        """Where flushed updates go (``Record(key, Change(new, old))``): the owning
        processor's ``context.forward``."""
        self._listener = listener

    def get(self, key: K) -> V | None:
        found = self.get_with_timestamp(key)
        return None if found is None else found.value

    def get_with_timestamp(self, key: K) -> ValueAndTimestamp[V] | None:
        entry = self._dirty.get(self.wrapped._key(key))
        if entry is None:
            return self.wrapped.get_with_timestamp(key)
        if entry.value is None:
            return None
        return ValueAndTimestamp(self.value_serde.deserializer(entry.value), entry.timestamp)

    def put(self, key: K, value: V | None, timestamp: int = 0, headers: Headers = ()) -> None:
        """Cache the write; evict (flush) this store's oldest entries while the instance's
        cache is over its size."""
        key_bytes = self.wrapped._key(key)
        value_bytes = self.value_serde.serialize(value)
        old = self._dirty.pop(key_bytes, None)
        if old is not None:
            self._cache.size_bytes -= old.size
        entry = _Entry(value_bytes, timestamp, headers, len(key_bytes) + len(value_bytes or b"") + 8)
        self._dirty[key_bytes] = entry
        self._cache.size_bytes += entry.size
        while self._cache.size_bytes > self._cache.max_bytes and self._dirty:
            self._cache.evictions += 1
            self._flush_entry(*self._dirty.popitem(last=False))

    def delete(self, key: K, timestamp: int = 0) -> V | None:
        old = self.get(key)
        self.put(key, None, timestamp)
        return old

    def _flush_entry(self, key: bytes, entry: _Entry) -> None:
        self._cache.size_bytes -= entry.size
        stored = self.wrapped.inner.get(key)
        if entry.value is None and stored is None:
            return  # nothing to delete: no write, no update
        self.wrapped.put_bytes(key, entry.value, entry.timestamp)
        if self._listener is not None:
            old = self.wrapped._plain(stored)
            change = Change(self.value_serde.deserialize(entry.value), self.value_serde.deserialize(old))
            self._listener(Record(key=self.key_serde.deserializer(key), value=change, timestamp=entry.timestamp,
                                  headers=entry.headers))

    def flush_cache(self) -> None:
        """Pass every dirty entry on, oldest first (what a commit does)."""
        if self._dirty:
            self._cache.flushes += 1
        while self._dirty:
            self._flush_entry(*self._dirty.popitem(last=False))

    @property
    def dirty(self) -> bool:
        return bool(self._dirty)

    def range(self, lower: K | None, upper: K | None) -> list[tuple[K, V]]:
        """The store below with the cache's writes over it, in serialized-key order."""
        low = None if lower is None else self.wrapped._key(lower)
        high = None if upper is None else self.wrapped._key(upper)
        entries: dict[bytes, bytes | None] = {k: self.wrapped._plain(v) for k, v in self.wrapped.inner.range(low, high)}
        for key, entry in self._dirty.items():
            if (low is None or key >= low) and (high is None or key <= high):
                entries[key] = entry.value
        return [(self.key_serde.deserializer(k), self.value_serde.deserializer(v))
                for k, v in sorted(entries.items()) if v is not None]

    def all(self) -> list[tuple[K, V]]:
        return self.range(None, None)

    def approximate_num_entries(self) -> int:
        return self.wrapped.approximate_num_entries() + len(self._dirty)

    def restore(self, records: Iterable[tuple[bytes, bytes | None]]) -> None:
        self.wrapped.restore(records)

    def flush(self) -> None:
        self.flush_cache()
        self.wrapped.flush()

    def close(self) -> None:
        self._cache.size_bytes -= sum(entry.size for entry in self._dirty.values())
        self._dirty.clear()
        self.wrapped.close()
