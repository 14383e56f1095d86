"""The two primitives every durable file of the broker is written with, shared by the log
engine and the metadata layer (which must not import each other):

- :func:`write_atomically` replaces a file so that a crash leaves either the old or the new
  contents (temporary file, fsync, rename, fsync of the directory);
- :func:`write_files_atomically` is :func:`write_atomically` for many files at once (a clean
  stop's index files): the same guarantee for each file, its fsyncs issued in parallel;
- :func:`fsync_dir` makes a directory's entries (a created, renamed or removed file) durable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

#: threads issuing the fsyncs of :func:`write_files_atomically`: enough for the filesystem's
#: journal to commit many files' fsyncs together instead of one commit each
SYNC_THREADS = 16


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_atomically(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file."""
    tmp = _temporary(path)
    _write_synced(tmp, data)
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)


def write_files_atomically(files: Sequence[tuple[Path, bytes]], *, sync_dirs: bool = True) -> None:
    """:func:`write_atomically` for each of ``files`` (distinct paths), with the same guarantee
    for each: every temporary file is written and fsynced (by :data:`SYNC_THREADS` threads at
    once) before any is renamed over its file, then the renames, then (``sync_dirs``) one fsync
    of each directory. A crash leaves each file old or new, never torn. Raises the first
    ``OSError``, before any rename if a write or fsync failed. Blocks until done."""
    if not files:
        return
    with ThreadPoolExecutor(min(SYNC_THREADS, len(files)), thread_name_prefix="fsync") as pool:
        for _ in pool.map(lambda f: _write_synced(_temporary(f[0]), f[1]), files):
            pass
    for path, _ in files:
        os.replace(_temporary(path), path)
    if sync_dirs:
        for directory in dict.fromkeys(path.parent for path, _ in files):
            fsync_dir(directory)
