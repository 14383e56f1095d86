"""Consumer group records (KIP-848) as ``__consumer_offsets`` records, in Kafka's layouts.

Keys (not flexible): version int16, then group id string, and for member records the member
id string. Values are flexible (compact strings and arrays, empty tagged-field sections):

====  ========================================  ================================================
key   Kafka's name                              value (version 0)
====  ========================================  ================================================
3     ConsumerGroupMetadata                     epoch int32
4     ConsumerGroupPartitionMetadata            epoch int32, [topic id uuid, name, partitions
                                                int32, [partition int32, [rack]]]
5     ConsumerGroupMemberMetadata               instance id?, rack id?, client id, client host,
                                                [subscribed topic], regex?, rebalance timeout
                                                int32, server assignor?
6     ConsumerGroupTargetAssignmentMetadata     assignment epoch int32
7     ConsumerGroupTargetAssignmentMember       [topic id uuid, [partition int32]]
8     ConsumerGroupCurrentMemberAssignment      member epoch int32, previous member epoch int32,
                                                state int8, assigned and pending revocation as
                                                [topic id uuid, [partition int32]]
====  ========================================  ================================================

A member leaves with tombstones of its keys 8, 7 and 5 (replayed as one MemberRemovedRecord,
at key 5); a group with tombstones of 6, 4 and 3 (a GroupRemovedRecord, at key 3).
"""

from __future__ import annotations

import struct
import uuid

from tomyum.coordinator.group.consumer.records import (
    Assignment,
    CurrentAssignmentRecord,
    GroupEpochRecord,
    GroupRemovedRecord,
    MemberMetadataRecord,
    MemberRemovedRecord,
    MemberState,
    Record,
    SubscriptionMetadataRecord,
    TargetAssignmentEpochRecord,
    TargetAssignmentMemberRecord,
)
from tomyum.protocol.primitives import read_uvarint, short_string, uvarint_bytes

GROUP_EPOCH, SUBSCRIPTION, MEMBER, TARGET_EPOCH, TARGET_MEMBER, CURRENT = 3, 4, 5, 6, 7, 8
KEY_VERSIONS = frozenset(range(3, 9))
_STATES = {MemberState.UNREVOKED_PARTITIONS: 1, MemberState.UNRELEASED_PARTITIONS: 2, MemberState.STABLE: 3}
_STATE_OF = {v: k for k, v in _STATES.items()}


class _Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def fixed(self, fmt: str, v: int) -> _Writer:
        self.buf += struct.pack(">" + fmt, v)
        return self

    def uvarint(self, n: int) -> _Writer:
        self.buf += uvarint_bytes(n)
        return self

    def string(self, s: str | None) -> _Writer:
        if s is None:
            return self.uvarint(0)
        b = s.encode()
        self.uvarint(len(b) + 1)
        self.buf += b
        return self

    def uuid(self, u: uuid.UUID) -> _Writer:
        self.buf += u.bytes
        return self

    def count(self, n: int) -> _Writer:
        return self.uvarint(n + 1)

    def tags(self) -> _Writer:
        return self.uvarint(0)

    def assignment(self, a: Assignment) -> _Writer:
        self.count(len(a))
        for topic_id, parts in sorted(a.items()):
            self.uuid(topic_id).count(len(parts))
            for p in sorted(parts):
                self.fixed("i", p)
            self.tags()
        return self


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def fixed(self, fmt: str) -> int:
        (v,) = struct.unpack_from(">" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(v)

    def uvarint(self) -> int:
        n, self.pos = read_uvarint(self.buf, self.pos, len(self.buf))
        return n

    def string(self) -> str | None:
        n = self.uvarint()
        if n == 0:
            return None
        s = self.buf[self.pos : self.pos + n - 1].decode()
        self.pos += n - 1
        return s

    def text(self) -> str:
        return self.string() or ""

    def uuid(self) -> uuid.UUID:
        u = uuid.UUID(bytes=bytes(self.buf[self.pos : self.pos + 16]))
        self.pos += 16
        return u

    def count(self) -> int:
        return max(self.uvarint() - 1, 0)

    def tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self.pos += self.uvarint()  # size, then skip the data

    def assignment(self) -> Assignment:
        out: dict[uuid.UUID, frozenset[int]] = {}
        for _ in range(self.count()):
            topic_id = self.uuid()
            out[topic_id] = frozenset(self.fixed("i") for _ in range(self.count()))
            self.tags()
        return out


def _key(version: int, group_id: str, member_id: str | None = None) -> bytes:
    out = struct.pack(">h", version) + short_string(group_id, False)
    return out + short_string(member_id, False) if member_id is not None else out


def encode(record: Record) -> list[tuple[bytes, bytes | None]]:
    """The ``__consumer_offsets`` records (key, value or None for a tombstone) of one record."""
    g = record.group_id
    match record:
        case GroupEpochRecord(epoch=epoch):
            return [(_key(GROUP_EPOCH, g), bytes(_Writer().fixed("i", epoch).tags().buf))]
        case SubscriptionMetadataRecord(topics=topics):
            w = _Writer().fixed("i", 0).count(len(topics))
            for name, topic_id, partitions in topics:
                w.uuid(topic_id).string(name).fixed("i", partitions).count(0).tags()
            return [(_key(SUBSCRIPTION, g), bytes(w.tags().buf))]
        case MemberMetadataRecord():
            w = (_Writer().string(record.instance_id).string(record.rack_id).string(record.client_id)
                 .string(record.client_host).count(len(record.subscribed_topic_names)))
            for name in record.subscribed_topic_names:
                w.string(name)
            w.string(record.subscribed_topic_regex).fixed("i", record.rebalance_timeout_ms)
            w.string(record.server_assignor).tags()
            return [(_key(MEMBER, g, record.member_id), bytes(w.buf))]
        case TargetAssignmentEpochRecord(assignment_epoch=epoch):
            return [(_key(TARGET_EPOCH, g), bytes(_Writer().fixed("i", epoch).tags().buf))]
        case TargetAssignmentMemberRecord(member_id=member_id, partitions=partitions):
            return [(_key(TARGET_MEMBER, g, member_id), bytes(_Writer().assignment(partitions).tags().buf))]
        case CurrentAssignmentRecord():
            w = (_Writer().fixed("i", record.member_epoch).fixed("i", record.previous_member_epoch)
                 .fixed("b", _STATES[record.state]).assignment(record.assigned)
                 .assignment(record.pending_revocation).tags())
            return [(_key(CURRENT, g, record.member_id), bytes(w.buf))]
        case MemberRemovedRecord(member_id=member_id):
            return [(_key(v, g, member_id), None) for v in (CURRENT, TARGET_MEMBER, MEMBER)]
        case GroupRemovedRecord():
            return [(_key(v, g), None) for v in (TARGET_EPOCH, SUBSCRIPTION, GROUP_EPOCH)]
    raise TypeError(f"not a consumer group record: {record!r}")


def decode(key: bytes, value: bytes | None) -> Record | None:
    """The record a ``__consumer_offsets`` record stands for; None for keys of other kinds and
    for the tombstones that only accompany a removal."""
    (version,) = struct.unpack_from(">h", key, 0)
    if version not in KEY_VERSIONS:
        return None
    (n,) = struct.unpack_from(">h", key, 2)
    g = key[4 : 4 + n].decode()
    member_id = None
    if version in (MEMBER, TARGET_MEMBER, CURRENT):
        (m,) = struct.unpack_from(">h", key, 4 + n)
        member_id = key[6 + n : 6 + n + m].decode()
    if value is None:
        if version == MEMBER and member_id is not None:
            return MemberRemovedRecord(group_id=g, member_id=member_id)
        if version == GROUP_EPOCH:
            return GroupRemovedRecord(group_id=g)
        return None
    r = _Reader(value)
    if version == GROUP_EPOCH:
        return GroupEpochRecord(group_id=g, epoch=r.fixed("i"))
    if version == SUBSCRIPTION:
        r.fixed("i")
        topics = []
        for _ in range(r.count()):
            topic_id, name, partitions = r.uuid(), r.text(), r.fixed("i")
            for _ in range(r.count()):  # partition racks: not used yet
                r.fixed("i")
                for _ in range(r.count()):
                    r.string()
                r.tags()
            r.tags()
            topics.append((name, topic_id, partitions))
        return SubscriptionMetadataRecord(group_id=g, topics=tuple(topics))
    if version == TARGET_EPOCH:
        return TargetAssignmentEpochRecord(group_id=g, assignment_epoch=r.fixed("i"))
    assert member_id is not None
    if version == MEMBER:
        instance_id, rack_id, client_id, client_host = r.string(), r.string(), r.text(), r.text()
        names = tuple(r.text() for _ in range(r.count()))
        regex, timeout, assignor = r.string(), r.fixed("i"), r.string()
        return MemberMetadataRecord(group_id=g, member_id=member_id, instance_id=instance_id, rack_id=rack_id,
                                    client_id=client_id, client_host=client_host, subscribed_topic_names=names,
                                    subscribed_topic_regex=regex, server_assignor=assignor,
                                    rebalance_timeout_ms=timeout)
    if version == TARGET_MEMBER:
        return TargetAssignmentMemberRecord(group_id=g, member_id=member_id, partitions=r.assignment())
    epoch, previous, state = r.fixed("i"), r.fixed("i"), r.fixed("b")
    return CurrentAssignmentRecord(group_id=g, member_id=member_id, member_epoch=epoch, previous_member_epoch=previous,
                                   state=_STATE_OF.get(state, MemberState.STABLE), assigned=r.assignment(),
                                   pending_revocation=r.assignment())
