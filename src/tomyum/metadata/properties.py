"""One owner per data dir, and the data dir's identity.

:class:`DataDirLock` holds an exclusive, non-blocking ``flock`` on ``<data-dir>/.lock`` (as
Kafka locks each log dir) for as long as the broker runs; the lock goes with the process, so
a kill -9 never leaves a stale lock behind. The file holds the owner's pid, so that the
refusal can name it.

``meta.properties`` is Kafka's: ``version``, ``cluster.id``, ``node.id``, ``directory.id``.
A data dir written for another cluster or node is refused with an error saying which.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from pathlib import Path

from tomyum.durable import write_atomically
from tomyum.errors import StorageError
from tomyum.metadata.records import short_uuid

LOCK_FILE = ".lock"
META_PROPERTIES = "meta.properties"


class DataDirLocked(StorageError):
    """Another process owns the data dir."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._fd = -1

    def acquire(self) -> None:
        """Take the lock or raise :class:`DataDirLocked` (never waits)."""
        path = self.data_dir / LOCK_FILE
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StorageError(f"cannot use data dir {self.data_dir}: {e.strerror or e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirLocked(f"data dir {self.data_dir.resolve()} is in use by another broker (pid {holder}); "
                                "stop it first or choose another --data-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock
            self._fd = -1


def read_properties(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            props[k.strip()] = v.strip()
    return props


def check_meta_properties(data_dir: Path, cluster_id: str | None, node_id: int) -> str:
    """Read (or, for a new data dir, write) ``meta.properties``; returns the cluster id.
    Raises StorageError if the dir belongs to another cluster or node."""
    path = Path(data_dir) / META_PROPERTIES
    try:
        props = read_properties(path) if path.exists() else {}
        if not props:
            props = {"version": "1", "cluster.id": cluster_id or short_uuid(uuid.uuid4()), "node.id": str(node_id),
                     "directory.id": short_uuid(uuid.uuid4())}
            write_atomically(path, "".join(f"{k}={v}\n" for k, v in props.items()).encode())
    except OSError as e:
        raise StorageError(f"cannot use {path}: {e.strerror or e}") from e
    stored = props.get("cluster.id")
    if not stored:
        raise StorageError(f"{path} names no cluster.id; it was not written by a broker")
    if cluster_id and stored != cluster_id:
        raise StorageError(f"{path} belongs to cluster {stored}, not {cluster_id} (cluster.id): this data dir "
                           "is another cluster's")
    if "node.id" in props and props["node.id"] != str(node_id):
        raise StorageError(f"{path} belongs to node {props['node.id']}, not {node_id} (node.id): this data dir "
                           "is another broker's")
    return stored
