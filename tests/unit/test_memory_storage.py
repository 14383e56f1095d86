"""What the memory engine does beyond the shared contract: retention when asked, with each
batch counting as a segment (the local engine's retention is in test_retention.py)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from tomyum.config import BrokerConfig, TopicConfig
from tomyum.protocol.records import build_batch
from tomyum.storage.engine import PartitionSpec, TopicPartition
from tomyum.storage.memory import MemoryLogStore
from tomyum.testing.clock import FakeClock

TP = TopicPartition("t", 0)
NOW = 1_700_000_000_000


def retained(tmp_path: Path, overrides: dict[str, Any], timestamps: list[int], advance_ms: int) -> tuple[int, int]:
    """(batches dropped, log start offset) after writing one batch per timestamp, moving the
    clock ``advance_ms`` and enforcing retention."""

    async def main() -> tuple[int, int]:
        config, clock = BrokerConfig(), FakeClock(NOW)
        engine = MemoryLogStore(tmp_path, config, clock)
        spec = PartitionSpec(topic_id=uuid.uuid4(), config=TopicConfig(config, overrides))
        await engine.start({TP: spec})
        try:
            for ts in timestamps:
                r = await engine.append(TP, memoryview(build_batch([(b"k", b"v" * 50)], timestamp=ts)))
            await engine.wait_durable(TP, r.last_offset + 1)
            clock.advance(advance_ms)
            dropped = await engine.enforce_retention()
            return dropped, engine.offsets(TP).log_start_offset
        finally:
            await engine.close()

    return asyncio.run(asyncio.wait_for(main(), 10))


def test_batches_older_than_retention_ms_are_dropped_oldest_first(tmp_path: Path) -> None:
    assert retained(tmp_path, {"retention.ms": 1000}, [NOW - 5000, NOW - 3000, NOW], 500) == (2, 2)


def test_retention_bytes_keeps_the_newest_batches_within_the_limit(tmp_path: Path) -> None:
    size = len(build_batch([(b"k", b"v" * 50)], timestamp=NOW))
    assert retained(tmp_path, {"retention.bytes": 2 * size}, [NOW] * 5, 0) == (3, 3)


def test_a_compacted_topic_keeps_everything(tmp_path: Path) -> None:
    assert retained(tmp_path, {"retention.ms": 1, "cleanup.policy": "compact"}, [NOW - 5000] * 3, 0) == (0, 0)
