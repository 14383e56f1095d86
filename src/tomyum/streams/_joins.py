"""The processors behind joins with a table: stream-table (inner, left) and table-table
(inner, left, outer), as Kafka Streams joins them.

A stream-table join looks each stream record's key up in the table's store *as it is when
the record arrives* (no windowing, no waiting: a record that finds nothing is dropped by an
inner join, joined with ``None`` by a left join; table updates alone produce nothing). A
table-table join recomputes the result for a key whenever either side changes, and forwards
the change of the result (its new and old value), so the result is itself a table.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Literal

from tomyum.streams._record import Change, Record
from tomyum.streams.processor import Processor, ProcessorContext
from tomyum.streams.serdes import Serde
from tomyum.streams.state.base import KeyValueStore

JoinKind = Literal["inner", "left", "outer"]


class StreamTableJoinProcessor(Processor):
    """Stream-table join; with ``key_selector``, a stream-global-table join that looks the
    table up by ``key_selector(key, value)`` instead of the record's key."""

    def __init__(self, table_store: str, joiner: Callable[[Any, Any], Any], kind: JoinKind,
                 key_selector: Callable[[Any, Any], Any] | None = None) -> None:
        self.table_store = table_store
        self.joiner = joiner
        self.kind = kind
        self.key_selector = key_selector

    def process(self, record: Record[Any, Any]) -> None:
        lookup = record.key if self.key_selector is None or record.value is None else self.key_selector(
            record.key, record.value)
        if lookup is None or record.value is None:
            self.context.record_dropped("null key or value in a stream-table join", record)
            return
        store: KeyValueStore[Any, Any] = self.context.get_state_store(self.table_store)
        other = store.get(lookup)
        if other is None and self.kind == "inner":
            return
        self.context.forward(record.with_value(self.joiner(record.value, other)))


class TableTableJoinProcessor(Processor):
    """One side of a table-table join: a change on this side, joined with the other side's
    current value. ``this_is_left`` says which argument of the joiner this side's value is."""

    def __init__(self, other_store: str, joiner: Callable[[Any, Any], Any], kind: JoinKind,
                 this_is_left: bool) -> None:
        self.other_store = other_store
        self.joiner = joiner
        self.kind = kind
        self.this_is_left = this_is_left

    def _result(self, mine: Any, other: Any) -> Any:
        left, right = (mine, other) if self.this_is_left else (other, mine)
        if left is None and right is None:
            return None
        if self.kind == "inner" and (left is None or right is None):
            return None
        if self.kind == "left" and left is None:
            return None
        return self.joiner(left, right)

    def process(self, record: Record[Any, Any]) -> None:
        change: Change[Any] = record.value
        store: KeyValueStore[Any, Any] = self.context.get_state_store(self.other_store)
        other = store.get(record.key)
        new, old = self._result(change.new_value, other), self._result(change.old_value, other)
        if new is None and old is None:
            return
        self.context.forward(record.with_value(Change(new, old)))


class PassThrough(Processor):
    def process(self, record: Record[Any, Any]) -> None:
        self.context.forward(record)


class StreamStreamJoinProcessor(Processor):
    """One side of a windowed stream-stream join (Kafka's semantics since 3.1).

    Each record is buffered in this side's store, keyed ``key + timestamp + sequence``, and
    joined with every record of the other side's store for the same key whose timestamp is in
    the window. For a left or outer join, a record that never found a partner is emitted with
    ``None`` once stream time has passed its window and the grace period — never early, so no
    spurious ``(left, None)`` precedes a later match. Records older than stream time minus the
    grace period are dropped (counted)."""

    def __init__(self, this_store: str, other_store: str, joiner: Callable[[Any, Any], Any], kind: JoinKind,
                 this_is_left: bool, before_ms: int, after_ms: int, grace_ms: int,
                 key_serde: Serde[Any] | None, value_serde: Serde[Any] | None,
                 other_value_serde: Serde[Any] | None) -> None:
        self.this_store, self.other_store = this_store, other_store
        self._serdes = (key_serde, value_serde, other_value_serde)
        self.joiner, self.kind, self.this_is_left = joiner, kind, this_is_left
        # the window as seen from this side: other.ts in [ts - lower, ts + upper]
        self.lower, self.upper = (before_ms, after_ms) if this_is_left else (after_ms, before_ms)
        self.grace_ms = grace_ms
        self.emits_unmatched = kind == "outer" or (kind == "left" and this_is_left)
        self._sequence = 0

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        key, value, other = self._serdes  # the config's defaults for those not given
        self.key_serde: Serde[Any] = key or context.config.default_key_serde
        self.value_serde: Serde[Any] = value or context.config.default_value_serde
        self.other_value_serde: Serde[Any] = other or context.config.default_value_serde

    def _join(self, mine: Any, other: Any) -> Any:
        return self.joiner(mine, other) if self.this_is_left else self.joiner(other, mine)

    def process(self, record: Record[Any, Any]) -> None:
        if record.key is None or record.value is None:
            self.context.record_dropped("null key or value in a stream-stream join", record)
            return
        stream_time = self.context.stream_time_ms
        if record.timestamp < stream_time - (self.lower + self.upper) - self.grace_ms:
            self.context.record_dropped("too late for the join window", record)
            return
        mine: KeyValueStore[bytes, bytes] = self.context.get_state_store(self.this_store)
        other: KeyValueStore[bytes, bytes] = self.context.get_state_store(self.other_store)
        key = self._key_bytes(record.key)
        matched = False
        low = key + _TS.pack(max(record.timestamp - self.lower, 0)) + _SEQ.pack(0)
        high = key + _TS.pack(record.timestamp + self.upper) + _SEQ.pack(2**31 - 1)
        for composite, stored in list(other.range(low, high)):
            matched = True
            if stored[:1] == b"\0":  # the other record's first partner: it is no longer unmatched
                other.put(composite, b"\1" + stored[1:], record.timestamp)
            other_value = self.other_value_serde.deserialize(stored[1:])
            other_ts = _TS.unpack_from(composite, len(composite) - 12)[0]
            joined = record.with_value(self._join(record.value, other_value))
            self.context.forward(joined.with_timestamp(max(record.timestamp, other_ts)))  # Kafka's rule
        self._sequence += 1
        serialized = self.value_serde.serialize(record.value) or b""
        mine.put(key + _TS.pack(record.timestamp) + _SEQ.pack(self._sequence & 0x7FFFFFFF),
                 (b"\1" if matched else b"\0") + serialized, record.timestamp)
        self._expire(mine, record)
        self._expire(other, record, other_side=True)

    def _expire(self, store: KeyValueStore[bytes, bytes], trigger: Record[Any, Any], *,
                other_side: bool = False) -> None:
        """Drop buffered records whose window and grace have passed; emit the unmatched ones of
        a side that keeps them."""
        # a buffered record can still meet a partner until stream time passes its window's far
        # end (from its own side) plus the grace period
        reach = self.lower if other_side else self.upper
        horizon = self.context.stream_time_ms - reach - self.grace_ms
        emits = self.emits_unmatched if not other_side else (
            self.kind == "outer" or (self.kind == "left" and not self.this_is_left))
        for composite, stored in store.all():
            ts = _TS.unpack_from(composite, len(composite) - 12)[0]
            if ts >= horizon:
                continue
            store.delete(composite, ts)
            if emits and stored[:1] == b"\0":
                serde = self.other_value_serde if other_side else self.value_serde
                value = serde.deserialize(stored[1:])
                joined = self.joiner(value, None) if (self.this_is_left != other_side) else self.joiner(None, value)
                (n,) = _SEQ.unpack_from(composite, 0)
                key = self.key_serde.deserialize(composite[4 : 4 + n])
                self.context.forward(Record(key=key, value=joined, timestamp=ts))

    def _key_bytes(self, key: Any) -> bytes:
        """The key's bytes with their length first, so that no key is a prefix of another."""
        data = self.key_serde.serialize(key) or b""
        return _SEQ.pack(len(data)) + data


_TS, _SEQ = struct.Struct(">q"), struct.Struct(">i")


class ForeignKeyLeftProcessor(Processor):
    """The left side of a foreign-key table-table join: a left change re-subscribes its key
    to the foreign key its value now names, and forwards the joined change."""

    def __init__(self, right_store: str, subscriptions: str, extractor: Callable[[Any], Any],
                 joiner: Callable[[Any, Any], Any], kind: JoinKind, left_key_serde: Serde[Any] | None,
                 right_key_serde: Serde[Any] | None) -> None:
        self.right_store, self.subscriptions = right_store, subscriptions
        self.extractor, self.joiner, self.kind = extractor, joiner, kind
        self._serdes = (left_key_serde, right_key_serde)

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.left_key_serde: Serde[Any] = self._serdes[0] or context.config.default_key_serde
        self.right_key_serde: Serde[Any] = self._serdes[1] or context.config.default_key_serde

    def _result(self, value: Any, right: KeyValueStore[Any, Any]) -> Any:
        if value is None:
            return None
        fk = self.extractor(value)
        other = None if fk is None else right.get(fk)
        if other is None and self.kind == "inner":
            return None
        return self.joiner(value, other)

    def process(self, record: Record[Any, Any]) -> None:
        change: Change[Any] = record.value
        right: KeyValueStore[Any, Any] = self.context.get_state_store(self.right_store)
        subs: KeyValueStore[bytes, bytes] = self.context.get_state_store(self.subscriptions)
        old_fk = None if change.old_value is None else self.extractor(change.old_value)
        new_fk = None if change.new_value is None else self.extractor(change.new_value)
        left_key = self.left_key_serde.serialize(record.key) or b""
        if old_fk is not None and old_fk != new_fk:
            subs.delete(subscription(self.right_key_serde, old_fk) + left_key, record.timestamp)
        if new_fk is not None:
            subs.put(subscription(self.right_key_serde, new_fk) + left_key, b"", record.timestamp)
        new, old = self._result(change.new_value, right), self._result(change.old_value, right)
        if new is not None or old is not None:
            self.context.forward(record.with_value(Change(new, old)))


class ForeignKeyRightProcessor(Processor):
    """The right side: a change of a right row re-joins every left row that names it."""

    def __init__(self, left_store: str, subscriptions: str, joiner: Callable[[Any, Any], Any], kind: JoinKind,
                 left_key_serde: Serde[Any] | None, right_key_serde: Serde[Any] | None) -> None:
        self.left_store, self.subscriptions, self.joiner, self.kind = left_store, subscriptions, joiner, kind
        self._serdes = (left_key_serde, right_key_serde)

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.left_key_serde: Serde[Any] = self._serdes[0] or context.config.default_key_serde
        self.right_key_serde: Serde[Any] = self._serdes[1] or context.config.default_key_serde

    def process(self, record: Record[Any, Any]) -> None:
        change: Change[Any] = record.value
        left: KeyValueStore[Any, Any] = self.context.get_state_store(self.left_store)
        subs: KeyValueStore[bytes, bytes] = self.context.get_state_store(self.subscriptions)
        prefix = subscription(self.right_key_serde, record.key)
        for composite, _ in subs.range(prefix, prefix + b"\xff" * 64):
            if not composite.startswith(prefix):
                continue
            left_key = self.left_key_serde.deserialize(composite[len(prefix):])
            value = left.get(left_key)
            if value is None:
                continue
            new = None if change.new_value is None and self.kind == "inner" else self.joiner(value, change.new_value)
            old = None if change.old_value is None and self.kind == "inner" else self.joiner(value, change.old_value)
            if new is not None or old is not None:
                self.context.forward(Record(key=left_key, value=Change(new, old), timestamp=record.timestamp))


def subscription(key_serde: Serde[Any], foreign_key: Any) -> bytes:
    """The prefix of the subscriptions of one foreign key: its bytes, length first."""
    data = key_serde.serialize(foreign_key) or b""
    return _SEQ.pack(len(data)) + data
