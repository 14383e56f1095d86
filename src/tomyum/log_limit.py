"""Logging that a hostile or broken client cannot turn into a full disk.

:class:`RateLimitedLog` writes at most one line per key per interval; the first line after a
quiet spell says how many like it were left out. Keys name the event (an error code and a
topic, say), never something a client varies freely.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable

#: keys remembered at most (the oldest are forgotten first)
MAX_KEYS = 4096


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up (Kafka's quota shape, KIP-599)."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens = burst
        self._at = clock()

    def take(self, n: float) -> bool:
        """Take ``n`` tokens if there are that many; False (and nothing taken) if not."""
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < n:
            return False
        self._tokens -= n
        return True


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.clock = clock
        #: key → (when it was last written, how many were left out since)
        self._seen: dict[Hashable, tuple[float, int]] = {}

    def log(self, level: int, key: Hashable, msg: str, *args: object) -> bool:
        """Write ``msg % args`` unless ``key`` was written within the interval; True if written."""
        now = self.clock()
        last, dropped = self._seen.get(key, (-self.interval_s - 1, 0))
        if now - last < self.interval_s:
            self._seen[key] = (last, dropped + 1)
            return False
        if dropped:
            msg += f" ({dropped} more like this in the last {self.interval_s:g} s not logged)"
        self._seen.pop(key, None)
        self._seen[key] = (now, 0)
        if len(self._seen) > MAX_KEYS:
            del self._seen[next(iter(self._seen))]
        self.logger.log(level, msg, *args)
        return True

    def warning(self, key: Hashable, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, key, msg, *args)

    def error(self, key: Hashable, msg: str, *args: object) -> bool:
        return self.log(logging.ERROR, key, msg, *args)
