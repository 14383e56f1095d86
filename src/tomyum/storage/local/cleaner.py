"""The log cleaner: compaction for topics with ``cleanup.policy`` ``compact`` (or ``compact,delete``).

A partition's log is, for the cleaner, three parts: the *clean* section (already compacted,
from the log start to the first dirty offset, kept in ``cleaner-offset-checkpoint``), the
*dirty* section (written since), and what may not be cleaned yet — the active segment,
anything at or past the high watermark, and segments younger than ``min.compaction.lag.ms``.
A partition is cleaned when its dirty bytes reach ``min.cleanable.dirty.ratio`` of the
cleanable bytes, when its oldest dirty record is older than ``max.compaction.lag.ms``, or
when a tombstone it kept has become older than ``delete.retention.ms`` (KIP-534).

One cleaning, as Kafka does it:

1. scan the batch headers of the whole log: the last batch of every producer (kept, even
   emptied, so producer state survives) and the transactional batches that were aborted;
2. build the offset map over the dirty section: key → offset of its latest record;
3. rewrite every cleanable segment to ``<base>.log.cleaned``, keeping a record only if it is
   the latest for its key; tombstones (null values) already in the clean section are dropped
   once their batch is older than ``delete.retention.ms``; records without a key and aborted
   transactional records are dropped; control batches (transaction markers) stay. A batch
   that loses records is rebuilt with the same codec and the same header fields — base offset,
   last offset delta, producer id, epoch, sequence — so no offset ever changes: consumers see
   gaps, never reordering. fsync every cleaned file;
4. swap, oldest first: the old segment's index files are unlinked, then the cleaned file is
   renamed over the ``.log`` (atomic), the directory fsynced, the indexes rebuilt.

A crash leaves each segment either old or cleaned — both are consistent logs — and at most
some ``.cleaned`` files (deleted on start) and missing indexes (rebuilt on start). Steps 1-4
run in a worker thread on segments the event loop no longer writes; the loop then swaps the
segment objects and advances the checkpoint.
"""

from __future__ import annotations

import logging
import mmap
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tomyum.errors import CorruptRecord
from tomyum.protocol.records import (
    BATCH_HEADER_SIZE,
    BatchHeader,
    control_type,
    iter_raw_records,
    parse_header,
    rebuild_batch,
)
from tomyum.storage.local.checkpoint import fsync_dir
from tomyum.storage.local.partition_log import PartitionLog
from tomyum.storage.local.segment import LogSegment

log = logging.getLogger(__name__)

CLEANED_SUFFIX = ".cleaned"
#: how far one batch may inflate while the cleaner reads it
MAX_INFLATED = 256 * 1024 * 1024


@dataclass(slots=True)
class CleanPlan:
    plog: PartitionLog
    #: the segments to rewrite: the clean and dirty sections, whole segments
    segments: list[LogSegment]
    first_dirty: int
    #: the first offset not cleaned (a segment boundary)
    end: int
    #: every segment and its size when planned (the producer scan reads them all)
    snapshot: list[tuple[LogSegment, int]]
    #: tombstones in batches older than this go
    delete_horizon_ms: int
    delete_retention_ms: int
    dirty_ratio: float
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass(slots=True)
class CleanResult:
    #: (old segment, its replacement, or None if it was removed); empty if nothing changed
    swaps: list[tuple[LogSegment, LogSegment | None]]
    records_read: int = 0
    records_kept: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    #: when the oldest tombstone kept becomes old enough to drop (wall-clock ms), if any
    tombstones_due_ms: int | None = None


def plan_cleaning(plog: PartitionLog, first_dirty: int, now_ms: int, *, force: bool = False) -> CleanPlan | None:
    """What to clean in ``plog`` now, or None if it is not due (``force``: ignore the ratio)."""
    cfg = plog.config
    if "compact" not in cfg["cleanup.policy"] or plog.cleaning:
        return None
    first_dirty = max(first_dirty, plog.log_start_offset)
    min_lag = cfg["min.compaction.lag.ms"]
    cleanable: list[LogSegment] = []
    stable = plog.last_stable_offset  # never into an undecided transaction
    for i, seg in enumerate(plog.segments[:-1]):  # never the active segment
        if plog.segment_end(i) > stable or now_ms - seg.largest_timestamp() < min_lag:
            break
        cleanable.append(seg)
    if not cleanable:
        return None
    end = plog.segment_end(len(cleanable) - 1)
    if end <= first_dirty and not force:
        return None
    total = sum(s.size for s in cleanable)
    dirty_segments = [s for i, s in enumerate(cleanable) if plog.segment_end(i) > first_dirty]
    dirty = sum(s.size for s in dirty_segments)
    ratio = dirty / total if total else 0.0
    oldest_dirty = min((s.earliest_timestamp() for s in dirty_segments), default=now_ms)
    overdue = now_ms - oldest_dirty > cfg["max.compaction.lag.ms"]
    if not (force or overdue or ratio >= cfg["min.cleanable.dirty.ratio"]):
        return None
    return CleanPlan(plog=plog, segments=cleanable, first_dirty=first_dirty, end=end,
                     snapshot=[(s, s.size) for s in plog.segments],
                     delete_horizon_ms=now_ms - cfg["delete.retention.ms"],
                     delete_retention_ms=cfg["delete.retention.ms"], dirty_ratio=ratio)


class _Cleaner:
    """Steps 1-4 for one plan, in a worker thread."""

    def __init__(self, plan: CleanPlan) -> None:
        self.plan = plan
        self.last_of_producer: dict[int, int] = {}
        self.aborted: set[int] = set()
        self.latest: dict[bytes, int] = {}
        self.result = CleanResult(swaps=[])

    def run(self) -> CleanResult:
        self._scan_producers_and_transactions()
        self._build_offset_map()
        outputs = [self._rewrite(seg) for seg in self.plan.segments]
        if self.plan.stop.is_set():
            self._discard(outputs)
            return CleanResult(swaps=[])
        self._swap(outputs)
        return self.result

    # 1. producers and transactions ------------------------------------------------------------

    def _scan_producers_and_transactions(self) -> None:
        open_txn: dict[int, list[int]] = {}
        for seg, size in self.plan.snapshot:
            for batch_at, h in _batches(seg, size):
                if h.producer_id >= 0:
                    self.last_of_producer[h.producer_id] = h.base_offset
                if h.is_control:
                    kind = control_type(batch_at())
                    started = open_txn.pop(h.producer_id, [])
                    if kind == 0:
                        self.aborted.update(started)
                elif h.is_transactional:
                    open_txn.setdefault(h.producer_id, []).append(h.base_offset)

    # 2. offset map ------------------------------------------------------------------------------

    def _build_offset_map(self) -> None:
        first_dirty, latest = self.plan.first_dirty, self.latest
        for seg in self.plan.segments:
            for batch_at, h in _batches(seg, seg.size):
                if h.next_offset <= first_dirty or h.is_control or h.base_offset in self.aborted:
                    continue
                for r in iter_raw_records(batch_at(), MAX_INFLATED):
                    offset = h.base_offset + r.offset_delta
                    if r.key is not None and offset >= first_dirty:
                        latest[r.key] = offset

    # 3. rewrite -----------------------------------------------------------------------------------

    def _rewrite(self, seg: LogSegment) -> tuple[LogSegment, Path | None, bool]:
        """Write the cleaned ``seg``; (seg, cleaned file or None if unchanged, empty)."""
        plan, latest, result = self.plan, self.latest, self.result
        out_path = seg.log_path.with_name(seg.log_path.name + CLEANED_SUFFIX)
        pieces: list[bytes] = []
        changed = False
        for batch_at, h in _batches(seg, seg.size):
            if plan.stop.is_set():
                return seg, None, False
            batch = batch_at()
            result.bytes_before += len(batch)
            if h.is_control:
                pieces.append(batch)
                continue
            kept: list[bytes] = []
            count = 0
            aborted = h.base_offset in self.aborted
            for r in iter_raw_records(batch, MAX_INFLATED):
                count += 1
                offset = h.base_offset + r.offset_delta
                if aborted or r.key is None or latest.get(r.key, -1) > offset:
                    continue
                if r.tombstone:
                    if offset < plan.first_dirty and h.max_timestamp < plan.delete_horizon_ms:
                        continue
                    due = h.max_timestamp + plan.delete_retention_ms + 1
                    if result.tombstones_due_ms is None or due < result.tombstones_due_ms:
                        result.tombstones_due_ms = due
                kept.append(r.raw)
            result.records_read += count
            result.records_kept += len(kept)
            if len(kept) == count:
                pieces.append(batch)
                continue
            changed = True
            if kept or self.last_of_producer.get(h.producer_id) == h.base_offset:
                pieces.append(rebuild_batch(batch, kept))
        if not changed:
            result.bytes_after += sum(len(p) for p in pieces)
            return seg, None, False
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for i in range(0, len(pieces), 512):
                chunk = pieces[i : i + 512]
                data = b"".join(chunk)
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        size = sum(len(p) for p in pieces)
        result.bytes_after += size
        return seg, out_path, size == 0

    def _discard(self, outputs: list[tuple[LogSegment, Path | None, bool]]) -> None:
        for _, path, _ in outputs:
            if path is not None:
                path.unlink(missing_ok=True)

    # 4. swap ------------------------------------------------------------------------------------

    def _swap(self, outputs: list[tuple[LogSegment, Path | None, bool]]) -> None:
        first = self.plan.segments[0]
        replaced: list[LogSegment] = []
        for seg, path, empty in outputs:
            if path is None:
                continue
            seg.replaced = True  # never write its indexes again
            seg.index.path.unlink(missing_ok=True)  # a crash from here rebuilds the indexes
            seg.time_index.path.unlink(missing_ok=True)
            if empty and seg is not first:
                seg.log_path.unlink()
                seg.txn_index_path.unlink(missing_ok=True)
                path.unlink()
                self.result.swaps.append((seg, None))
            else:
                os.replace(path, seg.log_path)
                replaced.append(seg)
        fsync_dir(self.plan.plog.directory)
        for seg in replaced:
            new = LogSegment(seg.directory, seg.base_offset, seg.index_interval_bytes, create=False)
            new.recover(2**31 - 1)
            new.seal()
            self.result.swaps.append((seg, new))


def _batches(seg: LogSegment, size: int) -> Iterator[tuple[Callable[[], bytes], BatchHeader]]:
    """(a function returning the batch's bytes, its header) for each batch in ``seg[:size]``."""
    if size == 0:
        return
    with mmap.mmap(seg.fd, size, access=mmap.ACCESS_READ) as mm:
        pos = 0
        while pos + BATCH_HEADER_SIZE <= size:
            h = parse_header(mm[pos : pos + BATCH_HEADER_SIZE], 0, position=pos)
            if h.batch_length <= 0 or pos + h.size > size:
                raise CorruptRecord(f"{seg.log_path}: bad batch at position {pos}")
            start, end = pos, pos + h.size

            def batch_at(start: int = start, end: int = end) -> bytes:
                return mm[start:end]

            yield batch_at, h
            pos = end


def clean(plan: CleanPlan) -> CleanResult:
    """Run one cleaning (in a worker thread)."""
    return _Cleaner(plan).run()


def remove_leftovers(directory: Path) -> None:
    """Delete ``.cleaned`` files a crash left behind (their segments are intact)."""
    for path in directory.glob("*.log" + CLEANED_SUFFIX):
        log.info("removing %s, left by a cleaning that did not finish", path)
        path.unlink(missing_ok=True)
