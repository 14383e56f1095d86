"""ServedPartitions: the part of a LogStore that is the same in every engine — which partition
logs are served, which are prepared but not yet published, and the reads answered from a
partition log's offsets, producer state and batches.

An engine subclasses it with its partition log type (anything shaped as :class:`ServedLog`)
and adds what is its own: appends, durability, the partition lifecycle's storage side.
A partition is served only once published: every method raises UNKNOWN_TOPIC_OR_PARTITION for
one that is not (prepared, removed or never created).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

from tomyum.config import TopicConfig
from tomyum.errors import ErrorCode, KafkaError
from tomyum.storage.engine import (
    AbortedTransaction,
    OffsetAndTimestamp,
    PartitionOffsets,
    ProducerInfo,
    ReadResult,
    TopicPartition,
    ZeroCopyRecords,
)
from tomyum.storage.log_rules import producer_infos
from tomyum.storage.producer_state import AbortedTxn, ProducerStateManager


class ServedLog(Protocol):
    """What :class:`ServedPartitions` needs of one engine's partition log."""

    config: TopicConfig
    producer_state: ProducerStateManager

    @property
    def log_start_offset(self) -> int: ...
    @property
    def high_watermark(self) -> int: ...
    @property
    def log_end_offset(self) -> int: ...
    @property
    def last_stable_offset(self) -> int: ...
    def read_counted(self, offset: int, max_bytes: int, *, min_one: bool = True, upper: int | None = None,
                     zero_copy_min: int | None = None) -> tuple[bytes | ZeroCopyRecords, int]: ...
    def aborted_transactions(self, start: int, end: int) -> list[AbortedTxn]: ...
    def offset_for_timestamp(self, timestamp: int) -> OffsetAndTimestamp | None: ...
    def offset_of_max_timestamp(self) -> OffsetAndTimestamp | None: ...


L = TypeVar("L", bound=ServedLog)


class ServedPartitions(Generic[L]):
    def __init__(self) -> None:
        self._logs: dict[TopicPartition, L] = {}
        #: created, not yet served (their metadata records are being written)
        self._prepared: dict[TopicPartition, L] = {}

    def _log(self, tp: TopicPartition) -> L:
        plog = self._logs.get(tp)
        if plog is None:
            raise KafkaError(f"unknown topic or partition {tp}", ErrorCode.unknown_topic_or_partition)
        return plog

    def _take(self, tps: Iterable[TopicPartition]) -> list[L]:
        """Stop serving ``tps`` (published or only prepared); their logs, for the engine to drop."""
        return [plog for tp in tps if (plog := self._logs.pop(tp, None) or self._prepared.pop(tp, None))]

    def publish_partitions(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._logs[tp] = self._prepared.pop(tp)

    def set_partition_config(self, tp: TopicPartition, config: TopicConfig) -> None:
        plog = self._logs.get(tp) or self._prepared.get(tp)
        if plog is not None:
            plog.config = config

    async def read(self, tp: TopicPartition, offset: int, max_bytes: int, *, min_one: bool = True,
                   zero_copy_min: int | None = None, read_committed: bool = False) -> ReadResult:
        plog = self._log(tp)
        lso = plog.last_stable_offset
        records, count = plog.read_counted(offset, max_bytes, min_one=min_one, zero_copy_min=zero_copy_min,
                                           upper=lso if read_committed else None)
        aborted = None
        if read_committed:
            # every abort overlapping [offset, LSO): a superset of what was read, as Kafka sends
            aborted = tuple(AbortedTransaction(a.producer_id, a.first_offset)
                            for a in plog.aborted_transactions(offset, lso))
        return ReadResult(records=records, high_watermark=plog.high_watermark, log_start_offset=plog.log_start_offset,
                          last_stable_offset=lso, aborted=aborted, record_count=count)

    def offsets(self, tp: TopicPartition) -> PartitionOffsets:
        plog = self._log(tp)
        return PartitionOffsets(log_start_offset=plog.log_start_offset, high_watermark=plog.high_watermark,
                                log_end_offset=plog.log_end_offset, last_stable_offset=plog.last_stable_offset)

    def producers(self, tp: TopicPartition) -> list[ProducerInfo]:
        return producer_infos(self._log(tp).producer_state)

    async def offset_for_timestamp(self, tp: TopicPartition, timestamp: int) -> OffsetAndTimestamp | None:
        return self._log(tp).offset_for_timestamp(timestamp)

    async def offset_of_max_timestamp(self, tp: TopicPartition) -> OffsetAndTimestamp | None:
        return self._log(tp).offset_of_max_timestamp()
