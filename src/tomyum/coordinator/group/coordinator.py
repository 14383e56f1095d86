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

Group metadata (generation, protocol, leader, members and their assignments) is stored in
``__consumer_offsets`` in Kafka's layout when a generation becomes stable (before SyncGroup
answers) and when a group empties, and restored on start: a stable group comes back stable,
its members given a fresh session timeout to heartbeat in, so they carry on without a
rebalance. Committed offsets live there too (see offsets.py).

Time is the injected :class:`~tomyum.clock.Clock`'s: a member's session, the rebalance timeout
and the initial delay are deadlines on its monotonic clock, and :meth:`GroupCoordinator.tick`
expires what is due. The broker calls ``tick`` from a timer (every 250 ms, and at each
rebalance deadline); tests move a fake clock and call it themselves.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tomyum.clock import SYSTEM_CLOCK, Clock
from tomyum.coordinator.group.offsets_log import GroupSnapshot, MemberSnapshot
from tomyum.errors import ErrorCode, TomyumError

log = logging.getLogger(__name__)


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
    #: when it was last heard from, on the coordinator's monotonic clock
    last_heartbeat: float = 0.0
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
    #: KIP-394: members told MEMBER_ID_REQUIRED, by the time they must be back by (their
    #: session timeout; a client that never comes back does not hold the rebalance open)
    pending_members: dict[str, float] = field(default_factory=dict)
    #: when the rebalance under way stops waiting for members (monotonic clock), if one is
    rebalance_deadline: float | None = None
    #: the event loop's wake-up at that deadline (the deadline decides, not the wake-up)
    rebalance_timer: asyncio.TimerHandle | None = None
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


class GroupCoordinator:
    """All groups of this broker. Methods are called from the event loop."""

    def __init__(self, *, initial_rebalance_delay_ms: int, min_session_timeout_ms: int,
                 max_session_timeout_ms: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.groups: dict[str, Group] = {}
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self._expiry_task: asyncio.Task[None] | None = None
        #: stores a group's metadata durably (None: forget the group); set by the broker
        self.persist: Callable[[str, GroupSnapshot | None], Awaitable[None]] | None = None
        self._pending_writes: set[asyncio.Task[ErrorCode]] = set()
        #: rebalances completed since start (a new generation with members; Kafka's
        #: group-coordinator-metrics rebalance count)
        self.rebalances = 0

    # metadata ---------------------------------------------------------------------------------

    def snapshot(self, g: Group) -> GroupSnapshot:
        protocol = g.protocol_name
        return GroupSnapshot(
            protocol_type=g.protocol_type or "", generation=g.generation_id, protocol=protocol,
            leader=g.leader_id, timestamp=self.clock.time_ms(),
            members=tuple(MemberSnapshot(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                                         m.rebalance_timeout_ms, m.session_timeout_ms,
                                         m.metadata_for(protocol) if protocol else b"", m.assignment)
                          for m in g.members.values()))

    def restore(self, snapshots: Mapping[str, GroupSnapshot]) -> None:
        """Rebuild groups from stored metadata: a stable group comes back stable, its members
        given a fresh session timeout to heartbeat in."""
        now = self.clock.monotonic()
        for group_id, snap in snapshots.items():
            g = self.group(group_id)
            g.generation_id, g.protocol_type = snap.generation, snap.protocol_type or None
            g.protocol_name, g.leader_id = snap.protocol, snap.leader
            for ms in snap.members:
                g.members[ms.member_id] = Member(
                    ms.member_id, ms.group_instance_id, ms.client_id, ms.client_host, ms.session_timeout_ms,
                    ms.rebalance_timeout_ms, snap.protocol_type, [(snap.protocol or "", ms.subscription)],
                    assignment=ms.assignment, last_heartbeat=now)
            g.state = GroupState.STABLE if g.members else GroupState.EMPTY
            if not g.members:
                g.protocol_name = g.leader_id = g.protocol_type = None

    async def _store(self, g: Group, forget: bool = False) -> ErrorCode:
        """Store the group's metadata; the error a member is told if it could not be stored
        (Kafka's mapping of storeGroup's errors), NONE if it was."""
        if self.persist is None:
            return ErrorCode.none
        try:
            await self.persist(g.group_id, None if forget else self.snapshot(g))
        except TomyumError as e:
            log.error("group %s: cannot store its metadata: %s", g.group_id, e)
            code = getattr(e, "code", ErrorCode.unknown_server_error)
            return STORE_ERRORS.get(code, ErrorCode.unknown_server_error)
        return ErrorCode.none

    def _store_later(self, g: Group) -> None:
        task = asyncio.ensure_future(self._store(g))
        self._pending_writes.add(task)
        task.add_done_callback(self._pending_writes.discard)

    async def forget(self, group_id: str) -> None:
        """DeleteGroups: drop an empty group and tombstone its metadata."""
        g = self.groups.pop(group_id, None)
        if g is not None:
            await self._store(g, forget=True)

    def start(self) -> None:
        self._expiry_task = asyncio.create_task(self._expire_sessions(), name="group-sessions")

    async def stop(self) -> None:
        if self._expiry_task:
            self._expiry_task.cancel()
        if self._pending_writes:
            await asyncio.gather(*self._pending_writes, return_exceptions=True)
        # as Kafka answers when it unloads a group: the clients look for the coordinator again
        for g in self.groups.values():
            self._clear_rebalance_deadline(g)
            for m in g.members.values():
                if m.join_future and not m.join_future.done():
                    m.join_future.set_result(_join_error(ErrorCode.not_coordinator, m.member_id))
                if m.sync_future and not m.sync_future.done():
                    m.sync_future.set_result(_error(ErrorCode.not_coordinator))

    def group(self, group_id: str) -> Group:
        g = self.groups.get(group_id)
        if g is None:
            g = self.groups[group_id] = Group(group_id)
        return g

    # JoinGroup --------------------------------------------------------------------------

    async def join(self, *, group_id: str, member_id: str, group_instance_id: str | None, client_id: str,
                   client_host: str, session_timeout_ms: int, rebalance_timeout_ms: int,
                   protocol_type: str, protocols: list[tuple[str, bytes]],
                   require_known_member_id: bool) -> dict[str, Any]:
        if not group_id:
            return _join_error(ErrorCode.invalid_group_id, member_id)
        if not self.min_session_timeout_ms <= session_timeout_ms <= self.max_session_timeout_ms:
            return _join_error(ErrorCode.invalid_session_timeout, member_id)
        g = self.group(group_id)
        if not protocols or (g.members and (protocol_type != g.protocol_type or not (
                g.candidate_protocols() & {name for name, _ in protocols}))):
            return _join_error(ErrorCode.inconsistent_group_protocol, member_id)
        if group_instance_id is not None:
            known = g.static_member(group_instance_id)
            if known is not None and member_id == "":
                # KIP-345: a static member restarted; it takes the old member's place
                leader = g.leader_id
                member_id = self._replace_static_member(g, known, f"{group_instance_id}-{uuid.uuid4()}")
                if g.state == GroupState.STABLE and g.protocol_name in {name for name, _ in protocols}:
                    known.protocols = protocols
                    known.last_heartbeat = self.clock.monotonic()
                    log.info("group %s: static member %s is back as %s; no rebalance", group_id,
                             group_instance_id, member_id)
                    self._store_later(g)
                    # the old leader id, so that the new member never assigns in a stable group
                    return {"error_code": 0, "generation_id": g.generation_id, "protocol_type": g.protocol_type,
                            "protocol_name": g.protocol_name, "leader": leader, "member_id": member_id,
                            "members": [], "skip_assignment": False}
            elif known is not None and member_id != known.member_id:
                return _join_error(ErrorCode.fenced_instance_id, member_id)
            elif member_id == "":
                member_id = f"{group_instance_id}-{uuid.uuid4()}"
        elif member_id == "":
            member_id = f"{client_id}-{uuid.uuid4()}"
            if require_known_member_id:  # KIP-394: the client must come back with this id
                g.pending_members[member_id] = self.clock.monotonic() + session_timeout_ms / 1000
                return _join_error(ErrorCode.member_id_required, member_id)
        elif member_id not in g.members and member_id not in g.pending_members:
            return _join_error(ErrorCode.unknown_member_id, member_id)
        g.pending_members.pop(member_id, None)
        member = g.members.get(member_id)
        if member is not None and member.protocols == protocols and (
                g.state == GroupState.COMPLETING_REBALANCE
                or (g.state == GroupState.STABLE and member_id != g.leader_id)):
            # as Kafka: a member that joins again with the same protocols (it lost the answer,
            # say) gets the current generation; only the leader rejoining a stable group, or a
            # member whose metadata changed, starts a rebalance
            member.last_heartbeat = self.clock.monotonic()
            return self._current_generation(g, member)
        if member is None:
            member = Member(member_id, group_instance_id, client_id, client_host, session_timeout_ms,
                            rebalance_timeout_ms, protocol_type, protocols)
            g.members[member_id] = member
            log.info("group %s: member %s (client %s) joined", group_id, member_id, client_id)
        else:
            member.protocols, member.session_timeout_ms = protocols, session_timeout_ms
            member.rebalance_timeout_ms = rebalance_timeout_ms
        member.last_heartbeat = self.clock.monotonic()
        g.protocol_type = protocol_type
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if member.join_future is not None and not member.join_future.done():
            member.join_future.set_result(_join_error(ErrorCode.rebalance_in_progress, member_id))
        member.join_future = fut
        self._prepare_rebalance(g, f"member {member_id} joined")
        self._maybe_complete_join(g)
        return await fut

    @staticmethod
    def _current_generation(g: Group, m: Member) -> dict[str, Any]:
        assert g.protocol_name is not None
        members = [{"member_id": x.member_id, "group_instance_id": x.group_instance_id,
                    "metadata": x.metadata_for(g.protocol_name)} for x in g.members.values()]
        return {"error_code": 0, "generation_id": g.generation_id, "protocol_type": g.protocol_type,
                "protocol_name": g.protocol_name, "leader": g.leader_id, "member_id": m.member_id,
                "members": members if m.member_id == g.leader_id else [], "skip_assignment": False}

    @staticmethod
    def _replace_static_member(g: Group, m: Member, new_id: str) -> str:
        """Give static member ``m`` a new member id; the old one is fenced from now on."""
        old_id = m.member_id
        for fut in (m.join_future, m.sync_future):
            if fut is not None and not fut.done():
                fut.set_result(_join_error(ErrorCode.fenced_instance_id, old_id))
        m.join_future = m.sync_future = None
        g.members = {(new_id if k == old_id else k): v for k, v in g.members.items()}
        m.member_id = new_id
        if g.leader_id == old_id:
            g.leader_id = new_id
        return new_id

    def _prepare_rebalance(self, g: Group, reason: str) -> None:
        if g.state == GroupState.PREPARING_REBALANCE:
            return
        initial = g.state == GroupState.EMPTY
        g.initial_delay = initial
        for m in g.members.values():  # cut short a sync in progress
            if m.sync_future is not None and not m.sync_future.done():
                m.sync_future.set_result(_error(ErrorCode.rebalance_in_progress))
        g.state = GroupState.PREPARING_REBALANCE
        log.info("group %s: preparing to rebalance (%s)", g.group_id, reason)
        timeout_ms = max((m.rebalance_timeout_ms for m in g.members.values()), default=0)
        self._set_rebalance_deadline(g, min(self.initial_rebalance_delay_ms, timeout_ms) if initial else timeout_ms)

    def _set_rebalance_deadline(self, g: Group, delay_ms: int) -> None:
        self._clear_rebalance_deadline(g)
        g.rebalance_deadline = self.clock.monotonic() + delay_ms / 1000
        g.rebalance_timer = asyncio.get_running_loop().call_later(delay_ms / 1000, self._wake_at_deadline, g)

    def _clear_rebalance_deadline(self, g: Group) -> None:
        g.rebalance_deadline = None
        if g.rebalance_timer:
            g.rebalance_timer.cancel()
            g.rebalance_timer = None

    def _wake_at_deadline(self, g: Group) -> None:
        """Run the deadline check when the deadline is due (the event loop's timer only wakes
        the check; a wake-up a little early sets another)."""
        g.rebalance_timer = None
        if g.rebalance_deadline is None:
            return
        left = g.rebalance_deadline - self.clock.monotonic()
        if left > 0:
            g.rebalance_timer = asyncio.get_running_loop().call_later(left, self._wake_at_deadline, g)
        else:
            self._rebalance_deadline(g)

    def _rebalance_deadline(self, g: Group) -> None:
        """The rebalance's deadline passed: the initial delay is over, or the members that did
        not rejoin within the rebalance timeout are dropped and the rebalance completes."""
        initial = g.initial_delay
        self._clear_rebalance_deadline(g)
        if g.state != GroupState.PREPARING_REBALANCE:
            return
        g.initial_delay = False
        if initial and not g.all_joined():
            # the initial delay is over; now wait as long as the rebalance timeout allows
            timeout_ms = max((m.rebalance_timeout_ms for m in g.members.values()), default=0)
            self._set_rebalance_deadline(g, timeout_ms)
            return
        for m in [m for m in g.members.values() if m.join_future is None]:
            log.info("group %s: member %s did not rejoin in time; removing it", g.group_id, m.member_id)
            del g.members[m.member_id]
        g.pending_members.clear()
        self._complete_join(g)

    def _maybe_complete_join(self, g: Group) -> None:
        """Complete the rebalance once every member is back, unless the initial delay runs."""
        if g.state == GroupState.PREPARING_REBALANCE and g.all_joined() and not g.initial_delay:
            self._complete_join(g)

    def _complete_join(self, g: Group) -> None:
        self._clear_rebalance_deadline(g)
        g.generation_id += 1
        if not g.members:
            g.state, g.protocol_name, g.leader_id, g.protocol_type = GroupState.EMPTY, None, None, None
            return
        self.rebalances += 1
        g.protocol_name = g.select_protocol()
        if g.leader_id not in g.members:
            g.leader_id = next(iter(g.members))
        g.state = GroupState.COMPLETING_REBALANCE
        log.info("group %s: generation %d with %d members, protocol %s, leader %s", g.group_id,
                 g.generation_id, len(g.members), g.protocol_name, g.leader_id)
        for m in g.members.values():
            fut, m.join_future = m.join_future, None
            m.last_heartbeat = self.clock.monotonic()
            if fut is not None and not fut.done():
                fut.set_result(self._current_generation(g, m))

    # SyncGroup ----------------------------------------------------------------------------

    async def sync(self, *, group_id: str, generation_id: int, member_id: str,
                   assignments: Iterable[tuple[str, bytes]], group_instance_id: str | None = None) -> dict[str, Any]:
        g = self.groups.get(group_id)
        if g is None:
            return _error(ErrorCode.unknown_member_id)
        if (code := g.check_member(member_id, group_instance_id)) != ErrorCode.none:
            return _error(code)
        if generation_id != g.generation_id:
            return _error(ErrorCode.illegal_generation)
        if g.state == GroupState.PREPARING_REBALANCE:
            return _error(ErrorCode.rebalance_in_progress)
        member = g.members[member_id]
        member.last_heartbeat = self.clock.monotonic()
        if g.state == GroupState.STABLE:
            return self._sync_result(g, member)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        member.sync_future = fut
        if member_id == g.leader_id:
            given = dict(assignments)
            for m in g.members.values():
                m.assignment = given.get(m.member_id, b"")
            g.state = GroupState.STABLE
            code = await self._store(g)  # as Kafka does, before the members learn their assignment
            if code != ErrorCode.none:  # nobody gets an assignment that a restart would not know
                g.state = GroupState.COMPLETING_REBALANCE
                for m in g.members.values():
                    m.assignment = b""
                    if m.sync_future is not None and not m.sync_future.done():
                        m.sync_future.set_result(_error(code))
                    m.sync_future = None
                self._prepare_rebalance(g, f"its assignment could not be stored ({code.name})")
                return await fut
            log.info("group %s: generation %d is stable", g.group_id, g.generation_id)
            for m in g.members.values():
                if m.sync_future is not None and not m.sync_future.done():
                    m.sync_future.set_result(self._sync_result(g, m))
                m.sync_future = None
        return await fut

    @staticmethod
    def _sync_result(g: Group, m: Member) -> dict[str, Any]:
        return {"error_code": 0, "protocol_type": g.protocol_type, "protocol_name": g.protocol_name,
                "assignment": m.assignment}

    # Heartbeat, LeaveGroup ---------------------------------------------------------------------

    def heartbeat(self, *, group_id: str, generation_id: int, member_id: str,
                  group_instance_id: str | None = None) -> ErrorCode:
        g = self.groups.get(group_id)
        if g is None:
            return ErrorCode.unknown_member_id
        if (code := g.check_member(member_id, group_instance_id)) != ErrorCode.none:
            return code
        if generation_id != g.generation_id:  # Kafka checks the generation first
            return ErrorCode.illegal_generation
        g.members[member_id].last_heartbeat = self.clock.monotonic()
        if g.state == GroupState.PREPARING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    def leave(self, group_id: str, member_id: str, group_instance_id: str | None) -> ErrorCode:
        g = self.groups.get(group_id)
        if g is None:
            return ErrorCode.unknown_member_id
        if group_instance_id is not None:
            known = g.static_member(group_instance_id)
            if known is None:
                return ErrorCode.unknown_member_id
            if member_id not in ("", known.member_id):
                return ErrorCode.fenced_instance_id
            member_id = known.member_id
        if member_id not in g.members:
            return ErrorCode.unknown_member_id
        self._remove(g, g.members[member_id], "left the group")
        return ErrorCode.none

    def _remove(self, g: Group, m: Member, why: str) -> None:
        del g.members[m.member_id]
        log.info("group %s: member %s %s", g.group_id, m.member_id, why)
        for fut in (m.join_future, m.sync_future):
            if fut is not None and not fut.done():
                fut.set_result(_join_error(ErrorCode.unknown_member_id, m.member_id))
        if g.members:
            self._prepare_rebalance(g, f"member {m.member_id} {why}")
            self._maybe_complete_join(g)
        else:
            self._clear_rebalance_deadline(g)
            g.state, g.leader_id, g.protocol_name = GroupState.EMPTY, None, None
            g.generation_id += 1
            self._store_later(g)

    async def _expire_sessions(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self.tick()

    def tick(self) -> None:
        """Expire what is due on the clock: rebalances past their deadline (initial delay or
        rebalance timeout), then members past their session timeout (a member waiting in
        JoinGroup or SyncGroup is not timed out by its session)."""
        now = self.clock.monotonic()
        for g in list(self.groups.values()):
            expired = [pending for pending, deadline in g.pending_members.items() if now >= deadline]
            if expired:
                for pending in expired:
                    del g.pending_members[pending]
                log.info("group %s: %d member(s) told MEMBER_ID_REQUIRED never came back within their session "
                         "timeout", g.group_id, len(expired))
                self._maybe_complete_join(g)
            if g.rebalance_deadline is not None and now >= g.rebalance_deadline:
                self._rebalance_deadline(g)
            for m in list(g.members.values()):
                waiting = m.join_future is not None or m.sync_future is not None
                if not waiting and m.member_id in g.members and now - m.last_heartbeat > m.session_timeout_ms / 1000:
                    self._remove(g, m, f"missed its session timeout ({m.session_timeout_ms} ms)")

    # offsets -------------------------------------------------------------------------------------

    def check_commit(self, group_id: str, generation_id: int, member_id: str,
                     group_instance_id: str | None = None) -> ErrorCode:
        """May this member commit offsets for this group now (Kafka's rules)?"""
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
        g.members[member_id].last_heartbeat = self.clock.monotonic()
        return ErrorCode.none


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


def _error(code: ErrorCode) -> dict[str, Any]:
    return {"error_code": code, "protocol_type": None, "protocol_name": None, "assignment": b""}


def _join_error(code: ErrorCode, member_id: str) -> dict[str, Any]:
    return {"error_code": code, "generation_id": -1, "protocol_type": None, "protocol_name": None,
            "leader": "", "member_id": member_id, "members": [], "skip_assignment": False}

