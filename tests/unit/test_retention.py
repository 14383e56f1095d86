"""Retention by time and size, and DeleteRecords, on the local engine with a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tomyum.config import BrokerConfig
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.records import build_batch
from tomyum.storage.engine import TopicPartition
from tomyum.testing.store import TopicStore
from tomyum.testing.clock import FakeClock

TP = TopicPartition("t", 0)
HOUR = 3_600_000
SMALL = {"internal.segment.bytes": 1024, "index.interval.bytes": 128}

Scenario = Callable[[TopicStore, FakeClock], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, **configs: Any) -> None:
    async def main() -> None:
        clock = FakeClock()
        store = TopicStore(tmp_path / "data", BrokerConfig(), clock)
        await store.start()
        try:
            await store.create_topic("t", 1, {**SMALL, **configs})
            await scenario(store, clock)
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 30))


async def produce(store: TopicStore, clock: FakeClock, n: int, value: bytes = b"v" * 100) -> None:
    for i in range(n):
        r = await store.append(TP, memoryview(build_batch([(b"k%d" % i, value)], timestamp=clock.time_ms())))
        await store.wait_durable(TP, r.last_offset + 1)


def seg_bases(store: TopicStore) -> list[int]:
    return [s.base_offset for s in store._log(TP).segments]


def test_time_retention_deletes_only_segments_older_than_retention_ms(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        await produce(store, clock, 20)          # offsets 0-19, at t0
        store._log(TP).roll()
        old_end = store.offsets(TP).log_end_offset
        clock.advance(HOUR)
        await produce(store, clock, 20)          # offsets 20-39, at t0 + 1h
        assert await store.enforce_retention() == 0  # nothing is older than 2h yet
        clock.advance(HOUR + 1)                  # the first 20 are now 2h+1ms old
        deleted = await store.enforce_retention()
        assert deleted >= 1
        offsets = store.offsets(TP)
        assert offsets.log_start_offset == old_end == seg_bases(store)[0]
        assert offsets.log_end_offset == 40
        with pytest.raises(KafkaError) as e:
            await store.read(TP, 0, 1000)
        assert e.value.code == ErrorCode.offset_out_of_range
        assert (await store.read(TP, old_end, 1000)).records

    run(tmp_path, scenario, **{"retention.ms": 2 * HOUR})


def test_an_expired_active_segment_is_rolled_and_deleted(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        await produce(store, clock, 3)
        clock.advance(2 * HOUR)
        assert await store.enforce_retention() == 1
        offsets = store.offsets(TP)
        assert offsets.log_start_offset == offsets.log_end_offset == 3
        await produce(store, clock, 1)  # offsets go on from where they were
        assert store.offsets(TP).log_end_offset == 4

    run(tmp_path, scenario, **{"retention.ms": HOUR})


def test_size_retention_keeps_the_newest_segments_within_retention_bytes(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        await produce(store, clock, 60)
        plog = store._log(TP)
        before = plog.size_in_bytes()
        assert before > 5000
        assert await store.enforce_retention() > 0
        after = plog.size_in_bytes()
        # Kafka's rule: a segment goes only if what remains is still at least retention.bytes
        assert 3000 <= after < 3000 + 1024
        assert store.offsets(TP).log_start_offset == seg_bases(store)[0] > 0
        assert store.offsets(TP).log_end_offset == 60

    run(tmp_path, scenario, **{"retention.bytes": 3000})


def test_compact_only_topics_are_not_deleted_by_retention(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        await produce(store, clock, 30)
        clock.advance(10 * HOUR)
        assert await store.enforce_retention() == 0
        assert store.offsets(TP).log_start_offset == 0

    run(tmp_path, scenario, **{"retention.ms": HOUR, "retention.bytes": 100, "cleanup.policy": ["compact"]})


def test_a_wall_clock_jump_backwards_deletes_nothing(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        await produce(store, clock, 30)
        clock.set_wall(clock.time_ms() - 30 * 24 * HOUR)
        assert await store.enforce_retention() == 0
        assert store.offsets(TP).log_start_offset == 0

    run(tmp_path, scenario, **{"retention.ms": HOUR})


def test_delete_records_moves_the_log_start_durably(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        await produce(store, clock, 40)
        assert await store.delete_records(TP, 25) == 25
        assert seg_bases(store)[0] <= 25 < seg_bases(store)[0] + 40
        assert len(seg_bases(store)) < 6  # segments wholly below 25 are gone
        with pytest.raises(KafkaError) as e:
            await store.read(TP, 24, 1000)
        assert e.value.code == ErrorCode.offset_out_of_range
        assert await store.delete_records(TP, 10) == 25  # never backwards
        with pytest.raises(KafkaError) as e:
            await store.delete_records(TP, 41)
        assert e.value.code == ErrorCode.offset_out_of_range
        assert await store.delete_records(TP, -1) == 40  # -1: up to the high watermark

    run(tmp_path, scenario)

    async def reopened() -> None:
        store = TopicStore(tmp_path / "data", BrokerConfig(), FakeClock())
        await store.start()
        try:
            offsets = store.offsets(TP)
            assert offsets.log_start_offset == offsets.log_end_offset == 40
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(reopened(), 30))


def test_a_segment_being_sent_stays_readable_after_retention_deletes_it(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        await produce(store, clock, 30)
        first = store._log(TP).segments[0]
        result = await store.read(TP, 0, 100_000, zero_copy_min=0)
        sending = result.records
        assert not isinstance(sending, bytes)
        expected = first.read(0, len(sending))
        await store.delete_records(TP, 20)
        assert first.retired and not first.closed and not first.log_path.exists()
        assert sending.read_all() == expected  # the fd is still open for the sender
        sending.release()
        assert first.closed

    run(tmp_path, scenario)


def test_segments_roll_on_record_time_so_old_records_share_a_segment(tmp_path: Path) -> None:
    """Kafka's rule: a batch rolls the segment when its timestamp is segment.ms past the
    segment's first batch — records stamped a month ago do not each get a segment (and a
    file descriptor), and time still rolls segments when the records' time moves on."""
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        month_ago = clock.time_ms() - 30 * 24 * HOUR
        for i in range(50):
            r = await store.append(TP, memoryview(build_batch([(b"k", b"v")], timestamp=month_ago + i)))
            await store.wait_durable(TP, r.last_offset + 1)
        assert seg_bases(store) == [0]
        r = await store.append(TP, memoryview(build_batch([(b"k", b"v")], timestamp=month_ago + HOUR)))
        assert seg_bases(store) == [0, 50]  # an hour of record time later: a new segment

    run(tmp_path, scenario, **{"segment.ms": HOUR, "internal.segment.bytes": 1 << 20, "retention.ms": -1,
                               "message.timestamp.before.max.ms": 2**62})

