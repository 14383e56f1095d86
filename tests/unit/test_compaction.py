"""The log cleaner on the local engine, with a fake clock: latest value per key, offsets
unchanged, every codec, tombstones, producer state, aborted transactions, crashes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tomyum.config import BrokerConfig
from tomyum.protocol.records import Compression, Record, build_batch, decode_records, iter_batches, patch_header
from tomyum.storage.engine import TopicPartition
from tomyum.testing.store import TopicStore
from tomyum.storage.local import cleaner as cleaner_module
from tomyum.storage.log_rules import LEADER_EPOCH
from tomyum.testing.clock import FakeClock

TP = TopicPartition("c", 0)
HOUR = 3_600_000
COMPACT = {"cleanup.policy": ["compact"], "internal.segment.bytes": 2048, "index.interval.bytes": 256,
           "delete.retention.ms": HOUR}

Scenario = Callable[[TopicStore, FakeClock], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, **configs: Any) -> None:
    async def main() -> None:
        clock = FakeClock()
        store = TopicStore(tmp_path / "data", BrokerConfig({"log.cleaner.enable": "false"}), clock)
        await store.start()
        try:
            if "c" not in store.topics():
                await store.create_topic("c", 1, {**COMPACT, **configs})
            await scenario(store, clock)
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 60))


async def append(store: TopicStore, batch: bytes) -> None:
    r = await store.append(TP, memoryview(batch))
    await store.wait_durable(TP, r.last_offset + 1)


class History(dict[bytes, int]):
    """key → latest offset, remembering every write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[bytes, int]] = []

    def __setitem__(self, key: bytes, offset: int) -> None:
        self.writes.append((key, offset))
        super().__setitem__(key, offset)

    def latest_below(self, end: int) -> dict[bytes, int]:
        return {k: o for k, o in self.writes if o < end}


async def produce_updates(store: TopicStore, clock: FakeClock, n: int, keys: int, *,
                          codec: int = Compression.NONE, per_batch: int = 4,
                          history: History | None = None, prefix: bytes = b"key") -> History:
    """n records cycling over ``keys`` keys, value = the record's offset."""
    start = store.offsets(TP).log_end_offset
    latest = History() if history is None else history
    for first in range(0, n, per_batch):
        records = []
        for i in range(first, min(n, first + per_batch)):
            key = b"%s-%d" % (prefix, i % keys)
            records.append((key, str(start + i).encode()))
            latest[key] = start + i
        await append(store, build_batch(records, timestamp=clock.time_ms(), compression=codec))
    return latest


async def everything(store: TopicStore) -> list[Record]:
    out: list[Record] = []
    offset = store.offsets(TP).log_start_offset
    end = store.offsets(TP).high_watermark
    while offset < end:
        data = (await store.read(TP, offset, 1 << 20)).records
        batches = list(iter_batches(data))
        assert batches, f"no batch at {offset}"
        for h in batches:
            out.extend(r for r in decode_records(data[h.position : h.end]) if r.offset >= offset)
            offset = h.next_offset
    return out


def check_compacted(records: list[Record], latest: History, cleaned_end: int) -> None:
    """Offsets increase, no record moved, in the cleaned part only the latest (within it) of
    each key is left, and the latest value of every key is there."""
    offsets = [r.offset for r in records]
    assert offsets == sorted(set(offsets)), "offsets must only increase"
    latest_cleaned = latest.latest_below(cleaned_end)
    for r in records:
        assert r.value is None or int(r.value) == r.offset, "a record moved"
        if r.offset < cleaned_end and r.key is not None:
            assert latest_cleaned[r.key] == r.offset, f"{r.key!r} at {r.offset} is not its latest"
    present = {r.key: r.offset for r in records}
    for key, offset in latest.items():
        assert present.get(key) == offset, f"the latest value of {key!r} is missing"


@pytest.mark.parametrize("codec", [Compression.NONE, Compression.GZIP, Compression.SNAPPY,
                                   Compression.LZ4, Compression.ZSTD],
                         ids=["none", "gzip", "snappy", "lz4", "zstd"])
def test_cleaning_keeps_the_latest_value_per_key(tmp_path: Path, codec: int) -> None:
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        latest = await produce_updates(store, clock, 600, 25, codec=codec)
        plog = store._log(TP)
        before = plog.size_in_bytes()
        assert len(plog.segments) > 4
        assert await store.clean_once() == 1
        cleaned_end = store._first_dirty[TP]
        assert cleaned_end == plog.active.base_offset
        records = await everything(store)
        check_compacted(records, latest, cleaned_end)
        assert len(records) < 100 and plog.size_in_bytes() < before / 3
        assert store.offsets(TP).log_end_offset == 600
        assert await store.clean_once() == 0  # nothing dirty: not due again
        # more updates make it dirty again; a second pass compacts across both
        await produce_updates(store, clock, 300, 25, codec=codec, history=latest)
        assert await store.clean_once() == 1
        check_compacted(await everything(store), latest, store._first_dirty[TP])

    run(tmp_path, scenario)


def test_min_dirty_ratio_and_min_compaction_lag(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        await produce_updates(store, clock, 300, 300)  # all distinct keys
        assert await store.clean_once() == 0  # too young for min.compaction.lag.ms
        clock.advance(HOUR + 1)
        await produce_updates(store, clock, 10, 300)
        assert await store.clean_once() == 1  # the old segments are now cleanable: ratio 1.0
        await produce_updates(store, clock, 20, 300)
        assert await store.clean_once() == 0  # a little dirty data after much clean: below 0.5
        assert await store.clean_once(force=True) in (0, 1)

    run(tmp_path, scenario, **{"min.compaction.lag.ms": HOUR})


def test_max_compaction_lag_forces_a_clean_below_the_ratio(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        await produce_updates(store, clock, 400, 400)
        assert await store.clean_once() == 1
        await produce_updates(store, clock, 40, 400)  # dirty, but far below the ratio
        assert await store.clean_once() == 0
        clock.advance(2 * HOUR)
        await produce_updates(store, clock, 1, 400)  # rolls the active segment (max lag < segment.ms)
        assert await store.clean_once() == 1

    run(tmp_path, scenario, **{"min.cleanable.dirty.ratio": 0.9, "max.compaction.lag.ms": HOUR})


def test_tombstones_go_after_delete_retention_ms(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        latest = await produce_updates(store, clock, 200, 10)
        for k in range(5):  # delete keys 0-4
            key = b"key-%d" % k
            await append(store, build_batch([(key, None)], timestamp=clock.time_ms()))
            latest.pop(key)
        await produce_updates(store, clock, 100, 1000, prefix=b"other")  # other keys, so the tombstones are in sealed segments
        store._log(TP).roll()
        await store.clean_once(force=True)
        records = await everything(store)
        tombstones = {r.key for r in records if r.value is None}
        assert tombstones == {b"key-%d" % k for k in range(5)}  # the latest for their keys: kept
        assert not [r for r in records if r.key in tombstones and r.value is not None]
        clock.advance(HOUR // 2)
        assert await store.clean_once() == 0  # not dirty, and no tombstone is old enough yet
        assert {r.key for r in await everything(store) if r.value is None} == tombstones
        clock.advance(HOUR)
        assert await store.clean_once() == 1  # due: a kept tombstone passed delete.retention.ms
        records = await everything(store)
        assert not [r for r in records if r.value is None]
        assert {r.key for r in records} >= set(latest) - {b"key-%d" % k for k in range(5)}

    run(tmp_path, scenario)


def write_raw(store: TopicStore, batch: bytes) -> None:
    """Append a batch as the broker itself would (control batches included)."""
    plog = store._log(TP)
    h = next(iter_batches(batch))
    base = plog.log_end_offset
    prefix = patch_header(h, batch, base, LEADER_EPOCH)
    plog.active.append([prefix, memoryview(batch)[len(prefix):]], h, base, h.max_timestamp)
    plog.unsynced[plog.active] = None
    store._dirty[plog] = None
    store._wake.set()


def test_producer_state_and_transaction_markers_are_kept(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        ts = clock.time_ms()
        # an idempotent producer's last batch, all of whose records are superseded later
        await append(store, build_batch([(b"a", b"0"), (b"b", b"1")], timestamp=ts, producer_id=7,
                                        producer_epoch=0, base_sequence=0))
        # an aborted transaction of producer 9, then its abort marker
        write_raw(store, build_batch([(b"x", b"2"), (b"y", b"3")], timestamp=ts, producer_id=9,
                                     producer_epoch=0, base_sequence=0, transactional=True))
        write_raw(store, build_batch([(b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00")], timestamp=ts,
                                     producer_id=9, producer_epoch=0, transactional=True, control=True))
        await append(store, build_batch([(b"a", b"5"), (b"b", b"6")], timestamp=ts))
        store._log(TP).roll()
        await append(store, build_batch([(b"z", b"7")], timestamp=ts))
        await store.wait_durable(TP, 8)
        await store.clean_once(force=True)
        data = (await store.read(TP, 0, 1 << 20)).records
        headers = list(iter_batches(data))
        by_base = {h.base_offset: h for h in headers}
        # producer 7's batch stays, empty, with its offsets, producer id and sequence
        assert by_base[0].records_count == 0 and by_base[0].last_offset_delta == 1
        assert (by_base[0].producer_id, by_base[0].base_sequence) == (7, 0)
        # the aborted records are gone; the marker is kept
        assert 2 not in by_base or by_base[2].records_count == 0
        assert by_base[4].is_control
        values = [r.value for h in headers for r in decode_records(data[h.position:h.end]) if not h.is_control]
        assert values == [b"5", b"6"]  # the first segment; the active one is untouched
        assert [r.value for r in await everything(store) if r.offset > 4] == [b"5", b"6", b"7"]

    run(tmp_path, scenario)


def test_records_without_a_key_are_refused_by_a_compacted_topic(tmp_path: Path) -> None:
    async def scenario(store: TopicStore, clock: FakeClock) -> None:
        from tomyum.errors import ErrorCode, KafkaError

        with pytest.raises(KafkaError) as e:
            await store.append(TP, memoryview(build_batch([(b"k", b"v"), (None, b"v")], timestamp=1)))
        assert e.value.code == ErrorCode.invalid_record
        assert store.offsets(TP).log_end_offset == 0

    run(tmp_path, scenario)


def test_a_crash_during_the_swap_leaves_a_consistent_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    latest = History()

    async def first(store: TopicStore, clock: FakeClock) -> None:
        await produce_updates(store, clock, 600, 25, history=latest)
        real_replace, calls = os.replace, []

        def failing_replace(src: Any, dst: Any) -> None:
            calls.append(src)
            if len(calls) == 3:
                raise OSError(5, "simulated crash")
            real_replace(src, dst)

        monkeypatch.setattr(cleaner_module.os, "replace", failing_replace)
        assert await store.clean_once() == 0  # failed part-way: 2 segments swapped on disk
        monkeypatch.setattr(cleaner_module.os, "replace", real_replace)
        check_compacted(await everything(store), latest, 0)  # what is served stays consistent
        # and a leftover from a crash while writing
        (store._log(TP).directory / "00000000000000009999.log.cleaned").write_bytes(b"garbage")

    run(tmp_path, first)

    async def after_restart(store: TopicStore, clock: FakeClock) -> None:
        assert not list(store._log(TP).directory.glob("*.cleaned"))
        check_compacted(await everything(store), latest, 0)
        assert store.offsets(TP).log_end_offset == 600
        assert await store.clean_once() == 1
        check_compacted(await everything(store), latest, store._first_dirty[TP])

    run(tmp_path, after_restart)
