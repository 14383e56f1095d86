"""A member's next current assignment, towards its target: Kafka's CurrentAssignmentBuilder.

A member never owns a partition another member still owns. Moving towards a new target:

1. partitions it owns that are not in the target are *revoked* first: the member keeps its
   epoch, in UNREVOKED_PARTITIONS, until a heartbeat no longer reports them as owned;
2. then it moves to the target's epoch and is given the target's partitions that are free;
   those still owned by another member are *unreleased* (UNRELEASED_PARTITIONS) and given
   on a later heartbeat, once released.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from tomyum.coordinator.group.consumer.group import ConsumerGroupMember
from tomyum.coordinator.group.consumer.records import Assignment, CurrentAssignmentRecord, MemberState


def next_assignment(member: ConsumerGroupMember, *, target_epoch: int, target: Assignment,
                    owned: Assignment | None, owner_of: Callable[[uuid.UUID, int], str | None]
                    ) -> CurrentAssignmentRecord:
    """The member's current assignment after this heartbeat (unchanged: ``member.current()``).

    ``owned`` is what the member reports it owns (None: not reported, so revocations are
    not yet acknowledged)."""
    if member.state == MemberState.STABLE and member.member_epoch == target_epoch:
        return member.current()
    if member.state == MemberState.UNREVOKED_PARTITIONS and _owns_any(owned, member.pending_revocation):
        return member.current()
    return _compute(member, target_epoch, target, owned, owner_of)


def _owns_any(owned: Assignment | None, partitions: Assignment) -> bool:
    if owned is None:
        return True
    return any(p in partitions.get(t, ()) for t, ps in owned.items() for p in ps)


def _compute(member: ConsumerGroupMember, target_epoch: int, target: Assignment,
             owned: Assignment | None, owner_of: Callable[[uuid.UUID, int], str | None]
             ) -> CurrentAssignmentRecord:
    assigned: dict[uuid.UUID, frozenset[int]] = {}
    revoking: dict[uuid.UUID, frozenset[int]] = {}
    pending: dict[uuid.UUID, frozenset[int]] = {}
    unreleased = False
    for topic_id in set(target) | set(member.assigned):
        wanted = target.get(topic_id, frozenset())
        current = member.assigned.get(topic_id, frozenset())
        if kept := current & wanted:
            assigned[topic_id] = kept
        if gone := current - kept:
            revoking[topic_id] = gone
        free = frozenset(p for p in wanted - kept if owner_of(topic_id, p) in (None, member.member_id))
        unreleased = unreleased or len(free) < len(wanted - kept)
        if free:
            pending[topic_id] = free

    def record(state: MemberState, member_epoch: int, assignment: Assignment,
               pending_revocation: Assignment) -> CurrentAssignmentRecord:
        previous = member.member_epoch if member_epoch != member.member_epoch else member.previous_member_epoch
        return CurrentAssignmentRecord(
            group_id=member.metadata.group_id, member_id=member.member_id, member_epoch=member_epoch,
            previous_member_epoch=previous, state=state, assigned=assignment, pending_revocation=pending_revocation)

    if revoking and _owns_any(owned, revoking):
        return record(MemberState.UNREVOKED_PARTITIONS, member.member_epoch, assigned, revoking)
    for topic_id, partitions in pending.items():
        assigned[topic_id] = assigned.get(topic_id, frozenset()) | partitions
    state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
    return record(state, target_epoch, assigned, {})
