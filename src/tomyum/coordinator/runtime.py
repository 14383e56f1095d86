"""The coordinator runtime: the one write path and the one loader of the internal topics
(``__consumer_offsets``, ``__transaction_state``), shared by every coordinator.

A coordinator (a :class:`Shard`) keeps its state in memory and changes it only in
``replay``. The runtime is its I/O, in Kafka's shape (``CoordinatorRuntime`` with a
``PartitionWriter``):

- :meth:`CoordinatorRuntime.write` appends a batch of records to the coordinator's partition,
  waits until the batch is durable, and only then replays it into the shard: append → durable
  → replay → answer. A write that fails changes nothing in memory.
- :meth:`CoordinatorRuntime.load` replays one partition from its log start offset to its high
  watermark, transaction markers included (``complete_txn``). A record that cannot be read is
  skipped with a warning and counted (``skipped_records``), never fatal; a partition that
  cannot be read at all is noted in ``failed_partitions`` — what it coordinates is not served —
  and every other partition loads (:meth:`load_all`).
- :meth:`CoordinatorRuntime.unload` drops one partition's state from memory (as leadership
  moves, in the cluster mode to come); :meth:`load` brings it back.

Keys are placed on partitions as Kafka places them (Java's String.hashCode of the group or
transactional id). Methods are called from the event loop; ``write`` may be awaited
concurrently (each caller is answered once its own batch is durable and replayed).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from tomyum.clock import Clock
from tomyum.coordinator.topics import TopicDirectory
from tomyum.errors import CorruptRecord, ErrorCode, KafkaError
from tomyum.protocol.records import build_batch, complete_length, control_marker, decode_records, iter_batches
from tomyum.storage.engine import LogStore, TopicPartition

log = logging.getLogger(__name__)


def java_string_hash(s: str) -> int:
    """Java's String.hashCode (over UTF-16 code units), which Kafka uses to place a group or a
    transactional id on a partition of its internal topic."""
    h = 0
    units = s.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: str, partitions: int) -> int:
    """The partition of an internal topic that coordinates ``key`` (Kafka's Utils.abs(hash) % n)."""
    return (java_string_hash(key) & 0x7FFFFFFF) % partitions

#: what reading a record that was not written by a coordinator can raise
UNREADABLE = (ValueError, KeyError, IndexError, TypeError, struct.error)

#: one record of an internal topic: key, value (None: a tombstone)
KeyValue = tuple[bytes, bytes | None]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Result(Generic[T]):
    """What a coordinator operation returns (Kafka's ``CoordinatorResult``): the records to
    store through :meth:`CoordinatorRuntime.write` (none when nothing stored changes) and the
    response, given once they are durable and replayed."""

    records: tuple[KeyValue, ...]
    response: T


#: how much of a partition one read brings in at load
READ_BYTES = 1 << 20


class Shard(Protocol):
    """A coordinator's in-memory state of the partitions it has loaded; changed only here."""

    def replay(self, partition: int, key: bytes | None, value: bytes | None, producer_id: int) -> None:
        """Apply one record of ``partition`` (``producer_id`` -1 unless the record is part of
        a transaction). May raise one of :data:`UNREADABLE` for a record it cannot read."""
        ...

    def complete_txn(self, partition: int, producer_id: int, commit: bool) -> None:
        """The transaction of ``producer_id`` ended on ``partition`` (its marker is there)."""
        ...

    def unload(self, partition: int) -> None:
        """Forget everything ``partition`` holds."""
        ...


class CoordinatorRuntime:
    """The partitions of one internal topic and the shard whose state they hold."""

    def __init__(self, store: LogStore, topics: TopicDirectory, topic: str, num_partitions: int,
                 configs: Mapping[str, Any], shard: Shard, clock: Clock) -> None:
        self.store = store
        self.topics = topics
        self.topic = topic
        self.num_partitions = num_partitions
        self.configs = dict(configs)
        self.shard = shard
        self.clock = clock
        #: partitions whose state is in memory
        self.loaded: set[int] = set()
        #: partitions that could not be loaded: what they coordinate answers
        #: COORDINATOR_NOT_AVAILABLE (FindCoordinator), everything else is served
        self.failed_partitions: set[int] = set()
        #: records skipped at load because they could not be read
        self.skipped_records = 0

    # placement -------------------------------------------------------------------------------

    def partition_for(self, key: str) -> int:
        return partition_for(key, self.num_partitions)

    def partition_of(self, key: str) -> TopicPartition:
        return TopicPartition(self.topic, self.partition_for(key))

    def coordinates(self, key: str) -> bool:
        """False if ``key``'s partition could not be loaded."""
        return self.partition_for(key) not in self.failed_partitions

    # the write path --------------------------------------------------------------------------

    async def ensure_topic(self) -> None:
        """Create the internal topic with the broker's partition count and its configs, once."""
        if self.topic not in self.topics.topics():
            try:
                await self.topics.create_topic(self.topic, self.num_partitions, self.configs)
            except KafkaError as e:
                if e.code != ErrorCode.topic_already_exists:  # created meanwhile: as good
                    raise

    async def write(self, key: str, records: Sequence[KeyValue], *, producer_id: int = -1,
                    producer_epoch: int = -1) -> None:
        """Append ``records`` as one batch to ``key``'s partition (transactional if
        ``producer_id`` >= 0), wait until it is durable, then replay it into the shard."""
        if not records:
            return
        await self.ensure_topic()
        tp = self.partition_of(key)
        batch = build_batch(list(records), timestamp=self.clock.time_ms(), producer_id=producer_id,
                            producer_epoch=producer_epoch, transactional=producer_id >= 0)
        result = await self.store.append(tp, memoryview(batch))
        await self.store.wait_durable(tp, result.last_offset + 1)
        for k, v in records:
            self.shard.replay(tp.partition, k, v, producer_id)

    # the loader ------------------------------------------------------------------------------

    async def load_all(self) -> None:
        """Load every partition of the topic, if it exists; one that cannot be read is noted in
        ``failed_partitions`` and the others load."""
        meta = self.topics.topics().get(self.topic)
        if meta is None:
            return  # created on the first write
        self.num_partitions = meta.num_partitions
        for p in range(meta.num_partitions):
            await self.load_or_fail(p)

    async def load_or_fail(self, partition: int) -> None:
        """Load ``partition``; if it cannot be read, note it and go on: what it coordinates is
        not served, everything else is."""
        try:
            await self.load(partition)
        except (KafkaError, OSError) as e:
            self.failed_partitions.add(partition)
            log.error("cannot load %s (%s): what it coordinates answers COORDINATOR_NOT_AVAILABLE until it "
                      "can be loaded; everything else is served", TopicPartition(self.topic, partition), e)

    async def load(self, partition: int) -> None:
        """Replay ``partition`` from its log start offset to its high watermark into the shard
        (what it held before is dropped first). Raises if the partition cannot be read."""
        self.unload(partition)
        tp = TopicPartition(self.topic, partition)
        offsets = self.store.offsets(tp)
        position = offsets.log_start_offset
        while position < offsets.high_watermark:
            result = await self.store.read(tp, position, READ_BYTES)
            data = result.records if isinstance(result.records, bytes) else result.records.read_all()
            if not data:
                break
            for h in iter_batches(data[: complete_length(data)]):
                batch = data[h.position : h.end]
                position = h.next_offset
                if h.is_control:
                    marker = control_marker(batch)
                    if marker is not None:
                        self.shard.complete_txn(partition, h.producer_id, marker[0])
                    continue
                try:
                    records = decode_records(batch)
                except CorruptRecord as e:
                    self._skip(tp, h.base_offset, e)
                    continue
                producer_id = h.producer_id if h.is_transactional else -1
                for r in records:
                    try:
                        self.shard.replay(partition, r.key, r.value, producer_id)
                    except UNREADABLE as e:
                        self._skip(tp, r.offset, e)
        self.failed_partitions.discard(partition)
        self.loaded.add(partition)

    def unload(self, partition: int) -> None:
        """Drop ``partition``'s state from memory (its records stay in the log)."""
        self.shard.unload(partition)
        self.loaded.discard(partition)

    def _skip(self, tp: TopicPartition, offset: int, e: Exception) -> None:
        """A record no build of tomyum wrote (or one from a newer one): skipped, never fatal."""
        self.skipped_records += 1
        log.warning("%s: skipping the record at offset %d, which cannot be read: %s", tp, offset,
                    e or type(e).__name__)
