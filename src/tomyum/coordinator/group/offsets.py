"""Committed offsets and group metadata: in memory for reads, appended durably to
``__consumer_offsets`` for restart, and rebuilt on start by replaying that topic."""

from __future__ import annotations

import logging
import time

from tomyum.protocol.records import build_batch, decode_records, iter_batches
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

Key = tuple[str, str, int]  # group, topic, partition


class OffsetStore:
    def __init__(self, store: LogStore, num_partitions: int) -> None:
        self.store = store
        self.num_partitions = num_partitions
        self.offsets: dict[Key, CommittedOffset] = {}
        #: group metadata as last stored (what a restart restores)
        self.group_metadata: dict[str, GroupSnapshot] = {}

    async def start(self) -> None:
        meta = self.store.topics().get(OFFSETS_TOPIC)
        if meta is None:
            return  # created on the first commit
        self.num_partitions = meta.num_partitions
        for p in range(meta.num_partitions):
            await self._replay(TopicPartition(OFFSETS_TOPIC, p))
        if self.offsets or self.group_metadata:
            log.info("restored %d committed offsets and %d groups from %s", len(self.offsets),
                     len(self.group_metadata), OFFSETS_TOPIC)

    async def _replay(self, tp: TopicPartition) -> None:
        offsets = self.store.offsets(tp)
        position = offsets.log_start_offset
        while position < offsets.high_watermark:
            result = await self.store.read(tp, position, 1 << 20)
            if not result.records:
                break
            for h in iter_batches(result.records[: _whole(result.records)]):
                start = h.position
                for r in decode_records(result.records[start : start + h.size]):
                    self._apply(r.key, r.value)
                position = h.next_offset

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
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

    async def _append(self, group: str, records: list[tuple[bytes, bytes | None]]) -> None:
        if OFFSETS_TOPIC not in self.store.topics():
            await self.store.create_topic(OFFSETS_TOPIC, self.num_partitions, {"cleanup.policy": ["compact"]},
                                          internal=True)
        tp = TopicPartition(OFFSETS_TOPIC, partition_for(group, self.num_partitions))
        now = int(time.time() * 1000)
        result = await self.store.append(tp, memoryview(build_batch(records, timestamp=now)))
        await self.store.wait_durable(tp, result.last_offset + 1)

    async def delete(self, group: str, keys: list[tuple[str, int]]) -> None:
        """Tombstone these committed offsets (durably) and forget them."""
        keys = [k for k in keys if (group, *k) in self.offsets]
        if not keys:
            return
        await self._append(group, [(offset_key(group, t, p), None) for t, p in keys])
        for t, p in keys:
            self.offsets.pop((group, t, p), None)

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


def _whole(records: bytes) -> int:
    """The length of the complete batches at the start of ``records`` (a read may cut the last)."""
    pos = 0
    while pos + 12 <= len(records):
        size = 12 + int.from_bytes(records[pos + 8 : pos + 12], "big", signed=True)
        if pos + size > len(records):
            break
        pos += size
    return pos
