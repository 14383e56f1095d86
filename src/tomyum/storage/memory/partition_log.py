"""MemoryPartitionLog: one partition's batches in a list, as the log would hold them.

Invariants: ``batches`` are sorted by base offset and dense (each starts where the one before
ends), the first holds ``log_start_offset`` unless the log is empty;
``log_start_offset <= high_watermark <= log_end_offset``. Batches are stored as written to a
log: the client's bytes with the base offset and leader epoch patched (and, for LogAppendTime
topics, the broker's timestamp), so a read answers exactly what the local engine would.
Used on the event loop only.
"""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass

from tomyum.config import TopicConfig
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.records import BatchHeader, parse_header, patch_header
from tomyum.storage.engine import AppendResult, DurableCallback, OffsetAndTimestamp, TopicPartition
from tomyum.storage.log_rules import (
    LEADER_EPOCH,
    DurableWaiters,
    check_producers,
    first_record_at,
    log_append_time,
    marker_batch,
    new_log_start_offset,
    record_of_max_timestamp,
    stored_timestamps,
    validate_batches,
)
from tomyum.storage.producer_state import AbortedTxn, ProducerStateManager


@dataclass(frozen=True, slots=True)
class StoredBatch:
    header: BatchHeader
    data: bytes


class MemoryPartitionLog:
    def __init__(self, tp: TopicPartition, config: TopicConfig) -> None:
        self.tp = tp
        self.config = config
        self.batches: list[StoredBatch] = []
        #: base offset of each batch, for bisect
        self._bases: list[int] = []
        self.log_start_offset = 0
        self.log_end_offset = 0
        self.high_watermark = 0
        self.producer_state = ProducerStateManager()
        self._waiters = DurableWaiters()

    # appending ---------------------------------------------------------------------------

    def append(self, records: memoryview, now_ms: int) -> AppendResult:
        """Validate every batch (all or nothing), then keep them with offsets from the log end."""
        checked = validate_batches(records, self.config, now_ms, self.tp)
        log_append = log_append_time(self.config)
        state = self.producer_state
        dup = check_producers(self.tp, state, [h for h, _ in checked])
        if dup is not None:
            return AppendResult(base_offset=dup.first_offset, last_offset=dup.last_offset,
                                log_append_time=-1, log_start_offset=self.log_start_offset)
        first_base = self.log_end_offset
        for h, records_max_timestamp in checked:
            base = self.log_end_offset
            _, rewrite = stored_timestamps(h, records_max_timestamp, log_append, now_ms)
            prefix = patch_header(h, records, base, LEADER_EPOCH, now_ms if log_append else None, rewrite)
            self._keep(prefix + bytes(records[h.position + len(prefix) : h.end]))
            if h.producer_id >= 0:
                state.update(h, base, now_ms)
        return AppendResult(base_offset=first_base, last_offset=self.log_end_offset - 1,
                            log_append_time=now_ms if log_append else -1,
                            log_start_offset=self.log_start_offset)

    def append_marker(self, producer_id: int, epoch: int, commit: bool, coordinator_epoch: int,
                      now_ms: int) -> AppendResult:
        self.producer_state.check_marker(producer_id, epoch, coordinator_epoch)
        base = self.log_end_offset
        self._keep(marker_batch(producer_id, epoch, commit, coordinator_epoch, base, now_ms))
        self.producer_state.complete(producer_id, epoch, commit, base, coordinator_epoch, now_ms,
                                     self.high_watermark)
        return AppendResult(base_offset=base, last_offset=base, log_append_time=-1,
                            log_start_offset=self.log_start_offset)

    def _keep(self, data: bytes) -> None:
        h = parse_header(data)
        self.batches.append(StoredBatch(h, data))
        self._bases.append(h.base_offset)
        self.log_end_offset = h.next_offset

    # durability ----------------------------------------------------------------------------

    def mark_durable(self) -> bool:
        """The whole log is now "durable"; True if the high watermark moved."""
        if self.high_watermark == self.log_end_offset:
            return False
        self.high_watermark = self.log_end_offset
        self._waiters.advance(self.high_watermark)
        return True

    def durable_future(self, offset: int) -> asyncio.Future[None] | None:
        return self._waiters.wait_for(offset, self.high_watermark)

    def call_when_durable(self, offset: int, callback: DurableCallback) -> bool:
        return self._waiters.call_when(offset, self.high_watermark, callback)

    def fail_waiters(self, error: Exception) -> None:
        self._waiters.fail(error)

    # transactions --------------------------------------------------------------------------

    @property
    def last_stable_offset(self) -> int:
        return self.producer_state.last_stable_offset(self.high_watermark)

    def aborted_transactions(self, start: int, end: int) -> list[AbortedTxn]:
        return self.producer_state.aborted_between(start, end)

    # reading -------------------------------------------------------------------------------

    def _index_of(self, offset: int) -> int:
        """The index of the batch holding ``offset`` (offsets are dense)."""
        return max(0, bisect.bisect_right(self._bases, offset) - 1)

    def read(self, offset: int, max_bytes: int, *, min_one: bool = True, upper: int | None = None,
             zero_copy_min: int | None = None) -> bytes:
        """Batches from the one holding ``offset`` up to ``max_bytes`` (with ``min_one``, the
        first whole), never at or past the high watermark (or ``upper`` if lower); as in Kafka,
        the last batch may be cut short by ``max_bytes``. Always bytes (``zero_copy_min`` is
        ignored: there is no file to send from)."""
        return self.read_counted(offset, max_bytes, min_one=min_one, upper=upper)[0]

    def read_counted(self, offset: int, max_bytes: int, *, min_one: bool = True, upper: int | None = None,
                     zero_copy_min: int | None = None) -> tuple[bytes, int]:
        """:meth:`read`, and the offsets from ``offset`` to the end of its last whole batch."""
        if offset < self.log_start_offset or offset > self.log_end_offset:
            raise KafkaError(
                f"offset {offset} is outside [{self.log_start_offset}, {self.log_end_offset}] of {self.tp}",
                ErrorCode.offset_out_of_range)
        limit = self.high_watermark if upper is None else min(upper, self.high_watermark)
        if offset >= limit:
            return b"", 0
        parts: list[bytes] = []
        cap = -1
        total = 0
        next_offset = offset
        for stored in self.batches[self._index_of(offset):]:
            if stored.header.base_offset >= limit:
                break
            if cap < 0:
                cap = max(max_bytes, stored.header.size) if min_one else max_bytes
            if total >= cap:
                break
            parts.append(stored.data)
            total += len(stored.data)
            if total <= cap:
                next_offset = stored.header.next_offset
        return b"".join(parts)[:max(cap, 0)], max(next_offset - offset, 0)

    def offset_for_timestamp(self, timestamp: int) -> OffsetAndTimestamp | None:
        """The first record stamped ``timestamp`` or later, below the high watermark."""
        for stored in self.batches:
            h = stored.header
            if h.base_offset >= self.high_watermark:
                break
            if h.max_timestamp >= timestamp:
                found = first_record_at(stored.data, timestamp, self.log_start_offset)
                if found is not None:
                    return found
        return None

    def offset_of_max_timestamp(self) -> OffsetAndTimestamp | None:
        best: StoredBatch | None = None
        for stored in self.batches:
            if stored.header.base_offset >= self.high_watermark:
                break
            if stored.header.last_offset < self.log_start_offset:
                continue
            if best is None or stored.header.max_timestamp > best.header.max_timestamp:
                best = stored
        return None if best is None else record_of_max_timestamp(best.data, best.header)

    # the log start -------------------------------------------------------------------------

    def delete_records(self, offset: int) -> int:
        """DeleteRecords: move the log start offset to ``offset`` (-1: the high watermark) and
        drop the batches wholly below it; returns the new log start offset."""
        self.log_start_offset = new_log_start_offset(self.tp, offset, self.log_start_offset, self.high_watermark)
        below = len(self.batches) if self.log_start_offset >= self.log_end_offset else self._index_of(
            self.log_start_offset)
        self._drop(below)
        return self.log_start_offset

    def enforce_retention(self, now_ms: int) -> int:
        """Drop the oldest batches that retention allows now (Kafka's rules, with each batch as
        a segment: ``cleanup.policy`` ``delete``, older than ``retention.ms`` by its max
        timestamp or beyond ``retention.bytes`` from the newest; only below the high
        watermark). Returns how many went."""
        cfg = self.config
        if "delete" not in cfg["cleanup.policy"]:
            return 0
        retention_ms, retention_bytes = cfg["retention.ms"], cfg["retention.bytes"]
        total = sum(len(b.data) for b in self.batches)
        n = 0
        for stored in self.batches:
            h = stored.header
            if h.next_offset > self.high_watermark:
                break
            expired = retention_ms >= 0 and now_ms - h.max_timestamp > retention_ms
            oversize = retention_bytes >= 0 and total - len(stored.data) >= retention_bytes
            if not (expired or oversize):
                break
            total -= len(stored.data)
            n += 1
        if n:
            self.log_start_offset = max(self.log_start_offset, self.batches[n - 1].header.next_offset)
            self._drop(n)
        return n

    def _drop(self, n: int) -> None:
        """Forget the first ``n`` batches (all below the log start offset)."""
        del self.batches[:n]
        del self._bases[:n]
        self.producer_state.truncate_head(self.log_start_offset)
