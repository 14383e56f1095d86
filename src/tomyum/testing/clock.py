"""A clock that tests move by hand."""

from __future__ import annotations


class FakeClock:
    def __init__(self, time_ms: int = 1_700_000_000_000, monotonic: float = 1000.0) -> None:
        self.now_ms = time_ms
        self.mono = monotonic

    def time_ms(self) -> int:
        return self.now_ms

    def monotonic(self) -> float:
        return self.mono

    def advance(self, ms: int) -> None:
        """Move both clocks forward by ``ms`` milliseconds."""
        self.now_ms += ms
        self.mono += ms / 1000

    def set_wall(self, time_ms: int) -> None:
        """Jump the wall clock (forward or back); the monotonic clock does not move."""
        self.now_ms = time_ms
