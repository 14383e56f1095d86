"""LogSegment: one ``.log`` file of record batches with its offset and time indexes.

Invariants:
* ``size`` is the byte length of complete batches in the file; bytes past it (a torn
  write) are truncated by :meth:`recover` before the segment is used.
* ``durable_size <= size``: the bytes known to be on stable storage (fdatasync'd).
* batches are stored exactly as received, except base_offset and partition_leader_epoch
  (and, for LogAppendTime topics, the timestamp fields and CRC).

Not thread-safe: used from the event loop, except ``fd`` which the group commit thread
fdatasyncs (the segment stays open until every sync that named it has finished).
"""

from __future__ import annotations

import bisect
import errno
import logging
import mmap
import os
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

from tomyum.errors import StorageError
from tomyum.protocol.records import (
    BATCH_HEADER_SIZE,
    BatchError,
    BatchHeader,
    check_batch,
    complete_length,
    iter_batches,
    parse_header,
)
from tomyum.storage.local.index import IndexFile, OffsetIndex, TimeIndex

log = logging.getLogger(__name__)

#: bytes :meth:`LogSegment.headers` reads at once while batches are small (two index intervals
#: of Kafka's default ``index.interval.bytes``)
HEADERS_READ_AHEAD = 8192
#: read ends a segment remembers (one per consumer reading it, about)
MAX_REMEMBERED_READS = 64


class FileSlice:
    """A range of a segment file that a response sends with ``sendfile`` (zero copy).

    It pins the segment, so its file descriptor stays open — even if retention, the cleaner
    or a topic deletion retires the segment meanwhile — until :meth:`release`, which the
    sender calls once the bytes are out (and which runs on garbage collection otherwise).
    It is also a minimal file object (``fileno``, ``seek``, ``readinto``) for
    ``loop.sendfile`` and its copying fallback.
    """

    __slots__ = ("segment", "position", "size", "_pos", "_release", "__weakref__")

    def __init__(self, segment: LogSegment, position: int, size: int) -> None:
        self.segment, self.position, self.size = segment, position, size
        self._pos = position
        segment.pin()
        self._release = weakref.finalize(self, segment.unpin)

    def __len__(self) -> int:
        return self.size

    def release(self) -> None:
        self._release()

    def read_all(self) -> bytes:
        return self.segment.read(self.position, self.size)

    def fileno(self) -> int:
        return self.segment.fd

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else self._pos + offset
        return self._pos

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = os.pread(self.segment.fd, len(buf), self._pos)
        buf[: len(data)] = data
        self._pos += len(data)
        return len(data)


def segment_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


class LogSegment:
    def __init__(self, directory: Path, base_offset: int, index_interval_bytes: int, *, create: bool) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.index_interval_bytes = index_interval_bytes
        self.log_path = directory / segment_name(base_offset, ".log")
        self.index = OffsetIndex(directory / segment_name(base_offset, ".index"), base_offset)
        self.time_index = TimeIndex(directory / segment_name(base_offset, ".timeindex"), base_offset)
        #: transactions aborted within this segment (see producer_files.py)
        self.txn_index_path = directory / segment_name(base_offset, ".txnindex")
        flags = os.O_RDWR | os.O_CREAT | (os.O_EXCL if create else 0)
        try:
            self.fd = os.open(self.log_path, flags, 0o644)
        except OSError as e:
            raise StorageError(f"cannot open {self.log_path}: {e.strerror}") from e
        self.size = os.fstat(self.fd).st_size
        self.durable_size = self.size if not create else 0
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.bytes_since_index = 0
        self.created_ms = int(time.time() * 1000)
        self.first_batch_timestamp = -1
        self.closed = False
        #: readers (a fetch being sent with sendfile, a group commit) holding the fd open
        self.pins = 0
        #: deleted from the log: the files are gone, the fd closes when the last pin goes
        self.retired = False
        #: the cleaner renamed a new file over this one: our fd reads the old data, and our
        #: indexes must never be written over the new file's (they are rebuilt from it)
        self.replaced = False
        #: byte ranges [start, end) whose batches passed their CRC check since the file was
        #: opened (appends are checked on produce, recovery scans); reads check the rest once
        self._verified: list[list[int]] = []
        #: where the batch starting at an offset sits, for offsets a read ended at: a consumer's
        #: next Fetch starts where its last one ended, and is then one header read away
        #: instead of a walk from the sparse index's entry (a few KiB of headers)
        self._batch_at: dict[int, int] = {}

    # writing ---------------------------------------------------------------------------

    def append(self, parts: list[bytes | memoryview], h: BatchHeader, base_offset: int, max_timestamp: int) -> int:
        """Write one batch (``parts`` joined) at the end; returns its position.

        On an I/O error the file is cut back to where it was and StorageError is raised,
        so nothing partial stays in the log.
        """
        position = self.size
        total = h.size
        try:
            # always at an explicit position: a reopened file's descriptor starts at offset 0
            written = os.pwritev(self.fd, parts, position)
            while written < total:  # short write: finish it
                rest = b"".join(bytes(p) for p in parts)[written:]
                n = os.pwrite(self.fd, rest, position + written)
                if n <= 0:
                    raise OSError(errno.EIO, "short write")
                written += n
        except OSError as e:
            self._undo(position)
            raise StorageError(f"write to {self.log_path} failed: {e.strerror}") from e
        self.size += total
        self._mark_verified(position, position + total)
        self.next_offset = base_offset + h.last_offset_delta + 1
        self._index_batch(position, base_offset + h.last_offset_delta, total, max_timestamp)
        return position

    def _undo(self, position: int) -> None:
        try:
            os.ftruncate(self.fd, position)
        except OSError:
            pass  # the next recovery truncates the torn tail; the batch was not acknowledged

    def _index_batch(self, position: int, last_offset: int, size: int, max_timestamp: int) -> None:
        if self.first_batch_timestamp < 0:
            self.first_batch_timestamp = max_timestamp
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
        if self.bytes_since_index >= self.index_interval_bytes or position == 0:
            self.index.append(last_offset, position)
            self.time_index.append(self.max_timestamp, last_offset)
            self.bytes_since_index = 0
        self.bytes_since_index += size

    # reading ---------------------------------------------------------------------------

    def read(self, position: int, size: int) -> bytes:
        try:
            return os.pread(self.fd, size, position)
        except OSError as e:
            raise StorageError(f"read from {self.log_path} failed: {e.strerror}") from e

    def headers(self, position: int = 0, end: int | None = None) -> Iterator[BatchHeader]:
        """Batch headers from ``position`` (a batch boundary) to ``end`` (default: size).

        Small batches are read many to a ``pread`` (:data:`HEADERS_READ_AHEAD` bytes at a time,
        never past ``end``): a Fetch finds its offset by walking the headers from the sparse
        index's entry, a few KiB of batches, which was a read per batch. After a batch larger
        than that, only the next header is read."""
        end = self.size if end is None else end
        buf, buf_at, ahead = b"", position, HEADERS_READ_AHEAD
        while position + BATCH_HEADER_SIZE <= end:
            at = position - buf_at
            if at + BATCH_HEADER_SIZE > len(buf):
                buf, buf_at, at = self.read(position, min(max(ahead, BATCH_HEADER_SIZE), end - position)), position, 0
                if len(buf) < BATCH_HEADER_SIZE:
                    return
            h = parse_header(buf, at, position=position)
            if h.batch_length <= 0:
                return
            yield h
            position += h.size
            ahead = HEADERS_READ_AHEAD if h.size < HEADERS_READ_AHEAD else BATCH_HEADER_SIZE

    def next_offset_before(self, first: BatchHeader, end: int) -> int:
        """The offset after the last batch that ends at or before byte ``end``, from batch
        ``first`` on (``first.base_offset`` if none does): the headers are walked from the
        sparse index's last entry below ``end``, never more than an index interval of them."""
        i = bisect.bisect_right(self.index.positions, end) - 1
        while True:
            start = self.index.positions[i] if i >= 0 and self.index.positions[i] > first.position else first.position
            next_offset: int | None = None
            next_at = 0
            for h in self.headers(start, end):
                if h.end > end:
                    break
                next_offset, next_at = h.next_offset, h.end
            if next_offset is not None:
                if len(self._batch_at) >= MAX_REMEMBERED_READS:
                    self._batch_at.clear()
                self._batch_at[next_offset] = next_at
                return next_offset
            if start == first.position:
                return first.base_offset
            i -= 1  # the entry's batch is cut by ``end``: the one before it ends where it starts

    def find(self, offset: int, end: int | None = None) -> BatchHeader | None:
        """The first batch whose last offset is ``>= offset``, searching below ``end``."""
        position = self._batch_at.get(offset)
        if position is not None and position + BATCH_HEADER_SIZE <= (self.size if end is None else end):
            h = parse_header(self.read(position, BATCH_HEADER_SIZE), position=position)
            if h.base_offset == offset and h.batch_length > 0:
                return h
        for h in self.headers(self._indexed_position(offset), end):
            if h.last_offset >= offset:
                return h
        return None

    def _indexed_position(self, offset: int) -> int:
        """Where to start looking for ``offset``: the index's entry, checked against the batch
        it points at; an entry that does not match means a damaged index, rebuilt from the log."""
        indexed, position = self.index.lookup(offset)
        if position == 0:
            return 0
        data = self.read(position, BATCH_HEADER_SIZE)
        if len(data) == BATCH_HEADER_SIZE and parse_header(data).last_offset == indexed:
            return position
        log.warning("%s: index entry (offset %d, byte %d) does not match the log: rebuilding the index",
                    self.index.path, indexed, position)
        self.index.clear()
        self.bytes_since_index = 0
        for h in self.headers(0):
            if self.bytes_since_index >= self.index_interval_bytes or h.position == 0:
                self.index.append(h.last_offset, h.position)
                self.bytes_since_index = 0
            self.bytes_since_index += h.size
        return self.index.lookup(offset)[1]

    def batches_by_timestamp(self, timestamp: int, end: int | None = None) -> Iterator[BatchHeader]:
        """In offset order, each batch whose max timestamp is ``>= timestamp``, from where the
        time index says the first may be: the candidates Kafka's ``searchForTimestamp`` opens
        (the first may hold no record both late enough and at or after the log start)."""
        start_offset = self.time_index.lookup(timestamp)
        for h in self.headers(self._indexed_position(start_offset), end):
            if h.max_timestamp >= timestamp:
                yield h

    # verification ---------------------------------------------------------------------

    def _mark_verified(self, start: int, end: int) -> None:
        last = self._verified[-1] if self._verified else None
        if last is not None and last[0] <= start <= last[1]:  # the common case: an append
            last[1] = max(last[1], end)
            return
        merged: list[list[int]] = []
        for a, b in sorted([*self._verified, [start, end]]):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        self._verified = merged

    def _is_verified(self, start: int, end: int) -> bool:
        return any(a <= start and end <= b for a, b in self._verified)

    def verify(self, position: int, size: int) -> int:
        """Check the CRC of every batch in ``[position, position + size)`` not checked yet
        (``position`` is a batch boundary; a batch the range cuts is checked whole). Returns how
        many bytes from ``position`` may be served: ``size``, or up to the first bad batch."""
        end = position + size
        if self._is_verified(position, end):
            return size
        data = self.read(position, size)
        whole = complete_length(data)
        try:
            for _ in iter_batches(data, end=whole):
                pass
        except BatchError as e:
            self._mark_verified(position, position + e.position)
            return e.position
        if whole < len(data):  # the range ends inside a batch: check that batch whole
            tail = position + whole
            h = parse_header(self.read(tail, BATCH_HEADER_SIZE), 0, position=tail)
            batch = self.read(tail, max(h.size, BATCH_HEADER_SIZE))
            try:
                check_batch(batch, 0, len(batch))
            except BatchError:
                self._mark_verified(position, tail)
                return whole
            whole += h.size
        self._mark_verified(position, position + whole)
        return size

    # lifecycle -------------------------------------------------------------------------

    def recover(self, max_batch_bytes: int, *, truncate: bool = True) -> int:
        """Scan every batch (CRC included), rebuild the indexes, cut a torn or corrupt tail
        (``truncate=False``: leave the file as it is, and use only its valid prefix).

        Returns the number of invalid bytes at the end.
        """
        self.index.clear()
        self.time_index.clear()
        self.bytes_since_index = 0
        self.max_timestamp = -1
        self.first_batch_timestamp = -1
        file_size = os.fstat(self.fd).st_size
        valid = 0
        next_offset = self.base_offset
        if file_size:
            with mmap.mmap(self.fd, file_size, access=mmap.ACCESS_READ) as mm:
                view = memoryview(mm)
                try:
                    while valid < file_size:
                        try:
                            h = check_batch(view, valid, file_size)
                        except BatchError:
                            break
                        if h.base_offset < next_offset or h.size > max_batch_bytes:
                            break
                        self._index_batch(valid, h.last_offset, h.size, h.max_timestamp)
                        next_offset = h.next_offset
                        valid += h.size
                finally:
                    view.release()
        truncated = file_size - valid
        if truncated and truncate:
            try:
                os.ftruncate(self.fd, valid)
                os.fsync(self.fd)
            except OSError as e:
                raise StorageError(f"cannot truncate {self.log_path}: {e.strerror}") from e
        self.size = self.durable_size = valid
        self.next_offset = next_offset
        self._verified = [[0, valid]] if valid else []
        return truncated

    def load(self) -> bool:
        """Open a sealed segment from its index files; False if they must be rebuilt."""
        if not self.index.load(self.size):
            return False
        last_offset, position = self.index.lookup(2**62)
        next_offset = self.base_offset
        for h in self.headers(position):
            next_offset = h.next_offset
        if position == 0 and self.size == 0:
            next_offset = self.base_offset
        self.next_offset = next_offset
        if not self.time_index.load(next_offset):
            return False
        self.max_timestamp = self.time_index.max_timestamp
        return True

    def seal(self) -> None:
        """Write the indexes to disk (at roll and at close), ending the time index with the
        segment's largest timestamp as Kafka does, so retention sees it after a restart."""
        if self.replaced:
            return
        self._end_time_index()
        try:
            self.index.write()
            self.time_index.write()
        except OSError as e:
            raise StorageError(f"cannot write indexes of {self.log_path}: {e.strerror}") from e

    def seal_files(self) -> list[IndexFile]:
        """:meth:`seal` for a caller that writes many segments' index files at once (a clean
        stop): the files that differ from what is on disk, with their bytes, for the caller to
        write as :meth:`seal` would (``write_files_atomically``) before the segment is used again."""
        if self.replaced:
            return []
        self._end_time_index()
        return [f for f in (self.index.unwritten(), self.time_index.unwritten()) if f is not None]

    def _end_time_index(self) -> None:
        if self.max_timestamp >= 0 and self.next_offset > self.base_offset:
            self.time_index.append(self.max_timestamp, self.next_offset - 1)

    def truncate_to(self, offset: int) -> None:
        """Remove every batch with base offset ``>= offset`` (batch boundary required)."""
        h = self.find(offset)
        if h is None:
            return
        position = h.position if h.base_offset >= offset else h.end
        os.ftruncate(self.fd, position)
        self._batch_at.clear()
        self.size = position
        self.durable_size = min(self.durable_size, position)
        self._verified = [[a, min(b, position)] for a, b in self._verified if a < position]
        self.index.truncate_to_position(position)
        self.time_index.truncate_to_offset(offset)
        self.next_offset = offset if h.base_offset >= offset else h.next_offset

    def earliest_timestamp(self) -> int:
        """The first batch's largest timestamp (what max.compaction.lag.ms is measured from)."""
        if self.first_batch_timestamp >= 0:
            return self.first_batch_timestamp
        if self.time_index.timestamps:
            return self.time_index.timestamps[0]
        return self.largest_timestamp()

    def largest_timestamp(self) -> int:
        """The largest record timestamp, or the file's modification time if no record has one
        (-1 for an empty segment: nothing in it to keep)."""
        if self.max_timestamp >= 0 or self.size == 0:
            return self.max_timestamp
        try:
            return int(os.fstat(self.fd).st_mtime * 1000)
        except OSError:
            return self.created_ms

    def close(self) -> None:
        """Close the file, or, while a reader holds it, as soon as the last one lets go."""
        if self.pins > 0:
            self.retired = True
            return
        if not self.closed:
            self.closed = True
            os.close(self.fd)

    def slice(self, position: int, size: int) -> FileSlice:
        """``size`` bytes from ``position`` to be sent without copying (see FileSlice)."""
        return FileSlice(self, position, size)

    def pin(self) -> None:
        self.pins += 1

    def unpin(self) -> None:
        self.pins -= 1
        if self.retired and self.pins <= 0:
            self.close()

    def retire(self, *, unlink: bool = True) -> None:
        """Remove the segment from the log: unlink its files now (unless already replaced),
        close the fd once no reader holds it."""
        self.retired = True
        if unlink:
            for path in (self.log_path, self.index.path, self.time_index.path, self.txn_index_path):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
        if self.pins <= 0:
            self.close()

    def __repr__(self) -> str:
        return f"LogSegment({self.log_path}, size={self.size}, next_offset={self.next_offset})"
