"""THE storage seam: what the broker and the coordinators need from a log engine.

Every engine (the local-disk default today; PostgreSQL or object storage later) implements
:class:`LogStore`. The contract, per partition:

* offsets are assigned densely from ``log_end_offset`` in append order;
* ``high_watermark`` is the durable end: every offset below it survives a crash or power
  loss, and nothing at or above it is ever served to a consumer;
* ``log_start_offset <= high_watermark <= log_end_offset`` always holds;
* ``append`` returns once the batch is written (visible to a crash-restart of the process,
  not yet to a power loss); ``wait_durable`` waits for the high watermark to pass an offset.

Methods are ``async`` so that a remote engine can await I/O; the local engine's appends
complete without suspending. All methods are called from the broker's event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from tomyum.config import TopicConfig

#: told once the high watermark reaches its offset (None), or why it never will (the error)
DurableCallback = Callable[[Exception | None], None]


class TopicPartition(NamedTuple):
    """A partition (a tuple: made and hashed at C speed, on every request's path)."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionSpec:
    """What an engine needs to know of a partition it holds: the topic's id (a log left by
    an older topic of the same name has another) and its configs."""

    topic_id: uuid.UUID
    config: TopicConfig


class AppendResult(NamedTuple):  # a NamedTuple: made per request, it costs a third of a frozen dataclass
    base_offset: int
    last_offset: int
    #: the broker time set on the batch for LogAppendTime topics, else -1
    log_append_time: int
    log_start_offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionOffsets:
    log_start_offset: int
    high_watermark: int
    log_end_offset: int
    #: below the high watermark and the first offset of every undecided transaction
    last_stable_offset: int = -1


@dataclass(frozen=True, slots=True)
class AbortedTransaction:
    producer_id: int
    first_offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProducerInfo:
    """One producer's state in one partition (DescribeProducers)."""

    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    coordinator_epoch: int
    current_txn_start_offset: int


class ZeroCopyRecords(Protocol):
    """Record bytes left in a file, for the server to send with ``sendfile`` (zero copy):
    ``len(self)`` bytes of the file :meth:`fileno` from byte ``position``. The holder calls
    :meth:`release` once they are sent (or dropped)."""

    position: int

    def __len__(self) -> int: ...
    def fileno(self) -> int: ...
    def seek(self, offset: int, whence: int = 0) -> int: ...
    def readinto(self, buf: bytearray | memoryview) -> int: ...
    def release(self) -> None: ...
    def read_all(self) -> bytes: ...


class ReadResult(NamedTuple):
    """What one read of a partition found (one per partition of every Fetch: a tuple)."""

    #: whole record batches (the last may be cut short by max_bytes, as in Kafka)
    records: bytes | ZeroCopyRecords
    high_watermark: int
    log_start_offset: int
    last_stable_offset: int = -1
    #: read_committed reads only: the aborted transactions with records in what was read
    aborted: tuple[AbortedTransaction, ...] | None = None
    #: offsets from the one asked for to the end of the last whole batch of ``records``: the
    #: records a consumer gets (plus transaction markers, and offsets compaction removed)
    record_count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class OffsetAndTimestamp:
    offset: int
    timestamp: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRound:
    """One group commit: how long its fsyncs took, and how much they made durable."""
    seconds: float
    #: offsets (records and control records) made durable by this round
    records: int
    #: partitions (logs) whose files were synced
    partitions: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskUsage:
    size_in_bytes: int
    segments: int


class LogStore(Protocol):
    """A storage engine. Errors are :class:`tomyum.errors.KafkaError` subclasses."""

    # partitions: which exist is decided by the metadata layer (tomyum.metadata), which tells
    # the engine; the engine never decides on its own that a partition exists.
    async def prepare_partitions(self, specs: Mapping[TopicPartition, PartitionSpec]) -> None:
        """Create empty logs for ``specs``, durably, without serving them yet. All or nothing:
        on an error (StorageError) none of them is left. A leftover in the way (a log of an
        older topic id) is removed first."""
        ...
    def publish_partitions(self, tps: Iterable[TopicPartition]) -> None:
        """Serve prepared logs from now on (their creation is durable in the metadata log)."""
        ...
    async def remove_partitions(self, tps: Iterable[TopicPartition]) -> None:
        """Stop serving ``tps`` (waiters fail with UNKNOWN_TOPIC_OR_PARTITION) and delete
        their data; the files may go after this returns. Never raises: whatever is left is
        removed at the next start."""
        ...
    def set_partition_config(self, tp: TopicPartition, config: TopicConfig) -> None: ...

    # data --------------------------------------------------------------------------------
    async def append(self, tp: TopicPartition, records: memoryview) -> AppendResult:
        """Write a client's batches. Batches with a producer id are checked against the
        partition's producer state (epoch fencing, sequences); a retry of one of a producer's
        last five batches is answered with the original offsets and not written again."""
        ...
    async def append_marker(self, tp: TopicPartition, producer_id: int, producer_epoch: int, commit: bool,
                            coordinator_epoch: int) -> AppendResult:
        """Write a transaction marker ending ``producer_id``'s transaction in ``tp``."""
        ...
    async def wait_durable(self, tp: TopicPartition, offset: int) -> None: ...
    def durable_future(self, tp: TopicPartition, offset: int) -> asyncio.Future[None] | None:
        """:meth:`wait_durable` without a coroutine: a future resolved once the high watermark
        reaches ``offset`` (failed as ``wait_durable`` would fail), None if it has already. A
        caller that drops it cancels it. For a hot path that waits with callbacks, not a task."""
        ...
    def call_when_durable(self, tp: TopicPartition, offset: int, callback: DurableCallback) -> bool:
        """:meth:`durable_future` without a future: ``callback(None)`` is called once the high
        watermark reaches ``offset``, ``callback(error)`` if it never will; False (and no
        call) if it has already. Raises as :meth:`durable_future` does for an unknown ``tp``."""
        ...
    async def read(self, tp: TopicPartition, offset: int, max_bytes: int, *, min_one: bool = True,
                   zero_copy_min: int | None = None, read_committed: bool = False) -> ReadResult:
        """Batches from the one holding ``offset``, at most ``max_bytes`` (the first batch whole
        if ``min_one``), never at or past the high watermark (``read_committed``: the last
        stable offset, with the aborted transactions among what was read). With
        ``zero_copy_min``, an engine that can may answer ``zero_copy_min`` bytes or more as
        :class:`ZeroCopyRecords`."""
        ...
    def producers(self, tp: TopicPartition) -> list[ProducerInfo]: ...
    def offsets(self, tp: TopicPartition) -> PartitionOffsets: ...
    async def delete_records(self, tp: TopicPartition, offset: int) -> int:
        """Move the log start offset up to ``offset`` (-1: the high watermark), durably;
        returns the new log start offset. Beyond the high watermark: OFFSET_OUT_OF_RANGE."""
        ...
    async def offset_for_timestamp(self, tp: TopicPartition, timestamp: int) -> OffsetAndTimestamp | None: ...
    async def offset_of_max_timestamp(self, tp: TopicPartition) -> OffsetAndTimestamp | None: ...
    def on_high_watermark(self, callback: Callable[[TopicPartition, int], None]) -> None: ...

    # what the engine reports (for the broker's metrics; plain numbers, no broker import) -----
    def on_sync(self, callback: Callable[[SyncRound], None]) -> None:
        """Call ``callback`` after each group commit (fsync round), from the event loop's
        thread. An engine without fsync never calls it."""
        ...
    def disk_usage(self) -> dict[TopicPartition, DiskUsage]:
        """Bytes on disk and segment count of every partition served (an engine that keeps
        nothing on disk: an empty dict). Cheap: sizes the engine already holds, no ``stat``."""
        ...

    # lifecycle -----------------------------------------------------------------------------
    async def start(self, partitions: Mapping[TopicPartition, PartitionSpec]) -> None:
        """Open (recovering) the logs of ``partitions``, and remove every other partition
        log it finds (left by a deleted topic, a failed creation or an older topic id),
        logging one line for each."""
        ...
    async def close(self) -> None: ...
