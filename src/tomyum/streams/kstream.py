"""KStream: an unbounded stream of independent records, and the stateless operators on it
(Kafka Streams' ``KStream``). Every operator returns a new stream; nothing runs until a
task instantiates the built :class:`~tomyum.streams.topology.Topology`.

Serdes travel with a stream while its key (or value) type is unchanged, so that a later
store or sink can use them; operators that may change a type (``map``, ``select_key``,
``map_values``, ...) drop the corresponding serde, and the config's default applies unless
one is given again.

Operators that may change the key (``map``, ``flat_map``, ``select_key``, ``process``) mark
the stream: a stateful operator after them (``group_by_key`` and so ``group_by``, joins)
first routes the records through a repartition topic, so that all records of a key meet in
one task, as Kafka Streams does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tomyum.streams._builder import InternalBuilder
from tomyum.streams._deprecation import warn_deprecated
from tomyum.streams._joins import JoinKind
from tomyum.streams._processors import AnyRecord, BranchProcessor, StatelessProcessor
from tomyum.streams.processor import Processor
from tomyum.streams.serdes import Serde, Serdes
from tomyum.streams.topology import Materialized
from tomyum.streams.windows import JoinWindows

if TYPE_CHECKING:
    from tomyum.streams.grouped import KGroupedStream
    from tomyum.streams.ktable import KTable

K = TypeVar("K")
V = TypeVar("V")
K2 = TypeVar("K2")
V2 = TypeVar("V2")

__all__ = ["BranchedKStream", "KStream"]


class KStream(Generic[K, V]):
    def __init__(self, builder: InternalBuilder, node: str, key_serde: Serde[Any] | None,
                 value_serde: Serde[Any] | None, repartition_required: bool = False) -> None:
        self._builder = builder
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.repartition_required = repartition_required
        """True after a key-changing operator: a stateful operator repartitions first."""

    def _stateless(self, prefix: str, fn: Callable[[AnyRecord], Iterable[AnyRecord]], name: str | None, *,
                   keeps_key: bool = True, keeps_value: bool = True) -> KStream[Any, Any]:
        node = self._builder.add(prefix, lambda: StatelessProcessor(fn), [self.node], name=name)
        return KStream(self._builder, node, self.key_serde if keeps_key else None,
                       self.value_serde if keeps_value else None, self.repartition_required or not keeps_key)

    def filter(self, predicate: Callable[[K, V], bool], *, name: str | None = None) -> KStream[K, V]:
        return self._stateless("KSTREAM-FILTER", lambda r: (r,) if predicate(r.key, r.value) else (), name)

    def filter_not(self, predicate: Callable[[K, V], bool], *, name: str | None = None) -> KStream[K, V]:
        return self._stateless("KSTREAM-FILTER", lambda r: () if predicate(r.key, r.value) else (r,), name)

    def map(self, mapper: Callable[[K, V], tuple[K2, V2]], *, name: str | None = None) -> KStream[K2, V2]:
        def fn(r: AnyRecord) -> tuple[AnyRecord]:
            key, value = mapper(r.key, r.value)
            return (r.with_key(key).with_value(value),)
        return self._stateless("KSTREAM-MAP", fn, name, keeps_key=False, keeps_value=False)

    def map_values(self, mapper: Callable[[V], V2], *, name: str | None = None) -> KStream[K, V2]:
        return self._stateless("KSTREAM-MAPVALUES", lambda r: (r.with_value(mapper(r.value)),), name, keeps_value=False)

    def flat_map(self, mapper: Callable[[K, V], Iterable[tuple[K2, V2]]], *, name: str | None = None) -> KStream[K2, V2]:
        return self._stateless(
            "KSTREAM-FLATMAP", lambda r: [r.with_key(k).with_value(v) for k, v in mapper(r.key, r.value)], name,
            keeps_key=False, keeps_value=False,
        )

    def flat_map_values(self, mapper: Callable[[V], Iterable[V2]], *, name: str | None = None) -> KStream[K, V2]:
        return self._stateless(
            "KSTREAM-FLATMAPVALUES", lambda r: [r.with_value(v) for v in mapper(r.value)], name, keeps_value=False
        )

    def select_key(self, mapper: Callable[[K, V], K2], *, name: str | None = None) -> KStream[K2, V]:
        return self._stateless("KSTREAM-KEY-SELECT", lambda r: (r.with_key(mapper(r.key, r.value)),), name,
                               keeps_key=False)

    def peek(self, action: Callable[[K, V], None], *, name: str | None = None) -> KStream[K, V]:
        def fn(r: AnyRecord) -> tuple[AnyRecord]:
            action(r.key, r.value)
            return (r,)
        return self._stateless("KSTREAM-PEEK", fn, name)

    def foreach(self, action: Callable[[K, V], None], *, name: str | None = None) -> None:
        """A terminal operation: ``action`` is called for each record, nothing is forwarded."""
        def fn(r: AnyRecord) -> tuple[()]:
            action(r.key, r.value)
            return ()
        self._stateless("KSTREAM-FOREACH", fn, name)

    def process(self, supplier: Callable[[], Processor], *, stores: Sequence[str] = (),
                name: str | None = None) -> KStream[Any, Any]:
        """The Processor API: a node running a processor from ``supplier`` (called once per
        task), with access to the named stores (added with
        :meth:`~tomyum.streams.StreamsBuilder.add_state_store`) and to punctuators via
        ``context.schedule``; the returned stream carries what it forwards."""
        for name in stores:
            if name not in self._builder.topology.stores:
                raise ValueError(f"no state store named {name}; add it with add_state_store first")
        node = self._builder.add("KSTREAM-PROCESSOR", supplier, [self.node], tuple(stores), name=name)
        return KStream(self._builder, node, None, None, repartition_required=True)

    def repartition(self, *, key_serde: Serde[Any] | None = None, value_serde: Serde[Any] | None = None,
                    name: str | None = None, num_partitions: int | None = None) -> KStream[K, V]:
        """Write the stream to the internal topic ``<application.id>-<name>-repartition`` and
        read it back, partitioned by the current key (Kafka's ``repartition``):
        ``num_partitions`` defaults to the partition count of the topics upstream."""
        ks, vs = key_serde or self.key_serde, value_serde or self.value_serde
        node = self._builder.repartition(self.node, ks, vs, name, num_partitions)
        return KStream(self._builder, node, ks, vs)

    def _repartitioned(self, name: str | None = None) -> KStream[K, V]:
        """This stream, through a repartition topic if a key-changing operator came before."""
        return self.repartition(name=name) if self.repartition_required else self

    def split(self, prefix: str = "") -> BranchedKStream[K, V]:
        """Route each record to the first branch whose predicate holds (KIP-418)."""
        return BranchedKStream(self, prefix)

    def merge(self, other: KStream[K, V], *, name: str | None = None) -> KStream[K, V]:
        node = self._builder.add("KSTREAM-MERGE", lambda: StatelessProcessor(lambda r: (r,)), [self.node, other.node],
                                 name=name)
        return KStream(self._builder, node, self.key_serde, self.value_serde,
                       self.repartition_required or other.repartition_required)

    def join(self, other: KStream[K, Any] | KTable[Any, Any], joiner: Callable[[V, Any], V2],
             windows: JoinWindows | None = None, *, key_selector: Callable[[K, V], Any] | None = None,
             this_store: Materialized | None = None, other_store: Materialized | None = None,
             name: str | None = None) -> KStream[K, V2]:
        """Inner join, as Kafka's ``KStream.join``, by what ``other`` is:

        - a stream, with ``windows``: records of both sides whose timestamps are within the
          windows (see :meth:`_join_stream`); ``this_store``/``other_store`` name the buffers;
        - a table: each record with the table's current value for its key (records whose key
          is not in the table are dropped);
        - a global table, with ``key_selector``: each record with the table's value for
          ``key_selector(key, value)``.

        ``name`` names the join's processors (Kafka's ``Named`` / ``StreamJoined.withName``)."""
        return self._join_any(other, joiner, windows, "inner", key_selector, this_store, other_store, name)

    def left_join(self, other: KStream[K, Any] | KTable[Any, Any], joiner: Callable[[V, Any], V2],
                  windows: JoinWindows | None = None, *, key_selector: Callable[[K, V], Any] | None = None,
                  this_store: Materialized | None = None, other_store: Materialized | None = None,
                  name: str | None = None) -> KStream[K, V2]:
        """Left join (Kafka's ``leftJoin``), with the same forms as :meth:`join`: every record
        of this stream is kept, joined with ``None`` when it finds no partner (for a stream,
        once its window has closed)."""
        return self._join_any(other, joiner, windows, "left", key_selector, this_store, other_store, name)

    def outer_join(self, other: KStream[K, Any], joiner: Callable[[Any, Any], V2], windows: JoinWindows, *,
                   this_store: Materialized | None = None, other_store: Materialized | None = None,
                   name: str | None = None) -> KStream[K, V2]:
        """Outer stream-stream join (Kafka's ``outerJoin``): records of either side that find
        no partner are emitted with ``None`` on the other side once their window has closed."""
        return self._join_any(other, joiner, windows, "outer", None, this_store, other_store, name)

    def join_windowed(self, other: KStream[K, Any], joiner: Callable[[V, Any], V2], windows: JoinWindows, *,
                      kind: JoinKind = "inner", this_store: Materialized | None = None,
                      other_store: Materialized | None = None) -> KStream[K, V2]:
        """Deprecated: :meth:`join`, :meth:`left_join` or :meth:`outer_join` with windows."""
        warn_deprecated("KStream.join_windowed", "KStream.join / left_join / outer_join with JoinWindows")
        return self._join_stream(other, joiner, windows, kind, this_store, other_store, None)

    def join_global(self, table: KTable[Any, Any], key_selector: Callable[[K, V], Any],
                    joiner: Callable[[V, Any], V2], *, left: bool = False) -> KStream[K, V2]:
        """Deprecated: ``join(table, joiner, key_selector=...)`` or ``left_join(...)``."""
        warn_deprecated("KStream.join_global", "KStream.join / left_join with key_selector=")
        return self._join_any(table, joiner, None, "left" if left else "inner", key_selector, None, None, None)

    def _join_any(self, other: KStream[K, Any] | KTable[Any, Any], joiner: Callable[[V, Any], V2],
                  windows: JoinWindows | None, kind: JoinKind, key_selector: Callable[[K, V], Any] | None,
                  this_store: Materialized | None, other_store: Materialized | None,
                  name: str | None) -> KStream[K, V2]:
        if isinstance(other, KStream):
            if windows is None:
                raise ValueError("a stream-stream join needs JoinWindows")
            if key_selector is not None:
                raise ValueError("key_selector is for joins with a global table")
            return self._join_stream(other, joiner, windows, kind, this_store, other_store, name)
        if windows is not None or this_store is not None or other_store is not None:
            raise ValueError("windows, this_store and other_store are for stream-stream joins")
        is_global = other.store_name in self._builder.topology.global_stores
        if is_global and key_selector is None:
            raise ValueError("a join with a global table needs key_selector")
        if key_selector is not None and not is_global:
            raise ValueError("key_selector is for joins with a global table")
        if kind == "outer":
            raise ValueError("a stream-table join is inner or left")
        return self._join_table(other, joiner, kind, key_selector, name)

    def _join_stream(self, other: KStream[K, Any], joiner: Callable[[V, Any], V2], windows: JoinWindows,
                     kind: JoinKind, this_store: Materialized | None, other_store: Materialized | None,
                     name: str | None) -> KStream[K, V2]:
        """Stream-stream join (Kafka's ``join`` / ``leftJoin`` / ``outerJoin`` with
        JoinWindows). Both sides are buffered in window stores for the window plus grace;
        unmatched records of a left (outer) join are emitted with ``None`` once their window
        has closed. A joined pair carries the later of the two timestamps."""
        from tomyum.streams._joins import PassThrough, StreamStreamJoinProcessor

        if self.repartition_required or other.repartition_required:
            return self._repartitioned()._join_stream(other._repartitioned(), joiner, windows, kind, this_store,
                                                      other_store, name)
        retention = windows.before_ms + windows.after_ms + windows.grace_ms + 1
        stores = [self._builder.add_store(m, "key_value", None, None) for m in (this_store, other_store)]
        for store in stores:  # buffers: bytes in, bytes out
            spec = self._builder.topology.stores[store]
            self._builder.topology.stores[store] = dataclasses.replace(
                spec, key_serde=Serdes.bytes(), value_serde=Serdes.bytes(), retention_ms=retention)
        mine, theirs = stores
        key_serde, left_serde, right_serde = self.key_serde, self.value_serde, other.value_serde

        def side(this: str, that: str, is_left: bool) -> Callable[[], Processor]:
            return lambda: StreamStreamJoinProcessor(
                this, that, joiner, kind, is_left, windows.before_ms, windows.after_ms, windows.grace_ms,
                key_serde, left_serde if is_left else right_serde, right_serde if is_left else left_serde)

        def named(suffix: str) -> str | None:
            return None if name is None else f"{name}{suffix}"

        left = self._builder.add("KSTREAM-JOINTHIS", side(mine, theirs, True), [self.node], (mine, theirs),
                                 name=named("-this-join"))
        right = self._builder.add("KSTREAM-JOINOTHER", side(theirs, mine, False), [other.node], (mine, theirs),
                                  name=named("-other-join"))
        merged = self._builder.add("KSTREAM-MERGE", PassThrough, [left, right], name=named("-merge"))
        return KStream(self._builder, merged, self.key_serde, None)

    def _join_table(self, table: KTable[K, Any], joiner: Callable[[V, Any], V2], kind: JoinKind,
                    key_selector: Callable[[K, V], Any] | None = None, name: str | None = None) -> KStream[K, V2]:
        from tomyum.streams._joins import StreamTableJoinProcessor

        store = table.store_name
        if store is None:
            raise ValueError("join needs a materialized table (a source table or an aggregation's result)")
        if key_selector is None and self.repartition_required:
            return self._repartitioned()._join_table(table, joiner, kind, None, name)
        node = self._builder.add("KSTREAM-JOIN", lambda: StreamTableJoinProcessor(store, joiner, kind, key_selector),
                                 [self.node], (store,), name=name)
        return KStream(self._builder, node, self.key_serde, None)

    def to(self, topic: str, *, key_serde: Serde[Any] | None = None, value_serde: Serde[Any] | None = None,
           name: str | None = None) -> None:
        """Write to ``topic`` with the given serdes, else the stream's, else the defaults
        (Kafka's ``Produced``; ``name`` names the sink processor). The topic must exist: only
        internal topics are created by the application."""
        ks, vs = key_serde or self.key_serde, value_serde or self.value_serde
        self._builder.sink(self.node, topic, ks, vs, name=name)

    def group_by_key(self, *, key_serde: Serde[Any] | None = None, value_serde: Serde[Any] | None = None,
                     name: str | None = None) -> KGroupedStream[K, V]:
        """Group by the current key. After a key-changing operator the records go through
        the repartition topic ``<application.id>-<name>-repartition`` first (``name``
        generated unless given, as Kafka's ``Grouped.as``)."""
        from tomyum.streams.grouped import KGroupedStream

        ks, vs = key_serde or self.key_serde, value_serde or self.value_serde
        node = self._builder.repartition(self.node, ks, vs, name) if self.repartition_required else self.node
        return KGroupedStream(self._builder, node, ks, vs)

    def group_by(self, selector: Callable[[K, V], K2], *, key_serde: Serde[Any] | None = None,
                 value_serde: Serde[Any] | None = None, name: str | None = None) -> KGroupedStream[K2, V]:
        """Group by a new key, ``selector(key, value)``: the records are repartitioned by it
        (see :meth:`group_by_key`) so that each key lands in one task."""
        return self.select_key(selector).group_by_key(key_serde=key_serde, value_serde=value_serde or self.value_serde,
                                                      name=name)


class BranchedKStream(Generic[K, V]):
    """Built by :meth:`KStream.split`. Branch names are ``prefix + name``; unnamed branches
    are numbered from 1 in declaration order, the default branch is ``prefix + "0"``."""

    def __init__(self, stream: KStream[K, V], prefix: str) -> None:
        self._stream = stream
        self._prefix = prefix
        self._routes: list[tuple[Callable[[Any, Any], bool] | None, str]] = []
        routes = self._routes
        self._node = stream._builder.add("KSTREAM-BRANCH", lambda: BranchProcessor(list(routes)), [stream.node])
        self.branches: dict[str, KStream[K, V]] = {}

    def _add(self, predicate: Callable[[Any, Any], bool] | None, name: str) -> None:
        builder = self._stream._builder
        child = builder.add("KSTREAM-BRANCHCHILD", lambda: StatelessProcessor(lambda r: (r,)), [self._node])
        self._routes.append((predicate, child))
        self.branches[self._prefix + name] = KStream(builder, child, self._stream.key_serde, self._stream.value_serde,
                                                     self._stream.repartition_required)

    def branch(self, predicate: Callable[[K, V], bool], name: str | None = None) -> BranchedKStream[K, V]:
        self._add(predicate, name if name is not None else str(len(self._routes) + 1))
        return self

    def default_branch(self, name: str | None = None) -> dict[str, KStream[K, V]]:
        self._add(None, name if name is not None else "0")
        return self.branches

    def no_default_branch(self) -> dict[str, KStream[K, V]]:
        return self.branches
