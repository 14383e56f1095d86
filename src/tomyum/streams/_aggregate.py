"""The stateful processors: aggregations (plain, time-windowed, session-windowed) and the
final-results suppression buffer.

Windowed processors keep their own *observed stream time*, the largest timestamp they have
seen, as Kafka's ``KStreamWindowAggregate`` does; a window is closed once
``end <= stream_time - grace`` (time windows, end exclusive) or ``end < stream_time - grace``
(sessions, end inclusive), and records for closed windows are dropped and counted.
Records with a ``None`` key or value are dropped and counted by every aggregation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tomyum.streams._record import Change, Record
from tomyum.streams.processor import Processor
from tomyum.streams.state.base import KeyValueStore
from tomyum.streams.state.window import SessionStore, WindowStore
from tomyum.streams.windows import SessionWindows, TimeWindows, Window, Windowed

AnyRecord = Record[Any, Any]
Initializer = Callable[[], Any]
Aggregator = Callable[[Any, Any, Any], Any]
Merger = Callable[[Any, Any, Any], Any]


class _Aggregate(Processor):
    def __init__(self, store_name: str, initializer: Initializer, aggregator: Aggregator) -> None:
        self.store_name = store_name
        self.initializer = initializer
        self.aggregator = aggregator
        self.observed_stream_time = -1

    def _close_time(self, store: WindowStore[Any, Any] | SessionStore[Any, Any], timestamp: int, grace_ms: int) -> int:
        """Observe ``timestamp``; windows ending before the returned time are closed."""
        self.observed_stream_time = max(self.observed_stream_time, timestamp)
        store.observe(self.observed_stream_time)
        return self.observed_stream_time - grace_ms

    def _accept(self, record: AnyRecord) -> bool:
        if record.key is None or record.value is None:
            self.context.record_dropped("null key or value", record)
            return False
        return True


class StreamAggregateProcessor(_Aggregate):
    """count / reduce / aggregate of a grouped stream into a key-value store."""

    def process(self, record: AnyRecord) -> None:
        if not self._accept(record):
            return
        store: KeyValueStore[Any, Any] = self.context.get_state_store(self.store_name)
        old = store.get(record.key)
        new = self.aggregator(record.key, record.value, self.initializer() if old is None else old)
        store.put(record.key, new, record.timestamp)
        self.context.forward(record.with_value(Change(new, old)))


class WindowAggregateProcessor(_Aggregate):
    """Aggregates each record into every time window containing it that is still open."""

    def __init__(self, store_name: str, windows: TimeWindows, initializer: Initializer,
                 aggregator: Aggregator) -> None:
        super().__init__(store_name, initializer, aggregator)
        self.windows = windows

    def process(self, record: AnyRecord) -> None:
        if not self._accept(record):
            return
        store: WindowStore[Any, Any] = self.context.get_state_store(self.store_name)
        close_time = self._close_time(store, record.timestamp, self.windows.grace_ms)
        for window in self.windows.windows_for(record.timestamp):
            if window.end_ms <= close_time:
                self.context.record_dropped(f"window {window} closed at stream time {self.observed_stream_time}", record)
                continue
            old = store.fetch(record.key, window.start_ms)
            new = self.aggregator(record.key, record.value, self.initializer() if old is None else old)
            store.put(record.key, window.start_ms, new, record.timestamp)
            self.context.forward(Record(key=Windowed(record.key, window), value=Change(new, old),
                                        timestamp=record.timestamp, headers=record.headers))


class SessionAggregateProcessor(_Aggregate):
    """Kafka's ``KStreamSessionWindowAggregate``: the record's session ``[t, t]`` absorbs
    every session of its key within the inactivity gap; merged-away sessions are deleted
    and forwarded as deletes (``Change(None, old)``), then the merged session is forwarded."""

    def __init__(self, store_name: str, windows: SessionWindows, initializer: Initializer,
                 aggregator: Aggregator, merger: Merger) -> None:
        super().__init__(store_name, initializer, aggregator)
        self.windows = windows
        self.merger = merger

    def process(self, record: AnyRecord) -> None:
        if not self._accept(record):
            return
        store: SessionStore[Any, Any] = self.context.get_state_store(self.store_name)
        timestamp, gap = record.timestamp, self.windows.inactivity_gap_ms
        close_time = self._close_time(store, timestamp, self.windows.grace_ms)
        overlapping = store.find_sessions(record.key, timestamp - gap, timestamp + gap)
        start, end, agg = timestamp, timestamp, self.initializer()
        for session, value in overlapping:
            start, end = min(start, session.window.start_ms), max(end, session.window.end_ms)
            agg = self.merger(record.key, agg, value)
        merged = Windowed(record.key, Window(start, end))
        if end < close_time:
            self.context.record_dropped(f"session {merged.window} closed at stream time {self.observed_stream_time}", record)
            return
        old = None
        for session, value in overlapping:
            if session == merged:
                old = value
                continue
            store.put(session, None, timestamp)
            self.context.forward(Record(key=session, value=Change(None, value), timestamp=timestamp,
                                        headers=record.headers))
        agg = self.aggregator(record.key, record.value, agg)
        store.put(merged, agg, timestamp)
        self.context.forward(Record(key=merged, value=Change(agg, old), timestamp=timestamp, headers=record.headers))


class SuppressProcessor(Processor):
    """``suppress(until_window_closes)`` (KIP-328): keeps the latest update per windowed key
    and forwards it once, when stream time reaches the window's end plus ``delay_ms`` (the
    grace period; for sessions the inactivity gap plus the grace period, since a session
    can still grow until then). Deletes are not emitted: a window that was never emitted
    needs no delete. Windows are emitted in order of their end, then of their first update."""

    def __init__(self, delay_ms: int) -> None:
        self.delay_ms = delay_ms
        self.observed_stream_time = -1
        self.buffer: dict[Windowed[Any], AnyRecord] = {}

    def process(self, record: AnyRecord) -> None:
        self.observed_stream_time = max(self.observed_stream_time, record.timestamp)
        change: Change[Any] = record.value
        if change.new_value is None:
            self.buffer.pop(record.key, None)
        else:
            self.buffer[record.key] = record
        expiry = self.observed_stream_time - self.delay_ms
        due = sorted(
            (key for key in self.buffer if key.window.end_ms <= expiry), key=lambda key: key.window.end_ms
        )
        for key in due:
            final = self.buffer.pop(key)
            self.context.forward(final.with_value(Change(final.value.new_value, None)))


class TableAggregateProcessor(Processor):
    """KGroupedTable's aggregations: each change of the source table moves a value between
    groups — the old value is subtracted from its old group, the new one added to its new
    group — and each group's aggregate change is forwarded (``Change(new, old)``)."""

    def __init__(self, store_name: str, selector: Callable[[Any, Any], tuple[Any, Any]],
                 initializer: Initializer, adder: Aggregator, subtractor: Aggregator) -> None:
        self.store_name = store_name
        self.selector = selector
        self.initializer = initializer
        self.adder = adder
        self.subtractor = subtractor

    def _apply(self, record: AnyRecord, value: Any, fold: Aggregator) -> None:
        group, grouped_value = self.selector(record.key, value)
        if group is None:
            self.context.record_dropped("the group_by selector returned a None key", record)
            return
        store: KeyValueStore[Any, Any] = self.context.get_state_store(self.store_name)
        old = store.get(group)
        new = fold(group, grouped_value, self.initializer() if old is None else old)
        store.put(group, new, record.timestamp)
        self.context.forward(Record(key=group, value=Change(new, old), timestamp=record.timestamp,
                                    headers=record.headers))

    def process(self, record: AnyRecord) -> None:
        change: Change[Any] = record.value
        if change.old_value is not None:
            self._apply(record, change.old_value, self.subtractor)
        if change.new_value is not None:
            self._apply(record, change.new_value, self.adder)
