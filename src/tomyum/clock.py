"""Time, injected: the broker reads the wall clock and the monotonic clock only through a
:class:`Clock`, so that tests can move time instead of sleeping (see ``tomyum.testing``).

Wall-clock milliseconds are for what Kafka defines by timestamps (retention, compaction
lag, LogAppendTime); the monotonic clock is for timeouts and sessions, which must not jump
when the wall clock does.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time_ms(self) -> int:
        """Milliseconds since the Unix epoch (the wall clock)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...


class SystemClock:
    def time_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()
