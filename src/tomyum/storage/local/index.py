"""Sparse offset and time indexes, in Kafka's file formats.

``NNN.index``: 8-byte entries, (relative offset int32, file position int32).
``NNN.timeindex``: 12-byte entries, (timestamp int64, relative offset int32).

Both live in memory as sorted lists and are written whole to their files when a segment
is sealed (rolled) or closed, unless the file already holds exactly those bytes (as read at
load, last written, or read then to compare): an idle partition's stop rewrites nothing. Entries are only ever appended in increasing order, so a
lookup is a bisect. An index on disk is a cache: a missing or invalid file is rebuilt
from the log by recovery.
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from pathlib import Path

from tomyum.storage.local.checkpoint import write_atomically

IndexFile = tuple[Path, bytes]
#: an index's file not read yet: read when the index is next written, to compare
_UNREAD = b"unread"


def _digest(data: bytes | None) -> bytes | None:
    """What an index remembers of its file's bytes: a 16-byte BLAKE2b digest, not a copy."""
    return None if data is None else hashlib.blake2b(data, digest_size=16).digest()

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")


class OffsetIndex:
    """Relative offset → byte position, one entry per ``index.interval.bytes`` of log."""

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.offsets: list[int] = []  # relative
        self.positions: list[int] = []
        #: the digest of the file's bytes as last read or written (None: no file)
        self._on_disk: bytes | None = _UNREAD

    def append(self, offset: int, position: int) -> None:
        rel = offset - self.base_offset
        if not self.offsets or rel > self.offsets[-1]:
            self.offsets.append(rel)
            self.positions.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """The greatest indexed (offset, position) at or below ``offset``; (base, 0) if none."""
        i = bisect.bisect_right(self.offsets, offset - self.base_offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.base_offset + self.offsets[i], self.positions[i]

    def truncate_to_position(self, position: int) -> None:
        """Drop entries that point at or past ``position``."""
        i = bisect.bisect_left(self.positions, position)
        del self.offsets[i:], self.positions[i:]

    def clear(self) -> None:
        self.offsets.clear()
        self.positions.clear()

    def write(self) -> None:
        if (pending := self.unwritten()) is not None:
            _write_file(*pending)
            self._on_disk = _digest(pending[1])

    def unwritten(self) -> IndexFile | None:
        """The file and its new bytes, or None if it holds them already."""
        data = b"".join(_OFFSET_ENTRY.pack(o, p) for o, p in zip(self.offsets, self.positions))
        return None if _digest(data) == _on_disk(self) else (self.path, data)

    def load(self, log_size: int) -> bool:
        """Read the file; False (and empty) if it is missing or not a valid index for ``log_size``."""
        data = _read_file(self.path)
        self._on_disk = _digest(data)
        self.clear()
        if data is None or len(data) % 8:
            return False
        last_o = last_p = -1
        for o, p in _OFFSET_ENTRY.iter_unpack(data):
            if o == 0 and p == 0 and last_o >= 0:
                break  # Kafka preallocates: trailing zero entries are unused space
            if o <= last_o or p <= last_p or p >= log_size or o < 0:
                self.clear()
                return False
            self.offsets.append(o)
            self.positions.append(p)
            last_o, last_p = o, p
        return True


class TimeIndex:
    """Max timestamp so far → relative offset of the batch that reached it."""

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.timestamps: list[int] = []
        self.offsets: list[int] = []  # relative
        #: the digest of the file's bytes as last read or written (None: no file)
        self._on_disk: bytes | None = _UNREAD

    def append(self, timestamp: int, offset: int) -> None:
        if not self.timestamps or timestamp > self.timestamps[-1]:
            self.timestamps.append(timestamp)
            self.offsets.append(offset - self.base_offset)

    def lookup(self, timestamp: int) -> int:
        """An offset at or before the first batch whose max timestamp is ``>= timestamp``."""
        i = bisect.bisect_left(self.timestamps, timestamp) - 1
        return self.base_offset + (self.offsets[i] if i >= 0 else 0)

    @property
    def max_timestamp(self) -> int:
        return self.timestamps[-1] if self.timestamps else -1

    def truncate_to_offset(self, offset: int) -> None:
        rel = offset - self.base_offset
        while self.offsets and self.offsets[-1] >= rel:
            self.offsets.pop()
            self.timestamps.pop()

    def clear(self) -> None:
        self.timestamps.clear()
        self.offsets.clear()

    def write(self) -> None:
        if (pending := self.unwritten()) is not None:
            _write_file(*pending)
            self._on_disk = _digest(pending[1])

    def unwritten(self) -> IndexFile | None:
        """The file and its new bytes, or None if it holds them already."""
        data = b"".join(_TIME_ENTRY.pack(t, o) for t, o in zip(self.timestamps, self.offsets))
        return None if _digest(data) == _on_disk(self) else (self.path, data)

    def load(self, next_offset: int) -> bool:
        data = _read_file(self.path)
        self._on_disk = _digest(data)
        self.clear()
        if data is None or len(data) % 12:
            return False
        for t, o in _TIME_ENTRY.iter_unpack(data):
            if t == 0 and o == 0 and self.timestamps:
                break
            if (self.timestamps and (t <= self.timestamps[-1] or o < self.offsets[-1])) or (
                self.base_offset + o >= next_offset
            ):
                self.clear()
                return False
            self.timestamps.append(t)
            self.offsets.append(o)
        return True


def _on_disk(index: OffsetIndex | TimeIndex) -> bytes | None:
    """The digest of what ``index``'s file holds; every index file is written fsynced before it is renamed
    (write_atomically), so bytes read from it are on disk, not only in the page cache."""
    if index._on_disk is _UNREAD:
        index._on_disk = _digest(_read_file(index.path))
    return index._on_disk


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write_file(path: Path, data: bytes) -> None:
    write_atomically(path, data, sync_dir=False)
