"""PostgreSQL change data capture: a consistent snapshot, then the logical replication stream
(``pgoutput``), as Debezium change records with Debezium's source offsets.

The replication protocol is psycopg2's (``LogicalReplicationConnection``; psycopg 3 has no
replication API); queries are psycopg 3's. The order of things, as Debezium's:

1. The publication is created if ``publication.autocreate.mode`` allows; the slot is created
   with ``EXPORT_SNAPSHOT`` when missing.
2. Snapshot (``snapshot.mode=initial`` with no stored offset, or ``always``): every captured
   table is read in one REPEATABLE READ transaction on the slot's exported snapshot — exactly
   the data before the slot's consistent point — as ``op=r`` records. ``never``/``no_data``
   skip it; ``initial_only`` stops after it.
3. Streaming from the slot. A transaction's changes are released when its Commit arrives.

Offsets (source partition ``{"server": topic.prefix}``) are Debezium's ``{lsn, txId, ts_usec}``
plus ``lsn_commit``: ``lsn`` is the change's LSN (the commit's end LSN on a transaction's last
change) and ``lsn_commit`` its transaction's commit LSN. On restart the slot resends every
transaction whose commit lies after the flushed LSN, and changes at or before the stored
offset are skipped — so nothing is lost and nothing stored is sent twice. :meth:`flush` (the
LSN feedback to the slot, which lets the server drop WAL) is only called with an offset the
worker has stored.
"""

from __future__ import annotations

import dataclasses
import json
import re
import select
import time
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg
import psycopg2
import psycopg2.errors
import psycopg2.extras
from psycopg import sql

from tomyum.connect.postgres import catalog, pgoutput
from tomyum.connect.postgres.envelope import ChangeRecord, EnvelopeBuilder, SourceInfo, Table
from tomyum.connect.postgres.types import TypeOptions

HEARTBEAT_KEY_SCHEMA = {"type": "struct", "optional": False, "name": "io.debezium.connector.common.ServerNameKey",
                        "fields": [{"type": "string", "optional": False, "field": "serverName"}]}
HEARTBEAT_VALUE_SCHEMA = {"type": "struct", "optional": False, "name": "io.debezium.connector.common.Heartbeat",
                          "fields": [{"type": "int64", "optional": False, "field": "ts_ms"}]}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CdcConfig:
    """Debezium's PostgreSQL connector keys (the subset implemented)."""

    dsn: str
    database: str
    topic_prefix: str
    slot_name: str = "debezium"
    publication_name: str = "dbz_publication"
    publication_autocreate_mode: str = "all_tables"
    snapshot_mode: str = "initial"
    table_include_list: tuple[str, ...] = ()
    heartbeat_interval_ms: int = 0
    tombstones_on_delete: bool = True
    skipped_operations: frozenset[str] = frozenset({"t"})
    type_options: TypeOptions = TypeOptions()
    version: str = "tomyum"

    @classmethod
    def from_props(cls, props: Mapping[str, str], version: str = "tomyum") -> CdcConfig:
        plugin = props.get("plugin.name", "pgoutput")
        if plugin != "pgoutput":
            raise ValueError(f"plugin.name={plugin}: only pgoutput is supported")
        dsn = psycopg.conninfo.make_conninfo(
            host=props.get("database.hostname", "localhost"), port=props.get("database.port", "5432"),
            user=props.get("database.user", "postgres"), password=props.get("database.password") or None,
            dbname=props["database.dbname"])
        skipped = props.get("skipped.operations", "t")
        return cls(dsn=dsn, database=props["database.dbname"], topic_prefix=props["topic.prefix"],
                   slot_name=props.get("slot.name", "debezium"),
                   publication_name=props.get("publication.name", "dbz_publication"),
                   publication_autocreate_mode=props.get("publication.autocreate.mode", "all_tables"),
                   snapshot_mode=props.get("snapshot.mode", "initial"),
                   table_include_list=tuple(p.strip() for p in props.get("table.include.list", "").split(",")
                                            if p.strip()),
                   heartbeat_interval_ms=int(props.get("heartbeat.interval.ms", "0")),
                   tombstones_on_delete=props.get("tombstones.on.delete", "true").lower() == "true",
                   skipped_operations=frozenset() if skipped == "none" else frozenset(
                       s.strip() for s in skipped.split(",") if s.strip()),
                   type_options=TypeOptions(decimal_handling_mode=props.get("decimal.handling.mode", "precise"),
                                            time_precision_mode=props.get("time.precision.mode", "adaptive")),
                   version=version)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CdcRecord:
    record: ChangeRecord
    offset: dict[str, Any]


def _now_us() -> int:
    return time.time_ns() // 1000


class PostgresCdc:
    """One capture: ``start(offset)``, then ``poll()`` until ``close()``. Not thread-safe: one
    task thread drives it (``flush`` included)."""

    def __init__(self, config: CdcConfig) -> None:
        self.config = config
        self.partition = {"server": config.topic_prefix}
        self.builder = EnvelopeBuilder(topic_prefix=config.topic_prefix, database=config.database,
                                       version=config.version, options=config.type_options)
        self._include = [re.compile(p) for p in config.table_include_list]
        self._query: psycopg.Connection[tuple[Any, ...]] | None = None
        self._repl: Any = None
        self._cursor: Any = None
        self._snapshot: Iterator[CdcRecord] | None = None
        self._stored: Mapping[str, Any] | None = None
        self._relations: dict[int, Table] = {}
        self._txn: list[tuple[int, pgoutput.Insert | pgoutput.Update | pgoutput.Delete | pgoutput.Truncate]] = []
        self._begin: pgoutput.Begin | None = None
        self._last_heartbeat = time.monotonic()
        self._processed: tuple[int, int] | None = None  # (commit lsn, end lsn) of the last transaction seen
        self._streaming = False
        self.finished = False  # initial_only: the snapshot is done and nothing follows

    # -- start-up ------------------------------------------------------------------------
    def start(self, offset: Mapping[str, Any] | None) -> None:
        self._stored = offset
        self._query = psycopg.connect(self.config.dsn, autocommit=True, connect_timeout=10,
                                      options="-c TimeZone=UTC -c DateStyle=ISO -c bytea_output=hex")
        catalog.ensure_publication(self._query, self.config.publication_name,
                                   self.config.publication_autocreate_mode, self._include)
        self._repl = psycopg2.connect(self.config.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection,
                                      connect_timeout=10,
                                      options="-c TimeZone=UTC -c DateStyle=ISO -c bytea_output=hex")
        self._cursor = self._repl.cursor()
        snapshot_done = offset is not None and not (offset.get("snapshot") and not offset.get("last_snapshot_record"))
        mode = self.config.snapshot_mode
        want_snapshot = mode == "always" or (mode in ("initial", "initial_only") and not snapshot_done)
        slot_exists = self._query.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                                          (self.config.slot_name,)).fetchone() is not None
        if want_snapshot and slot_exists and (offset is None or not snapshot_done):
            # a slot but no offset (or a snapshot cut short): nothing of the slot was used, so start
            # it again where a consistent snapshot can be taken
            self._cursor.drop_replication_slot(self.config.slot_name)
            slot_exists = False
        exported: tuple[int, str] | None = None
        if not slot_exists:
            self._cursor.execute(f'CREATE_REPLICATION_SLOT "{self.config.slot_name}" LOGICAL pgoutput EXPORT_SNAPSHOT')
            _slot, consistent_point, snapshot_name, _plugin = self._cursor.fetchone()
            exported = pgoutput.parse_lsn(consistent_point), snapshot_name
        if want_snapshot:
            self._snapshot = self._read_snapshot(exported)
        else:
            self._start_streaming()

    def _start_streaming(self) -> None:
        start_lsn = int(self._stored["lsn"]) if self._stored and "lsn" in self._stored else 0
        self._cursor.start_replication(slot_name=self.config.slot_name, decode=False, start_lsn=start_lsn,
                                       options={"proto_version": "1",
                                                "publication_names": self.config.publication_name})
        self._streaming = True

    def _captured_tables(self) -> list[tuple[str, str]]:
        assert self._query is not None
        return [(s, t) for s, t in catalog.publication_tables(self._query, self.config.publication_name)
                if catalog.matches(self._include, s, t)]

    def _read_snapshot(self, exported: tuple[int, str] | None) -> Iterator[CdcRecord]:
        conn = psycopg.connect(self.config.dsn, connect_timeout=10,
                               options="-c TimeZone=UTC -c DateStyle=ISO -c bytea_output=hex")
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if exported is not None:
                conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(exported[1])))
            lsn = exported[0] if exported else None
            row = conn.execute("SELECT txid_current_if_assigned(), pg_current_wal_lsn()::text").fetchone()
            assert row is not None
            lsn = lsn if lsn is not None else pgoutput.parse_lsn(str(row[1]))
            yield from self._snapshot_tables(conn, lsn)
        finally:
            conn.close()

    def _snapshot_tables(self, conn: psycopg.Connection[tuple[Any, ...]], lsn: int) -> Iterator[CdcRecord]:
        tables = [catalog.table_by_oid(conn, catalog.table_oid(conn, s, t)) for s, t in self._captured_tables()]
        ts_ms = _now_us() // 1000
        pending: CdcRecord | None = None
        first = True
        for index, table in enumerate(tables):
            columns = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in table.columns)
            query = sql.SQL("SELECT {} FROM {}").format(columns, sql.Identifier(table.schema, table.name))
            with conn.cursor(name=f"tomyum_snapshot_{index}") as cursor:
                cursor.execute(query)
                for values in cursor:
                    if pending is not None:
                        yield pending
                    row = dict(zip((c.name for c in table.columns), values, strict=True))
                    marker = "first" if first else "true"
                    first = False
                    record = self.builder.change(table, "r", before=None, after=row,
                                                 source=SourceInfo(ts_ms=ts_ms, snapshot=marker, txid=None, lsn=lsn),
                                                 now_us=_now_us())
                    pending = CdcRecord(record=record, offset={"lsn": lsn, "lsn_commit": lsn, "txId": None,
                                                               "ts_usec": ts_ms * 1000, "snapshot": True,
                                                               "last_snapshot_record": False})
        if pending is not None:
            value = dict(pending.record.value or {})
            value["source"] = {**value["source"], "snapshot": "last"}
            yield CdcRecord(record=dataclasses.replace(pending.record, value=value),
                            offset={**pending.offset, "last_snapshot_record": True})

    # -- polling -------------------------------------------------------------------------
    def poll(self, timeout_s: float = 0.5, max_records: int = 1000) -> list[CdcRecord]:
        """Records available within ``timeout_s`` (whole transactions; may exceed ``max_records``
        by one transaction). Blocks at most ``timeout_s``."""
        if self._snapshot is not None:
            batch = []
            for item in self._snapshot:
                batch.append(item)
                if len(batch) >= max_records:
                    return batch
            self._snapshot = None
            if self.config.snapshot_mode == "initial_only":
                self.finished = True
            else:
                self._stored = batch[-1].offset if batch else self._stored
                self._start_streaming()
            return batch
        if not self._streaming:
            return []
        out: list[CdcRecord] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < max_records:
            message = self._cursor.read_message()
            if message is None:
                heartbeat = self._heartbeat()
                if heartbeat is not None:
                    out.append(heartbeat)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or out:
                    break
                select.select([self._cursor], [], [], min(remaining, 0.2))
                continue
            out.extend(self._handle(pgoutput.decode(message.payload), message.data_start))
        return out

    def _handle(self, message: pgoutput.Message, lsn: int) -> list[CdcRecord]:
        if isinstance(message, pgoutput.Begin):
            self._begin, self._txn = message, []
        elif isinstance(message, pgoutput.Relation):
            assert self._query is not None
            self._relations[message.oid] = catalog.table_from_relation(self._query, message)
        elif isinstance(message, (pgoutput.Insert, pgoutput.Update, pgoutput.Delete, pgoutput.Truncate)):
            self._txn.append((lsn, message))
        elif isinstance(message, pgoutput.Commit):
            return self._commit(message)
        return []

    def _skip(self, commit_lsn: int, lsn: int) -> bool:
        stored = self._stored
        if not stored or stored.get("snapshot"):
            return False
        stored_commit = int(stored.get("lsn_commit") or 0)
        return commit_lsn < stored_commit or (commit_lsn == stored_commit and lsn <= int(stored["lsn"]))

    def _commit(self, commit: pgoutput.Commit) -> list[CdcRecord]:
        begin = self._begin
        assert begin is not None
        ts_us = pgoutput.pg_to_unix_us(begin.commit_ts_us)
        out: list[CdcRecord] = []
        for lsn, change in self._txn:
            if self._skip(begin.final_lsn, lsn):
                continue
            offset = {"lsn": lsn, "lsn_commit": begin.final_lsn, "txId": begin.xid, "ts_usec": ts_us}
            source = SourceInfo(ts_ms=ts_us // 1000, snapshot="false", txid=begin.xid, lsn=lsn,
                                sequence=json.dumps([str(begin.final_lsn), str(lsn)]))
            out.extend(CdcRecord(record=r, offset=offset) for r in self._records(change, source))
        if out:
            last = out[-1]
            out[-1] = dataclasses.replace(last, offset={**last.offset, "lsn": commit.end_lsn})
        self._begin, self._txn = None, []
        self._processed = begin.final_lsn, commit.end_lsn
        return out

    def _records(self, change: pgoutput.Insert | pgoutput.Update | pgoutput.Delete | pgoutput.Truncate,
                 source: SourceInfo) -> list[ChangeRecord]:
        now = _now_us()
        skipped = self.config.skipped_operations
        if isinstance(change, pgoutput.Truncate):
            if "t" in skipped:
                return []
            return [self.builder.truncate(self._relations[oid], source=source, now_us=now)
                    for oid in change.relation_oids]
        table = self._relations[change.relation_oid]
        names = [c.name for c in table.columns]
        if isinstance(change, pgoutput.Insert):
            if "c" in skipped:
                return []
            return [self.builder.change(table, "c", before=None, after=dict(zip(names, change.new)),
                                        source=source, now_us=now)]
        if isinstance(change, pgoutput.Delete):
            if "d" in skipped:
                return []
            deleted = self.builder.change(table, "d", before=dict(zip(names, change.old)), after=None,
                                          source=source, now_us=now)
            return [deleted, self.builder.tombstone(deleted)] if self.config.tombstones_on_delete else [deleted]
        if "u" in skipped:
            return []
        before = dict(zip(names, change.old)) if change.old is not None else None
        after = dict(zip(names, change.new))
        if before is not None and self.builder.key_of(table, before) != self.builder.key_of(table, after):
            # the primary key changed: Debezium's delete (and tombstone) of the old key, then a create
            deleted = self.builder.change(table, "d", before=before, after=None, source=source, now_us=now)
            created = self.builder.change(table, "c", before=None, after=after, source=source, now_us=now)
            tomb = [self.builder.tombstone(deleted)] if self.config.tombstones_on_delete else []
            return [deleted, *tomb, created]
        return [self.builder.change(table, "u", before=before if not change.old_is_key else None, after=after,
                                    source=source, now_us=now)]

    def _heartbeat(self) -> CdcRecord | None:
        interval = self.config.heartbeat_interval_ms
        if interval <= 0 or self._begin is not None or time.monotonic() - self._last_heartbeat < interval / 1000:
            return None
        self._last_heartbeat = time.monotonic()
        if self._processed is None:
            return None
        ts_ms = _now_us() // 1000
        record = ChangeRecord(topic=f"__debezium-heartbeat.{self.config.topic_prefix}",
                              key_schema=HEARTBEAT_KEY_SCHEMA, key={"serverName": self.config.topic_prefix},
                              value_schema=HEARTBEAT_VALUE_SCHEMA, value={"ts_ms": ts_ms})
        # the offset of everything processed so far, also transactions with nothing captured, so
        # that the slot's flushed LSN advances while captured tables are quiet
        commit_lsn, end_lsn = self._processed
        return CdcRecord(record=record, offset={"lsn": end_lsn, "lsn_commit": commit_lsn, "txId": None,
                                                "ts_usec": ts_ms * 1000})

    # -- feedback ------------------------------------------------------------------------
    def flush(self, offset: Mapping[str, Any]) -> None:
        """Confirm to the slot everything up to ``offset`` (an offset the worker has stored)."""
        if self._streaming and not offset.get("snapshot"):
            self._cursor.send_feedback(flush_lsn=int(offset["lsn"]), reply=True)

    def close(self) -> None:
        for conn in (self._repl, self._query):
            if conn is not None:
                conn.close()
        self._repl = self._query = None
