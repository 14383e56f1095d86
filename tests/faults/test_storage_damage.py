"""Damaged files on the local engine: a torn tail, a bad CRC in the middle of the log (known
durable, or torn by a crash), truncated, garbage, wrong or missing index files, missing
checkpoints. The broker starts, repairs what can be repaired, and never serves corrupt bytes:
from a damaged durable batch on, a partition serves nothing and takes no writes, with an
error naming the file and the offset."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tomyum.config import BrokerConfig
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.records import build_batch, decode_records, iter_batches
from tomyum.storage.engine import TopicPartition
from tomyum.testing.store import TopicStore
from tomyum.testing.clock import FakeClock

TP = TopicPartition("t", 0)
CONFIGS = {"internal.segment.bytes": 2048, "index.interval.bytes": 200}
CLOCK = FakeClock()

Scenario = Callable[[TopicStore], Awaitable[None]]


def run(data_dir: Path, scenario: Scenario) -> None:
    async def main() -> None:
        store = TopicStore(data_dir, BrokerConfig(), CLOCK)
        await store.start()
        try:
            if "t" not in store.topics():
                await store.create_topic("t", 1, CONFIGS)
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def fill(data_dir: Path, n: int = 60) -> None:
    async def scenario(store: TopicStore) -> None:
        for i in range(n):
            r = await store.append(TP, memoryview(build_batch([(b"k", b"value-%03d" % i + b"." * 80)],
                                                              timestamp=CLOCK.time_ms())))
            await store.wait_durable(TP, r.last_offset + 1)

    run(data_dir, scenario)


def read_values(store: TopicStore, start: int = 0) -> list[bytes]:
    plog = store._log(TP)
    out: list[bytes] = []
    offset = start
    while offset < plog.high_watermark:
        try:
            data = plog.read(offset, 1 << 20)
        except KafkaError as e:  # what a consumer is told at the damage
            assert e.code == ErrorCode.kafka_storage_error
            break
        data = data if isinstance(data, bytes) else data.read_all()
        if not data:
            break
        for h in iter_batches(data):
            out += [r.value or b"" for r in decode_records(data[h.position : h.end])]
            offset = h.next_offset
    return out


def segments(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "t-0").glob("*.log"))


def expected(n: int = 60) -> list[bytes]:
    return [b"value-%03d" % i + b"." * 80 for i in range(n)]


def test_a_torn_tail_is_truncated_and_writing_goes_on(tmp_path: Path) -> None:
    d = tmp_path / "d"
    fill(d)
    (d / ".kafka_cleanshutdown").unlink()
    with open(segments(d)[-1], "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x01\x00garbage")

    async def scenario(store: TopicStore) -> None:
        assert read_values(store) == expected()
        r = await store.append(TP, memoryview(build_batch([(b"k", b"after")], timestamp=CLOCK.time_ms())))
        assert r.base_offset == 60

    run(d, scenario)


def corrupt_middle_of(path: Path) -> int:
    """Flip a byte inside the third batch of ``path``; returns the first offset of that batch."""
    data = bytearray(path.read_bytes())
    batches = list(iter_batches(bytes(data)))
    h = batches[2]
    data[h.position + 70] ^= 0xFF
    path.write_bytes(bytes(data))
    return h.base_offset


def test_a_bad_crc_in_a_durable_segment_stops_the_partition_there(tmp_path: Path) -> None:
    d = tmp_path / "d"
    fill(d)  # a clean shutdown: older segments are loaded from their indexes, not scanned
    bad = corrupt_middle_of(segments(d)[1])

    async def scenario(store: TopicStore) -> None:
        values = read_values(store)  # a consumer from the start gets everything before the damage
        assert values == expected()[:bad]
        with pytest.raises(KafkaError) as e:
            store._log(TP).read(bad, 1 << 20)
        assert e.value.code == ErrorCode.kafka_storage_error and f"offset {bad}" in str(e.value)
        with pytest.raises(KafkaError) as e:  # nothing past it either
            store._log(TP).read(58, 1 << 20)
        assert e.value.code == ErrorCode.kafka_storage_error
        with pytest.raises(KafkaError) as e:
            await store.append(TP, memoryview(build_batch([(b"k", b"x")], timestamp=CLOCK.time_ms())))
        assert e.value.code == ErrorCode.kafka_storage_error

    run(d, scenario)
    assert len(segments(d)) > 2  # nothing was deleted: the operator decides


def test_damage_to_durable_data_found_by_recovery_is_not_truncated_away(tmp_path: Path) -> None:
    d = tmp_path / "d"
    fill(d)
    (d / ".kafka_cleanshutdown").unlink()
    (d / "recovery-point-offset-checkpoint").unlink()  # unknown: every segment is scanned
    sizes = [p.stat().st_size for p in segments(d)]
    bad = corrupt_middle_of(segments(d)[1])

    async def scenario(store: TopicStore) -> None:
        assert store._log(TP).corrupt_at == bad
        assert read_values(store) == expected()[:bad]

    run(d, scenario)
    assert [p.stat().st_size for p in segments(d)] == sizes


def test_a_segment_torn_beyond_the_recovery_point_is_cut_with_what_follows(tmp_path: Path) -> None:
    d = tmp_path / "d"
    fill(d)
    (d / ".kafka_cleanshutdown").unlink()
    (d / "recovery-point-offset-checkpoint").write_text("0\n1\nt 0 0\n")  # nothing known durable
    bad = corrupt_middle_of(segments(d)[1])
    before = len(segments(d))

    async def scenario(store: TopicStore) -> None:
        assert store._log(TP).corrupt_at is None
        assert read_values(store) == expected()[:bad]
        r = await store.append(TP, memoryview(build_batch([(b"k", b"new")], timestamp=CLOCK.time_ms())))
        assert r.base_offset == bad

    run(d, scenario)
    assert len(segments(d)) < before


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing", "wrong"])
def test_damaged_index_files_are_rebuilt(tmp_path: Path, damage: str) -> None:
    d = tmp_path / "d"
    fill(d)
    for index in sorted((d / "t-0").glob("*.index")) + sorted((d / "t-0").glob("*.timeindex")):
        data = index.read_bytes()
        if damage == "truncated":
            index.write_bytes(data[: len(data) // 2 + 3])
        elif damage == "garbage":
            index.write_bytes(b"\xff" * len(data))
        elif damage == "missing":
            index.unlink()
        elif index.suffix == ".index" and len(data) >= 16:  # monotonic, but pointing at the wrong bytes
            entries = [struct.unpack_from(">ii", data, i) for i in range(0, len(data), 8)]
            index.write_bytes(b"".join(struct.pack(">ii", o, p + 7) for o, p in entries))

    async def scenario(store: TopicStore) -> None:
        assert read_values(store) == expected()
        for start in (5, 17, 33, 59):
            assert read_values(store, start)[0] == expected()[start]
        found = await store.offset_for_timestamp(TP, CLOCK.time_ms())
        assert found is not None and found.offset == 0

    run(d, scenario)


def test_missing_checkpoints_and_snapshots_are_rebuilt(tmp_path: Path) -> None:
    d = tmp_path / "d"
    fill(d)
    for name in ("recovery-point-offset-checkpoint", "log-start-offset-checkpoint", "cleaner-offset-checkpoint"):
        (d / name).unlink(missing_ok=True)
    for snap in (d / "t-0").glob("*.snapshot"):
        snap.write_bytes(b"not a snapshot")

    async def scenario(store: TopicStore) -> None:
        assert read_values(store) == expected()
        assert store.offsets(TP).high_watermark == 60

    run(d, scenario)
