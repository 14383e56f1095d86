"""PartitionLog: the segments of one partition, its offsets and its durability waiters.

Invariants: segments are sorted by base offset and contiguous in offsets (gaps only where
compaction removed records); ``log_start_offset <= high_watermark <= log_end_offset``;
``high_watermark`` is the offset after the last batch known to be on stable storage.
Appends happen only on the event loop; the group commit thread only fdatasyncs.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from pathlib import Path

from tomyum.clock import SYSTEM_CLOCK, Clock
from tomyum.config import TopicConfig
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.records import BatchHeader, control_marker, parse_header, patch_header
from tomyum.storage.engine import AppendResult, DurableCallback, OffsetAndTimestamp, TopicPartition
from tomyum.storage.local.checkpoint import write_atomically
from tomyum.storage.local.index import IndexFile
from tomyum.storage.local.producer_files import (
    append_txn_index,
    read_txn_index,
    snapshot_offsets,
    snapshot_path,
    write_txn_index,
)
from tomyum.storage.local.segment import FileSlice, LogSegment
from tomyum.storage.log_rules import (
    LEADER_EPOCH,
    DurableWaiters,
    append_rules,
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

log = logging.getLogger(__name__)

#: producer snapshots kept per partition (older ones are deleted when a new one is written)
SNAPSHOTS_KEPT = 2


class PartitionLog:
    def __init__(self, tp: TopicPartition, directory: Path, config: TopicConfig,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.tp = tp
        self.directory = directory
        self.config = config
        self.clock = clock
        self.segments: list[LogSegment] = []
        self.log_start_offset = 0
        self.high_watermark = 0
        #: segments written since the last group commit (the active one, and any just rolled)
        self.unsynced: dict[LogSegment, None] = {}
        self.dir_unsynced = False
        self.messages_since_flush = 0
        self._durable_waiters = DurableWaiters()
        #: the cleaner is rewriting this partition's sealed segments: retention waits
        self.cleaning = False
        self.producer_state = ProducerStateManager()
        #: the first offset a damaged segment cannot serve (nothing at or past it is served)
        self.corrupt_at: int | None = None
        #: .txnindex files written since the last snapshot (synced before the next one)
        self._txn_index_unsynced: set[Path] = set()

    # opening -----------------------------------------------------------------------------

    def open(self, recovery_point: int | None, log_start_offset: int | None) -> None:
        """Open every segment; recover (scan, truncate torn tails, rebuild indexes) those at
        or after the recovery point, and any whose index files are missing or invalid."""
        self.directory.mkdir(parents=True, exist_ok=True)
        bases = sorted(int(p.stem) for p in self.directory.glob("*.log") if p.stem.isdigit())
        max_batch = 2**31 - 1
        interval = self.config["index.interval.bytes"]
        for i, base in enumerate(bases):
            seg = LogSegment(self.directory, base, interval, create=False)
            is_last = i == len(bases) - 1
            next_base = bases[i + 1] if not is_last else None
            must_scan = is_last or recovery_point is None or (next_base is not None and next_base > recovery_point)
            self.segments.append(seg)
            if must_scan or not seg.load():
                invalid = seg.recover(max_batch, truncate=is_last)
                if invalid and is_last:
                    log.warning("%s: truncated %d bytes of torn or corrupt data at the end of %s",
                                self.tp, invalid, seg.log_path.name)
                elif invalid and recovery_point is not None and seg.next_offset >= recovery_point:
                    self._drop_torn_tail(seg, bases[i + 1 :])
                    break
                elif invalid:
                    self.corrupt_at = seg.next_offset
                    log.error("%s: %s is corrupt after offset %d (byte %d) although that data was durable: the "
                              "partition serves nothing from there and refuses writes; its files are kept for "
                              "you to restore", self.tp, seg.log_path, seg.next_offset, seg.size)
        if not self.segments:
            self.segments.append(LogSegment(self.directory, 0, interval, create=True))
            self.dir_unsynced = True
        first = self.segments[0].base_offset
        self.log_start_offset = max(first, min(log_start_offset or first, self.log_end_offset))
        self.high_watermark = self.log_end_offset
        self.unsynced = dict.fromkeys(s for s in self.segments if s.size)
        self._load_producer_state()

    def _load_producer_state(self) -> None:
        """The newest valid snapshot at or below the log end, then every batch after it."""
        state = self.producer_state
        start = self.log_start_offset
        for offset in reversed(snapshot_offsets(self.directory)):
            path = snapshot_path(self.directory, offset)
            if offset > self.log_end_offset:
                path.unlink(missing_ok=True)  # ahead of a log that lost its tail
                continue
            try:
                state.load_snapshot(path.read_bytes())
            except (OSError, ValueError) as e:
                log.warning("%s: ignoring producer snapshot %s: %s", self.tp, path.name, e)
                continue
            start = max(offset, start)
            break
        for seg in self.segments:
            entries = read_txn_index(seg.txn_index_path)
            kept = [a for a in entries if a.last_offset < start]
            if len(kept) != len(entries):
                write_txn_index(seg.txn_index_path, kept)  # replay below writes the rest again
            state.aborted.extend(kept)
        state.aborted.sort(key=lambda a: a.last_offset)
        state.truncate_head(self.log_start_offset)
        replayed = 0
        for seg in self.segments[self.segment_index_for(start):]:
            first = seg.find(start)
            if first is None:
                continue
            for h in seg.headers(first.position):
                if h.producer_id < 0 or h.base_offset < start:
                    continue
                replayed += 1
                if h.is_control:
                    marker = control_marker(seg.read(h.position, h.size))
                    if marker is not None:
                        self._complete(seg, h.producer_id, h.producer_epoch, marker[0], h.base_offset,
                                       marker[1], h.max_timestamp)
                else:
                    state.update(h, h.base_offset, h.max_timestamp)
        if replayed:
            log.info("%s: producer state rebuilt from offset %d (%d batches replayed)", self.tp, start, replayed)

    def _drop_torn_tail(self, seg: LogSegment, later: list[int]) -> None:
        """A crash tore ``seg`` beyond the recovery point, so nothing after it was ever durable:
        cut it there and remove the segments after it, as Kafka's recovery does."""
        seg.recover(2**31 - 1, truncate=True)
        for base in later:
            doomed = LogSegment(self.directory, base, self.config["index.interval.bytes"], create=False)
            doomed.retire()
        log.warning("%s: %s was torn at offset %d by a crash (beyond the recovery point): truncated there, "
                    "%d later segment(s) of never-acknowledged data removed", self.tp, seg.log_path.name,
                    seg.next_offset, len(later))

    # offsets -----------------------------------------------------------------------------

    @property
    def active(self) -> LogSegment:
        return self.segments[-1]

    @property
    def log_end_offset(self) -> int:
        return self.active.next_offset

    def size_in_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    # appending ---------------------------------------------------------------------------

    def append(self, records: memoryview, now_ms: int) -> AppendResult:
        """Validate and write every batch of a produce request's records for this partition.

        All-or-nothing for validation: a bad batch rejects the whole request before anything
        is written.
        """
        if self.corrupt_at is not None:
            raise KafkaError(f"{self.tp} is offline: its log is corrupt at offset {self.corrupt_at}",
                             ErrorCode.kafka_storage_error)
        checked = validate_batches(records, self.config, now_ms, self.tp)
        log_append = log_append_time(self.config)
        state = self.producer_state
        dup = check_producers(self.tp, state, [h for h, _ in checked])
        if dup is not None:
            return AppendResult(base_offset=dup.first_offset, last_offset=dup.last_offset,
                                log_append_time=-1, log_start_offset=self.log_start_offset)
        base = self.log_end_offset
        first_base = base
        for h, records_max_timestamp in checked:
            max_timestamp, rewrite = stored_timestamps(h, records_max_timestamp, log_append, now_ms)
            self.maybe_roll(h.size, now_ms, max_timestamp)
            prefix = patch_header(h, records, base, LEADER_EPOCH, now_ms if log_append else None, rewrite)
            parts: list[bytes | memoryview] = [prefix, records[h.position + len(prefix) : h.end]]
            self.active.append(parts, h, base, max_timestamp)
            self.unsynced[self.active] = None
            if h.producer_id >= 0:
                state.update(h, base, now_ms)
            base += h.last_offset_delta + 1
        self.messages_since_flush += base - first_base
        return AppendResult(base_offset=first_base, last_offset=base - 1,
                            log_append_time=now_ms if log_append else -1,
                            log_start_offset=self.log_start_offset)

    def maybe_roll(self, incoming: int, now_ms: int, incoming_timestamp: int) -> None:
        """Roll before a batch of ``incoming`` bytes would overfill the active segment, or when
        it is ``segment.ms`` younger than the segment's first batch (Kafka's rule: record time
        against record time, so records stamped long ago do not each get a segment; a segment
        whose first batch has no timestamp ages by the wall clock from its creation)."""
        seg = self.active
        if seg.size == 0:
            return
        rules = append_rules(self.config)
        too_big = seg.size + incoming > rules.segment_bytes
        segment_ms = rules.roll_ms
        if seg.first_batch_timestamp >= 0:
            waited = incoming_timestamp - seg.first_batch_timestamp
        else:
            waited = now_ms - seg.created_ms
        if too_big or waited >= segment_ms:
            self.roll()

    def roll(self) -> LogSegment:
        old = self.active
        old.seal()
        self.write_snapshot(durable=True)
        seg = LogSegment(self.directory, self.log_end_offset, self.config["index.interval.bytes"], create=True)
        seg.created_ms = self.clock.time_ms()
        self.segments.append(seg)
        self.dir_unsynced = True
        log.debug("%s: rolled new segment at offset %d", self.tp, seg.base_offset)
        return seg

    # transactions --------------------------------------------------------------------------

    def append_marker(self, producer_id: int, epoch: int, commit: bool, coordinator_epoch: int,
                      now_ms: int) -> AppendResult:
        """Write a transaction marker (a control batch) that commits or aborts
        ``producer_id``'s transaction in this partition."""
        self.producer_state.check_marker(producer_id, epoch, coordinator_epoch)
        base = self.log_end_offset
        batch = marker_batch(producer_id, epoch, commit, coordinator_epoch, base, now_ms)
        h = parse_header(batch)
        self.maybe_roll(h.size, now_ms, now_ms)
        seg = self.active
        seg.append([batch], h, base, now_ms)
        self.unsynced[seg] = None
        self.messages_since_flush += 1
        self._complete(seg, producer_id, epoch, commit, base, coordinator_epoch, now_ms)
        return AppendResult(base_offset=base, last_offset=base, log_append_time=-1,
                            log_start_offset=self.log_start_offset)

    def _complete(self, seg: LogSegment, producer_id: int, epoch: int, commit: bool, offset: int,
                  coordinator_epoch: int, timestamp: int) -> None:
        aborted = self.producer_state.complete(producer_id, epoch, commit, offset, coordinator_epoch,
                                               timestamp, self.high_watermark)
        if aborted is not None:
            append_txn_index(seg.txn_index_path, aborted)
            self._txn_index_unsynced.add(seg.txn_index_path)

    @property
    def last_stable_offset(self) -> int:
        return self.producer_state.last_stable_offset(self.high_watermark)

    def aborted_transactions(self, start: int, end: int) -> list[AbortedTxn]:
        return self.producer_state.aborted_between(start, end)

    def write_snapshot(self, *, durable: bool) -> None:
        """Save the producer state as of the log end (``durable``: fsynced, with the .txnindex
        files it relies on); keep the newest few snapshots."""
        for path in self._txn_index_unsynced:
            if durable and path.exists():
                _fsync_path(path)
        self._txn_index_unsynced.clear()
        path = snapshot_path(self.directory, self.log_end_offset)
        data = self.producer_state.snapshot_bytes()
        try:
            if durable:
                write_atomically(path, data)
            elif self.log_end_offset == 0 or _read_or_none(path) == data:
                # nothing appended yet (Kafka takes no snapshot then either: its state is empty
                # and a start with no snapshot replays nothing), or it holds this state already
                return
            else:
                tmp = path.with_suffix(".snapshot.tmp")
                tmp.write_bytes(data)
                tmp.replace(path)
            for old in snapshot_offsets(self.directory)[:-SNAPSHOTS_KEPT]:
                snapshot_path(self.directory, old).unlink(missing_ok=True)
        except OSError as e:
            log.warning("%s: cannot write producer snapshot %s: %s", self.tp, path.name, e)

    def expire_producers(self, now_ms: int, max_age_ms: int) -> None:
        gone = self.producer_state.expire(now_ms, max_age_ms)
        if gone:
            log.info("%s: expired %d idle producer(s)", self.tp, len(gone))

    # retention ---------------------------------------------------------------------------

    def segment_end(self, i: int) -> int:
        """The offset after segment ``i`` (the next segment's base, or the log end)."""
        return self.segments[i + 1].base_offset if i + 1 < len(self.segments) else self.log_end_offset

    def expired_segments(self, now_ms: int) -> list[LogSegment]:
        """The oldest segments that retention deletes now, Kafka's rules: wholly below the log
        start offset (DeleteRecords); and, with ``cleanup.policy`` ``delete``, older than
        ``retention.ms`` by their largest timestamp or beyond ``retention.bytes`` from the
        newest. Only whole segments below the high watermark; never an empty active segment."""
        cfg = self.config
        delete = "delete" in cfg["cleanup.policy"]
        retention_ms, retention_bytes = cfg["retention.ms"], cfg["retention.bytes"]
        total = self.size_in_bytes()
        out: list[LogSegment] = []
        for i, seg in enumerate(self.segments):
            end = self.segment_end(i)
            if end > self.high_watermark or (seg is self.active and seg.size == 0):
                break
            below_start = end <= self.log_start_offset
            expired = delete and retention_ms >= 0 and now_ms - seg.largest_timestamp() > retention_ms
            oversize = delete and retention_bytes >= 0 and total - seg.size >= retention_bytes
            if not (below_start or expired or oversize):
                break
            out.append(seg)
            total -= seg.size
        return out

    def delete_segments(self, doomed: list[LogSegment], why: str) -> None:
        """Remove ``doomed`` (a prefix of the segments) and advance the log start offset.
        Deleting the active segment rolls a new, empty one first, as Kafka does."""
        if not doomed:
            return
        if doomed[-1] is self.active:
            self.roll()
        for seg in doomed:
            self.unsynced.pop(seg, None)
            seg.retire()
        del self.segments[: len(doomed)]
        self.log_start_offset = max(self.log_start_offset, self.segments[0].base_offset)
        self.producer_state.truncate_head(self.log_start_offset)
        self.dir_unsynced = True
        log.info("%s: deleted %d segment(s) (%s); log start offset now %d",
                 self.tp, len(doomed), why, self.log_start_offset)

    def delete_records(self, offset: int) -> int:
        """DeleteRecords: move the log start offset to ``offset`` (-1: the high watermark).
        Returns the new log start offset (the low watermark)."""
        self.log_start_offset = new_log_start_offset(self.tp, offset, self.log_start_offset, self.high_watermark)
        return self.log_start_offset

    # durability ----------------------------------------------------------------------------

    def snapshot_unsynced(self) -> tuple[int, list[tuple[LogSegment, int]], bool]:
        """What a group commit must sync for this partition: (end offset, [(segment, size)], dir)."""
        segs = [(s, s.size) for s in self.unsynced]
        self.unsynced = {}
        dir_sync, self.dir_unsynced = self.dir_unsynced, False
        return self.log_end_offset, segs, dir_sync

    def mark_durable(self, end_offset: int, segs: list[tuple[LogSegment, int]]) -> bool:
        """Record that a group commit covered these bytes; True if the high watermark moved."""
        for seg, size in segs:
            if size > seg.durable_size:
                seg.durable_size = min(size, seg.size)
        self.messages_since_flush = 0
        if end_offset <= self.high_watermark:
            return False
        self.high_watermark = min(end_offset, self.log_end_offset)
        self._durable_waiters.advance(self.high_watermark)
        return True

    def durable_future(self, offset: int) -> asyncio.Future[None] | None:
        """A future resolved once ``high_watermark >= offset`` (None if already so)."""
        return self._durable_waiters.wait_for(offset, self.high_watermark)

    def call_when_durable(self, offset: int, callback: DurableCallback) -> bool:
        """``callback`` once ``high_watermark >= offset`` (False if already so)."""
        return self._durable_waiters.call_when(offset, self.high_watermark, callback)

    def fail_waiters(self, error: Exception) -> None:
        self._durable_waiters.fail(error)

    # reading -------------------------------------------------------------------------------

    def segment_index_for(self, offset: int) -> int:
        bases = [s.base_offset for s in self.segments]
        return max(0, bisect.bisect_right(bases, offset) - 1)

    def read(self, offset: int, max_bytes: int, *, min_one: bool = True, upper: int | None = None,
             zero_copy_min: int | None = None) -> bytes | FileSlice:
        """Batches from the one containing ``offset``, up to ``max_bytes`` (with ``min_one``, at
        least one whole batch), never past the high watermark (or ``upper`` if lower).
        As in Kafka, the last batch may be cut short by ``max_bytes``. With ``zero_copy_min``,
        that many bytes or more come back as a FileSlice (to be sent with sendfile)."""
        return self.read_counted(offset, max_bytes, min_one=min_one, upper=upper, zero_copy_min=zero_copy_min)[0]

    def read_counted(self, offset: int, max_bytes: int, *, min_one: bool = True, upper: int | None = None,
                     zero_copy_min: int | None = None) -> tuple[bytes | FileSlice, int]:
        """:meth:`read`, and the offsets from ``offset`` to the end of its last whole batch (found
        from the sparse index's last entry in the range: a few KiB of headers, whatever the size)."""
        if offset == self.high_watermark and offset >= self.log_start_offset and self.corrupt_at is None:
            return b"", 0  # caught up: most partitions of a wide fetch (the high watermark is in the log)
        if offset < self.log_start_offset or offset > self.log_end_offset:
            raise KafkaError(
                f"offset {offset} is outside [{self.log_start_offset}, {self.log_end_offset}] of {self.tp}",
                ErrorCode.offset_out_of_range)
        limit = self.high_watermark if upper is None else min(upper, self.high_watermark)
        if self.corrupt_at is not None:
            if offset >= self.corrupt_at:
                raise KafkaError(f"{self.tp}: the log is corrupt at offset {self.corrupt_at}; nothing from there "
                                 "is served", ErrorCode.kafka_storage_error)
            limit = min(limit, self.corrupt_at)
        if offset >= limit:
            return b"", 0
        for seg in self.segments[self.segment_index_for(offset):]:
            end = seg.durable_size
            h = seg.find(offset, end)
            if h is None:
                continue
            if h.base_offset >= limit:
                return b"", 0
            if limit < self.high_watermark:  # stop at the last stable offset (a batch boundary)
                stop = seg.find(limit, end)
                if stop is not None and stop.base_offset >= limit:
                    end = stop.position
            size = min(end - h.position, max(max_bytes, h.size) if min_one else max_bytes)
            if size <= 0:
                return b"", 0
            good = seg.verify(h.position, size)
            if good < size:
                self._found_corruption(seg, h.position, good)
                if good == 0:
                    raise KafkaError(f"{seg.log_path} is corrupt at byte {h.position} (offset {h.base_offset}): "
                                     "nothing from there is served", ErrorCode.kafka_storage_error)
                size = good
            count = max(seg.next_offset_before(h, h.position + size) - offset, 0)
            if zero_copy_min is not None and size >= zero_copy_min:
                return seg.slice(h.position, size), count
            return seg.read(h.position, size), count
        return b"", 0

    def _found_corruption(self, seg: LogSegment, position: int, good: int) -> None:
        """A read found a batch failing its CRC ``good`` bytes after ``position``: from the
        offset after the good batches on, the partition serves nothing and takes no writes."""
        end = seg.base_offset
        for h in seg.headers(0, position + good):
            end = h.next_offset
        if self.corrupt_at is None or end < self.corrupt_at:
            self.corrupt_at = end
            log.error("%s: a batch in %s at byte %d fails its CRC check: the partition serves nothing from offset "
                      "%d and refuses writes; restore the segment, or delete the partition's data from there",
                      self.tp, seg.log_path, position + good, end)

    def offset_for_timestamp(self, timestamp: int) -> OffsetAndTimestamp | None:
        """The first record with timestamp ``>= timestamp`` (below the high watermark)."""
        for seg in self.segments:
            if seg.max_timestamp < timestamp:
                continue
            for h in seg.batches_by_timestamp(timestamp, seg.durable_size):
                if h.base_offset >= self.high_watermark:
                    return None
                if h.last_offset < self.log_start_offset:
                    continue
                found = first_record_at(seg.read(h.position, h.size), timestamp, self.log_start_offset)
                if found is not None:
                    return found
        return None

    def offset_of_max_timestamp(self) -> OffsetAndTimestamp | None:
        best: tuple[int, BatchHeader, LogSegment] | None = None
        for seg in self.segments:
            for h in seg.headers(0, seg.durable_size):
                if h.last_offset < self.log_start_offset:
                    continue
                if best is None or h.max_timestamp > best[0]:
                    best = (h.max_timestamp, h, seg)
        if best is None:
            return None
        _, h, seg = best
        return record_of_max_timestamp(seg.read(h.position, h.size), h)

    # closing ---------------------------------------------------------------------------------

    def close(self, index_files: list[IndexFile] | None = None) -> None:
        """Seal and close every segment and save the producer state. With ``index_files``, the
        index files to write are added to it for the caller to write (a clean stop writes every
        partition's at once) instead of being written here."""
        for seg in self.segments:
            if not seg.closed:
                if index_files is None:
                    seg.seal()
                else:
                    index_files += seg.seal_files()
                seg.close()
        self.write_snapshot(durable=False)

    def close_without_seal(self) -> None:
        for seg in self.segments:
            seg.close()


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _fsync_path(path: Path) -> None:
    import os

    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


