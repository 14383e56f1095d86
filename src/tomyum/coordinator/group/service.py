"""The group coordinator as the handlers see it: one operation per request, whatever the
group's type. What is decided about a group is decided here, once, as in Kafka's
``GroupCoordinatorShard``: which coordinator a group id belongs to (classic or consumer,
KIP-848), whether a member may commit offsets (the generation of a classic group, the member
epoch of a consumer group), the commit timestamp (the injected clock), and which groups can be
deleted. Handlers decode a request, call one operation, encode its answer.

A group id is either a classic group or a consumer group. JoinGroup (classic protocol) for a
consumer group with members is INCONSISTENT_GROUP_PROTOCOL, ConsumerGroupHeartbeat for a
classic group with members is GROUP_ID_NOT_FOUND (Kafka without online migration); an empty
group of the other type is replaced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tomyum.clock import Clock
from tomyum.coordinator.group.consumer import ConsumerGroupRuntime, HeartbeatRequest
from tomyum.coordinator.group.classic_group import GroupState
from tomyum.coordinator.group.coordinator import GroupCoordinator
from tomyum.coordinator.group.offsets import OffsetStore
from tomyum.coordinator.group.offsets_log import CommittedOffset
from tomyum.errors import ErrorCode, KafkaError
from tomyum.metadata import TopicImage

log = logging.getLogger(__name__)

#: the timer key of the periodic expiry of committed offsets (Kafka's group metadata expiration)
OFFSETS_EXPIRY = "expire-group-metadata"

#: the longest metadata string a commit may carry (Kafka's offset.metadata.max.bytes)
MAX_METADATA = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class OffsetCommitEntry:
    """One partition of an OffsetCommit or TxnOffsetCommit."""

    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str


class GroupCoordinatorService:
    def __init__(self, *, classic: GroupCoordinator, consumer: ConsumerGroupRuntime, offsets: OffsetStore,
                 topics: Callable[[], Mapping[str, TopicImage]], clock: Clock) -> None:
        self.classic = classic
        self.consumer = consumer
        self.offsets = offsets
        self.topics = topics
        self.clock = clock

    # routing -------------------------------------------------------------------------------------

    async def join_group(self, *, group_id: str, member_id: str, group_instance_id: str | None, client_id: str,
                         client_host: str, session_timeout_ms: int, rebalance_timeout_ms: int,
                         protocol_type: str, protocols: list[tuple[str, bytes]],
                         require_known_member_id: bool,
                         may_skip_assignment: bool = False) -> Coroutine[Any, Any, dict[str, Any]]:
        """Route a JoinGroup: returns the long poll to await for the answer (the routing itself,
        an empty consumer group converted, is done when this returns). ``may_skip_assignment``:
        the client understands KIP-814's skip_assignment (JoinGroup v9+)."""
        if group_id in self.consumer and not await self.consumer.convert_if_empty(group_id):
            return _answer({"error_code": ErrorCode.inconsistent_group_protocol, "generation_id": -1,
                            "protocol_name": None, "leader": "", "member_id": member_id, "members": ()})
        return self.classic.join(
            group_id=group_id, member_id=member_id, group_instance_id=group_instance_id, client_id=client_id,
            client_host=client_host, session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms, protocol_type=protocol_type, protocols=protocols,
            require_known_member_id=require_known_member_id, may_skip_assignment=may_skip_assignment)

    async def consumer_group_heartbeat(self, request: HeartbeatRequest) -> dict[str, Any]:
        classic = self.classic.groups.get(request.group_id)
        if classic is not None and classic.members:
            return {"error_code": ErrorCode.group_id_not_found, "member_epoch": 0,
                    "error_message": f"Group {request.group_id} is not a consumer group.", "heartbeat_interval": 0}
        if classic is not None:
            await self.classic.forget(request.group_id)
        return await self.consumer.heartbeat(request)

    # offsets -------------------------------------------------------------------------------------

    def check_commit(self, group_id: str, member_id: str, generation_or_epoch: int, group_instance_id: str | None,
                     api_version: int, *, transactional: bool = False) -> ErrorCode:
        """May this member commit offsets for ``group_id`` now? Checked by the coordinator of
        the group's type: the member epoch of a consumer group (KIP-848), the generation of a
        classic one. A transactional commit with no generation and no member is not checked."""
        if transactional and generation_or_epoch < 0 and not member_id:
            return ErrorCode.none
        if group_id in self.consumer:
            return self.consumer.state.check_commit(group_id, member_id, generation_or_epoch, api_version,
                                                    transactional=transactional)
        return self.classic.check_commit(group_id, generation_or_epoch, member_id, group_instance_id)

    def commit_offsets(self, group_id: str, group_code: ErrorCode, entries: Sequence[OffsetCommitEntry], *,
                       producer_id: int = -1, producer_epoch: int = -1
                       ) -> Coroutine[Any, Any, list[ErrorCode]]:
        """Check each partition now (``group_code``: the group's verdict, of :meth:`check_commit`
        or of the transaction coordinator), stamp the valid commits with the clock, and return
        what stores them: awaited, it answers a code per entry once they are durable (in a
        transaction when ``producer_id`` >= 0: pending until its marker)."""
        now = self.clock.time_ms()
        known = self.topics()
        codes: list[ErrorCode] = []
        commits: list[tuple[str, int, CommittedOffset]] = []
        for e in entries:
            code = group_code
            if code == ErrorCode.none:
                if e.topic not in known or not 0 <= e.partition < known[e.topic].num_partitions:
                    code = ErrorCode.unknown_topic_or_partition
                elif len(e.metadata) > MAX_METADATA:
                    code = ErrorCode.offset_metadata_too_large
                else:
                    commits.append((e.topic, e.partition, CommittedOffset(e.offset, e.leader_epoch, e.metadata, now)))
            codes.append(code)
        return self._store_commits(group_id, codes, commits, producer_id, producer_epoch)

    async def _store_commits(self, group_id: str, codes: list[ErrorCode],
                             commits: list[tuple[str, int, CommittedOffset]], producer_id: int,
                             producer_epoch: int) -> list[ErrorCode]:
        try:
            if producer_id >= 0:
                await self.offsets.txn_commit(group_id, producer_id, producer_epoch, commits)
            else:
                await self.offsets.commit(group_id, commits)
        except KafkaError as e:
            return [e.code if c == ErrorCode.none else c for c in codes]
        return codes

    def active_groups(self) -> set[str]:
        """Groups with members, classic or consumer (their offsets never expire)."""
        classic = {g.group_id for g in self.classic.groups.values() if g.members}
        return classic | {gid for gid, g in self.consumer.state.groups.items() if g.members}

    def schedule_offsets_expiry(self, retention_ms: int, interval_ms: int) -> None:
        """Every ``interval_ms`` (offsets.retention.check.interval.ms), on the coordinator timer,
        expire the committed offsets of groups without members after ``retention_ms``
        (offsets.retention.minutes), as Kafka's coordinator schedules its group metadata
        expiration."""
        async def expire() -> None:
            try:
                await self.offsets.expire(retention_ms, self.active_groups())
            except KafkaError as e:
                log.error("cannot expire committed offsets: %s", e)
            finally:
                self.schedule_offsets_expiry(retention_ms, interval_ms)

        self.classic.timer.schedule(OFFSETS_EXPIRY, interval_ms, expire)

    def check_fetch(self, group_id: str, member_id: str | None, member_epoch: int) -> ErrorCode:
        """May this member read the group's committed offsets (OffsetFetch v9 names members of
        consumer groups)?"""
        if group_id in self.consumer:
            return self.consumer.state.check_fetch(group_id, member_id, member_epoch)
        return ErrorCode.none

    # deletion ------------------------------------------------------------------------------------

    async def delete_groups(self, group_ids: Iterable[str]) -> list[ErrorCode]:
        """DeleteGroups: a group with members is NON_EMPTY_GROUP, an unknown one
        GROUP_ID_NOT_FOUND; an empty group goes with its committed offsets, in one batch of
        tombstones (the group's and its offsets', as Kafka writes them)."""
        await self.classic.timer.run_due()  # members past their session timeout are gone now
        return [await self._delete_group(group_id) for group_id in group_ids]

    async def _delete_group(self, group_id: str) -> ErrorCode:
        if group_id in self.consumer:
            if self.consumer.state.groups[group_id].members:
                return ErrorCode.non_empty_group
            try:
                await self.consumer.delete(group_id, self.offsets.offset_tombstones(group_id))
            except KafkaError as e:
                return e.code
            return ErrorCode.none
        classic = self.classic.groups.get(group_id)
        if classic is not None and classic.state == GroupState.DEAD:
            classic = None
        if classic is None and group_id not in self.offsets.groups():
            return ErrorCode.group_id_not_found
        if classic is not None and classic.members:
            return ErrorCode.non_empty_group
        return await self.classic.forget(group_id, self.offsets.offset_tombstones(group_id))


async def _answer(response: dict[str, Any]) -> dict[str, Any]:
    return response
