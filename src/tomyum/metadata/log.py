"""The metadata log on disk: append-only record batches, fsynced before anyone relies on them.

Layout (see ``FORMAT.md`` beside this file), in ``<data-dir>/__cluster_metadata-0/`` as Kafka
names its metadata log directory::

    00000000000000000000.log                      batches from offset 0
    00000000000000000412.log                      batches from offset 412 (rolled at a snapshot)
    00000000000000000412-0000000000.checkpoint    a snapshot: the image as of offset 412 (exclusive)

Contract:

* :meth:`MetadataLog.append` returns only once the batch is on stable storage (written and
  fdatasynced). If it raises, nothing of the batch remains in the file: a short write is cut
  off again, so the next append never sits behind garbage.
* :meth:`MetadataLog.recover` loads the newest snapshot that reads whole (CRC checked), then the
  batches after it; a torn or corrupt tail is cut off (and logged), so a crash during an
  append loses exactly that unanswered append.
* Snapshots are written to a temporary file, fsynced and renamed; the two newest are kept,
  with the log files needed to replay from the older of them.

Blocking I/O: the caller runs these methods in a worker thread (one at a time). Errors are
:class:`tomyum.errors.StorageError`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tomyum.durable import fsync_dir
from tomyum.errors import CorruptRecord, StorageError
from tomyum.metadata.records import MetadataRecord, MetadataRecordError, decode, encode
from tomyum.protocol.records import build_batch, decode_records, iter_batches

log = logging.getLogger(__name__)

DIR_NAME = "__cluster_metadata-0"
_LOG = re.compile(r"^(\d{20})\.log$")
_SNAPSHOT = re.compile(r"^(\d{20})-(\d{10})\.checkpoint$")


@dataclass(frozen=True, slots=True)
class Recovered:
    #: (offset, record) in order: the newest snapshot's records (offset -1), then the tail's
    records: list[tuple[int, MetadataRecord]]
    next_offset: int
    #: offset the snapshot was taken at (-1: none)
    snapshot_offset: int


def _batches(data: bytes, where: str) -> Iterator[tuple[int, int, list[MetadataRecord]]]:
    """(end position, base offset, records) of each whole batch; raises
    :class:`CorruptRecord` at the first torn or corrupt one."""
    for h in iter_batches(data):
        try:
            records = [decode(r.value or b"") for r in decode_records(data[h.position:h.end])]
        except MetadataRecordError as e:
            raise _Unreadable(f"{where} at position {h.position}: {e}") from None
        yield h.end, h.base_offset, records


class _Unreadable(StorageError):
    """A batch whose CRC holds but whose records this build cannot read: not a torn write,
    never cut off; the broker refuses to start."""


class MetadataLog:
    def __init__(self, data_dir: Path) -> None:
        self.directory = Path(data_dir) / DIR_NAME
        self._fd = -1
        self._size = 0
        self.next_offset = 0
        self._active: Path | None = None

    def exists(self) -> bool:
        return self.directory.is_dir() and any(_LOG.match(p.name) for p in self.directory.iterdir())

    # recovery -----------------------------------------------------------------------------

    def recover(self) -> Recovered:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            return self._recover()
        except OSError as e:
            raise StorageError(f"cannot read the metadata log in {self.directory}: {e.strerror or e}") from e

    def _recover(self) -> Recovered:
        for leftover in self.directory.glob("*.tmp"):
            leftover.unlink()
        out: list[tuple[int, MetadataRecord]] = []
        snapshot_offset = -1
        for offset, path in sorted(self._snapshots(), reverse=True):
            try:
                out = [(-1, r) for _, _, records in _batches(path.read_bytes(), str(path)) for r in records]
                snapshot_offset = offset
                break
            except CorruptRecord as e:
                log.error("ignoring damaged metadata snapshot %s: %s", path, e)
        logs = sorted(self._logs())
        next_offset = max(snapshot_offset, 0)
        for i, (base, path) in enumerate(logs):
            if i + 1 < len(logs) and logs[i + 1][0] <= snapshot_offset:
                continue  # wholly before the snapshot
            data = path.read_bytes()
            end = 0
            try:
                for batch_end, base_offset, records in _batches(data, str(path)):
                    end = batch_end
                    for j, r in enumerate(records):
                        if base_offset + j >= next_offset:
                            out.append((base_offset + j, r))
                    next_offset = max(next_offset, base_offset + len(records))
            except CorruptRecord as e:
                later = [p for _, p in logs[i + 1:]]
                log.warning("metadata log %s: cutting a torn or corrupt tail at position %d of %d bytes "
                            "(%s)%s", path, end, len(data), e,
                            f"; dropping {len(later)} later file(s)" if later else "")
                with open(path, "r+b") as f:
                    f.truncate(end)
                    os.fsync(f.fileno())
                for p in later:
                    p.unlink()
                logs = logs[: i + 1]
                break
        if not logs:
            base, path = next_offset, self.directory / f"{next_offset:020d}.log"
            path.touch()
            fsync_dir(self.directory)
            logs = [(base, path)]
        self._active = logs[-1][1]
        self._fd = os.open(self._active, os.O_WRONLY | os.O_APPEND)
        self._size = os.fstat(self._fd).st_size
        self.next_offset = next_offset
        return Recovered(out, next_offset, snapshot_offset)

    def _logs(self) -> Iterator[tuple[int, Path]]:
        for p in self.directory.iterdir():
            m = _LOG.match(p.name)
            if m:
                yield int(m.group(1)), p

    def _snapshots(self) -> Iterator[tuple[int, Path]]:
        for p in self.directory.iterdir():
            m = _SNAPSHOT.match(p.name)
            if m:
                yield int(m.group(1)), p

    # appending ----------------------------------------------------------------------------

    def append(self, records: list[MetadataRecord]) -> int:
        """Write ``records`` as one batch and fsync it; returns the batch's base offset."""
        assert self._fd >= 0, "recover() first"
        batch = build_batch([(None, encode(r)) for r in records], base_offset=self.next_offset)
        try:
            written = os.write(self._fd, batch)
            if written != len(batch):
                raise OSError(28, "short write")
            os.fdatasync(self._fd)
        except OSError as e:
            self._undo()
            raise StorageError(f"cannot write the metadata log: {e.strerror or e}") from e
        self._size += len(batch)
        base = self.next_offset
        self.next_offset += len(records)
        return base

    def _undo(self) -> None:
        """Cut whatever part of a failed append reached the file (truncating needs no space)."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError as e:
            log.error("cannot cut a failed append off the metadata log (recovery will): %s", e)
            return
        try:
            os.fdatasync(self._fd)
        except OSError as e:  # the cut is in the file; if it is lost, recovery cuts the torn tail
            log.debug("cannot sync the cut of a failed append: %s", e)

    # snapshots ----------------------------------------------------------------------------

    def write_snapshot(self, records: Iterable[MetadataRecord], chunk: int = 500) -> None:
        """Write the image as of ``next_offset`` and roll to a new log file from there."""
        offset = self.next_offset
        final = self.directory / f"{offset:020d}-{0:010d}.checkpoint"
        tmp = final.with_name(final.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                buf: list[MetadataRecord] = []
                for r in records:
                    buf.append(r)
                    if len(buf) == chunk:
                        f.write(build_batch([(None, encode(x)) for x in buf]))
                        buf = []
                if buf:
                    f.write(build_batch([(None, encode(x)) for x in buf]))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
            if self._size:
                new_log = self.directory / f"{offset:020d}.log"
                fd = os.open(new_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.close(self._fd)
                self._fd, self._size, self._active = fd, 0, new_log
            fsync_dir(self.directory)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"cannot write a metadata snapshot: {e.strerror or e}") from e
        self._prune()

    def _prune(self) -> None:
        snapshots = sorted(self._snapshots(), reverse=True)
        if len(snapshots) < 2:
            return
        keep_from = snapshots[1][0]
        for _, p in snapshots[2:]:
            p.unlink(missing_ok=True)
        logs = sorted(self._logs())
        for i, (base, p) in enumerate(logs):
            if i + 1 < len(logs) and logs[i + 1][0] <= keep_from and p != self._active:
                p.unlink(missing_ok=True)

    @property
    def bytes_since_snapshot(self) -> int:
        return self._size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

