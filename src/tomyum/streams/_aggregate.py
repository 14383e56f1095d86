"""The stateful processors: aggregations (plain, time-windowed, session-windowed,
sliding-windowed, each forwarding every update or, with ``EmitStrategy.on_window_close``,
final results); the suppression buffer is :mod:`tomyum.streams._suppress`.

Windowed processors keep their own *observed stream time*, the largest timestamp they have
seen, as Kafka's ``KStreamWindowAggregate`` does; a window is closed once
``end <= stream_time - grace`` (time windows, end exclusive), ``end < stream_time - grace``
(sliding windows, end inclusive) or ``end < stream_time - gap - grace`` (sessions, which
can grow until then), and records for closed windows are dropped and counted (once per
closed window the record belonged in, as in Kafka). Records with a ``None`` key or value
are dropped and counted by every aggregation.

Results carry Kafka's timestamps (KIP-258): an aggregate's result the largest timestamp of
the records in it (for a session, its end).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tomyum.streams._processors import TupleForwarder
from tomyum.streams._record import Change, Record
from tomyum.streams.processor import Processor, ProcessorContext
from tomyum.streams.serdes import Serde
from tomyum.streams.state.base import KeyValueStore
from tomyum.streams.state.window import SessionStore, ValueAndTimestamp, WindowStore
from tomyum.streams.windows import SessionWindows, SlidingWindows, TimeWindows, Window, Windowed

AnyRecord = Record[Any, Any]
Initializer = Callable[[], Any]
Aggregator = Callable[[Any, Any, Any], Any]
Merger = Callable[[Any, Any, Any], Any]


class _Aggregate(Processor):
    end_inclusive = True
    """Whether a window's end is in it (sliding windows, sessions): it then closes once its
    end is *before* the close time, else (time windows) once its end is at or before it."""

    def __init__(self, store_name: str, initializer: Initializer, aggregator: Aggregator, *,
                 emit_final: bool = False) -> None:
        self.store_name = store_name
        self.initializer = initializer
        self.aggregator = aggregator
        self.observed_stream_time = -1
        self.emit_final = emit_final
        self.last_emit_close_time = -1
        self.cached = False
        """Whether the store is behind the record cache, which then forwards the updates."""

    def _use_store(self, store: Any) -> Any:
        """The window or session store to aggregate into; behind the record cache, updates go
        downstream when the cache flushes them (Kafka's ``TimestampedTupleForwarder``), and
        emitting final results, never as updates."""
        if store.cached is not None:
            self.cached = True
            if not self.emit_final:
                store.cached.set_flush_listener(self.context.forward)
        return store

    def _close_time(self, store: WindowStore[Any, Any], record: AnyRecord, grace_ms: int) -> int:
        """Observe the record's timestamp; windows ending before the returned time are closed
        (and, emitting final results, forwarded now)."""
        self.observed_stream_time = max(self.observed_stream_time, record.timestamp)
        close_time = self.observed_stream_time - grace_ms
        self._emit_final(store, close_time, record)
        store.observe(self.observed_stream_time)
        return close_time

    def _forward_update(self, record: AnyRecord) -> None:
        """An update of a window: forwarded at once unless emitting final results only or
        behind the record cache."""
        if not self.emit_final and not self.cached:
            self.context.forward(record)

    def _emit_final(self, store: WindowStore[Any, Any] | SessionStore[Any, Any], close_time: int,
                    record: AnyRecord) -> None:
        """``EmitStrategy.on_window_close`` (KIP-825): forward each window that ``close_time``
        closes and the last emission's did not, read from the store before it forgets them
        (a closed window is already past the store's retention). Kafka throttles this check
        to once a second of wall-clock time; here it runs whenever the close time moves."""
        if not self.emit_final or close_time <= self.last_emit_close_time:
            return
        shift = 1 if self.end_inclusive else 0
        for windowed, found in store.fetch_all_ending(self.last_emit_close_time - shift, close_time - shift):
            self.context.forward(Record(key=windowed, value=Change(found.value, None), timestamp=found.timestamp,
                                        headers=record.headers))
        self.last_emit_close_time = close_time

    def _accept(self, record: AnyRecord) -> bool:
        if record.key is None or record.value is None:
            self.context.record_dropped("null key or value", record)
            return False
        return True


class StreamAggregateProcessor(_Aggregate):
    """count / reduce / aggregate of a grouped stream into a key-value store. Each result
    carries the largest timestamp of the records aggregated so far (Kafka's
    ``KStreamAggregate``: the new record's, or the stored aggregate's if later)."""

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store: KeyValueStore[Any, Any] = context.get_state_store(self.store_name)
        self.forwarder = TupleForwarder(context, self.store)

    def process(self, record: AnyRecord) -> None:
        if not self._accept(record):
            return
        stored = self.store.get_with_timestamp(record.key)
        old, timestamp = (None, record.timestamp) if stored is None else (
            stored.value, max(record.timestamp, stored.timestamp))
        new = self.aggregator(record.key, record.value, self.initializer() if stored is None else old)
        self.forwarder.put(record.with_value(Change(new, old)).with_timestamp(timestamp))


class WindowAggregateProcessor(_Aggregate):
    """Aggregates each record into every time window containing it that is still open.
    Each window's result carries the largest timestamp of its records (Kafka's
    ``KStreamWindowAggregate``), kept with the window in the store."""

    end_inclusive = False

    def __init__(self, store_name: str, windows: TimeWindows, initializer: Initializer,
                 aggregator: Aggregator, *, emit_final: bool = False) -> None:
        super().__init__(store_name, initializer, aggregator, emit_final=emit_final)
        self.windows = windows

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store: WindowStore[Any, Any] = self._use_store(context.get_state_store(self.store_name))
        self.store.keep_timestamps()

    def process(self, record: AnyRecord) -> None:
        if not self._accept(record):
            return
        store = self.store
        close_time = self._close_time(store, record, self.windows.grace_ms)
        for window in self.windows.windows_for(record.timestamp):
            if window.end_ms <= close_time:
                self.context.record_dropped(f"window {window} closed at stream time {self.observed_stream_time}", record)
                continue
            stored = store.fetch_with_timestamp(record.key, window.start_ms)
            old, timestamp = (None, record.timestamp) if stored is None else (
                stored.value, max(record.timestamp, stored.timestamp))
            new = self.aggregator(record.key, record.value, self.initializer() if stored is None else old)
            store.put(record.key, window.start_ms, new, timestamp, record.headers)
            self._forward_update(Record(key=Windowed(record.key, window), value=Change(new, old),
                                        timestamp=timestamp, headers=record.headers))


class SessionAggregateProcessor(_Aggregate):
    """Kafka's ``KStreamSessionWindowAggregate``. A record at ``t`` finds its key's
    sessions that end at or after ``t - gap`` and start at or before ``t + gap`` (records
    at most ``gap`` apart share a session) among those the store still keeps: sessions
    whose end is after ``stream time - (gap + grace)``, stream time being the one *before*
    this record (as Kafka's store, whose clock moves when a session is written). The record's
    session ``[t, t]`` absorbs them all; it is dropped (and counted) if the merged session
    ends before ``stream time - (gap + grace)``, stream time now including the record.
    Otherwise, unless the merged session is just ``[t, t]``, every session found is removed
    and forwarded as a delete (``Change(None, old)``, stamped with that session's end); then
    the merged session is stored and forwarded as ``Change(agg, None)``, stamped with its
    end — the largest timestamp of its records."""

    def __init__(self, store_name: str, windows: SessionWindows, initializer: Initializer,
                 aggregator: Aggregator, merger: Merger, *, emit_final: bool = False) -> None:
        super().__init__(store_name, initializer, aggregator, emit_final=emit_final)
        self.windows = windows
        self.merger = merger

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store: SessionStore[Any, Any] = self._use_store(context.get_state_store(self.store_name))

    def process(self, record: AnyRecord) -> None:
        if not self._accept(record):
            return
        store = self.store
        timestamp, gap = record.timestamp, self.windows.inactivity_gap_ms
        found = store.find_sessions(record.key, timestamp - gap, timestamp + gap)
        self.observed_stream_time = max(self.observed_stream_time, timestamp)
        close_time = self.observed_stream_time - self.windows.grace_ms - gap
        self._emit_final(store, close_time, record)
        start, end, agg = timestamp, timestamp, self.initializer()
        for session, value in found:
            start, end = min(start, session.window.start_ms), max(end, session.window.end_ms)
            agg = self.merger(record.key, agg, value)
        merged = Windowed(record.key, Window(start, end))
        if end < close_time:
            self.context.record_dropped(f"session {merged.window} closed at stream time {self.observed_stream_time}", record)
            return
        if merged.window != Window(timestamp, timestamp):
            for session, value in found:
                store.put(session, None, session.window.end_ms, record.headers)
                self._forward_update(Record(key=session, value=Change(None, value), timestamp=session.window.end_ms,
                                            headers=record.headers))
        agg = self.aggregator(record.key, record.value, agg)
        store.put(merged, agg, end, record.headers)
        store.observe(self.observed_stream_time)
        self._forward_update(Record(key=merged, value=Change(agg, None), timestamp=end, headers=record.headers))


class SlidingWindowAggregateProcessor(_Aggregate):
    """Kafka's ``KStreamSlidingWindowAggregate`` (KIP-450). The store holds, per key, the
    windows ``[start, start + d]`` (``d`` the time difference) that currently exist, each
    with its aggregate and the largest timestamp of its records. A record at ``t``:

    - is aggregated into every existing window that contains it;
    - creates its left window ``[t - d, t]`` unless it exists, from the aggregate of the
      records already in that range (the latest window ending before ``t`` holds them);
    - creates its right window ``[t + 1, t + 1 + d]`` when records later than ``t`` fall in
      it (out-of-order input): a copy of the window holding them, without the record;
    - creates the right window of the record just before it, ``[p + 1, p + 1 + d]``, if
      ``t`` falls in it and it does not exist yet.

    Records before ``d`` go into the window ``[0, d]`` instead of a left window. A record is
    dropped whole (counted once) when every window containing it is closed
    (``t + d < stream_time - grace``; as in Kafka, its right window is then not made even if
    it would still be open); otherwise each closed window it belongs in is skipped and
    counted. Windows are read in reverse start order, as Kafka does with a
    reverse iterator, so updates are forwarded in the same order as Kafka's; each update is
    stamped with the largest record timestamp of its window.
    """

    store: WindowStore[Any, Any]

    def __init__(self, store_name: str, windows: SlidingWindows, initializer: Initializer,
                 aggregator: Aggregator, *, emit_final: bool = False) -> None:
        super().__init__(store_name, initializer, aggregator, emit_final=emit_final)
        self.windows = windows

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = self._use_store(context.get_state_store(self.store_name))
        self.store.keep_timestamps()

    def process(self, record: AnyRecord) -> None:
        if not self._accept(record):
            return
        t, d = record.timestamp, self.windows.time_difference_ms
        close_time = self._close_time(self.store, record, self.windows.grace_ms)
        if t + d < close_time:
            self.context.record_dropped(
                f"every window containing {t} closed at stream time {self.observed_stream_time}", record)
            return
        if t < d:
            self._process_early(record, close_time)
        else:
            self._process(record, close_time)

    def _process(self, record: AnyRecord, close_time: int) -> None:
        t, d = record.timestamp, self.windows.time_difference_ms
        seen: set[int] = set()
        left_agg: ValueAndTimestamp[Any] | None = None  # the latest window ending before t
        right_agg: ValueAndTimestamp[Any] | None = None  # the latest window containing t
        left_exists = right_exists = False
        previous: int | None = None  # the latest record timestamp before t, when known
        for start, current in reversed(self.store.fetch_range_with_timestamps(record.key, max(0, t - 2 * d), t + 1)):
            seen.add(start)
            end = start + d
            if start == t + 1:
                right_exists = True
            elif end > t:
                if right_agg is None:
                    right_agg = current
                self._update(record, start, current, close_time)
            elif end == t:
                left_exists = True
                self._update(record, start, current, close_time)
                if current.timestamp >= t:
                    return  # an earlier record at t has made t's windows already
                previous = current.timestamp
            else:
                left_agg, previous = current, current.timestamp
                break
        if previous is not None and previous + 1 not in seen and previous + 1 + d >= t:
            self._create(record, previous + 1, self.initializer(), close_time)
            # When previous == t - d - 1 that window is t's left window too: made once here
            # (Kafka makes it twice, with the same value).
            left_exists = left_exists or previous + 1 == t - d
        if not left_exists:
            if previous is not None and left_agg is not None and t - d <= previous:
                self._create(record, t - d, left_agg.value, close_time)
            else:
                self._create(record, t - d, self.initializer(), close_time)
        if not right_exists and right_agg is not None and right_agg.timestamp > t:
            self._create_right_window(record, right_agg)

    def _process_early(self, record: AnyRecord, close_time: int) -> None:
        """A record before ``d``: the window ``[0, d]`` stands in for its left window."""
        t = record.timestamp
        seen: set[int] = set()
        combined: ValueAndTimestamp[Any] | None = None
        right_agg: ValueAndTimestamp[Any] | None = None
        right_exists = False
        previous: int | None = None
        for start, current in self.store.fetch_range_with_timestamps(record.key, 0, t + 1):
            seen.add(start)
            if start == 0:
                combined = current
                if current.timestamp < t:
                    previous = current.timestamp
            elif start <= t:
                right_agg = current
                self._update(record, start, current, close_time)
            else:
                right_exists = True
        if right_agg is None and combined is not None and combined.timestamp > t:
            right_agg = combined  # then [0, d] holds only records later than t
        if not right_exists and right_agg is not None and right_agg.timestamp > t:
            self._create_right_window(record, right_agg)
        if previous is not None and previous + 1 not in seen:
            self._create(record, previous + 1, self.initializer(), close_time)
        if combined is None:
            self._create(record, 0, self.initializer(), close_time)
        else:
            self._update(record, 0, combined, close_time)

    def _update(self, record: AnyRecord, start: int, current: ValueAndTimestamp[Any], close_time: int) -> None:
        """Aggregate ``record`` into the existing window starting at ``start``."""
        self._aggregate_into(record, start, current.value, current.value, max(record.timestamp, current.timestamp),
                             close_time)

    def _create(self, record: AnyRecord, start: int, base: Any, close_time: int) -> None:
        """A new window starting at ``start``: ``base`` (the records already in it) plus ``record``."""
        self._aggregate_into(record, start, base, None, record.timestamp, close_time)

    def _aggregate_into(self, record: AnyRecord, start: int, base: Any, old: Any, timestamp: int,
                        close_time: int) -> None:
        window = Window(start, start + self.windows.time_difference_ms)
        if window.end_ms < close_time:
            self.context.record_dropped(f"window {window} closed at stream time {self.observed_stream_time}", record)
            return
        new = self.aggregator(record.key, record.value, base)
        self.store.put(record.key, start, new, timestamp, record.headers)
        self._forward(record, window, Change(new, old), timestamp)

    def _create_right_window(self, record: AnyRecord, right_agg: ValueAndTimestamp[Any]) -> None:
        """``[t + 1, t + 1 + d]`` holds the later records of ``right_agg``'s window, not ``record``."""
        start = record.timestamp + 1
        self.store.put(record.key, start, right_agg.value, right_agg.timestamp, record.headers)
        self._forward(record, Window(start, start + self.windows.time_difference_ms),
                      Change(right_agg.value, None), right_agg.timestamp)

    def _forward(self, record: AnyRecord, window: Window, change: Change[Any], timestamp: int) -> None:
        self._forward_update(Record(key=Windowed(record.key, window), value=change, timestamp=timestamp,
                                    headers=record.headers))


class TableAggregateProcessor(Processor):
    """KGroupedTable's aggregations (Kafka's ``KTableAggregate`` / ``KTableReduce``): each
    change of the source table moves a value between groups — the old value is subtracted
    from its group's aggregate, the new one added to its group's — and each group's
    aggregate change is forwarded (``Change(new, old)``), once per group: a change that
    stays in its group is one update. A result carries the larger of the change's timestamp
    and the stored aggregate's."""

    def __init__(self, store_name: str, selector: Callable[[Any, Any], tuple[Any, Any]],
                 initializer: Initializer, adder: Aggregator, subtractor: Aggregator) -> None:
        self.store_name = store_name
        self.selector = selector
        self.initializer = initializer
        self.adder = adder
        self.subtractor = subtractor

    def _select(self, record: AnyRecord, value: Any) -> tuple[Any, Any] | None:
        if value is None:
            return None
        group, grouped_value = self.selector(record.key, value)
        if group is None:
            self.context.record_dropped("the group_by selector returned a None key", record)
            return None
        return group, grouped_value

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store: KeyValueStore[Any, Any] = context.get_state_store(self.store_name)
        self.forwarder = TupleForwarder(context, self.store)

    def _update(self, record: AnyRecord, group: Any, old_value: Any, new_value: Any) -> None:
        stored = self.store.get_with_timestamp(group)
        old, timestamp = (None, record.timestamp) if stored is None else (
            stored.value, max(record.timestamp, stored.timestamp))
        agg = old
        if old_value is not None and stored is not None:
            agg = self.subtractor(group, old_value, agg)
        if new_value is not None:
            agg = self.adder(group, new_value, self.initializer() if agg is None else agg)
        self.forwarder.put(Record(key=group, value=Change(agg, old), timestamp=timestamp, headers=record.headers))

    def process(self, record: AnyRecord) -> None:
        change: Change[Any] = record.value
        old, new = self._select(record, change.old_value), self._select(record, change.new_value)
        if old is not None and new is not None and old[0] == new[0]:
            self._update(record, old[0], old[1], new[1])
            return
        if old is not None:
            self._update(record, old[0], old[1], None)
        if new is not None:
            self._update(record, new[0], None, new[1])
