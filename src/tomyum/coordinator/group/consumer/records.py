"""The records of a consumer group (KIP-848), named after Kafka's coordinator records.

An operation returns these; the group state changes only by replaying them
(:meth:`ConsumerGroup.replay`). They mirror Kafka's ``__consumer_offsets`` record kinds:

=============================  ================================================
ours                           Kafka's key (version)
=============================  ================================================
``GroupEpochRecord``           ConsumerGroupMetadataKey (3)
``SubscriptionMetadataRecord`` ConsumerGroupPartitionMetadataKey (4)
``MemberMetadataRecord``       ConsumerGroupMemberMetadataKey (5)
``TargetAssignmentEpochRecord`` ConsumerGroupTargetAssignmentMetadataKey (6)
``TargetAssignmentMemberRecord`` ConsumerGroupTargetAssignmentMemberKey (7)
``CurrentAssignmentRecord``    ConsumerGroupCurrentMemberAssignmentKey (8)
``MemberRemovedRecord``        tombstones of keys 5, 7 and 8 for one member
``GroupRemovedRecord``         tombstones of keys 3, 4 and 6
=============================  ================================================

log.py encodes them into ``__consumer_offsets`` in Kafka's layouts; the runtime stores them
there before a change is answered and replays them on start.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

#: topic id → partitions
Assignment = Mapping[uuid.UUID, frozenset[int]]

EMPTY: Assignment = {}


class MemberState(enum.Enum):
    """Where a member is in its reconciliation towards the target assignment (Kafka's names)."""

    STABLE = "stable"
    UNREVOKED_PARTITIONS = "unrevoked_partitions"
    UNRELEASED_PARTITIONS = "unreleased_partitions"


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupEpochRecord:
    group_id: str
    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionMetadataRecord:
    """The subscribed topics as the last target assignment saw them: (name, id, partitions)."""

    group_id: str
    topics: tuple[tuple[str, uuid.UUID, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberMetadataRecord:
    group_id: str
    member_id: str
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    subscribed_topic_regex: str | None
    server_assignor: str | None
    rebalance_timeout_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetAssignmentEpochRecord:
    group_id: str
    assignment_epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetAssignmentMemberRecord:
    group_id: str
    member_id: str
    partitions: Assignment = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class CurrentAssignmentRecord:
    group_id: str
    member_id: str
    member_epoch: int
    previous_member_epoch: int
    state: MemberState
    assigned: Assignment = field(default_factory=dict)
    pending_revocation: Assignment = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberRemovedRecord:
    group_id: str
    member_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupRemovedRecord:
    group_id: str


Record = (GroupEpochRecord | SubscriptionMetadataRecord | MemberMetadataRecord | TargetAssignmentEpochRecord
          | TargetAssignmentMemberRecord | CurrentAssignmentRecord | MemberRemovedRecord | GroupRemovedRecord)
