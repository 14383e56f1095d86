"""Flush policy for data nobody waits for (acks=0/1): eager by default, ``flush.messages`` and
``flush.ms`` when set; an acks=-1 waiter always flushes at once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tomyum.config import BrokerConfig
from tomyum.protocol.records import build_batch
from tomyum.storage.engine import TopicPartition
from tomyum.testing.store import TopicStore

TP = TopicPartition("f", 0)


def run(tmp_path: Path, configs: dict[str, Any], scenario: Any) -> None:
    async def main() -> None:
        store = TopicStore(tmp_path / "data", BrokerConfig())
        await store.start()
        try:
            await store.create_topic("f", 1, configs)
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def high_watermark_reaches(store: TopicStore, offset: int) -> asyncio.Future[None]:
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def seen(tp: TopicPartition, hw: int) -> None:
        if tp == TP and hw >= offset and not fut.done():
            fut.set_result(None)

    store.on_high_watermark(seen)
    return fut


async def append(store: TopicStore, n: int) -> None:
    for _ in range(n):
        await store.append(TP, memoryview(build_batch([(b"k", b"v")], timestamp=1)))


def test_by_default_unwaited_data_is_flushed_at_once(tmp_path: Path) -> None:
    async def scenario(store: TopicStore) -> None:
        reached = high_watermark_reaches(store, 3)
        await append(store, 3)  # like acks=1: nobody waits
        await asyncio.wait_for(reached, 10)

    run(tmp_path, {}, scenario)


def test_flush_messages_holds_data_until_enough_is_unflushed(tmp_path: Path) -> None:
    async def scenario(store: TopicStore) -> None:
        plog = store._log(TP)
        await append(store, 4)
        assert plog not in store._dirty and plog in store._flush_timers  # held: 4 < flush.messages
        reached = high_watermark_reaches(store, 5)
        await append(store, 1)
        await asyncio.wait_for(reached, 10)
        assert plog not in store._flush_timers

    run(tmp_path, {"flush.messages": 5, "flush.ms": 3_600_000}, scenario)


def test_flush_ms_flushes_held_data_in_time(tmp_path: Path) -> None:
    async def scenario(store: TopicStore) -> None:
        reached = high_watermark_reaches(store, 2)
        await append(store, 2)
        assert store.offsets(TP).high_watermark == 0
        await asyncio.wait_for(reached, 10)  # flushed by the flush.ms timer, nobody waiting

    run(tmp_path, {"flush.ms": 50}, scenario)


def test_an_acks_all_waiter_flushes_whatever_the_policy(tmp_path: Path) -> None:
    async def scenario(store: TopicStore) -> None:
        await append(store, 3)
        assert store.offsets(TP).high_watermark == 0
        await asyncio.wait_for(store.wait_durable(TP, 3), 10)
        assert store.offsets(TP).high_watermark == 3

    run(tmp_path, {"flush.messages": 1_000_000, "flush.ms": 3_600_000}, scenario)
