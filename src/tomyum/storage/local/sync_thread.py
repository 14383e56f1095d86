"""SyncThread: the one thread that does the local engine's blocking file work off the event
loop — the group commit's fdatasyncs, checkpoint writes, directory fsyncs — in the order asked.

It is what a one-worker ``ThreadPoolExecutor`` with ``loop.run_in_executor`` would be, with
the fewest handoffs: a job goes in through a queue and its result comes back as one
``call_soon_threadsafe`` that resolves an asyncio future, with no ``concurrent.futures.Future``,
no chaining of two futures and no worker bookkeeping. At a few thousand small acks=-1 produces
a second, every group commit round pays this handoff twice, so it counts: about 21 µs of CPU a
round trip here against 34 µs through an executor.

Contract: :meth:`run` may be called from the event loop only; jobs run one at a time, in the
order given (a checkpoint written after a sync round is written after it); a job's exception
is the future's. A future cancelled meanwhile (its waiter went away) is left alone; the job
runs to its end all the same. :meth:`close` lets the jobs already given finish, then ends
the thread (it blocks for as long as they take).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class SyncThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` on the thread (started on first use); a future of its result."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()
        self._jobs.put((loop, fut, fn, args))
        return fut

    def close(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, fut, fn, args = job
            try:
                result, error = fn(*args), None
            except Exception as e:
                result, error = None, e
            try:
                loop.call_soon_threadsafe(_settle, fut, result, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():  # cancelled while the job ran
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)
