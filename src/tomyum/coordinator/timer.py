"""The coordinators' timers, on the injected :class:`~tomyum.clock.Clock` (Kafka's
``CoordinatorTimer``): a classic member's session, a KIP-394 pending member's, a rebalance's
deadline, a KIP-848 member's session and revocation timeout, and the periodic checks (committed
offsets' expiry, the transaction coordinator's timeout and expiry checks) — every timeout of
``coordinator/`` is one of these.

Deadlines are whole milliseconds of the clock's monotonic time (as Kafka's timers count), so
that a fake clock moved by whole milliseconds makes a timer due exactly when a test expects.

A timer has a key (``"heartbeat-<group>-<member>"``, as Kafka names them); scheduling a key
again replaces its timer, cancelling it forgets it. A timer is due when the clock's monotonic
time reaches its deadline, and :meth:`CoordinatorTimer.poll` runs every due timer, earliest
first. Nothing else runs one: the clock decides, never the event loop. In the broker, one
asyncio wake-up at the earliest deadline calls ``poll`` (a wake-up a little early finds nothing
due and sets another); a test moves a fake clock and calls ``poll`` itself, so no test waits
for a session timeout. A handler may call ``poll`` first, so that what is due is gone exactly
when it is due, not a few milliseconds later.

A timer's operation is called from ``poll`` with no argument. If it returns an awaitable (an
operation that writes records, through the runtime's write path), the timer runs it as a task
and keeps it until it ends; :meth:`drain` awaits those, :meth:`stop` cancels everything.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tomyum.clock import Clock

log = logging.getLogger(__name__)

#: what a timer runs when it is due
TimerOperation = Callable[[], Awaitable[Any] | None]


class CoordinatorTimer:
    """Keyed timers on ``clock``. Methods are called from the event loop."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        #: key → (deadline ms, sequence, operation) of the timer scheduled under it
        self._timers: dict[str, tuple[int, int, TimerOperation]] = {}
        #: (deadline ms, sequence, key), stale entries skipped when popped
        self._heap: list[tuple[int, int, str]] = []
        self._sequence = itertools.count()
        self._wake_up: asyncio.TimerHandle | None = None
        self._wake_at: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = False

    def schedule(self, key: str, delay_ms: float, operation: TimerOperation) -> None:
        """Run ``operation`` once ``delay_ms`` has passed on the clock (replacing ``key``'s timer)."""
        deadline = self._now_ms() + round(delay_ms)
        sequence = next(self._sequence)
        self._timers[key] = (deadline, sequence, operation)
        heapq.heappush(self._heap, (deadline, sequence, key))
        self._arm()

    def cancel(self, key: str) -> None:
        self._timers.pop(key, None)

    def is_scheduled(self, key: str) -> bool:
        return key in self._timers

    def deadline(self, key: str) -> int | None:
        """When ``key``'s timer is due (the clock's monotonic milliseconds), if it is scheduled."""
        timer = self._timers.get(key)
        return None if timer is None else timer[0]

    def poll(self) -> None:
        """Run every timer that is due, earliest first (one scheduled by a timer's operation runs
        too if it is already due)."""
        now = self._now_ms()
        while self._heap and self._heap[0][0] <= now:
            deadline, sequence, key = heapq.heappop(self._heap)
            timer = self._timers.get(key)
            if timer is None or timer[1] != sequence:
                continue  # cancelled or replaced
            del self._timers[key]
            outcome = timer[2]()
            if outcome is not None and not self._stopped:
                task = asyncio.ensure_future(outcome)
                self._tasks.add(task)
                task.add_done_callback(self._done)
        self._arm()

    async def run_due(self) -> None:
        """Run every timer that is due and wait until what they started has ended (a handler
        calls this first, so that what is due is gone exactly when it is due)."""
        self.poll()
        await self.drain()

    async def drain(self) -> None:
        """Wait for the operations timers have started (and those they start) to end."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def stop(self) -> None:
        """Forget every timer and cancel the operations under way."""
        self._stopped = True
        self._timers.clear()
        self._heap.clear()
        if self._wake_up is not None:
            self._wake_up.cancel()
            self._wake_up = self._wake_at = None
        for task in self._tasks:
            task.cancel()

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (e := task.exception()) is not None:
            log.error("a coordinator timer's operation failed: %r", e)

    def _arm(self) -> None:
        """One event-loop wake-up, at the earliest deadline (none outside a running loop)."""
        while self._heap and (self._heap[0][2] not in self._timers
                              or self._timers[self._heap[0][2]][1] != self._heap[0][1]):
            heapq.heappop(self._heap)
        earliest = self._heap[0][0] if self._heap else None
        if earliest == self._wake_at:
            return
        if self._wake_up is not None:
            self._wake_up.cancel()
            self._wake_up = self._wake_at = None
        if earliest is None or self._stopped:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._wake_at = earliest
        self._wake_up = loop.call_later(max(earliest - self._now_ms(), 0) / 1000, self._woken)

    def _now_ms(self) -> int:
        return round(self.clock.monotonic() * 1000)

    def _woken(self) -> None:
        self._wake_up = self._wake_at = None
        self.poll()
