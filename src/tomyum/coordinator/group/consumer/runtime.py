"""The I/O around the consumer group state machine: it hands each operation's records to the
coordinator runtime's write path of ``__consumer_offsets`` (append → durable → replay into the
groups, before answering), and keeps the timers — a member's session (``group.consumer.session.timeout.ms``, restarted by each
heartbeat) and its rebalance timeout while it has partitions to revoke. Either expiring
fences the member, as Kafka's coordinator does. The timers are the coordinator timers
(coordinator/timer.py), on the injected clock. Operations on one group run one at a time.

On start the runtime's loader replays the records ``__consumer_offsets`` kept into the groups
(the same replay), and :meth:`ConsumerGroupRuntime.restore` gives every restored member a fresh
session: one that does not come back is fenced when it runs out, one that does carries on with
its epoch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from tomyum.coordinator.group.consumer.coordinator import ConsumerGroups, HeartbeatRequest, Result, Topics
from tomyum.coordinator.group.consumer.log import encode
from tomyum.coordinator.group.consumer.records import MemberRemovedRecord, MemberState
from tomyum.coordinator.timer import CoordinatorTimer
from tomyum.errors import ErrorCode, KafkaError

log = logging.getLogger(__name__)

Key = tuple[str, str]  # group id, member id
#: the coordinator runtime's write path: append the records to the group's partition, wait until
#: they are durable, replay them (into :attr:`ConsumerGroupRuntime.state`, through the shard)
Write = Callable[[str, Sequence[tuple[bytes, bytes | None]]], Awaitable[None]]


class ConsumerGroupRuntime:
    def __init__(self, *, heartbeat_interval_ms: int, session_timeout_ms: int, topics: Callable[[], Topics],
                 timer: CoordinatorTimer, write: Write) -> None:
        """``write`` must replay what it stores into :attr:`state` (the shard of
        ``__consumer_offsets`` does, once its ``consumer`` is this state)."""
        self.state = ConsumerGroups(heartbeat_interval_ms=heartbeat_interval_ms)
        self.session_timeout_ms = session_timeout_ms
        self.topics = topics
        self.write = write
        self.timer = timer
        self._locks: dict[str, asyncio.Lock] = {}

    def __contains__(self, group_id: str) -> bool:
        return group_id in self.state.groups

    def restore(self) -> None:
        """Give every member the loader restored a session to come back in (on start)."""
        self.state.rebalances = 0  # counted from the start, as the classic coordinator's
        for group_id, group in self.state.groups.items():
            for member_id in group.members:
                self._arm(SESSION, (group_id, member_id), self.session_timeout_ms,
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
                self._arm(SESSION, key, self.session_timeout_ms, "missed its session timeout")
                member = self.state.groups[req.group_id].members.get(key[1])
                if member is not None and member.state == MemberState.UNREVOKED_PARTITIONS:
                    if not self.timer.is_scheduled(_timer_key(REVOCATION, key)):
                        self._arm(REVOCATION, key, member.metadata.rebalance_timeout_ms,
                                  "did not revoke its partitions within its rebalance timeout")
                else:
                    self.timer.cancel(_timer_key(REVOCATION, key))
            return response

    async def apply(self, result: Result, also: Sequence[tuple[bytes, bytes | None]] = ()) -> None:
        """Store the result's records (after ``also``, in one batch) through the write path
        (which replays them), then stop the timers of the members they removed."""
        if not result.records:
            return
        group_id = result.records[0].group_id
        await self.write(group_id, [*also, *(kv for record in result.records for kv in encode(record))])
        for record in result.records:
            if isinstance(record, MemberRemovedRecord):
                for kind in (SESSION, REVOCATION):
                    self.timer.cancel(_timer_key(kind, (record.group_id, record.member_id)))
                log.info("group %s: member %s removed", record.group_id, record.member_id)

    async def delete(self, group_id: str, offsets: Sequence[tuple[bytes, bytes | None]] = ()) -> None:
        """DeleteGroups of an empty consumer group: its records' tombstones and ``offsets`` (the
        tombstones of its committed offsets) in one batch, as Kafka deletes a group."""
        async with self._lock(group_id):
            await self.apply(self.state.delete(group_id), also=offsets)

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

    def _arm(self, kind: str, key: Key, delay_ms: int, why: str) -> None:
        self.timer.schedule(_timer_key(kind, key), delay_ms, lambda: self._fence(key, why))

    async def _fence(self, key: Key, why: str) -> None:
        log.info("group %s: member %s %s", key[0], key[1], why)
        async with self._lock(key[0]):
            try:
                await self.apply(self.state.remove_member(*key))
            except KafkaError as e:
                log.error("group %s: cannot store the removal of member %s: %s", key[0], key[1], e)


#: the kinds of timer of a member (Kafka's names)
SESSION, REVOCATION = "session-timeout", "rebalance-timeout"


def _timer_key(kind: str, key: Key) -> str:
    return f"{kind}-{key[0]}-{key[1]}"
