"""SyncThread (storage/local/sync_thread.py): the local engine's one thread for blocking file
work — jobs in the order given, results and errors back on the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tomyum.errors import StorageError
from tomyum.storage.local.sync_thread import SyncThread


def test_jobs_run_off_the_loop_one_at_a_time_in_order_and_answer_on_it() -> None:
    ran: list[tuple[int, str]] = []

    def job(i: int) -> int:
        ran.append((i, threading.current_thread().name))
        return i * 10

    async def scenario() -> None:
        io = SyncThread("group-commit")
        try:
            results = await asyncio.wait_for(asyncio.gather(*(io.run(job, i) for i in range(50))), 10)
        finally:
            io.close()
        assert results == [i * 10 for i in range(50)]

    asyncio.run(scenario())
    assert ran == [(i, "group-commit") for i in range(50)]


def test_a_job_that_raises_fails_its_future_and_the_thread_goes_on() -> None:
    def fail() -> None:
        raise StorageError("fsync failed: Input/output error")

    async def scenario() -> None:
        io = SyncThread("group-commit")
        try:
            with pytest.raises(StorageError, match="Input/output error"):
                await asyncio.wait_for(io.run(fail), 10)
            assert await asyncio.wait_for(io.run(lambda: "next"), 10) == "next"
        finally:
            io.close()

    asyncio.run(scenario())


def test_a_cancelled_waiter_leaves_the_job_to_finish_and_close_waits_for_it() -> None:
    release, finished = threading.Event(), threading.Event()

    def slow() -> None:
        release.wait(10)
        finished.set()

    async def scenario() -> None:
        io = SyncThread("group-commit")
        fut = io.run(slow)
        fut.cancel()
        release.set()
        io.close()
        assert finished.is_set()
        await asyncio.sleep(0)  # the settle call, if any, finds the future cancelled
        assert fut.cancelled()

    asyncio.run(scenario())
