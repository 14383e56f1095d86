"""The two primitives every durable file of the broker is written with, shared by the log
engine and the metadata layer (which must not import each other):

- :func:`write_atomically` replaces a file so that a crash leaves either the old or the new
  contents (temporary file, fsync, rename, fsync of the directory);
- :func:`fsync_dir` makes a directory's entries (a created, renamed or removed file) durable.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)
