"""Parked fetches: woken the moment a partition's high watermark moves, never by polling.

A parked fetch registers its waiter, then checks whether a high watermark moved since its
last read: a move in between still counts, so no wake-up is lost (see handlers/fetch.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from tomyum.storage.engine import TopicPartition


class Waiter:
    """One parked fetch: a future resolved when any of its partitions gets new durable data."""

    __slots__ = ("_owner", "future", "tps")

    def __init__(self, owner: FetchWaiters, tps: list[TopicPartition]) -> None:
        self._owner = owner
        self.tps = tps
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def wait(self, timeout_s: float) -> bool:
        """True once woken (perhaps already), False if ``timeout_s`` passes first."""
        if self.future.done():
            return True
        if timeout_s <= 0:
            return False
        done, _ = await asyncio.wait({self.future}, timeout=timeout_s)
        return bool(done)

    def cancel(self) -> None:
        self._owner.unregister(self)


class FetchWaiters:
    def __init__(self) -> None:
        self._by_tp: dict[TopicPartition, set[Waiter]] = {}
        #: set by :meth:`close`: the broker is stopping, no fetch parks any more
        self.closed = False

    def register(self, tps: Iterable[TopicPartition]) -> Waiter:
        waiter = Waiter(self, list(tps))
        for tp in waiter.tps:
            self._by_tp.setdefault(tp, set()).add(waiter)
        return waiter

    def unregister(self, waiter: Waiter) -> None:
        for tp in waiter.tps:
            waiting = self._by_tp.get(tp)
            if waiting is not None:
                waiting.discard(waiter)
                if not waiting:
                    del self._by_tp[tp]
        if not waiter.future.done():
            waiter.future.cancel()

    def notify(self, tp: TopicPartition, high_watermark: int = 0) -> None:
        for waiter in self._by_tp.pop(tp, ()):
            if not waiter.future.done():
                waiter.future.set_result(None)

    def close(self) -> None:
        """The broker is stopping: wake every parked fetch, and have fetches answer with what
        they have instead of parking (again), as Kafka drops its fetch purgatory at shutdown."""
        self.closed = True
        for tp in list(self._by_tp):
            self.notify(tp)
