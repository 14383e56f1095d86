"""Power loss, simulated on the local engine: every fsync is recorded (how far each file was
durable, and which entries each directory's last fsync covered), then the process "loses
power" — the store is abandoned without closing, every file or directory whose entry no fsync
of its directory covered is gone, and each file left is cut back to its durable length plus a
random part of what was written after, that part sometimes left as written, sometimes zeros,
sometimes garbage. After recovery every
record acknowledged as durable (acks=-1: ``wait_durable`` returned) is there with the same
offset and bytes, and every record a reader was served is still there."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from tomyum.config import BrokerConfig
from tomyum.protocol.records import build_batch, decode_records, iter_batches
from tomyum.storage.engine import TopicPartition
from tomyum.storage.local import LocalLogStore
from tomyum.storage.local.uring_fsync import UringFsync
from tomyum.testing.store import TopicStore
from tomyum.testing.clock import FakeClock

TPS = [TopicPartition("t", p) for p in range(2)]
TOPIC_CONFIGS = {"internal.segment.bytes": 4096, "index.interval.bytes": 256}


class SyncLedger:
    """Remembers, per file, how many bytes an fsync/fdatasync has made durable, and per
    directory, which entries its last fsync made durable (through io_uring: the bytes the file
    had, and the entries the directory had, when the fsync was submitted, once it completed)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.durable: dict[str, int] = {}
        self.listed: dict[str, set[str]] = {}
        real_fsync, real_fdatasync = os.fsync, os.fdatasync

        def record(fd: int) -> None:
            try:
                path = os.readlink(f"/proc/self/fd/{fd}")
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    self.listed[path] = set(os.listdir(path))
                else:
                    self.durable[path] = max(self.durable.get(path, 0), os.fstat(fd).st_size)
            except OSError:
                pass

        def fsync(fd: int) -> None:
            real_fsync(fd)
            record(fd)

        def fdatasync(fd: int) -> None:
            real_fdatasync(fd)
            record(fd)

        real_ring_sync = UringFsync.sync

        def ring_sync(ring: UringFsync, fds: list[int], dirs: Sequence[Path] = ()) -> asyncio.Future[float]:
            sizes, listings = {}, {}
            for fd in fds:
                try:
                    sizes[os.readlink(f"/proc/self/fd/{fd}")] = os.fstat(fd).st_size
                except OSError:
                    pass
            for d in dirs:
                try:
                    listings[str(d)] = set(os.listdir(d))
                except OSError:
                    pass
            fut = real_ring_sync(ring, fds, dirs)

            def completed(f: asyncio.Future[float]) -> None:
                if not f.cancelled() and f.exception() is None:
                    for path, size in sizes.items():
                        self.durable[path] = max(self.durable.get(path, 0), size)
                    self.listed.update(listings)

            fut.add_done_callback(completed)
            return fut

        monkeypatch.setattr(UringFsync, "sync", ring_sync)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "fdatasync", fdatasync)

    def renamed(self, data_dir: Path) -> None:
        """Files written atomically were fsynced under their .tmp name, then renamed."""
        for path in list(self.durable):
            if path.endswith(".tmp"):
                self.durable[path[:-4]] = self.durable.pop(path)

    def unlink_undurable(self, directory: Path, damaged: list[str]) -> None:
        """An entry that no fsync of its directory covered is gone after the reboot (the whole
        subtree, for a directory): a file created, or renamed into place, and never made
        durable in its directory."""
        listed = self.listed.get(str(directory), set())
        for entry in sorted(directory.iterdir()):
            if entry.name not in listed:
                damaged.append(f"{entry.relative_to(directory.parent)}: gone (its directory entry was not durable)")
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            elif entry.is_dir():
                self.unlink_undurable(entry, damaged)

    def cut(self, data_dir: Path, rng: random.Random) -> list[str]:
        """Lose power: an entry no directory fsync covered is gone; each file keeps its
        durable bytes and a random part of the rest."""
        self.renamed(data_dir)
        damaged: list[str] = []
        self.unlink_undurable(data_dir, damaged)
        for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
            size = path.stat().st_size
            durable = min(self.durable.get(str(path), 0), size)
            if durable == size:
                continue
            keep = durable + rng.randint(0, size - durable)
            with open(path, "r+b") as f:
                f.truncate(keep)
                mode = rng.choice(["as written", "zeros", "garbage"])
                if keep > durable and mode != "as written":
                    f.seek(durable)
                    n = keep - durable
                    f.write(bytes(n) if mode == "zeros" else rng.randbytes(n))
            damaged.append(f"{path.name}: {durable}+{keep - durable}/{size} ({mode if keep > durable else 'cut'})")
        # what is on disk after the reboot stays there until rewritten
        self.durable = {str(p): p.stat().st_size for p in data_dir.rglob("*") if p.is_file()}
        self.listed = {str(d): set(os.listdir(d)) for d in [data_dir, *data_dir.rglob("*")] if d.is_dir()}
        return damaged


@pytest.mark.parametrize("io_uring", [True, False], ids=["io_uring", "thread"])
def test_acknowledged_records_survive_simulated_power_loss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           io_uring: bool) -> None:
    ledger = SyncLedger(monkeypatch)
    data_dir = tmp_path / "data"
    clock = FakeClock()
    acked: dict[tuple[TopicPartition, int], bytes] = {}
    served: dict[tuple[TopicPartition, int], bytes] = {}
    rng = random.Random(20261125)

    def open_store() -> TopicStore:
        config = BrokerConfig()
        return TopicStore(data_dir, config, clock, engine=LocalLogStore(data_dir, config, clock, io_uring=io_uring))

    async def run_until_power_loss(round_no: int) -> None:
        store = open_store()
        await store.start()
        if "t" not in store.topics():
            await store.create_topic("t", len(TPS), TOPIC_CONFIGS)
        check_survivors(store)
        for i in range(rng.randint(20, 60)):
            tp = rng.choice(TPS)
            value = b"r%d-%d-" % (round_no, i) + rng.randbytes(rng.randint(10, 300))
            r = await store.append(tp, memoryview(build_batch([(b"k", value)], timestamp=clock.time_ms())))
            if rng.random() < 0.6:  # acks=-1: acknowledged once durable
                await store.wait_durable(tp, r.last_offset + 1)
                acked[(tp, r.base_offset)] = value
            if rng.random() < 0.3:  # a consumer reads what it may
                for t in TPS:
                    for offset, v in read_all(store, t).items():
                        served[(t, offset)] = v
            clock.advance(rng.randint(0, 50))
        # power goes: nothing is closed, flushed or checkpointed
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    def check_survivors(store: TopicStore) -> None:
        stored = {(t, o): v for t in TPS for o, v in read_all(store, t).items()} if "t" in store.topics() else {}
        for key, value in acked.items():
            assert stored.get(key) == value, f"acknowledged record {key} lost or changed"
        for key, value in served.items():
            assert stored.get(key) == value, f"record {key} was served, then lost"

    damaged_logs = 0
    for round_no in range(12):
        asyncio.run(asyncio.wait_for(run_until_power_loss(round_no), 30))
        damaged_logs += sum(".log:" in d for d in ledger.cut(data_dir, rng))

    async def final() -> None:
        store = open_store()
        await store.start()
        try:
            check_survivors(store)
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(final(), 30))
    assert len(acked) > 100
    assert damaged_logs > 5  # the power losses did cut unsynced log data


def read_all(store: TopicStore, tp: TopicPartition) -> dict[int, bytes]:
    plog = store._log(tp)
    out: dict[int, bytes] = {}
    offset = plog.log_start_offset
    while offset < plog.high_watermark:
        data = plog.read(offset, 1 << 20)
        data = bytes(data) if isinstance(data, (bytes, bytearray)) else data.read_all()
        if not data:
            break
        for h in iter_batches(data):
            for r in decode_records(data[h.position : h.end]):
                out[r.offset] = r.value or b""
            offset = h.next_offset
    return out


def test_acknowledged_metadata_changes_survive_simulated_power_loss(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Topics created, grown, reconfigured and deleted at random, each change awaited (answered),
    then power lost: after each reboot the metadata is exactly what was answered."""
    ledger = SyncLedger(monkeypatch)
    data_dir = tmp_path / "data"
    rng = random.Random(61206)
    expected: dict[str, tuple[int, dict[str, str]]] = {}

    async def run_until_power_loss(round_no: int) -> None:
        store = TopicStore(data_dir, BrokerConfig())
        await store.start()
        check(store)
        for i in range(rng.randint(5, 15)):
            action = rng.choice(["create", "create", "grow", "alter", "delete"])
            names = sorted(expected)
            if action == "create" or not names:
                name = f"t{round_no}-{i}"
                await store.create_topic(name, rng.randint(1, 4), {"retention.ms": 1000 + i})
                expected[name] = (store.topics()[name].num_partitions, {"retention.ms": str(1000 + i)})
            elif action == "grow":
                name = rng.choice(names)
                await store.create_partitions(name, expected[name][0] + 1)
                expected[name] = (expected[name][0] + 1, expected[name][1])
            elif action == "alter":
                name = rng.choice(names)
                await store.alter_topic_configs(name, {"segment.ms": 3_600_000 + i})
                expected[name] = (expected[name][0], {"segment.ms": str(3_600_000 + i)})
            else:
                name = rng.choice(names)
                await store.delete_topic(name)
                del expected[name]
        await asyncio.gather(*store.engine._removals)  # the ledger walks the files: let the remover finish
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    def check(store: TopicStore) -> None:
        assert {n: (t.num_partitions, dict(t.raw_configs)) for n, t in store.topics().items()} == expected
        on_disk = {d.name for d in data_dir.iterdir() if d.is_dir() and d.name != "__cluster_metadata-0"}
        assert on_disk == {f"{n}-{p}" for n, (count, _) in expected.items() for p in range(count)}

    damaged = 0
    for round_no in range(10):
        asyncio.run(asyncio.wait_for(run_until_power_loss(round_no), 30))
        damaged += sum("__cluster_metadata" in d or ".log:" in d for d in ledger.cut(data_dir, rng))

    async def final() -> None:
        store = TopicStore(data_dir, BrokerConfig())
        await store.start()
        try:
            check(store)
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(final(), 30))
    assert len(expected) > 3
