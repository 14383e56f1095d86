"""The I/O around the consumer group state machine: it replays each operation's records and
keeps the timers — a member's session (``group.consumer.session.timeout.ms``, restarted by
each heartbeat) and its rebalance timeout while it has partitions to revoke. Either expiring
fences the member, as Kafka's coordinator does. Called from the event loop only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from tomyum.coordinator.group.consumer.coordinator import ConsumerGroups, HeartbeatRequest, Result, Topics
from tomyum.coordinator.group.consumer.records import MemberRemovedRecord, MemberState
from tomyum.errors import ErrorCode

log = logging.getLogger(__name__)

Key = tuple[str, str]  # group id, member id


class ConsumerGroupRuntime:
    def __init__(self, *, heartbeat_interval_ms: int, session_timeout_ms: int, topics: Callable[[], Topics]) -> None:
        self.state = ConsumerGroups(heartbeat_interval_ms=heartbeat_interval_ms)
        self.session_timeout_ms = session_timeout_ms
        self.topics = topics
        self._sessions: dict[Key, asyncio.TimerHandle] = {}
        self._revocations: dict[Key, asyncio.TimerHandle] = {}

    def __contains__(self, group_id: str) -> bool:
        return group_id in self.state.groups

    def heartbeat(self, req: HeartbeatRequest) -> dict[str, object]:
        result = self.state.heartbeat(req, self.topics())
        self.apply(result)
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

    def apply(self, result: Result) -> None:
        for record in result.records:
            self.state.replay(record)
            if isinstance(record, MemberRemovedRecord):
                for timers in (self._sessions, self._revocations):
                    if (timer := timers.pop((record.group_id, record.member_id), None)) is not None:
                        timer.cancel()
                log.info("group %s: member %s removed", record.group_id, record.member_id)

    def _arm(self, timers: dict[Key, asyncio.TimerHandle], key: Key, delay_ms: int, why: str) -> None:
        if (old := timers.pop(key, None)) is not None:
            old.cancel()
        timers[key] = asyncio.get_running_loop().call_later(delay_ms / 1000, self._expire, timers, key, why)

    def _expire(self, timers: dict[Key, asyncio.TimerHandle], key: Key, why: str) -> None:
        timers.pop(key, None)
        log.info("group %s: member %s %s", key[0], key[1], why)
        self.apply(self.state.remove_member(*key))

    def stop(self) -> None:
        for timers in (self._sessions, self._revocations):
            for timer in timers.values():
                timer.cancel()
            timers.clear()
