"""__consumer_offsets records in Kafka's layouts: offset commits and group metadata."""

from __future__ import annotations

import struct

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
