"""The coordinator timers (Kafka's CoordinatorTimer) on the injected clock: a timer runs when the
clock says it is due, never before; rescheduling a key replaces its timer; an operation that
writes runs as a task that ``drain`` waits for; in the broker one event-loop wake-up drives them."""

from __future__ import annotations

import asyncio

from tomyum.clock import SYSTEM_CLOCK
from tomyum.coordinator.timer import CoordinatorTimer
from tomyum.testing.clock import FakeClock


def test_a_timer_runs_when_the_clock_reaches_its_deadline_and_not_before() -> None:
    clock = FakeClock()
    timer = CoordinatorTimer(clock)
    fired: list[str] = []
    timer.schedule("a", 300, lambda: fired.append("a"))
    timer.schedule("b", 100, lambda: fired.append("b"))
    for _ in range(3):  # a fake clock moved by whole milliseconds, with no float drift
        clock.advance(33)
    timer.poll()
    assert fired == []
    clock.advance(1)
    timer.poll()
    assert fired == ["b"]
    clock.advance(10_000)
    timer.poll()
    assert fired == ["b", "a"] and not timer.is_scheduled("a")


def test_rescheduling_a_key_replaces_its_timer_and_cancel_forgets_it() -> None:
    clock = FakeClock()
    timer = CoordinatorTimer(clock)
    fired: list[str] = []
    timer.schedule("session", 100, lambda: fired.append("first"))
    clock.advance(90)
    timer.schedule("session", 100, lambda: fired.append("second"))  # a heartbeat
    clock.advance(90)
    timer.poll()
    assert fired == [] and timer.deadline("session") == round(clock.monotonic() * 1000) + 10
    timer.schedule("other", 1, lambda: fired.append("other"))
    timer.cancel("other")
    clock.advance(10)
    timer.poll()
    assert fired == ["second"]


def test_due_timers_run_earliest_first_and_one_scheduled_by_another_runs_if_due() -> None:
    clock = FakeClock()
    timer = CoordinatorTimer(clock)
    fired: list[str] = []

    def early() -> None:
        fired.append("early")
        timer.schedule("chained", 0, lambda: fired.append("chained"))  # due at 60: after "late"

    timer.schedule("late", 50, lambda: fired.append("late"))
    timer.schedule("early", 10, early)
    clock.advance(60)
    timer.poll()
    assert fired == ["early", "late", "chained"]


def test_an_operation_that_writes_runs_as_a_task_that_drain_waits_for() -> None:
    async def main() -> None:
        clock = FakeClock()
        timer = CoordinatorTimer(clock)
        written: list[int] = []

        async def write() -> None:
            await asyncio.sleep(0)
            written.append(1)

        timer.schedule("expire", 5, write)
        clock.advance(5)
        await timer.run_due()
        assert written == [1]
        timer.schedule("never", 5, write)
        timer.stop()
        clock.advance(5)
        timer.poll()
        assert written == [1] and not timer.is_scheduled("never")

    asyncio.run(asyncio.wait_for(main(), 5))


def test_on_the_system_clock_the_event_loop_runs_a_timer_at_its_deadline() -> None:
    async def main() -> None:
        timer = CoordinatorTimer(SYSTEM_CLOCK)
        done = asyncio.get_running_loop().create_future()
        start = SYSTEM_CLOCK.monotonic()
        timer.schedule("soon", 20, lambda: done.set_result(SYSTEM_CLOCK.monotonic()))
        try:
            fired_at = await asyncio.wait_for(done, 5)
        finally:
            timer.stop()
        assert fired_at - start >= 0.019

    asyncio.run(asyncio.wait_for(main(), 10))
