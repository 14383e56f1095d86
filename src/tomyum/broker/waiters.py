"""Parked fetches: woken the moment a partition's high watermark moves, never by polling."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from tomyum.storage.engine import TopicPartition


class FetchWaiters:
    def __init__(self) -> None:
        self._by_tp: dict[TopicPartition, set[asyncio.Future[None]]] = {}

    def notify(self, tp: TopicPartition, high_watermark: int = 0) -> None:
        for fut in self._by_tp.pop(tp, ()):
            if not fut.done():
                fut.set_result(None)

    async def wait(self, tps: Iterable[TopicPartition], timeout_s: float) -> bool:
        """Wait until any of ``tps`` gets new durable data; False on timeout."""
        if timeout_s <= 0:
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        tps = list(tps)
        for tp in tps:
            self._by_tp.setdefault(tp, set()).add(fut)
        try:
            done, _ = await asyncio.wait({fut}, timeout=timeout_s)
            return bool(done)
        finally:
            for tp in tps:
                waiting = self._by_tp.get(tp)
                if waiting is not None:
                    waiting.discard(fut)
                    if not waiting:
                        del self._by_tp[tp]
            if not fut.done():
                fut.cancel()

    def wake_all(self) -> None:
        for tp in list(self._by_tp):
            self.notify(tp)
