"""What the connectors read from PostgreSQL's catalog: a table's columns (type name, type
modifier, NOT NULL), primary key and replica identity; the tables of a publication; and the
publication itself (created when ``publication.autocreate.mode`` says so). psycopg 3."""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from tomyum.connect.postgres.envelope import Table, TableColumn
from tomyum.connect.postgres.pgoutput import Relation
from tomyum.connect.postgres.types import ColumnType

_COLUMNS = """
SELECT n.nspname, c.relname, c.relreplident, a.attname, t.typname, a.atttypmod, a.attnotnull
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
WHERE c.oid = %s
ORDER BY a.attnum
"""

_PRIMARY_KEY = """
SELECT a.attname
FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = %s AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)
"""


def table_by_oid(conn: psycopg.Connection[tuple[object, ...]], oid: int) -> Table:
    """The table's definition as the catalog says now."""
    rows = conn.execute(_COLUMNS, (oid,)).fetchall()
    if not rows:
        raise LookupError(f"no table with oid {oid}")
    key = tuple(str(r[0]) for r in conn.execute(_PRIMARY_KEY, (oid,)).fetchall())
    columns = tuple(TableColumn(name=str(r[3]), type=ColumnType(type_name=str(r[4]), type_modifier=int(str(r[5])),
                                                               optional=not r[6])) for r in rows)
    first = rows[0]
    return Table(schema=str(first[0]), name=str(first[1]), columns=columns, primary_key=key,
                 replica_identity=str(first[2]))


def table_oid(conn: psycopg.Connection[tuple[object, ...]], schema: str, name: str) -> int:
    row = conn.execute("SELECT %s::regclass::oid", (f'"{schema}"."{name}"',)).fetchone()
    assert row is not None
    return int(str(row[0]))


def publication_tables(conn: psycopg.Connection[tuple[object, ...]], publication: str) -> list[tuple[str, str]]:
    rows = conn.execute("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s "
                        "ORDER BY schemaname, tablename", (publication,)).fetchall()
    return [(str(s), str(t)) for s, t in rows]


def matches(include: list[re.Pattern[str]], schema: str, table: str) -> bool:
    """Debezium's ``table.include.list``: regular expressions matched against ``schema.table``."""
    return not include or any(p.fullmatch(f"{schema}.{table}") for p in include)


def ensure_publication(conn: psycopg.Connection[tuple[object, ...]], name: str, mode: str,
                       include: list[re.Pattern[str]]) -> None:
    """Create the publication if missing, as ``publication.autocreate.mode`` says:
    ``all_tables`` (FOR ALL TABLES), ``filtered`` (the tables matching ``table.include.list``)
    or ``disabled`` (it must exist already)."""
    exists = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone()
    if exists:
        return
    if mode == "disabled":
        raise LookupError(f"publication {name} does not exist and publication.autocreate.mode is disabled")
    if mode == "all_tables":
        conn.execute(sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(sql.Identifier(name)))
        return
    rows = conn.execute("SELECT schemaname, tablename FROM pg_tables "
                        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").fetchall()
    tables = [sql.Identifier(str(s), str(t)) for s, t in rows if matches(include, str(s), str(t))]
    if not tables:
        raise LookupError(f"no table matches table.include.list for publication {name}")
    conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(sql.Identifier(name),
                                                                      sql.SQL(", ").join(tables)))


def table_from_relation(conn: psycopg.Connection[tuple[object, ...]], relation: Relation) -> Table:
    """The table as a Relation message describes it — its columns as of that point of the WAL,
    which the catalog may have moved past (a column added since) — with the NOT NULL flags and
    the primary key the catalog gives for those columns."""
    now = table_by_oid(conn, relation.oid)
    current = {c.name: c.type for c in now.columns}
    oids = [c.type_oid for c in relation.columns]
    names = {int(str(oid)): str(name) for oid, name in
             conn.execute("SELECT oid, typname FROM pg_type WHERE oid = ANY(%s)", (oids,)).fetchall()}
    columns = tuple(TableColumn(name=c.name, type=ColumnType(
        type_name=str(names.get(c.type_oid, "text")), type_modifier=c.type_modifier,
        optional=current[c.name].optional if c.name in current else True)) for c in relation.columns)
    key = tuple(k for k in now.primary_key if any(c.name == k for c in columns))
    return Table(schema=relation.namespace, name=relation.name, columns=columns, primary_key=key,
                 replica_identity=relation.replica_identity)
