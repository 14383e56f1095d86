"""The processors behind the stateless DSL operators, and KTable's."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tomyum.streams._record import Change, Record
from tomyum.streams.processor import Processor
from tomyum.streams.state.base import KeyValueStore

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


class TableSourceProcessor(Processor):
    """Materializes a changelog topic into a KTable: upserts, deletes on ``None``, and
    forwards each ``Change``. Records with a ``None`` key are dropped."""

    def __init__(self, store_name: str) -> None:
        self.store_name = store_name

    def process(self, record: AnyRecord) -> None:
        if record.key is None:
            self.context.record_dropped("null key", record)
            return
        store: KeyValueStore[Any, Any] = self.context.get_state_store(self.store_name)
        old = store.get(record.key)
        store.put(record.key, record.value, record.timestamp)
        if old is None and record.value is None:
            return
        self.context.forward(record.with_value(Change(record.value, old)))


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
