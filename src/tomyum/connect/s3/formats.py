"""The S3 sink's ``format.class``: how the records of one object are written (Confluent's
``io.confluent.connect.s3.format.{json.JsonFormat, avro.AvroFormat, parquet.ParquetFormat}``).

Pure: a :class:`RecordWriter` takes records and gives the object's bytes; nothing is uploaded here.

- JSON (``.json``): one value per line, as JsonConverter with ``schemas.enable=false`` writes it.
- Avro (``.avro``): an Avro object container file (fastavro), the schema derived from the
  records' Connect schema as Confluent's AvroData does for the common types (names default to
  ``io.confluent.connect.avro.ConnectDefault``); records need a schema.
- Parquet (``.<codec>.parquet``, ``parquet.codec`` snappy by default; pyarrow): Struct values only,
  as Confluent's (it writes Parquet through Avro records).

fastavro and pyarrow are imported when a writer of theirs is made, so a worker without the
``connect-s3`` extra still runs JSON (and says what to install for the others).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from tomyum.connect.config import ConfigError
from tomyum.connect.connector import ConnectError
from tomyum.connect.converters import JsonConverter, dumps
from tomyum.connect.data import (DATE_LOGICAL_NAME, DECIMAL_LOGICAL_NAME, DECIMAL_SCALE_PARAMETER,
                                 TIME_LOGICAL_NAME, TIMESTAMP_LOGICAL_NAME, Schema, SinkRecord, Struct, Type)

S3_FORMAT = "io.confluent.connect.s3.format."
FORMATS = {"JsonFormat": "json.JsonFormat", "AvroFormat": "avro.AvroFormat", "ParquetFormat": "parquet.ParquetFormat"}
PARQUET_CODECS = ("none", "snappy", "gzip", "zstd", "lz4", "brotli")


def format_name(value: str) -> str:
    """``JsonFormat``, ``AvroFormat`` or ``ParquetFormat`` for Confluent's class name or its last part."""
    short = value.removeprefix(S3_FORMAT).rpartition(".")[2]
    if short not in FORMATS:
        raise ConfigError("format.class", value,
                          f"Unknown format; one of: {', '.join(S3_FORMAT + f for f in FORMATS.values())}")
    return short


def _needs(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ConnectError(f"this format.class needs {module}: pip install 'tomyum[connect-s3]'") from None


class RecordWriter:
    """The records of one object, in order; ``data()`` is the object's bytes."""

    extension = ""

    def __init__(self) -> None:
        self.count = 0
        self.schema: Schema | None = None

    def accepts(self, record: SinkRecord) -> bool:
        """False when ``record`` cannot share this object (its schema changed)."""
        return True

    def add(self, record: SinkRecord) -> None:
        raise NotImplementedError

    def data(self) -> bytes:
        raise NotImplementedError


class JsonRecordWriter(RecordWriter):
    extension = ".json"

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[bytes] = []
        self._json = JsonConverter()
        self._json.schemas_enable = False

    def add(self, record: SinkRecord) -> None:
        self._lines.append(dumps(self._json.to_json(record.value_schema, record.value)) + b"\n")
        self.count += 1

    def data(self) -> bytes:
        return b"".join(self._lines)


_AVRO_PRIMITIVES = {Type.INT8: "int", Type.INT16: "int", Type.INT32: "int", Type.INT64: "long",
                    Type.FLOAT32: "float", Type.FLOAT64: "double", Type.BOOLEAN: "boolean",
                    Type.STRING: "string", Type.BYTES: "bytes"}


def avro_schema(schema: Schema, names: list[int] | None = None) -> Any:
    """Confluent AvroData's schema for a Connect schema (optional: a union with null first)."""
    names = names if names is not None else [0]
    out: Any
    if schema.name == DECIMAL_LOGICAL_NAME:
        scale = int((schema.parameters or {}).get(DECIMAL_SCALE_PARAMETER, "0"))
        out = {"type": "bytes", "logicalType": "decimal", "precision": 64, "scale": scale}
    elif schema.name == DATE_LOGICAL_NAME:
        out = {"type": "int", "logicalType": "date"}
    elif schema.name == TIME_LOGICAL_NAME:
        out = {"type": "int", "logicalType": "time-millis"}
    elif schema.name == TIMESTAMP_LOGICAL_NAME:
        out = {"type": "long", "logicalType": "timestamp-millis"}
    elif schema.type in _AVRO_PRIMITIVES:
        out = _AVRO_PRIMITIVES[schema.type]
    elif schema.type is Type.ARRAY:
        assert schema.value_schema is not None
        out = {"type": "array", "items": avro_schema(schema.value_schema, names)}
    elif schema.type is Type.MAP and schema.key_schema is not None and schema.key_schema.type is Type.STRING:
        assert schema.value_schema is not None
        out = {"type": "map", "values": avro_schema(schema.value_schema, names)}
    elif schema.type is Type.STRUCT:
        names[0] += 1
        name = schema.name or ("ConnectDefault" + ("" if names[0] == 1 else str(names[0])))
        full = name if "." in name else f"io.confluent.connect.avro.{name}"
        out = {"type": "record", "name": full,
               "fields": [{"name": f.name, "type": avro_schema(f.schema, names),
                           **({"default": None} if f.schema.optional else {})} for f in schema.fields]}
    else:
        raise ConnectError(f"no Avro schema for {schema} (maps need string keys)")
    return ["null", out] if schema.optional else out


def _plain(value: Any) -> Any:
    """A Connect value as fastavro and pyarrow take it: structs as dicts."""
    if isinstance(value, Struct):
        return {f.name: _plain(value.get(f.name)) for f in value.schema.fields}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class AvroRecordWriter(RecordWriter):
    extension = ".avro"

    def __init__(self) -> None:
        super().__init__()
        self._fastavro = _needs("fastavro")
        self._records: list[Any] = []

    def accepts(self, record: SinkRecord) -> bool:
        return self.count == 0 or record.value_schema == self.schema

    def add(self, record: SinkRecord) -> None:
        if record.value_schema is None:
            raise ConnectError(f"{record.topic}-{record.kafka_partition}@{record.kafka_offset}: AvroFormat needs "
                               "a value schema (a converter with schemas, e.g. JsonConverter schemas.enable=true)")
        self.schema = record.value_schema
        self._records.append(_plain(record.value))
        self.count += 1

    def data(self) -> bytes:
        assert self.schema is not None
        out = io.BytesIO()
        parsed = self._fastavro.parse_schema(avro_schema(self.schema))
        self._fastavro.writer(out, parsed, self._records)
        return out.getvalue()


def arrow_type(schema: Schema) -> Any:
    pa = _needs("pyarrow")
    if schema.name == DECIMAL_LOGICAL_NAME:
        return pa.decimal128(38, int((schema.parameters or {}).get(DECIMAL_SCALE_PARAMETER, "0")))
    logical: dict[str, Callable[[], Any]] = {
        DATE_LOGICAL_NAME: pa.date32, TIME_LOGICAL_NAME: lambda: pa.time32("ms"),
        TIMESTAMP_LOGICAL_NAME: lambda: pa.timestamp("ms", tz="UTC")}
    if schema.name in logical:
        return logical[schema.name]()
    simple = {Type.INT8: pa.int8, Type.INT16: pa.int16, Type.INT32: pa.int32, Type.INT64: pa.int64,
              Type.FLOAT32: pa.float32, Type.FLOAT64: pa.float64, Type.BOOLEAN: pa.bool_,
              Type.STRING: pa.string, Type.BYTES: pa.binary}
    if schema.type in simple:
        return simple[schema.type]()
    if schema.type is Type.ARRAY and schema.value_schema is not None:
        return pa.list_(arrow_type(schema.value_schema))
    if schema.type is Type.MAP and schema.key_schema is not None and schema.value_schema is not None:
        return pa.map_(arrow_type(schema.key_schema), arrow_type(schema.value_schema))
    return pa.struct([pa.field(f.name, arrow_type(f.schema), nullable=f.schema.optional) for f in schema.fields])


class ParquetRecordWriter(RecordWriter):
    def __init__(self, codec: str) -> None:
        super().__init__()
        self._pa = _needs("pyarrow")
        _needs("pyarrow.parquet")
        self.codec = codec
        self.extension = ".parquet" if codec == "none" else {"gzip": ".gz", "zstd": ".zstd", "lz4": ".lz4",
                                                             "brotli": ".br"}.get(codec, "." + codec) + ".parquet"
        self._rows: list[dict[str, Any]] = []

    def accepts(self, record: SinkRecord) -> bool:
        return self.count == 0 or record.value_schema == self.schema

    def add(self, record: SinkRecord) -> None:
        if record.value_schema is None or record.value_schema.type is not Type.STRUCT:
            raise ConnectError(f"{record.topic}-{record.kafka_partition}@{record.kafka_offset}: ParquetFormat "
                               "needs Struct values with a schema")
        self.schema = record.value_schema
        self._rows.append(_plain(record.value))
        self.count += 1

    def data(self) -> bytes:
        assert self.schema is not None
        import pyarrow.parquet as pq
        pa = self._pa
        schema = pa.schema([pa.field(f.name, arrow_type(f.schema), nullable=f.schema.optional)
                            for f in self.schema.fields])
        table = pa.Table.from_pylist(self._rows, schema=schema)
        out = io.BytesIO()
        pq.write_table(table, out, compression=self.codec if self.codec != "none" else None)
        return out.getvalue()


def writer_factory(format_class: str, parquet_codec: str = "snappy") -> Callable[[], RecordWriter]:
    """A maker of empty writers for ``format.class``; checks that its library is installed now."""
    name = format_name(format_class)
    if name == "JsonFormat":
        return JsonRecordWriter
    if name == "AvroFormat":
        AvroRecordWriter()
        return AvroRecordWriter
    if parquet_codec not in PARQUET_CODECS:
        raise ConfigError("parquet.codec", parquet_codec, f"String must be one of: {', '.join(PARQUET_CODECS)}")
    ParquetRecordWriter(parquet_codec)
    return lambda: ParquetRecordWriter(parquet_codec)


__all__ = ["AvroRecordWriter", "JsonRecordWriter", "ParquetRecordWriter", "RecordWriter", "avro_schema",
           "format_name", "writer_factory"]
