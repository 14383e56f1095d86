"""The processors behind the stateless DSL operators, and KTable's."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

from tomyum.streams._record import Change, Record
from tomyum.streams.processor import Processor, ProcessorContext
from tomyum.streams.serdes import Serde
from tomyum.streams.state.base import KeyValueStore
from tomyum.streams.state.caching import CachingKeyValueStore
from tomyum.streams.state.versioned import PUT_RETURN_CODE_VALID_TO_UNDEFINED, VersionedKeyValueStore

AnyRecord = Record[Any, Any]


class StatelessProcessor(Processor):
    """Forwards what ``fn`` returns for each record (none, one or many records)."""

    def __init__(self, fn: Callable[[AnyRecord], Iterable[AnyRecord]]) -> None:
        self.fn = fn

    def process(self, record: AnyRecord) -> None:
        for out in self.fn(record):
            self.context.forward(out)


class BranchProcessor(Processor):
    """Sends each record to the first branch whose predicate holds (``None`` is the default
    branch, which takes everything left); a record no branch takes is dropped."""

    def __init__(self, branches: list[tuple[Callable[[Any, Any], bool] | None, str]]) -> None:
        self.branches = branches

    def process(self, record: AnyRecord) -> None:
        for predicate, child in self.branches:
            if predicate is None or predicate(record.key, record.value):
                self.context.forward(record, child)
                return


class TupleForwarder:
    """Kafka's ``TimestampedTupleForwarder``: a processor that writes a table's row and
    forwards the row's change. Behind the record cache the change is forwarded when the
    cache flushes the row (deduplicated, with the old value then in the store); otherwise
    at once."""

    def __init__(self, context: ProcessorContext, store: Any) -> None:
        self.context = context
        self.store = store
        self.cached = isinstance(store, CachingKeyValueStore)
        if isinstance(store, CachingKeyValueStore):
            store.set_flush_listener(context.forward)

    def put(self, record: AnyRecord) -> None:
        """Store ``record.value.new_value`` under ``record.key`` at ``record.timestamp`` and
        forward the record (its value a ``Change``), now or at the flush."""
        if isinstance(self.store, CachingKeyValueStore):
            self.store.put(record.key, record.value.new_value, record.timestamp, record.headers)
            return
        self.store.put(record.key, record.value.new_value, record.timestamp)
        self.context.forward(record)


class TableSourceProcessor(Processor):
    """Materializes a changelog topic into a KTable: upserts, deletes on ``None``, and
    forwards each ``Change``. Records with a ``None`` key are dropped. In a versioned store,
    an update older than the key's latest version (out of order) or than the history is
    not forwarded (Kafka's processors drop such non-latest changes, KIP-914)."""

    def __init__(self, store_name: str) -> None:
        self.store_name = store_name

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.forwarder = TupleForwarder(context, context.get_state_store(self.store_name))

    def process(self, record: AnyRecord) -> None:
        if record.key is None:
            self.context.record_dropped("null key", record)
            return
        store: KeyValueStore[Any, Any] | VersionedKeyValueStore[Any, Any] = self.context.get_state_store(
            self.store_name)
        if self.forwarder.cached:
            self.forwarder.put(record.with_value(Change(record.value, None)))
            return
        if isinstance(store, VersionedKeyValueStore):
            latest = store.get(record.key)
            old = None if latest is None else latest.value
            if store.put(record.key, record.value, record.timestamp) != PUT_RETURN_CODE_VALID_TO_UNDEFINED:
                return  # out of order (KIP-914): in the history, for temporal joins, but not forwarded
        else:
            old = store.get(record.key)
            store.put(record.key, record.value, record.timestamp)
        if old is None and record.value is None:
            return
        self.context.forward(record.with_value(Change(record.value, old)))


class TableMaterializeProcessor(Processor):
    """Stores each change's new value (``None`` deletes) with its timestamp in a table's
    store, then forwards the change: a derived table or a table-table join's result made
    queryable with ``materialized=`` (as Kafka's ``KTableFilter``/``KTableMapValues`` with
    a queryable name, and ``KTableKTableJoinMerger``, do). Without a store, it only forwards."""

    def __init__(self, store_name: str | None) -> None:
        self.store_name = store_name

    def process(self, record: AnyRecord) -> None:
        if self.store_name is not None:
            store: KeyValueStore[Any, Any] = self.context.get_state_store(self.store_name)
            store.put(record.key, record.value.new_value, record.timestamp)
        self.context.forward(record)


class TableFilterProcessor(Processor):
    """KTable.filter: a value that fails the predicate becomes a delete downstream; an update
    that is a delete both before and after filtering is not forwarded."""

    def __init__(self, predicate: Callable[[Any, Any], bool], negate: bool) -> None:
        self.predicate = predicate
        self.negate = negate

    def _keep(self, key: Any, value: Any) -> Any:
        if value is None or self.predicate(key, value) == self.negate:
            return None
        return value

    def process(self, record: AnyRecord) -> None:
        change: Change[Any] = record.value
        new, old = self._keep(record.key, change.new_value), self._keep(record.key, change.old_value)
        if new is None and old is None:
            return
        self.context.forward(record.with_value(Change(new, old)))


class TableMapValuesProcessor(Processor):
    def __init__(self, mapper: Callable[[Any], Any]) -> None:
        self.mapper = mapper

    def process(self, record: AnyRecord) -> None:
        change: Change[Any] = record.value
        new = None if change.new_value is None else self.mapper(change.new_value)
        old = None if change.old_value is None else self.mapper(change.old_value)
        self.context.forward(record.with_value(Change(new, old)))


class TableSelectProcessor(Processor):
    """KTable.group_by's first half: each change of the table, re-keyed by ``selector``. A
    value that stays in its group travels as one ``Change(new, old)``; one that moves is
    taken out of its old group (``Change(None, old)``) and put into its new one
    (``Change(new, None)``), two records that the repartition topic may send to two tasks."""

    def __init__(self, selector: Callable[[Any, Any], tuple[Any, Any]]) -> None:
        self.selector = selector

    def process(self, record: AnyRecord) -> None:
        change: Change[Any] = record.value
        new = None if change.new_value is None else self.selector(record.key, change.new_value)
        old = None if change.old_value is None else self.selector(record.key, change.old_value)
        if (new is not None and new[0] is None) or (old is not None and old[0] is None):
            self.context.record_dropped("the group_by selector returned a None key", record)
            new = None if new is None or new[0] is None else new
            old = None if old is None or old[0] is None else old
        if new is not None and old is not None and new[0] == old[0]:
            self.context.forward(record.with_key(new[0]).with_value(Change(new[1], old[1])))
            return
        if old is not None:
            self.context.forward(record.with_key(old[0]).with_value(Change(None, old[1])))
        if new is not None:
            self.context.forward(record.with_key(new[0]).with_value(Change(new[1], None)))


_LENGTH = struct.Struct(">i")


class ChangeEncoder(Processor):
    """Serializes a ``Change`` into one value for a repartition topic: for the new value and
    then the old, a 4-byte big-endian length (-1 for ``None``) and the serialized bytes."""

    def __init__(self, value_serde: Serde[Any] | None) -> None:
        self._value_serde = value_serde

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.value_serde = self._value_serde or context.config.default_value_serde

    def _part(self, value: Any) -> bytes:
        data = self.value_serde.serialize(value)
        return _LENGTH.pack(-1) if data is None else _LENGTH.pack(len(data)) + data

    def process(self, record: AnyRecord) -> None:
        change: Change[Any] = record.value
        self.context.forward(record.with_value(self._part(change.new_value) + self._part(change.old_value)))


class ChangeDecoder(ChangeEncoder):
    """Reads back what :class:`ChangeEncoder` wrote."""

    def process(self, record: AnyRecord) -> None:
        data: bytes = record.value
        parts: list[Any] = []
        at = 0
        for _ in range(2):
            (size,) = _LENGTH.unpack_from(data, at)
            at += 4
            parts.append(None if size < 0 else self.value_serde.deserialize(data[at:at + size]))
            at += max(size, 0)
        self.context.forward(record.with_value(Change(parts[0], parts[1])))
