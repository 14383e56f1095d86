"""Idempotence and transactions in one partition: the producer state machine, and the local
engine's producer snapshots, transaction index and recovery."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tomyum.config import BrokerConfig
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.records import build_batch, decode_records, iter_batches, parse_header
from tomyum.storage.engine import TopicPartition
from tomyum.testing.store import TopicStore
from tomyum.storage.local.producer_files import read_txn_index
from tomyum.storage.producer_state import MAX_SEQUENCE, ProducerStateManager
from tomyum.testing.clock import FakeClock

TP = TopicPartition("t", 0)


NOW = FakeClock().time_ms()


def batch(pid: int, epoch: int, seq: int, n: int = 1, *, txn: bool = False, value: bytes = b"v") -> bytes:
    return build_batch([(b"k", value)] * n, producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                       transactional=txn, timestamp=NOW)


# the state machine alone --------------------------------------------------------------------------

def write(state: ProducerStateManager, data: bytes, offset: int) -> None:
    h = parse_header(data)
    assert state.check(h) is None
    state.update(h, offset, 1000)


def test_in_sequence_batches_are_accepted_and_a_retry_is_recognised() -> None:
    state = ProducerStateManager()
    write(state, batch(7, 0, 0, 3), 0)
    write(state, batch(7, 0, 3, 2), 3)
    dup = state.check(parse_header(batch(7, 0, 0, 3)))
    assert dup is not None and (dup.first_offset, dup.last_offset) == (0, 2)
    dup = state.check(parse_header(batch(7, 0, 3, 2)))
    assert dup is not None and (dup.first_offset, dup.last_offset) == (3, 4)


def test_only_the_last_five_batches_are_remembered() -> None:
    state = ProducerStateManager()
    for i in range(6):
        write(state, batch(1, 0, i), i)
    assert state.check(parse_header(batch(1, 0, 5))) is not None
    with pytest.raises(KafkaError) as e:  # seq 0 fell out of the window: it is out of order now
        state.check(parse_header(batch(1, 0, 0)))
    assert e.value.code == ErrorCode.out_of_order_sequence_number


def test_a_sequence_gap_is_out_of_order() -> None:
    state = ProducerStateManager()
    write(state, batch(1, 0, 0, 2), 0)
    with pytest.raises(KafkaError) as e:
        state.check(parse_header(batch(1, 0, 5)))
    assert e.value.code == ErrorCode.out_of_order_sequence_number


def test_an_older_epoch_is_fenced_and_a_new_epoch_starts_at_zero() -> None:
    state = ProducerStateManager()
    write(state, batch(1, 3, 0, 2), 0)
    with pytest.raises(KafkaError) as e:
        state.check(parse_header(batch(1, 2, 2)))
    assert e.value.code == ErrorCode.invalid_producer_epoch
    with pytest.raises(KafkaError) as e:
        state.check(parse_header(batch(1, 4, 7)))
    assert e.value.code == ErrorCode.out_of_order_sequence_number
    write(state, batch(1, 4, 0), 2)
    assert state.producers[1].epoch == 4


def test_an_unknown_producer_may_start_at_any_sequence_and_sequences_wrap() -> None:
    state = ProducerStateManager()
    write(state, batch(9, 0, MAX_SEQUENCE), 0)
    write(state, batch(9, 0, 0), 1)  # after 2**31-1 comes 0
    assert state.producers[9].last_seq == 0


def test_transactions_hold_back_the_last_stable_offset_until_decided_durably() -> None:
    state = ProducerStateManager()
    write(state, batch(1, 0, 0, 2, txn=True), 10)     # offsets 10-11
    write(state, batch(2, 0, 0, 1, txn=True), 12)     # offset 12
    assert state.last_stable_offset(13) == 10
    assert state.complete(1, 0, False, 13, 0, 1000, high_watermark=13) is not None  # abort at 13
    assert state.last_stable_offset(13) == 10  # the marker is not durable yet
    assert state.last_stable_offset(14) == 12  # now it is; producer 2 is still open
    assert state.complete(2, 0, True, 14, 0, 1000, high_watermark=14) is None
    assert state.last_stable_offset(15) == 15
    assert [(a.producer_id, a.first_offset, a.last_offset) for a in state.aborted_between(0, 15)] == [(1, 10, 13)]
    assert state.aborted_between(14, 15) == []


def test_a_non_transactional_write_inside_an_open_transaction_is_refused() -> None:
    state = ProducerStateManager()
    write(state, batch(1, 0, 0, txn=True), 0)
    with pytest.raises(KafkaError) as e:
        state.check(parse_header(batch(1, 0, 1)))
    assert e.value.code == ErrorCode.invalid_txn_state


def test_a_marker_with_an_older_epoch_is_refused() -> None:
    state = ProducerStateManager()
    write(state, batch(1, 5, 0, txn=True), 0)
    with pytest.raises(KafkaError) as e:
        state.check_marker(1, 4, 0)
    assert e.value.code == ErrorCode.invalid_producer_epoch


def test_snapshots_round_trip_and_a_damaged_one_is_refused() -> None:
    state = ProducerStateManager()
    write(state, batch(1, 2, 0, 3), 0)
    write(state, batch(2, 0, 0, 1, txn=True), 3)
    data = state.snapshot_bytes()
    copy = ProducerStateManager()
    copy.load_snapshot(data)
    assert copy.check(parse_header(batch(1, 2, 0, 3))) is not None  # the last batch is a known retry
    assert copy.ongoing == {2: 3}
    damaged = bytearray(data)
    damaged[-1] ^= 0xFF
    with pytest.raises(ValueError):
        ProducerStateManager().load_snapshot(bytes(damaged))


def test_idle_producers_expire_but_not_with_an_open_transaction() -> None:
    state = ProducerStateManager()
    write(state, batch(1, 0, 0), 0)
    write(state, batch(2, 0, 0, txn=True), 1)
    assert state.expire(1000 + 86_400_000, 86_400_000) == [1]
    assert list(state.producers) == [2]


# the local engine ---------------------------------------------------------------------------------

Scenario = Callable[[TopicStore], Awaitable[None]]


def run(data_dir: Path, scenario: Scenario, clock: FakeClock | None = None, **configs: object) -> None:
    async def main() -> None:
        store = TopicStore(data_dir, BrokerConfig(), clock or FakeClock())
        await store.start()
        try:
            if "t" not in store.topics():
                await store.create_topic("t", 1, dict(configs))
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 30))


async def append(store: TopicStore, data: bytes) -> tuple[int, int]:
    r = await store.append(TP, memoryview(data))
    await store.wait_durable(TP, r.last_offset + 1)
    return r.base_offset, r.last_offset


def values(store: TopicStore) -> list[bytes | None]:
    plog = store._log(TP)
    data = b"".join(seg.read(0, seg.size) for seg in plog.segments)
    return [r.value for h in iter_batches(data) if not h.is_control
            for r in decode_records(data[h.position : h.end])]


def test_a_retried_batch_is_not_written_twice_and_gets_its_offsets(tmp_path: Path) -> None:
    async def scenario(store: TopicStore) -> None:
        assert await append(store, batch(3, 0, 0, 2, value=b"a")) == (0, 1)
        assert await append(store, batch(3, 0, 2, 1, value=b"b")) == (2, 2)
        assert await append(store, batch(3, 0, 0, 2, value=b"a")) == (0, 1)
        assert store.offsets(TP).log_end_offset == 3
        with pytest.raises(KafkaError) as e:
            await append(store, batch(3, 0, 9))
        assert e.value.code == ErrorCode.out_of_order_sequence_number

    run(tmp_path / "d", scenario)


def test_producer_state_survives_a_clean_restart_and_a_crash(tmp_path: Path) -> None:
    d = tmp_path / "d"

    async def first(store: TopicStore) -> None:
        await append(store, batch(4, 1, 0, 2))
        store._log(TP).roll()  # writes a snapshot at offset 2
        await append(store, batch(4, 1, 2, 2))  # replayed from the log after a crash

    run(d, first, **{"segment.bytes": 1 << 20})

    async def after_clean(store: TopicStore) -> None:
        assert await append(store, batch(4, 1, 2, 2)) == (2, 3)  # a retry, recognised
        with pytest.raises(KafkaError) as e:
            await append(store, batch(4, 0, 4))
        assert e.value.code == ErrorCode.invalid_producer_epoch

    run(d, after_clean)
    for snap in d.glob("t-0/*.snapshot"):  # as after a crash: only the roll's snapshot is left
        if int(snap.stem) > 2:
            snap.unlink()
    (d / ".kafka_cleanshutdown").unlink(missing_ok=True)

    async def after_crash(store: TopicStore) -> None:
        assert await append(store, batch(4, 1, 2, 2)) == (2, 3)
        assert await append(store, batch(4, 1, 4, 1)) == (4, 4)

    run(d, after_crash)


def test_markers_open_and_close_transactions_and_aborts_are_indexed(tmp_path: Path) -> None:
    d = tmp_path / "d"

    async def first(store: TopicStore) -> None:
        await append(store, batch(5, 0, 0, 2, txn=True, value=b"aborted"))   # 0-1
        await append(store, batch(6, 0, 0, 1, txn=True, value=b"open"))      # 2
        assert store.offsets(TP).last_stable_offset == 0
        r = await store.append_marker(TP, 5, 0, False, 0)                    # 3: abort of 5
        await store.wait_durable(TP, r.last_offset + 1)
        assert store.offsets(TP).last_stable_offset == 2
        read = await store.read(TP, 0, 1 << 20, read_committed=True)
        assert read.last_stable_offset == 2 and [(a.producer_id, a.first_offset) for a in read.aborted] == [(5, 0)]
        assert len(list(iter_batches(read.records))) == 1  # only the aborted batch is below the LSO

    run(d, first)
    assert [a.last_offset for a in read_txn_index(d / "t-0" / "00000000000000000000.txnindex")] == [3]

    async def after(store: TopicStore) -> None:
        assert store.offsets(TP).last_stable_offset == 2  # producer 6 is still open after restart
        r = await store.append_marker(TP, 6, 0, True, 0)
        await store.wait_durable(TP, r.last_offset + 1)
        assert store.offsets(TP).last_stable_offset == 5
        read = await store.read(TP, 0, 1 << 20, read_committed=True)
        assert [(a.producer_id, a.first_offset) for a in read.aborted] == [(5, 0)]
        assert values(store) == [b"aborted", b"aborted", b"open"]

    run(d, after)


def test_an_idempotent_produce_with_two_batches_is_refused(tmp_path: Path) -> None:
    async def scenario(store: TopicStore) -> None:
        with pytest.raises(KafkaError) as e:
            await append(store, batch(1, 0, 0) + batch(1, 0, 1))
        assert e.value.code == ErrorCode.invalid_record

    run(tmp_path / "d", scenario)


def test_the_cleaner_stops_at_the_last_stable_offset(tmp_path: Path) -> None:
    async def scenario(store: TopicStore) -> None:
        await append(store, batch(8, 0, 0, 1, txn=True, value=b"undecided"))
        plog = store._log(TP)
        for i in range(3):
            plog.roll()
            await append(store, build_batch([(b"k", b"v%d" % i)], timestamp=NOW))
        plog.roll()
        assert await store.clean_once(force=True) == 0  # everything is above the open transaction
        r = await store.append_marker(TP, 8, 0, True, 0)
        await store.wait_durable(TP, r.last_offset + 1)
        plog.roll()
        assert await store.clean_once(force=True) == 1

    run(tmp_path / "d", scenario, **{"cleanup.policy": ["compact"], "segment.bytes": 1 << 20})
