"""A full disk during each metadata change: the change fails with KAFKA_STORAGE_ERROR and
nothing of it remains — not in memory, not on disk, not after a restart — and once space is
back the same broker state carries on.

The disk fills at the system calls: the metadata log's write and fdatasync, or the creation
of a partition's directory (the second of a topic's partitions: a half-made topic must not
stay)."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tomyum.config import DYNAMIC_BROKER, BrokerConfig
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.records import build_batch
from tomyum.storage.engine import TopicPartition
from tomyum.testing.store import TopicStore

pytestmark = pytest.mark.timeout(60)


class FullDisk:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, at_mkdir: bool) -> None:
        self.full = False
        real_write, real_sync, real_mkdir = os.write, os.fdatasync, os.mkdir
        mkdirs = 0

        def write(fd: int, data: Any) -> int:
            if self.full and not at_mkdir:
                real_write(fd, bytes(data)[:9])  # a short write got in
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        def fdatasync(fd: int) -> None:
            if self.full and not at_mkdir:
                raise OSError(errno.ENOSPC, "No space left on device")
            real_sync(fd)

        def mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
            nonlocal mkdirs
            if self.full and at_mkdir:
                mkdirs += 1
                if mkdirs >= 2:
                    raise OSError(errno.ENOSPC, "No space left on device")
            real_mkdir(path, mode, dir_fd=dir_fd)

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fdatasync", fdatasync)
        monkeypatch.setattr(os, "mkdir", mkdir)


def state(store: TopicStore, data_dir: Path) -> dict[str, Any]:
    return {"image": store.metadata.image.summary(),
            "dirs": sorted(d.name for d in data_dir.iterdir() if d.is_dir() and d.name != "__cluster_metadata-0"),
            "broker": dict(store.config.dynamic(DYNAMIC_BROKER))}


Change = Callable[[TopicStore], Awaitable[Any]]
CHANGES: dict[str, Change] = {
    "create topic": lambda s: s.create_topic("fresh", 3, {"retention.ms": 5000}),
    "create partitions": lambda s: s.create_partitions("t", 5),
    "delete topic": lambda s: s.delete_topic("t"),
    "alter topic configs": lambda s: s.alter_topic_configs("t", {"retention.ms": 7000}),
    "alter broker configs": lambda s: s.alter_broker_configs(DYNAMIC_BROKER, {"message.max.bytes": 5000}),
    "allocate producer ids": lambda s: s.allocate_producer_id(),
}


@pytest.mark.parametrize("change, at_mkdir", [(c, False) for c in CHANGES] + [
    ("create topic", True), ("create partitions", True)])
def test_a_change_on_a_full_disk_leaves_no_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str,
                                                 at_mkdir: bool) -> None:
    data_dir = tmp_path / "data"
    disk = FullDisk(monkeypatch, at_mkdir=at_mkdir)

    async def main() -> None:
        store = TopicStore(data_dir, BrokerConfig())
        await store.start()
        await store.create_topic("t", 2, {})
        tp = TopicPartition("t", 0)
        r = await store.append(tp, memoryview(build_batch([(b"k", b"v")])))
        await store.wait_durable(tp, r.last_offset + 1)
        # the producer-id block is used up, so that the next id needs a record
        for _ in range(1000):
            await store.allocate_producer_id()
        before = state(store, data_dir)
        disk.full = True
        with pytest.raises(KafkaError) as e:
            await CHANGES[change](store)
        assert e.value.code == ErrorCode.kafka_storage_error
        assert state(store, data_dir) == before
        disk.full = False
        assert store.offsets(tp).high_watermark == 1  # the topic still serves what it had
        await store.close()
        again = TopicStore(data_dir, BrokerConfig())
        await again.start()
        assert state(again, data_dir) == before
        assert again.offsets(tp).high_watermark == 1
        await CHANGES[change](again)  # with space back, the same change goes through
        assert state(again, data_dir) != before
        await again.close()

    asyncio.run(main())
