"""Connect's data model: Schema, Struct and the records that flow through a worker.

The shapes and names are Kafka Connect's (``org.apache.kafka.connect.data``): a schema has a
type, optionality, an optional default, name, version, doc and parameters; structs carry their
schema and are validated against it on ``put``. Logical types (Date, Time, Timestamp, Decimal)
are schemas with Kafka's names. Records are frozen; transforms make new ones with
:meth:`ConnectRecord.new_record`, which keeps the subclass's own fields (source offsets, sink
offsets), as Kafka's ``newRecord`` does.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
from collections.abc import Iterable, Iterator, Mapping
from typing import Any


class DataError(Exception):
    """Kafka's DataException: data that does not fit its schema or cannot be converted."""


class Type(enum.Enum):
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BOOLEAN = "boolean"
    STRING = "string"
    BYTES = "bytes"
    ARRAY = "array"
    MAP = "map"
    STRUCT = "struct"

    @property
    def is_primitive(self) -> bool:
        return self not in (Type.ARRAY, Type.MAP, Type.STRUCT)


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    name: str
    index: int
    schema: Schema


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Schema:
    """A Connect schema. Equality is structural, as Kafka's ConnectSchema.equals."""

    type: Type
    optional: bool = False
    default: Any = None
    name: str | None = None
    version: int | None = None
    doc: str | None = None
    parameters: Mapping[str, str] | None = None
    fields: tuple[Field, ...] = ()
    key_schema: Schema | None = None
    value_schema: Schema | None = None

    def __hash__(self) -> int:
        return hash((self.type, self.optional, self.name, self.version, tuple(f.name for f in self.fields)))

    def field(self, name: str) -> Field | None:
        if self.type is not Type.STRUCT:
            raise DataError("Cannot look up fields on non-struct type")
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def __str__(self) -> str:
        return f"Schema{{{self.name + ':' if self.name else ''}{self.type.name}}}"


INT8_SCHEMA = Schema(type=Type.INT8)
INT16_SCHEMA = Schema(type=Type.INT16)
INT32_SCHEMA = Schema(type=Type.INT32)
INT64_SCHEMA = Schema(type=Type.INT64)
FLOAT32_SCHEMA = Schema(type=Type.FLOAT32)
FLOAT64_SCHEMA = Schema(type=Type.FLOAT64)
BOOLEAN_SCHEMA = Schema(type=Type.BOOLEAN)
STRING_SCHEMA = Schema(type=Type.STRING)
BYTES_SCHEMA = Schema(type=Type.BYTES)
OPTIONAL_INT8_SCHEMA = Schema(type=Type.INT8, optional=True)
OPTIONAL_INT16_SCHEMA = Schema(type=Type.INT16, optional=True)
OPTIONAL_INT32_SCHEMA = Schema(type=Type.INT32, optional=True)
OPTIONAL_INT64_SCHEMA = Schema(type=Type.INT64, optional=True)
OPTIONAL_FLOAT32_SCHEMA = Schema(type=Type.FLOAT32, optional=True)
OPTIONAL_FLOAT64_SCHEMA = Schema(type=Type.FLOAT64, optional=True)
OPTIONAL_BOOLEAN_SCHEMA = Schema(type=Type.BOOLEAN, optional=True)
OPTIONAL_STRING_SCHEMA = Schema(type=Type.STRING, optional=True)
OPTIONAL_BYTES_SCHEMA = Schema(type=Type.BYTES, optional=True)

DATE_LOGICAL_NAME = "org.apache.kafka.connect.data.Date"
TIME_LOGICAL_NAME = "org.apache.kafka.connect.data.Time"
TIMESTAMP_LOGICAL_NAME = "org.apache.kafka.connect.data.Timestamp"
DECIMAL_LOGICAL_NAME = "org.apache.kafka.connect.data.Decimal"
DECIMAL_SCALE_PARAMETER = "scale"


class SchemaBuilder:
    """Kafka's fluent SchemaBuilder: ``SchemaBuilder.struct().name("x").field("a", INT32_SCHEMA).build()``."""

    def __init__(self, type_: Type) -> None:
        self._type = type_
        self._optional = False
        self._default: Any = None
        self._name: str | None = None
        self._version: int | None = None
        self._doc: str | None = None
        self._parameters: dict[str, str] | None = None
        self._fields: list[Field] = []
        self._key: Schema | None = None
        self._value: Schema | None = None

    @classmethod
    def struct(cls) -> SchemaBuilder:
        return cls(Type.STRUCT)

    @classmethod
    def array(cls, value_schema: Schema) -> SchemaBuilder:
        b = cls(Type.ARRAY)
        b._value = value_schema
        return b

    @classmethod
    def map(cls, key_schema: Schema, value_schema: Schema) -> SchemaBuilder:
        b = cls(Type.MAP)
        b._key, b._value = key_schema, value_schema
        return b

    @classmethod
    def from_schema(cls, schema: Schema, *, keep_fields: bool = True) -> SchemaBuilder:
        """A builder holding ``schema``'s metadata (Kafka's SchemaUtil.copySchemaBasics)."""
        b = cls(schema.type)
        b._name, b._version, b._doc = schema.name, schema.version, schema.doc
        b._parameters = dict(schema.parameters) if schema.parameters is not None else None
        b._key, b._value = schema.key_schema, schema.value_schema
        if keep_fields:
            b._fields = list(schema.fields)
        return b

    def optional(self) -> SchemaBuilder:
        self._optional = True
        return self

    def required(self) -> SchemaBuilder:
        self._optional = False
        return self

    def default_value(self, value: Any) -> SchemaBuilder:
        self._default = value
        return self

    def name(self, name: str | None) -> SchemaBuilder:
        self._name = name
        return self

    def version(self, version: int | None) -> SchemaBuilder:
        self._version = version
        return self

    def doc(self, doc: str | None) -> SchemaBuilder:
        self._doc = doc
        return self

    def parameter(self, key: str, value: str) -> SchemaBuilder:
        if self._parameters is None:
            self._parameters = {}
        self._parameters[key] = value
        return self

    def parameters(self, params: Mapping[str, str]) -> SchemaBuilder:
        for k, v in params.items():
            self.parameter(k, v)
        return self

    def field(self, name: str, schema: Schema) -> SchemaBuilder:
        if self._type is not Type.STRUCT:
            raise DataError("Cannot create fields on type " + self._type.name)
        if any(f.name == name for f in self._fields):
            raise DataError(f"Cannot create field because of field name duplication {name}")
        self._fields.append(Field(name, len(self._fields), schema))
        return self

    def build(self) -> Schema:
        return Schema(type=self._type, optional=self._optional, default=self._default, name=self._name,
                      version=self._version, doc=self._doc,
                      parameters=dict(self._parameters) if self._parameters is not None else None,
                      fields=tuple(Field(f.name, i, f.schema) for i, f in enumerate(self._fields)),
                      key_schema=self._key, value_schema=self._value)


def date_schema(optional: bool = False) -> Schema:
    return Schema(type=Type.INT32, name=DATE_LOGICAL_NAME, version=1, optional=optional)


def time_schema(optional: bool = False) -> Schema:
    return Schema(type=Type.INT32, name=TIME_LOGICAL_NAME, version=1, optional=optional)


def timestamp_schema(optional: bool = False) -> Schema:
    return Schema(type=Type.INT64, name=TIMESTAMP_LOGICAL_NAME, version=1, optional=optional)


def decimal_schema(scale: int, optional: bool = False) -> Schema:
    return Schema(type=Type.BYTES, name=DECIMAL_LOGICAL_NAME, version=1, optional=optional,
                  parameters={DECIMAL_SCALE_PARAMETER: str(scale)})


_PY_TYPES: dict[Type, tuple[type, ...]] = {
    Type.INT8: (int,), Type.INT16: (int,), Type.INT32: (int,), Type.INT64: (int,),
    Type.FLOAT32: (float, int), Type.FLOAT64: (float, int), Type.BOOLEAN: (bool,),
    Type.STRING: (str,), Type.BYTES: (bytes, bytearray, memoryview), Type.ARRAY: (list, tuple),
    Type.MAP: (dict,),
}
_INT_RANGES = {Type.INT8: 8, Type.INT16: 16, Type.INT32: 32, Type.INT64: 64}


def validate_value(schema: Schema | None, value: Any, field_name: str | None = None) -> None:
    """Kafka's ConnectSchema.validateValue: raise DataError if ``value`` does not fit ``schema``."""
    where = f" for field: \"{field_name}\"" if field_name else ""
    if schema is None:
        return
    if value is None:
        if not schema.optional:
            raise DataError(f"Invalid value: null used for required field: \"{field_name}\", schema type: {schema.type.name}"
                            if field_name else "Invalid value: null used for required field")
        return
    if schema.name == DECIMAL_LOGICAL_NAME:
        ok = isinstance(value, decimal.Decimal)
    elif schema.name in (DATE_LOGICAL_NAME, TIME_LOGICAL_NAME, TIMESTAMP_LOGICAL_NAME):
        ok = isinstance(value, (datetime.datetime, datetime.date, datetime.time)) or (isinstance(value, int) and not isinstance(value, bool))
    elif schema.type is Type.STRUCT:
        ok = isinstance(value, Struct)
        if ok and value.schema != schema:
            raise DataError(f"Struct schemas do not match{where}.")
    elif schema.type in _INT_RANGES:
        bits = _INT_RANGES[schema.type]
        ok = isinstance(value, int) and not isinstance(value, bool) and -(1 << (bits - 1)) <= value < (1 << (bits - 1))
    else:
        ok = isinstance(value, _PY_TYPES[schema.type]) and not (schema.type in (Type.FLOAT32, Type.FLOAT64) and isinstance(value, bool))
    if not ok:
        raise DataError(f"Invalid Java object for schema with type {schema.type.name}: {type(value).__name__}{where}")
    if schema.type is Type.ARRAY and schema.value_schema is not None:
        for item in value:
            validate_value(schema.value_schema, item)
    elif schema.type is Type.MAP and schema.key_schema is not None and schema.value_schema is not None:
        for k, v in value.items():
            validate_value(schema.key_schema, k)
            validate_value(schema.value_schema, v)


class Struct:
    """A value of a STRUCT schema (Kafka's Struct): fields set by name, validated on put."""

    __slots__ = ("schema", "_values")

    def __init__(self, schema: Schema) -> None:
        if schema.type is not Type.STRUCT:
            raise DataError("Not a struct schema: " + str(schema))
        self.schema = schema
        self._values: list[Any] = [None] * len(schema.fields)

    def _field(self, name: str) -> Field:
        f = self.schema.field(name)
        if f is None:
            raise DataError(f"{name} is not a valid field name")
        return f

    def put(self, name: str, value: Any) -> Struct:
        f = self._field(name)
        validate_value(f.schema, value, name)
        self._values[f.index] = value
        return self

    def get(self, name: str) -> Any:
        f = self._field(name)
        value = self._values[f.index]
        if value is None and f.schema.default is not None:
            return f.schema.default
        return value

    def get_without_default(self, name: str) -> Any:
        return self._values[self._field(name).index]

    def validate(self) -> None:
        for f in self.schema.fields:
            validate_value(f.schema, self.get(f.name), f.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Struct) and other.schema == self.schema and other._values == self._values

    def __hash__(self) -> int:
        return hash(tuple(repr(v) for v in self._values))

    def __repr__(self) -> str:
        inner = ",".join(f"{f.name}={self._values[f.index]!r}" for f in self.schema.fields)
        return f"Struct{{{inner}}}"


@dataclasses.dataclass(frozen=True, slots=True)
class Header:
    key: str
    schema: Schema | None
    value: Any


class Headers:
    """An ordered, repeatable list of headers (Kafka's ConnectHeaders)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[Header] = ()) -> None:
        self._items = list(items)

    def add(self, key: str, value: Any, schema: Schema | None = None) -> Headers:
        self._items.append(Header(key, schema, value))
        return self

    def remove(self, key: str) -> Headers:
        self._items = [h for h in self._items if h.key != key]
        return self

    def last_with_name(self, key: str) -> Header | None:
        for h in reversed(self._items):
            if h.key == key:
                return h
        return None

    def all_with_name(self, key: str) -> list[Header]:
        return [h for h in self._items if h.key == key]

    def duplicate(self) -> Headers:
        return Headers(self._items)

    def __iter__(self) -> Iterator[Header]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and other._items == self._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConnectRecord:
    """Kafka's ConnectRecord: topic, partition, key and value with their schemas, timestamp, headers."""

    topic: str
    kafka_partition: int | None = None
    key_schema: Schema | None = None
    key: Any = None
    value_schema: Schema | None = None
    value: Any = None
    timestamp: int | None = None
    headers: Headers = dataclasses.field(default_factory=Headers)

    def new_record(self, **changes: Any) -> Any:
        """A copy with ``changes`` (Kafka's newRecord); the headers are copied so the copy may change them."""
        if "headers" not in changes:
            changes["headers"] = self.headers.duplicate()
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SourceRecord(ConnectRecord):
    """A record from a source task, with where it came from: ``source_partition`` → ``source_offset``."""

    source_partition: Mapping[str, Any] | None = None
    source_offset: Mapping[str, Any] | None = None


class TimestampType(enum.Enum):
    NO_TIMESTAMP_TYPE = -1
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class SinkRecord(ConnectRecord):
    """A record handed to a sink task, with its Kafka offset."""

    kafka_offset: int = -1
    timestamp_type: TimestampType = TimestampType.NO_TIMESTAMP_TYPE
    original_topic: str | None = None
    original_kafka_partition: int | None = None
    original_kafka_offset: int | None = None
