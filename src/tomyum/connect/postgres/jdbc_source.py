"""A JDBC-style PostgreSQL source (Confluent's JDBC source connector's modes and offsets) on psycopg 3.

Modes (``mode``): ``bulk`` (the whole table each ``poll.interval.ms``), ``incrementing`` (rows
whose ``incrementing.column.name`` is above the last one seen), ``timestamp`` and
``timestamp+incrementing`` (rows new or changed since the last ``timestamp.column.name`` /
(timestamp, id) seen). ``table.whitelist`` names tables (topic ``<topic.prefix><table>``).

A custom ``query`` (instead of ``table.whitelist``, never with it) is Confluent's query mode:
one querier, source partition ``{"query": "query"}``, topic ``topic.prefix`` alone, an unnamed
value struct described by the result's own columns. The mode's WHERE … ORDER BY is appended to
the query text as Confluent's ``TimestampIncrementingCriteria`` writes it (so the query must
not have a WHERE of its own: wrap it, ``SELECT * FROM (…) AS q``), then ``query.suffix``.
The timestamp modes here are Confluent's cursor — ``ts > last`` (and ``(ts = last AND id >
last_id)``), bounded above by the database's ``now()`` minus ``timestamp.delay.interval.ms`` —
not the transaction horizon below: a query's rows carry no ``xmin`` of one writer, so rows
committed out of order behind the cursor are missed as in Confluent's connector (the delay
narrows that window). Offsets are Confluent's: ``incrementing``, ``timestamp`` (ms) and
``timestamp_nanos``.

Rows committed out of order (the classic JDBC-connector bug). With a (timestamp, id) cursor, a
transaction that started early but commits late writes rows *below* a cursor that has already
moved past them, and they are never read. Here the timestamp modes do not trust the cursor
alone: each poll reads only what the transactions that have *ended* wrote. The poll takes
``pg_snapshot_xmin(pg_current_snapshot())`` — the oldest transaction still running, so every
transaction below it has committed or aborted — and selects the rows whose ``xmin`` (the
transaction that last wrote the row) lies in [previous horizon, this horizon). Each writing
transaction falls into exactly one such window, whatever its timestamps, so no row is lost
and a row is read again only when it is written again (an update, as timestamp mode intends).
Within a window rows go out ordered by (timestamp, id); the offset stores the horizon
(``txid_horizon``) beside Kafka's ``timestamp``/``incrementing`` keys. Why this and not
``timestamp.delay.interval.ms`` alone: a delay only narrows the race (a transaction may stay
open longer than any delay), while the horizon closes it; the delay is still honoured, by
using the horizon observed that long ago. ``incrementing`` mode keeps Kafka's semantics (a
new id above the last one; updates are not re-read) and so Kafka's gap: ids committed out of
order can be passed over — use ``timestamp+incrementing`` where that matters. Limitation: a row frozen by VACUUM FREEZE before it was first read carries xmin 2 and is read
only by a bulk poll; the horizon assumes fewer than 2^31 transactions between two polls.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from tomyum.connect.postgres import catalog
from tomyum.connect.postgres.envelope import Table
from tomyum.connect.postgres.types import ColumnType, JsonSchema, TypeOptions, map_type

MODES = ("bulk", "incrementing", "timestamp", "timestamp+incrementing")
_WRAP = 1 << 32
_EPOCH = datetime.datetime(1970, 1, 1)
# JDBC source's types: Connect's own logical types (Date, Timestamp, Decimal), not Debezium's
_CONNECT_TYPES = TypeOptions(decimal_handling_mode="precise", time_precision_mode="connect")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JdbcSourceConfig:
    dsn: str
    mode: str
    tables: tuple[str, ...] = ()
    query: str = ""
    query_suffix: str = ""
    topic_prefix: str = ""
    incrementing_column: str | None = None
    timestamp_column: str | None = None
    poll_interval_ms: int = 5000
    timestamp_delay_interval_ms: int = 0
    batch_max_rows: int = 100

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> JdbcSourceConfig:
        mode = props.get("mode", "bulk")
        if mode not in MODES:
            raise ValueError(f"mode={mode}: must be one of {', '.join(MODES)}")
        tables = tuple(t.strip() for t in (props.get("table.whitelist") or props.get("table.include.list", ""))
                       .split(",") if t.strip())
        query = (props.get("query") or "").strip()
        if query and (tables or props.get("table.blacklist")):
            raise ValueError("query may not be combined with whole-table copying settings.")
        if not tables and not query:
            raise ValueError("table.whitelist: name at least one table, or set query")
        if mode in ("incrementing", "timestamp+incrementing") and not props.get("incrementing.column.name"):
            raise ValueError(f"mode={mode} needs incrementing.column.name")
        if mode.startswith("timestamp") and not props.get("timestamp.column.name"):
            raise ValueError(f"mode={mode} needs timestamp.column.name")
        return cls(dsn=props["connection.url"], mode=mode, tables=tables, query=query,
                   query_suffix=props.get("query.suffix", ""),
                   topic_prefix=props.get("topic.prefix", ""),
                   incrementing_column=props.get("incrementing.column.name") or None,
                   timestamp_column=props.get("timestamp.column.name") or None,
                   poll_interval_ms=int(props.get("poll.interval.ms", "5000")),
                   timestamp_delay_interval_ms=int(props.get("timestamp.delay.interval.ms", "0")),
                   batch_max_rows=int(props.get("batch.max.rows", "100")))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SourceRow:
    topic: str
    value_schema: JsonSchema
    value: dict[str, Any]
    partition: dict[str, Any]
    offset: dict[str, Any]


def jdbc_url_to_dsn(url: str) -> str:
    """``jdbc:postgresql://host:port/db?user=u&password=p`` → a libpq URL; libpq DSNs pass through."""
    return url[len("jdbc:"):] if url.startswith("jdbc:") else url


def source_partitions(config: JdbcSourceConfig) -> dict[str, dict[str, str]]:
    """Each querier's source partition, by its name: a table's ``{"table": …}``, or Confluent's
    ``{"query": "query"}`` for the custom query."""
    if config.query:
        return {"query": {"query": "query"}}
    return {t: {"table": t} for t in config.tables}


def _timestamp_of_offset(offset: Mapping[str, Any]) -> datetime.datetime:
    """Confluent's timestamp offset (``timestamp`` ms, ``timestamp_nanos`` within the second) as a
    naive UTC instant; the epoch when none is stored."""
    ms = int(offset.get("timestamp", 0))
    nanos = offset.get("timestamp_nanos")
    micros = (ms % 1000) * 1000 if nanos is None else int(nanos) // 1000
    return _EPOCH + datetime.timedelta(seconds=ms // 1000, microseconds=micros)


def _offset_of_timestamp(text: str) -> dict[str, int]:
    """A timestamp column's text (session time zone UTC) as Confluent's offset keys."""
    value = datetime.datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    delta = value - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    return {"timestamp": seconds * 1000 + delta.microseconds // 1000, "timestamp_nanos": delta.microseconds * 1000}


class _Querier:
    """One table, or the custom query: its cursor (offset) and the query of each poll."""

    def __init__(self, config: JdbcSourceConfig, name: str, offset: Mapping[str, Any] | None) -> None:
        self.config = config
        self.table = None if config.query else name
        self.partition = source_partitions(config)[name]
        self.topic = config.topic_prefix + (self.table or "")
        self.offset: dict[str, Any] = dict(offset or {})
        self.next_poll = 0.0
        self.horizons: collections.deque[tuple[float, int]] = collections.deque()

    def _horizon(self, conn: psycopg.Connection[Any]) -> int:
        """The oldest running transaction's id now, or ``timestamp.delay.interval.ms`` ago."""
        row = conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").fetchone()
        assert row is not None
        now = time.monotonic()
        self.horizons.append((now, int(row[0])))
        delay = self.config.timestamp_delay_interval_ms / 1000
        chosen: int | None = None
        while self.horizons and self.horizons[0][0] <= now - delay:
            chosen = self.horizons.popleft()[1]
        if chosen is None:  # nothing observed that long ago yet: the oldest we have
            chosen = self.horizons[0][1]
        self.horizons.appendleft((now - delay, chosen))
        return chosen

    def where(self, conn: psycopg.Connection[Any]) -> tuple[sql.Composable, dict[str, Any], int | None]:
        """The poll's WHERE … ORDER BY, its parameters and the horizon it reads up to."""
        mode, inc, ts = self.config.mode, self.config.incrementing_column, self.config.timestamp_column
        if mode == "bulk":
            return sql.SQL(""), {}, None
        order = sql.SQL(", ").join(sql.Identifier(c) for c in ((ts,) if ts else ()) + ((inc,) if inc else ()))
        if mode == "incrementing":
            if "incrementing" not in self.offset:
                return sql.SQL(" ORDER BY {}").format(order), {}, None
            return (sql.SQL(" WHERE {} > %(inc)s ORDER BY {}").format(sql.Identifier(inc or ""), order),
                    {"inc": self.offset["incrementing"]}, None)
        horizon = self._horizon(conn)
        params: dict[str, Any] = {"hi": horizon % _WRAP}
        # the writer's transaction has ended: its xid is before the horizon (modulo 2^32)
        conditions = [sql.SQL("((%(hi)s - xmin::text::bigint + 4294967296) %% 4294967296) BETWEEN 1 AND 2147483647")]
        previous = self.offset.get("txid_horizon")
        if previous is not None:  # … and it had not ended at the previous poll
            params["lo"], params["span"] = int(previous) % _WRAP, horizon - int(previous)
            conditions.append(sql.SQL("((xmin::text::bigint - %(lo)s + 4294967296) %% 4294967296) < %(span)s"))
        return (sql.SQL(" WHERE {} ORDER BY {}").format(sql.SQL(" AND ").join(conditions), order), params, horizon)

    def criteria(self, conn: psycopg.Connection[Any]) -> tuple[sql.Composable, dict[str, Any]]:
        """Confluent's WHERE … ORDER BY for the custom query, and its parameters: ``id > last``;
        ``last < ts < end``; ``ts < end AND ((ts = last AND id > last_id) OR ts > last)``, where
        end is the database's now() less ``timestamp.delay.interval.ms``."""
        mode = self.config.mode
        inc, ts = sql.Identifier(self.config.incrementing_column or ""), sql.Identifier(self.config.timestamp_column or "")
        if mode == "bulk":
            return sql.SQL(""), {}
        if mode == "incrementing":
            return sql.SQL(" WHERE {0} > %(inc)s ORDER BY {0} ASC").format(inc), {"inc": self.offset.get("incrementing", -1)}
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        end = row[0].astimezone(datetime.UTC).replace(tzinfo=None)
        params = {"begin": _timestamp_of_offset(self.offset), "inc": self.offset.get("incrementing", -1),
                  "end": end - datetime.timedelta(milliseconds=self.config.timestamp_delay_interval_ms)}
        if mode == "timestamp":
            return sql.SQL(" WHERE {0} > %(begin)s AND {0} < %(end)s ORDER BY {0} ASC").format(ts), params
        return (sql.SQL(" WHERE {0} < %(end)s AND (({0} = %(begin)s AND {1} > %(inc)s) OR {0} > %(begin)s) "
                        "ORDER BY {0},{1} ASC").format(ts, inc), params)


class JdbcSource:
    """Polls the configured tables; :meth:`poll` returns rows due now, with their offsets."""

    def __init__(self, config: JdbcSourceConfig, offsets: Mapping[str, Mapping[str, Any] | None]) -> None:
        self.config = config
        self._queriers = [_Querier(config, name, offsets.get(name)) for name in source_partitions(config)]
        self._conn = psycopg.connect(jdbc_url_to_dsn(config.dsn), autocommit=True, connect_timeout=10,
                                     options="-c TimeZone=UTC -c DateStyle=ISO -c bytea_output=hex")
        self._tables: dict[str, Table] = {}
        self._columns: dict[tuple[int, ...], tuple[str, ColumnType]] = {}

    def _table(self, name: str) -> Table:
        if name not in self._tables:
            schema, _, table = name.rpartition(".")
            self._tables[name] = catalog.table_by_oid(self._conn, catalog.table_oid(self._conn, schema or "public", table))
        return self._tables[name]

    def poll(self) -> list[SourceRow]:
        """Rows of every table whose poll is due (``poll.interval.ms`` apart). Never blocks on a timer."""
        out: list[SourceRow] = []
        now = time.monotonic()
        for q in self._queriers:
            if now < q.next_poll:
                continue
            q.next_poll = now + self.config.poll_interval_ms / 1000
            out += self._poll_one(q)
        return out

    def next_poll_in_s(self) -> float:
        return max(0.0, min(q.next_poll for q in self._queriers) - time.monotonic())

    def _poll_one(self, q: _Querier) -> list[SourceRow]:
        if q.table is None:
            return self._poll_query(q)
        table = self._table(q.table)
        mapped = {c.name: map_type(c.type, _CONNECT_TYPES) for c in table.columns}
        schema: JsonSchema = {"type": "struct", "optional": False, "name": table.name,
                              "fields": [{**mapped[c.name].schema, "field": c.name} for c in table.columns]}
        where, params, horizon = q.where(self._conn)
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in table.columns),
            sql.Identifier(table.schema, table.name)) + where
        rows: list[SourceRow] = []
        for values in self._conn.execute(query, params).fetchall():
            value = {c.name: None if v is None else mapped[c.name].parse(v) for c, v in zip(table.columns, values)}
            if self.config.incrementing_column and self.config.mode != "bulk":
                q.offset["incrementing"] = value[self.config.incrementing_column]
            if self.config.timestamp_column and self.config.mode != "bulk":
                q.offset["timestamp"] = value[self.config.timestamp_column]
            rows.append(SourceRow(topic=q.topic, value_schema=schema, value=value, partition=q.partition,
                                  offset=dict(q.offset)))
        if horizon is not None:
            # the last row of the window carries the new horizon: a restart before it re-reads the window
            q.offset["txid_horizon"] = horizon
            if rows:
                rows[-1] = dataclasses.replace(rows[-1], offset=dict(q.offset))
        return rows

    def _poll_query(self, q: _Querier) -> list[SourceRow]:
        """The custom query with the mode's criteria appended, then ``query.suffix``; the rows
        described by the result's columns (type, modifier, and NOT NULL where a column is a
        table's)."""
        where, params = q.criteria(self._conn)
        suffix = " " + self.config.query_suffix if self.config.query_suffix else ""
        statement = (sql.SQL(self.config.query.replace("%", "%%")) + where
                     + sql.SQL(suffix.replace("%", "%%")))
        with self._conn.cursor() as cur:
            cur.execute(statement, params)
            result = cur.pgresult
            assert result is not None
            columns = [self._column(result, i) for i in range(result.nfields)]
            texts = [[None if (v := result.get_value(r, i)) is None else v.decode() for i in range(result.nfields)]
                     for r in range(result.ntuples)]
        mapped = [(name, map_type(type_, _CONNECT_TYPES)) for name, type_ in columns]
        schema: JsonSchema = {"type": "struct", "optional": False,
                              "fields": [{**m.schema, "field": name} for name, m in mapped]}
        names = [name for name, _ in columns]
        for key in (self.config.incrementing_column, self.config.timestamp_column):
            if key and self.config.mode != "bulk" and key not in names:
                raise LookupError(f"query: its result has no column {key} (columns: {', '.join(names)})")
        rows: list[SourceRow] = []
        for text in texts:
            value = {name: None if t is None else m.parse(t) for (name, m), t in zip(mapped, text)}
            if self.config.mode != "bulk":
                raw = dict(zip(names, text))
                if self.config.incrementing_column:
                    q.offset["incrementing"] = value[self.config.incrementing_column]
                if self.config.timestamp_column and raw[self.config.timestamp_column] is not None:
                    q.offset.update(_offset_of_timestamp(str(raw[self.config.timestamp_column])))
            rows.append(SourceRow(topic=q.topic, value_schema=schema, value=value, partition=q.partition,
                                  offset=dict(q.offset)))
        return rows

    def _column(self, result: Any, i: int) -> tuple[str, ColumnType]:
        """A result column's name and type (its NOT NULL read from the catalog when the column is
        a table's), cached."""
        key = (result.ftype(i), result.fmod(i), result.ftable(i), result.ftablecol(i))
        name = result.fname(i).decode()
        if key not in self._columns:
            row = self._conn.execute(
                "SELECT t.typname, coalesce((SELECT attnotnull FROM pg_attribute WHERE attrelid = %s AND attnum = %s),"
                " false) FROM pg_type t WHERE t.oid = %s", (key[2], key[3], key[0])).fetchone()
            assert row is not None
            self._columns[key] = (name, ColumnType(type_name=str(row[0]), type_modifier=key[1], optional=not row[1]))
        return name, self._columns[key][1]

    def close(self) -> None:
        self._conn.close()
