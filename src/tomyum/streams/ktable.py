"""KTable: a changelog stream read as a table, the latest value per key (Kafka Streams'
``KTable``). Its nodes forward :class:`~tomyum.streams.Change` values (new and old value);
``to_stream`` turns those back into plain records of the new value (``None`` for a delete).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tomyum.streams._builder import InternalBuilder
from tomyum.streams._deprecation import warn_deprecated
from tomyum.streams._joins import JoinKind
from tomyum.streams._processors import (
    StatelessProcessor,
    TableFilterProcessor,
    TableMapValuesProcessor,
    TableMaterializeProcessor,
)
from tomyum.streams._suppress import SuppressProcessor
from tomyum.streams.processor import Processor
from tomyum.streams.serdes import Serde, Serdes
from tomyum.streams.topology import Materialized, StoreSpec
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
                 suppress_delay_ms: int | None = None, window_key_serde: Serde[Any] | None = None) -> None:
        self._builder = builder
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.store_name = store_name
        """The store that holds this table (for ``get_key_value_store``), if it has one."""
        self._suppress_delay_ms = suppress_delay_ms
        self._window_key_serde = window_key_serde
        """A windowed table's record-key serde (its keys are ``Windowed``), for sizing suppression buffers."""

    def _derive(self, prefix: str, supplier: Callable[[], Processor], value_serde: Serde[Any] | None,
                name: str | None = None, materialized: Materialized | None = None) -> KTable[Any, Any]:
        """A table derived node by node; ``materialized`` stores it (with a node after
        ``name``'s, ``<name>-materialize``), so that it can be queried and joined."""
        node = self._builder.add(prefix, supplier, [self.node], name=name)
        store = None
        if materialized is not None:
            store = self._builder.add_store(materialized, "key_value", self.key_serde, value_serde, timestamped=True)
            node = self._builder.add("KTABLE-MATERIALIZE", lambda: TableMaterializeProcessor(store), [node], (store,),
                                     name=None if name is None else f"{name}-materialize")
            value_serde = materialized.value_serde or value_serde
        return KTable(self._builder, node, self.key_serde, value_serde, store_name=store,
                      suppress_delay_ms=self._suppress_delay_ms, window_key_serde=self._window_key_serde)

    def filter(self, predicate: Callable[[K, V], bool], *, materialized: Materialized | None = None,
               name: str | None = None) -> KTable[K, V]:
        """The rows that pass ``predicate``; a row that stops passing becomes a delete.
        ``materialized`` stores the result (Kafka's ``filter(predicate, Named, Materialized)``)."""
        return self._derive("KTABLE-FILTER", lambda: TableFilterProcessor(predicate, False), self.value_serde, name,
                            materialized)

    def filter_not(self, predicate: Callable[[K, V], bool], *, materialized: Materialized | None = None,
                   name: str | None = None) -> KTable[K, V]:
        return self._derive("KTABLE-FILTER", lambda: TableFilterProcessor(predicate, True), self.value_serde, name,
                            materialized)

    def map_values(self, mapper: Callable[[V], V2], *, materialized: Materialized | None = None,
                   name: str | None = None) -> KTable[K, V2]:
        """Each value through ``mapper``; give the new values' serde in ``materialized`` when
        storing them."""
        return self._derive("KTABLE-MAPVALUES", lambda: TableMapValuesProcessor(mapper), None, name, materialized)

    def suppress(self, suppressed: Suppressed, *, name: str | None = None) -> KTable[K, V]:
        """Fewer updates (see :class:`~tomyum.streams.windows.Suppressed`): final results
        (``until_window_closes``, windowed tables only: the results of ``windowed_by``
        aggregations) or each key's latest update after a time limit (``until_time_limit``)."""
        if suppressed.time_to_wait_ms is not None:
            delay = suppressed.time_to_wait_ms
        elif self._suppress_delay_ms is None:
            raise ValueError("suppress(until_window_closes) needs a windowed KTable")
        else:
            delay = self._suppress_delay_ms
        key_serde = self._window_key_serde if self._suppress_delay_ms is not None else self.key_serde
        value_serde = self.value_serde
        # Kafka's names: the node's first, then its buffer's store (``<name>-store`` when named)
        node_name = name or self._builder.new_name("KTABLE-SUPPRESS")
        store = f"{name}-store" if name is not None else self._builder.new_name("KTABLE-SUPPRESS-STATE-STORE")
        self._builder.topology.add_store(StoreSpec(
            name=store, kind="key_value", key_serde=Serdes.bytes(), value_serde=Serdes.bytes(), store_type="in_memory",
            logging_enabled=suppressed.buffer_config.logging_enabled))
        node = self._builder.add("KTABLE-SUPPRESS", lambda: SuppressProcessor(suppressed, delay, key_serde,
                                                                              value_serde, store),
                                 [self.node], (store,), name=node_name)
        return KTable(self._builder, node, self.key_serde, self.value_serde,
                      suppress_delay_ms=self._suppress_delay_ms, window_key_serde=self._window_key_serde)

    def join(self, other: KTable[Any, Any], joiner: Callable[[V, Any], V2], *,
             foreign_key: Callable[[V], Any] | None = None, materialized: Materialized | None = None,
             name: str | None = None) -> KTable[K, V2]:
        """Inner table-table join (Kafka's ``KTable.join``): a value for a key while both
        tables have one. With ``foreign_key``, a foreign-key join (see
        :meth:`_join_foreign_key`): each row with the row of ``other`` whose key is
        ``foreign_key(value)``. ``materialized`` stores the result (so it can be queried
        and joined further); ``name`` names the join's processors (Kafka's ``Named``)."""
        if foreign_key is not None:
            return self._join_foreign_key(other, foreign_key, joiner, "inner", materialized, name)
        return self._join(other, joiner, "inner", materialized, name)

    def left_join(self, other: KTable[Any, Any], joiner: Callable[[V, Any], V2], *,
                  foreign_key: Callable[[V], Any] | None = None, materialized: Materialized | None = None,
                  name: str | None = None) -> KTable[K, V2]:
        """Left table-table join: a value while this table has one (the other's or ``None``);
        ``foreign_key``, ``materialized`` and ``name`` as for :meth:`join`."""
        if foreign_key is not None:
            return self._join_foreign_key(other, foreign_key, joiner, "left", materialized, name)
        return self._join(other, joiner, "left", materialized, name)

    def outer_join(self, other: KTable[K, Any], joiner: Callable[[Any, Any], V2], *,
                   materialized: Materialized | None = None, name: str | None = None) -> KTable[K, V2]:
        """Outer table-table join: a value while either table has one; ``materialized`` and
        ``name`` as for :meth:`join`."""
        return self._join(other, joiner, "outer", materialized, name)

    def join_foreign_key(self, other: KTable[Any, Any], foreign_key: Callable[[V], Any],
                         joiner: Callable[[V, Any], V2], *, left: bool = False,
                         materialized: Materialized | None = None, name: str | None = None) -> KTable[K, V2]:
        """Deprecated: ``join(other, joiner, foreign_key=...)`` or ``left_join(...)``."""
        warn_deprecated("KTable.join_foreign_key", "KTable.join / left_join with foreign_key=")
        return self._join_foreign_key(other, foreign_key, joiner, "left" if left else "inner", materialized, name)

    def _join(self, other: KTable[K, Any], joiner: Callable[[Any, Any], V2], kind: JoinKind,
              materialized: Materialized | None, name: str | None) -> KTable[K, V2]:
        """A table-table join; each result carries the larger of the two sides' timestamps
        for the key (the changed side's alone while the other has no value), as Kafka's
        ``KTableKTableJoin`` (KIP-258)."""
        from tomyum.streams._joins import TableTableJoinProcessor

        mine, theirs = self.store_name, other.store_name
        if mine is None or theirs is None:
            raise ValueError("table-table joins need materialized tables (source tables or aggregation results)")
        b = self._builder
        result = None if materialized is None else b.add_store(materialized, "key_value", self.key_serde, None,
                                                               timestamped=True)
        left = b.add("KTABLE-JOINTHIS", lambda: TableTableJoinProcessor(theirs, joiner, kind, True),
                     [self.node], (theirs,), name=None if name is None else f"{name}-join-this")
        right = b.add("KTABLE-JOINOTHER", lambda: TableTableJoinProcessor(mine, joiner, kind, False),
                      [other.node], (mine,), name=None if name is None else f"{name}-join-other")
        merged = b.add("KTABLE-MERGE", lambda: TableMaterializeProcessor(result), [left, right],
                       () if result is None else (result,), name=name)
        return KTable(b, merged, self.key_serde, None if materialized is None else materialized.value_serde,
                      store_name=result)

    def _join_foreign_key(self, other: KTable[Any, Any], foreign_key: Callable[[V], Any],
                          joiner: Callable[[V, Any], V2], kind: JoinKind, materialized: Materialized | None,
                          name: str | None) -> KTable[K, V2]:
        """Foreign-key table-table join (KIP-213): each row of this table with the row of
        ``other`` whose key is ``foreign_key(value)``; kept up to date as rows of either side
        change (a left join keeps rows whose foreign row is missing, with ``None``).

        The two tables need not be co-partitioned: subscriptions travel to the right row's
        task through ``<application.id>-<name>-subscription-repartition`` and answers come back
        through ``<name>-response-repartition``. The result forwards old values (and can be
        queried or joined further) only when it is ``materialized`` — give the result's value
        serde there — as in Kafka."""
        from tomyum.streams._joins import (
            ForeignKeyResponseProcessor,
            ForeignKeyRightProcessor,
            ForeignKeySubscribeProcessor,
            ForeignKeySubscriptionProcessor,
            PassThrough,
        )
        from tomyum.streams.serdes import RecordTimestampExtractor, Serdes

        mine, theirs = self.store_name, other.store_name
        if mine is None or theirs is None:
            raise ValueError("foreign-key joins need materialized tables (source tables or aggregation results)")
        b = self._builder
        lk, lv, rk, rv = self.key_serde, self.value_serde, other.key_serde, other.value_serde
        prefix = name or b.new_name("KTABLE-FK-JOIN")
        result = None if materialized is None else b.add_store(materialized, "key_value", lk, None, timestamped=True)
        children: dict[str, str] = {}
        subscribe = b.add("KTABLE-FK-JOIN-SUBSCRIBE", lambda: ForeignKeySubscribeProcessor(
            foreign_key, joiner, kind, lk, lv, result, children), [self.node], () if result is None else (result,))
        subscriptions = b.repartition(subscribe, rk, Serdes.bytes(), f"{prefix}-subscription")
        children["subscribe"] = b.topology.nodes[subscribe].children[-1]
        subs = b.add_store(None, "key_value", Serdes.bytes(), Serdes.bytes())
        answer = b.add("KTABLE-FK-JOIN-SUBSCRIPTION", lambda: ForeignKeySubscriptionProcessor(theirs, subs, rk, rv),
                       [subscriptions], (theirs, subs))
        update = b.add("KTABLE-FK-JOIN-RIGHT", lambda: ForeignKeyRightProcessor(theirs, subs, rk, rv),
                       [other.node], (theirs, subs))
        responses = f"{prefix}-response-repartition"
        b.topology.repartition_topics[responses] = None
        for node in (answer, update):
            b.sink(node, responses, Serdes.bytes(), Serdes.bytes(), _to_subscriber)
        source = b.source([responses], lk, Serdes.bytes(), RecordTimestampExtractor)
        respond = b.add("KTABLE-FK-JOIN-RESPONSE",
                        lambda: ForeignKeyResponseProcessor(mine, joiner, kind, lv, rv, result), [source],
                        (mine,) if result is None else (mine, result))
        merged = b.add("KTABLE-MERGE", PassThrough, [subscribe, respond])
        children["result"] = merged
        return KTable(b, merged, self.key_serde, None if materialized is None else materialized.value_serde,
                      store_name=result)

    def group_by(self, selector: Callable[[K, V], tuple[K2, V2]], *, key_serde: Serde[Any] | None = None,
                 value_serde: Serde[Any] | None = None, name: str | None = None) -> KGroupedTable[K2, V2]:
        """Re-group the table by ``selector(key, value) -> (new key, new value)`` for
        aggregations with an adder and a subtractor. The changes go through the repartition
        topic ``<application.id>-<name>-repartition``, keyed by group, so that each group is
        aggregated in one task."""
        from tomyum.streams._processors import ChangeDecoder, ChangeEncoder, TableSelectProcessor
        from tomyum.streams.grouped import KGroupedTable
        from tomyum.streams.serdes import Serdes

        builder = self._builder
        selected = builder.add("KTABLE-SELECT", lambda: TableSelectProcessor(selector), [self.node])
        encoded = builder.add("KTABLE-CHANGE-ENCODE", lambda: ChangeEncoder(value_serde), [selected])
        source = builder.repartition(encoded, key_serde, Serdes.bytes(), name)
        decoded = builder.add("KTABLE-CHANGE-DECODE", lambda: ChangeDecoder(value_serde), [source])
        return KGroupedTable(builder, decoded, _regrouped, key_serde, value_serde)

    def to_stream(self, *, name: str | None = None) -> KStream[K, V]:
        from tomyum.streams.kstream import KStream

        node = self._builder.add("KTABLE-TOSTREAM", lambda: StatelessProcessor(lambda r: (r.with_value(r.value.new_value),)),
                                 [self.node], name=name)
        return KStream(self._builder, node, self.key_serde, self.value_serde)


def _regrouped(key: Any, value: Any) -> tuple[Any, Any]:
    """The selector after repartitioning: the records are already keyed by group."""
    return key, value


def _to_subscriber(record: Any) -> int | None:
    """A foreign-key join's answer goes back to the partition (the task) that subscribed."""
    partition: int | None = record.partition
    return partition
