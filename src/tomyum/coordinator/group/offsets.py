"""Committed offsets and group metadata: in memory for reads, appended durably to
``__consumer_offsets`` for restart, and rebuilt on start by replaying that topic.

State changes only in :meth:`OffsetStore.replay`, of records made durable by the coordinator
runtime's write path or read by its loader (coordinator/runtime.py).

Offsets committed inside a transaction (TxnOffsetCommit) are written as a transactional batch
of the producer and stay pending — invisible to OffsetFetch, which answers
UNSTABLE_OFFSET_COMMIT to those who require stable offsets — until the transaction's marker
reaches the partition: a commit marker makes them the group's offsets, an abort drops them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from tomyum.clock import SYSTEM_CLOCK, Clock
from tomyum.coordinator.group.consumer import log as consumer_log
from tomyum.coordinator.group.consumer.records import Record
from tomyum.coordinator.runtime import CoordinatorRuntime, KeyValue
from tomyum.coordinator.topics import TopicDirectory
from tomyum.storage.engine import LogStore, TopicPartition
from tomyum.coordinator.group.offsets_log import (
    OFFSETS_TOPIC,
    CommittedOffset,
    GroupSnapshot,
    offset_key,
    offset_value,
    parse_group_key,
    parse_group_value,
    parse_offset_key,
    parse_offset_value,
)

log = logging.getLogger(__name__)

Key = tuple[str, str, int]  # group, topic, partition


class ConsumerGroupsState(Protocol):
    """Where KIP-848 group records are replayed (the consumer groups' state)."""

    def replay(self, record: Record) -> None: ...

    def unload(self, belongs: Callable[[str], bool]) -> None: ...


class ClassicGroups(Protocol):
    """Where group metadata records are replayed (the classic group coordinator)."""

    def replay(self, group_id: str, snapshot: GroupSnapshot | None) -> None: ...

    def unload(self, belongs: Callable[[str], bool]) -> None: ...


class OffsetStore:
    """The shard of ``__consumer_offsets``: committed offsets, classic groups (replayed into
    :attr:`classic`) and KIP-848 groups (replayed into :attr:`consumer`), changed only by
    :meth:`replay` (through the runtime's write path or its loader)."""

    def __init__(self, store: LogStore, num_partitions: int, clock: Clock = SYSTEM_CLOCK, *,
                 topics: TopicDirectory | None = None) -> None:
        """``topics``: where the internal topic is looked up and created (default: ``store``,
        for a test store that is both)."""
        directory: TopicDirectory = topics if topics is not None else store  # type: ignore[assignment]
        self.runtime = CoordinatorRuntime(store, directory, OFFSETS_TOPIC, num_partitions,
                                          {"cleanup.policy": ["compact"]}, self, clock)
        self.clock = clock
        self.offsets: dict[Key, CommittedOffset] = {}
        #: the classic groups, which group metadata records are replayed into (set by the broker)
        self.classic: ClassicGroups | None = None
        #: when each group was last seen with members (offsets of an empty group expire after)
        self._last_active: dict[str, int] = {}
        self._started_ms = clock.time_ms()
        #: the KIP-848 groups, which their records are replayed into (set by the broker)
        self.consumer: ConsumerGroupsState | None = None
        #: per producer id, offsets committed in its open transaction
        self.pending: dict[int, dict[Key, CommittedOffset]] = {}

    @property
    def failed_partitions(self) -> set[int]:
        return self.runtime.failed_partitions

    @property
    def skipped_records(self) -> int:
        return self.runtime.skipped_records

    async def start(self) -> None:
        await self.runtime.load_all()
        if self.offsets:
            log.info("restored %d committed offsets from %s", len(self.offsets), OFFSETS_TOPIC)

    def coordinates(self, group: str) -> bool:
        """False if the group's partition of the internal topic could not be loaded."""
        return self.runtime.coordinates(group)

    # replay: the only place the state changes ---------------------------------------------------

    def replay(self, partition: int, key: bytes | None, value: bytes | None, producer_id: int) -> None:
        if key is None or len(key) < 2:
            return
        if producer_id >= 0:
            parsed = parse_offset_key(key)
            if parsed is not None and value is not None:
                self.pending.setdefault(producer_id, {})[parsed] = parse_offset_value(value)
            return
        if int.from_bytes(key[:2], "big", signed=True) in consumer_log.KEY_VERSIONS:
            record = consumer_log.decode(key, value)
            if record is not None and self.consumer is not None:
                self.consumer.replay(record)
            return
        parsed = parse_offset_key(key)
        if parsed is None:
            group = parse_group_key(key)
            if group is not None and self.classic is not None:
                self.classic.replay(group, None if value is None else parse_group_value(value))
            return
        if value is None:
            self.offsets.pop(parsed, None)
        else:
            self.offsets[parsed] = parse_offset_value(value)

    def complete_txn(self, partition: int, producer_id: int, commit: bool) -> None:
        """The transaction of ``producer_id`` ended (its marker is in ``partition``): its
        offsets committed to that partition's groups apply, or go."""
        pending = self.pending.get(producer_id)
        if pending is None:
            return
        mine = {k: c for k, c in pending.items() if self.runtime.partition_for(k[0]) == partition}
        for k in mine:
            del pending[k]
        if not pending:
            del self.pending[producer_id]
        if commit:
            self.offsets.update(mine)

    def unload(self, partition: int) -> None:
        ours: Callable[[str], bool] = lambda group: self.runtime.partition_for(group) == partition
        self.offsets = {k: c for k, c in self.offsets.items() if not ours(k[0])}
        if self.classic is not None:
            self.classic.unload(ours)
        self._last_active = {g: t for g, t in self._last_active.items() if not ours(g)}
        if self.consumer is not None:
            self.consumer.unload(ours)
        for producer_id, pending in list(self.pending.items()):
            self.pending[producer_id] = {k: c for k, c in pending.items() if not ours(k[0])}
            if not self.pending[producer_id]:
                del self.pending[producer_id]

    async def txn_commit(self, group: str, producer_id: int, producer_epoch: int,
                         commits: list[tuple[str, int, CommittedOffset]]) -> None:
        """Write offsets committed in ``producer_id``'s transaction, durably; they apply when
        the transaction commits."""
        if not commits:
            return
        records = [(offset_key(group, t, p), offset_value(c)) for t, p, c in commits]
        await self.runtime.write(group, records, producer_id=producer_id, producer_epoch=producer_epoch)

    def unstable(self, group: str, topic: str, partition: int) -> bool:
        """Whether an open transaction has committed an offset for this partition."""
        key = (group, topic, partition)
        return any(key in p for p in self.pending.values())

    def partition_of(self, group: str) -> TopicPartition:
        return self.runtime.partition_of(group)

    async def ensure_topic(self) -> None:
        """Create ``__consumer_offsets`` with the broker's partition count and configs, once."""
        await self.runtime.ensure_topic()

    async def commit(self, group: str, commits: list[tuple[str, int, CommittedOffset]]) -> None:
        """Append the commits as one batch and wait until it is durable."""
        if not commits:
            return
        records = [(offset_key(group, t, p), offset_value(c)) for t, p, c in commits]
        await self.runtime.write(group, records)

    def offset_tombstones(self, group: str) -> list[KeyValue]:
        """The tombstones of every offset ``group`` has committed (Kafka's deleteAllOffsets),
        for the group's deletion to write with its own."""
        return [(offset_key(group, t, p), None) for g, t, p in self.offsets if g == group]

    async def delete(self, group: str, keys: list[tuple[str, int]]) -> None:
        """Tombstone these committed offsets (durably) and forget them."""
        keys = [k for k in keys if (group, *k) in self.offsets]
        if not keys:
            return
        await self.runtime.write(group, [(offset_key(group, t, p), None) for t, p in keys])

    async def expire(self, retention_ms: int, active: set[str]) -> int:
        """Delete the committed offsets of groups without members once ``retention_ms`` has
        passed since both the commit and the last time the group was seen with members
        (Kafka's rule since KIP-211); returns how many went."""
        now = self.clock.time_ms()
        for group in active:
            self._last_active[group] = now
        doomed: dict[str, list[tuple[str, int]]] = {}
        for (group, topic, partition), c in self.offsets.items():
            if group in active:
                continue
            since = max(c.commit_timestamp, self._last_active.get(group, self._started_ms))
            if now - since >= retention_ms:
                doomed.setdefault(group, []).append((topic, partition))
        for group, keys in doomed.items():
            await self.delete(group, keys)
            log.info("group %s: %d committed offsets expired (offsets.retention.minutes)", group, len(keys))
        return sum(len(k) for k in doomed.values())

    def groups(self) -> set[str]:
        return {g for g, _, _ in self.offsets}

    def fetch(self, group: str, topic: str, partition: int) -> CommittedOffset | None:
        return self.offsets.get((group, topic, partition))

    def topics_of(self, group: str) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for g, t, p in self.offsets:
            if g == group:
                out.setdefault(t, []).append(p)
        return out
