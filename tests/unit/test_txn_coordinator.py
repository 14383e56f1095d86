"""The transaction coordinator with a fake clock: its state machine, fencing, timeouts, expiry,
and recovery of transactions that were mid-commit. Scenarios within one broker life run on
both log engines (the memory one keeps them fast); those across a restart on the local one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tomyum.config import BrokerConfig
from tomyum.coordinator.group.offsets import OffsetStore
from tomyum.coordinator.group.offsets_log import CommittedOffset
from tomyum.coordinator.txn import TransactionCoordinator
from tomyum.coordinator.txn.log import TxnRecord, TxnState, parse_txn_value, txn_value
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.records import build_batch
from tomyum.storage.engine import TopicPartition
from tomyum.testing.store import ENGINES, TopicStore
from tomyum.testing.clock import FakeClock

TP = TopicPartition("t", 0)
Scenario = Callable[[TopicStore, TransactionCoordinator, FakeClock], Awaitable[None]]


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(data_dir: Path, scenario: Scenario, clock: FakeClock | None = None, engine: str = "local") -> None:
    clock = clock or FakeClock()

    async def main() -> None:
        config = BrokerConfig()
        store = TopicStore(data_dir, config, clock, engine=ENGINES[engine](data_dir, config, clock))
        await store.start()
        offsets = OffsetStore(store, 3, clock)
        await offsets.start()
        txns = TransactionCoordinator(store, offsets, config, clock)
        txns.num_partitions = 3
        await txns.start()
        try:
            if "t" not in store.topics():
                await store.create_topic("t", 1, {})
            await scenario(store, txns, clock)
        finally:
            await txns.stop()
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 30))


async def produce(store: TopicStore, clock: FakeClock, pid: int, epoch: int, seq: int) -> int:
    data = build_batch([(b"k", b"v")], producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                       transactional=True, timestamp=clock.time_ms())
    r = await store.append(TP, memoryview(data))
    await store.wait_durable(TP, r.last_offset + 1)
    return r.base_offset


def code_of(e: pytest.ExceptionInfo[KafkaError]) -> ErrorCode:
    return e.value.code


def test_the_log_value_round_trips() -> None:
    rec = TxnRecord(7, 3, 60000, TxnState.ONGOING, {"a": {0, 2}, "b": {1}}, 1000, 900)
    assert parse_txn_value(txn_value(rec)) == rec


def test_commit_writes_markers_and_moves_the_last_stable_offset(tmp_path: Path, engine: str) -> None:
    async def scenario(store: TopicStore, txns: TransactionCoordinator, clock: FakeClock) -> None:
        pid, epoch = await txns.init_producer_id("app", 60000)
        assert epoch == 0
        await txns.add_partitions("app", pid, epoch, [("t", 0)])
        await produce(store, clock, pid, epoch, 0)
        assert store.offsets(TP).last_stable_offset == 0
        await txns.end_txn("app", pid, epoch, commit=True)
        assert store.offsets(TP).last_stable_offset == store.offsets(TP).high_watermark == 2
        assert txns.txns["app"].state == TxnState.COMPLETE_COMMIT
        await txns.end_txn("app", pid, epoch, commit=True)  # a retry is answered the same
        with pytest.raises(KafkaError) as e:
            await txns.end_txn("app", pid, epoch, commit=False)
        assert code_of(e) == ErrorCode.invalid_txn_state

    run(tmp_path / "d", scenario, engine=engine)


def test_a_new_producer_fences_the_old_one_and_aborts_its_transaction(tmp_path: Path, engine: str) -> None:
    async def scenario(store: TopicStore, txns: TransactionCoordinator, clock: FakeClock) -> None:
        pid, old = await txns.init_producer_id("app", 60000)
        await txns.add_partitions("app", pid, old, [("t", 0)])
        await produce(store, clock, pid, old, 0)
        pid2, new = await txns.init_producer_id("app", 60000)
        assert pid2 == pid and new > old + 1  # one bump to abort the zombie's transaction, one for us
        assert store.offsets(TP).last_stable_offset == store.offsets(TP).high_watermark
        read = await store.read(TP, 0, 1 << 20, read_committed=True)
        assert [a.producer_id for a in read.aborted] == [pid]
        for call in (txns.add_partitions("app", pid, old, [("t", 0)]), txns.end_txn("app", pid, old, True)):
            with pytest.raises(KafkaError) as e:
                await call
            assert code_of(e) == ErrorCode.producer_fenced
        with pytest.raises(KafkaError) as e:
            await produce(store, clock, pid, old, 1)
        assert code_of(e) == ErrorCode.invalid_producer_epoch
        with pytest.raises(KafkaError) as e:
            await txns.end_txn("app", pid + 100, new, True)
        assert code_of(e) == ErrorCode.invalid_producer_id_mapping

    run(tmp_path / "d", scenario, engine=engine)


def test_the_periodic_timeout_check_runs_on_the_coordinator_timer(tmp_path: Path, engine: str) -> None:
    """transaction.abort.timed.out.transaction.cleanup.interval.ms (10 s by default) on the fake
    clock: the check that runs after the transaction's timeout aborts it, with no real wait."""
    async def scenario(store: TopicStore, txns: TransactionCoordinator, clock: FakeClock) -> None:
        pid, epoch = await txns.init_producer_id("slow", 15_000)
        await txns.add_partitions("slow", pid, epoch, [("t", 0)])
        await produce(store, clock, pid, epoch, 0)
        clock.advance(10_000)  # the first check: not timed out yet
        await txns.timer.run_due()
        assert txns.txns["slow"].state == TxnState.ONGOING
        clock.advance(10_000)  # the second: 20 s > 15 s
        await txns.timer.run_due()
        assert txns.txns["slow"].state == TxnState.COMPLETE_ABORT

    run(tmp_path / "d", scenario, engine=engine)


def test_a_transaction_older_than_its_timeout_is_aborted_and_its_producer_fenced(tmp_path: Path, engine: str) -> None:
    async def scenario(store: TopicStore, txns: TransactionCoordinator, clock: FakeClock) -> None:
        pid, epoch = await txns.init_producer_id("slow", 10_000)
        await txns.add_partitions("slow", pid, epoch, [("t", 0)])
        await produce(store, clock, pid, epoch, 0)
        clock.advance(10_000)
        assert await txns.abort_timed_out() == 0
        clock.advance(1)
        assert await txns.abort_timed_out() == 1
        assert txns.txns["slow"].state == TxnState.COMPLETE_ABORT
        assert store.offsets(TP).last_stable_offset == store.offsets(TP).high_watermark
        with pytest.raises(KafkaError) as e:
            await txns.end_txn("slow", pid, epoch, True)
        assert code_of(e) == ErrorCode.producer_fenced

    run(tmp_path / "d", scenario, engine=engine)


def test_invalid_timeouts_and_concurrent_transitions_are_refused(tmp_path: Path, engine: str) -> None:
    async def scenario(store: TopicStore, txns: TransactionCoordinator, clock: FakeClock) -> None:
        with pytest.raises(KafkaError) as e:
            await txns.init_producer_id("x", 900_001)
        assert code_of(e) == ErrorCode.invalid_transaction_timeout
        pid, epoch = await txns.init_producer_id("x", 1000)
        first = asyncio.ensure_future(txns.add_partitions("x", pid, epoch, [("t", 0)]))
        await asyncio.sleep(0)
        with pytest.raises(KafkaError) as e:
            await txns.end_txn("x", pid, epoch, True)
        assert code_of(e) == ErrorCode.concurrent_transactions
        await first

    run(tmp_path / "d", scenario, engine=engine)


def test_transactional_offsets_apply_on_commit_and_vanish_on_abort(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, txns: TransactionCoordinator, clock: FakeClock) -> None:
        offsets = txns.offsets
        pid, epoch = await txns.init_producer_id("app", 60000)
        for commit, offset in ((False, 5), (True, 7)):
            await txns.add_offsets("app", pid, epoch, "g")
            await offsets.txn_commit("g", pid, epoch, [("t", 0, CommittedOffset(offset, -1, "", 0))])
            assert offsets.unstable("g", "t", 0)
            await txns.end_txn("app", pid, epoch, commit)
            assert not offsets.unstable("g", "t", 0)
        assert offsets.fetch("g", "t", 0).offset == 7

    run(tmp_path / "d", scenario)
    # and after a restart, the replay of __consumer_offsets gives the same answer
    async def again(store: TopicStore, txns: TransactionCoordinator, clock: FakeClock) -> None:
        assert txns.offsets.fetch("g", "t", 0).offset == 7

    run(tmp_path / "d", again)


def test_a_transaction_prepared_before_a_crash_completes_on_start(tmp_path: Path) -> None:
    d = tmp_path / "d"
    state: dict[str, int] = {}

    async def prepare(store: TopicStore, txns: TransactionCoordinator, clock: FakeClock) -> None:
        pid, epoch = await txns.init_producer_id("app", 60000)
        await txns.add_partitions("app", pid, epoch, [("t", 0)])
        await txns.add_offsets("app", pid, epoch, "g")
        await produce(store, clock, pid, epoch, 0)
        await txns.offsets.txn_commit("g", pid, epoch, [("t", 0, CommittedOffset(1, -1, "", 0))])
        # the coordinator wrote PrepareCommit, then the broker died before any marker
        rec = txns.txns["app"]
        await txns._write("app", TxnRecord(rec.producer_id, rec.producer_epoch, rec.timeout_ms,
                                           TxnState.PREPARE_COMMIT, rec.partitions, clock.time_ms(),
                                           rec.start_ms))
        state["pid"] = pid

    run(d, prepare)

    async def recovered(store: TopicStore, txns: TransactionCoordinator, clock: FakeClock) -> None:
        assert txns.txns["app"].state == TxnState.COMPLETE_COMMIT
        assert store.offsets(TP).last_stable_offset == store.offsets(TP).high_watermark
        assert txns.offsets.fetch("g", "t", 0).offset == 1
        pid, epoch = await txns.init_producer_id("app", 60000)
        assert pid == state["pid"] and epoch == 1

    run(d, recovered)


def test_idle_transactional_ids_expire(tmp_path: Path, engine: str) -> None:
    async def scenario(store: TopicStore, txns: TransactionCoordinator, clock: FakeClock) -> None:
        await txns.init_producer_id("old", 60000)
        clock.advance(txns.config["transactional.id.expiration.ms"])
        await txns.init_producer_id("new", 60000)
        assert await txns.expire_transactional_ids() == 1
        assert set(txns.txns) == {"new"}

    run(tmp_path / "d", scenario, engine=engine)


def test_offsets_of_empty_groups_expire_after_the_retention(tmp_path: Path, engine: str) -> None:
    hour = 3_600_000

    async def scenario(store: TopicStore, txns: TransactionCoordinator, clock: FakeClock) -> None:
        offsets = txns.offsets
        for group in ("idle", "busy", "recent"):
            await offsets.commit(group, [("t", 0, CommittedOffset(3, -1, "", clock.time_ms()))])
        clock.advance(hour)
        assert await offsets.expire(2 * hour, active={"busy", "recent"}) == 0
        clock.advance(hour)
        # "recent" was seen with members an hour ago: its offsets wait a full retention from then
        assert await offsets.expire(2 * hour, active={"busy"}) == 1
        assert offsets.fetch("idle", "t", 0) is None
        assert offsets.fetch("recent", "t", 0) is not None and offsets.fetch("busy", "t", 0) is not None
        clock.advance(hour)
        assert await offsets.expire(2 * hour, active={"busy"}) == 1
        assert offsets.groups() == {"busy"}

    run(tmp_path / "d", scenario, engine=engine)
