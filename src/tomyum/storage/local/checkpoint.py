"""Kafka's offset checkpoint files: ``0\\n<count>\\n<topic> <partition> <offset>\\n...``.

Written atomically (temporary file, fsync, rename, fsync of the directory); a missing or
unreadable file reads as empty, which makes recovery scan more, never lose data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from tomyum.durable import fsync_dir, write_atomically
from tomyum.storage.engine import TopicPartition

__all__ = ["fsync_dir", "read_checkpoint", "write_atomically", "write_checkpoint"]

log = logging.getLogger(__name__)


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
