"""Debezium's change-event envelope for PostgreSQL rows, so Debezium consumers work unchanged.

One change of one row is one record on topic ``<topic.prefix>.<schema>.<table>``:

- key: a struct ``<topic>.Key`` of the primary-key columns (None if the table has no key);
- value: a struct ``<topic>.Envelope`` with ``before`` and ``after`` (structs ``<topic>.Value``
  of every column), ``source`` (``io.debezium.connector.postgresql.Source``: version,
  connector ``postgresql``, name, ts_ms, snapshot, db, sequence, ts_us, ts_ns, schema, table,
  txId, lsn, xmin), ``transaction`` (null: transaction metadata is not provided), ``op``
  (``r`` snapshot read, ``c`` insert, ``u`` update, ``d`` delete, ``t`` truncate) and
  ``ts_ms``/``ts_us``/``ts_ns`` (when the connector processed it);
- after a delete, a tombstone (same key, value None) when ``tombstones.on.delete`` is true.

``before`` follows the table's REPLICA IDENTITY, as in Debezium: FULL gives the whole old row;
DEFAULT (the primary key) gives an update no ``before`` (unless the key changed) and a delete a
``before`` holding only the key, the other columns null — or, where the column is NOT NULL,
Debezium's fallback value (0, "", false). A TOASTed value the server did not resend becomes
Debezium's ``__debezium_unavailable_value`` placeholder (strings, bytes) or null.

Schemas are Connect's JSON schema form and values plain Python (see ``types``): no Connect
runtime is needed here; ``connector.py`` turns them into Connect Schema/Struct.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tomyum.connect.postgres.pgoutput import Unchanged
from tomyum.connect.postgres.types import ColumnType, JsonSchema, Mapped, TypeOptions, map_type

UNAVAILABLE_VALUE = "__debezium_unavailable_value"
SNAPSHOT_ENUM = "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"

RowText = Mapping[str, "str | Unchanged | None"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TableColumn:
    name: str
    type: ColumnType


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    """A captured table as the connector knows it now (columns in order, primary key)."""

    schema: str
    name: str
    columns: tuple[TableColumn, ...]
    primary_key: tuple[str, ...]
    replica_identity: str = "d"

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SourceInfo:
    """What Debezium's ``source`` block says about one change."""

    ts_ms: int  # commit time (snapshot: when the snapshot read it)
    snapshot: str  # "false" when streaming; "true"/"first"/"last" during the snapshot
    txid: int | None
    lsn: int | None
    sequence: str | None = None  # Debezium's ["<last commit lsn>","<lsn>"], as text


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChangeRecord:
    topic: str
    key_schema: JsonSchema | None
    key: dict[str, Any] | None
    value_schema: JsonSchema | None
    value: dict[str, Any] | None


def _struct(name: str, fields: list[JsonSchema], optional: bool, version: int | None = None) -> JsonSchema:
    schema: JsonSchema = {"type": "struct", "fields": fields, "optional": optional, "name": name}
    if version is not None:
        schema["version"] = version
    return schema


def _field(name: str, schema: JsonSchema) -> JsonSchema:
    return {**schema, "field": name}


def source_schema() -> JsonSchema:
    def plain(name: str, type_: str, optional: bool = False) -> JsonSchema:
        return {"type": type_, "optional": optional, "field": name}

    snapshot = {"type": "string", "optional": True, "name": "io.debezium.data.Enum", "version": 1,
                "parameters": {"allowed": SNAPSHOT_ENUM}, "default": "false", "field": "snapshot"}
    return _struct("io.debezium.connector.postgresql.Source", [
        plain("version", "string"), plain("connector", "string"), plain("name", "string"),
        plain("ts_ms", "int64"), snapshot, plain("db", "string"), plain("sequence", "string", True),
        plain("ts_us", "int64", True), plain("ts_ns", "int64", True), plain("schema", "string"),
        plain("table", "string"), plain("txId", "int64", True), plain("lsn", "int64", True),
        plain("xmin", "int64", True)], optional=False)


def _transaction_schema() -> JsonSchema:
    return _struct("event.block", [
        {"type": "string", "optional": False, "field": "id"},
        {"type": "int64", "optional": False, "field": "total_order"},
        {"type": "int64", "optional": False, "field": "data_collection_order"}], optional=True, version=1)


@dataclasses.dataclass(slots=True)
class _TableSchemas:
    topic: str
    mapped: dict[str, Mapped]
    key_schema: JsonSchema | None
    row_schema: JsonSchema
    envelope_schema: JsonSchema


class EnvelopeBuilder:
    """Builds Debezium change records; schemas are computed once per table definition."""

    def __init__(self, *, topic_prefix: str, database: str, version: str,
                 options: TypeOptions = TypeOptions()) -> None:
        self.topic_prefix = topic_prefix
        self.database = database
        self.version = version
        self.options = options
        self._cache: dict[Table, _TableSchemas] = {}
        self._source_schema = source_schema()

    def topic(self, table: Table) -> str:
        return f"{self.topic_prefix}.{table.schema}.{table.name}"

    def _schemas(self, table: Table) -> _TableSchemas:
        cached = self._cache.get(table)
        if cached is not None:
            return cached
        topic = self.topic(table)
        mapped = {c.name: map_type(c.type, self.options) for c in table.columns}
        key_fields = [_field(c, {**mapped[c].schema, "optional": False}) for c in table.primary_key]
        key_schema = _struct(f"{topic}.Key", key_fields, optional=False) if key_fields else None
        row = _struct(f"{topic}.Value", [_field(c.name, mapped[c.name].schema) for c in table.columns], optional=True)
        envelope = _struct(f"{topic}.Envelope", [
            _field("before", row), _field("after", row), _field("source", self._source_schema),
            _field("transaction", _transaction_schema()), {"type": "string", "optional": False, "field": "op"},
            {"type": "int64", "optional": True, "field": "ts_ms"},
            {"type": "int64", "optional": True, "field": "ts_us"},
            {"type": "int64", "optional": True, "field": "ts_ns"}], optional=False, version=2)
        built = _TableSchemas(topic, mapped, key_schema, row, envelope)
        self._cache[table] = built
        return built

    def _row(self, table: Table, schemas: _TableSchemas, text: RowText) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for column in table.columns:
            raw = text.get(column.name)
            mapped = schemas.mapped[column.name]
            if isinstance(raw, Unchanged):
                row[column.name] = UNAVAILABLE_VALUE if mapped.schema["type"] in ("string",) else (
                    UNAVAILABLE_VALUE.encode() if mapped.schema["type"] == "bytes" else None)
            elif raw is None:
                row[column.name] = None if column.type.optional else mapped.fallback
            else:
                row[column.name] = mapped.parse(raw)
        return row

    def _source(self, table: Table, info: SourceInfo) -> dict[str, Any]:
        return {"version": self.version, "connector": "postgresql", "name": self.topic_prefix, "ts_ms": info.ts_ms,
                "snapshot": info.snapshot, "db": self.database, "sequence": info.sequence,
                "ts_us": info.ts_ms * 1000, "ts_ns": info.ts_ms * 1_000_000, "schema": table.schema,
                "table": table.name, "txId": info.txid, "lsn": info.lsn, "xmin": None}

    def change(self, table: Table, op: str, *, before: RowText | None, after: RowText | None,
               source: SourceInfo, now_us: int) -> ChangeRecord:
        """The record for one row change; ``op`` is r/c/u/d. The key comes from ``after``, or
        ``before`` for a delete."""
        schemas = self._schemas(table)
        before_row = self._row(table, schemas, before) if before is not None else None
        after_row = self._row(table, schemas, after) if after is not None else None
        keyed = after_row if after_row is not None else before_row
        key = ({c: keyed[c] for c in table.primary_key}
               if schemas.key_schema is not None and keyed is not None else None)
        value = {"before": before_row, "after": after_row, "source": self._source(table, source),
                 "transaction": None, "op": op, "ts_ms": now_us // 1000, "ts_us": now_us, "ts_ns": now_us * 1000}
        return ChangeRecord(topic=schemas.topic, key_schema=schemas.key_schema, key=key,
                            value_schema=schemas.envelope_schema, value=value)

    def key_of(self, table: Table, row: RowText) -> dict[str, Any] | None:
        """The key struct of ``row`` (for the before-image of a changed primary key)."""
        schemas = self._schemas(table)
        if schemas.key_schema is None:
            return None
        values = self._row(table, schemas, row)
        return {c: values[c] for c in table.primary_key}

    def truncate(self, table: Table, *, source: SourceInfo, now_us: int) -> ChangeRecord:
        schemas = self._schemas(table)
        value = {"before": None, "after": None, "source": self._source(table, source), "transaction": None,
                 "op": "t", "ts_ms": now_us // 1000, "ts_us": now_us, "ts_ns": now_us * 1000}
        return ChangeRecord(topic=schemas.topic, key_schema=None, key=None,
                            value_schema=schemas.envelope_schema, value=value)

    @staticmethod
    def tombstone(record: ChangeRecord) -> ChangeRecord:
        return dataclasses.replace(record, value_schema=None, value=None)
