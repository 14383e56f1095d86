"""Versioned key-value stores (KIP-889, Kafka's ``VersionedKeyValueStore``): every value a
key had, each valid from its timestamp until the next version's, so that a reader can ask
for the value *as of* a time. A versioned table's store; a stream-table join against it
reads the table as of each stream record's timestamp (KIP-914).

History retention: the store keeps its own stream time (the largest timestamp put); a
put or delete older than ``stream time - history_retention_ms`` is refused
(:data:`PUT_RETURN_CODE_NOT_PUT`), and so is a read as of such a time (``None``). A key's
versions that stopped being valid before that point are removed when the key is next
written; the latest version of a key is kept whatever its age.

Layout: the engine holds ``key ‖ timestamp`` (8-byte big-endian, so byte order is time
order, as in the window store) → ``0x01 ‖ value``, or ``0x00`` for a tombstone (a delete
is a version too: "no value from then on"). The changelog carries every put as
``key`` → ``timestamp ‖ 0x01 ‖ value`` (or ``timestamp ‖ 0x00``) — the timestamp in the
value, as the timestamped stores do, and never a null value, since a delete's time matters;
its topic is compacted with ``min.compaction.lag.ms`` = history retention + 1 day (Kafka's
setting), so the versions still in the history survive compaction. A restore replays the
puts in order.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from tomyum.streams.serdes import Serde
from tomyum.streams.state.base import BytesStore, ChangelogRecord, ChangelogSink, ValueAndTimestamp

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["PUT_RETURN_CODE_NOT_PUT", "PUT_RETURN_CODE_VALID_TO_UNDEFINED", "VersionedKeyValueStore",
           "VersionedRecord"]

PUT_RETURN_CODE_VALID_TO_UNDEFINED = -1
"""``put`` wrote the key's latest version."""
PUT_RETURN_CODE_NOT_PUT = -(2**63)
"""``put`` refused a version older than the history retention."""

_TIME = struct.Struct(">q")
_MAX_TIME = _TIME.pack(2**63 - 1)
_VALUE, _TOMBSTONE = b"\x01", b"\x00"


@dataclass(frozen=True, slots=True)
class VersionedRecord(Generic[V]):
    """One version (Kafka's ``VersionedRecord``): the value, the time it became valid, and
    the time it stopped (the next version's timestamp; ``None`` for the latest)."""

    value: V
    timestamp: int
    valid_to: int | None = None


class VersionedKeyValueStore(Generic[K, V]):
    """A typed versioned store over a :class:`BytesStore`, logging every put."""

    def __init__(self, inner: BytesStore, key_serde: Serde[K], value_serde: Serde[V], history_retention_ms: int,
                 changelog: ChangelogSink | None = None) -> None:
        if history_retention_ms < 0:
            raise ValueError(f"history_retention_ms must be at least 0, got {history_retention_ms}")
        self.inner = inner
        self.name = inner.name
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.history_retention_ms = history_retention_ms
        self.observed_stream_time = -1
        self._changelog = changelog

    def _key(self, key: K) -> bytes:
        data = self.key_serde.serialize(key)
        if data is None:
            raise ValueError(f"store {self.name}: a key may not be None")
        return data

    def _versions(self, key: bytes) -> list[tuple[int, bytes | None]]:
        """``key``'s versions in time order: (timestamp, value bytes or ``None`` for a tombstone)."""
        found = []
        for composite, data in self.inner.range(key + _TIME.pack(0), key + _MAX_TIME):
            if len(composite) == len(key) + 8:
                found.append((_TIME.unpack(composite[-8:])[0], data[1:] if data[:1] == _VALUE else None))
        return found

    @property
    def _history_start(self) -> int:
        return self.observed_stream_time - self.history_retention_ms

    def put(self, key: K, value: V | None, timestamp: int) -> int:
        """Add the version valid from ``timestamp`` (``None``: no value from then on). Returns
        its ``valid_to`` (the next version's timestamp), :data:`PUT_RETURN_CODE_VALID_TO_UNDEFINED`
        if it is the latest, or :data:`PUT_RETURN_CODE_NOT_PUT` if older than the history."""
        return self._put(self._key(key), self.value_serde.serialize(value), timestamp, log=True)

    def _put(self, key: bytes, value: bytes | None, timestamp: int, *, log: bool) -> int:
        if timestamp < self._history_start:
            return PUT_RETURN_CODE_NOT_PUT
        self.observed_stream_time = max(self.observed_stream_time, timestamp)
        stored = _TOMBSTONE if value is None else _VALUE + value
        self.inner.put(key + _TIME.pack(timestamp), stored)
        if log and self._changelog is not None:
            self._changelog(ChangelogRecord(store_name=self.name, key=key, value=_TIME.pack(timestamp) + stored,
                                            timestamp=timestamp))
        versions = self._versions(key)
        self._expire(key, versions)
        later = [t for t, _ in versions if t > timestamp]
        return later[0] if later else PUT_RETURN_CODE_VALID_TO_UNDEFINED

    def _expire(self, key: bytes, versions: list[tuple[int, bytes | None]]) -> None:
        """Remove the versions that stopped being valid before the history starts."""
        for (start, _), (valid_to, _) in zip(versions, versions[1:], strict=False):
            if valid_to > self._history_start:
                break
            self.inner.delete(key + _TIME.pack(start))

    def delete(self, key: K, timestamp: int) -> VersionedRecord[V] | None:
        """A tombstone at ``timestamp``; returns the version valid then, if any (``None``
        too when ``timestamp`` is older than the history, and nothing is deleted)."""
        if timestamp < self._history_start:
            return None
        before = self.get(key, timestamp)
        self.put(key, None, timestamp)
        return before

    def get(self, key: K, as_of_timestamp: int | None = None) -> VersionedRecord[V] | None:
        """The latest version, or the one valid at ``as_of_timestamp``: ``None`` if there is
        none, if it is a tombstone, or if ``as_of_timestamp`` is older than the history."""
        versions = self._versions(self._key(key))
        if as_of_timestamp is not None and as_of_timestamp < self._history_start:
            return None
        at = len(versions) if as_of_timestamp is None else sum(1 for t, _ in versions if t <= as_of_timestamp)
        timestamp, data = versions[at - 1] if at else (-1, None)
        if data is None:
            return None
        valid_to = versions[at][0] if at < len(versions) else None
        return VersionedRecord(self.value_serde.deserializer(data), timestamp, valid_to)

    def get_with_timestamp(self, key: K) -> ValueAndTimestamp[V] | None:
        """The latest value and its timestamp (what a table's current row is)."""
        latest = self.get(key)
        return None if latest is None else ValueAndTimestamp(latest.value, latest.timestamp)

    def restore(self, records: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Replay changelog records (see the module docstring) without logging them again."""
        for key, value in records:
            if value is not None and len(value) >= 9:
                data = value[9:] if value[8:9] == _VALUE else None
                self._put(key, data, _TIME.unpack_from(value)[0], log=False)

    def approximate_num_entries(self) -> int:
        return self.inner.approximate_num_entries()

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()
