"""Window and session stores, laid over a :class:`~tomyum.streams.state.base.BytesStore`.

Key layouts follow Kafka's ``WindowKeySchema`` and ``SessionKeySchema`` so that the
changelog records mean the same thing: a window store key is ``key ‖ start`` and a session
store key is ``key ‖ end ‖ start``, timestamps as 8-byte big-endian integers (event times
are never negative, so byte order is time order). Entries older than the retention period
(``min_live = stream_time - retention_ms + 1``) are invisible to reads at once and removed
from the engine in batches. Expiry is not logged: as in Kafka, a windowed store's changelog
topic is ``cleanup.policy=compact,delete`` with a retention that covers the store's, so the
topic forgets expired windows by itself.

A window store can keep a timestamp with each value (Kafka's ``TimestampedWindowStore``):
the sliding-window aggregation, which needs each window's latest record time, switches its
store to that with :meth:`WindowStore.keep_timestamps` when it starts. The stored and
logged value is then ``timestamp ‖ value`` (8-byte big-endian timestamp first, Kafka's
``ValueAndTimestampSerializer`` layout), so restoring from the changelog brings the
timestamps back; readers of values (``fetch``, ``fetch_range``, ``all``) never see them.

Both can stand behind the record cache (:meth:`_RetainedStore.enable_cache`, Kafka's
``CachingWindowStore`` and ``CachingSessionStore``): every read and write goes through the
store's ``kv`` layer, which the cache then is.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from tomyum.streams._record import Change, Headers, Record
from tomyum.streams.serdes import Serde, Serdes
from tomyum.streams.state.base import BytesStore, ChangelogSink, KeyValueStore, ValueAndTimestamp
from tomyum.streams.state.caching import CachingRetainedKeyValue, ThreadCache
from tomyum.streams.windows import Window, Windowed

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["SessionStore", "ValueAndTimestamp", "WindowStore"]

_TIME = struct.Struct(">q")
_MAX_TIME = _TIME.pack(2**63 - 1)


class _RetainedStore(Generic[K, V]):
    """What window and session stores share: serdes, logging and retention."""

    def __init__(
        self,
        inner: BytesStore,
        key_serde: Serde[K],
        value_serde: Serde[V],
        retention_ms: int,
        changelog: ChangelogSink | None = None,
    ) -> None:
        self.name = inner.name
        self.key_serde = key_serde
        self.retention_ms = retention_ms
        self.kv: KeyValueStore[bytes, V] = KeyValueStore(inner, Serdes.bytes(), value_serde, changelog)
        self.observed_stream_time = -1
        self._next_cleanup_ms = 0

    def _key(self, key: K) -> bytes:
        data = self.key_serde.serialize(key)
        if data is None:
            raise ValueError(f"store {self.name}: a key may not be None")
        return data

    @property
    def min_live_ms(self) -> int:
        return self.observed_stream_time - self.retention_ms + 1

    def observe(self, stream_time: int) -> None:
        """Advance the store's stream time; expired entries are removed now and then."""
        self.observed_stream_time = max(self.observed_stream_time, stream_time)
        if self.observed_stream_time >= self._next_cleanup_ms:
            self._next_cleanup_ms = self.observed_stream_time + max(1, self.retention_ms // 2)
            # One millisecond kept beyond retention: a session expires (invisible to reads) one
            # millisecond before it closes, and emit-final aggregations read it when it closes.
            for composite, _ in self.kv.inner.range(None, None):
                if self._expiry_time(composite) < self.min_live_ms - 1:
                    self.kv.inner.delete(composite)

    def _expiry_time(self, composite: bytes) -> int:
        raise NotImplementedError

    def enable_cache(self, cache: ThreadCache) -> CachingRetainedKeyValue[V]:
        """Put the record cache in front of the store (before any write): see
        :class:`~tomyum.streams.state.caching.CachingRetainedKeyValue`."""
        cached = CachingRetainedKeyValue(self.kv, cache, self._cached_update)
        self.kv = cached
        return cached

    @property
    def cached(self) -> CachingRetainedKeyValue[V] | None:
        """The record cache's layer, when the store is behind the cache."""
        return self.kv if isinstance(self.kv, CachingRetainedKeyValue) else None

    def _cached_update(self, composite: bytes, new: bytes | None, old: bytes | None, timestamp: int,
                       headers: Headers) -> Record[Windowed[K], Change[V]]:
        """The update a flushed cache entry forwards."""
        raise NotImplementedError

    def restore(self, records: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Apply changelog records (composite key, value or ``None``) without logging them
        again, as :meth:`KeyValueStore.restore` does."""
        self.kv.restore(records)

    def flush(self) -> None:
        self.kv.flush()

    def close(self) -> None:
        self.kv.close()


class WindowStore(_RetainedStore[K, V]):
    """Values per (key, window start); a window is retained while its start is live."""

    def __init__(
        self,
        inner: BytesStore,
        key_serde: Serde[K],
        value_serde: Serde[V],
        *,
        window_size_ms: int,
        retention_ms: int,
        changelog: ChangelogSink | None = None,
    ) -> None:
        super().__init__(inner, key_serde, value_serde, retention_ms, changelog)
        self.window_size_ms = window_size_ms
        self.timestamped = False
        """Whether each value is stored with a timestamp (see :meth:`keep_timestamps`)."""

    def _expiry_time(self, composite: bytes) -> int:
        start: int = _TIME.unpack(composite[-8:])[0]
        return start

    def keep_timestamps(self) -> None:
        """Store a timestamp with every value from now on (call before any read or write:
        values stored without one are not readable afterwards)."""
        self.timestamped = True

    def _composite(self, key: K, window_start_ms: int) -> bytes:
        return self._key(key) + _TIME.pack(window_start_ms)

    def _decode(self, data: bytes) -> ValueAndTimestamp[V]:
        if not self.timestamped:
            return ValueAndTimestamp(self.kv.value_serde.deserializer(data), -1)
        timestamp: int = _TIME.unpack(data[:8])[0]
        return ValueAndTimestamp(self.kv.value_serde.deserializer(data[8:]), timestamp)

    def put(self, key: K, window_start_ms: int, value: V | None, timestamp: int, headers: Headers = ()) -> None:
        """Store (``None`` deletes) the value of ``key``'s window starting at
        ``window_start_ms``; a window that has already expired is not stored. ``timestamp``
        is the changelog record's and, in a timestamped store, the value's timestamp."""
        if window_start_ms < self.min_live_ms:
            return
        data = self.kv.value_serde.serialize(value)
        if data is not None and self.timestamped:
            data = _TIME.pack(timestamp) + data
        self.kv.put_bytes(self._composite(key, window_start_ms), data, timestamp, headers)

    def _cached_update(self, composite: bytes, new: bytes | None, old: bytes | None, timestamp: int,
                       headers: Headers) -> Record[Windowed[K], Change[V]]:
        start: int = _TIME.unpack(composite[-8:])[0]
        windowed = Windowed(self.key_serde.deserializer(composite[:-8]), Window(start, start + self.window_size_ms))
        change: Change[Any] = Change(None if new is None else self._decode(new).value,
                                     None if old is None else self._decode(old).value)
        return Record(key=windowed, value=change, timestamp=timestamp, headers=headers)

    def fetch(self, key: K, window_start_ms: int) -> V | None:
        found = self.fetch_with_timestamp(key, window_start_ms)
        return None if found is None else found.value

    def fetch_with_timestamp(self, key: K, window_start_ms: int) -> ValueAndTimestamp[V] | None:
        """The value and its timestamp (``-1`` unless the store keeps timestamps)."""
        if window_start_ms < self.min_live_ms:
            return None
        data = self.kv.inner.get(self._composite(key, window_start_ms))
        return None if data is None else self._decode(data)

    def fetch_range(self, key: K, time_from_ms: int, time_to_ms: int) -> list[tuple[int, V]]:
        """``(window start, value)`` of ``key``'s windows starting within the bounds."""
        return [(start, found.value) for start, found in self.fetch_range_with_timestamps(key, time_from_ms, time_to_ms)]

    def fetch_range_with_timestamps(self, key: K, time_from_ms: int,
                                    time_to_ms: int) -> list[tuple[int, ValueAndTimestamp[V]]]:
        """``fetch_range`` with each value's timestamp, in start order."""
        prefix = self._key(key)
        low = _TIME.pack(max(time_from_ms, self.min_live_ms, 0))
        found = []
        for composite, data in self.kv.inner.range(prefix + low, prefix + _TIME.pack(time_to_ms)):
            if len(composite) == len(prefix) + 8:
                found.append((self._expiry_time(composite), self._decode(data)))
        return found

    def fetch_all_ending(self, after_end_ms: int, up_to_end_ms: int) -> list[tuple[Windowed[K], ValueAndTimestamp[V]]]:
        """Every window the engine still holds whose end is in ``(after_end_ms,
        up_to_end_ms]``, expired or not (emit-final reads windows as they close, which is
        when they leave the retention period), in start then key order."""
        entries = []
        for composite, data in self.kv.inner.range(None, None):
            start = self._expiry_time(composite)
            if after_end_ms < start + self.window_size_ms <= up_to_end_ms:
                entries.append((start, composite, data))
        entries.sort()
        return [(Windowed(self.key_serde.deserializer(composite[:-8]), Window(start, start + self.window_size_ms)),
                 self._decode(data)) for start, composite, data in entries]

    def all(self) -> list[tuple[Windowed[K], V]]:
        """Every live window, in key then start order."""
        entries = []
        for composite, data in self.kv.inner.range(None, None):
            start = self._expiry_time(composite)
            if start >= self.min_live_ms:
                key = self.key_serde.deserializer(composite[:-8])
                entries.append((Windowed(key, Window(start, start + self.window_size_ms)), self._decode(data).value))
        return entries


class SessionStore(_RetainedStore[K, V]):
    """Values per (key, session); a session is retained while its end is live."""

    def _expiry_time(self, composite: bytes) -> int:
        end: int = _TIME.unpack(composite[-16:-8])[0]
        return end

    def _composite(self, session: Windowed[K]) -> bytes:
        window = session.window
        return self._key(session.key) + _TIME.pack(window.end_ms) + _TIME.pack(window.start_ms)

    def put(self, session: Windowed[K], value: V | None, timestamp: int, headers: Headers = ()) -> None:
        """Store (``None`` removes) the aggregate of one session; a session that has already
        expired (its end before :attr:`min_live_ms`) is not stored, as in Kafka — except
        for one that ends one millisecond before: it expires before it closes, so an
        emit-final aggregation still needs it (reads do not see it)."""
        if session.window.end_ms < self.min_live_ms - 1:
            return
        self.kv.put_bytes(self._composite(session), self.kv.value_serde.serialize(value), timestamp, headers)

    def _cached_update(self, composite: bytes, new: bytes | None, old: bytes | None, timestamp: int,
                       headers: Headers) -> Record[Windowed[K], Change[V]]:
        end, start = _TIME.unpack(composite[-16:-8])[0], _TIME.unpack(composite[-8:])[0]
        session = Windowed(self.key_serde.deserializer(composite[:-16]), Window(start, end))
        change = Change(self.kv.value_serde.deserialize(new), self.kv.value_serde.deserialize(old))
        return Record(key=session, value=change, timestamp=timestamp, headers=headers)

    def fetch_session(self, session: Windowed[K]) -> V | None:
        return self.kv.get(self._composite(session))

    def find_sessions(self, key: K, earliest_end_ms: int, latest_start_ms: int) -> list[tuple[Windowed[K], V]]:
        """``key``'s live sessions that end at or after ``earliest_end_ms`` and start at or
        before ``latest_start_ms``, in end order."""
        prefix = self._key(key)
        low = prefix + _TIME.pack(max(earliest_end_ms, self.min_live_ms, 0))
        found = []
        for composite, value in self.kv.range(low, prefix + _MAX_TIME + _MAX_TIME):
            if len(composite) != len(prefix) + 16:
                continue
            end, start = _TIME.unpack(composite[-16:-8])[0], _TIME.unpack(composite[-8:])[0]
            if start <= latest_start_ms:
                found.append((Windowed(key, Window(start, end)), value))
        return found

    def fetch_all_ending(self, after_end_ms: int, up_to_end_ms: int) -> list[tuple[Windowed[K], ValueAndTimestamp[V]]]:
        """Every session the engine still holds whose end is in ``(after_end_ms,
        up_to_end_ms]``, expired or not, in end then key order; each value stamped with
        its session's end."""
        entries = []
        for composite, data in self.kv.inner.range(None, None):
            end, start = _TIME.unpack(composite[-16:-8])[0], _TIME.unpack(composite[-8:])[0]
            if after_end_ms < end <= up_to_end_ms:
                entries.append((end, composite[:-16], start, data))
        entries.sort()
        return [(Windowed(self.key_serde.deserializer(key), Window(start, end)),
                 ValueAndTimestamp(self.kv.value_serde.deserializer(data), end)) for end, key, start, data in entries]

    def all(self) -> list[tuple[Windowed[K], V]]:
        """Every live session, in key then end order."""
        entries = []
        for composite, value in self.kv.all():
            end, start = _TIME.unpack(composite[-16:-8])[0], _TIME.unpack(composite[-8:])[0]
            if end >= self.min_live_ms:
                entries.append((Windowed(self.key_serde.deserializer(composite[:-16]), Window(start, end)), value))
        return entries
