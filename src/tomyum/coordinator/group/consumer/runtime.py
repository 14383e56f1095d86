"""The I/O around the consumer group state machine: it stores each operation's records in
``__consumer_offsets`` (durably, before answering), replays them into the groups, and keeps
the timers — a member's session (``group.consumer.session.timeout.ms``, restarted by each
heartbeat) and its rebalance timeout while it has partitions to revoke. Either expiring
fences the member, as Kafka's coordinator does. Operations on one group run one at a time.

On start the groups are rebuilt from the records ``__consumer_offsets`` kept (the latest value
of each key, replayed kind by kind), and every restored member gets a fresh session: one that
does not come back is fenced when it runs out, one that does carries on with its epoch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from tomyum.coordinator.group.consumer.coordinator import ConsumerGroups, HeartbeatRequest, Result, Topics
from tomyum.coordinator.group.consumer.log import encode
from tomyum.coordinator.group.consumer.records import MemberRemovedRecord, MemberState, Record
from tomyum.errors import ErrorCode, KafkaError

log = logging.getLogger(__name__)

Key = tuple[str, str]  # group id, member id
Persist = Callable[[str, list[tuple[bytes, bytes | None]]], Awaitable[None]]


async def _not_persisted(group_id: str, records: list[tuple[bytes, bytes | None]]) -> None:
    return None


class ConsumerGroupRuntime:
    def __init__(self, *, heartbeat_interval_ms: int, session_timeout_ms: int, topics: Callable[[], Topics],
                 persist: Persist = _not_persisted) -> None:
        self.state = ConsumerGroups(heartbeat_interval_ms=heartbeat_interval_ms)
        self.session_timeout_ms = session_timeout_ms
        self.topics = topics
        self.persist = persist
        self._sessions: dict[Key, asyncio.TimerHandle] = {}
        self._revocations: dict[Key, asyncio.TimerHandle] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __contains__(self, group_id: str) -> bool:
        return group_id in self.state.groups

    def restore(self, records: Iterable[Record]) -> None:
        """Replay stored records (on start) and give every member a session to come back in."""
        for record in records:
            try:
                self.state.replay(record)
            except (KeyError, ValueError, IndexError, TypeError) as e:  # a record out of place: skipped
                log.warning("skipping a consumer group record that does not fit the groups replayed so far "
                            "(%s): %s", type(record).__name__, e or type(e).__name__)
        self.state.rebalances = 0  # counted from the start, as the classic coordinator's
        for group_id, group in self.state.groups.items():
            for member_id in group.members:
                self._arm(self._sessions, (group_id, member_id), self.session_timeout_ms,
                          "did not come back after the restart within its session timeout")
        if self.state.groups:
            log.info("restored %d consumer groups (%d members) from __consumer_offsets", len(self.state.groups),
                     sum(len(g.members) for g in self.state.groups.values()))

    def _lock(self, group_id: str) -> asyncio.Lock:
        return self._locks.setdefault(group_id, asyncio.Lock())

    async def heartbeat(self, req: HeartbeatRequest) -> dict[str, object]:
        async with self._lock(req.group_id):
            result = self.state.heartbeat(req, self.topics())
            try:
                await self.apply(result)
            except KafkaError as e:
                return {**result.response, "error_code": ErrorCode.coordinator_not_available,
                        "error_message": f"cannot store the group's new state: {e}"}
            response = result.response
            if response["error_code"] == ErrorCode.none and response["member_epoch"] != -1:
                key = (req.group_id, str(response["member_id"]))
                self._arm(self._sessions, key, self.session_timeout_ms, "missed its session timeout")
                member = self.state.groups[req.group_id].members.get(key[1])
                if member is not None and member.state == MemberState.UNREVOKED_PARTITIONS:
                    if key not in self._revocations:
                        self._arm(self._revocations, key, member.metadata.rebalance_timeout_ms,
                                  "did not revoke its partitions within its rebalance timeout")
                elif key in self._revocations:
                    self._revocations.pop(key).cancel()
            return response

    async def apply(self, result: Result) -> None:
        """Store the result's records durably, then replay them."""
        if not result.records:
            return
        group_id = result.records[0].group_id
        await self.persist(group_id, [kv for record in result.records for kv in encode(record)])
        for record in result.records:
            self.state.replay(record)
            if isinstance(record, MemberRemovedRecord):
                for timers in (self._sessions, self._revocations):
                    if (timer := timers.pop((record.group_id, record.member_id), None)) is not None:
                        timer.cancel()
                log.info("group %s: member %s removed", record.group_id, record.member_id)

    async def delete(self, group_id: str) -> None:
        async with self._lock(group_id):
            await self.apply(self.state.delete(group_id))

    async def convert_if_empty(self, group_id: str) -> bool:
        """JoinGroup (classic protocol) for ``group_id``: an empty consumer group is deleted,
        durably, so that a classic group can take its id (as Kafka converts it); False if it
        has members (Kafka migrates them online, tomyum does not). True if there is no
        consumer group of that id (any more)."""
        async with self._lock(group_id):
            group = self.state.groups.get(group_id)
            if group is None:
                return True
            if group.members:
                return False
            await self.apply(self.state.delete(group_id))
            log.info("group %s: empty consumer group converted to a classic group", group_id)
            return True

    def _arm(self, timers: dict[Key, asyncio.TimerHandle], key: Key, delay_ms: int, why: str) -> None:
        if (old := timers.pop(key, None)) is not None:
            old.cancel()
        timers[key] = asyncio.get_running_loop().call_later(delay_ms / 1000, self._expire, timers, key, why)

    def _expire(self, timers: dict[Key, asyncio.TimerHandle], key: Key, why: str) -> None:
        timers.pop(key, None)
        log.info("group %s: member %s %s", key[0], key[1], why)
        task = asyncio.get_running_loop().create_task(self._fence(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fence(self, key: Key) -> None:
        async with self._lock(key[0]):
            try:
                await self.apply(self.state.remove_member(*key))
            except KafkaError as e:
                log.error("group %s: cannot store the removal of member %s: %s", key[0], key[1], e)

    def stop(self) -> None:
        for timers in (self._sessions, self._revocations):
            for timer in timers.values():
                timer.cancel()
            timers.clear()
        for task in self._tasks:
            task.cancel()
