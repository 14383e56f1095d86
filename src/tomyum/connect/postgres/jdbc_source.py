"""A JDBC-style PostgreSQL source (Confluent's JDBC source connector's modes and offsets) on psycopg 3.

Modes (``mode``): ``bulk`` (the whole table each ``poll.interval.ms``), ``incrementing`` (rows
whose ``incrementing.column.name`` is above the last one seen), ``timestamp`` and
``timestamp+incrementing`` (rows new or changed since the last ``timestamp.column.name`` /
(timestamp, id) seen). ``table.whitelist`` names tables (topic ``<topic.prefix><table>``). A custom ``query`` is not
supported (its rows carry no transaction id to bound the timestamp modes by); configuring one
is refused with a message saying so.

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
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from tomyum.connect.postgres import catalog
from tomyum.connect.postgres.envelope import Table
from tomyum.connect.postgres.types import JsonSchema, TypeOptions, map_type

MODES = ("bulk", "incrementing", "timestamp", "timestamp+incrementing")
_WRAP = 1 << 32
# JDBC source's types: Connect's own logical types (Date, Timestamp, Decimal), not Debezium's
_CONNECT_TYPES = TypeOptions(decimal_handling_mode="precise", time_precision_mode="connect")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JdbcSourceConfig:
    dsn: str
    mode: str
    tables: tuple[str, ...] = ()
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
        if props.get("query"):
            raise ValueError("query: a custom query is not supported; name the tables in table.whitelist")
        if not tables:
            raise ValueError("table.whitelist: name at least one table")
        if mode in ("incrementing", "timestamp+incrementing") and not props.get("incrementing.column.name"):
            raise ValueError(f"mode={mode} needs incrementing.column.name")
        if mode.startswith("timestamp") and not props.get("timestamp.column.name"):
            raise ValueError(f"mode={mode} needs timestamp.column.name")
        return cls(dsn=props["connection.url"], mode=mode, tables=tables,
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


class _Querier:
    """One table: its cursor (offset) and the query of each poll."""

    def __init__(self, config: JdbcSourceConfig, table: str, offset: Mapping[str, Any] | None) -> None:
        self.config = config
        self.table = table
        self.partition = {"table": table}
        self.topic = config.topic_prefix + table
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


class JdbcSource:
    """Polls the configured tables; :meth:`poll` returns rows due now, with their offsets."""

    def __init__(self, config: JdbcSourceConfig, offsets: Mapping[str, Mapping[str, Any] | None]) -> None:
        self.config = config
        self._queriers = [_Querier(config, t, offsets.get(t)) for t in config.tables]
        self._conn = psycopg.connect(jdbc_url_to_dsn(config.dsn), autocommit=True, connect_timeout=10,
                                     options="-c TimeZone=UTC -c DateStyle=ISO -c bytea_output=hex")
        self._tables: dict[str, Table] = {}

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
        assert q.table is not None
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

    def close(self) -> None:
        self._conn.close()
