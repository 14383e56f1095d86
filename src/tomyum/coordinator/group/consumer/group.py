"""A consumer group's state (KIP-848) and how each record changes it.

The state changes only in :meth:`ConsumerGroup.replay`, which takes records in any order a
compacted log keeps them (a member's assignment before its metadata, as Kafka allows). A group has a *group epoch* (bumped
when its members, their subscriptions or the subscribed topics change), a *target
assignment* computed by the server-side assignor for an *assignment epoch*, and per member
the *current assignment* it is reconciling towards the target (see reconciliation.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from tomyum.coordinator.group.consumer.records import (
    EMPTY,
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

#: member epoch a member sends to leave, and a static member to leave for now (KIP-848)
LEAVE_EPOCH = -1
STATIC_LEAVE_EPOCH = -2


@dataclass(frozen=True, slots=True, eq=False)
class ConsumerGroupMember:
    """A member as the records left it. Never changed in place: a replayed record replaces the
    member, so a copy of the group (:meth:`ConsumerGroup.copy`) may share its members."""

    member_id: str
    metadata: MemberMetadataRecord
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: Assignment = field(default_factory=dict)
    pending_revocation: Assignment = field(default_factory=dict)

    @property
    def instance_id(self) -> str | None:
        return self.metadata.instance_id

    def current(self) -> CurrentAssignmentRecord:
        return CurrentAssignmentRecord(
            group_id=self.metadata.group_id, member_id=self.member_id, member_epoch=self.member_epoch,
            previous_member_epoch=self.previous_member_epoch, state=self.state, assigned=self.assigned,
            pending_revocation=self.pending_revocation)


@dataclass(eq=False)
class ConsumerGroup:
    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ConsumerGroupMember] = field(default_factory=dict)
    target: dict[str, Assignment] = field(default_factory=dict)
    subscription_metadata: tuple[tuple[str, uuid.UUID, int], ...] = ()
    #: (topic id, partition) → the member that owns it (assigned, or still to revoke)
    owners: dict[tuple[uuid.UUID, int], str] = field(default_factory=dict)

    def state(self) -> str:
        """Kafka's consumer group states: Empty, Assigning, Reconciling, Stable."""
        if not self.members:
            return "Empty"
        if self.group_epoch > self.assignment_epoch:
            return "Assigning"
        if any(m.member_epoch != self.assignment_epoch or m.state != MemberState.STABLE
               for m in self.members.values()):
            return "Reconciling"
        return "Stable"

    def static_member(self, instance_id: str) -> ConsumerGroupMember | None:
        return next((m for m in self.members.values() if m.instance_id == instance_id), None)

    def copy(self) -> ConsumerGroup:
        """A scratch copy that records can be replayed into without changing this group: its
        own containers, the same (immutable) members and assignments. O(members + partitions)
        dict copies, not a deep copy: a heartbeat makes one."""
        return ConsumerGroup(self.group_id, self.group_epoch, self.assignment_epoch, dict(self.members),
                             dict(self.target), self.subscription_metadata, dict(self.owners))

    def owner_of(self, topic_id: uuid.UUID, partition: int) -> str | None:
        return self.owners.get((topic_id, partition))

    def replay(self, record: Record) -> None:
        match record:
            case GroupEpochRecord(epoch=epoch):
                self.group_epoch = epoch
            case SubscriptionMetadataRecord(topics=topics):
                self.subscription_metadata = topics
            case MemberMetadataRecord(member_id=member_id):
                member = self.members.get(member_id)
                self.members[member_id] = (ConsumerGroupMember(member_id, record) if member is None
                                           else replace(member, metadata=record))
            case TargetAssignmentEpochRecord(assignment_epoch=epoch):
                self.assignment_epoch = epoch
            case TargetAssignmentMemberRecord(member_id=member_id, partitions=partitions):
                self.target[member_id] = partitions
            case CurrentAssignmentRecord(member_id=member_id):
                self._replay_current(record)
            case MemberRemovedRecord(member_id=member_id):
                removed = self.members.pop(member_id, None)
                if removed is not None:
                    self._release(removed)
                self.target.pop(member_id, None)
            case GroupRemovedRecord():
                raise ValueError("a removed group is dropped by its owner, not replayed into")

    def _replay_current(self, r: CurrentAssignmentRecord) -> None:
        old = self.members.get(r.member_id)
        if old is None:  # loaded before its metadata record (compaction keeps only the latest of each key)
            old = ConsumerGroupMember(r.member_id, _unknown_metadata(r))
        else:
            self._release(old)
        self.members[r.member_id] = replace(
            old, member_epoch=r.member_epoch, previous_member_epoch=r.previous_member_epoch, state=r.state,
            assigned=r.assigned, pending_revocation=r.pending_revocation)
        for assignment in (r.assigned, r.pending_revocation):
            for topic_id, partitions in assignment.items():
                for p in partitions:
                    self.owners[(topic_id, p)] = r.member_id

    def _release(self, member: ConsumerGroupMember) -> None:
        """Forget the member's ownerships. It owns only partitions of its own assignment or
        pending revocation (its last current-assignment record set both), so only those are
        looked at, not every partition of the group."""
        for assignment in (member.assigned, member.pending_revocation):
            for topic_id, partitions in assignment.items():
                for p in partitions:
                    if self.owners.get((topic_id, p)) == member.member_id:
                        del self.owners[(topic_id, p)]


def _unknown_metadata(r: CurrentAssignmentRecord) -> MemberMetadataRecord:
    """A member's metadata until its own record is replayed (Kafka's getOrMaybeCreateMember)."""
    return MemberMetadataRecord(group_id=r.group_id, member_id=r.member_id, instance_id=None, rack_id=None,
                                client_id="", client_host="", subscribed_topic_names=(), subscribed_topic_regex=None,
                                server_assignor=None, rebalance_timeout_ms=-1)


def partitions_of(a: Assignment) -> set[tuple[uuid.UUID, int]]:
    return {(t, p) for t, ps in a.items() for p in ps}


def assignment_of(pairs: set[tuple[uuid.UUID, int]]) -> Assignment:
    out: dict[uuid.UUID, set[int]] = {}
    for t, p in pairs:
        out.setdefault(t, set()).add(p)
    return {t: frozenset(ps) for t, ps in out.items()}


__all__ = ["EMPTY", "LEAVE_EPOCH", "STATIC_LEAVE_EPOCH", "ConsumerGroup", "ConsumerGroupMember",
           "assignment_of", "partitions_of"]
