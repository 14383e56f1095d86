"""Kafka's offset checkpoint files: ``0\\n<count>\\n<topic> <partition> <offset>\\n...``.

Written atomically (temporary file, fsync, rename, fsync of the directory); a missing or
unreadable file reads as empty, which makes recovery scan more, never lose data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from tomyum.storage.engine import TopicPartition

log = logging.getLogger(__name__)


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


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(path: Path, offsets: Mapping[TopicPartition, int]) -> None:
    lines = ["0", str(len(offsets))] + [f"{tp.topic} {tp.partition} {o}" for tp, o in offsets.items()]
    write_atomically(path, ("\n".join(lines) + "\n").encode())


def read_checkpoint(path: Path) -> dict[TopicPartition, int]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        log.warning("ignoring unreadable checkpoint %s: %s", path, e)
        return {}
    out: dict[TopicPartition, int] = {}
    try:
        if lines[0].strip() != "0":
            raise ValueError(f"unknown version {lines[0]!r}")
        count = int(lines[1])
        for line in lines[2 : 2 + count]:
            topic, partition, offset = line.rsplit(" ", 2)
            out[TopicPartition(topic, int(partition))] = int(offset)
    except (IndexError, ValueError) as e:
        log.warning("ignoring corrupt checkpoint %s: %s", path, e)
        return {}
    return out
