"""KTable: a changelog stream read as a table, the latest value per key (Kafka Streams'
``KTable``). Its nodes forward :class:`~tomyum.streams.Change` values (new and old value);
``to_stream`` turns those back into plain records of the new value (``None`` for a delete).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tomyum.streams._aggregate import SuppressProcessor
from tomyum.streams._builder import InternalBuilder
from tomyum.streams._joins import JoinKind
from tomyum.streams._processors import StatelessProcessor, TableFilterProcessor, TableMapValuesProcessor
from tomyum.streams.processor import Processor
from tomyum.streams.serdes import Serde
from tomyum.streams.windows import Suppressed

if TYPE_CHECKING:
    from tomyum.streams.grouped import KGroupedTable
    from tomyum.streams.kstream import KStream

K = TypeVar("K")
V = TypeVar("V")
V2 = TypeVar("V2")
K2 = TypeVar("K2")

__all__ = ["KTable"]


class KTable(Generic[K, V]):
    def __init__(self, builder: InternalBuilder, node: str, key_serde: Serde[Any] | None,
                 value_serde: Serde[Any] | None, *, store_name: str | None = None,
                 suppress_delay_ms: int | None = None) -> None:
        self._builder = builder
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.store_name = store_name
        """The store that holds this table (for ``get_key_value_store``), if it has one."""
        self._suppress_delay_ms = suppress_delay_ms

    def _derive(self, prefix: str, supplier: Callable[[], Processor], value_serde: Serde[Any] | None) -> KTable[Any, Any]:
        node = self._builder.add(prefix, supplier, [self.node])
        return KTable(self._builder, node, self.key_serde, value_serde, suppress_delay_ms=self._suppress_delay_ms)

    def filter(self, predicate: Callable[[K, V], bool]) -> KTable[K, V]:
        return self._derive("KTABLE-FILTER", lambda: TableFilterProcessor(predicate, False), self.value_serde)

    def filter_not(self, predicate: Callable[[K, V], bool]) -> KTable[K, V]:
        return self._derive("KTABLE-FILTER", lambda: TableFilterProcessor(predicate, True), self.value_serde)

    def map_values(self, mapper: Callable[[V], V2]) -> KTable[K, V2]:
        return self._derive("KTABLE-MAPVALUES", lambda: TableMapValuesProcessor(mapper), None)

    def suppress(self, suppressed: Suppressed) -> KTable[K, V]:
        """Final results only: each window's last value, once, when it closes. Only for
        windowed tables (the results of ``windowed_by`` aggregations)."""
        if self._suppress_delay_ms is None:
            raise ValueError("suppress(until_window_closes) needs a windowed KTable")
        delay = self._suppress_delay_ms
        return self._derive("KTABLE-SUPPRESS", lambda: SuppressProcessor(delay, suppressed.idle_close_ms),
                            self.value_serde)

    def join(self, other: KTable[K, Any], joiner: Callable[[V, Any], V2]) -> KTable[K, V2]:
        """Inner table-table join: a value for a key while both tables have one."""
        return self._join(other, joiner, "inner")

    def left_join(self, other: KTable[K, Any], joiner: Callable[[V, Any], V2]) -> KTable[K, V2]:
        """Left table-table join: a value while this table has one (the other's or ``None``)."""
        return self._join(other, joiner, "left")

    def outer_join(self, other: KTable[K, Any], joiner: Callable[[Any, Any], V2]) -> KTable[K, V2]:
        """Outer table-table join: a value while either table has one."""
        return self._join(other, joiner, "outer")

    def _join(self, other: KTable[K, Any], joiner: Callable[[Any, Any], V2], kind: JoinKind) -> KTable[K, V2]:
        from tomyum.streams._joins import PassThrough, TableTableJoinProcessor

        mine, theirs = self.store_name, other.store_name
        if mine is None or theirs is None:
            raise ValueError("table-table joins need materialized tables (source tables or aggregation results)")
        left = self._builder.add("KTABLE-JOINTHIS", lambda: TableTableJoinProcessor(theirs, joiner, kind, True),
                                 [self.node], (theirs,))
        right = self._builder.add("KTABLE-JOINOTHER", lambda: TableTableJoinProcessor(mine, joiner, kind, False),
                                  [other.node], (mine,))
        merged = self._builder.add("KTABLE-MERGE", PassThrough, [left, right])
        return KTable(self._builder, merged, self.key_serde, None)

    def join_foreign_key(self, other: KTable[Any, Any], foreign_key: Callable[[V], Any],
                         joiner: Callable[[V, Any], V2], *, left: bool = False) -> KTable[K, V2]:
        """Foreign-key table-table join: each row of this table with the row of ``other``
        whose key is ``foreign_key(value)``; kept up to date as rows of either side change
        (``left=True`` keeps rows whose foreign row is missing, with ``None``)."""
        from tomyum.streams._joins import ForeignKeyLeftProcessor, ForeignKeyRightProcessor, PassThrough
        from tomyum.streams.serdes import Serdes

        mine, theirs = self.store_name, other.store_name
        if mine is None or theirs is None:
            raise ValueError("foreign-key joins need materialized tables (source tables or aggregation results)")
        subs = self._builder.add_store(None, "key_value", Serdes.bytes(), Serdes.bytes())
        kind: JoinKind = "left" if left else "inner"
        lk, rk = self.key_serde, other.key_serde
        this_side = self._builder.add(
            "KTABLE-FK-JOIN-SUBSCRIBE",
            lambda: ForeignKeyLeftProcessor(theirs, subs, foreign_key, joiner, kind, lk, rk), [self.node], (theirs, subs))
        that_side = self._builder.add(
            "KTABLE-FK-JOIN-RESPOND",
            lambda: ForeignKeyRightProcessor(mine, subs, joiner, kind, lk, rk), [other.node], (mine, subs))
        merged = self._builder.add("KTABLE-MERGE", PassThrough, [this_side, that_side])
        return KTable(self._builder, merged, self.key_serde, None)

    def group_by(self, selector: Callable[[K, V], tuple[K2, V2]], *, key_serde: Serde[Any] | None = None,
                 value_serde: Serde[Any] | None = None) -> KGroupedTable[K2, V2]:
        """Re-group the table by ``selector(key, value) -> (new key, new value)`` for
        aggregations with an adder and a subtractor (one task sees every key here; the runtime
        runs one task, so no repartition topic is needed yet)."""
        from tomyum.streams.grouped import KGroupedTable

        return KGroupedTable(self._builder, self.node, selector, key_serde, value_serde)

    def to_stream(self) -> KStream[K, V]:
        from tomyum.streams.kstream import KStream

        node = self._builder.add("KTABLE-TOSTREAM", lambda: StatelessProcessor(lambda r: (r.with_value(r.value.new_value),)),
                                 [self.node])
        return KStream(self._builder, node, self.key_serde, self.value_serde)
