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

__all__ = ["JoinWindows", "SessionWindows", "SlidingWindows", "Suppressed", "TimeWindows", "Window", "Windowed"]


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
class Suppressed:
    """``Suppressed.until_window_closes()``: hold a windowed KTable's updates and emit each
    window's final result once, when the window closes (KIP-328). Unbounded buffer.

    ``idle_close_ms`` (default ``None``, off, as in Kafka): stream time moves only with
    records, so without new records the last windows never close. With ``idle_close_ms``,
    a wall-clock punctuator checks every ``idle_close_ms``; when no update has reached the
    suppression for at least ``idle_close_ms`` of wall-clock time, the suppression's
    stream time becomes the stream time of its last update plus the wall-clock time elapsed
    since then, and the windows that would have closed by that time are emitted. This
    assumes event time keeps pace with wall-clock time; an update that arrives afterwards
    for a window closed this way is late by that clock and is emitted at once, a second
    result for that window.
    """

    idle_close_ms: int | None = None

    @staticmethod
    def until_window_closes(*, idle_close_ms: int | None = None) -> Suppressed:
        if idle_close_ms is not None:
            _check("idle_close_ms", idle_close_ms, 1)
        return Suppressed(idle_close_ms=idle_close_ms)


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
