"""The classic group coordinator: Kafka's group state machine.

States: EMPTY → PREPARING_REBALANCE (members (re)join) → COMPLETING_REBALANCE (the leader
computes the assignment) → STABLE (members heartbeat) → back to PREPARING_REBALANCE when a
member joins, leaves or misses its session timeout.

JoinGroup and SyncGroup are long polls: their futures resolve when the rebalance reaches
the next state. A rebalance completes when every known member has rejoined, or when the
rebalance timeout expires (members that did not rejoin are dropped). The first rebalance of
an empty group waits ``group.initial.rebalance.delay.ms`` for more members, as Kafka does.
The protocol chosen is one every member supports, by the members' votes (Kafka's rule).

Static members (KIP-345, ``group.instance.id``): a static member that restarts and joins
with no member id takes its old place under a new member id — without a rebalance if the
group is stable and its protocol still fits — and the old id is fenced (FENCED_INSTANCE_ID).

Kafka's shape (GroupMetadataManager's classic groups): what is stored — generation, protocol,
leader, members and their assignments (Kafka's GroupMetadataValue in ``__consumer_offsets``) —
changes only in :meth:`GroupCoordinator.replay`, of records that an operation hands to the
coordinator runtime's one write path (append → durable → replay → answer): each operation
(join, sync, heartbeat, leave, a timer's expiry, deletion) is a step that returns
``Result(records, response)`` (coordinator/runtime.py), run under its group's lock by
``GroupCoordinator._run``. Replaying the record of a SyncGroup makes the group Stable and
answers the members waiting for their assignment. A group's record is
written when a generation becomes stable (before SyncGroup answers; an assignment that cannot
be stored is not handed out), when a static member comes back into a stable group, when a group
empties, and as a tombstone when it is deleted. What Kafka keeps only in memory stays in memory:
the members of a rebalance under way, the protocols they offer, their waiting JoinGroup and
SyncGroup, pending members. On start the loader replays the same records: a stable group comes
back stable, its members given a fresh session timeout to heartbeat in, so they carry on
without a rebalance. Committed offsets live in the same topic (see offsets.py).

Time is the coordinator timers' (coordinator/timer.py), on the injected clock: a member's
session (restarted by each heartbeat, join, sync and commit), a KIP-394 pending member's
session, and a rebalance's deadline (the initial delay, then the rebalance timeout) are timers
whose operations take the group's lock and write what they change. Tests move a fake clock
and poll the timers.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from tomyum.clock import SYSTEM_CLOCK, Clock
from tomyum.coordinator.group.classic_group import (
    STORE_ERRORS,
    Group,
    GroupState,
    Member,
    answer_waiting,
    error,
    join_error,
)
from tomyum.coordinator.group.offsets_log import GroupSnapshot, MemberSnapshot, group_key, group_value
from tomyum.coordinator.runtime import KeyValue, Result
from tomyum.coordinator.timer import CoordinatorTimer
from tomyum.errors import ErrorCode, TomyumError

log = logging.getLogger(__name__)

#: the coordinator runtime's write path: ``write(group_id, records)`` appends the records to the
#: group's partition of ``__consumer_offsets``, waits until they are durable, replays them
Write = Callable[[str, Sequence[KeyValue]], Awaitable[None]]

T = TypeVar("T")
#: what JoinGroup and SyncGroup answer: at once, or when the rebalance moves on
JoinAnswer = dict[str, Any] | asyncio.Future[dict[str, Any]]
SyncAnswer = JoinAnswer
#: an operation that changes nothing stored and answers nothing
NOTHING: Result[None] = Result((), None)


class GroupCoordinator:
    """All classic groups of this broker. Methods are called from the event loop; the operations
    on one group that may write records run one at a time (a lock per group), so that a record
    is replayed into the state it was computed from."""

    def __init__(self, *, initial_rebalance_delay_ms: int, min_session_timeout_ms: int,
                 max_session_timeout_ms: int, write: Write, clock: Clock = SYSTEM_CLOCK,
                 timer: CoordinatorTimer | None = None) -> None:
        """``write``: the coordinator runtime's write path of ``__consumer_offsets`` (append →
        durable → replay into :meth:`replay`); ``timer``: the coordinator timers (shared with
        the other coordinators of the broker, or one of its own on ``clock``)."""
        self.clock = clock
        self.timer = timer if timer is not None else CoordinatorTimer(clock)
        self.write = write
        self.groups: dict[str, Group] = {}
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self._locks: dict[str, asyncio.Lock] = {}
        #: rebalances completed since start (a new generation with members; Kafka's
        #: group-coordinator-metrics rebalance count)
        self.rebalances = 0

    def group(self, group_id: str) -> Group:
        g = self.groups.get(group_id)
        if g is None:
            g = self.groups[group_id] = Group(group_id)
        return g

    def _lock(self, group_id: str) -> asyncio.Lock:
        return self._locks.setdefault(group_id, asyncio.Lock())

    # records: the write path and replay --------------------------------------------------------

    def _record(self, g: Group, *, assignments: Mapping[str, bytes] | None = None,
                rename: tuple[Member, str, list[tuple[str, bytes]]] | None = None) -> KeyValue:
        """The group's metadata record as it is to be stored (Kafka's GroupMetadataValue): its
        members with ``assignments`` (at the end of a SyncGroup), or static member ``rename[0]``
        under id ``rename[1]`` with protocols ``rename[2]`` (a restart into a stable group)."""
        protocol = g.protocol_name
        members = []
        for m in g.members.values():
            member_id, protocols = (rename[1], rename[2]) if rename and rename[0] is m else (m.member_id, m.protocols)
            subscription = next((meta for name, meta in protocols if name == protocol), b"")
            assignment = m.assignment if assignments is None else assignments.get(m.member_id, b"")
            members.append(MemberSnapshot(member_id, m.group_instance_id, m.client_id, m.client_host,
                                          m.rebalance_timeout_ms, m.session_timeout_ms, subscription, assignment))
        leader = rename[1] if rename and g.leader_id == rename[0].member_id else g.leader_id
        return self._metadata(g.group_id, GroupSnapshot(g.protocol_type or "", g.generation_id, protocol, leader,
                                                        self.clock.time_ms(), tuple(members)))

    def _empty_record(self, g: Group) -> KeyValue:
        """The record of ``g`` emptied: the next generation, no members (Kafka writes it when
        a group's last member goes)."""
        return self._metadata(g.group_id, GroupSnapshot(g.protocol_type or "", g.generation_id + 1, None, None,
                                                        self.clock.time_ms(), ()))

    @staticmethod
    def _metadata(group_id: str, snapshot: GroupSnapshot) -> KeyValue:
        return group_key(group_id), group_value(snapshot)

    async def _run(self, group_id: str, step: Callable[[], Result[T]],
                   failed: Callable[[ErrorCode], T] | None = None) -> T:
        """Run one operation on a group, in Kafka's shape: under the group's lock, ``step``
        computes its records and its response from the state; the records go through the
        runtime's write path (append → durable → replay into :meth:`replay`); then the response
        is given. A failed write changes nothing stored: the response is then ``failed(code)``
        with ``code`` Kafka's mapping of the write's error (storeGroup's), or the step's own."""
        async with self._lock(group_id):
            result = step()
            if not result.records:
                return result.response
            try:
                await self.write(group_id, result.records)
            except TomyumError as e:
                log.error("group %s: cannot store its metadata: %s", group_id, e)
                code = STORE_ERRORS.get(getattr(e, "code", ErrorCode.unknown_server_error), ErrorCode.unknown_server_error)
                return failed(code) if failed is not None else result.response
            return result.response

    def replay(self, group_id: str, snapshot: GroupSnapshot | None) -> None:
        """Apply a group metadata record (Kafka's ``replay(GroupMetadataKey, GroupMetadataValue)``):
        the only place a group's stored state — generation, protocol, leader, members and their
        assignments, Stable or Empty — changes. A tombstone drops the group. Into a live group
        (the record of one of its own operations) the members keep what only memory holds (the
        protocols they offered, their waiting requests); a static member stored under a new id
        is renamed, its old id fenced. A member new to memory (a load) gets a fresh session."""
        if snapshot is None:
            g = self.groups.pop(group_id, None)
            if g is not None:
                self._forget_timers(g)
            return
        g = self.group(group_id)
        static = {m.group_instance_id: m for m in g.members.values() if m.group_instance_id is not None}
        members: dict[str, Member] = {}
        for ms in snapshot.members:
            m = g.members.get(ms.member_id)
            if m is None and ms.group_instance_id is not None and (m := static.get(ms.group_instance_id)) is not None:
                self._rename(g, m, ms.member_id)
            if m is None:
                m = Member(ms.member_id, ms.group_instance_id, ms.client_id, ms.client_host, ms.session_timeout_ms,
                           ms.rebalance_timeout_ms, snapshot.protocol_type,
                           [(snapshot.protocol or "", ms.subscription)])
                self._heartbeat(g, m)
            m.assignment = ms.assignment
            m.session_timeout_ms, m.rebalance_timeout_ms = ms.session_timeout_ms, ms.rebalance_timeout_ms
            members[ms.member_id] = m
        for gone in [m for mid, m in g.members.items() if mid not in members]:
            self.timer.cancel(_heartbeat_key(group_id, gone.member_id))
            answer_waiting(gone, ErrorCode.unknown_member_id)
        g.members = members
        g.generation_id, g.protocol_type = snapshot.generation, snapshot.protocol_type or None
        g.protocol_name, g.leader_id = (snapshot.protocol, snapshot.leader) if members else (None, None)
        g.state = GroupState.STABLE if members else GroupState.EMPTY
        waiting = [m for m in members.values() if m.sync_future is not None]
        if waiting:  # the members waiting in SyncGroup learn their assignment, now that it is stored
            log.info("group %s: generation %d is stable", group_id, g.generation_id)
        for m in waiting:
            if m.sync_future is not None and not m.sync_future.done():
                m.sync_future.set_result(self._sync_result(g, m))
            m.sync_future = None

    def unload(self, belongs: Callable[[str], bool]) -> None:
        """Drop the groups of an unloaded partition; their waiting members are told
        NOT_COORDINATOR (they look for the coordinator again)."""
        for group_id in [gid for gid in self.groups if belongs(gid)]:
            g = self.groups.pop(group_id)
            self._forget_timers(g)
            for m in g.members.values():
                answer_waiting(m, ErrorCode.not_coordinator)

    async def forget(self, group_id: str, offsets: Sequence[KeyValue] = ()) -> ErrorCode:
        """DeleteGroups: tombstone an empty group's metadata, with ``offsets`` (the tombstones of
        its committed offsets) in the same batch, as Kafka deletes a group; replaying the
        tombstone drops the group."""
        def step() -> Result[ErrorCode]:
            tombstone = [(group_key(group_id), None)] if group_id in self.groups else []
            return Result((*offsets, *tombstone), ErrorCode.none)

        return await self._run(group_id, step, failed=lambda code: code)

    async def stop(self) -> None:
        """As Kafka answers when it unloads a group: the clients look for the coordinator again."""
        for g in self.groups.values():
            self._forget_timers(g)
            for m in g.members.values():
                answer_waiting(m, ErrorCode.not_coordinator)

    # timers ------------------------------------------------------------------------------------

    def _heartbeat(self, g: Group, m: Member) -> None:
        """The member was heard from: its session starts again (Kafka's heartbeat timer)."""
        group_id, member_id = g.group_id, m.member_id
        self.timer.schedule(_heartbeat_key(group_id, member_id), m.session_timeout_ms,
                            lambda: self._on_session_timeout(group_id, member_id))

    def _forget_timers(self, g: Group) -> None:
        self.timer.cancel(_join_key(g.group_id))
        for member_id in [*g.members, *g.pending_members]:
            self.timer.cancel(_heartbeat_key(g.group_id, member_id))
            self.timer.cancel(_pending_key(g.group_id, member_id))

    async def _on_session_timeout(self, group_id: str, member_id: str) -> None:
        await self._run(group_id, lambda: self._session_timeout(group_id, member_id))

    def _session_timeout(self, group_id: str, member_id: str) -> Result[None]:
        g = self.groups.get(group_id)
        m = g.members.get(member_id) if g is not None else None
        if g is None or m is None or self.timer.is_scheduled(_heartbeat_key(group_id, member_id)):
            return NOTHING  # gone, or heard from since
        if m.join_future is not None or m.sync_future is not None:
            self._heartbeat(g, m)  # waiting in JoinGroup or SyncGroup: not timed out by its session
            return NOTHING
        return self._remove(g, m, f"missed its session timeout ({m.session_timeout_ms} ms)")

    async def _on_pending_timeout(self, group_id: str, member_id: str) -> None:
        await self._run(group_id, lambda: self._pending_timeout(group_id, member_id))

    def _pending_timeout(self, group_id: str, member_id: str) -> Result[None]:
        g = self.groups.get(group_id)
        if g is None or member_id not in g.pending_members:
            return NOTHING
        g.pending_members.discard(member_id)
        log.info("group %s: member %s told MEMBER_ID_REQUIRED never came back within its session timeout",
                 group_id, member_id)
        return self._maybe_complete_join(g)

    async def _on_rebalance_deadline(self, group_id: str) -> None:
        await self._run(group_id, lambda: self._rebalance_deadline_passed(group_id))

    def _rebalance_deadline_passed(self, group_id: str) -> Result[None]:
        g = self.groups.get(group_id)
        if g is None or g.state != GroupState.PREPARING_REBALANCE or self.timer.is_scheduled(_join_key(group_id)):
            return NOTHING  # completed, or another deadline set since
        return self._rebalance_deadline(g)

    # JoinGroup --------------------------------------------------------------------------

    async def join(self, *, group_id: str, member_id: str, group_instance_id: str | None, client_id: str,
                   client_host: str, session_timeout_ms: int, rebalance_timeout_ms: int,
                   protocol_type: str, protocols: list[tuple[str, bytes]],
                   require_known_member_id: bool, may_skip_assignment: bool = False) -> dict[str, Any]:
        if not group_id:
            return join_error(ErrorCode.invalid_group_id, member_id)
        if not self.min_session_timeout_ms <= session_timeout_ms <= self.max_session_timeout_ms:
            return join_error(ErrorCode.invalid_session_timeout, member_id)

        def step() -> Result[JoinAnswer]:
            return self._join(group_id=group_id, member_id=member_id, group_instance_id=group_instance_id,
                              client_id=client_id, client_host=client_host, session_timeout_ms=session_timeout_ms,
                              rebalance_timeout_ms=rebalance_timeout_ms, protocol_type=protocol_type,
                              protocols=protocols, require_known_member_id=require_known_member_id,
                              may_skip_assignment=may_skip_assignment)

        answer = await self._run(group_id, step, failed=lambda code: join_error(code, ""))
        return await answer if isinstance(answer, asyncio.Future) else answer

    def _join(self, *, group_id: str, member_id: str, group_instance_id: str | None, client_id: str,
              client_host: str, session_timeout_ms: int, rebalance_timeout_ms: int, protocol_type: str,
              protocols: list[tuple[str, bytes]], require_known_member_id: bool,
              may_skip_assignment: bool = False) -> Result[JoinAnswer]:
        g = self.group(group_id)
        if not protocols or (g.members and (protocol_type != g.protocol_type or not (
                g.candidate_protocols() & {name for name, _ in protocols}))):
            return Result((), join_error(ErrorCode.inconsistent_group_protocol, member_id))
        if group_instance_id is not None:
            known = g.static_member(group_instance_id)
            if known is not None and member_id == "":
                # KIP-345: a static member restarted; it takes the old member's place
                new_id = f"{group_instance_id}-{uuid.uuid4()}"
                if g.state == GroupState.STABLE and g.protocol_name in {name for name, _ in protocols}:
                    return self._static_member_back(g, known, new_id, protocols, may_skip_assignment)
                self._rename(g, known, new_id)
                member_id = new_id
            elif known is not None and member_id != known.member_id:
                return Result((), join_error(ErrorCode.fenced_instance_id, member_id))
            elif member_id == "":
                member_id = f"{group_instance_id}-{uuid.uuid4()}"
        elif member_id == "":
            member_id = f"{client_id}-{uuid.uuid4()}"
            if require_known_member_id:  # KIP-394: the client must come back with this id
                g.pending_members.add(member_id)
                new = member_id
                self.timer.schedule(_pending_key(group_id, new), session_timeout_ms,
                                    lambda: self._on_pending_timeout(group_id, new))
                return Result((), join_error(ErrorCode.member_id_required, member_id))
        elif member_id not in g.members and member_id not in g.pending_members:
            return Result((), join_error(ErrorCode.unknown_member_id, member_id))
        if member_id in g.pending_members:
            g.pending_members.discard(member_id)
            self.timer.cancel(_pending_key(group_id, member_id))
        member = g.members.get(member_id)
        if member is not None and member.protocols == protocols and (
                g.state == GroupState.COMPLETING_REBALANCE
                or (g.state == GroupState.STABLE and member_id != g.leader_id)):
            # as Kafka: a member that joins again with the same protocols (it lost the answer,
            # say) gets the current generation; only the leader rejoining a stable group, or a
            # member whose metadata changed, starts a rebalance
            self._heartbeat(g, member)
            return Result((), self._current_generation(g, member))
        if member is None:
            member = Member(member_id, group_instance_id, client_id, client_host, session_timeout_ms,
                            rebalance_timeout_ms, protocol_type, protocols)
            g.members[member_id] = member
            log.info("group %s: member %s (client %s) joined", group_id, member_id, client_id)
        else:
            member.protocols, member.session_timeout_ms = protocols, session_timeout_ms
            member.rebalance_timeout_ms = rebalance_timeout_ms
        self._heartbeat(g, member)
        g.protocol_type = protocol_type
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if member.join_future is not None and not member.join_future.done():
            member.join_future.set_result(join_error(ErrorCode.rebalance_in_progress, member_id))
        member.join_future = fut
        self._prepare_rebalance(g, f"member {member_id} joined")
        return Result(self._maybe_complete_join(g).records, fut)

    @staticmethod
    def _current_generation(g: Group, m: Member) -> dict[str, Any]:
        """JoinGroup's answer to ``m`` for the generation there is (the members for the leader)."""
        assert g.protocol_name is not None
        members = [{"member_id": x.member_id, "group_instance_id": x.group_instance_id,
                    "metadata": x.metadata_for(g.protocol_name)} for x in g.members.values()]
        return {"error_code": 0, "generation_id": g.generation_id, "protocol_type": g.protocol_type,
                "protocol_name": g.protocol_name, "leader": g.leader_id, "member_id": m.member_id,
                "members": members if m.member_id == g.leader_id else [], "skip_assignment": False}

    def _static_member_back(self, g: Group, known: Member, new_id: str, protocols: list[tuple[str, bytes]],
                            may_skip_assignment: bool) -> Result[JoinAnswer]:
        """A static member restarted into a stable group whose protocol it still offers: it takes
        its place under ``new_id`` without a rebalance, once that is stored (Kafka writes the
        group's metadata before answering; replaying it renames the member and fences the old
        id). A leader that understands KIP-814 (``may_skip_assignment``) is told it leads, with
        the members, and to skip the assignment; before that, every such member is told the old
        leader id, so that it never assigns in a stable group."""
        record = self._record(g, rename=(known, new_id, protocols))
        known.protocols = protocols
        log.info("group %s: static member %s is back as %s; no rebalance", g.group_id, known.group_instance_id, new_id)
        answer: dict[str, Any] = {"error_code": 0, "generation_id": g.generation_id, "protocol_type": g.protocol_type,
                  "protocol_name": g.protocol_name, "leader": g.leader_id, "member_id": new_id,
                  "members": [], "skip_assignment": False}
        if may_skip_assignment and g.leader_id == known.member_id:
            assert g.protocol_name is not None
            answer |= {"leader": new_id, "skip_assignment": True, "members": [
                {"member_id": new_id if x is known else x.member_id, "group_instance_id": x.group_instance_id,
                 "metadata": x.metadata_for(g.protocol_name)} for x in g.members.values()]}
        return Result((record,), answer)

    def _rename(self, g: Group, m: Member, new_id: str) -> None:
        """Give static member ``m`` a new member id; the old one is fenced from now on."""
        old_id = m.member_id
        for fut in (m.join_future, m.sync_future):
            if fut is not None and not fut.done():
                fut.set_result(join_error(ErrorCode.fenced_instance_id, old_id))
        m.join_future = m.sync_future = None
        self.timer.cancel(_heartbeat_key(g.group_id, old_id))
        g.members = {(new_id if k == old_id else k): v for k, v in g.members.items()}
        m.member_id = new_id
        if g.leader_id == old_id:
            g.leader_id = new_id
        self._heartbeat(g, m)

    def _prepare_rebalance(self, g: Group, reason: str) -> None:
        if g.state == GroupState.PREPARING_REBALANCE:
            return
        initial = g.state == GroupState.EMPTY
        g.initial_delay = initial
        for m in g.members.values():  # cut short a sync in progress
            if m.sync_future is not None and not m.sync_future.done():
                m.sync_future.set_result(error(ErrorCode.rebalance_in_progress))
        g.state = GroupState.PREPARING_REBALANCE
        log.info("group %s: preparing to rebalance (%s)", g.group_id, reason)
        timeout_ms = max((m.rebalance_timeout_ms for m in g.members.values()), default=0)
        self._set_rebalance_deadline(g, min(self.initial_rebalance_delay_ms, timeout_ms) if initial else timeout_ms)

    def _set_rebalance_deadline(self, g: Group, delay_ms: int) -> None:
        group_id = g.group_id
        self.timer.schedule(_join_key(group_id), delay_ms, lambda: self._on_rebalance_deadline(group_id))

    def _rebalance_deadline(self, g: Group) -> Result[None]:
        """The rebalance's deadline passed: the initial delay is over, or the members that did
        not rejoin within the rebalance timeout are dropped and the rebalance completes."""
        initial = g.initial_delay
        g.initial_delay = False
        if initial and not g.all_joined():
            # the initial delay is over; now wait as long as the rebalance timeout allows
            timeout_ms = max((m.rebalance_timeout_ms for m in g.members.values()), default=0)
            self._set_rebalance_deadline(g, timeout_ms)
            return NOTHING
        for m in [m for m in g.members.values() if m.join_future is None]:
            log.info("group %s: member %s did not rejoin in time; removing it", g.group_id, m.member_id)
            del g.members[m.member_id]
            self.timer.cancel(_heartbeat_key(g.group_id, m.member_id))
        for pending in g.pending_members:
            self.timer.cancel(_pending_key(g.group_id, pending))
        g.pending_members.clear()
        return self._complete_join(g)

    def _maybe_complete_join(self, g: Group) -> Result[None]:
        """Complete the rebalance once every member is back, unless the initial delay runs."""
        if g.state == GroupState.PREPARING_REBALANCE and g.all_joined() and not g.initial_delay:
            return self._complete_join(g)
        return NOTHING

    def _complete_join(self, g: Group) -> Result[None]:
        """The next generation: in memory while the leader assigns (as in Kafka); a group left
        with no members is stored empty."""
        self.timer.cancel(_join_key(g.group_id))
        if not g.members:
            return Result((self._empty_record(g),), None)
        g.generation_id += 1
        self.rebalances += 1
        g.protocol_name = g.select_protocol()
        if g.leader_id not in g.members:
            g.leader_id = next(iter(g.members))
        g.state = GroupState.COMPLETING_REBALANCE
        log.info("group %s: generation %d with %d members, protocol %s, leader %s", g.group_id,
                 g.generation_id, len(g.members), g.protocol_name, g.leader_id)
        for m in g.members.values():
            fut, m.join_future = m.join_future, None
            self._heartbeat(g, m)
            if fut is not None and not fut.done():
                fut.set_result(self._current_generation(g, m))
        return NOTHING

    # SyncGroup ----------------------------------------------------------------------------

    async def sync(self, *, group_id: str, generation_id: int, member_id: str,
                   assignments: Iterable[tuple[str, bytes]], group_instance_id: str | None = None) -> dict[str, Any]:
        answer = await self._run(
            group_id, lambda: self._sync(group_id, generation_id, member_id, assignments, group_instance_id),
            failed=lambda code: self._sync_failed(group_id, code))
        return await answer if isinstance(answer, asyncio.Future) else answer

    def _sync(self, group_id: str, generation_id: int, member_id: str, assignments: Iterable[tuple[str, bytes]],
              group_instance_id: str | None) -> Result[SyncAnswer]:
        """The leader's assignment is the group's record (stored before anyone learns it, as
        Kafka does; replaying it makes the group Stable and answers the members waiting)."""
        g = self.groups.get(group_id)
        if g is None:
            return Result((), error(ErrorCode.unknown_member_id))
        if (code := g.check_member(member_id, group_instance_id)) != ErrorCode.none:
            return Result((), error(code))
        if generation_id != g.generation_id:
            return Result((), error(ErrorCode.illegal_generation))
        if g.state == GroupState.PREPARING_REBALANCE:
            return Result((), error(ErrorCode.rebalance_in_progress))
        member = g.members[member_id]
        self._heartbeat(g, member)
        if g.state == GroupState.STABLE:
            return Result((), self._sync_result(g, member))
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        member.sync_future = fut
        if member_id != g.leader_id:
            return Result((), fut)
        return Result((self._record(g, assignments=dict(assignments)),), fut)

    def _sync_failed(self, group_id: str, code: ErrorCode) -> dict[str, Any]:
        """The assignment could not be stored: nobody gets an assignment that a restart would not
        know; every member waiting is told Kafka's error and the group rebalances."""
        g = self.groups[group_id]
        for m in g.members.values():
            if m.sync_future is not None and not m.sync_future.done():
                m.sync_future.set_result(error(code))
            m.sync_future = None
        self._prepare_rebalance(g, f"its assignment could not be stored ({code.name})")
        return error(code)

    @staticmethod
    def _sync_result(g: Group, m: Member) -> dict[str, Any]:
        return {"error_code": 0, "protocol_type": g.protocol_type, "protocol_name": g.protocol_name,
                "assignment": m.assignment}

    # Heartbeat, LeaveGroup ---------------------------------------------------------------------

    def heartbeat(self, *, group_id: str, generation_id: int, member_id: str,
                  group_instance_id: str | None = None) -> Result[ErrorCode]:
        """A heartbeat writes nothing (as in Kafka): it restarts the member's session timer."""
        g = self.groups.get(group_id)
        if g is None:
            return Result((), ErrorCode.unknown_member_id)
        if (code := g.check_member(member_id, group_instance_id)) != ErrorCode.none:
            return Result((), code)
        if generation_id != g.generation_id:  # Kafka checks the generation first
            return Result((), ErrorCode.illegal_generation)
        self._heartbeat(g, g.members[member_id])
        if g.state == GroupState.PREPARING_REBALANCE:
            return Result((), ErrorCode.rebalance_in_progress)
        return Result((), ErrorCode.none)

    async def leave(self, group_id: str, member_id: str, group_instance_id: str | None) -> ErrorCode:
        # the member is gone whether or not an emptied group's record could be stored
        return await self._run(group_id, lambda: self._leave(group_id, member_id, group_instance_id))

    def _leave(self, group_id: str, member_id: str, group_instance_id: str | None) -> Result[ErrorCode]:
        g = self.groups.get(group_id)
        if g is None:
            return Result((), ErrorCode.unknown_member_id)
        if group_instance_id is not None:
            known = g.static_member(group_instance_id)
            if known is None:
                return Result((), ErrorCode.unknown_member_id)
            if member_id not in ("", known.member_id):
                return Result((), ErrorCode.fenced_instance_id)
            member_id = known.member_id
        if member_id not in g.members:
            return Result((), ErrorCode.unknown_member_id)
        return Result(self._remove(g, g.members[member_id], "left the group").records, ErrorCode.none)

    def _remove(self, g: Group, m: Member, why: str) -> Result[None]:
        """Remove a member (in memory, as Kafka does); the records to store: a group left with
        no members is stored empty, in its next generation."""
        del g.members[m.member_id]
        self.timer.cancel(_heartbeat_key(g.group_id, m.member_id))
        log.info("group %s: member %s %s", g.group_id, m.member_id, why)
        answer_waiting(m, ErrorCode.unknown_member_id)
        if g.members:
            self._prepare_rebalance(g, f"member {m.member_id} {why}")
            return self._maybe_complete_join(g)
        self.timer.cancel(_join_key(g.group_id))
        return Result((self._empty_record(g),), None)

    # offsets -------------------------------------------------------------------------------------

    def check_commit(self, group_id: str, generation_id: int, member_id: str,
                     group_instance_id: str | None = None) -> ErrorCode:
        """May this member commit offsets for this group now (Kafka's rules)? A commit counts
        as a heartbeat."""
        g = self.groups.get(group_id)
        if generation_id < 0:  # a commit outside a group (librdkafka's after assign(), member id or not)
            if g is not None and g.members:
                return ErrorCode.unknown_member_id  # a standalone commit into a live group
            return ErrorCode.none
        if g is None:
            return ErrorCode.unknown_member_id
        if (code := g.check_member(member_id, group_instance_id)) != ErrorCode.none:
            return code
        if generation_id != g.generation_id:
            return ErrorCode.illegal_generation
        # a member of the current generation may commit while the group prepares to rebalance
        # (what it commits as it gives its partitions up); not while the leader assigns
        if g.state == GroupState.COMPLETING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        self._heartbeat(g, g.members[member_id])
        return ErrorCode.none


def _heartbeat_key(group_id: str, member_id: str) -> str:
    return f"heartbeat-{group_id}-{member_id}"


def _pending_key(group_id: str, member_id: str) -> str:
    return f"pending-member-{group_id}-{member_id}"


def _join_key(group_id: str) -> str:
    return f"join-{group_id}"
