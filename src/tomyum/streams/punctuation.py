"""Punctuators: callbacks a processor schedules on stream time or wall-clock time
(Kafka Streams' ``ProcessorContext.schedule``, ``PunctuationType``, ``Cancellable``).

Kafka's rules, kept here: a stream-time schedule is aligned to 0 and fires as soon as
stream time reaches its next multiple of the interval (so with the first record); a
wall-clock schedule fires one interval after it was made. A schedule fires at most once
per check, with the current time, and then skips the intervals it missed. Stream time is
checked after each input record; wall-clock time whenever the clock moves.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Cancellable", "PunctuationQueue", "PunctuationType", "Punctuator"]

Punctuator = Callable[[int], None]
"""Called with the current stream time or wall-clock time (ms)."""


class PunctuationType(enum.Enum):
    STREAM_TIME = "stream_time"
    WALL_CLOCK_TIME = "wall_clock_time"


@dataclass(slots=True, kw_only=True)
class Cancellable:
    """A schedule; ``cancel()`` stops it for good."""

    node: str
    interval_ms: int
    punctuator: Punctuator
    next_ms: int
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class PunctuationQueue:
    """The schedules of one punctuation type in one task."""

    def __init__(self) -> None:
        self._schedules: list[Cancellable] = []

    def schedule(self, node: str, first_ms: int, interval_ms: int, punctuator: Punctuator) -> Cancellable:
        if interval_ms < 1:
            raise ValueError(f"a punctuation interval must be at least 1 ms, got {interval_ms}")
        schedule = Cancellable(node=node, interval_ms=interval_ms, punctuator=punctuator, next_ms=first_ms)
        self._schedules.append(schedule)
        return schedule

    def maybe_punctuate(self, now_ms: int) -> bool:
        """Fire every due schedule once, in the order they were made; True if any fired."""
        self._schedules = [s for s in self._schedules if not s.cancelled]
        fired = False
        for schedule in list(self._schedules):
            if schedule.cancelled or now_ms < schedule.next_ms:
                continue
            missed = (now_ms - schedule.next_ms) // schedule.interval_ms
            schedule.next_ms += (missed + 1) * schedule.interval_ms
            schedule.punctuator(now_ms)
            fired = True
        return fired
