"""A classic group and its members, as the classic group coordinator (coordinator.py) keeps
them (Kafka's ClassicGroup and ClassicGroupMember), and the answers a waiting member is given."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Any

from tomyum.errors import ErrorCode


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(eq=False)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    join_future: asyncio.Future[dict[str, Any]] | None = None
    sync_future: asyncio.Future[dict[str, Any]] | None = None

    def metadata_for(self, protocol: str) -> bytes:
        return next(m for name, m in self.protocols if name == protocol)


@dataclass(eq=False)
class Group:
    group_id: str
    state: GroupState = GroupState.EMPTY
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    #: KIP-394: members told MEMBER_ID_REQUIRED, each with a timer of its session timeout (a
    #: client that never comes back does not hold the rebalance open)
    pending_members: set[str] = field(default_factory=set)
    #: the first rebalance of an empty group waits group.initial.rebalance.delay.ms
    initial_delay: bool = False

    def static_member(self, group_instance_id: str) -> Member | None:
        return next((m for m in self.members.values() if m.group_instance_id == group_instance_id), None)

    def check_member(self, member_id: str, group_instance_id: str | None) -> ErrorCode:
        """UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID (an old id of a static member), or NONE."""
        if group_instance_id is not None:
            known = self.static_member(group_instance_id)
            if known is not None and known.member_id != member_id:
                return ErrorCode.fenced_instance_id
        return ErrorCode.none if member_id in self.members else ErrorCode.unknown_member_id

    def candidate_protocols(self) -> set[str]:
        sets = [{name for name, _ in m.protocols} for m in self.members.values()]
        return set.intersection(*sets) if sets else set()

    def select_protocol(self) -> str:
        candidates = self.candidate_protocols()
        votes: dict[str, int] = {}
        for m in self.members.values():
            choice = next(name for name, _ in m.protocols if name in candidates)
            votes[choice] = votes.get(choice, 0) + 1
        return max(sorted(votes), key=lambda name: votes[name])

    def all_joined(self) -> bool:
        return all(m.join_future is not None for m in self.members.values()) and not self.pending_members


def answer_waiting(m: Member, code: ErrorCode) -> None:
    """Answer a member's JoinGroup or SyncGroup that waits, with ``code``."""
    if m.join_future is not None and not m.join_future.done():
        m.join_future.set_result(join_error(code, m.member_id))
    if m.sync_future is not None and not m.sync_future.done():
        m.sync_future.set_result(error(code))
    m.join_future = m.sync_future = None


#: what a member is told when its group's metadata cannot be stored (Kafka's storeGroup mapping)
STORE_ERRORS = {
    ErrorCode.unknown_topic_or_partition: ErrorCode.coordinator_not_available,
    ErrorCode.not_enough_replicas: ErrorCode.coordinator_not_available,
    ErrorCode.not_leader_or_follower: ErrorCode.not_coordinator,
    ErrorCode.kafka_storage_error: ErrorCode.not_coordinator,
    ErrorCode.request_timed_out: ErrorCode.rebalance_in_progress,
    ErrorCode.message_too_large: ErrorCode.unknown_server_error,
    ErrorCode.record_list_too_large: ErrorCode.unknown_server_error,
}


def error(code: ErrorCode) -> dict[str, Any]:
    return {"error_code": code, "protocol_type": None, "protocol_name": None, "assignment": b""}


def join_error(code: ErrorCode, member_id: str) -> dict[str, Any]:
    return {"error_code": code, "generation_id": -1, "protocol_type": None, "protocol_name": None,
            "leader": "", "member_id": member_id, "members": [], "skip_assignment": False}

