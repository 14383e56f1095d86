"""Wall clock jumps, forward and back, with an injected clock: transaction timeouts run on
the monotonic clock, retention deletes nothing early when the clock goes back, and the time
index never goes backwards."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.unit.test_txn_coordinator import produce, run
from tomyum.config import BrokerConfig
from tomyum.coordinator.txn import TransactionCoordinator
from tomyum.coordinator.txn.log import TxnState
from tomyum.protocol.records import build_batch
from tomyum.storage.engine import TopicPartition
from tomyum.testing.store import TopicStore
from tomyum.testing.clock import FakeClock

TP = TopicPartition("t", 0)
YEAR = 365 * 24 * 3_600_000


def test_transaction_timeouts_ignore_wall_clock_jumps(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, txns: TransactionCoordinator, clock: FakeClock) -> None:
        pid, epoch = await txns.init_producer_id("app", 10_000)
        await txns.add_partitions("app", pid, epoch, [("t", 0)])
        await produce(store, clock, pid, epoch, 0)
        clock.set_wall(clock.time_ms() + YEAR)  # forward a year: not a timeout
        assert await txns.abort_timed_out() == 0
        clock.set_wall(clock.time_ms() - 2 * YEAR)  # back two years
        clock.advance(10_001)  # ten seconds of real time pass
        assert await txns.abort_timed_out() == 1
        assert txns.txns["app"].state == TxnState.COMPLETE_ABORT

    run(tmp_path / "d", scenario)


def test_retention_deletes_nothing_early_when_the_clock_goes_back_and_the_time_index_never_does(
        tmp_path: Path) -> None:
    clock = FakeClock()

    async def main() -> None:
        store = TopicStore(tmp_path / "d", BrokerConfig(), clock)
        await store.start()
        try:
            await store.create_topic("t", 1, {"retention.ms": 3_600_000, "internal.segment.bytes": 1024,
                                              "message.timestamp.type": "LogAppendTime"})
            for i in range(40):
                r = await store.append(TP, memoryview(build_batch([(b"k", b"v" * 60)], timestamp=clock.time_ms())))
                await store.wait_durable(TP, r.last_offset + 1)
                clock.set_wall(clock.time_ms() + (-600_000 if i % 2 else 300_000))  # back and forth
            plog = store._log(TP)
            for seg in plog.segments:
                assert seg.time_index.timestamps == sorted(set(seg.time_index.timestamps))
            clock.set_wall(clock.time_ms() - YEAR)
            assert await store.enforce_retention() == 0
            assert plog.log_start_offset == 0
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 30))
