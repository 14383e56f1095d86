"""Committed offsets as records of the compacted internal topic ``__consumer_offsets``,
in Kafka's own key/value layout, so restart recovery is a replay of that topic.

key   (version 1): group string, topic string, partition int32
value (version 3): offset int64, leader_epoch int32, metadata string, commit_timestamp int64
A null value (tombstone) deletes the key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tomyum.protocol import primitives

OFFSETS_TOPIC = "__consumer_offsets"


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int


def short_string(s: str) -> bytes:
    return primitives.short_string(s, False)


def read_short_string(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from(">h", buf, pos)
    return buf[pos + 2 : pos + 2 + n].decode(), pos + 2 + n


def offset_key(group: str, topic: str, partition: int) -> bytes:
    return struct.pack(">h", 1) + short_string(group) + short_string(topic) + struct.pack(">i", partition)


def offset_value(c: CommittedOffset) -> bytes:
    return (struct.pack(">hqi", 3, c.offset, c.leader_epoch) + short_string(c.metadata)
            + struct.pack(">q", c.commit_timestamp))


def parse_offset_key(key: bytes) -> tuple[str, str, int] | None:
    """(group, topic, partition) for an offset-commit key; None for other key kinds."""
    (version,) = struct.unpack_from(">h", key, 0)
    if version not in (0, 1):
        return None
    group, pos = read_short_string(key, 2)
    topic, pos = read_short_string(key, pos)
    (partition,) = struct.unpack_from(">i", key, pos)
    return group, topic, partition


def parse_offset_value(value: bytes) -> CommittedOffset:
    (version,) = struct.unpack_from(">h", value, 0)
    (offset,) = struct.unpack_from(">q", value, 2)
    pos = 10
    leader_epoch = -1
    if version >= 3:
        (leader_epoch,) = struct.unpack_from(">i", value, pos)
        pos += 4
    metadata, pos = read_short_string(value, pos)
    (commit_timestamp,) = struct.unpack_from(">q", value, pos)
    return CommittedOffset(offset, leader_epoch, metadata, commit_timestamp)


# Group metadata ------------------------------------------------------------------------------------
#
# key   (version 2): group string
# value (version 3): protocol_type string, generation int32, protocol nullable string,
#                    leader nullable string, current_state_timestamp int64, members array of
#                    (member_id, group_instance_id nullable, client_id, client_host string,
#                    rebalance_timeout int32, session_timeout int32, subscription bytes,
#                    assignment bytes)

@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    timestamp: int
    members: tuple[MemberSnapshot, ...]


def _nullable(s: str | None) -> bytes:
    return struct.pack(">h", -1) if s is None else short_string(s)


def _read_nullable(buf: bytes, pos: int) -> tuple[str | None, int]:
    (n,) = struct.unpack_from(">h", buf, pos)
    if n < 0:
        return None, pos + 2
    return read_short_string(buf, pos)


def _bytes(b: bytes) -> bytes:
    return struct.pack(">i", len(b)) + b


def _read_bytes(buf: bytes, pos: int) -> tuple[bytes, int]:
    (n,) = struct.unpack_from(">i", buf, pos)
    return buf[pos + 4 : pos + 4 + max(n, 0)], pos + 4 + max(n, 0)


def group_key(group: str) -> bytes:
    return struct.pack(">h", 2) + short_string(group)


def parse_group_key(key: bytes) -> str | None:
    (version,) = struct.unpack_from(">h", key, 0)
    return read_short_string(key, 2)[0] if version == 2 else None


def group_value(g: GroupSnapshot) -> bytes:
    out = bytearray(struct.pack(">h", 3) + short_string(g.protocol_type) + struct.pack(">i", g.generation))
    out += _nullable(g.protocol) + _nullable(g.leader) + struct.pack(">qi", g.timestamp, len(g.members))
    for m in g.members:
        out += short_string(m.member_id) + _nullable(m.group_instance_id) + short_string(m.client_id)
        out += short_string(m.client_host) + struct.pack(">ii", m.rebalance_timeout_ms, m.session_timeout_ms)
        out += _bytes(m.subscription) + _bytes(m.assignment)
    return bytes(out)


def parse_group_value(value: bytes) -> GroupSnapshot:
    (version,) = struct.unpack_from(">h", value, 0)
    protocol_type, pos = read_short_string(value, 2)
    (generation,) = struct.unpack_from(">i", value, pos)
    protocol, pos = _read_nullable(value, pos + 4)
    leader, pos = _read_nullable(value, pos)
    timestamp = -1
    if version >= 2:
        (timestamp,) = struct.unpack_from(">q", value, pos)
        pos += 8
    (count,) = struct.unpack_from(">i", value, pos)
    pos += 4
    members = []
    for _ in range(count):
        member_id, pos = read_short_string(value, pos)
        instance = None
        if version >= 3:
            instance, pos = _read_nullable(value, pos)
        client_id, pos = read_short_string(value, pos)
        client_host, pos = read_short_string(value, pos)
        rebalance = -1
        if version >= 1:
            (rebalance,) = struct.unpack_from(">i", value, pos)
            pos += 4
        (session,) = struct.unpack_from(">i", value, pos)
        subscription, pos = _read_bytes(value, pos + 4)
        assignment, pos = _read_bytes(value, pos)
        members.append(MemberSnapshot(member_id, instance, client_id, client_host, rebalance if rebalance >= 0
                                      else session, session, subscription, assignment))
    return GroupSnapshot(protocol_type, generation, protocol, leader, timestamp, tuple(members))
