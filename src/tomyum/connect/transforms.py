"""Kafka's single message transforms and predicates (``org.apache.kafka.connect.transforms``).

Each transform is configured with the keys Kafka documents and behaves as Kafka's on both
schemaless (maps) and schema'd (Struct) records; ``$Key``/``$Value`` variants choose the side.
A connector's ``transforms``/``predicates`` keys build a :class:`TransformationChain`:
``transforms.<alias>.type``, its own keys under ``transforms.<alias>.``, and optionally
``transforms.<alias>.predicate`` (an alias of ``predicates``) with ``negate``.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import re
from collections.abc import Mapping
from typing import Any

from tomyum.connect import plugins
from tomyum.connect.config import ConfigError
from tomyum.connect.connector import ConnectError
from tomyum.connect.javamap import HashMapOrder, java_hash_map
from tomyum.connect.data import (
    DATE_LOGICAL_NAME, DECIMAL_LOGICAL_NAME, OPTIONAL_INT32_SCHEMA, OPTIONAL_INT64_SCHEMA,
    OPTIONAL_STRING_SCHEMA, STRING_SCHEMA, TIME_LOGICAL_NAME, TIMESTAMP_LOGICAL_NAME,
    ConnectRecord, DataError, Schema, SchemaBuilder, SinkRecord, Struct, Type,
    date_schema, time_schema, timestamp_schema,
)

_PKG = "org.apache.kafka.connect.transforms"


def _require_map(value: Any, purpose: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataError(f"Only Map objects supported in absence of schema for [{purpose}], found: "
                        f"{'null' if value is None else type(value).__name__}")
    return value


def _require_struct(value: Any, purpose: str) -> Struct:
    if not isinstance(value, Struct):
        raise DataError(f"Only Struct objects supported for [{purpose}], found: "
                        f"{'null' if value is None else type(value).__name__}")
    return value


def _require_schema(schema: Schema | None, purpose: str) -> Schema:
    if schema is None:
        raise DataError(f"Schema required for [{purpose}]")
    return schema


def _list(props: Mapping[str, str], key: str, default: str = "") -> list[str]:
    raw = props.get(key, default)
    return [p.strip() for p in str(raw).split(",") if p.strip()]


def _as_optional(schema: Schema) -> Schema:
    import dataclasses
    return schema if schema.optional else dataclasses.replace(schema, optional=True)


class Transformation:
    """Base of transforms; subclasses implement ``configure`` and ``apply``."""

    key_side = False

    def configure(self, props: Mapping[str, str]) -> None:
        pass

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    # side helpers
    def operating_schema(self, r: ConnectRecord) -> Schema | None:
        return r.key_schema if self.key_side else r.value_schema

    def operating_value(self, r: ConnectRecord) -> Any:
        return r.key if self.key_side else r.value

    def new_record(self, r: ConnectRecord, schema: Schema | None, value: Any) -> ConnectRecord:
        if self.key_side:
            rec: ConnectRecord = r.new_record(key_schema=schema, key=value)
        else:
            rec = r.new_record(value_schema=schema, value=value)
        return rec


def _struct_copy(schema: Schema, source: Struct, names: list[str] | None = None) -> Struct:
    out = Struct(schema)
    for f in schema.fields:
        out.put(f.name, source.get(f.name))
    return out


# --- Cast -------------------------------------------------------------------------------------
_CAST_TYPES = {"int8": Type.INT8, "int16": Type.INT16, "int32": Type.INT32, "int64": Type.INT64,
               "float32": Type.FLOAT32, "float64": Type.FLOAT64, "boolean": Type.BOOLEAN,
               "string": Type.STRING}
_INT_BITS = {Type.INT8: 8, Type.INT16: 16, Type.INT32: 32, Type.INT64: 64}


def _wrap_int(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def cast_value(value: Any, target: Type) -> Any:
    """Kafka's Cast: numbers truncate and wrap as Java's narrowing does, booleans are 1/0,
    strings parse, anything casts to its string form."""
    if value is None:
        return None
    if isinstance(value, (Struct, dict, list, tuple)):
        raise DataError(f"Cast transformation does not support casting from {type(value).__name__}; supported "
                        "types are [INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING, BYTES]")
    if target is Type.STRING:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (bytes, bytearray)):
            return base64.b64encode(bytes(value)).decode("ascii")
        if isinstance(value, float):
            return _java_float_str(value)
        return str(value)
    if target is Type.BOOLEAN:
        if isinstance(value, str):
            return value.strip().lower() == "true"
        return value != 0
    if isinstance(value, bool):
        number: int | float = 1 if value else 0
    elif isinstance(value, str):
        try:
            number = int(value.strip()) if target in _INT_BITS else float(value.strip())
        except ValueError as e:
            raise DataError(f"Value {value!r} is not a valid {target.name}") from e
    elif isinstance(value, (int, float, decimal.Decimal)):
        number = value  # type: ignore[assignment]
    else:
        raise DataError(f"Unexpected type in Cast transformation: {type(value).__name__}")
    if target in _INT_BITS:
        return _wrap_int(int(number), _INT_BITS[target])
    return float(number)


def _java_float_str(value: float) -> str:
    from tomyum.connect.converters import java_double_str
    return java_double_str(value)


class Cast(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        spec = _list(props, "spec")
        if not spec:
            raise ConfigError("spec", props.get("spec"), "Must specify at least one field to cast.")
        self.whole: Type | None = None
        self.casts: dict[str, Type] = {}
        for item in spec:
            if ":" in item:
                name, _, t = item.partition(":")
                if t.strip() not in _CAST_TYPES:
                    raise ConfigError("spec", props.get("spec"), f"Invalid type found in casting spec: {t.strip()}")
                self.casts[name.strip()] = _CAST_TYPES[t.strip()]
            else:
                if item not in _CAST_TYPES or len(spec) > 1:
                    raise ConfigError("spec", props.get("spec"),
                                      "Cast transformations that specify a type to cast the entire value to may only specify a single cast in their spec")
                self.whole = _CAST_TYPES[item]

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        schema, value = self.operating_schema(r), self.operating_value(r)
        if value is None:
            return r
        if schema is None:
            if self.whole is not None:
                return self.new_record(r, None, cast_value(value, self.whole))
            source = _require_map(value, "cast types")
            m = HashMapOrder.copy_of(source)  # Kafka: new HashMap<>(value), every spec'd field put
            for name, t in self.casts.items():
                m.put(name, cast_value(source.get(name), t))
            return self.new_record(r, None, m.to_dict())
        if self.whole is not None:
            new_schema = SchemaBuilder(self.whole).build()
            if schema.optional:
                new_schema = _as_optional(new_schema)
            return self.new_record(r, new_schema, cast_value(value, self.whole))
        struct = _require_struct(value, "cast types")
        b = SchemaBuilder.from_schema(schema, keep_fields=False)
        if schema.optional:
            b.optional()
        for f in schema.fields:
            if f.name in self.casts:
                fb = SchemaBuilder(self.casts[f.name])
                if f.schema.optional:
                    fb.optional()
                if f.schema.default is not None:
                    fb.default_value(cast_value(f.schema.default, self.casts[f.name]))
                b.field(f.name, fb.build())
            else:
                b.field(f.name, f.schema)
        new_schema = b.build()
        out = Struct(new_schema)
        for f in schema.fields:
            v = struct.get_without_default(f.name)
            out.put(f.name, cast_value(v, self.casts[f.name]) if f.name in self.casts else v)
        return self.new_record(r, new_schema, out)


# --- DropHeaders, InsertHeader, HeaderFrom -----------------------------------------------------
class DropHeaders(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        self.headers = set(_list(props, "headers"))
        if not self.headers:
            raise ConfigError("headers", props.get("headers"), "Empty list")

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        headers = r.headers.duplicate()
        for h in self.headers:
            headers.remove(h)
        out: ConnectRecord = r.new_record(headers=headers)
        return out


def parse_literal(text: str) -> tuple[Schema | None, Any]:
    """Kafka's Values.parseString, for the literals of InsertHeader (simplified: booleans,
    integers, floats, else a string)."""
    from tomyum.connect.headers import SimpleHeaderConverter
    return SimpleHeaderConverter().to_connect_header("", "", text.encode("utf-8"))


class InsertHeader(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        if not props.get("header"):
            raise ConfigError("header", None, 'Missing required configuration "header" which has no default value.')
        if "value.literal" not in props:
            raise ConfigError("value.literal", None, 'Missing required configuration "value.literal" which has no default value.')
        self.header = props["header"]
        self.schema, self.value = parse_literal(props["value.literal"])

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        headers = r.headers.duplicate().add(self.header, self.value, self.schema)
        out: ConnectRecord = r.new_record(headers=headers)
        return out


class HeaderFrom(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        self.fields = _list(props, "fields")
        self.headers = _list(props, "headers")
        if len(self.fields) != len(self.headers):
            raise ConfigError("fields", props.get("fields"), "'fields' config must have the same number of elements as 'headers' config.")
        self.move = str(props.get("operation", "")).strip() == "move"
        if str(props.get("operation", "")).strip() not in ("move", "copy"):
            raise ConfigError("operation", props.get("operation"), "String must be one of: move, copy")

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        schema, value = self.operating_schema(r), self.operating_value(r)
        headers = r.headers.duplicate()
        if schema is None:  # a tombstone is refused, as by Kafka's (requireMap / requireStruct)
            m = _require_map(value, "header " + ("move" if self.move else "copy"))
            copy = HashMapOrder.copy_of(m)
            for f, h in zip(self.fields, self.headers):
                headers.add(h, m.get(f), None)
                if self.move:
                    copy.remove(f)
            rec = self.new_record(r, None, copy.to_dict())
            out: ConnectRecord = rec.new_record(headers=headers)
            return out
        struct = _require_struct(value, "header " + ("move" if self.move else "copy"))
        for f, h in zip(self.fields, self.headers):
            field = schema.field(f)
            if field is None:
                raise DataError(f"{f} is not a valid field name")
            headers.add(h, struct.get(f), field.schema)
        if not self.move:
            out = r.new_record(headers=headers)
            return out
        b = SchemaBuilder.from_schema(schema, keep_fields=False)
        if schema.optional:
            b.optional()
        for fld in schema.fields:
            if fld.name not in self.fields:
                b.field(fld.name, fld.schema)
        new_schema = b.build()
        out = self.new_record(r, new_schema, _struct_copy(new_schema, struct)).new_record(headers=headers)
        return out


# --- ExtractField, HoistField, ValueToKey -------------------------------------------------------
class ExtractField(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        if not props.get("field"):
            raise ConfigError("field", props.get("field"), "String may not be empty")
        self.field = props["field"]

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        schema, value = self.operating_schema(r), self.operating_value(r)
        if schema is None:
            if value is None:
                return self.new_record(r, None, None)
            m = _require_map(value, "field extraction")
            return self.new_record(r, None, m.get(self.field))
        if value is not None:
            _require_struct(value, "field extraction")
        field = schema.field(self.field)
        if field is None:
            raise ValueError(f"Unknown field: {self.field}")
        return self.new_record(r, field.schema, None if value is None else value.get(self.field))


class HoistField(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        if not props.get("field"):
            raise ConfigError("field", props.get("field"), "String may not be empty")
        self.field = props["field"]

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        schema, value = self.operating_schema(r), self.operating_value(r)
        if schema is None:
            return self.new_record(r, None, java_hash_map([(self.field, value)]))
        new_schema = SchemaBuilder.struct().field(self.field, schema).build()
        return self.new_record(r, new_schema, Struct(new_schema).put(self.field, value))


class ValueToKey(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        self.fields = _list(props, "fields")
        if not self.fields:
            raise ConfigError("fields", props.get("fields"), "Empty list")

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        if r.value_schema is None:
            m = _require_map(r.value, "copying fields from value to key")
            key_map = java_hash_map(((f, m.get(f)) for f in self.fields), capacity=len(self.fields))
            out: ConnectRecord = r.new_record(key_schema=None, key=key_map)
            return out
        value = _require_struct(r.value, "copying fields from value to key")
        b = SchemaBuilder.struct()
        for f in self.fields:
            field = r.value_schema.field(f)
            if field is None:
                raise DataError(f"Field does not exist: {f}")
            b.field(f, field.schema)
        key_schema = b.build()
        key = Struct(key_schema)
        for f in self.fields:
            key.put(f, value.get(f))
        out = r.new_record(key_schema=key_schema, key=key)
        return out


# --- Filter -----------------------------------------------------------------------------------
class Filter(Transformation):
    """Drops every record (use it with a predicate)."""

    def apply(self, r: ConnectRecord) -> ConnectRecord | None:
        return None


# --- Flatten ----------------------------------------------------------------------------------
class Flatten(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        self.delimiter = props.get("delimiter", ".")

    def _name(self, prefix: str, name: str) -> str:
        return name if not prefix else prefix + self.delimiter + name

    def _flatten_map(self, prefix: str, m: Mapping[str, Any], out: dict[str, Any]) -> None:
        for k, v in m.items():
            name = self._name(prefix, k)
            if isinstance(v, dict):
                self._flatten_map(name, v, out)
            elif v is None or isinstance(v, (bool, int, float, str, bytes, list, decimal.Decimal,
                                             datetime.date, datetime.time)):
                out[name] = v
            else:
                raise DataError(f"Flatten transformation does not support {type(v).__name__} for record with schemas (for field {name}).")

    def _flatten_schema(self, prefix: str, schema: Schema, optional: bool, b: SchemaBuilder) -> None:
        for f in schema.fields:
            name = self._name(prefix, f.name)
            fopt = optional or f.schema.optional
            if f.schema.type is Type.STRUCT:
                self._flatten_schema(name, f.schema, fopt, b)
            elif f.schema.type is Type.MAP:
                raise DataError(f"Flatten transformation does not support {f.schema.type.name} for record with schemas (for field {name}).")
            else:
                fs = _as_optional(f.schema) if fopt and not f.schema.optional else f.schema
                b.field(name, fs)

    def _flatten_struct(self, prefix: str, schema: Schema, struct: Struct | None, out: Struct) -> None:
        for f in schema.fields:
            name = self._name(prefix, f.name)
            v = None if struct is None else struct.get(f.name)
            if f.schema.type is Type.STRUCT:
                self._flatten_struct(name, f.schema, v, out)
            else:
                out.put(name, v)

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        schema, value = self.operating_schema(r), self.operating_value(r)
        if schema is None:
            if value is None:
                return r
            out: dict[str, Any] = {}
            self._flatten_map("", _require_map(value, "flattening"), out)
            return self.new_record(r, None, out)
        if value is None:
            return r
        struct = _require_struct(value, "flattening")
        b = SchemaBuilder.from_schema(schema, keep_fields=False)
        if schema.optional:
            b.optional()
        self._flatten_schema("", schema, False, b)
        new_schema = b.build()
        flat = Struct(new_schema)
        self._flatten_struct("", schema, struct, flat)
        return self.new_record(r, new_schema, flat)


# --- InsertField ------------------------------------------------------------------------------
class InsertField(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        def spec(key: str) -> tuple[str, bool] | None:
            raw = props.get(key)
            if not raw:
                return None
            if raw.endswith("!"):
                return raw[:-1], False
            if raw.endswith("?"):
                return raw[:-1], True
            return raw, True
        self.topic_field = spec("topic.field")
        self.partition_field = spec("partition.field")
        self.offset_field = spec("offset.field")
        self.timestamp_field = spec("timestamp.field")
        self.static_field = spec("static.field")
        self.static_value = props.get("static.value")
        if self.topic_field is None and self.partition_field is None and self.offset_field is None \
                and self.timestamp_field is None and self.static_field is None:
            raise ConfigError("topic.field", None, "No field insertion configured")
        if self.static_field is not None and self.static_value is None:
            raise ConfigError("static.value", None, "No value specified for static field: " + self.static_field[0])

    def _insertions(self, r: ConnectRecord) -> list[tuple[tuple[str, bool], Schema, Any]]:
        out: list[tuple[tuple[str, bool], Schema, Any]] = []
        def s(opt: bool, schema: Schema) -> Schema:
            return _as_optional(schema) if opt else schema
        if self.topic_field:
            out.append((self.topic_field, s(self.topic_field[1], STRING_SCHEMA), r.topic))
        if self.partition_field:
            out.append((self.partition_field, s(self.partition_field[1], SchemaBuilder(Type.INT32).build()), r.kafka_partition))
        if self.offset_field:
            if not isinstance(r, SinkRecord):
                raise DataError("Offset insertion is only supported for sink connectors, record is of type: " + type(r).__name__)
            out.append((self.offset_field, s(self.offset_field[1], SchemaBuilder(Type.INT64).build()), r.kafka_offset))
        if self.timestamp_field:
            out.append((self.timestamp_field, timestamp_schema(self.timestamp_field[1]),
                        None if r.timestamp is None else datetime.datetime.fromtimestamp(r.timestamp / 1000, datetime.timezone.utc)))
        if self.static_field:
            out.append((self.static_field, s(self.static_field[1], STRING_SCHEMA), self.static_value))
        return out

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        schema, value = self.operating_schema(r), self.operating_value(r)
        if value is None and not self.key_side:
            return r  # tombstones pass untouched (Kafka's InsertField, replace.null.with.default aside)
        if schema is None:
            m = HashMapOrder.copy_of(_require_map(value, "field insertion"))
            for (name, _), _s, v in self._insertions(r):
                if v is None:  # Kafka puts the partition, timestamp and static value only when set
                    continue
                m.put(name, r.timestamp if _s.name == TIMESTAMP_LOGICAL_NAME else v)
            return self.new_record(r, None, m.to_dict())
        struct = _require_struct(value, "field insertion")
        b = SchemaBuilder.from_schema(schema, keep_fields=True)
        if schema.optional:
            b.optional()
        ins = self._insertions(r)
        for (name, _), fs, _v in ins:
            b.field(name, fs)
        new_schema = b.build()
        out = Struct(new_schema)
        for f in schema.fields:
            out.put(f.name, struct.get(f.name))
        for (name, _), _s, v in ins:
            out.put(name, v)
        return self.new_record(r, new_schema, out)


# --- MaskField --------------------------------------------------------------------------------
_MASKS: dict[Type, Any] = {Type.BOOLEAN: False, Type.INT8: 0, Type.INT16: 0, Type.INT32: 0, Type.INT64: 0,
                           Type.FLOAT32: 0.0, Type.FLOAT64: 0.0, Type.STRING: "", Type.BYTES: b"",
                           Type.ARRAY: [], Type.MAP: {}}


def _mask_for(value: Any, schema: Schema | None) -> Any:
    if schema is not None:
        if schema.name == DECIMAL_LOGICAL_NAME:
            return decimal.Decimal(0)
        if schema.name in (DATE_LOGICAL_NAME, TIMESTAMP_LOGICAL_NAME):
            return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        if schema.type in _MASKS:
            m = _MASKS[schema.type]
            return type(m)() if isinstance(m, (list, dict)) else m
        raise DataError(f"Cannot mask value of type {schema.type.name} with schema {schema}")
    for t, py in ((bool, False), (int, 0), (float, 0.0), (str, ""), (bytes, b""), (decimal.Decimal, decimal.Decimal(0))):
        if isinstance(value, t):
            return py
    if isinstance(value, list):
        return []
    if isinstance(value, dict):
        return {}
    raise DataError(f"Cannot mask value of type: {type(value).__name__}")


class MaskField(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        self.fields = set(_list(props, "fields"))
        if not self.fields:
            raise ConfigError("fields", props.get("fields"), "Empty list")
        self.replacement = props.get("replacement") or None

    def _masked(self, value: Any, schema: Schema | None) -> Any:
        if value is None:
            return None
        if self.replacement is None:
            return _mask_for(value, schema)
        target = schema.type if schema is not None else (
            Type.STRING if isinstance(value, str) else Type.BOOLEAN if isinstance(value, bool)
            else Type.INT64 if isinstance(value, int) else Type.FLOAT64 if isinstance(value, float) else None)
        if target is None or target not in _CAST_TYPES.values():
            raise DataError(f"Cannot mask value of type {type(value).__name__} with custom replacement.")
        try:
            return cast_value(self.replacement, target)
        except DataError as e:
            raise DataError(f"Unable to convert {self.replacement} ({type(self.replacement).__name__}) to number") from e

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        schema, value = self.operating_schema(r), self.operating_value(r)
        if schema is None:  # a tombstone is refused, as by Kafka's (requireMap / requireStruct)
            source = _require_map(value, "masking")
            m = HashMapOrder.copy_of(source)  # Kafka: new HashMap<>(value), every masked field put
            for name in java_hash_map((f, None) for f in self.fields):  # a HashSet's order
                m.put(name, self._masked(source.get(name), None))
            return self.new_record(r, None, m.to_dict())
        struct = _require_struct(value, "masking")
        out = Struct(schema)
        for f in schema.fields:
            v = struct.get(f.name)
            out.put(f.name, self._masked(v, f.schema) if f.name in self.fields else v)
        return self.new_record(r, schema, out)


# --- RegexRouter, TimestampRouter -------------------------------------------------------------
def _java_replacement(replacement: str) -> str:
    return re.sub(r"\$(\d+)", r"\\g<\1>", replacement.replace("\\", "\\\\"))


class RegexRouter(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        if "regex" not in props or "replacement" not in props:
            raise ConfigError("regex", props.get("regex"), 'Missing required configuration "regex"/"replacement"')
        self.regex = re.compile(props["regex"])
        self.replacement = _java_replacement(props["replacement"])

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        if self.regex.fullmatch(r.topic):
            out: ConnectRecord = r.new_record(topic=self.regex.sub(self.replacement, r.topic, count=0))
            return out
        return r


_JAVA_FORMAT = [("yyyy", "%Y"), ("yy", "%y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"),
                ("ss", "%S"), ("SSS", "%f"), ("Z", "%z"), ("a", "%p"), ("hh", "%I"), ("EEE", "%a"), ("MMM", "%b")]


def java_format_to_strftime(fmt: str) -> str:
    """SimpleDateFormat → strftime for the common letters; quoted text is literal."""
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "'":
            j = fmt.find("'", i + 1)
            j = len(fmt) if j < 0 else j
            out.append(fmt[i + 1:j].replace("%", "%%") or "'")
            i = j + 1
            continue
        for java, py in sorted(_JAVA_FORMAT, key=lambda p: -len(p[0])):
            if fmt.startswith(java, i):
                out.append(py)
                i += len(java)
                break
        else:
            out.append(fmt[i].replace("%", "%%"))
            i += 1
    return "".join(out)


def format_java(dt: datetime.datetime, fmt: str) -> str:
    text = dt.strftime(java_format_to_strftime(fmt))
    if "SSS" in fmt:  # %f is microseconds; SimpleDateFormat's SSS is milliseconds
        text = text.replace(dt.strftime("%f"), f"{dt.microsecond // 1000:03d}", 1)
    return text


class TimestampRouter(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        self.topic_format = props.get("topic.format", "${topic}-${timestamp}")
        self.timestamp_format = props.get("timestamp.format", "yyyyMMdd")

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        if r.timestamp is None:
            raise DataError(f"Timestamp missing on record: {r}")
        dt = datetime.datetime.fromtimestamp(r.timestamp / 1000, datetime.timezone.utc)
        topic = self.topic_format.replace("${topic}", r.topic).replace("${timestamp}", format_java(dt, self.timestamp_format))
        out: ConnectRecord = r.new_record(topic=topic)
        return out


# --- ReplaceField -----------------------------------------------------------------------------
class ReplaceField(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        self.exclude = set(_list(props, "exclude") or _list(props, "blacklist"))
        self.include = set(_list(props, "include") or _list(props, "whitelist"))
        self.renames: dict[str, str] = {}
        for pair in _list(props, "renames"):
            old, sep, new = pair.partition(":")
            if not sep or not old or not new:
                raise ConfigError("renames", props.get("renames"), "Invalid rename mapping: " + pair)
            self.renames[old] = new
        self.reverse = {v: k for k, v in self.renames.items()}

    def _keep(self, name: str) -> bool:
        return name not in self.exclude and (not self.include or name in self.include)

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        schema, value = self.operating_schema(r), self.operating_value(r)
        if value is None:
            return r
        if schema is None:
            m = _require_map(value, "field replacement")
            renamed = ((self.renames.get(k, k), v) for k, v in m.items() if self._keep(k))
            return self.new_record(r, None, java_hash_map(renamed, capacity=len(m)))
        struct = _require_struct(value, "field replacement")
        b = SchemaBuilder.from_schema(schema, keep_fields=False)
        if schema.optional:
            b.optional()
        kept = [f for f in schema.fields if self._keep(f.name)]
        for f in kept:
            b.field(self.renames.get(f.name, f.name), f.schema)
        new_schema = b.build()
        out = Struct(new_schema)
        for f in kept:
            out.put(self.renames.get(f.name, f.name), struct.get(f.name))
        return self.new_record(r, new_schema, out)


# --- SetSchemaMetadata ------------------------------------------------------------------------
class SetSchemaMetadata(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        self.name = props.get("schema.name") or None
        self.version = int(props["schema.version"]) if props.get("schema.version") else None
        if self.name is None and self.version is None:
            raise ConfigError("schema.name", None, "Neither schema name nor version configured")

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        import dataclasses
        if self.operating_value(r) is None and self.operating_schema(r) is None:
            return r
        schema = _require_schema(self.operating_schema(r), "updating schema metadata")
        new_schema = dataclasses.replace(schema, name=self.name if self.name is not None else schema.name,
                                         version=self.version if self.version is not None else schema.version)
        value = self.operating_value(r)
        if isinstance(value, Struct):
            value = _struct_copy(new_schema, value)
        return self.new_record(r, new_schema, value)


# --- TimestampConverter -----------------------------------------------------------------------
_UNIX_DIVISORS = {"seconds": 1000.0, "milliseconds": 1.0, "microseconds": 0.001, "nanoseconds": 0.000001}


class TimestampConverter(Transformation):
    def configure(self, props: Mapping[str, str]) -> None:
        self.field = props.get("field", "")
        self.target = props.get("target.type", "")
        if self.target not in ("string", "unix", "Date", "Time", "Timestamp"):
            raise ConfigError("target.type", self.target, "Unknown timestamp type in TimestampConverter: " + self.target)
        self.format = props.get("format", "")
        if self.target == "string" and not self.format:
            raise ConfigError("format", "", "TimestampConverter requires format option to be specified when using string timestamps")
        self.precision = props.get("unix.precision", "milliseconds")

    def _to_datetime(self, value: Any, schema: Schema | None) -> datetime.datetime:
        if isinstance(value, datetime.datetime):
            return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
        if isinstance(value, datetime.date):
            return datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.timezone.utc)
        if isinstance(value, str):
            if not self.format:
                raise ConnectError("TimestampConverter requires format option to be specified when using string timestamps")
            try:
                return datetime.datetime.strptime(value, java_format_to_strftime(self.format)).replace(tzinfo=datetime.timezone.utc)
            except ValueError as e:
                raise DataError(f"Could not parse timestamp: value ({value}) does not match pattern ({self.format})") from e
        if isinstance(value, int) and not isinstance(value, bool):
            if schema is not None and schema.name == DATE_LOGICAL_NAME:
                millis = value * 86_400_000
            elif schema is not None and schema.name in (TIME_LOGICAL_NAME, TIMESTAMP_LOGICAL_NAME):
                millis = value
            else:
                millis = int(value * _UNIX_DIVISORS[self.precision])
            return datetime.datetime.fromtimestamp(0, datetime.timezone.utc) + datetime.timedelta(milliseconds=millis)
        raise DataError(f"Expected timestamp to be a Long, Date or String, but found {type(value).__name__}")

    def _target_schema(self, optional: bool) -> Schema:
        if self.target == "string":
            return OPTIONAL_STRING_SCHEMA if optional else STRING_SCHEMA
        if self.target == "unix":
            return OPTIONAL_INT64_SCHEMA if optional else SchemaBuilder(Type.INT64).build()
        return {"Date": date_schema, "Time": time_schema, "Timestamp": timestamp_schema}[self.target](optional)

    def _convert(self, value: Any, schema: Schema | None) -> Any:
        if value is None:
            return None
        dt = self._to_datetime(value, schema)
        if self.target == "string":
            return format_java(dt, self.format)
        millis = (dt - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(milliseconds=1)
        if self.target == "unix":
            return int(millis / _UNIX_DIVISORS[self.precision])
        if self.target == "Date":
            return datetime.datetime(dt.year, dt.month, dt.day, tzinfo=datetime.timezone.utc)
        if self.target == "Time":
            return datetime.datetime(1970, 1, 1, dt.hour, dt.minute, dt.second, dt.microsecond, tzinfo=datetime.timezone.utc)
        return dt

    def apply(self, r: ConnectRecord) -> ConnectRecord:
        schema, value = self.operating_schema(r), self.operating_value(r)
        if not self.field:
            new_schema = None if schema is None else self._target_schema(schema.optional)
            return self.new_record(r, new_schema, self._convert(value, schema))
        if value is None:
            return r
        if schema is None:
            source = _require_map(value, "converting timestamp formats")
            m = HashMapOrder.copy_of(source).put(self.field, self._convert(source.get(self.field), None))
            return self.new_record(r, None, m.to_dict())
        struct = _require_struct(value, "converting timestamp formats")
        b = SchemaBuilder.from_schema(schema, keep_fields=False)
        if schema.optional:
            b.optional()
        for f in schema.fields:
            b.field(f.name, self._target_schema(f.schema.optional) if f.name == self.field else f.schema)
        new_schema = b.build()
        out = Struct(new_schema)
        for f in schema.fields:
            v = struct.get(f.name)
            out.put(f.name, self._convert(v, f.schema) if f.name == self.field else v)
        return self.new_record(r, new_schema, out)


# --- predicates -------------------------------------------------------------------------------
class Predicate:
    def configure(self, props: Mapping[str, str]) -> None:
        pass

    def test(self, record: ConnectRecord) -> bool:
        raise NotImplementedError


class TopicNameMatches(Predicate):
    def configure(self, props: Mapping[str, str]) -> None:
        if not props.get("pattern"):
            raise ConfigError("pattern", props.get("pattern"), "String may not be empty")
        try:
            self.pattern = re.compile(props["pattern"])
        except re.error as e:
            raise ConfigError("pattern", props["pattern"], f"entry must be a Java-compatible regular expression: {e}") from e

    def test(self, record: ConnectRecord) -> bool:
        return record.topic is not None and self.pattern.fullmatch(record.topic) is not None


class HasHeaderKey(Predicate):
    def configure(self, props: Mapping[str, str]) -> None:
        if not props.get("name"):
            raise ConfigError("name", props.get("name"), "String may not be empty")
        self.name = props["name"]

    def test(self, record: ConnectRecord) -> bool:
        return bool(record.headers.all_with_name(self.name))


class RecordIsTombstone(Predicate):
    def test(self, record: ConnectRecord) -> bool:
        return record.value is None


def _keyed(base: type[Transformation], key: bool) -> type[Transformation]:
    return type(f"{base.__name__}{'Key' if key else 'Value'}", (base,), {"key_side": key})


CastKey, CastValue = _keyed(Cast, True), _keyed(Cast, False)
ExtractFieldKey, ExtractFieldValue = _keyed(ExtractField, True), _keyed(ExtractField, False)
FlattenKey, FlattenValue = _keyed(Flatten, True), _keyed(Flatten, False)
HeaderFromKey, HeaderFromValue = _keyed(HeaderFrom, True), _keyed(HeaderFrom, False)
HoistFieldKey, HoistFieldValue = _keyed(HoistField, True), _keyed(HoistField, False)
InsertFieldKey, InsertFieldValue = _keyed(InsertField, True), _keyed(InsertField, False)
MaskFieldKey, MaskFieldValue = _keyed(MaskField, True), _keyed(MaskField, False)
ReplaceFieldKey, ReplaceFieldValue = _keyed(ReplaceField, True), _keyed(ReplaceField, False)
SetSchemaMetadataKey, SetSchemaMetadataValue = _keyed(SetSchemaMetadata, True), _keyed(SetSchemaMetadata, False)
TimestampConverterKey, TimestampConverterValue = _keyed(TimestampConverter, True), _keyed(TimestampConverter, False)

KAFKA_NAMES: dict[str, str] = {}
for _base in ("Cast", "ExtractField", "Flatten", "HeaderFrom", "HoistField", "InsertField", "MaskField",
              "ReplaceField", "SetSchemaMetadata", "TimestampConverter"):
    KAFKA_NAMES[f"{_PKG}.{_base}$Key"] = f"{_base}Key"
    KAFKA_NAMES[f"{_PKG}.{_base}$Value"] = f"{_base}Value"
for _base in ("DropHeaders", "Filter", "InsertHeader", "RegexRouter", "TimestampRouter", "ValueToKey"):
    KAFKA_NAMES[f"{_PKG}.{_base}"] = _base
PREDICATE_NAMES = {f"{_PKG}.predicates.{n}": n for n in ("TopicNameMatches", "HasHeaderKey", "RecordIsTombstone")}


def transformation(type_name: str, props: Mapping[str, str]) -> Transformation:
    """A configured transform by Kafka class name (``…Cast$Value``) or Python dotted path."""
    cls = plugins.resolve(plugins.TRANSFORMATION, type_name)
    t = cls()
    if not isinstance(t, Transformation):
        raise ConnectError(f"{type_name} is not a Transformation")
    t.configure(props)
    return t


def predicate(type_name: str, props: Mapping[str, str]) -> Predicate:
    cls = plugins.resolve(plugins.PREDICATE, type_name)
    p = cls()
    if not isinstance(p, Predicate):
        raise ConnectError(f"{type_name} is not a Predicate")
    p.configure(props)
    return p


class TransformationChain:
    """The connector's transforms in order, each guarded by its predicate (``negate`` flips it)."""

    def __init__(self, stages: list[tuple[Transformation, Predicate | None, bool]]) -> None:
        self.stages = stages

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> TransformationChain:
        def sub(prefix: str) -> dict[str, str]:
            return {k[len(prefix):]: v for k, v in props.items() if k.startswith(prefix)}
        preds: dict[str, Predicate] = {}
        for alias in _list(props, "predicates"):
            p = sub(f"predicates.{alias}.")
            if "type" not in p:
                raise ConnectError(f"Missing required configuration \"predicates.{alias}.type\" which has no default value.")
            preds[alias] = predicate(p["type"], p)
        stages: list[tuple[Transformation, Predicate | None, bool]] = []
        for alias in _list(props, "transforms"):
            t = sub(f"transforms.{alias}.")
            if "type" not in t:
                raise ConnectError(f"Missing required configuration \"transforms.{alias}.type\" which has no default value.")
            pred_alias = t.get("predicate")
            if pred_alias and pred_alias not in preds:
                raise ConnectError(f"Transform '{alias}' refers to predicate '{pred_alias}' which is not defined in 'predicates'")
            negate = str(t.get("negate", "false")).strip().lower() == "true"
            stages.append((transformation(t["type"], t), preds.get(pred_alias) if pred_alias else None, negate))
        return cls(stages)

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        current: ConnectRecord | None = record
        for t, p, negate in self.stages:
            if current is None:
                return None
            if p is not None and p.test(current) == negate:
                continue
            current = t.apply(current)
        return current

    def close(self) -> None:
        for t, _, _ in self.stages:
            t.close()

    def __len__(self) -> int:
        return len(self.stages)


__all__ = ["Transformation", "Predicate", "TransformationChain", "transformation", "predicate",
           "KAFKA_NAMES", "PREDICATE_NAMES", "cast_value", "OPTIONAL_INT32_SCHEMA"]
