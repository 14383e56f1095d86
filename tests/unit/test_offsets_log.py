"""__consumer_offsets records in Kafka's layouts: offset commits and group metadata."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

from tomyum.clock import SYSTEM_CLOCK
from tomyum.coordinator.group.offsets_log import (
    GroupSnapshot,
    MemberSnapshot,
    group_key,
    group_value,
    parse_group_key,
    parse_group_value,
    parse_offset_key,
)


def test_group_metadata_round_trips_in_kafkas_layout() -> None:
    snap = GroupSnapshot(protocol_type="consumer", generation=7, protocol="range", leader="m-1",
                         timestamp=1_700_000_000_000, members=(
                             MemberSnapshot("m-1", None, "client-a", "/127.0.0.1", 300000, 45000, b"sub", b"asg"),
                             MemberSnapshot("m-2", "static-2", "client-b", "/127.0.0.1", 300000, 45000, b"", b"x"),
                         ))
    key, value = group_key("g1"), group_value(snap)
    assert key == struct.pack(">hh", 2, 2) + b"g1"  # key version 2: a group, not an offset
    assert parse_group_key(key) == "g1" and parse_offset_key(key) is None
    assert struct.unpack_from(">h", value)[0] == 3  # value version 3 (with group instance ids)
    assert parse_group_value(value) == snap


def test_an_empty_group_has_no_protocol_or_leader() -> None:
    snap = GroupSnapshot(protocol_type="consumer", generation=3, protocol=None, leader=None, timestamp=0, members=())
    assert parse_group_value(group_value(snap)) == snap


def test_a_partition_that_cannot_be_loaded_fails_only_its_own_groups(tmp_path: Path) -> None:
    """A partition of __consumer_offsets whose log cannot be read does not stop the load:
    its groups are not coordinated (FindCoordinator says COORDINATOR_NOT_AVAILABLE), every
    other group's offsets are restored."""
    from tomyum.config import BrokerConfig
    from tomyum.coordinator.group.offsets import OffsetStore
    from tomyum.coordinator.group.offsets_log import OFFSETS_TOPIC, CommittedOffset
    from tomyum.coordinator.runtime import partition_for
    from tomyum.errors import StorageError
    from tomyum.storage.memory import MemoryLogStore
    from tomyum.testing.store import TopicStore

    groups = [f"g{i}" for i in range(12)]

    async def main() -> None:
        store = TopicStore(tmp_path, BrokerConfig(), engine=MemoryLogStore(tmp_path, BrokerConfig(), SYSTEM_CLOCK))
        await store.start()
        writer = OffsetStore(store, 3)
        for g in groups:
            await writer.commit(g, [("t", 0, CommittedOffset(len(g) + 40, -1, "", 0))])
        broken = partition_for("g0", 3)
        real_read = store.engine.read

        async def read(tp: Any, *args: Any, **kwargs: Any) -> Any:
            if tp.topic == OFFSETS_TOPIC and tp.partition == broken:
                raise StorageError("Input/output error")
            return await real_read(tp, *args, **kwargs)

        store.engine.read = read
        reader = OffsetStore(store, 3)
        await reader.start()
        assert reader.failed_partitions == {broken}
        for g in groups:
            mine = partition_for(g, 3) == broken
            assert reader.coordinates(g) is not mine
            assert (reader.fetch(g, "t", 0) is None) is mine
        await store.close()

    asyncio.run(main())
