"""A JDBC-style PostgreSQL sink (Confluent's JDBC sink connector's keys) on psycopg 3.

Each record becomes one row of table ``table.name.format`` (``${topic}`` replaced by the
topic). ``insert.mode``: ``insert`` (INSERT), ``upsert`` (INSERT … ON CONFLICT (pk) DO UPDATE)
or ``update`` (UPDATE … WHERE pk). ``pk.mode``: ``none``; ``kafka`` (``__connect_topic``,
``__connect_partition``, ``__connect_offset``, or the names in ``pk.fields``); ``record_key``
(the key struct's fields, or a primitive key named by ``pk.fields``); ``record_value`` (the
value's fields named in ``pk.fields``, all of them if empty). ``auto.create`` creates a
missing table from the value schema with the primary key; ``auto.evolve`` adds columns for
new fields (nullable, as Kafka's connector does). ``delete.enabled`` (needs
``pk.mode=record_key``) deletes the row of a tombstone's key. A batch is written in one
transaction, so :meth:`PostgresSink.write` either stores all of it or none.

Exactly once (``exactly.once=true``, tomyum's key: Confluent's and Debezium's JDBC sinks have
none). The batch's rows and the next offset of each topic-partition it read go to PostgreSQL
in that one transaction: offsets in table ``offsets.table.name`` (default
``__tomyum_connect_offsets``; columns ``connector``, ``topic``, ``partition``, ``next_offset``),
created when missing. On assignment the task reads them and has the consumer start there, and
drops any record below them, so a crash anywhere — before, during or after the commit — neither
loses nor repeats a row, whatever ``insert.mode``; Kafka's committed offsets only trail the
table (for lag monitoring). The offset update is conditional on the value this sink last read
or wrote: a second writer of the same partition (a task not yet stopped after a rebalance)
makes the later commit fail instead of writing twice.

Records arrive as plain Python (schemas in Connect's JSON form, structs as dicts), so this
module needs nothing of the Connect runtime.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from tomyum.connect.postgres.jdbc_source import jdbc_url_to_dsn
from tomyum.connect.postgres.types import JsonSchema

_SQL_TYPES = {"int8": "SMALLINT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT", "float": "REAL",
              "double": "DOUBLE PRECISION", "boolean": "BOOLEAN", "string": "TEXT", "bytes": "BYTEA"}
_LOGICAL_SQL_TYPES = {"org.apache.kafka.connect.data.Decimal": "NUMERIC", "org.apache.kafka.connect.data.Date": "DATE",
                      "org.apache.kafka.connect.data.Time": "TIME",
                      "org.apache.kafka.connect.data.Timestamp": "TIMESTAMP"}
_EPOCH = datetime.datetime(1970, 1, 1)
KAFKA_PK_FIELDS = ("__connect_topic", "__connect_partition", "__connect_offset")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SinkRow:
    topic: str
    partition: int
    offset: int
    key_schema: JsonSchema | None
    key: Any
    value_schema: JsonSchema | None
    value: dict[str, Any] | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JdbcSinkConfig:
    dsn: str
    insert_mode: str = "insert"
    pk_mode: str = "none"
    pk_fields: tuple[str, ...] = ()
    auto_create: bool = False
    auto_evolve: bool = False
    delete_enabled: bool = False
    table_name_format: str = "${topic}"
    exactly_once: bool = False
    offsets_table: str = "__tomyum_connect_offsets"
    connector: str = ""

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> JdbcSinkConfig:
        def flag(key: str) -> bool:
            return props.get(key, "false").lower() == "true"

        config = cls(dsn=props["connection.url"], insert_mode=props.get("insert.mode", "insert"),
                     pk_mode=props.get("pk.mode", "none"),
                     pk_fields=tuple(f.strip() for f in props.get("pk.fields", "").split(",") if f.strip()),
                     auto_create=flag("auto.create"), auto_evolve=flag("auto.evolve"),
                     delete_enabled=flag("delete.enabled"),
                     table_name_format=props.get("table.name.format", "${topic}"),
                     exactly_once=flag("exactly.once"),
                     offsets_table=props.get("offsets.table.name") or "__tomyum_connect_offsets",
                     connector=props.get("name", ""))
        if config.insert_mode not in ("insert", "upsert", "update"):
            raise ValueError(f"insert.mode={config.insert_mode}: must be insert, upsert or update")
        if config.pk_mode not in ("none", "kafka", "record_key", "record_value"):
            raise ValueError(f"pk.mode={config.pk_mode}: must be none, kafka, record_key or record_value")
        if config.delete_enabled and config.pk_mode != "record_key":
            raise ValueError("delete.enabled=true needs pk.mode=record_key")
        if config.insert_mode in ("upsert", "update") and config.pk_mode == "none":
            raise ValueError(f"insert.mode={config.insert_mode} needs a primary key: set pk.mode")
        return config


def _sql_type(schema: JsonSchema) -> str:
    name = schema.get("name")
    if name in _LOGICAL_SQL_TYPES:
        return _LOGICAL_SQL_TYPES[name]
    if schema["type"] not in _SQL_TYPES:
        raise ValueError(f"no column type for a {schema['type']} field")
    return _SQL_TYPES[schema["type"]]


def _param(schema: JsonSchema, value: Any) -> Any:
    """A Connect value as the SQL parameter for its column (logical dates and times as ints, or as
    the UTC instants JsonConverter reads them into)."""
    name = schema.get("name")
    if isinstance(value, datetime.datetime):  # JsonConverter's logical values: instants in UTC
        if name == "org.apache.kafka.connect.data.Date":
            return value.astimezone(datetime.timezone.utc).date()
        if name == "org.apache.kafka.connect.data.Time":
            return value.astimezone(datetime.timezone.utc).time()
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)  # as the int path: naive UTC
    if value is None or not isinstance(value, int):
        return value
    if name == "org.apache.kafka.connect.data.Timestamp":
        return _EPOCH + datetime.timedelta(milliseconds=value)
    if name == "org.apache.kafka.connect.data.Date":
        return _EPOCH.date() + datetime.timedelta(days=value)
    if name == "org.apache.kafka.connect.data.Time":
        return (_EPOCH + datetime.timedelta(milliseconds=value)).time()
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class _Row:
    """One record as columns: name → (schema, value), and which columns are the key."""

    table: str
    columns: dict[str, tuple[JsonSchema, Any]]
    key_columns: tuple[str, ...]
    delete: bool


def _int_schema(type_: str) -> JsonSchema:
    return {"type": type_, "optional": False}


class OffsetConflict(Exception):
    """The offsets table moved under this sink: another writer committed the same partition."""


class PostgresSink:
    def __init__(self, config: JdbcSinkConfig) -> None:
        self.config = config
        self._conn = psycopg.connect(jdbc_url_to_dsn(config.dsn), connect_timeout=10)
        self._known: dict[str, set[str]] = {}
        # exactly.once: the next offset of each partition as the offsets table holds it
        self.committed: dict[tuple[str, int], int] = {}
        if config.exactly_once:
            with self._conn.transaction():
                self._conn.execute(sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (connector text NOT NULL, topic text NOT NULL, "
                    "partition int NOT NULL, next_offset bigint NOT NULL, PRIMARY KEY (connector, topic, partition))"
                ).format(sql.Identifier(config.offsets_table)))

    def read_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The stored next offset of each of ``partitions`` that has one (exactly.once), now the
        base of the next :meth:`write`."""
        with self._conn.transaction():
            rows = self._conn.execute(sql.SQL("SELECT topic, partition, next_offset FROM {} WHERE connector = %s")
                                      .format(sql.Identifier(self.config.offsets_table)),
                                      (self.config.connector,)).fetchall()
        wanted = set(partitions)
        found = {(str(t), int(p)): int(o) for t, p, o in rows if (str(t), int(p)) in wanted}
        for tp in wanted:
            self.committed.pop(tp, None)
        self.committed.update(found)
        return found

    def alter_offsets(self, offsets: Mapping[tuple[str, int], int | None]) -> None:
        """KIP-875 for the offsets table: set each partition's next offset, or forget it (None),
        in one transaction."""
        table = sql.Identifier(self.config.offsets_table)
        with self._conn.transaction(), self._conn.cursor() as cur:
            for (topic, partition), offset in offsets.items():
                cur.execute(sql.SQL("DELETE FROM {} WHERE connector = %s AND topic = %s AND partition = %s")
                            .format(table), (self.config.connector, topic, partition))
                if offset is not None:
                    cur.execute(sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s)").format(table),
                                (self.config.connector, topic, partition, offset))

    def forget(self, partitions: Sequence[tuple[str, int]]) -> None:
        for tp in partitions:
            self.committed.pop(tp, None)

    def _write_offsets(self, cur: psycopg.Cursor[Any], offsets: Mapping[tuple[str, int], int]) -> None:
        table = sql.Identifier(self.config.offsets_table)
        for (topic, partition), next_offset in offsets.items():
            base = self.committed.get((topic, partition))
            if base is None:
                cur.execute(sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING").format(table),
                            (self.config.connector, topic, partition, next_offset))
            else:
                cur.execute(sql.SQL("UPDATE {} SET next_offset = %s WHERE connector = %s AND topic = %s AND "
                                    "partition = %s AND next_offset = %s").format(table),
                            (next_offset, self.config.connector, topic, partition, base))
            if cur.rowcount != 1:
                raise OffsetConflict(f"{self.config.offsets_table}: {topic}-{partition} was committed by another "
                                     f"writer since this task read it (expected next offset {base})")

    def _table_name(self, topic: str) -> str:
        return self.config.table_name_format.replace("${topic}", topic)

    def _key_columns(self, r: SinkRow) -> dict[str, tuple[JsonSchema, Any]]:
        mode, fields = self.config.pk_mode, self.config.pk_fields
        if mode == "kafka":
            names = fields or KAFKA_PK_FIELDS
            return dict(zip(names, ((_int_schema("string"), r.topic), (_int_schema("int32"), r.partition),
                                    (_int_schema("int64"), r.offset))))
        if mode == "record_key":
            if r.key_schema is None or r.key_schema["type"] != "struct":
                if len(fields) != 1:
                    raise ValueError("pk.mode=record_key with a primitive key needs one name in pk.fields")
                return {fields[0]: (r.key_schema or _int_schema("string"), r.key)}
            return {f["field"]: (f, r.key[f["field"]]) for f in r.key_schema["fields"]
                    if not fields or f["field"] in fields}
        return {}

    def _row(self, r: SinkRow) -> _Row:
        table = self._table_name(r.topic)
        keys = self._key_columns(r)
        if r.value is None:
            return _Row(table, keys, tuple(keys), delete=True)
        assert r.value_schema is not None
        values = {f["field"]: (f, r.value[f["field"]]) for f in r.value_schema["fields"]}
        if self.config.pk_mode == "record_value":
            key_names = self.config.pk_fields or tuple(values)
            return _Row(table, values, tuple(key_names), delete=False)
        return _Row(table, {**keys, **{k: v for k, v in values.items() if k not in keys}}, tuple(keys), delete=False)

    def _ensure_table(self, cur: psycopg.Cursor[Any], row: _Row) -> None:
        known = self._known.get(row.table)
        if known is None:
            cur.execute("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
                        "AND NOT attisdropped", (f'"{row.table}"',))
            known = {str(r[0]) for r in cur.fetchall()}
            if not known:
                if not self.config.auto_create:
                    raise LookupError(f"table {row.table} does not exist and auto.create is false")
                columns = [sql.SQL("{} {}{}").format(sql.Identifier(n), sql.SQL(_sql_type(s)),
                                                      sql.SQL("" if s.get("optional") and n not in row.key_columns
                                                              else " NOT NULL"))
                           for n, (s, _) in row.columns.items()]
                if row.key_columns:
                    columns.append(sql.SQL("PRIMARY KEY ({})").format(
                        sql.SQL(", ").join(map(sql.Identifier, row.key_columns))))
                cur.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(row.table),
                                                                   sql.SQL(", ").join(columns)))
                known = set(row.columns)
            self._known[row.table] = known
        missing = [n for n in row.columns if n not in known]
        if missing and not row.delete:
            if not self.config.auto_evolve:
                raise LookupError(f"table {row.table} has no column {missing[0]} and auto.evolve is false")
            for name in missing:
                cur.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    sql.Identifier(row.table), sql.Identifier(name), sql.SQL(_sql_type(row.columns[name][0]))))
                known.add(name)

    @staticmethod
    def statement(row: _Row, insert_mode: str) -> tuple[sql.Composed, list[Any]]:
        """The SQL for one row and its parameters."""
        table = sql.Identifier(row.table)
        keys = [sql.SQL("{} = %s").format(sql.Identifier(k)) for k in row.key_columns]
        key_values = [_param(*row.columns[k]) for k in row.key_columns]
        if row.delete:
            return sql.SQL("DELETE FROM {} WHERE {}").format(table, sql.SQL(" AND ").join(keys)), key_values
        names = list(row.columns)
        values = [_param(*row.columns[n]) for n in names]
        non_keys = [n for n in names if n not in row.key_columns]
        if insert_mode == "update":
            assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in non_keys)
            return (sql.SQL("UPDATE {} SET {} WHERE {}").format(table, assignments, sql.SQL(" AND ").join(keys)),
                    [_param(*row.columns[n]) for n in non_keys] + key_values)
        insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            table, sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(sql.Placeholder() * len(names)))
        if insert_mode == "upsert":
            action = (sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in non_keys))
                if non_keys else sql.SQL("DO NOTHING"))
            insert = sql.SQL("{} ON CONFLICT ({}) {}").format(
                insert, sql.SQL(", ").join(map(sql.Identifier, row.key_columns)), action)
        return insert, values

    def write(self, records: Sequence[SinkRow], offsets: Mapping[tuple[str, int], int] | None = None) -> None:
        """Write ``records`` in one transaction (tombstones deleted when ``delete.enabled``), with
        ``offsets`` (the next offset of each partition read, exactly.once) in the same one."""
        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                for record in records:
                    if record.value is None and not self.config.delete_enabled:
                        continue
                    row = self._row(record)
                    self._ensure_table(cur, row)
                    query, params = self.statement(row, self.config.insert_mode)
                    cur.execute(query, params)
                if offsets:
                    self._write_offsets(cur, offsets)
            if offsets:
                self.committed.update(offsets)
        except BaseException:
            self._known.clear()  # a rolled-back CREATE/ALTER TABLE: read the catalog again
            raise

    def close(self) -> None:
        self._conn.close()
