"""Committed offsets as records of the compacted internal topic ``__consumer_offsets``,
in Kafka's own key/value layout, so restart recovery is a replay of that topic.

key   (version 1): group string, topic string, partition int32
value (version 3): offset int64, leader_epoch int32, metadata string, commit_timestamp int64
A null value (tombstone) deletes the key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

OFFSETS_TOPIC = "__consumer_offsets"


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int


def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _read_string(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from(">h", buf, pos)
    return buf[pos + 2 : pos + 2 + n].decode(), pos + 2 + n


def offset_key(group: str, topic: str, partition: int) -> bytes:
    return struct.pack(">h", 1) + _string(group) + _string(topic) + struct.pack(">i", partition)


def offset_value(c: CommittedOffset) -> bytes:
    return (struct.pack(">hqi", 3, c.offset, c.leader_epoch) + _string(c.metadata)
            + struct.pack(">q", c.commit_timestamp))


def parse_offset_key(key: bytes) -> tuple[str, str, int] | None:
    """(group, topic, partition) for an offset-commit key; None for other key kinds."""
    (version,) = struct.unpack_from(">h", key, 0)
    if version not in (0, 1):
        return None
    group, pos = _read_string(key, 2)
    topic, pos = _read_string(key, pos)
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
    metadata, pos = _read_string(value, pos)
    (commit_timestamp,) = struct.unpack_from(">q", value, pos)
    return CommittedOffset(offset, leader_epoch, metadata, commit_timestamp)


def java_string_hash(s: str) -> int:
    """Java's String.hashCode, which Kafka uses to place a group on a partition."""
    h = 0
    for ch in s.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(group: str, partitions: int) -> int:
    return (java_string_hash(group) & 0x7FFFFFFF) % partitions
