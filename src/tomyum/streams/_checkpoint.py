"""A task's ``.checkpoint`` file: the changelog offsets its persistent stores hold (Kafka's
``OffsetCheckpoint``; JSON here, ``{"<changelog topic>": <next offset>}``, one changelog
partition per task so the topic names it).

The rule that makes a checkpoint safe to trust: it is written only after the stores it
speaks for were flushed, and it names an offset the stores have *at least* reached. Replaying
a changelog from an earlier offset than the store has reached is harmless (each changelog
record is the whole new value of its key), replaying from a later one loses updates — so a
writer flushes first, then writes the file (to a temporary name, then renamed, so a reader
never sees half a file). Plain file I/O; no clients.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

__all__ = ["CHECKPOINT_FILE", "read_checkpoint", "remove_checkpoint", "write_checkpoint"]

CHECKPOINT_FILE = ".checkpoint"


def read_checkpoint(task_dir: Path) -> dict[str, int] | None:
    """The offsets in ``task_dir``'s checkpoint; None if there is none or it cannot be read."""
    try:
        offsets = json.loads((task_dir / CHECKPOINT_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(offsets, dict) or not all(isinstance(v, int) for v in offsets.values()):
        return None
    return {str(k): v for k, v in offsets.items()}


def write_checkpoint(task_dir: Path, offsets: Mapping[str, int]) -> None:
    """Replace ``task_dir``'s checkpoint with ``offsets`` (the stores flushed first: see above)."""
    task_dir.mkdir(parents=True, exist_ok=True)
    path = task_dir / CHECKPOINT_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(dict(offsets)))
    temporary.replace(path)


def remove_checkpoint(task_dir: Path) -> None:
    (task_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
