"""The processors behind joins with a table: stream-table (inner, left) and table-table
(inner, left, outer), as Kafka Streams joins them.

A stream-table join looks each stream record's key up in the table's store *as it is when
the record arrives* (no windowing, no waiting: a record that finds nothing is dropped by an
inner join, joined with ``None`` by a left join; table updates alone produce nothing). A
table-table join recomputes the result for a key whenever either side changes, and forwards
the change of the result (its new and old value), so the result is itself a table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from tomyum.streams._record import Change, Record
from tomyum.streams.processor import Processor
from tomyum.streams.state.base import KeyValueStore

JoinKind = Literal["inner", "left", "outer"]


class StreamTableJoinProcessor(Processor):
    def __init__(self, table_store: str, joiner: Callable[[Any, Any], Any], kind: JoinKind) -> None:
        self.table_store = table_store
        self.joiner = joiner
        self.kind = kind

    def process(self, record: Record[Any, Any]) -> None:
        if record.key is None or record.value is None:
            self.context.record_dropped("null key or value in a stream-table join", record)
            return
        store: KeyValueStore[Any, Any] = self.context.get_state_store(self.table_store)
        other = store.get(record.key)
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
