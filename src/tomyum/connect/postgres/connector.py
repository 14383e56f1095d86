"""The PostgreSQL connectors as tomyum connect plugins: CDC (``io.debezium.connector.postgresql.
PostgresConnector``), and the JDBC-style source and sink (``io.confluent.connect.jdbc.
JdbcSourceConnector`` / ``JdbcSinkConnector``). Each runs one task.

The cores (``cdc``, ``jdbc_source``, ``jdbc_sink``) speak Connect's JSON schema form and plain
values; this module is the only one that touches the Connect data model: it turns their
schemas into :class:`Schema` (through JsonConverter's reading of that form, cached) and their
values into :class:`Struct`, and back for the sink.

CDC offsets: the task flushes an LSN to the replication slot only in ``commit()``, which the
worker calls after it has stored the offsets of what Kafka acknowledged — with exactly-once
source, after the transaction holding the records and their offsets has committed — so the
slot never drops WAL that a restart from the stored offset would need.

Exactly-once source (KIP-618): the connector answers SUPPORTED, as Debezium's does. A restarted
task reads the offset of the last committed transaction and skips what the slot re-sends at or
before it (see ``cdc``), so with ``exactly.once.source.support=enabled`` every streamed change
is written once. A task killed during the snapshot takes the snapshot again, as Debezium does.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from tomyum import __version__
from tomyum.connect.config import NO_DEFAULT, ConfigDef, ConfigError, ConfigType, Importance, valid_string
from tomyum.connect.connector import (
    ConnectError, ExactlyOnceSupport, SinkConnector, SinkTask, SourceConnector, SourceTask, Task,
)
from tomyum.connect.converters import JsonConverter
from tomyum.connect.data import Schema, SinkRecord, SourceRecord, Struct, Type
from tomyum.connect.postgres.cdc import CdcConfig, CdcRecord, PostgresCdc
from tomyum.connect.postgres.jdbc_sink import JdbcSinkConfig, OffsetConflict, PostgresSink, SinkRow
from tomyum.connect.postgres.jdbc_source import MODES, JdbcSource, JdbcSourceConfig, source_partitions
from tomyum.connect.postgres.types import JsonSchema

_json = JsonConverter()
_json.configure({"schemas.enable": "true"}, False)
_schemas: dict[str, Schema] = {}


def connect_schema(schema: JsonSchema) -> Schema:
    """The Connect schema of a JSON-form schema (cached: the cores build few distinct ones)."""
    text = json.dumps(schema, sort_keys=True)
    cached = _schemas.get(text)
    if cached is None:
        built = _json.as_connect_schema(schema)
        assert built is not None
        cached = _schemas[text] = built
    return cached


def connect_value(schema: Schema, value: Any) -> Any:
    """A core's plain value (dicts for structs) as a Connect value (Struct)."""
    if value is None:
        return None
    if schema.type is Type.STRUCT:
        struct = Struct(schema)
        for f in schema.fields:
            struct.put(f.name, connect_value(f.schema, value.get(f.name)))
        return struct
    if schema.type is Type.ARRAY and schema.value_schema is not None:
        return [connect_value(schema.value_schema, v) for v in value]
    return value


def plain_value(value: Any) -> Any:
    """A Connect value (Struct) as plain Python for the sink's core."""
    if isinstance(value, Struct):
        return {f.name: plain_value(value.get(f.name)) for f in value.schema.fields}
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    return value


def _define(defs: ConfigDef, keys: list[tuple[str, ConfigType, Any, str]]) -> ConfigDef:
    for name, type_, default, doc in keys:
        defs.define(name, type_, default, Importance.HIGH if default is NO_DEFAULT else Importance.MEDIUM, doc)
    return defs


def _cdc_config() -> ConfigDef:
    defs = _define(ConfigDef(), [
        ("database.hostname", ConfigType.STRING, "localhost", "PostgreSQL host"),
        ("database.port", ConfigType.INT, 5432, "PostgreSQL port"),
        ("database.user", ConfigType.STRING, "postgres", "user (needs REPLICATION)"),
        ("database.password", ConfigType.PASSWORD, None, "password"),
        ("database.dbname", ConfigType.STRING, NO_DEFAULT, "the database to capture"),
        ("topic.prefix", ConfigType.STRING, NO_DEFAULT, "topic prefix and logical server name"),
        ("slot.name", ConfigType.STRING, "debezium", "the logical replication slot"),
        ("publication.name", ConfigType.STRING, "dbz_publication", "the publication"),
        ("table.include.list", ConfigType.LIST, "", "regular expressions matched against schema.table"),
        ("heartbeat.interval.ms", ConfigType.INT, 0, "heartbeat record interval; 0 for none"),
        ("tombstones.on.delete", ConfigType.BOOLEAN, True, "a tombstone after each delete"),
        ("skipped.operations", ConfigType.LIST, "t", "operations not emitted (c,u,d,t) or none"),
    ])
    for name, default, allowed in [("plugin.name", "pgoutput", ("pgoutput",)),
                                   ("publication.autocreate.mode", "all_tables", ("all_tables", "filtered", "disabled")),
                                   ("snapshot.mode", "initial", ("initial", "never", "no_data", "initial_only", "always")),
                                   ("decimal.handling.mode", "precise", ("precise", "double", "string")),
                                   ("time.precision.mode", "adaptive", ("adaptive", "adaptive_time_microseconds",
                                                                        "connect"))]:
        defs.define(name, ConfigType.STRING, default, Importance.MEDIUM, f"one of {', '.join(allowed)}",
                    validator=valid_string(*allowed))
    return defs


def _refusal(error: ValueError, defs: ConfigDef) -> ConfigError:
    """A core's ValueError as a ConfigError on the key it is about: the key a "needs K" names,
    else the key the message starts with."""
    message = str(error)
    needed = re.search(r"needs (\S+)", message)
    name = needed.group(1) if needed and needed.group(1) in defs.keys else re.split("[:= ]", message)[0]
    return ConfigError(name, None, message)


_CDC_OPERATIONS = ("c", "u", "d", "t")


class PostgresConnector(SourceConnector):
    """Debezium's PostgreSQL connector: snapshot, then logical replication (pgoutput)."""

    version = __version__

    def __init__(self) -> None:
        self._props: dict[str, str] = {}

    def config(self) -> ConfigDef:
        return _cdc_config()

    def check_config(self, props: Mapping[str, str]) -> None:
        """What the task's capture would refuse at its start: a table pattern that is not a
        regular expression, an operation Debezium does not know."""
        for pattern in (p.strip() for p in props.get("table.include.list", "").split(",") if p.strip()):
            try:
                re.compile(pattern)
            except re.error as e:
                raise ConfigError("table.include.list", pattern, f"Not a regular expression: {pattern} ({e})") from None
        skipped = [s.strip() for s in props.get("skipped.operations", "t").split(",") if s.strip()]
        if skipped != ["none"] and any(s not in _CDC_OPERATIONS for s in skipped):
            raise ConfigError("skipped.operations", props.get("skipped.operations"),
                              "The operations are c, u, d and t, comma-separated, or none")

    def start(self, props: Mapping[str, str]) -> None:
        self.config().parse(props)
        self.check_config(props)
        self._props = dict(props)

    def task_class(self) -> type[Task]:
        return PostgresConnectorTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self._props)]  # one replication slot: one task, as Debezium

    def exactly_once_support(self, connector_config: Mapping[str, str]) -> ExactlyOnceSupport:
        """SUPPORTED, as Debezium's: each record's offset names its change's place in the WAL
        (``lsn_commit``, ``lsn``), so a task restarted from a committed offset skips exactly
        what it had already written."""
        return ExactlyOnceSupport.SUPPORTED

    def stop(self) -> None:
        pass


class PostgresConnectorTask(SourceTask):
    version = __version__

    def __init__(self) -> None:
        self._cdc: PostgresCdc | None = None

    def start(self, props: Mapping[str, str]) -> None:
        self._cdc = PostgresCdc(CdcConfig.from_props(props, version=__version__))
        self._cdc.start(self.context.offset_storage_reader.offset(self._cdc.partition))

    def _record(self, item: CdcRecord, partition: Mapping[str, Any]) -> SourceRecord:
        r = item.record
        key_schema = connect_schema(r.key_schema) if r.key_schema is not None else None
        value_schema = connect_schema(r.value_schema) if r.value_schema is not None else None
        return SourceRecord(topic=r.topic, key_schema=key_schema,
                            key=connect_value(key_schema, r.key) if key_schema else None,
                            value_schema=value_schema,
                            value=connect_value(value_schema, r.value) if value_schema else None,
                            source_partition=partition, source_offset=item.offset)

    def poll(self) -> list[SourceRecord] | None:
        assert self._cdc is not None
        if self._cdc.finished:
            return None
        return [self._record(item, self._cdc.partition) for item in self._cdc.poll(timeout_s=0.5)]

    def commit(self) -> None:
        if self._cdc is None:
            return
        stored = self.context.offset_storage_reader.offset(self._cdc.partition)
        if stored:
            self._cdc.flush(stored)

    def stop(self) -> None:
        if self._cdc is not None:
            self._cdc.close()
            self._cdc = None


def _jdbc_source_config() -> ConfigDef:
    defs = _define(ConfigDef(), [
        ("connection.url", ConfigType.STRING, NO_DEFAULT, "jdbc:postgresql://… or a libpq URL/DSN"),
        ("table.whitelist", ConfigType.LIST, "", "tables to copy"),
        ("query", ConfigType.STRING, "", "a custom query instead of table.whitelist; the mode's WHERE is appended"),
        ("query.suffix", ConfigType.STRING, "", "appended to the generated query"),
        ("topic.prefix", ConfigType.STRING, "", "prefix of each table's topic; with query, the topic"),
        ("incrementing.column.name", ConfigType.STRING, "", "strictly increasing column"),
        ("timestamp.column.name", ConfigType.STRING, "", "last-modified timestamp column"),
        ("poll.interval.ms", ConfigType.INT, 5000, "how often each table is polled"),
        ("timestamp.delay.interval.ms", ConfigType.LONG, 0, "how long after a write its row may be read"),
        ("batch.max.rows", ConfigType.INT, 100, "rows per batch"),
    ])
    defs.define("mode", ConfigType.STRING, NO_DEFAULT, Importance.HIGH, f"one of {', '.join(MODES)}",
                validator=valid_string(*MODES))
    return defs


class JdbcSourceConnector(SourceConnector):
    """Confluent's JDBC source connector's modes, on PostgreSQL."""

    version = __version__

    def __init__(self) -> None:
        self._props: dict[str, str] = {}

    def config(self) -> ConfigDef:
        return _jdbc_source_config()

    def check_config(self, props: Mapping[str, str]) -> None:
        try:
            JdbcSourceConfig.from_props(props)
        except ValueError as e:
            raise _refusal(e, self.config()) from None

    def start(self, props: Mapping[str, str]) -> None:
        self.config().parse(props)
        self.check_config(props)
        self._props = dict(props)

    def task_class(self) -> type[Task]:
        return JdbcSourceTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self._props)]

    def stop(self) -> None:
        pass


class JdbcSourceTask(SourceTask):
    version = __version__

    def __init__(self) -> None:
        self._source: JdbcSource | None = None

    def start(self, props: Mapping[str, str]) -> None:
        config = JdbcSourceConfig.from_props(props)
        reader = self.context.offset_storage_reader
        self._source = JdbcSource(config, {name: reader.offset(partition)
                                           for name, partition in source_partitions(config).items()})

    def poll(self) -> list[SourceRecord] | None:
        assert self._source is not None
        wait = self._source.next_poll_in_s()
        if wait > 0:
            # the worker calls poll in a loop: a short wait keeps it from spinning, and stop prompt
            time.sleep(min(wait, 0.2))
            return None
        out = []
        for row in self._source.poll():
            schema = connect_schema(row.value_schema)
            out.append(SourceRecord(topic=row.topic, value_schema=schema, value=connect_value(schema, row.value),
                                    source_partition=row.partition, source_offset=row.offset))
        return out

    def stop(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None


def _jdbc_sink_config() -> ConfigDef:
    defs = _define(ConfigDef(), [
        ("connection.url", ConfigType.STRING, NO_DEFAULT, "jdbc:postgresql://… or a libpq URL/DSN"),
        ("pk.fields", ConfigType.LIST, "", "primary key fields"),
        ("auto.create", ConfigType.BOOLEAN, False, "create missing tables"),
        ("auto.evolve", ConfigType.BOOLEAN, False, "add columns for new fields"),
        ("delete.enabled", ConfigType.BOOLEAN, False, "delete the row of a tombstone's key"),
        ("table.name.format", ConfigType.STRING, "${topic}", "the table of a topic"),
        ("exactly.once", ConfigType.BOOLEAN, False,
         "commit each batch's offsets in the target transaction and start from them (exactly once)"),
        ("offsets.table.name", ConfigType.STRING, "__tomyum_connect_offsets", "the table of those offsets"),
    ])
    defs.define("insert.mode", ConfigType.STRING, "insert", Importance.HIGH, "insert, upsert or update",
                validator=valid_string("insert", "upsert", "update"))
    defs.define("pk.mode", ConfigType.STRING, "none", Importance.HIGH, "none, kafka, record_key or record_value",
                validator=valid_string("none", "kafka", "record_key", "record_value"))
    return defs


class JdbcSinkConnector(SinkConnector):
    """Confluent's JDBC sink connector's keys, on PostgreSQL."""

    version = __version__

    def __init__(self) -> None:
        self._props: dict[str, str] = {}

    def config(self) -> ConfigDef:
        return _jdbc_sink_config()

    def check_config(self, props: Mapping[str, str]) -> None:
        try:
            JdbcSinkConfig.from_props(props)
        except ValueError as e:
            raise _refusal(e, self.config()) from None

    def start(self, props: Mapping[str, str]) -> None:
        self.config().parse(props)
        self.check_config(props)
        self._props = dict(props)

    def task_class(self) -> type[Task]:
        return JdbcSinkTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self._props) for _ in range(max_tasks)]

    def stop(self) -> None:
        pass

    def alter_offsets(self, connector_config: Mapping[str, str],
                      offsets: Mapping[tuple[str, int], int | None]) -> bool:
        """With exactly.once the target's offsets table is where the tasks start: alter it too."""
        config = JdbcSinkConfig.from_props(connector_config)
        if not config.exactly_once:
            return False
        sink = PostgresSink(config)
        try:
            sink.alter_offsets(offsets)
        finally:
            sink.close()
        return True


class JdbcSinkTask(SinkTask):
    """Writes each ``put`` batch in one transaction: ``put`` returning means it is stored. With
    ``exactly.once=true`` the batch's offsets are in that transaction too (see ``jdbc_sink``):
    ``open`` starts the consumer at the stored offsets, ``put`` drops what lies below them, and
    ``pre_commit`` gives Kafka only offsets the table already holds."""

    version = __version__

    def __init__(self) -> None:
        self._sink: PostgresSink | None = None

    def start(self, props: Mapping[str, str]) -> None:
        self._sink = PostgresSink(JdbcSinkConfig.from_props(props))

    def open(self, partitions: list[tuple[str, int]]) -> None:
        if self._sink is not None and self._sink.config.exactly_once:
            stored = self._sink.read_offsets(partitions)
            if stored:
                self.context.offset(stored)

    def close(self, partitions: list[tuple[str, int]]) -> None:
        if self._sink is not None:
            self._sink.forget(partitions)

    def put(self, records: list[SinkRecord]) -> None:
        assert self._sink is not None
        exactly_once = self._sink.config.exactly_once
        rows: list[SinkRow] = []
        offsets: dict[tuple[str, int], int] = {}
        for r in records:
            # a record's place in Kafka is where it was read, whatever a transform renamed
            source = (r.original_topic or r.topic, r.original_kafka_partition if r.original_kafka_partition
                      is not None else r.kafka_partition or 0)
            offset = r.original_kafka_offset if r.original_kafka_offset is not None else r.kafka_offset
            if exactly_once:
                if offset < self._sink.committed.get(source, -1):
                    continue  # written already, in the transaction that stored a later offset
                offsets[source] = max(offsets.get(source, 0), offset + 1)
            if r.value is not None and r.value_schema is None:
                raise ConnectError(f"{r.topic}: the JDBC sink needs records with a value schema")
            rows.append(SinkRow(topic=r.topic, partition=r.kafka_partition or 0, offset=r.kafka_offset,
                                key_schema=_json.as_json_schema(r.key_schema) if r.key_schema else None,
                                key=plain_value(r.key),
                                value_schema=_json.as_json_schema(r.value_schema) if r.value_schema else None,
                                value=plain_value(r.value)))
        try:
            self._sink.write(rows, offsets if exactly_once else None)
        except OffsetConflict as e:
            raise ConnectError(str(e)) from e

    def pre_commit(self, current_offsets: Mapping[tuple[str, int], int]) -> Mapping[tuple[str, int], int]:
        if self._sink is None or not self._sink.config.exactly_once:
            return current_offsets
        return {tp: o for tp, o in self._sink.committed.items() if tp in current_offsets}

    def stop(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None
