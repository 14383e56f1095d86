"""The coordinator runtime: one write path (append → durable → replay) and one loader (log start
to high watermark, markers included) for every internal topic, and partitions that load and
unload at any time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tomyum.config import BrokerConfig
from tomyum.coordinator.group.offsets import OffsetStore
from tomyum.coordinator.group.offsets_log import OFFSETS_TOPIC, CommittedOffset
from tomyum.coordinator.runtime import partition_for
from tomyum.coordinator.runtime import CoordinatorRuntime
from tomyum.errors import StorageError
from tomyum.protocol.records import build_batch
from tomyum.storage.engine import TopicPartition
from tomyum.storage.memory import MemoryLogStore
from tomyum.testing.clock import FakeClock
from tomyum.testing.store import TopicStore

TOPIC = "__test_state"


class Recorder:
    """A shard that remembers what it was given; with ``strict``, a key b"bad" cannot be read."""

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict
        self.replayed: list[tuple[int, bytes | None, bytes | None, int]] = []
        self.completed: list[tuple[int, int, bool]] = []
        self.unloaded: list[int] = []

    def replay(self, partition: int, key: bytes | None, value: bytes | None, producer_id: int) -> None:
        if self.strict and key == b"bad":
            raise ValueError("not a record of ours")
        self.replayed.append((partition, key, value, producer_id))

    def complete_txn(self, partition: int, producer_id: int, commit: bool) -> None:
        self.completed.append((partition, producer_id, commit))

    def unload(self, partition: int) -> None:
        self.unloaded.append(partition)
        self.replayed = [r for r in self.replayed if r[0] != partition]


def run(tmp_path: Path, scenario: Callable[[TopicStore], Awaitable[None]]) -> None:
    async def main() -> None:
        clock = FakeClock()
        store = TopicStore(tmp_path, BrokerConfig(), clock,
                           engine=MemoryLogStore(tmp_path, BrokerConfig(), clock))
        await store.start()
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def runtime_of(store: TopicStore, shard: Any) -> CoordinatorRuntime:
    return CoordinatorRuntime(store, store, TOPIC, 2, {"cleanup.policy": ["compact"]}, shard, store.clock)


def test_a_write_is_replayed_only_once_it_is_durable(tmp_path: Path) -> None:
    async def scenario(store: TopicStore) -> None:
        shard = Recorder()
        runtime = runtime_of(store, shard)
        seen_at_durable: list[int] = []
        real_wait = store.engine.wait_durable

        async def wait_durable(tp: TopicPartition, offset: int) -> None:
            seen_at_durable.append(len(shard.replayed))
            await real_wait(tp, offset)

        store.engine.wait_durable = wait_durable
        await runtime.write("k", [(b"a", b"1"), (b"b", None)])
        p = runtime.partition_for("k")
        assert seen_at_durable == [0]  # nothing was replayed before the batch was durable
        assert shard.replayed == [(p, b"a", b"1", -1), (p, b"b", None, -1)]
        assert store.offsets(TopicPartition(TOPIC, p)).high_watermark == 2

    run(tmp_path, scenario)


def test_a_write_that_fails_changes_nothing_in_memory(tmp_path: Path) -> None:
    async def scenario(store: TopicStore) -> None:
        shard = Recorder()
        runtime = runtime_of(store, shard)
        await runtime.ensure_topic()

        async def append(tp: TopicPartition, records: memoryview) -> Any:
            raise StorageError("No space left on device")

        store.engine.append = append
        with pytest.raises(StorageError):
            await runtime.write("k", [(b"a", b"1")])
        assert shard.replayed == []

    run(tmp_path, scenario)


def test_load_replays_to_the_high_watermark_with_markers_and_skips_what_it_cannot_read(tmp_path: Path) -> None:
    async def scenario(store: TopicStore) -> None:
        writer = runtime_of(store, Recorder(strict=False))
        await writer.write("k", [(b"a", b"1")])
        p = writer.partition_for("k")
        tp = TopicPartition(TOPIC, p)
        await writer.write("k", [(b"bad", b"?"), (b"b", b"2")])
        await writer.write("k", [(b"c", b"3")], producer_id=7, producer_epoch=0)
        marker = await store.append_marker(tp, 7, 0, True, 0)
        await store.wait_durable(tp, marker.last_offset + 1)

        shard = Recorder()
        reader = runtime_of(store, shard)
        await reader.load_all()
        assert shard.replayed == [(p, b"a", b"1", -1), (p, b"b", b"2", -1), (p, b"c", b"3", 7)]
        assert shard.completed == [(p, 7, True)]
        assert reader.skipped_records == 1
        assert reader.loaded == {0, 1} and reader.failed_partitions == set()

    run(tmp_path, scenario)


def test_a_partition_that_cannot_be_read_is_noted_and_the_others_load(tmp_path: Path) -> None:
    async def scenario(store: TopicStore) -> None:
        writer = runtime_of(store, Recorder())
        keys = [f"k{i}" for i in range(8)]
        for k in keys:
            await writer.write(k, [(k.encode(), b"v")])
        broken = writer.partition_for("k0")
        real_read = store.engine.read

        async def read(tp: TopicPartition, *args: Any, **kwargs: Any) -> Any:
            if tp == TopicPartition(TOPIC, broken):
                raise StorageError("Input/output error")
            return await real_read(tp, *args, **kwargs)

        store.engine.read = read
        shard = Recorder()
        reader = runtime_of(store, shard)
        await reader.load_all()
        assert reader.failed_partitions == {broken} and reader.loaded == {1 - broken}
        assert {k for _, k, _, _ in shard.replayed} == {k.encode() for k in keys if reader.partition_for(k) != broken}
        assert not reader.coordinates("k0")

        store.engine.read = real_read  # readable again: it loads, and is served
        await reader.load_or_fail(broken)
        assert reader.failed_partitions == set() and reader.coordinates("k0")

    run(tmp_path, scenario)


def test_committed_offsets_unload_and_load_back_by_partition(tmp_path: Path) -> None:
    async def scenario(store: TopicStore) -> None:
        offsets = OffsetStore(store, 3, store.clock)
        groups = [f"g{i}" for i in range(12)]
        for i, g in enumerate(groups):
            await offsets.commit(g, [("t", 0, CommittedOffset(i, -1, "", 0))])
        gone = partition_for("g0", 3)
        offsets.runtime.unload(gone)
        for i, g in enumerate(groups):
            c = offsets.fetch(g, "t", 0)
            assert (c is None) if partition_for(g, 3) == gone else (c is not None and c.offset == i)
        await offsets.runtime.load(gone)
        assert all(offsets.fetch(g, "t", 0) == CommittedOffset(i, -1, "", 0) for i, g in enumerate(groups))
        assert gone in offsets.runtime.loaded and OFFSETS_TOPIC in store.topics()

    run(tmp_path, scenario)


def test_offsets_committed_in_a_transaction_apply_when_its_marker_is_loaded(tmp_path: Path) -> None:
    async def scenario(store: TopicStore) -> None:
        offsets = OffsetStore(store, 3, store.clock)
        await offsets.txn_commit("g", 9, 0, [("t", 0, CommittedOffset(5, -1, "", 0))])
        assert offsets.fetch("g", "t", 0) is None and offsets.unstable("g", "t", 0)
        tp = offsets.partition_of("g")
        offsets.runtime.unload(tp.partition)
        assert not offsets.unstable("g", "t", 0)
        marker = await store.append_marker(tp, 9, 0, True, 0)
        await store.wait_durable(tp, marker.last_offset + 1)
        await offsets.runtime.load(tp.partition)
        assert offsets.fetch("g", "t", 0) == CommittedOffset(5, -1, "", 0)
        assert not offsets.unstable("g", "t", 0)

    run(tmp_path, scenario)


def test_transaction_state_unloads_and_loads_back(tmp_path: Path) -> None:
    from tomyum.coordinator.txn import TransactionCoordinator

    async def scenario(store: TopicStore) -> None:
        offsets = OffsetStore(store, 3, store.clock)
        txns = TransactionCoordinator(store, offsets, BrokerConfig(), store.clock)
        txns.num_partitions = 3
        pid, epoch = await txns.init_producer_id("app", 60000)
        p = txns.partition_of("app").partition
        txns.runtime.unload(p)
        assert txns.view("app") is None
        await txns.runtime.load(p)
        view = txns.view("app")
        assert view is not None and (view.producer_id, view.producer_epoch, view.state) == (pid, epoch, "Empty")

    run(tmp_path, scenario)


def test_batches_are_built_as_the_internal_topics_expect(tmp_path: Path) -> None:
    """A batch another writer appended (a plain one) loads like one the runtime wrote."""
    async def scenario(store: TopicStore) -> None:
        runtime = runtime_of(store, Recorder())
        await runtime.ensure_topic()
        tp = TopicPartition(TOPIC, 0)
        r = await store.append(tp, memoryview(build_batch([(b"x", b"y")], timestamp=0)))
        await store.wait_durable(tp, r.last_offset + 1)
        shard = Recorder()
        await runtime_of(store, shard).load(0)
        assert shard.replayed == [(0, b"x", b"y", -1)]

    run(tmp_path, scenario)
