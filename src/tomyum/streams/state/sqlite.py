"""The persistent engine: SQLite, through the standard library's ``sqlite3``.

Why SQLite. A state store needs an embedded, ordered, transactional key-value engine that
survives a crash. SQLite is among the best-kept pieces of software there is (public domain,
tested to aviation standards, a stable file format), it ships inside every CPython, so
tomyum.streams adds no dependency and no platform without wheels is left out (RocksDB
bindings such as rocksdict and LMDB's need binary wheels per platform), and it is
transactional: a task commits its stores at the same point it commits its offsets.

Layout: one file per store, ``<state_dir>/<application_id>/<task_id>/sqlite/<store>.db``
(Kafka's RocksDB layout with ``sqlite`` for ``rocksdb``), a single ``WITHOUT ROWID`` table
``kv(key BLOB PRIMARY KEY, value BLOB)`` so that rows are clustered by key and range scans
are ordered by ``memcmp``, in WAL mode with ``synchronous=NORMAL``: a commit is durable
against a process crash, and against power loss up to the last checkpoint. That is enough,
because the changelog topic, not the local file, is the store's source of truth.

Writes join an open transaction; :meth:`flush` commits it. ``OSError`` and
``sqlite3.Error`` are raised as :class:`~tomyum.errors.StorageError`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tomyum.errors import StorageError

__all__ = ["SqliteBytesStore"]


class SqliteBytesStore:
    """A :class:`~tomyum.streams.state.base.BytesStore` in one SQLite file (or in memory
    when ``path`` is ``None``)."""

    def __init__(self, name: str, path: Path | None) -> None:
        self.name = name
        self.path = path
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(":memory:" if path is None else str(path), isolation_level="DEFERRED")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"state store {name}: cannot open {path}: {exc}") from exc

    def _execute(self, sql: str, args: Sequence[bytes] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"state store {self.name}: {exc}") from exc

    def get(self, key: bytes) -> bytes | None:
        rows = self._execute("SELECT value FROM kv WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None

    def put(self, key: bytes, value: bytes) -> None:
        self._execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    def delete(self, key: bytes) -> None:
        self._execute("DELETE FROM kv WHERE key = ?", (key,))

    def range(self, lower: bytes | None, upper: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        clauses: list[str] = []
        args: list[bytes] = []
        if lower is not None:
            clauses.append("key >= ?")
            args.append(lower)
        if upper is not None:
            clauses.append("key <= ?")
            args.append(upper)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._execute(f"SELECT key, value FROM kv{where} ORDER BY key", args)
        return iter([(bytes(k), bytes(v)) for k, v in rows])

    def approximate_num_entries(self) -> int:
        count: int = self._execute("SELECT count(*) FROM kv")[0][0]
        return count

    def flush(self) -> None:
        try:
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"state store {self.name}: commit failed: {exc}") from exc

    def close(self) -> None:
        self.flush()
        self._db.close()
