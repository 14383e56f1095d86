"""Kafka's producer-state files in a partition directory (the state itself is pure:
:mod:`tomyum.storage.producer_state`).

``<offset>.snapshot`` holds the state of every producer as of that offset (written when a
segment rolls and at clean shutdown; recovery loads the newest one at or below the log end and
replays the batches after it), and each segment's ``.txnindex`` lists the transactions aborted
within it. See FORMAT.md.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path

from tomyum.storage.producer_state import AbortedTxn

SNAPSHOT_SUFFIX = ".snapshot"
TXN_INDEX_SUFFIX = ".txnindex"
_TXN_ENTRY = struct.Struct(">hqqqq")  # version, producer id, first, last, last stable offset


def snapshot_path(directory: Path, offset: int) -> Path:
    return directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"


def snapshot_offsets(directory: Path) -> list[int]:
    return sorted(int(p.stem) for p in directory.glob(f"*{SNAPSHOT_SUFFIX}") if p.stem.isdigit())


def encode_aborted(a: AbortedTxn) -> bytes:
    return _TXN_ENTRY.pack(0, a.producer_id, a.first_offset, a.last_offset, a.last_stable_offset)


def read_txn_index(path: Path) -> list[AbortedTxn]:
    """The entries of a ``.txnindex`` file (a torn last entry is ignored)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for pos in range(0, len(data) - _TXN_ENTRY.size + 1, _TXN_ENTRY.size):
        version, pid, first, last, lso = _TXN_ENTRY.unpack_from(data, pos)
        if version != 0:
            break
        out.append(AbortedTxn(pid, first, last, lso))
    return out


def write_txn_index(path: Path, entries: Iterable[AbortedTxn]) -> None:
    data = b"".join(encode_aborted(a) for a in entries)
    if not data:
        path.unlink(missing_ok=True)
        return
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def append_txn_index(path: Path, a: AbortedTxn) -> None:
    with open(path, "ab") as f:
        f.write(encode_aborted(a))
