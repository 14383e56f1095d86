"""Grouped streams and their aggregations (Kafka Streams' ``KGroupedStream``,
``TimeWindowedKStream``, ``SessionWindowedKStream``, ``SlidingWindowedKStream``): count, reduce and aggregate, each
materialized in a state store and returned as a KTable of the running result.

Every update is forwarded, unless ``statestore_cache_max_bytes`` puts the key-value stores
of ``count`` / ``reduce`` / ``aggregate`` behind the record cache
(:mod:`tomyum.streams.state.caching`); for a windowed result's final values use
``emit_strategy(EmitStrategy.on_window_close())`` before the aggregation, or ``suppress``
after it.
"""

from __future__ import annotations

import copy as copy_module
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar, overload

from tomyum.streams._aggregate import (
    Aggregator,
    Initializer,
    Merger,
    SessionAggregateProcessor,
    SlidingWindowAggregateProcessor,
    StreamAggregateProcessor,
    WindowAggregateProcessor,
)
from tomyum.streams._builder import InternalBuilder
from tomyum.streams.ktable import KTable
from tomyum.streams.processor import Processor
from tomyum.streams.serdes import Serde, Serdes
from tomyum.streams.topology import Materialized
from tomyum.streams.windows import EmitStrategy, SessionWindows, SlidingWindows, TimeWindows, Windowed

K = TypeVar("K")
V = TypeVar("V")
A = TypeVar("A")

__all__ = [
    "KGroupedStream", "KGroupedTable", "SessionWindowedKStream", "SlidingWindowedKStream", "TimeWindowedKStream",
]


def _count_aggregator(key: Any, value: Any, agg: int) -> int:
    return agg + 1


def _reducing(reducer: Callable[[Any, Any], Any]) -> tuple[Initializer, Aggregator]:
    """reduce as aggregate: no initial value, the first value is the aggregate."""
    return (lambda: None), (lambda key, value, agg: value if agg is None else reducer(agg, value))


class _Grouped(Generic[K, V]):
    def __init__(self, builder: InternalBuilder, node: str, key_serde: Serde[Any] | None,
                 value_serde: Serde[Any] | None) -> None:
        self._builder = builder
        self._node = node
        self.key_serde = key_serde
        self.value_serde = value_serde

    def count(self, materialized: Materialized | None = None, *, name: str | None = None) -> KTable[Any, int]:
        return self._aggregate(lambda: 0, _count_aggregator, lambda k, a, b: a + b, Serdes.long(), materialized, name)

    def reduce(self, reducer: Callable[[V, V], V], materialized: Materialized | None = None, *,
               name: str | None = None) -> KTable[Any, V]:
        initializer, aggregator = _reducing(reducer)
        merger: Merger = lambda k, a, b: b if a is None else reducer(a, b)  # noqa: E731
        return self._aggregate(initializer, aggregator, merger, self.value_serde, materialized, name)

    def _aggregate(self, initializer: Initializer, aggregator: Aggregator, merger: Merger,
                   value_serde: Serde[Any] | None, materialized: Materialized | None,
                   name: str | None = None) -> KTable[Any, Any]:
        raise NotImplementedError


class KGroupedStream(_Grouped[K, V]):
    def aggregate(self, initializer: Callable[[], A], aggregator: Callable[[K, V, A], A],
                  materialized: Materialized | None = None, *, name: str | None = None) -> KTable[K, A]:
        """Fold each key's values into an aggregate, starting from ``initializer()``; give
        the aggregate's serde in ``materialized`` unless it is the default value serde."""
        return self._aggregate(initializer, aggregator, _no_merger, None, materialized, name)

    def _aggregate(self, initializer: Initializer, aggregator: Aggregator, merger: Merger,
                   value_serde: Serde[Any] | None, materialized: Materialized | None,
                   name: str | None = None) -> KTable[Any, Any]:
        store = self._builder.add_store(materialized, "key_value", self.key_serde, value_serde, timestamped=True,
                                        cacheable=True)
        node = self._builder.add(
            "KSTREAM-AGGREGATE", lambda: StreamAggregateProcessor(store, initializer, aggregator), [self._node], (store,),
            name=name,
        )
        return KTable(self._builder, node, self.key_serde, value_serde, store_name=store)

    @overload
    def windowed_by(self, windows: TimeWindows) -> TimeWindowedKStream[K, V]: ...

    @overload
    def windowed_by(self, windows: SessionWindows) -> SessionWindowedKStream[K, V]: ...

    @overload
    def windowed_by(self, windows: SlidingWindows) -> SlidingWindowedKStream[K, V]: ...

    def windowed_by(
        self, windows: TimeWindows | SessionWindows | SlidingWindows
    ) -> TimeWindowedKStream[K, V] | SessionWindowedKStream[K, V] | SlidingWindowedKStream[K, V]:
        if isinstance(windows, TimeWindows):
            return TimeWindowedKStream(self._builder, self._node, self.key_serde, self.value_serde, windows)
        if isinstance(windows, SlidingWindows):
            return SlidingWindowedKStream(self._builder, self._node, self.key_serde, self.value_serde, windows)
        return SessionWindowedKStream(self._builder, self._node, self.key_serde, self.value_serde, windows)


W = TypeVar("W", "TimeWindowedKStream[Any, Any]", "SessionWindowedKStream[Any, Any]")


def _with_emit_strategy(windowed: W, strategy: EmitStrategy) -> W:
    copy = copy_module.copy(windowed)
    copy._emit_final = strategy.on_close
    return copy


def _no_merger(key: Any, a: Any, b: Any) -> Any:
    raise AssertionError("merger used outside session windows")


class TimeWindowedKStream(_Grouped[K, V]):
    """Aggregations per key and time window; results are keyed by ``Windowed[K]``."""

    _processor: ClassVar[Callable[..., Processor]] = WindowAggregateProcessor
    _closes_after_ms: ClassVar[int] = 0
    """How long after ``end + grace`` (in stream time) a window's result is final."""

    def __init__(self, builder: InternalBuilder, node: str, key_serde: Serde[Any] | None,
                 value_serde: Serde[Any] | None, windows: TimeWindows | SlidingWindows) -> None:
        super().__init__(builder, node, key_serde, value_serde)
        self.windows = windows
        self._emit_final = False

    def emit_strategy(self, strategy: EmitStrategy) -> TimeWindowedKStream[K, V]:
        """When the aggregation forwards results (KIP-825): every update
        (``EmitStrategy.on_window_update()``, the default) or each window's final result
        once it closes (``EmitStrategy.on_window_close()``)."""
        return _with_emit_strategy(self, strategy)

    def aggregate(self, initializer: Callable[[], A], aggregator: Callable[[K, V, A], A],
                  materialized: Materialized | None = None, *,
                  name: str | None = None) -> KTable[Windowed[K], A]:
        return self._aggregate(initializer, aggregator, _no_merger, None, materialized, name)

    def _aggregate(self, initializer: Initializer, aggregator: Aggregator, merger: Merger,
                   value_serde: Serde[Any] | None, materialized: Materialized | None,
                   name: str | None = None) -> KTable[Any, Any]:
        windows, processor, emit_final = self.windows, type(self)._processor, self._emit_final
        store = self._builder.add_store(materialized, "window", self.key_serde, value_serde,
                                        window_size_ms=windows.size_ms, retention_ms=windows.retention_ms,
                                        cacheable=True)
        node = self._builder.add(
            "KSTREAM-AGGREGATE", lambda: processor(store, windows, initializer, aggregator, emit_final=emit_final),
            [self._node], (store,), name=name,
        )
        return KTable(self._builder, node, None, value_serde, store_name=store,
                      suppress_delay_ms=windows.grace_ms + self._closes_after_ms, window_key_serde=self.key_serde)


class SlidingWindowedKStream(TimeWindowedKStream[K, V]):
    """Aggregations per key and sliding window (KIP-450); results are keyed by
    ``Windowed[K]`` with windows ``[start, start + time_difference_ms]``, both ends included
    (``Serdes.time_windowed(inner, time_difference_ms)`` reads them back from a topic).
    The window store keeps each window with its latest record time and retains windows for
    :attr:`SlidingWindows.retention_ms`."""

    _processor = SlidingWindowAggregateProcessor
    # The end is inclusive: a window is still open at stream time end + grace, and closes (so
    # its result is final) one millisecond later.
    _closes_after_ms = 1


class SessionWindowedKStream(_Grouped[K, V]):
    """Aggregations per key and session; ``aggregate`` needs a merger for when a record
    joins two sessions into one."""

    def __init__(self, builder: InternalBuilder, node: str, key_serde: Serde[Any] | None,
                 value_serde: Serde[Any] | None, windows: SessionWindows) -> None:
        super().__init__(builder, node, key_serde, value_serde)
        self.windows = windows
        self._emit_final = False

    def emit_strategy(self, strategy: EmitStrategy) -> SessionWindowedKStream[K, V]:
        """As :meth:`TimeWindowedKStream.emit_strategy`: with ``on_window_close`` each
        session's final aggregate once stream time passes its end plus gap plus grace, and
        no updates or deletes of merged sessions before that."""
        return _with_emit_strategy(self, strategy)

    def aggregate(self, initializer: Callable[[], A], aggregator: Callable[[K, V, A], A],
                  merger: Callable[[K, A, A], A], materialized: Materialized | None = None, *,
                  name: str | None = None) -> KTable[Windowed[K], A]:
        return self._aggregate(initializer, aggregator, merger, None, materialized, name)

    def _aggregate(self, initializer: Initializer, aggregator: Aggregator, merger: Merger,
                   value_serde: Serde[Any] | None, materialized: Materialized | None,
                   name: str | None = None) -> KTable[Any, Any]:
        windows, emit_final = self.windows, self._emit_final
        store = self._builder.add_store(materialized, "session", self.key_serde, value_serde,
                                        retention_ms=windows.retention_ms, cacheable=True)
        node = self._builder.add(
            "KSTREAM-SESSION-AGGREGATE",
            lambda: SessionAggregateProcessor(store, windows, initializer, aggregator, merger, emit_final=emit_final),
            [self._node], (store,), name=name,
        )
        delay = windows.inactivity_gap_ms + windows.grace_ms
        return KTable(self._builder, node, None, value_serde, store_name=store, suppress_delay_ms=delay,
                      window_key_serde=self.key_serde)


class KGroupedTable(Generic[K, V]):
    """A table re-grouped by ``KTable.group_by``: aggregations with an adder and a
    subtractor, so that a value that changes or moves to another group is taken out of the
    old aggregate before it goes into the new one (Kafka Streams' ``KGroupedTable``)."""

    def __init__(self, builder: InternalBuilder, node: str, selector: Callable[[Any, Any], tuple[Any, Any]],
                 key_serde: Serde[Any] | None, value_serde: Serde[Any] | None) -> None:
        self._builder = builder
        self._node = node
        self._selector = selector
        self.key_serde = key_serde
        self.value_serde = value_serde

    def count(self, materialized: Materialized | None = None, *, name: str | None = None) -> KTable[K, int]:
        return self._aggregate(lambda: 0, lambda k, v, a: a + 1, lambda k, v, a: a - 1, Serdes.long(), materialized,
                               name)

    def reduce(self, adder: Callable[[V, V], V], subtractor: Callable[[V, V], V],
               materialized: Materialized | None = None, *, name: str | None = None) -> KTable[K, V]:
        """``adder(aggregate, value)`` and ``subtractor(aggregate, value)``; a group's first
        value is its aggregate."""
        return self._aggregate(lambda: None, lambda k, v, a: v if a is None else adder(a, v),
                               lambda k, v, a: subtractor(a, v), self.value_serde, materialized, name)

    def aggregate(self, initializer: Callable[[], A], adder: Callable[[K, V, A], A],
                  subtractor: Callable[[K, V, A], A], materialized: Materialized | None = None, *,
                  name: str | None = None) -> KTable[K, A]:
        return self._aggregate(initializer, adder, subtractor, None, materialized, name)

    def _aggregate(self, initializer: Initializer, adder: Aggregator, subtractor: Aggregator,
                   value_serde: Serde[Any] | None, materialized: Materialized | None,
                   name: str | None = None) -> KTable[Any, Any]:
        from tomyum.streams._aggregate import TableAggregateProcessor

        store = self._builder.add_store(materialized, "key_value", self.key_serde, value_serde, timestamped=True,
                                        cacheable=True)
        selector = self._selector
        node = self._builder.add("KTABLE-AGGREGATE",
                                 lambda: TableAggregateProcessor(store, selector, initializer, adder, subtractor),
                                 [self._node], (store,), name=name)
        return KTable(self._builder, node, self.key_serde, value_serde, store_name=store)
