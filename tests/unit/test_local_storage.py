"""The local engine: offsets, rolls, index lookups, durability, recovery after damage."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tomyum.config import BrokerConfig, TopicConfig
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.records import BATCH_HEADER_SIZE, build_batch, decode_records, iter_batches
from tomyum.storage.engine import TopicPartition
from tomyum.testing.store import TopicStore
from tomyum.storage.local.partition_log import PartitionLog

TP = TopicPartition("t", 0)
NOW = 1_700_000_000_000


def small_config(**overrides: object) -> TopicConfig:
    settings = {"internal.segment.bytes": 1024, "index.interval.bytes": 128, "message.timestamp.after.max.ms": 2**62}
    settings.update(overrides)  # type: ignore[arg-type]
    return TopicConfig(BrokerConfig(), settings)


def batch(i: int, size: int = 40) -> bytes:
    return build_batch([(f"k{i}".encode(), bytes([i % 256]) * size)], timestamp=NOW + i)


@pytest.fixture
def plog(tmp_path: Path) -> Iterator[PartitionLog]:
    log = PartitionLog(TP, tmp_path / "t-0", small_config())
    log.open(None, None)
    yield log
    log.close()


def fill(log: PartitionLog, n: int) -> None:
    for i in range(n):
        log.append(memoryview(batch(i)), NOW)
    end, segs, _ = log.snapshot_unsynced()
    log.mark_durable(end, segs)


def test_offsets_are_dense_and_segments_roll(plog: PartitionLog, tmp_path: Path) -> None:
    results = [plog.append(memoryview(batch(i)), NOW) for i in range(60)]
    assert [r.base_offset for r in results] == list(range(60))
    assert len(plog.segments) > 3
    names = sorted(p.name for p in (tmp_path / "t-0").glob("*.log"))
    assert names[0] == "00000000000000000000.log"
    assert all(len(n) == 24 for n in names)
    assert [s.base_offset for s in plog.segments] == [int(n[:20]) for n in names]
    for seg in plog.segments:
        assert seg.size <= 1024


def test_every_offset_is_found_through_the_index(plog: PartitionLog) -> None:
    fill(plog, 80)
    for offset in range(80):
        data = plog.read(offset, 1)  # one batch at least
        first = decode_records(data[: next(iter_batches(data, verify_crc=False)).size])
        assert first[0].offset == offset
        assert first[0].key == f"k{offset}".encode()


def test_nothing_is_read_at_or_past_the_high_watermark(plog: PartitionLog) -> None:
    fill(plog, 5)
    plog.append(memoryview(batch(5)), NOW)  # written, not yet durable
    assert plog.high_watermark == 5 and plog.log_end_offset == 6
    assert plog.read(5, 10_000) == b""
    everything = plog.read(0, 10_000)
    assert [h.base_offset for h in iter_batches(everything)] == [0, 1, 2, 3, 4]
    with pytest.raises(KafkaError) as e:
        plog.read(7, 100)
    assert e.value.code == ErrorCode.offset_out_of_range


def test_offset_for_timestamp(plog: PartitionLog) -> None:
    fill(plog, 30)
    found = plog.offset_for_timestamp(NOW + 17)
    assert found is not None and (found.offset, found.timestamp) == (17, NOW + 17)
    assert plog.offset_for_timestamp(NOW + 1000) is None
    top = plog.offset_of_max_timestamp()
    assert top is not None and top.offset == 29


def reopen(tmp_path: Path, recovery_point: int | None = None) -> PartitionLog:
    log = PartitionLog(TP, tmp_path / "t-0", small_config())
    log.open(recovery_point, None)
    return log


def test_torn_tail_is_truncated_to_the_last_whole_batch(plog: PartitionLog, tmp_path: Path) -> None:
    fill(plog, 10)
    plog.close()
    active = sorted((tmp_path / "t-0").glob("*.log"))[-1]
    data = active.read_bytes()
    active.write_bytes(data[:-7])  # a write torn by a crash
    log = reopen(tmp_path)
    try:
        assert log.log_end_offset == 9
        assert [h.base_offset for h in iter_batches(log.read(0, 1 << 20))][-1] in range(9)
        assert log.append(memoryview(batch(9)), NOW).base_offset == 9  # appends continue at the end
        end, segs, _ = log.snapshot_unsynced()
        log.mark_durable(end, segs)
        assert decode_records(log.read(9, 1))[0].key == b"k9"
    finally:
        log.close()


def test_corrupt_batch_is_cut_with_everything_after_it(plog: PartitionLog, tmp_path: Path) -> None:
    fill(plog, 10)
    seg = plog.active
    headers = list(seg.headers())
    victim = headers[len(headers) // 2]
    plog.close()
    with open(seg.log_path, "r+b") as f:
        f.seek(victim.position + 40)
        f.write(b"\xff\xff\xff")
    log = reopen(tmp_path)
    try:
        assert log.log_end_offset == victim.base_offset
        for h in iter_batches(log.read(log.segments[-1].base_offset, 1 << 20)):
            assert h.base_offset < victim.base_offset
    finally:
        log.close()


def test_missing_indexes_of_sealed_segments_are_rebuilt(plog: PartitionLog, tmp_path: Path) -> None:
    fill(plog, 60)
    plog.close()
    for p in (tmp_path / "t-0").glob("*.index"):
        p.unlink()
    for p in (tmp_path / "t-0").glob("*.timeindex"):
        p.write_bytes(b"garbage")
    log = reopen(tmp_path, recovery_point=60)
    try:
        assert log.log_end_offset == 60
        for offset in range(0, 60, 7):
            assert decode_records(log.read(offset, 1))[0].offset == offset
        found = log.offset_for_timestamp(NOW + 33)
        assert found is not None and found.offset == 33
    finally:
        log.close()


def test_store_group_commit_moves_the_high_watermark(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = TopicStore(tmp_path / "data", BrokerConfig())
        await store.start()
        try:
            await store.create_topic("t", 2, {"retention.ms": 1000})
            seen: list[tuple[TopicPartition, int]] = []
            store.on_high_watermark(lambda tp, hw: seen.append((tp, hw)))
            r = await store.append(TP, memoryview(batch(0)))
            assert store.offsets(TP).high_watermark == 0  # written, not yet durable
            await asyncio.wait_for(store.wait_durable(TP, r.last_offset + 1), 10)
            assert store.offsets(TP).high_watermark == 1
            assert seen == [(TP, 1)]
        finally:
            await store.close()
        again = TopicStore(tmp_path / "data", BrokerConfig())
        await again.start()
        try:
            meta = again.topics()["t"]
            assert meta.num_partitions == 2 and dict(meta.raw_configs) == {"retention.ms": "1000"}
            assert again.offsets(TP).log_end_offset == 1
            await again.delete_topic("t")
            assert "t" not in again.topics()
            deadline = asyncio.get_running_loop().time() + 10  # the directories go in the background
            while list((tmp_path / "data").glob("t-*")) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            assert not list((tmp_path / "data").glob("t-*"))
            assert "t" not in again.topics()
        finally:
            await again.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_headers_walk_small_batches_many_to_a_read_and_match_the_file(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``LogSegment.headers`` reads ahead (a Fetch walks a few KiB of small batches from the
    sparse index's entry): the same headers as the file holds, small and large batches mixed,
    within ``end``, in a handful of reads."""
    log = PartitionLog(TP, tmp_path / "t-0", small_config(**{"internal.segment.bytes": 1 << 20,
                                                             "index.interval.bytes": 4096}))
    log.open(None, None)
    try:
        sizes = [40] * 60 + [20_000, 40, 9_000] + [40] * 60
        for i, size in enumerate(sizes):
            log.append(memoryview(batch(i, size)), NOW)
        (seg,) = log.segments
        on_disk = [(h.position, h.base_offset, h.size) for h in iter_batches(seg.read(0, seg.size))]
        assert [(h.position, h.base_offset, h.size) for h in seg.headers()] == on_disk
        middle = on_disk[70][0]
        assert [h.base_offset for h in seg.headers(on_disk[3][0], middle)] == list(range(3, 70))
        reads: list[int] = []
        real_read = seg.read
        monkeypatch.setattr(seg, "read", lambda position, size: reads.append(size) or real_read(position, size))
        found = seg.find(59)
        assert found is not None and found.base_offset == 59
        assert len(reads) <= 3, reads  # the index entry's check, then one read-ahead (was one per batch)
    finally:
        log.close()


def test_a_read_remembers_where_the_next_batch_begins_and_a_truncation_forgets_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A consumer's next Fetch starts where its last one ended: that batch is then one header
    read away, not a walk from the sparse index's entry; what a truncation cut is forgotten."""
    log = PartitionLog(TP, tmp_path / "t-0", small_config(**{"internal.segment.bytes": 1 << 20,
                                                             "index.interval.bytes": 4096}))
    log.open(None, None)
    try:
        fill(log, 100)
        (seg,) = log.segments
        on_disk = {h.base_offset: h for h in iter_batches(seg.read(0, seg.size))}
        data, count = log.read_counted(20, 1)
        assert count == 1 and next(iter_batches(data)).base_offset == 20
        reads: list[int] = []
        real_read = seg.read
        monkeypatch.setattr(seg, "read", lambda position, size: reads.append(size) or real_read(position, size))
        found = seg.find(21)
        assert found == on_disk[21]
        assert reads == [BATCH_HEADER_SIZE]  # without the remembered end: the index entry's check and a read-ahead
        assert log.read_counted(21, 10_000)[1] == 79  # to the end: nothing after it to remember
        seg.truncate_to(10)
        assert seg.find(21) is None and seg.find(10) is None
        assert seg.find(9) == on_disk[9]
    finally:
        log.close()


def test_a_clean_stop_rewrites_only_the_index_files_that_changed(tmp_path: Path) -> None:
    log = reopen(tmp_path)
    fill(log, 30)
    log.close()
    inodes = {p.name: p.stat().st_ino for p in (tmp_path / "t-0").glob("*index")}
    snapshots = {p.name: p.stat().st_ino for p in (tmp_path / "t-0").glob("*.snapshot")}
    log = reopen(tmp_path, recovery_point=30)
    unchanged: list[tuple[Path, bytes]] = []
    log.close(unchanged)
    assert unchanged == []
    assert {p.name: p.stat().st_ino for p in (tmp_path / "t-0").glob("*.snapshot")} == snapshots != {}
    log = reopen(tmp_path, recovery_point=30)
    log.append(memoryview(batch(99, size=400)), NOW + 99)
    changed: list[tuple[Path, bytes]] = []
    log.close(changed)
    active = log.segments[-1]
    assert {p for p, _ in changed} <= {active.index.path, active.time_index.path} and changed
    assert {p.name: p.stat().st_ino for p in (tmp_path / "t-0").glob("*index")} == inodes  # not yet written


def test_a_store_stopped_cleanly_opens_every_index_without_a_rebuild(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = TopicStore(tmp_path / "data", BrokerConfig())
        await store.start()
        try:
            await store.create_topic("t", 3, {"internal.segment.bytes": "1024"})
            for i in range(30):
                await store.append(TopicPartition("t", i % 3), memoryview(batch(i, size=200)))
        finally:
            await store.close()
        assert not list((tmp_path / "data").rglob("*.tmp"))
        for partition in range(3):
            log = PartitionLog(TopicPartition("t", partition), tmp_path / "data" / f"t-{partition}", small_config())
            log.open(10, None)
            try:
                assert all(seg.load() for seg in log.segments)
                assert len(log.segments) > 1
                assert [decode_records(log.read(o, 1))[0].offset for o in range(10)] == list(range(10))
            finally:
                log.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_partition_stopped_before_its_first_record_writes_no_producer_snapshot(tmp_path: Path) -> None:
    log = reopen(tmp_path)
    log.close()
    assert not list((tmp_path / "t-0").glob("*.snapshot"))
    log = reopen(tmp_path)
    try:
        assert log.log_end_offset == 0 and log.append(memoryview(batch(0)), NOW).base_offset == 0
    finally:
        log.close()
    assert [p.name for p in (tmp_path / "t-0").glob("*.snapshot")] == ["00000000000000000001.snapshot"]
