"""The LogStore contract (storage/engine.py), run against every engine: the local one on a temp
dir (its group commit through io_uring, and through its thread as where io_uring is missing)
and the in-memory one. Each test is one guarantee a broker or coordinator relies on,
driven through the engine's own API (partitions prepared and published as the metadata layer
does). Where the engines differ by design (what survives a restart) the test says so."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tomyum.config import BrokerConfig, TopicConfig
from tomyum.errors import ErrorCode, KafkaError, StorageError
from tomyum.protocol.records import build_batch, complete_length, decode_records, iter_batches
from tomyum.storage.engine import AbortedTransaction, AppendResult, LogStore, PartitionSpec, TopicPartition
from tomyum.testing.clock import FakeClock
from tomyum.testing.store import ENGINES

TP = TopicPartition("t", 0)
OTHER = TopicPartition("u", 0)
NOW = 1_700_000_000_000


@dataclass
class Harness:
    engine: LogStore
    clock: FakeClock
    config: BrokerConfig
    topic_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def spec(self, **overrides: Any) -> PartitionSpec:
        settings: dict[str, Any] = {"message.timestamp.after.max.ms": 2**62}
        settings.update(overrides)
        return PartitionSpec(topic_id=self.topic_id, config=TopicConfig(self.config, settings))

    async def append(self, data: bytes, tp: TopicPartition = TP) -> AppendResult:
        return await self.engine.append(tp, memoryview(data))

    async def durable(self, data: bytes, tp: TopicPartition = TP) -> AppendResult:
        r = await self.append(data, tp)
        await self.engine.wait_durable(tp, r.last_offset + 1)
        return r

    async def read_all(self, offset: int = 0, **kwargs: Any) -> bytes:
        result = await self.engine.read(TP, offset, 1 << 20, **kwargs)
        assert isinstance(result.records, bytes)
        return result.records


Scenario = Callable[[Harness], Awaitable[None]]


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(kind: str, data_dir: Path, scenario: Scenario, **topic_config: Any) -> None:
    """Start engine ``kind`` with partition ``TP`` published (``topic_config`` its overrides)."""

    async def main() -> None:
        config, clock = BrokerConfig(), FakeClock(NOW)
        h = Harness(ENGINES[kind](data_dir, config, clock), clock, config)
        await h.engine.start({})
        await h.engine.prepare_partitions({TP: h.spec(**topic_config)})
        h.engine.publish_partitions([TP])
        try:
            await scenario(h)
        finally:
            await h.engine.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def batch(*values: bytes, ts: int = NOW, **kwargs: Any) -> bytes:
    return build_batch([(b"k", v) for v in values], timestamp=ts, **kwargs)


def base_offsets(records: bytes) -> list[int]:
    return [h.base_offset for h in iter_batches(records)]


def code(e: pytest.ExceptionInfo[KafkaError]) -> ErrorCode:
    return e.value.code


# offsets and durability ------------------------------------------------------------------------

def test_offsets_are_dense_across_batches_in_append_order(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        results = [await h.append(batch(*[b"v"] * n)) for n in (1, 3, 2)]
        assert [(r.base_offset, r.last_offset) for r in results] == [(0, 0), (1, 3), (4, 5)]
        assert h.engine.offsets(TP).log_end_offset == 6

    run(engine, tmp_path, scenario)


def test_a_batch_is_served_only_once_durable_and_wait_durable_returns_then(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        moves: list[tuple[TopicPartition, int]] = []
        h.engine.on_high_watermark(lambda tp, hw: moves.append((tp, hw)))
        r = await h.append(batch(b"a", b"b"))
        offsets = h.engine.offsets(TP)
        assert (offsets.high_watermark, offsets.log_end_offset) == (0, 2)  # written, not durable
        assert await h.read_all() == b""
        await h.engine.wait_durable(TP, r.last_offset + 1)
        assert h.engine.offsets(TP).high_watermark == 2
        assert moves == [(TP, 2)]
        assert base_offsets(await h.read_all()) == [0]
        await h.engine.wait_durable(TP, 1)  # already durable: returns at once

    run(engine, tmp_path, scenario)


def test_durable_future_resolves_once_durable_and_is_none_when_already(engine: str, tmp_path: Path) -> None:
    """``durable_future``: ``wait_durable`` without a coroutine (the acks=-1 Produce path)."""
    async def scenario(h: Harness) -> None:
        r = await h.append(batch(b"a", b"b"))
        fut = h.engine.durable_future(TP, r.last_offset + 1)
        assert fut is not None and not fut.done()
        await asyncio.wait_for(fut, 10)
        assert h.engine.offsets(TP).high_watermark == 2
        assert h.engine.durable_future(TP, 2) is None

    run(engine, tmp_path, scenario)


def test_call_when_durable_calls_back_once_durable_in_order_and_not_when_already(engine: str, tmp_path: Path) -> None:
    """``call_when_durable``: the acks=-1 Produce path without a future — each callback once,
    with None, when the high watermark passes its offset, in offset order; False (and no call)
    for an offset already durable; a callback that raises does not keep the others waiting."""
    async def scenario(h: Harness) -> None:
        told: list[tuple[str, Exception | None, int]] = []

        def tell(name: str) -> Callable[[Exception | None], None]:
            return lambda error: told.append((name, error, h.engine.offsets(TP).high_watermark))

        def broken(error: Exception | None) -> None:
            raise RuntimeError("a waiter's bug")

        r = await h.append(batch(b"a", b"b"))
        assert h.engine.call_when_durable(TP, r.last_offset + 1, tell("second"))
        assert h.engine.call_when_durable(TP, 1, broken)
        assert h.engine.call_when_durable(TP, 1, tell("first"))
        assert told == []
        await h.engine.wait_durable(TP, r.last_offset + 1)
        assert told == [("first", None, 2), ("second", None, 2)]
        assert not h.engine.call_when_durable(TP, 2, tell("late"))
        assert len(told) == 2

    run(engine, tmp_path, scenario)


def test_a_removed_partition_tells_its_durability_callbacks_why(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.durable(batch(b"v"))
        errors: list[Exception | None] = []
        assert h.engine.call_when_durable(TP, 10, errors.append)  # past the log end: waits
        await h.engine.remove_partitions([TP])
        assert len(errors) == 1 and isinstance(errors[0], KafkaError)
        assert errors[0].code == ErrorCode.unknown_topic_or_partition
        with pytest.raises(KafkaError) as e:
            h.engine.call_when_durable(TP, 10, errors.append)
        assert code(e) == ErrorCode.unknown_topic_or_partition

    run(engine, tmp_path, scenario)


def test_a_read_from_inside_a_batch_returns_the_batch_holding_it(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.durable(batch(b"0"))
        await h.durable(batch(b"1", b"2", b"3"))
        await h.durable(batch(b"4"))
        data = await h.read_all(2)
        assert base_offsets(data) == [1, 4]
        assert [r.value for r in decode_records(data)][:3] == [b"1", b"2", b"3"]

    run(engine, tmp_path, scenario)


def test_max_bytes_cuts_the_last_batch_short_and_min_one_returns_the_first_whole(engine: str,
                                                                                tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        size = len(batch(b"x" * 100))
        for _ in range(4):
            await h.durable(batch(b"x" * 100))
        cut = await h.engine.read(TP, 0, size + 10)
        assert isinstance(cut.records, bytes)
        assert len(cut.records) == size + 10 and complete_length(cut.records) == size
        whole = await h.engine.read(TP, 0, 10, min_one=True)
        assert isinstance(whole.records, bytes) and len(whole.records) == size
        part = await h.engine.read(TP, 0, 10, min_one=False)
        assert isinstance(part.records, bytes) and len(part.records) == 10
        assert complete_length(part.records) == 0
        everything = await h.engine.read(TP, 1, 1 << 20)
        assert isinstance(everything.records, bytes) and base_offsets(everything.records) == [1, 2, 3]

    run(engine, tmp_path, scenario)


def test_nothing_at_or_past_the_high_watermark_is_read(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        for i in range(3):
            await h.durable(batch(b"%d" % i))
        await h.append(batch(b"not yet durable"))
        assert base_offsets(await h.read_all()) == [0, 1, 2]
        assert await h.read_all(3) == b""
        with pytest.raises(KafkaError) as e:
            await h.engine.read(TP, 5, 100)  # past the log end
        assert code(e) == ErrorCode.offset_out_of_range

    run(engine, tmp_path, scenario)


# validation at append ----------------------------------------------------------------------------

def test_a_request_with_one_bad_batch_is_refused_whole(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        control = build_batch([(b"\0\0\0\1", b"\0\0\0\0\0\0")], timestamp=NOW, control=True)
        with pytest.raises(KafkaError) as e:
            await h.append(batch(b"good") + control)
        assert code(e) == ErrorCode.invalid_record
        assert h.engine.offsets(TP).log_end_offset == 0

    run(engine, tmp_path, scenario)


def test_a_timestamp_outside_the_topic_range_is_refused(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        with pytest.raises(KafkaError) as e:
            await h.append(batch(b"old", ts=NOW - 10_000))
        assert code(e) == ErrorCode.invalid_timestamp

    run(engine, tmp_path, scenario, **{"message.timestamp.before.max.ms": 1000})


def test_a_compacted_topic_refuses_records_without_a_key(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        with pytest.raises(KafkaError) as e:
            await h.append(build_batch([(None, b"v")], timestamp=NOW))
        assert code(e) == ErrorCode.invalid_record
        assert (await h.append(batch(b"keyed"))).base_offset == 0

    run(engine, tmp_path, scenario, **{"cleanup.policy": "compact"})


def test_a_log_append_time_topic_stamps_batches_with_the_broker_time(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        r = await h.durable(batch(b"v", ts=NOW - 5))
        assert r.log_append_time == NOW
        assert [rec.timestamp for rec in decode_records(await h.read_all())] == [NOW]

    run(engine, tmp_path, scenario, **{"message.timestamp.type": "LogAppendTime"})


def test_set_partition_config_takes_effect_on_the_next_append(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.append(batch(b"x" * 500))
        h.engine.set_partition_config(TP, h.spec(**{"max.message.bytes": 200}).config)
        with pytest.raises(KafkaError) as e:
            await h.append(batch(b"x" * 500))
        assert code(e) == ErrorCode.message_too_large

    run(engine, tmp_path, scenario)


def test_a_batch_larger_than_a_segment_is_refused_as_kafka_does(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        with pytest.raises(KafkaError) as e:
            await h.append(batch(*[b"x" * 100] * 30))
        assert code(e) == ErrorCode.record_list_too_large
        await h.append(batch(b"x" * 100))

    run(engine, tmp_path, scenario, **{"internal.segment.bytes": 2000})


# idempotent and transactional producers ----------------------------------------------------------

def test_an_idempotent_retry_is_answered_with_its_original_offsets_and_not_written_again(
        engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        first = await h.durable(batch(b"a", b"b", producer_id=7, producer_epoch=0, base_sequence=0))
        await h.durable(batch(b"c", producer_id=7, producer_epoch=0, base_sequence=2))
        retry = await h.append(batch(b"a", b"b", producer_id=7, producer_epoch=0, base_sequence=0))
        assert (retry.base_offset, retry.last_offset) == (first.base_offset, first.last_offset) == (0, 1)
        assert h.engine.offsets(TP).log_end_offset == 3
        [info] = h.engine.producers(TP)
        assert (info.producer_id, info.producer_epoch, info.last_sequence) == (7, 0, 2)
        assert info.current_txn_start_offset == -1

    run(engine, tmp_path, scenario)


def test_a_sequence_gap_is_out_of_order(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.append(batch(b"a", producer_id=7, producer_epoch=0, base_sequence=0))
        with pytest.raises(KafkaError) as e:
            await h.append(batch(b"c", producer_id=7, producer_epoch=0, base_sequence=2))
        assert code(e) == ErrorCode.out_of_order_sequence_number
        assert h.engine.offsets(TP).log_end_offset == 1

    run(engine, tmp_path, scenario)


def test_an_older_producer_epoch_is_fenced_for_batches_and_markers(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.append(batch(b"a", producer_id=7, producer_epoch=1, base_sequence=0))
        with pytest.raises(KafkaError) as e:
            await h.append(batch(b"b", producer_id=7, producer_epoch=0, base_sequence=1))
        assert code(e) == ErrorCode.invalid_producer_epoch
        with pytest.raises(KafkaError) as e:
            await h.engine.append_marker(TP, 7, 0, True, 0)
        assert code(e) == ErrorCode.invalid_producer_epoch

    run(engine, tmp_path, scenario)


def txn_batch(value: bytes, pid: int, seq: int) -> bytes:
    return batch(value, producer_id=pid, producer_epoch=0, base_sequence=seq, transactional=True)


def test_an_open_transaction_holds_the_last_stable_offset_for_read_committed(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.durable(batch(b"plain"))
        await h.durable(txn_batch(b"t", 7, 0))
        await h.durable(batch(b"after"))
        offsets = h.engine.offsets(TP)
        assert (offsets.last_stable_offset, offsets.high_watermark) == (1, 3)
        committed = await h.engine.read(TP, 0, 1 << 20, read_committed=True)
        assert isinstance(committed.records, bytes) and base_offsets(committed.records) == [0]
        assert committed.last_stable_offset == 1 and committed.aborted == ()
        assert base_offsets(await h.read_all()) == [0, 1, 2]  # read_uncommitted reads to the hw
        assert h.engine.producers(TP)[0].current_txn_start_offset == 1

    run(engine, tmp_path, scenario)


def test_a_marker_decides_its_transaction_only_once_durable(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.durable(txn_batch(b"t", 7, 0))
        marker = await h.engine.append_marker(TP, 7, 0, True, 0)
        assert marker.base_offset == 1
        assert h.engine.offsets(TP).last_stable_offset == 0  # the commit is not durable yet
        await h.engine.wait_durable(TP, 2)
        offsets = h.engine.offsets(TP)
        assert offsets.last_stable_offset == offsets.high_watermark == 2
        result = await h.engine.read(TP, 0, 1 << 20, read_committed=True)
        assert isinstance(result.records, bytes) and base_offsets(result.records) == [0, 1]
        assert result.aborted == ()

    run(engine, tmp_path, scenario)


def test_an_aborted_transaction_is_listed_for_read_committed_readers(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.durable(batch(b"plain"))
        await h.durable(txn_batch(b"doomed", 7, 0))
        await h.durable(txn_batch(b"kept", 8, 0))
        await h.engine.append_marker(TP, 7, 0, False, 0)
        await h.engine.append_marker(TP, 8, 0, True, 0)
        await h.engine.wait_durable(TP, 5)
        result = await h.engine.read(TP, 0, 1 << 20, read_committed=True)
        assert result.last_stable_offset == 5
        assert result.aborted == (AbortedTransaction(7, 1),)
        assert isinstance(result.records, bytes) and base_offsets(result.records) == [0, 1, 2, 3, 4]
        later = await h.engine.read(TP, 4, 1 << 20, read_committed=True)
        assert later.aborted == ()  # the abort ended before offset 4

    run(engine, tmp_path, scenario)


# the log start ---------------------------------------------------------------------------------------

def test_delete_records_moves_the_log_start_offset_and_reads_below_it_are_out_of_range(
        engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        for i in range(4):
            await h.durable(batch(b"%d" % i, b"%d" % i))  # offsets 0-7, two a batch
        assert await h.engine.delete_records(TP, 3) == 3
        offsets = h.engine.offsets(TP)
        assert (offsets.log_start_offset, offsets.high_watermark) == (3, 8)
        assert base_offsets(await h.read_all(3)) == [2, 4, 6]  # from the batch holding offset 3
        with pytest.raises(KafkaError) as e:
            await h.engine.read(TP, 1, 100)
        assert code(e) == ErrorCode.offset_out_of_range
        assert await h.engine.delete_records(TP, 2) == 3  # never moves back
        assert await h.engine.delete_records(TP, -1) == 8  # -1: the high watermark

    run(engine, tmp_path, scenario)


def test_delete_records_beyond_the_high_watermark_is_out_of_range(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.durable(batch(b"a"))
        await h.append(batch(b"not yet durable"))
        with pytest.raises(KafkaError) as e:
            await h.engine.delete_records(TP, 2)
        assert code(e) == ErrorCode.offset_out_of_range
        assert h.engine.offsets(TP).log_start_offset == 0

    run(engine, tmp_path, scenario)


# timestamps ------------------------------------------------------------------------------------------

def test_offset_for_timestamp_is_the_first_record_at_or_after_it(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        for i in range(5):
            await h.durable(batch(b"v", ts=NOW + 10 * i))
        found = await h.engine.offset_for_timestamp(TP, NOW + 15)
        assert found is not None and (found.offset, found.timestamp) == (2, NOW + 20)
        assert await h.engine.offset_for_timestamp(TP, NOW + 41) is None
        await h.append(batch(b"v", ts=NOW + 100))  # not durable: not found
        assert await h.engine.offset_for_timestamp(TP, NOW + 41) is None

    run(engine, tmp_path, scenario)


def test_offset_for_timestamp_skips_a_matching_batch_below_the_log_start(engine: str, tmp_path: Path) -> None:
    """The first batch stamped late enough lies wholly below the log start (deleted records):
    the search goes on to the next batch, as Kafka's searchForTimestamp does (found by the Java
    Admin's listOffsets after deleteRecords, tests/interop/test_java_clients.py::test_admin)."""
    async def scenario(h: Harness) -> None:
        for i in range(6):
            await h.durable(batch(b"v", ts=NOW + 10 * i))
        await h.engine.delete_records(TP, 4)
        found = await h.engine.offset_for_timestamp(TP, NOW + 25)
        assert found is not None and (found.offset, found.timestamp) == (4, NOW + 40)

    run(engine, tmp_path, scenario)


def test_offset_of_max_timestamp_is_the_record_with_the_largest_timestamp(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        assert await h.engine.offset_of_max_timestamp(TP) is None
        for ts in (NOW + 5, NOW + 50, NOW + 20):
            await h.durable(batch(b"v", ts=ts))
        found = await h.engine.offset_of_max_timestamp(TP)
        assert found is not None and (found.offset, found.timestamp) == (1, NOW + 50)
        await h.engine.delete_records(TP, 2)
        found = await h.engine.offset_of_max_timestamp(TP)
        assert found is not None and (found.offset, found.timestamp) == (2, NOW + 20)

    run(engine, tmp_path, scenario)


# partition lifecycle ---------------------------------------------------------------------------------

def test_a_prepared_partition_is_served_only_once_published(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.engine.prepare_partitions({OTHER: h.spec()})
        with pytest.raises(KafkaError) as e:
            await h.append(batch(b"early"), OTHER)
        assert code(e) == ErrorCode.unknown_topic_or_partition
        with pytest.raises(KafkaError) as e:
            h.engine.offsets(OTHER)
        assert code(e) == ErrorCode.unknown_topic_or_partition
        h.engine.publish_partitions([OTHER])
        assert (await h.durable(batch(b"v"), OTHER)).base_offset == 0
        with pytest.raises(StorageError):
            await h.engine.prepare_partitions({OTHER: h.spec()})  # exists already

    run(engine, tmp_path, scenario)


def test_a_removed_partition_is_served_no_more_and_its_waiters_fail(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.durable(batch(b"v"))
        waiter = asyncio.ensure_future(h.engine.wait_durable(TP, 10))  # past the log end: waits
        await asyncio.sleep(0)  # let it register its future
        assert not waiter.done()
        await h.engine.remove_partitions([TP])
        with pytest.raises(KafkaError) as e:
            await waiter
        assert code(e) == ErrorCode.unknown_topic_or_partition
        for call in (h.append(batch(b"v")), h.engine.read(TP, 0, 100), h.engine.delete_records(TP, 0)):
            with pytest.raises(KafkaError) as e:
                await call
            assert code(e) == ErrorCode.unknown_topic_or_partition
        await h.engine.remove_partitions([TP])  # removing again is harmless

    run(engine, tmp_path, scenario)


def test_a_partition_created_again_after_removal_starts_empty(engine: str, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.durable(batch(b"old"))
        await h.engine.remove_partitions([TP])
        h.topic_id = uuid.uuid4()
        await h.engine.prepare_partitions({TP: h.spec()})
        h.engine.publish_partitions([TP])
        offsets = h.engine.offsets(TP)
        assert (offsets.log_start_offset, offsets.log_end_offset) == (0, 0)
        assert (await h.durable(batch(b"new"))).base_offset == 0

    run(engine, tmp_path, scenario)


# restarts: where the engines differ by design ------------------------------------------------------

def test_a_restart_keeps_durable_data_on_local_and_nothing_on_memory(engine: str, tmp_path: Path) -> None:
    async def main() -> None:
        config, clock = BrokerConfig(), FakeClock(NOW)
        first = Harness(ENGINES[engine](tmp_path, config, clock), clock, config)
        partitions = {TP: first.spec()}
        await first.engine.start(partitions)
        try:
            await first.durable(batch(b"a", b"b"))
        finally:
            await first.engine.close()
        second = ENGINES[engine](tmp_path, config, clock)
        await second.start(partitions)
        try:
            expected = 0 if engine == "memory" else 2
            assert second.offsets(TP).high_watermark == second.offsets(TP).log_end_offset == expected
        finally:
            await second.close()

    asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize("batches", [4, 60])
def test_a_read_counts_the_offsets_it_answers_up_to_its_last_whole_batch(engine: str, tmp_path: Path,
                                                                        batches: int) -> None:
    """What Fetch counts as records out: from the offset asked for to the end of the last whole
    batch (a batch cut short by max_bytes not counted), in memory or sent from the file; with
    many batches the local engine starts from its sparse index (128 bytes an entry here)."""
    async def scenario(h: Harness) -> None:
        for n in range(batches):
            await h.durable(batch(b"a%d" % n, b"b", b"c"))
        total = 3 * batches
        whole = await h.engine.read(TP, 0, 1 << 20)
        assert isinstance(whole.records, bytes) and whole.record_count == total
        one = len(whole.records) // batches
        from_4 = await h.engine.read(TP, 4, 1 << 20, zero_copy_min=0)
        assert from_4.record_count == total - 4
        cut = await h.engine.read(TP, 0, 2 * one + 10, zero_copy_min=0)
        assert len(cut.records) == 2 * one + 10 and cut.record_count == 6
        none = await h.engine.read(TP, total, 1 << 20)
        assert none.record_count == 0
        for result in (from_4, cut):
            if not isinstance(result.records, bytes):
                result.records.release()

    run(engine, tmp_path, scenario, **{"index.interval.bytes": 128})
