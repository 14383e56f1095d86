"""The processors behind joins with a table: stream-table (inner, left) and table-table
(inner, left, outer), as Kafka Streams joins them.

A stream-table join looks each stream record's key up in the table's store *as it is when
the record arrives* (no windowing, no waiting: a record that finds nothing is dropped by an
inner join, joined with ``None`` by a left join; table updates alone produce nothing). A
table-table join recomputes the result for a key whenever either side changes, and forwards
the change of the result (its new and old value), so the result is itself a table; each
result carries the later of the two sides' timestamps for the key.
"""

from __future__ import annotations

import hashlib
import heapq
import struct
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tomyum.streams._record import Change, Record
from tomyum.streams.processor import Processor, ProcessorContext
from tomyum.streams.serdes import Serde
from tomyum.streams.state.base import KeyValueStore
from tomyum.streams.state.versioned import VersionedKeyValueStore

JoinKind = Literal["inner", "left", "outer"]


def table_value_at(store: KeyValueStore[Any, Any] | VersionedKeyValueStore[Any, Any], key: Any, timestamp: int) -> Any:
    """A table's value for ``key`` as a stream record at ``timestamp`` sees it: the value
    valid at ``timestamp`` in a versioned table (a temporal join, KIP-914; none if older
    than its history), else the current one."""
    if isinstance(store, VersionedKeyValueStore):
        found = store.get(key, timestamp)
        return None if found is None else found.value
    return store.get(key)


class StreamTableJoinProcessor(Processor):
    """Stream-table join; with ``key_selector``, a stream-global-table join that looks the
    table up by ``key_selector(key, value)`` instead of the record's key. Against a
    versioned table, each record joins the table's value as of its timestamp."""

    def __init__(self, table_store: str, joiner: Callable[[Any, Any], Any], kind: JoinKind,
                 key_selector: Callable[[Any, Any], Any] | None = None) -> None:
        self.table_store = table_store
        self.joiner = joiner
        self.kind = kind
        self.key_selector = key_selector

    def process(self, record: Record[Any, Any]) -> None:
        lookup = record.key if self.key_selector is None or record.value is None else self.key_selector(
            record.key, record.value)
        store: KeyValueStore[Any, Any] = self.context.get_state_store(self.table_store)
        if self.kind == "left" and record.key is None and record.value is not None:
            # KIP-962 (Kafka 3.7): a left join keeps a record with a None key, joined with
            # what its lookup key finds (None without a global table's key selector)
            other = None if lookup is None else table_value_at(store, lookup, record.timestamp)
            self.context.forward(record.with_value(self.joiner(record.value, other)))
            return
        if lookup is None or record.value is None:
            self.context.record_dropped("null key or value in a stream-table join", record)
            return
        other = table_value_at(store, lookup, record.timestamp)
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
        stored = store.get_with_timestamp(record.key)
        other = None if stored is None else stored.value
        new, old = self._result(change.new_value, other), self._result(change.old_value, other)
        if new is None and old is None:
            return
        # Kafka's KTableKTableJoin: the later of the two sides' timestamps, the changed
        # side's alone while the other side has no value
        timestamp = record.timestamp if stored is None else max(record.timestamp, stored.timestamp)
        self.context.forward(record.with_value(Change(new, old)).with_timestamp(timestamp))


class PassThrough(Processor):
    def process(self, record: Record[Any, Any]) -> None:
        self.context.forward(record)


@dataclass(slots=True)
class _TimeIndex:
    entries: list[tuple[int, bytes]]
    """A heap of (timestamp, buffer key): the buffered records, oldest first."""
    sequence: int


_TIME_INDEXES: weakref.WeakKeyDictionary[Any, _TimeIndex] = weakref.WeakKeyDictionary()
_JOIN_TIMES: weakref.WeakKeyDictionary[Any, list[int]] = weakref.WeakKeyDictionary()


def _join_time(left_buffer: KeyValueStore[bytes, bytes]) -> list[int]:
    """The join's own stream time (Kafka's shared ``TimeTracker``), shared by its two
    processors of a task through the left side's buffer: the largest timestamp of the
    records that reached either side, ``[-1]`` at first."""
    tracker = _JOIN_TIMES.get(left_buffer)
    if tracker is None:
        tracker = _JOIN_TIMES[left_buffer] = [-1]
    return tracker


def _time_index(store: KeyValueStore[bytes, bytes]) -> _TimeIndex:
    """The buffer's records by time, so that expiry looks only at what expires. Built from
    the store the first time (after a restore, say), then kept up to date by the join's two
    processors of the task, which share it through the store."""
    index = _TIME_INDEXES.get(store)
    if index is None:
        entries, sequence = [], 0
        for composite, _ in store.all():
            entries.append((_TS.unpack_from(composite, len(composite) - 12)[0], composite))
            sequence = max(sequence, _SEQ.unpack_from(composite, len(composite) - 4)[0])
        heapq.heapify(entries)
        index = _TIME_INDEXES[store] = _TimeIndex(entries, sequence)
    return index


class StreamStreamJoinProcessor(Processor):
    """One side of a windowed stream-stream join (Kafka's semantics since 3.1).

    Each record is buffered in this side's store, keyed ``key + timestamp + sequence``, and
    joined with every record of the other side's store for the same key whose timestamp is in
    the window. For a left or outer join, a record that never found a partner is emitted with
    ``None`` once stream time has passed its window and the grace period — never early, so no
    spurious ``(left, None)`` precedes a later match. Records older than stream time minus the
    grace period are dropped (counted).

    Stream time here is the join's own, as Kafka's ``KStreamKStreamJoin`` keeps it: the
    largest timestamp of the records that reached the join, on either side, those with a
    ``None`` key or value included (they advance it, then are dropped — or, on a side that
    emits unmatched records, a ``None`` key with a value is emitted at once with ``None`` for
    the other side, KIP-962)."""

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
        left_buffer = self.this_store if self.this_is_left else self.other_store
        time = _join_time(self.context.get_state_store(left_buffer))
        time[0] = stream_time = max(time[0], record.timestamp)
        if self.emits_unmatched and record.key is None and record.value is not None:
            self.context.forward(record.with_value(self._join(record.value, None)))
            return
        if record.key is None or record.value is None:
            self.context.record_dropped("null key or value in a stream-stream join", record)
            return
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
        heap = _time_index(mine)
        self._sequence = max(self._sequence, heap.sequence) + 1
        heap.sequence = self._sequence
        serialized = self.value_serde.serialize(record.value) or b""
        composite = key + _TS.pack(record.timestamp) + _SEQ.pack(self._sequence & 0x7FFFFFFF)
        mine.put(composite, (b"\1" if matched else b"\0") + serialized, record.timestamp)
        heapq.heappush(heap.entries, (record.timestamp, composite))
        if record.timestamp == stream_time:  # as Kafka, only a record at stream time emits what expired
            self._expire(mine, stream_time)
            self._expire(other, stream_time, other_side=True)

    def _expire(self, store: KeyValueStore[bytes, bytes], stream_time: int, *, other_side: bool = False) -> None:
        """Drop buffered records whose window and grace have passed; emit the unmatched ones of
        a side that keeps them."""
        # a buffered record can still meet a partner until stream time passes its window's far
        # end (from its own side) plus the grace period
        reach = self.lower if other_side else self.upper
        horizon = stream_time - reach - self.grace_ms
        emits = self.emits_unmatched if not other_side else (
            self.kind == "outer" or (self.kind == "left" and not self.this_is_left))
        entries = _time_index(store).entries
        while entries and entries[0][0] < horizon:
            ts, composite = heapq.heappop(entries)
            stored = store.get(composite)
            if stored is None:
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


# Foreign-key joins (KIP-213), as Kafka runs them: the left and right tables are partitioned
# by different keys, so the two sides talk through two internal topics. A left row subscribes
# to its foreign key through the *subscription* topic (keyed by the foreign key, so it reaches
# the task holding that right row); that task keeps the subscriptions and answers through the
# *response* topic (keyed by the left key) with the right value, now and whenever the right
# row changes. A response carries a hash of the left value it answers, so that an answer to a
# left value that has changed since is dropped.

_PROPAGATE, _UNSUBSCRIBE = 0, 1
_HASH_SIZE = 16


def _digest(data: bytes | None) -> bytes:
    return hashlib.blake2b(data or b"", digest_size=_HASH_SIZE).digest()


def _emit_fk_result(context: ProcessorContext, store_name: str | None, key: Any, result: Any, timestamp: int,
                    child: str | None = None) -> None:
    """Forward a result of the join (``None`` deletes), with its old value when it is stored."""
    old = None
    if store_name is not None:
        store: KeyValueStore[Any, Any] = context.get_state_store(store_name)
        old = store.get(key)
        if result is None and old is None:
            return
        store.put(key, result, timestamp)
    context.forward(Record(key=key, value=Change(result, old), timestamp=timestamp), child)


class ForeignKeySubscribeProcessor(Processor):
    """The left side's first half: a left change (un)subscribes its key to foreign keys
    (``child_names["subscribe"]``); a left row that is deleted or names no foreign key is
    answered here (``child_names["result"]``)."""

    def __init__(self, extractor: Callable[[Any], Any], joiner: Callable[[Any, Any], Any], kind: JoinKind,
                 left_key_serde: Serde[Any] | None, left_value_serde: Serde[Any] | None, result_store: str | None,
                 child_names: dict[str, str]) -> None:
        self.extractor, self.joiner, self.kind = extractor, joiner, kind
        self._serdes = (left_key_serde, left_value_serde)
        self.result_store, self.child_names = result_store, child_names

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.left_key_serde: Serde[Any] = self._serdes[0] or context.config.default_key_serde
        self.left_value_serde: Serde[Any] = self._serdes[1] or context.config.default_value_serde

    def process(self, record: Record[Any, Any]) -> None:
        change: Change[Any] = record.value
        old_fk = None if change.old_value is None else self.extractor(change.old_value)
        new_fk = None if change.new_value is None else self.extractor(change.new_value)
        # the task's partition, where the answers must come back to (Kafka's "primary partition")
        home = _SEQ.pack(int(self.context.task_id.rsplit("_", 1)[-1]))
        left_key = home + (self.left_key_serde.serialize(record.key) or b"")
        subscribe = self.child_names["subscribe"]
        if old_fk is not None and old_fk != new_fk:
            self.context.forward(Record(key=old_fk, value=bytes((_UNSUBSCRIBE, 0)) + bytes(_HASH_SIZE) + left_key,
                                        timestamp=record.timestamp), subscribe)
        if new_fk is not None:
            # "had a result": an inner join must then answer a missing right row with a delete
            flag = 0 if change.old_value is None else 1
            digest = _digest(self.left_value_serde.serialize(change.new_value))
            self.context.forward(Record(key=new_fk, value=bytes((_PROPAGATE, flag)) + digest + left_key,
                                        timestamp=record.timestamp), subscribe)
            return
        if change.new_value is not None and self.kind == "left":
            result = self.joiner(change.new_value, None)
        elif change.old_value is None:
            return  # nothing was joined before, nothing is now
        else:
            result = None
        _emit_fk_result(self.context, self.result_store, record.key, result, record.timestamp,
                        self.child_names["result"])


class ForeignKeySubscriptionProcessor(Processor):
    """The right side, for subscriptions read from the subscription topic: keep them in the
    subscription store (``fk‖left key`` → hash) and answer with the right row as it is."""

    def __init__(self, right_store: str, subscriptions: str, right_key_serde: Serde[Any] | None,
                 right_value_serde: Serde[Any] | None) -> None:
        self.right_store, self.subscriptions = right_store, subscriptions
        self._serdes = (right_key_serde, right_value_serde)

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.right_key_serde: Serde[Any] = self._serdes[0] or context.config.default_key_serde
        self.right_value_serde: Serde[Any] = self._serdes[1] or context.config.default_value_serde

    def process(self, record: Record[Any, Any]) -> None:
        data: bytes = record.value
        instruction, flag = data[0], data[1]
        digest, home, left_key = data[2:2 + _HASH_SIZE], data[2 + _HASH_SIZE:6 + _HASH_SIZE], data[6 + _HASH_SIZE:]
        subs: KeyValueStore[bytes, bytes] = self.context.get_state_store(self.subscriptions)
        composite = subscription(self.right_key_serde, record.key) + left_key
        if instruction == _UNSUBSCRIBE:
            subs.delete(composite, record.timestamp)
            return
        subs.put(composite, digest + home, record.timestamp)
        right: KeyValueStore[Any, Any] = self.context.get_state_store(self.right_store)
        stored = right.get_with_timestamp(record.key)
        value = None if stored is None else self.right_value_serde.serialize(stored.value)
        # Kafka's SubscriptionJoinProcessor: the later of the subscription's and the right row's time
        timestamp = record.timestamp if stored is None else max(record.timestamp, stored.timestamp)
        self.context.forward(_answer(left_key, flag, digest + home, value, timestamp))


class ForeignKeyRightProcessor(ForeignKeySubscriptionProcessor):
    """The right side, for changes of the right table: answer every left row subscribed to
    the changed row (in left-key order)."""

    def process(self, record: Record[Any, Any]) -> None:
        change: Change[Any] = record.value
        subs: KeyValueStore[bytes, bytes] = self.context.get_state_store(self.subscriptions)
        prefix = subscription(self.right_key_serde, record.key)
        value = self.right_value_serde.serialize(change.new_value)
        flag = 0 if change.old_value is None else 1
        for composite, stored in subs.range(prefix, prefix + b"\xff" * 64):
            if composite.startswith(prefix):
                self.context.forward(_answer(composite[len(prefix):], flag, stored, value, record.timestamp))


def _answer(left_key: bytes, flag: int, subscribed: bytes, value: bytes | None, timestamp: int) -> Record[Any, Any]:
    """A response: keyed by the left key, to the subscriber's partition, carrying the hash
    it subscribed with and the right value."""
    size = -1 if value is None else len(value)
    (home,) = _SEQ.unpack_from(subscribed, _HASH_SIZE)
    return Record(key=left_key, value=bytes((flag,)) + subscribed[:_HASH_SIZE] + _SEQ.pack(size) + (value or b""),
                  timestamp=timestamp, partition=home)


class ForeignKeyResponseProcessor(Processor):
    """The left side's second half, for responses read from the response topic: join the
    left row with the right value if the row is still the one that subscribed."""

    def __init__(self, left_store: str, joiner: Callable[[Any, Any], Any], kind: JoinKind,
                 left_value_serde: Serde[Any] | None, right_value_serde: Serde[Any] | None,
                 result_store: str | None) -> None:
        self.left_store, self.joiner, self.kind, self.result_store = left_store, joiner, kind, result_store
        self._serdes = (left_value_serde, right_value_serde)

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.left_value_serde: Serde[Any] = self._serdes[0] or context.config.default_value_serde
        self.right_value_serde: Serde[Any] = self._serdes[1] or context.config.default_value_serde

    def process(self, record: Record[Any, Any]) -> None:
        data: bytes = record.value
        flag, digest = data[0], data[1:1 + _HASH_SIZE]
        (size,) = _SEQ.unpack_from(data, 1 + _HASH_SIZE)
        at = 5 + _HASH_SIZE
        right = None if size < 0 else self.right_value_serde.deserialize(data[at:at + size])
        left: KeyValueStore[Any, Any] = self.context.get_state_store(self.left_store)
        value = left.get(record.key)
        if value is None or _digest(self.left_value_serde.serialize(value)) != digest:
            return  # the left row changed or went since it subscribed: a newer answer is coming
        if right is not None or self.kind == "left":
            result = self.joiner(value, right)
        elif flag:
            result = None
        else:
            return
        _emit_fk_result(self.context, self.result_store, record.key, result, record.timestamp)


def subscription(key_serde: Serde[Any], foreign_key: Any) -> bytes:
    """The prefix of the subscriptions of one foreign key: its bytes, length first."""
    data = key_serde.serialize(foreign_key) or b""
    return _SEQ.pack(len(data)) + data
