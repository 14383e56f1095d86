"""The record cache (Kafka's ``ThreadCache``, ``CachingKeyValueStore``, ``CachingWindowStore``
and ``CachingSessionStore``): in front of the key-value stores of aggregations and tables,
and of the window and session stores of windowed aggregations, a cache of
``statestore.cache.max.bytes`` per instance (the test driver's or a ``KafkaStreams``'s;
Kafka's per thread) that holds each key's (window's, session's) latest write. Writes to the
same key between two flushes become one: one write to the store below (so one changelog
record) and one update forwarded downstream, ``Change(latest value, value in the store
before)``. The cache flushes every dirty entry on commit (every ``commit.interval.ms``;
after each input record in the test driver) and, when a write takes the instance's cache
over its size, the least recently written entries of the store being written, as Kafka
does — so at every commit the stores, their changelogs and what went downstream are exactly
what they are without a cache; between commits downstream sees fewer, later updates. A
delete of a key the store below does not hold is neither written nor forwarded.

An entry's size is its serialized key and value plus 8 bytes for the timestamp (Kafka adds
its own overheads, so its numbers are a little larger). With size 0 there is no cache (the
default here; Kafka's default is 10 MiB). Not thread-safe: one cache per streams thread.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tomyum.streams._record import Change, Headers, Record
from tomyum.streams.state.base import BytesStore, KeyValueStore, ValueAndTimestamp

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["CachingKeyValueStore", "CachingRetainedKeyValue", "ThreadCache"]

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


class _CacheLayer:
    """What every caching store does with its dirty entries (least recently written first)
    within the instance's budget: write, evict, flush, drop. A flushed entry is written to
    ``wrapped`` (a :class:`KeyValueStore`, so it reaches the changelog) and the update that
    :meth:`_update` makes of it goes to the flush listener."""

    wrapped: KeyValueStore[Any, Any]

    def __init__(self, cache: ThreadCache) -> None:
        self._cache = cache
        self._dirty: OrderedDict[bytes, _Entry] = OrderedDict()
        self._listener: FlushListener | None = None

    def set_flush_listener(self, listener: FlushListener) -> None:
        """Where flushed updates go (``Record(key, Change(new, old))``): the owning
        processor's ``context.forward``."""
        self._listener = listener

    def _write(self, key: bytes, value: bytes | None, timestamp: int, headers: Headers) -> None:
        """Cache the write; evict (flush) this store's oldest entries while the instance's
        cache is over its size."""
        old = self._dirty.pop(key, None)
        if old is not None:
            self._cache.size_bytes -= old.size
        entry = _Entry(value, timestamp, headers, len(key) + len(value or b"") + 8)
        self._dirty[key] = entry
        self._cache.size_bytes += entry.size
        while self._cache.size_bytes > self._cache.max_bytes and self._dirty:
            self._cache.evictions += 1
            self._flush_entry(*self._dirty.popitem(last=False))

    def _flush_entry(self, key: bytes, entry: _Entry) -> None:
        self._cache.size_bytes -= entry.size
        stored = self.wrapped.inner.get(key)
        if entry.value is None and stored is None:
            return  # nothing to delete: no write, no update
        self.wrapped.put_bytes(key, entry.value, entry.timestamp)
        if self._listener is not None:
            self._listener(self._update(key, entry, stored))

    def _update(self, key: bytes, entry: _Entry, stored: bytes | None) -> Record[Any, Any]:
        """The update a flushed entry forwards (``stored``: what the store held before)."""
        raise NotImplementedError

    def flush_cache(self) -> None:
        """Pass every dirty entry on, oldest first (what a commit does)."""
        if self._dirty:
            self._cache.flushes += 1
        while self._dirty:
            self._flush_entry(*self._dirty.popitem(last=False))

    @property
    def dirty(self) -> bool:
        return bool(self._dirty)

    def _drop(self) -> None:
        """Forget the dirty entries (the store closes without a commit)."""
        self._cache.size_bytes -= sum(entry.size for entry in self._dirty.values())
        self._dirty.clear()


class CachingKeyValueStore(_CacheLayer, Generic[K, V]):
    """A :class:`KeyValueStore` behind the record cache. Reads see the cache first; writes
    stay in it until a flush or an eviction passes them on (see the module docstring) and
    call the flush listener a processor registered with :meth:`set_flush_listener`."""

    def __init__(self, wrapped: KeyValueStore[K, V], cache: ThreadCache) -> None:
        super().__init__(cache)
        self.wrapped = wrapped
        self.name = wrapped.name
        self.key_serde = wrapped.key_serde
        self.value_serde = wrapped.value_serde
        self.timestamped = wrapped.timestamped

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
        self._write(self.wrapped._key(key), self.value_serde.serialize(value), timestamp, headers)

    def delete(self, key: K, timestamp: int = 0) -> V | None:
        old = self.get(key)
        self.put(key, None, timestamp)
        return old

    def _update(self, key: bytes, entry: _Entry, stored: bytes | None) -> Record[Any, Any]:
        change = Change(self.value_serde.deserialize(entry.value),
                        self.value_serde.deserialize(self.wrapped._plain(stored)))
        return Record(key=self.key_serde.deserializer(key), value=change, timestamp=entry.timestamp,
                      headers=entry.headers)

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
        self._drop()
        self.wrapped.close()


WindowedRecord = Callable[[bytes, bytes | None, bytes | None, int, Headers], Record[Any, Any]]
"""``(composite key, new bytes, old bytes, timestamp, headers) -> the update to forward``."""


class _CachedView:
    """The :class:`BytesStore` a caching window or session store reads: the engine with the
    cache's dirty entries over it (a dirty ``None`` hides the engine's value). Writes through
    the view (restores, retention's removals) go to the engine alone: a dirty entry of a
    window that expired meanwhile still flushes, as it would have been written without the
    cache."""

    def __init__(self, engine: BytesStore, dirty: OrderedDict[bytes, _Entry]) -> None:
        self.engine = engine
        self.name = engine.name
        self._dirty = dirty

    def get(self, key: bytes) -> bytes | None:
        entry = self._dirty.get(key)
        return self.engine.get(key) if entry is None else entry.value

    def put(self, key: bytes, value: bytes) -> None:
        self.engine.put(key, value)

    def delete(self, key: bytes) -> None:
        self.engine.delete(key)

    def range(self, lower: bytes | None, upper: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        entries: dict[bytes, bytes | None] = dict(self.engine.range(lower, upper))
        for key, entry in self._dirty.items():
            if (lower is None or key >= lower) and (upper is None or key <= upper):
                entries[key] = entry.value
        return iter([(k, v) for k, v in sorted(entries.items()) if v is not None])

    def approximate_num_entries(self) -> int:
        return self.engine.approximate_num_entries() + len(self._dirty)

    def flush(self) -> None:
        self.engine.flush()

    def close(self) -> None:
        self.engine.close()


class CachingRetainedKeyValue(_CacheLayer, KeyValueStore[bytes, V]):
    """The key-value layer of a window or session store (its ``kv``) behind the record cache
    (Kafka's ``CachingWindowStore`` / ``CachingSessionStore``): writes of the same window or
    session between two flushes become one write to the store below (one changelog record)
    and one update forwarded, ``Change(latest, value in the store before)``, built by
    ``to_record``; flushes and evictions as for :class:`CachingKeyValueStore`, so at each
    commit the store, its changelog and what went downstream equal what they are without a
    cache. A removal of a window or session the store below does not hold is neither written
    nor forwarded."""

    def __init__(self, wrapped: KeyValueStore[bytes, V], cache: ThreadCache, to_record: WindowedRecord) -> None:
        _CacheLayer.__init__(self, cache)
        KeyValueStore.__init__(self, _CachedView(wrapped.inner, self._dirty), wrapped.key_serde, wrapped.value_serde)
        self.wrapped = wrapped
        self._to_record = to_record

    def put_bytes(self, key: bytes, value: bytes | None, timestamp: int, headers: Headers = ()) -> None:
        self._write(key, value, timestamp, headers)

    def _update(self, key: bytes, entry: _Entry, stored: bytes | None) -> Record[Any, Any]:
        return self._to_record(key, entry.value, stored, entry.timestamp, entry.headers)

    def flush(self) -> None:
        self.flush_cache()
        self.wrapped.flush()

    def close(self) -> None:
        self._drop()
        self.wrapped.close()
