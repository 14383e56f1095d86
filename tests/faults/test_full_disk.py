"""A full disk, injected at the system calls: writes and fsyncs fail with ENOSPC for a while
(the group commit's fsyncs through io_uring fail at the ring's boundary).
Produce gets KAFKA_STORAGE_ERROR, nothing partial stays in the log or is acknowledged, and
once space is back the same store carries on, offsets contiguous, without a restart."""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from tomyum.config import BrokerConfig
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.records import build_batch, decode_records, iter_batches
from tomyum.storage.engine import TopicPartition
from tomyum.storage.local import LocalLogStore
from tomyum.storage.local.uring_fsync import UringFsync
from tomyum.testing.store import TopicStore
from tomyum.testing.clock import FakeClock

TP = TopicPartition("t", 0)


class Disk:
    """Makes os.pwritev / os.pwrite / os.fdatasync, and the io_uring fsyncs, fail with ENOSPC
    while ``full`` is set. A failing pwritev first writes part of the data, as a real short
    write may."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        self.failures = 0
        real_pwritev, real_pwrite, real_fdatasync = os.pwritev, os.pwrite, os.fdatasync

        def pwritev(fd: int, buffers: list[bytes], offset: int) -> int:
            if self.full:
                self.failures += 1
                real_pwrite(fd, bytes(buffers[0])[:7], offset)  # a few bytes made it
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_pwritev(fd, buffers, offset)

        def pwrite(fd: int, data: bytes, offset: int) -> int:
            if self.full:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_pwrite(fd, data, offset)

        def fdatasync(fd: int) -> None:
            if self.full:
                self.failures += 1
                raise OSError(errno.ENOSPC, "No space left on device")
            real_fdatasync(fd)

        real_ring_sync = UringFsync.sync

        def ring_sync(ring: UringFsync, fds: list[int], dirs: Sequence[Path] = ()) -> asyncio.Future[float]:
            if not self.full:
                return real_ring_sync(ring, fds, dirs)
            self.failures += 1
            failed: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            failed.set_exception(OSError(errno.ENOSPC, "No space left on device"))
            return failed

        monkeypatch.setattr(UringFsync, "sync", ring_sync)
        monkeypatch.setattr(os, "pwritev", pwritev)
        monkeypatch.setattr(os, "pwrite", pwrite)
        monkeypatch.setattr(os, "fdatasync", fdatasync)


@pytest.mark.parametrize("io_uring", [True, False], ids=["io_uring", "thread"])
def test_a_full_disk_refuses_writes_and_recovers_without_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   io_uring: bool) -> None:
    disk = Disk(monkeypatch)
    clock = FakeClock()

    def open_store() -> TopicStore:
        config = BrokerConfig()
        return TopicStore(tmp_path / "d", config, clock,
                          engine=LocalLogStore(tmp_path / "d", config, clock, io_uring=io_uring))

    async def produce(store: TopicStore, value: bytes) -> int:
        r = await store.append(TP, memoryview(build_batch([(b"k", value)], timestamp=clock.time_ms())))
        await store.wait_durable(TP, r.last_offset + 1)
        return r.base_offset

    async def main() -> None:
        store = open_store()
        await store.start()
        try:
            await store.create_topic("t", 1, {})
            assert [await produce(store, b"before-%d" % i) for i in range(3)] == [0, 1, 2]
            disk.full = True
            for i in range(3):
                with pytest.raises(KafkaError) as e:
                    await produce(store, b"refused-%d" % i)
                assert e.value.code == ErrorCode.kafka_storage_error
            assert store.offsets(TP).log_end_offset == 3  # nothing partial was kept
            # written, then the fsync fails: the producer is told, nothing is acknowledged
            r = None
            disk.full = False
            r = await store.append(TP, memoryview(build_batch([(b"k", b"unsynced")], timestamp=clock.time_ms())))
            disk.full = True
            with pytest.raises(KafkaError) as e:
                await store.wait_durable(TP, r.last_offset + 1)
            assert e.value.code == ErrorCode.kafka_storage_error
            disk.full = False  # space is back
            assert [await produce(store, b"after-%d" % i) for i in range(3)] == [4, 5, 6]
            assert store.offsets(TP).high_watermark == 7
        finally:
            disk.full = False
            await store.close()
        assert disk.failures >= 4

    asyncio.run(asyncio.wait_for(main(), 30))

    async def reopen() -> None:
        store = open_store()
        await store.start()
        try:
            seg = store._log(TP).segments[0]
            data = seg.read(0, seg.size)
            values = [r.value for h in iter_batches(data) for r in decode_records(data[h.position : h.end])]
            assert values == [b"before-0", b"before-1", b"before-2", b"unsynced", b"after-0", b"after-1",
                              b"after-2"]
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(reopen(), 30))


def test_produce_over_the_wire_gets_kafka_storage_error_while_the_disk_is_full(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import struct

    from tests.integration.test_bad_input import request
    from tomyum.broker.broker import Broker

    disk = Disk(monkeypatch)

    def produce_frame(value: bytes, correlation_id: int) -> bytes:
        batch = build_batch([(b"k", value)], timestamp=int(time.time() * 1000))
        body = (struct.pack(">hhi", -1, -1, 5000) + struct.pack(">i", 1) + struct.pack(">h", 1) + b"t"
                + struct.pack(">i", 1) + struct.pack(">ii", 0, len(batch)) + batch)
        return request(0, 3, correlation_id, body)

    def answer(frame: bytes) -> tuple[int, int]:
        pos = 4 + 4 + 2 + 1 + 4  # correlation id, topic count, name, partition count
        index, error_code, base_offset = struct.unpack_from(">ihq", frame, pos)
        return error_code, base_offset

    async def main() -> None:
        config = BrokerConfig.load(None, [("listeners", "PLAINTEXT://127.0.0.1:0")])
        broker = Broker(config, tmp_path / "d")
        await broker.start([("t", 1, 1)])
        loop = asyncio.get_running_loop()
        try:
            s = socket.create_connection(("127.0.0.1", broker.listeners[0].port), timeout=10)
            s.setblocking(False)

            async def send(frame: bytes) -> tuple[int, int]:
                await loop.sock_sendall(s, frame)
                head = await loop.sock_recv(s, 4)
                (size,) = struct.unpack(">i", head)
                data = b""
                while len(data) < size:
                    data += await loop.sock_recv(s, size - len(data))
                return answer(data)

            assert await send(produce_frame(b"a", 1)) == (0, 0)
            disk.full = True
            assert await send(produce_frame(b"b", 2)) == (56, -1)  # KAFKA_STORAGE_ERROR
            disk.full = False
            assert await send(produce_frame(b"c", 3)) == (0, 1)
            s.close()
        finally:
            await broker.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
