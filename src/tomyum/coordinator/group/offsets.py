"""Committed offsets and group metadata: in memory for reads, appended durably to
``__consumer_offsets`` for restart, and rebuilt on start by replaying that topic.

Offsets committed inside a transaction (TxnOffsetCommit) are written as a transactional batch
of the producer and stay pending — invisible to OffsetFetch, which answers
UNSTABLE_OFFSET_COMMIT to those who require stable offsets — until the transaction's marker
reaches the partition: a commit marker makes them the group's offsets, an abort drops them.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Awaitable, Callable

from tomyum.clock import SYSTEM_CLOCK, Clock
from tomyum.coordinator.group.consumer import log as consumer_log
from tomyum.coordinator.group.consumer.records import Record
from tomyum.coordinator.topics import TopicDirectory
from tomyum.errors import CorruptRecord, ErrorCode, KafkaError
from tomyum.protocol.records import build_batch, complete_length, control_marker, decode_records, iter_batches
from tomyum.storage.engine import LogStore, TopicPartition
from tomyum.coordinator.group.offsets_log import (
    OFFSETS_TOPIC,
    CommittedOffset,
    GroupSnapshot,
    group_key,
    group_value,
    offset_key,
    offset_value,
    parse_group_key,
    parse_group_value,
    parse_offset_key,
    parse_offset_value,
    partition_for,
)

log = logging.getLogger(__name__)


async def load_or_fail(replay: Callable[[TopicPartition], Awaitable[None]], tp: TopicPartition,
                       failed: set[int]) -> None:
    """Replay one partition of an internal topic; if it cannot be read, note it and go on: its
    groups or transactional ids are not served, everything else is."""
    try:
        await replay(tp)
    except (KafkaError, OSError) as e:
        failed.add(tp.partition)
        log.error("cannot load %s (%s): what it coordinates answers COORDINATOR_NOT_AVAILABLE until it can "
                  "be loaded; everything else is served", tp, e)
#: what reading a record that was not written by the coordinator can raise
UNREADABLE = (ValueError, KeyError, IndexError, TypeError, struct.error)

Key = tuple[str, str, int]  # group, topic, partition


class OffsetStore:
    def __init__(self, store: LogStore, num_partitions: int, clock: Clock = SYSTEM_CLOCK, *,
                 topics: TopicDirectory | None = None) -> None:
        """``topics``: where the internal topic is looked up and created (default: ``store``,
        for a test store that is both)."""
        self.store = store
        self.topics: TopicDirectory = topics if topics is not None else store  # type: ignore[assignment]
        self.clock = clock
        self.num_partitions = num_partitions
        self.offsets: dict[Key, CommittedOffset] = {}
        #: group metadata as last stored (what a restart restores)
        self.group_metadata: dict[str, GroupSnapshot] = {}
        #: when each group was last seen with members (offsets of an empty group expire after)
        self._last_active: dict[str, int] = {}
        self._started_ms = clock.time_ms()
        #: KIP-848 consumer group records: the latest value of each key
        self.consumer_group_values: dict[bytes, bytes] = {}
        #: records of the internal topic skipped at load because they could not be read
        self.skipped_records = 0
        #: partitions of the internal topic that could not be loaded: their groups answer
        #: COORDINATOR_NOT_AVAILABLE (FindCoordinator), every other group is served
        self.failed_partitions: set[int] = set()
        #: per producer id, offsets committed in its open transaction
        self.pending: dict[int, dict[Key, CommittedOffset]] = {}

    async def start(self) -> None:
        meta = self.topics.topics().get(OFFSETS_TOPIC)
        if meta is None:
            return  # created on the first commit
        self.num_partitions = meta.num_partitions
        for p in range(meta.num_partitions):
            await load_or_fail(self._replay, TopicPartition(OFFSETS_TOPIC, p), self.failed_partitions)
        if self.offsets or self.group_metadata:
            log.info("restored %d committed offsets and %d classic groups from %s", len(self.offsets),
                     len(self.group_metadata), OFFSETS_TOPIC)

    async def _replay(self, tp: TopicPartition) -> None:
        offsets = self.store.offsets(tp)
        position = offsets.log_start_offset
        while position < offsets.high_watermark:
            result = await self.store.read(tp, position, 1 << 20)
            if not result.records:
                break
            for h in iter_batches(result.records[: complete_length(result.records)]):
                batch = result.records[h.position : h.end]
                position = h.next_offset
                if h.is_control:
                    marker = control_marker(batch)
                    if marker is not None:
                        self.complete_txn(h.producer_id, marker[0])
                    continue
                try:
                    records = decode_records(batch)
                except CorruptRecord as e:
                    self._skip(tp, h.base_offset, e)
                    continue
                for r in records:
                    try:
                        if h.is_transactional:
                            self._apply_pending(h.producer_id, r.key, r.value)
                        else:
                            self._apply(r.key, r.value)
                    except UNREADABLE as e:
                        self._skip(tp, r.offset, e)

    def coordinates(self, group: str) -> bool:
        """False if the group's partition of the internal topic could not be loaded."""
        return partition_for(group, self.num_partitions) not in self.failed_partitions

    def _skip(self, tp: TopicPartition, offset: int, e: Exception) -> None:
        """A record no build of tomyum wrote (or one from a newer one): skipped, never fatal."""
        self.skipped_records += 1
        log.warning("%s: skipping the record at offset %d, which cannot be read: %s", tp, offset, e or type(e).__name__)

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or len(key) < 2:
            return
        if int.from_bytes(key[:2], "big", signed=True) in consumer_log.KEY_VERSIONS:
            self._keep_consumer_group_record(key, value)
            return
        parsed = parse_offset_key(key)
        if parsed is None:
            group = parse_group_key(key)
            if group is not None and value is None:
                self.group_metadata.pop(group, None)
            elif group is not None and value is not None:
                self.group_metadata[group] = parse_group_value(value)
            return
        if value is None:
            self.offsets.pop(parsed, None)
        else:
            self.offsets[parsed] = parse_offset_value(value)

    def _keep_consumer_group_record(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.consumer_group_values.pop(key, None)
        else:
            self.consumer_group_values[key] = value

    def consumer_group_records(self) -> list[Record]:
        """The KIP-848 group records kept, in an order fit to replay: each key's latest value,
        groups before members, members before their assignments."""
        keyed = sorted(self.consumer_group_values.items(), key=lambda kv: int.from_bytes(kv[0][:2], "big"))
        out = []
        for k, v in keyed:
            try:
                r = consumer_log.decode(k, v)
            except UNREADABLE as e:
                self.skipped_records += 1
                log.warning("%s: skipping a consumer group record that cannot be read (key %s): %s", OFFSETS_TOPIC,
                            k[:40].hex(), e or type(e).__name__)
                continue
            if r is not None:
                out.append(r)
        return out

    async def store_consumer_group_records(self, group: str, records: list[tuple[bytes, bytes | None]]) -> None:
        """Append a KIP-848 group's records (one batch) and wait until they are durable."""
        await self._append(group, records)
        for key, value in records:
            self._keep_consumer_group_record(key, value)

    def _apply_pending(self, producer_id: int, key: bytes | None, value: bytes | None) -> None:
        parsed = parse_offset_key(key) if key is not None else None
        if parsed is not None and value is not None:
            self.pending.setdefault(producer_id, {})[parsed] = parse_offset_value(value)

    async def txn_commit(self, group: str, producer_id: int, producer_epoch: int,
                         commits: list[tuple[str, int, CommittedOffset]]) -> None:
        """Write offsets committed in ``producer_id``'s transaction, durably; they apply when
        the transaction commits."""
        if not commits:
            return
        records = [(offset_key(group, t, p), offset_value(c)) for t, p, c in commits]
        await self._append(group, records, producer_id=producer_id, producer_epoch=producer_epoch)
        pending = self.pending.setdefault(producer_id, {})
        for t, p, c in commits:
            pending[(group, t, p)] = c

    def complete_txn(self, producer_id: int, commit: bool) -> None:
        """The transaction of ``producer_id`` ended (its marker is in the log)."""
        pending = self.pending.pop(producer_id, None)
        if commit and pending:
            self.offsets.update(pending)

    def unstable(self, group: str, topic: str, partition: int) -> bool:
        """Whether an open transaction has committed an offset for this partition."""
        key = (group, topic, partition)
        return any(key in p for p in self.pending.values())

    def partition_of(self, group: str) -> TopicPartition:
        return TopicPartition(OFFSETS_TOPIC, partition_for(group, self.num_partitions))

    async def ensure_topic(self) -> None:
        """Create ``__consumer_offsets`` with the broker's partition count and configs, once."""
        if OFFSETS_TOPIC not in self.topics.topics():
            try:
                await self.topics.create_topic(OFFSETS_TOPIC, self.num_partitions, {"cleanup.policy": ["compact"]})
            except KafkaError as e:
                if e.code != ErrorCode.topic_already_exists:  # created meanwhile: as good
                    raise

    async def commit(self, group: str, commits: list[tuple[str, int, CommittedOffset]]) -> None:
        """Append the commits as one batch and wait until it is durable."""
        if not commits:
            return
        records = [(offset_key(group, t, p), offset_value(c)) for t, p, c in commits]
        await self._append(group, records)
        for t, p, c in commits:
            self.offsets[(group, t, p)] = c

    async def store_group(self, group: str, snapshot: GroupSnapshot | None) -> None:
        """Store a group's metadata (None: a tombstone), durably."""
        if snapshot is None and group not in self.group_metadata:
            return
        await self._append(group, [(group_key(group), None if snapshot is None else group_value(snapshot))])
        if snapshot is None:
            self.group_metadata.pop(group, None)
        else:
            self.group_metadata[group] = snapshot

    async def _append(self, group: str, records: list[tuple[bytes, bytes | None]], *,
                      producer_id: int = -1, producer_epoch: int = -1) -> None:
        await self.ensure_topic()
        tp = self.partition_of(group)
        now = self.clock.time_ms()
        batch = build_batch(records, timestamp=now, producer_id=producer_id, producer_epoch=producer_epoch,
                            transactional=producer_id >= 0)
        result = await self.store.append(tp, memoryview(batch))
        await self.store.wait_durable(tp, result.last_offset + 1)

    async def delete(self, group: str, keys: list[tuple[str, int]]) -> None:
        """Tombstone these committed offsets (durably) and forget them."""
        keys = [k for k in keys if (group, *k) in self.offsets]
        if not keys:
            return
        await self._append(group, [(offset_key(group, t, p), None) for t, p in keys])
        for t, p in keys:
            self.offsets.pop((group, t, p), None)

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
