"""Source offsets: where each source partition of each connector has got to.

Keys and values are stored as Kafka's worker stores them — JSON without schemas, the key
``["<connector>",{<source partition>}]`` and the value ``{<source offset>}`` — so the same
bytes serve a file (standalone, ``offset.storage.file.filename``) or, later, the compacted
``offset.storage.topic`` of distributed mode. A value of None (a tombstone) removes a partition.
Kafka's standalone file is a Java-serialised map; tomyum's is a JSON list of [key, value]
strings (written atomically) — the one on-disk difference.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from tomyum.connect.converters import dumps

log = logging.getLogger("tomyum.connect.offsets")


def offset_key(connector: str, partition: Mapping[str, Any]) -> bytes:
    return dumps([connector, dict(partition)])


class OffsetBackingStore(Protocol):
    def get_all(self) -> dict[bytes, bytes]: ...

    def set(self, values: Mapping[bytes, bytes | None]) -> None: ...


class MemoryOffsetBackingStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[bytes, bytes] = {}

    def get_all(self) -> dict[bytes, bytes]:
        with self._lock:
            return dict(self._data)

    def set(self, values: Mapping[bytes, bytes | None]) -> None:
        with self._lock:
            for k, v in values.items():
                if v is None:
                    self._data.pop(k, None)
                else:
                    self._data[k] = v
            self._persist()

    def _persist(self) -> None:
        pass


class FileOffsetBackingStore(MemoryOffsetBackingStore):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        if path.exists() and path.stat().st_size:
            for k, v in json.loads(path.read_text("utf-8")):
                self._data[k.encode("utf-8")] = v.encode("utf-8")

    def _persist(self) -> None:
        doc = [[k.decode("utf-8"), v.decode("utf-8")] for k, v in self._data.items()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class ConnectorOffsetBackingStore:
    """A source connector's offsets when it names its own ``offsets.storage.topic`` (KIP-618;
    Kafka's ConnectorOffsetBackingStore): the connector's store is primary, the worker's global
    store secondary.

    Reads take the primary's offset of a partition and fall back to the secondary's for one the
    primary does not have. Writes go to the primary, then (not tombstones) to the secondary,
    whose failure is only logged; tombstones go to the secondary first, so that a removed
    offset cannot reappear through the fallback."""

    def __init__(self, primary: OffsetBackingStore, secondary: OffsetBackingStore | None) -> None:
        self.primary = primary
        self.secondary = secondary

    def get_all(self) -> dict[bytes, bytes]:
        merged = self.secondary.get_all() if self.secondary is not None else {}
        merged.update(self.primary.get_all())
        return merged

    def set(self, values: Mapping[bytes, bytes | None]) -> None:
        tombstones = {k: None for k, v in values.items() if v is None}
        if self.secondary is not None and tombstones:
            self.secondary.set(tombstones)
        self.primary.set(values)
        self.after_primary_write(values)

    def after_primary_write(self, values: Mapping[bytes, bytes | None]) -> None:
        """The secondary write that follows a primary one (also after an exactly-once task's
        transaction wrote the primary): its non-tombstone offsets, a failure only logged."""
        regular = {k: v for k, v in values.items() if v is not None}
        if self.secondary is None or not regular:
            return
        try:
            self.secondary.set(regular)
        except Exception as e:  # noqa: BLE001 - as Kafka's: the primary has them, the worker's topic is a copy
            log.warning("Failed to write offsets to secondary backing store: %s", e)


class ConnectorOffsets:
    """One connector's view: partitions → offsets, read and written through the store."""

    def __init__(self, store: OffsetBackingStore, connector: str) -> None:
        self.store = store
        self.connector = connector

    def offset(self, partition: Mapping[str, Any]) -> Mapping[str, Any] | None:
        raw = self.store.get_all().get(offset_key(self.connector, partition))
        return None if raw is None else dict(json.loads(raw))

    def offsets(self, partitions: list[Mapping[str, Any]]) -> dict[str, Mapping[str, Any] | None]:
        return {dumps(dict(p)).decode(): self.offset(p) for p in partitions}

    def all(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        out = []
        for k, v in self.store.get_all().items():
            key = json.loads(k)
            if isinstance(key, list) and len(key) == 2 and key[0] == self.connector:
                out.append((key[1], json.loads(v)))
        return out

    def write(self, offsets: Mapping[bytes, bytes | None]) -> None:
        self.store.set(offsets)

    def put(self, partition: Mapping[str, Any], offset: Mapping[str, Any] | None) -> None:
        self.store.set({offset_key(self.connector, partition): None if offset is None else dumps(dict(offset))})
