"""The suppression buffer (KIP-328, Kafka's ``KTableSuppressProcessor`` over its
``InMemoryTimeOrderedKeyValueChangeBuffer``): ``KTable.suppress`` holds each key's latest
update here until it is due.

The buffer lives in memory and is mirrored into an in-memory key-value store of the task,
``KTABLE-SUPPRESS-STATE-STORE-<n>`` (``<name>-store`` when the suppression is named, Kafka's
names), whose writes go to its compacted changelog ``<application_id>-<store>-changelog``
unless ``BufferConfig.with_logging_disabled()``. Every change of the buffer is one write:
an entry put or replaced is a record, an entry emitted or dropped is a tombstone — under
exactly-once in the same transaction as the outputs and input offsets, so that the changelog
holds what the buffer held at the last commit. A task that starts (after a crash, a
restart, or on another instance) restores the store from the changelog like any other and
the processor reads the buffer back from it before its first record or punctuation, so
buffered updates are neither lost nor emitted twice. (Kafka logs the dirty keys at each
flush, so it writes a key updated several times between commits once; here each update is
written.)

A changelog record is ``key -> entry``: the key is ``0x00 ‖ key`` for a plain table, and
``0x01 ‖ window start ‖ window end ‖ key`` (8-byte big-endian each) for a windowed one, the
key serialized with the table's key serde; the entry is ``buffer time ‖ sequence ‖ record
timestamp`` (8 bytes each), then the new and the prior value (each a 4-byte length, -1 for
``None``, then the bytes, serialized with the table's value serde), then the headers (a
4-byte count, then each header's name and value the same way).
"""

from __future__ import annotations

import heapq
import struct
from dataclasses import dataclass
from typing import Any

from tomyum.streams._record import Change, Headers, Record
from tomyum.streams.processor import Processor, ProcessorContext
from tomyum.streams.punctuation import PunctuationType
from tomyum.streams.serdes import Serde
from tomyum.streams.state.base import KeyValueStore
from tomyum.streams.windows import Suppressed, Window, Windowed

AnyRecord = Record[Any, Any]

_ENTRY = struct.Struct(">qqq")
_WINDOW = struct.Struct(">qq")
_LENGTH = struct.Struct(">i")


class SuppressionBufferFullError(RuntimeError):
    """A suppression buffer configured with ``shut_down_when_full()`` went over its bound
    (Kafka's ``StreamsException`` "buffer exceeded its max capacity"): the task fails."""


@dataclass(slots=True)
class _Buffered:
    time: int
    """The buffer time: the window's end, or the first buffered update's timestamp."""
    record: AnyRecord
    """The latest update, its value a ``Change``."""
    prior: Any
    """The value before the first buffered update (the emitted change's old value)."""
    size: int
    seq: int
    """Order of the first buffered update among entries of the same time."""
    key_bytes: bytes
    """The entry's key in the buffer's store and changelog."""


def _put_bytes(out: list[bytes], data: bytes | None) -> None:
    out.append(_LENGTH.pack(-1 if data is None else len(data)))
    if data is not None:
        out.append(data)


def _take_bytes(data: bytes, at: int) -> tuple[bytes | None, int]:
    (length,) = _LENGTH.unpack_from(data, at)
    at += _LENGTH.size
    if length < 0:
        return None, at
    return data[at:at + length], at + length


class BufferCodec:
    """The buffer's changelog layout (see the module docstring), over the table's serdes."""

    def __init__(self, key_serde: Serde[Any], value_serde: Serde[Any]) -> None:
        self.key_serde = key_serde
        self.value_serde = value_serde

    def encode_key(self, key: Any) -> bytes:
        if isinstance(key, Windowed):
            return b"\x01" + _WINDOW.pack(key.window.start_ms, key.window.end_ms) + self._key_bytes(key.key)
        return b"\x00" + self._key_bytes(key)

    def _key_bytes(self, key: Any) -> bytes:
        data = self.key_serde.serialize(key)
        if data is None:
            raise ValueError("a suppressed table's key may not serialize to None")
        return data

    def decode_key(self, data: bytes) -> Any:
        if data[:1] == b"\x01":
            start, end = _WINDOW.unpack_from(data, 1)
            return Windowed(self.key_serde.deserialize(data[1 + _WINDOW.size:]), Window(start, end))
        return self.key_serde.deserialize(data[1:])

    def encode_entry(self, entry: _Buffered) -> bytes:
        out = [_ENTRY.pack(entry.time, entry.seq, entry.record.timestamp)]
        _put_bytes(out, self.value_serde.serialize(entry.record.value.new_value))
        _put_bytes(out, self.value_serde.serialize(entry.prior))
        out.append(_LENGTH.pack(len(entry.record.headers)))
        for name, value in entry.record.headers:
            _put_bytes(out, name.encode())
            _put_bytes(out, value)
        return b"".join(out)

    def decode_entry(self, key_bytes: bytes, data: bytes) -> _Buffered:
        time, seq, timestamp = _ENTRY.unpack_from(data)
        new, at = _take_bytes(data, _ENTRY.size)
        prior, at = _take_bytes(data, at)
        (count,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        headers: list[tuple[str, bytes | None]] = []
        for _ in range(count):
            name, at = _take_bytes(data, at)
            value, at = _take_bytes(data, at)
            headers.append(((name or b"").decode(), value))
        record: AnyRecord = Record(key=self.decode_key(key_bytes), value=Change(self.value_serde.deserialize(new), None),
                                   timestamp=timestamp, headers=tuple(headers))
        return _Buffered(time, record, self.value_serde.deserialize(prior), 0, seq, key_bytes)


class SuppressProcessor(Processor):
    """``suppress`` (KIP-328, Kafka's ``KTableSuppressProcessor``): keeps the latest update
    per key and forwards it once stream time reaches its buffer time plus ``delay_ms``.

    - final results (``time_to_wait_ms is None``): the buffer time is the window's end and
      ``delay_ms`` the grace period (for sessions the inactivity gap plus the grace period,
      since a session can still grow until then; for sliding windows, whose end is
      inclusive, the grace period plus 1). Deletes are not emitted: a window that was never
      emitted needs no delete.
    - a time limit: the buffer time is the timestamp of the key's first buffered update and
      ``delay_ms`` the time to wait; deletes are emitted like any update.

    After each update, a buffer over its :class:`BufferConfig` bound emits its oldest
    entries early or raises :class:`SuppressionBufferFullError`.

    With ``idle_close_ms``, a wall-clock punctuator (every ``idle_close_ms``) moves this
    processor's stream time on while no update arrives: to the stream time of the last
    update plus the wall-clock time elapsed since it, once that is at least
    ``idle_close_ms`` (see :class:`~tomyum.streams.windows.Suppressed`).

    Every change of the buffer is written to the store ``store_name`` (see the module
    docstring), from which the buffer is read back when the task starts.
    """

    def __init__(self, suppressed: Suppressed, delay_ms: int, key_serde: Serde[Any] | None,
                 value_serde: Serde[Any] | None, store_name: str) -> None:
        self.final_results = suppressed.time_to_wait_ms is None
        self.delay_ms = delay_ms
        self.buffer_config = suppressed.buffer_config
        self.idle_close_ms = suppressed.idle_close_ms
        self.store_name = store_name
        self._key_serde = key_serde
        self._value_serde = value_serde
        self.observed_stream_time = -1
        self.buffer: dict[Any, _Buffered] = {}
        self._order: list[tuple[int, int, Any]] = []
        """A heap of ``(time, seq, key)``, one per entry put in the buffer; stale ones (the
        entry gone, or replaced by a newer one) are skipped as they come up."""
        self._seq = 0
        self.buffer_bytes = 0
        self._last_update_stream_time = -1
        self._last_update_wall_clock_ms = 0
        self._loaded = False

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.key_serde = self._key_serde or context.config.default_key_serde
        self.value_serde = self._value_serde or context.config.default_value_serde
        self.codec = BufferCodec(self.key_serde, self.value_serde)
        self.store: KeyValueStore[bytes, bytes] = context.get_state_store(self.store_name)
        if self.idle_close_ms is not None:
            self._last_update_wall_clock_ms = context.current_system_time_ms
            context.schedule(self.idle_close_ms, PunctuationType.WALL_CLOCK_TIME, self._close_idle_windows)

    def _load(self) -> None:
        """The buffer as the store holds it: the task restores its stores after ``init``, so
        this runs before the first record or punctuation instead."""
        self._loaded = True
        for key_bytes, data in self.store.all():
            entry = self.codec.decode_entry(key_bytes, data)
            if self.buffer_config.bytes_limit is not None:
                entry.size = self._size(entry.record.key, Change(entry.record.value.new_value, entry.prior))
            self.buffer[entry.record.key] = entry
            self.buffer_bytes += entry.size
            heapq.heappush(self._order, (entry.time, entry.seq, entry.record.key))
            self._seq = max(self._seq, entry.seq)

    def _size(self, key: Any, change: Change[Any]) -> int:
        inner, extra = (key.key, 16) if isinstance(key, Windowed) else (key, 0)
        values = (self.value_serde.serialize(v) for v in (change.new_value, change.old_value))
        return len(self.key_serde.serialize(inner) or b"") + extra + 8 + sum(len(v or b"") for v in values)

    def process(self, record: AnyRecord) -> None:
        if not self._loaded:
            self._load()
        self.observed_stream_time = max(self.observed_stream_time, record.timestamp)
        self._last_update_stream_time = self.observed_stream_time
        self._last_update_wall_clock_ms = self.context.current_system_time_ms
        change: Change[Any] = record.value
        previous = self.buffer.get(record.key)
        if previous is not None:
            self.buffer_bytes -= previous.size
        if change.new_value is None and self.final_results:
            if previous is not None:  # a window never emitted needs no delete
                del self.buffer[record.key]
                self.store.put(previous.key_bytes, None, record.timestamp)
        else:
            size = self._size(record.key, change) if self.buffer_config.bytes_limit is not None else 0
            if previous is None:
                self._seq += 1
                time = record.key.window.end_ms if self.final_results else record.timestamp
                entry = _Buffered(time, record, change.old_value, size, self._seq, self.codec.encode_key(record.key))
                heapq.heappush(self._order, (time, self._seq, record.key))
            else:  # an updated key keeps its first update's place
                entry = _Buffered(previous.time, record, previous.prior, size, previous.seq, previous.key_bytes)
            self.buffer[record.key] = entry
            self.buffer_bytes += size
            self.store.put(entry.key_bytes, self.codec.encode_entry(entry), record.timestamp)
        self._emit_due()
        self._enforce_bounds()

    def _over_bounds(self) -> bool:
        config = self.buffer_config
        return ((config.records_limit is not None and len(self.buffer) > config.records_limit)
                or (config.bytes_limit is not None and self.buffer_bytes > config.bytes_limit))

    def _enforce_bounds(self) -> None:
        if not self._over_bounds():
            return
        if self.buffer_config.shut_down:
            raise SuppressionBufferFullError(
                f"suppression buffer of {self.context.node_name} exceeded its bound: {len(self.buffer)} records "
                f"(max {self.buffer_config.records_limit}), {self.buffer_bytes} bytes "
                f"(max {self.buffer_config.bytes_limit})")
        while self._over_bounds() and self._emit_oldest(None):
            pass

    def _close_idle_windows(self, now_ms: int) -> None:
        assert self.idle_close_ms is not None
        if not self._loaded:
            self._load()
        idle_ms = now_ms - self._last_update_wall_clock_ms
        if self._last_update_stream_time < 0 or idle_ms < self.idle_close_ms:
            return
        self.observed_stream_time = max(self.observed_stream_time, self._last_update_stream_time + idle_ms)
        self._emit_due()

    def _emit_oldest(self, up_to_time: int | None) -> bool:
        """Emit the entry buffered longest (if its time is at most ``up_to_time``); False if none."""
        while self._order:
            time, seq, key = self._order[0]
            entry = self.buffer.get(key)
            if entry is None or entry.seq != seq:
                heapq.heappop(self._order)  # stale
                continue
            if up_to_time is not None and time > up_to_time:
                return False
            heapq.heappop(self._order)
            self._emit(key)
            return True
        return False

    def _emit_due(self) -> None:
        expiry = self.observed_stream_time - self.delay_ms
        while self._emit_oldest(expiry):
            pass

    def _emit(self, key: Any) -> None:
        entry = self.buffer.pop(key)
        self.buffer_bytes -= entry.size
        self.store.put(entry.key_bytes, None, entry.record.timestamp)
        self.context.forward(entry.record.with_value(Change(entry.record.value.new_value, entry.prior)))
