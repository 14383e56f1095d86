"""What every log engine decides the same way, pure of any I/O: Kafka's rules for one partition.

* :func:`append_rules` is what a topic's configs say about an append, read once per change;
* :func:`validate_batches` is Kafka's LogValidator at append: a request's batches are all
  checked before any is written (size, control batches, offset deltas, timestamps, keys on a
  compacted topic), so a bad batch rejects the whole request;
* :func:`check_producers` checks them against the partition's producer state (fencing,
  sequences) and finds a retry of one of a producer's last five batches;
* :func:`marker_batch` is the control batch a transaction coordinator's marker is written as;
* :func:`new_log_start_offset` is DeleteRecords' bound (never past the high watermark);
* :class:`DurableWaiters` holds the futures of ``wait_durable`` until the high watermark passes;
* :func:`first_record_at` and :func:`record_of_max_timestamp` answer ListOffsets by timestamp
  within one batch.

An engine keeps its bytes as it likes; it calls these so that a client sees one behaviour.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
from dataclasses import dataclass

from tomyum.config import TopicConfig
from tomyum.errors import ErrorCode, KafkaError, RecordValidationError
from tomyum.protocol.records import (
    BatchHeader,
    build_batch,
    control_key,
    control_value,
    decode_records,
    iter_batches,
)
from tomyum.storage.engine import DurableCallback, OffsetAndTimestamp, ProducerInfo, TopicPartition
from tomyum.storage.log_validator import TimestampPolicy, validate_batch
from tomyum.storage.producer_state import BatchMeta, ProducerStateManager

log = logging.getLogger(__name__)

#: a single broker is the leader of every partition, in epoch 0
LEADER_EPOCH = 0


# appending ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AppendRules:
    """What a topic's configs say about appending to it: read on every append, so computed once
    per change of the configs (:func:`append_rules`)."""

    max_message_bytes: int
    segment_bytes: int
    #: ``message.timestamp.type=LogAppendTime``: the broker stamps the batches
    log_append_time: bool
    before_max_ms: int
    after_max_ms: int
    #: ``cleanup.policy`` has ``compact``: every record needs a key
    compacted: bool
    #: when the active segment rolls by age: ``segment.ms``, on a compacted topic at most
    #: ``max.compaction.lag.ms`` (so the cleaner may meet it)
    roll_ms: int


def _append_rules(config: TopicConfig) -> AppendRules:
    compacted = "compact" in config["cleanup.policy"]
    roll_ms = config["segment.ms"]
    if compacted:
        roll_ms = min(roll_ms, config["max.compaction.lag.ms"])
    return AppendRules(max_message_bytes=config["max.message.bytes"], segment_bytes=config["segment.bytes"],
                       log_append_time=config["message.timestamp.type"] == "LogAppendTime",
                       before_max_ms=config["message.timestamp.before.max.ms"],
                       after_max_ms=config["message.timestamp.after.max.ms"], compacted=compacted, roll_ms=roll_ms)


def append_rules(config: TopicConfig) -> AppendRules:
    """``config``'s :class:`AppendRules` (remembered until a config changes)."""
    return config.derived(_append_rules)


def validate_batches(records: memoryview, config: TopicConfig, now_ms: int,
                     topic_partition: object) -> list[tuple[BatchHeader, int]]:
    """Each batch of a produce request for one partition with its records' true maximum
    timestamp, every record checked as Kafka's LogValidator does (:mod:`log_validator`: counts,
    offset deltas, lengths, headers, timestamps, keys on a compacted topic); raises before
    anything may be written, so a bad batch rejects the whole request. ``topic_partition`` is
    only printed, in error messages (formatted only then)."""
    headers = list(iter_batches(records))
    if not headers:
        raise KafkaError("produce request has no record batches", ErrorCode.invalid_record)
    rules = append_rules(config)
    max_message = rules.max_message_bytes
    segment_bytes = rules.segment_bytes
    policy = TimestampPolicy(now_ms=now_ms, log_append_time=rules.log_append_time,
                             before_max_ms=rules.before_max_ms, after_max_ms=rules.after_max_ms)
    compacted = rules.compacted
    out: list[tuple[BatchHeader, int]] = []
    index = 0
    for h in headers:
        if h.size > max_message:
            raise KafkaError(f"batch of {h.size} bytes exceeds max.message.bytes {max_message}",
                             ErrorCode.message_too_large)
        if h.size > segment_bytes:  # a batch never spans segments, so it must fit in one
            raise KafkaError(f"batch of {h.size} bytes exceeds the segment size {segment_bytes} of "
                             f"{topic_partition}", ErrorCode.record_list_too_large)
        if h.is_control:
            raise KafkaError("clients may not write control batches", ErrorCode.invalid_record)
        if h.last_offset_delta != h.records_count - 1:
            raise RecordValidationError(
                f"inconsistent batch offset range [0, {h.last_offset_delta}] and count of records "
                f"{h.records_count}", ErrorCode.invalid_record)
        out.append((h, validate_batch(h, records, policy, compacted=compacted, topic_partition=topic_partition,
                                      first_index=index)))
        index += h.records_count
    return out


def stored_timestamps(h: BatchHeader, max_timestamp: int, log_append: bool, now_ms: int) -> tuple[int, int | None]:
    """The batch's max timestamp as stored, and the value to rewrite its header with (None: keep
    it): LogAppendTime stamps now; a producer's wrong max_timestamp is replaced by the records'
    own maximum, as Kafka's in-place validation does."""
    if log_append:
        return now_ms, None
    return max_timestamp, (None if max_timestamp == h.max_timestamp else max_timestamp)


def log_append_time(config: TopicConfig) -> bool:
    """True if the broker stamps batches (``message.timestamp.type=LogAppendTime``)."""
    return append_rules(config).log_append_time


def check_producers(tp: TopicPartition, state: ProducerStateManager, headers: list[BatchHeader]) -> BatchMeta | None:
    """Check the batches of idempotent or transactional producers against ``state`` (which
    this does not change); returns the original batch if the request is a retry of one."""
    for h in headers:
        if h.producer_id < 0:
            continue
        if len(headers) > 1:
            raise KafkaError("an idempotent or transactional produce must hold one batch per partition",
                             ErrorCode.invalid_record)
        dup = state.check(h)
        if dup is not None:
            log.info("%s: producer %d resent sequences %d-%d, already at offsets %d-%d", tp, h.producer_id,
                     dup.first_seq, dup.last_seq, dup.first_offset, dup.last_offset)
            return dup
    return None


def marker_batch(producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int, base_offset: int,
                 now_ms: int) -> bytes:
    """The control batch ending ``producer_id``'s transaction, at ``base_offset``."""
    return build_batch([(control_key(commit), control_value(coordinator_epoch))], base_offset=base_offset,
                       timestamp=now_ms, producer_id=producer_id, producer_epoch=producer_epoch,
                       transactional=True, control=True, partition_leader_epoch=LEADER_EPOCH)


def producer_infos(state: ProducerStateManager) -> list[ProducerInfo]:
    """Every producer ``state`` knows, as DescribeProducers answers them."""
    return [ProducerInfo(producer_id=e.producer_id, producer_epoch=e.epoch, last_sequence=e.last_seq,
                         last_timestamp=e.last_timestamp, coordinator_epoch=e.coordinator_epoch,
                         current_txn_start_offset=e.txn_first_offset)
            for e in state.producers.values()]


# offsets -----------------------------------------------------------------------------------

def new_log_start_offset(tp: TopicPartition, offset: int, log_start_offset: int, high_watermark: int) -> int:
    """DeleteRecords: the log start offset after deleting before ``offset`` (-1: the high
    watermark); OFFSET_OUT_OF_RANGE beyond the high watermark. It never moves back."""
    if offset == -1:
        offset = high_watermark
    if offset < 0 or offset > high_watermark:
        raise KafkaError(f"cannot delete records before {offset}: {tp} has offsets up to "
                         f"the high watermark {high_watermark}", ErrorCode.offset_out_of_range)
    return max(log_start_offset, offset)


class DurableWaiters:
    """Callbacks waiting for the high watermark to reach an offset, each called at once as soon
    as it does (the acks=-1 produce path: no future, no extra turn of the loop), whatever order
    they came in; a future is one such callback. Used on the event loop only."""

    def __init__(self) -> None:
        self._waiters: list[tuple[int, int, DurableCallback]] = []
        self._order = itertools.count()

    def wait_for(self, offset: int, high_watermark: int) -> asyncio.Future[None] | None:
        """A future resolved once the high watermark reaches ``offset`` (None if it has)."""
        if offset <= high_watermark:
            return None
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.call_when(offset, high_watermark, functools.partial(_settle, fut))
        return fut

    def call_when(self, offset: int, high_watermark: int, callback: DurableCallback) -> bool:
        """Call ``callback(None)`` once the high watermark reaches ``offset``, or
        ``callback(error)`` if the log fails first; False (and no call) if it has reached it."""
        if offset <= high_watermark:
            return False
        heapq.heappush(self._waiters, (offset, next(self._order), callback))
        return True

    def advance(self, high_watermark: int) -> None:
        while self._waiters and self._waiters[0][0] <= high_watermark:
            _tell(heapq.heappop(self._waiters)[2], None)

    def fail(self, error: Exception) -> None:
        waiters, self._waiters = self._waiters, []
        for _, _, callback in waiters:
            _tell(callback, error)


def _settle(fut: asyncio.Future[None], error: Exception | None) -> None:
    if fut.done():  # cancelled: its waiter went away
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(error)


def _tell(callback: DurableCallback, error: Exception | None) -> None:
    try:
        callback(error)
    except Exception:  # one waiter's bug must not keep the others waiting
        log.exception("a durability callback failed")


# timestamps ----------------------------------------------------------------------------------

def first_record_at(batch: bytes, timestamp: int, log_start_offset: int) -> OffsetAndTimestamp | None:
    """The first record of ``batch`` stamped ``timestamp`` or later, at or after the log start."""
    for r in decode_records(batch):
        if r.timestamp >= timestamp and r.offset >= log_start_offset:
            return OffsetAndTimestamp(offset=r.offset, timestamp=r.timestamp)
    return None


def record_of_max_timestamp(batch: bytes, h: BatchHeader) -> OffsetAndTimestamp:
    """The first record of ``batch`` (header ``h``) stamped with the batch's max timestamp."""
    for r in decode_records(batch):
        if r.timestamp == h.max_timestamp:
            return OffsetAndTimestamp(offset=r.offset, timestamp=h.max_timestamp)
    return OffsetAndTimestamp(offset=h.last_offset, timestamp=h.max_timestamp)
