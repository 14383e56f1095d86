"""Window specifications and windowed keys (Kafka Streams' ``TimeWindows``,
``SessionWindows``, ``Window``, ``Windowed``, ``Suppressed``).

Time is event time in milliseconds. A time window ``[start, end)`` excludes its end; a
session window ``[start, end]`` includes both (its bounds are record timestamps). A window
*closes* when stream time (the largest timestamp the processor has seen) passes its end
plus the grace period (for a session, its end plus the inactivity gap and the grace
period); records for a closed window are dropped and counted.

Factories carry Kafka's names in snake_case (``TimeWindows.ofSizeAndGrace`` is
:meth:`TimeWindows.of_size_and_grace`); the names of earlier releases still work for this
release, with a ``DeprecationWarning``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from tomyum.streams._deprecation import warn_deprecated

K = TypeVar("K")

__all__ = [
    "BufferConfig", "EmitStrategy", "JoinWindows", "SessionWindows", "SlidingWindows", "Suppressed", "TimeWindows", "Window",
    "Windowed",
]


@dataclass(frozen=True, slots=True, order=True)
class Window:
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Windowed(Generic[K]):
    """A key of a windowed aggregation: the record key and its window."""

    key: K
    window: Window


def _check(name: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeWindows:
    """Fixed-size windows: tumbling when ``advance_ms == size_ms``, hopping when smaller.

    Windows are aligned to the epoch: their starts are multiples of ``advance_ms``.
    """

    size_ms: int
    advance_ms: int
    grace_ms: int

    @staticmethod
    def of_size_and_grace(size_ms: int, grace_ms: int) -> TimeWindows:
        """Tumbling windows of ``size_ms`` that accept records up to ``grace_ms`` after
        their end (Kafka's ``TimeWindows.ofSizeAndGrace``)."""
        _check("size_ms", size_ms, 1)
        _check("grace_ms", grace_ms, 0)
        return TimeWindows(size_ms=size_ms, advance_ms=size_ms, grace_ms=grace_ms)

    @staticmethod
    def of_size_with_no_grace(size_ms: int) -> TimeWindows:
        """``of_size_and_grace(size_ms, 0)`` (Kafka's ``TimeWindows.ofSizeWithNoGrace``)."""
        return TimeWindows.of_size_and_grace(size_ms, 0)

    @staticmethod
    def of_size_with_grace(size_ms: int, grace_ms: int) -> TimeWindows:
        """Deprecated: :meth:`of_size_and_grace`."""
        warn_deprecated("TimeWindows.of_size_with_grace", "TimeWindows.of_size_and_grace")
        return TimeWindows.of_size_and_grace(size_ms, grace_ms)

    @staticmethod
    def of_size_no_grace(size_ms: int) -> TimeWindows:
        """Deprecated: :meth:`of_size_with_no_grace`."""
        warn_deprecated("TimeWindows.of_size_no_grace", "TimeWindows.of_size_with_no_grace")
        return TimeWindows.of_size_and_grace(size_ms, 0)

    def advance_by(self, advance_ms: int) -> TimeWindows:
        """Hopping windows; ``0 < advance_ms <= size_ms``."""
        _check("advance_ms", advance_ms, 1)
        if advance_ms > self.size_ms:
            raise ValueError(f"advance_ms ({advance_ms}) must not exceed size_ms ({self.size_ms})")
        return TimeWindows(size_ms=self.size_ms, advance_ms=advance_ms, grace_ms=self.grace_ms)

    def windows_for(self, timestamp: int) -> list[Window]:
        """Every window that contains ``timestamp``, oldest first (Kafka's ``windowsFor``)."""
        start = (max(0, timestamp - self.size_ms + self.advance_ms) // self.advance_ms) * self.advance_ms
        windows = []
        while start <= timestamp:
            windows.append(Window(start, start + self.size_ms))
            start += self.advance_ms
        return windows

    @property
    def retention_ms(self) -> int:
        """How long the window store keeps a window: its size plus the grace period."""
        return self.size_ms + self.grace_ms


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionWindows:
    """Sessions of activity per key: records at most ``inactivity_gap_ms`` apart share a
    session (gap 10: records at 0 and 10 make one session ``[0, 10]``); a record that
    bridges two sessions merges them. A session is kept, and can still grow, while its end
    is after ``stream time - (inactivity_gap_ms + grace_ms)`` (Kafka's
    ``KStreamSessionWindowAggregate``; see :class:`~tomyum.streams._aggregate.SessionAggregateProcessor`
    for the exact rule)."""

    inactivity_gap_ms: int
    grace_ms: int

    @staticmethod
    def of_inactivity_gap_and_grace(inactivity_gap_ms: int, grace_ms: int) -> SessionWindows:
        """Kafka's ``SessionWindows.ofInactivityGapAndGrace``."""
        _check("inactivity_gap_ms", inactivity_gap_ms, 1)
        _check("grace_ms", grace_ms, 0)
        return SessionWindows(inactivity_gap_ms=inactivity_gap_ms, grace_ms=grace_ms)

    @staticmethod
    def of_inactivity_gap_with_no_grace(inactivity_gap_ms: int) -> SessionWindows:
        """Kafka's ``SessionWindows.ofInactivityGapWithNoGrace``."""
        return SessionWindows.of_inactivity_gap_and_grace(inactivity_gap_ms, 0)

    @staticmethod
    def of_inactivity_gap_with_grace(inactivity_gap_ms: int, grace_ms: int) -> SessionWindows:
        """Deprecated: :meth:`of_inactivity_gap_and_grace`."""
        warn_deprecated("SessionWindows.of_inactivity_gap_with_grace", "SessionWindows.of_inactivity_gap_and_grace")
        return SessionWindows.of_inactivity_gap_and_grace(inactivity_gap_ms, grace_ms)

    @staticmethod
    def of_inactivity_gap_no_grace(inactivity_gap_ms: int) -> SessionWindows:
        """Deprecated: :meth:`of_inactivity_gap_with_no_grace`."""
        warn_deprecated("SessionWindows.of_inactivity_gap_no_grace", "SessionWindows.of_inactivity_gap_with_no_grace")
        return SessionWindows.of_inactivity_gap_and_grace(inactivity_gap_ms, 0)

    @property
    def retention_ms(self) -> int:
        return self.inactivity_gap_ms + self.grace_ms


@dataclass(frozen=True, slots=True, kw_only=True)
class SlidingWindows:
    """Sliding windows (KIP-450): a window ``[start, end]`` (both ends included) of
    ``time_difference_ms`` for every distinct set of records of a key that lie at most
    ``time_difference_ms`` apart. Windows are not aligned to the epoch: each record at ``t``
    has its *left window* ``[t - time_difference_ms, t]`` and, when later records fall
    within ``time_difference_ms + 1`` of it, its *right window*
    ``[t + 1, t + 1 + time_difference_ms]`` (the window just after it drops out).

    Records before ``time_difference_ms`` (whose left window would start before 0) share
    the window ``[0, time_difference_ms]``, as in Kafka. A window closes once
    ``end + grace_ms < stream time``.
    """

    time_difference_ms: int
    grace_ms: int

    @staticmethod
    def of_time_difference_and_grace(time_difference_ms: int, grace_ms: int) -> SlidingWindows:
        """Kafka's ``SlidingWindows.ofTimeDifferenceAndGrace``."""
        _check("time_difference_ms", time_difference_ms, 0)
        _check("grace_ms", grace_ms, 0)
        return SlidingWindows(time_difference_ms=time_difference_ms, grace_ms=grace_ms)

    @staticmethod
    def of_time_difference_with_no_grace(time_difference_ms: int) -> SlidingWindows:
        """Kafka's ``SlidingWindows.ofTimeDifferenceWithNoGrace``."""
        return SlidingWindows.of_time_difference_and_grace(time_difference_ms, 0)

    @staticmethod
    def of_time_difference_with_grace(time_difference_ms: int, grace_ms: int) -> SlidingWindows:
        """Deprecated: :meth:`of_time_difference_and_grace`."""
        warn_deprecated("SlidingWindows.of_time_difference_with_grace", "SlidingWindows.of_time_difference_and_grace")
        return SlidingWindows.of_time_difference_and_grace(time_difference_ms, grace_ms)

    @staticmethod
    def of_time_difference_no_grace(time_difference_ms: int) -> SlidingWindows:
        """Deprecated: :meth:`of_time_difference_with_no_grace`."""
        warn_deprecated("SlidingWindows.of_time_difference_no_grace", "SlidingWindows.of_time_difference_with_no_grace")
        return SlidingWindows.of_time_difference_and_grace(time_difference_ms, 0)

    @property
    def size_ms(self) -> int:
        """The windows' size: ``end - start``, the time difference."""
        return self.time_difference_ms

    @property
    def retention_ms(self) -> int:
        """How long the window store keeps a window (by its start): long enough that every
        window a record still within the grace period can read is there. Such a record is
        at most ``time_difference_ms + grace_ms`` behind stream time and reads windows
        starting up to two time differences before it. (Kafka's default, two time
        differences plus grace, relies on its segmented stores keeping more than asked.)"""
        return 3 * self.time_difference_ms + self.grace_ms + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class BufferConfig:
    """How much a suppression may hold, and what happens when it would hold more (Kafka's
    ``Suppressed.BufferConfig``): at most ``records_limit`` keys and ``bytes_limit`` bytes
    (``None``: no bound). Bytes are each buffered key's and its new and old values'
    serialized sizes plus 8 for the timestamp (Kafka counts its own serialized layout, so
    its numbers differ a little). When an update would take the buffer over a bound, it
    either **emits early** (the default for bounded buffers: the oldest entries are
    forwarded before their time until it fits, so those results are not final) or **shuts
    down** (the task fails with ``SuppressionBufferFullError``; nothing is emitted early)."""

    records_limit: int | None = None
    bytes_limit: int | None = None
    shut_down: bool = False
    logging_enabled: bool = True
    """Whether the buffer is written to its changelog topic, so that a restarted or moved
    task gets it back (Kafka's ``withLoggingEnabled`` / ``withLoggingDisabled``; on by
    default, as in Kafka)."""

    @staticmethod
    def max_records(records: int) -> BufferConfig:
        """Kafka's ``BufferConfig.maxRecords``: at most ``records`` keys, emitting early when full."""
        return BufferConfig().with_max_records(records)

    @staticmethod
    def max_bytes(bytes_: int) -> BufferConfig:
        """Kafka's ``BufferConfig.maxBytes``: at most ``bytes_`` bytes, emitting early when full."""
        return BufferConfig().with_max_bytes(bytes_)

    @staticmethod
    def unbounded() -> BufferConfig:
        """Kafka's ``BufferConfig.unbounded()``: no bound (strict: it never emits early)."""
        return BufferConfig(shut_down=True)

    def with_max_records(self, records: int) -> BufferConfig:
        _check("records", records, 1)
        return replace(self, records_limit=records)

    def with_max_bytes(self, bytes_: int) -> BufferConfig:
        _check("bytes", bytes_, 1)
        return replace(self, bytes_limit=bytes_)

    def with_no_bound(self) -> BufferConfig:
        return BufferConfig(shut_down=True, logging_enabled=self.logging_enabled)

    def with_logging_disabled(self) -> BufferConfig:
        """Kafka's ``withLoggingDisabled``: the buffer is memory only; what it holds when its
        task stops (a crash, a restart, the task moving) is lost."""
        return replace(self, logging_enabled=False)

    def with_logging_enabled(self) -> BufferConfig:
        """Kafka's ``withLoggingEnabled`` (the default)."""
        return replace(self, logging_enabled=True)

    def emit_early_when_full(self) -> BufferConfig:
        """Kafka's ``emitEarlyWhenFull``."""
        return replace(self, shut_down=False)

    def shut_down_when_full(self) -> BufferConfig:
        """Kafka's ``shutDownWhenFull``."""
        return replace(self, shut_down=True)

    @property
    def strict(self) -> bool:
        """Never emits early: unbounded, or shutting down when full (Kafka's ``StrictBufferConfig``)."""
        return self.shut_down or (self.records_limit is None and self.bytes_limit is None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Suppressed:
    """Hold a KTable's updates and forward fewer of them (KIP-328):

    - ``Suppressed.until_window_closes(buffer_config)`` (windowed tables only): each
      window's final result once, when the window closes; deletes are not emitted. The
      buffer must be strict (:meth:`BufferConfig.unbounded`, the default, or bounded with
      ``shut_down_when_full()``), since emitting early would break the promise of final
      results — Kafka enforces this with types, here it is a ``ValueError``.
    - ``Suppressed.until_time_limit(time_to_wait_ms, buffer_config)`` (any table): a key's
      latest update once stream time reaches the timestamp of the first update buffered for
      it plus ``time_to_wait_ms`` (rate limiting); deletes are buffered and forwarded too.

    An emitted update is ``Change(latest new value, the value before the first buffered
    update)``. Entries leave in order of their buffer time (the window's end, or the first
    update's timestamp), then of their first update.

    ``idle_close_ms`` (``until_window_closes`` only; default ``None``, off, as in Kafka):
    stream time moves only with records, so without new records the last windows never
    close. With ``idle_close_ms``, a wall-clock punctuator checks every ``idle_close_ms``;
    when no update has reached the suppression for at least ``idle_close_ms`` of wall-clock
    time, the suppression's stream time becomes the stream time of its last update plus the
    wall-clock time elapsed since then, and the windows that would have closed by that time
    are emitted. This assumes event time keeps pace with wall-clock time; an update that
    arrives afterwards for a window closed this way is late by that clock and is emitted at
    once, a second result for that window.
    """

    idle_close_ms: int | None = None
    buffer_config: BufferConfig = BufferConfig(shut_down=True)
    time_to_wait_ms: int | None = None
    """``None`` for ``until_window_closes``."""

    @staticmethod
    def until_window_closes(buffer_config: BufferConfig | None = None, *,
                            idle_close_ms: int | None = None) -> Suppressed:
        if idle_close_ms is not None:
            _check("idle_close_ms", idle_close_ms, 1)
        config = BufferConfig.unbounded() if buffer_config is None else buffer_config
        if not config.strict:
            raise ValueError("until_window_closes needs a strict buffer (BufferConfig.unbounded() or a bounded "
                             "buffer with shut_down_when_full()): emitting early would not give final results")
        return Suppressed(idle_close_ms=idle_close_ms, buffer_config=config)

    @staticmethod
    def until_time_limit(time_to_wait_ms: int, buffer_config: BufferConfig) -> Suppressed:
        """Kafka's ``Suppressed.untilTimeLimit``."""
        _check("time_to_wait_ms", time_to_wait_ms, 0)
        return Suppressed(buffer_config=buffer_config, time_to_wait_ms=time_to_wait_ms)


@dataclass(frozen=True, slots=True)
class EmitStrategy:
    """When a windowed aggregation forwards its results (Kafka's ``EmitStrategy``, KIP-825),
    given to ``TimeWindowedKStream`` / ``SlidingWindowedKStream`` /
    ``SessionWindowedKStream.emit_strategy``:

    - :meth:`on_window_update` (the default): every update of a window, at once;
    - :meth:`on_window_close`: nothing while a window is open; once stream time closes it
      (``end + grace``, and the gap too for sessions), its final aggregate, once, as
      ``Change(value, None)`` stamped with the window's result timestamp. Unlike
      ``suppress``, no second buffer: the final results are read from the aggregation's own
      window store.
    """

    on_close: bool

    @staticmethod
    def on_window_close() -> EmitStrategy:
        return EmitStrategy(on_close=True)

    @staticmethod
    def on_window_update() -> EmitStrategy:
        return EmitStrategy(on_close=False)


@dataclass(frozen=True, slots=True)
class JoinWindows:
    """How far apart in time two records of a stream-stream join may be: a right record
    joins a left record at ``t`` if its timestamp is within ``[t - before_ms, t + after_ms]``.
    The factories make symmetric windows (``before_ms == after_ms``); :meth:`before` and
    :meth:`after` change one side, as Kafka's ``JoinWindows.before/after`` do. Records
    later than ``grace_ms`` behind stream time are dropped."""

    before_ms: int
    after_ms: int
    grace_ms: int

    @staticmethod
    def of_time_difference_and_grace(difference_ms: int, grace_ms: int) -> JoinWindows:
        """Kafka's ``JoinWindows.ofTimeDifferenceAndGrace``: ``[t - difference, t + difference]``."""
        _check("difference_ms", difference_ms, 0)
        _check("grace_ms", grace_ms, 0)
        return JoinWindows(before_ms=difference_ms, after_ms=difference_ms, grace_ms=grace_ms)

    @staticmethod
    def of_time_difference_with_no_grace(difference_ms: int) -> JoinWindows:
        """Kafka's ``JoinWindows.ofTimeDifferenceWithNoGrace``."""
        return JoinWindows.of_time_difference_and_grace(difference_ms, 0)

    @staticmethod
    def of_time_difference_without_grace(difference_ms: int) -> JoinWindows:
        """Deprecated: :meth:`of_time_difference_with_no_grace`."""
        warn_deprecated("JoinWindows.of_time_difference_without_grace", "JoinWindows.of_time_difference_with_no_grace")
        return JoinWindows.of_time_difference_and_grace(difference_ms, 0)

    def before(self, time_difference_ms: int) -> JoinWindows:
        """These windows with the start moved: a right record joins a left record at ``t``
        from ``t - time_difference_ms`` on (negative: after ``t``), the end kept."""
        return self._with(time_difference_ms, self.after_ms)

    def after(self, time_difference_ms: int) -> JoinWindows:
        """These windows with the end moved: up to ``t + time_difference_ms``, the start kept."""
        return self._with(self.before_ms, time_difference_ms)

    def _with(self, before_ms: int, after_ms: int) -> JoinWindows:
        if before_ms + after_ms < 0:
            raise ValueError(f"the window's length (before_ms + after_ms = {before_ms + after_ms}) must not be negative")
        return replace(self, before_ms=before_ms, after_ms=after_ms)
