"""The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat), as a pure state machine.

Each operation reads the groups and returns ``Result(records, response)``; the groups change
only when the runtime replays those records (:meth:`ConsumerGroups.replay`). An operation
works on a scratch copy of its group so that each step sees the records before it, as
Kafka's coordinator does with its timeline snapshots. No I/O, no clock: session and
rebalance timeouts are the runtime's timers (runtime.py), which call :meth:`remove_member`.

A heartbeat (member epoch 0 joins, -1 leaves, -2 leaves for now as a static member, > 0
beats): updates the member's metadata; bumps the group epoch when the members, their
subscriptions or the subscribed topics change; recomputes the target assignment with the
server-side assignor when the group epoch is ahead of it; and moves this member one step
towards its target (reconciliation.py). The answer carries the member's assignment when it
joins, sends a full request, or its assignment changed.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tomyum.coordinator.group.consumer.assignors import ASSIGNORS, DEFAULT_ASSIGNOR
from tomyum.coordinator.group.consumer.group import (
    LEAVE_EPOCH,
    STATIC_LEAVE_EPOCH,
    ConsumerGroup,
    ConsumerGroupMember,
    partitions_of,
)
from tomyum.coordinator.group.consumer.reconciliation import next_assignment
from tomyum.coordinator.group.consumer.records import (
    Assignment,
    CurrentAssignmentRecord,
    GroupEpochRecord,
    GroupRemovedRecord,
    MemberMetadataRecord,
    MemberRemovedRecord,
    Record,
    SubscriptionMetadataRecord,
    TargetAssignmentEpochRecord,
    TargetAssignmentMemberRecord,
)
from tomyum.errors import ErrorCode

#: topic name → (topic id, partition count): the topics a subscription can name
Topics = Mapping[str, tuple[uuid.UUID, int]]


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatRequest:
    """ConsumerGroupHeartbeat's fields (None: not sent, unchanged since the last heartbeat)."""

    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: tuple[str, ...] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    owned: Assignment | None = None
    client_id: str = ""
    client_host: str = ""
    #: the request's version: from v1 (KIP-1082) the client names itself, always
    api_version: int = 0


#: the first ConsumerGroupHeartbeat version whose clients generate their member id (KIP-1082)
CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION = 1


@dataclass(frozen=True, slots=True)
class Result:
    records: tuple[Record, ...]
    response: dict[str, Any]


class HeartbeatError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class ConsumerGroups:
    """Every consumer group of this coordinator. Not thread-safe: one caller at a time."""

    def __init__(self, *, heartbeat_interval_ms: int) -> None:
        self.groups: dict[str, ConsumerGroup] = {}
        self.heartbeat_interval_ms = heartbeat_interval_ms
        #: group epoch bumps replayed (KIP-848 rebalances: a member joined or left, a
        #: subscription changed); the runtime zeroes it after the start-up replay
        self.rebalances = 0

    def replay(self, record: Record) -> None:
        """Apply one record (from the runtime's write path or its loader): the only place the
        groups change."""
        if isinstance(record, GroupRemovedRecord):
            self.groups.pop(record.group_id, None)
            return
        group = self.groups.get(record.group_id)
        if group is None:
            if isinstance(record, MemberRemovedRecord):
                return  # the tombstones of a member of a group removed since
            group = self.groups[record.group_id] = ConsumerGroup(record.group_id)
        if isinstance(record, GroupEpochRecord) and record.epoch > group.group_epoch:
            self.rebalances += 1
        group.replay(record)

    def unload(self, belongs: Callable[[str], bool]) -> None:
        """Forget the groups of an unloaded partition."""
        self.groups = {group_id: g for group_id, g in self.groups.items() if not belongs(group_id)}

    # ConsumerGroupHeartbeat ----------------------------------------------------------------

    def heartbeat(self, req: HeartbeatRequest, topics: Topics) -> Result:
        try:
            _validate(req)
            return _Heartbeat(self, req, topics).run()
        except HeartbeatError as e:
            return Result((), {"error_code": e.code, "error_message": str(e), "member_id": None,
                               "member_epoch": 0, "heartbeat_interval": 0, "assignment": None})

    def remove_member(self, group_id: str, member_id: str) -> Result:
        """Fence a member (session or rebalance timeout): it leaves, the group epoch moves on."""
        group = self.groups.get(group_id)
        if group is None or member_id not in group.members:
            return Result((), {})
        return Result((MemberRemovedRecord(group_id=group_id, member_id=member_id),
                       GroupEpochRecord(group_id=group_id, epoch=group.group_epoch + 1)), {})

    def delete(self, group_id: str) -> Result:
        """DeleteGroups of an empty consumer group."""
        return Result((GroupRemovedRecord(group_id=group_id),), {})

    def subscribed_topic_names(self, group_id: str, topics: Mapping[str, Any]) -> set[str]:
        """The existing topics the group's members subscribe to, by name or by regex."""
        members = self.groups[group_id].members.values()
        return set().union(*(_subscribed(m.metadata, topics) for m in members))

    # offsets -----------------------------------------------------------------------------------

    def check_commit(self, group_id: str, member_id: str, member_epoch: int, api_version: int,
                     *, transactional: bool = False) -> ErrorCode:
        """Kafka's ConsumerGroup.validateOffsetCommit for a group of this kind; a
        TxnOffsetCommit (``transactional``) carries the member epoch at any version."""
        group = self.groups[group_id]
        if member_epoch < 0 and not group.members:
            return ErrorCode.none  # the admin client, or a consumer that does not use the group
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        if api_version < 9 and not transactional:
            return ErrorCode.unsupported_version  # a KIP-848 member commits with its member epoch
        return ErrorCode.none if member_epoch == member.member_epoch else ErrorCode.stale_member_epoch

    def check_fetch(self, group_id: str, member_id: str | None, member_epoch: int) -> ErrorCode:
        """Kafka's ConsumerGroup.validateOffsetFetch: only a fetch naming a member is checked."""
        group = self.groups[group_id]
        if member_id is None or member_epoch < 0:
            return ErrorCode.none
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        return ErrorCode.none if member_epoch == member.member_epoch else ErrorCode.stale_member_epoch

    # ConsumerGroupDescribe ----------------------------------------------------------------

    def describe(self, group_id: str, names: Mapping[uuid.UUID, str]) -> dict[str, Any]:
        group = self.groups[group_id]

        def assignment(a: Assignment) -> dict[str, Any]:
            return {"topic_partitions": [{"topic_id": t, "topic_name": names.get(t, ""), "partitions": sorted(ps)}
                                         for t, ps in sorted(a.items(), key=lambda kv: names.get(kv[0], ""))]}

        members = [{
            "member_id": m.member_id, "instance_id": m.instance_id, "rack_id": m.metadata.rack_id,
            "member_epoch": m.member_epoch, "client_id": m.metadata.client_id,
            "client_host": m.metadata.client_host,
            "subscribed_topic_names": list(m.metadata.subscribed_topic_names),
            "subscribed_topic_regex": m.metadata.subscribed_topic_regex or "",  # Kafka: "", not null
            "assignment": assignment(m.assigned),
            "target_assignment": assignment(group.target.get(m.member_id, {})), "member_type": 1,
        } for m in group.members.values()]
        return {"error_code": 0, "error_message": None, "group_id": group_id, "group_state": group.state(),
                "group_epoch": group.group_epoch, "assignment_epoch": group.assignment_epoch,
                "assignor_name": _preferred_assignor(group), "members": members}


def _validate(req: HeartbeatRequest) -> None:
    """Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid."""
    def invalid(message: str) -> HeartbeatError:
        return HeartbeatError(ErrorCode.invalid_request, message)

    if not req.group_id:
        raise invalid("GroupId can't be empty.")
    if req.instance_id == "":
        raise invalid("InstanceId can't be empty.")
    if req.member_epoch < STATIC_LEAVE_EPOCH:
        raise invalid(f"MemberEpoch {req.member_epoch} is invalid.")
    if req.member_epoch == STATIC_LEAVE_EPOCH and req.instance_id is None:
        raise invalid("InstanceId can't be null when leaving as a static member.")
    if (req.member_epoch != 0 or req.api_version >= CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION) and not req.member_id:
        raise invalid("MemberId can't be empty.")
    if req.member_epoch == 0:
        if req.rebalance_timeout_ms < 0:
            raise invalid("RebalanceTimeoutMs must be provided in first request.")
        if req.owned is None or req.owned:
            raise invalid("TopicPartitions must be empty when (re-)joining.")
        if req.subscribed_topic_names is None and req.subscribed_topic_regex is None:
            raise invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
    if req.server_assignor is not None and req.server_assignor not in ASSIGNORS:
        raise HeartbeatError(ErrorCode.unsupported_assignor,
                             f"ServerAssignor {req.server_assignor} is not supported. "
                             f"Supported assignors: {', '.join(ASSIGNORS)}.")
    if req.subscribed_topic_regex:
        try:
            re.compile(req.subscribed_topic_regex)
        except re.error as e:
            raise HeartbeatError(ErrorCode.invalid_regular_expression,
                                 f"SubscribedTopicRegex {req.subscribed_topic_regex} is invalid: {e}") from None


def _preferred_assignor(group: ConsumerGroup) -> str:
    votes = Counter(m.metadata.server_assignor for m in group.members.values() if m.metadata.server_assignor)
    return votes.most_common(1)[0][0] if votes else DEFAULT_ASSIGNOR


def _subscribed(meta: MemberMetadataRecord, topics: Mapping[str, Any]) -> set[str]:
    names = {n for n in meta.subscribed_topic_names if n in topics}
    if meta.subscribed_topic_regex:
        pattern = re.compile(meta.subscribed_topic_regex)
        names |= {n for n in topics if pattern.fullmatch(n)}
    return names


class _Heartbeat:
    """One ConsumerGroupHeartbeat: records emitted into a scratch copy of the group."""

    def __init__(self, groups: ConsumerGroups, req: HeartbeatRequest, topics: Topics) -> None:
        self.groups, self.req, self.topics = groups, req, topics
        existing = groups.groups.get(req.group_id)
        self.group = existing.copy() if existing is not None else ConsumerGroup(req.group_id)
        self.records: list[Record] = []
        self.new_member = False

    def emit(self, record: Record) -> None:
        self.records.append(record)
        self.group.replay(record)

    def run(self) -> Result:
        req = self.req
        if req.member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
            return self.leave()
        member_id = req.member_id or str(uuid.uuid4())  # v0 only: the coordinator names a joining member
        member = self.join(member_id) if req.member_epoch == 0 else self.known(member_id)
        before = member.assigned
        self.update_metadata(member)
        self.maybe_new_target()
        member = self.group.members[member.member_id]
        updated = next_assignment(member, target_epoch=self.group.assignment_epoch,
                                  target=self.group.target.get(member.member_id, {}), owned=req.owned,
                                  owner_of=self.group.owner_of)
        if updated != member.current():
            self.emit(updated)
        full = (req.rebalance_timeout_ms >= 0 and req.owned is not None
                and (req.subscribed_topic_names is not None or req.subscribed_topic_regex is not None))
        response: dict[str, Any] = {
            "error_code": 0, "error_message": None, "member_id": member.member_id,
            "member_epoch": updated.member_epoch, "heartbeat_interval": self.groups.heartbeat_interval_ms,
            "assignment": None}
        if req.member_epoch == 0 or full or updated.assigned != before:
            response["assignment"] = {"topic_partitions": [
                {"topic_id": t, "partitions": sorted(ps)} for t, ps in sorted(updated.assigned.items(),
                                                                              key=lambda kv: str(kv[0]))]}
        return Result(tuple(self.records), response)

    def join(self, member_id: str) -> ConsumerGroupMember:
        req, group = self.req, self.group
        if req.instance_id is not None:
            previous = group.static_member(req.instance_id)
            if previous is not None and previous.member_id != member_id:
                if previous.member_epoch != STATIC_LEAVE_EPOCH:
                    raise HeartbeatError(ErrorCode.unreleased_instance_id,
                                         f"Static member {req.instance_id} is still in the group as "
                                         f"{previous.member_id}.")
                return self.replace_static(previous, member_id)
        member = group.members.get(member_id)
        if member is None:
            self.emit(self.metadata(None, member_id))
            self.new_member = True
            member = group.members[member_id]
        return member

    def replace_static(self, previous: ConsumerGroupMember, member_id: str) -> ConsumerGroupMember:
        """KIP-848 static membership: the new member id takes the old one's place and
        partitions, at the group's assignment epoch, without a new group epoch."""
        gid, target = self.group.group_id, self.group.target.get(previous.member_id, {})
        self.emit(MemberRemovedRecord(group_id=gid, member_id=previous.member_id))
        self.emit(self.metadata(previous.metadata, member_id))
        self.emit(TargetAssignmentMemberRecord(group_id=gid, member_id=member_id, partitions=target))
        self.emit(CurrentAssignmentRecord(
            group_id=gid, member_id=member_id, member_epoch=previous.previous_member_epoch,
            previous_member_epoch=previous.previous_member_epoch, state=previous.state,
            assigned=previous.assigned, pending_revocation=previous.pending_revocation))
        return self.group.members[member_id]

    def known(self, member_id: str) -> ConsumerGroupMember:
        req = self.req
        member = self.group.members.get(member_id)
        if member is None:
            raise HeartbeatError(ErrorCode.unknown_member_id,
                                 f"Member {member_id} is not a member of group {req.group_id}.")
        if req.member_epoch != member.member_epoch:
            owned_ok = req.owned is not None and partitions_of(req.owned) <= partitions_of(member.assigned)
            if not (req.member_epoch == member.previous_member_epoch and owned_ok):
                raise HeartbeatError(ErrorCode.fenced_member_epoch,
                                     f"The member epoch {req.member_epoch} is not the current one "
                                     f"({member.member_epoch}).")
        return member

    def metadata(self, old: MemberMetadataRecord | None, member_id: str) -> MemberMetadataRecord:
        req = self.req

        def pick(new: Any, current: Any) -> Any:
            return current if new is None else new

        return MemberMetadataRecord(
            group_id=self.group.group_id, member_id=member_id,
            instance_id=pick(req.instance_id, old.instance_id if old else None),
            rack_id=pick(req.rack_id, old.rack_id if old else None),
            client_id=req.client_id, client_host=req.client_host,
            subscribed_topic_names=pick(req.subscribed_topic_names, old.subscribed_topic_names if old else ()),
            subscribed_topic_regex=pick(req.subscribed_topic_regex, old.subscribed_topic_regex if old else None),
            server_assignor=pick(req.server_assignor, old.server_assignor if old else None),
            rebalance_timeout_ms=req.rebalance_timeout_ms if req.rebalance_timeout_ms >= 0
            else (old.rebalance_timeout_ms if old else 0))

    def update_metadata(self, member: ConsumerGroupMember) -> None:
        """New metadata for the member; a changed subscription or topics bump the group epoch."""
        group, old = self.group, member.metadata
        new = self.metadata(old, member.member_id)
        if new != old:
            self.emit(new)
        bump = self.new_member or (new.subscribed_topic_names, new.subscribed_topic_regex) != (
            old.subscribed_topic_names, old.subscribed_topic_regex)
        subscribed = set().union(*(_subscribed(m.metadata, self.topics) for m in group.members.values()))
        metadata = tuple(sorted((n, *self.topics[n]) for n in subscribed))
        if metadata != group.subscription_metadata:
            self.emit(SubscriptionMetadataRecord(group_id=group.group_id, topics=metadata))
            bump = True
        if bump:
            self.emit(GroupEpochRecord(group_id=group.group_id, epoch=group.group_epoch + 1))

    def maybe_new_target(self) -> None:
        group = self.group
        if group.group_epoch <= group.assignment_epoch:
            return
        members = {m.member_id: frozenset(self.topics[n][0] for n in _subscribed(m.metadata, self.topics))
                   for m in group.members.values()}
        partitions = {topic_id: count for _, topic_id, count in group.subscription_metadata}
        instance_ids = {m.member_id: m.instance_id for m in group.members.values() if m.instance_id is not None}
        target = ASSIGNORS[_preferred_assignor(group)](members, partitions, group.target, instance_ids)
        for member_id, assignment in target.items():
            if group.target.get(member_id) != assignment:
                self.emit(TargetAssignmentMemberRecord(group_id=group.group_id, member_id=member_id,
                                                       partitions=assignment))
        self.emit(TargetAssignmentEpochRecord(group_id=group.group_id, assignment_epoch=group.group_epoch))

    def leave(self) -> Result:
        req, group = self.req, self.group
        member = group.members.get(req.member_id)
        if member is None and req.instance_id is not None:
            member = group.static_member(req.instance_id)
        if member is None:
            raise HeartbeatError(ErrorCode.unknown_member_id,
                                 f"Member {req.member_id} is not a member of group {req.group_id}.")
        if req.member_epoch == STATIC_LEAVE_EPOCH:
            # kept, partitions and all, until its session times out or the instance returns
            self.emit(CurrentAssignmentRecord(
                group_id=group.group_id, member_id=member.member_id, member_epoch=STATIC_LEAVE_EPOCH,
                previous_member_epoch=member.member_epoch, state=member.state, assigned=member.assigned,
                pending_revocation=member.pending_revocation))
        else:
            self.emit(MemberRemovedRecord(group_id=group.group_id, member_id=member.member_id))
            self.emit(GroupEpochRecord(group_id=group.group_id, epoch=group.group_epoch + 1))
        return Result(tuple(self.records), {
            "error_code": 0, "error_message": None, "member_id": member.member_id,
            "member_epoch": req.member_epoch, "heartbeat_interval": 0, "assignment": None})
