"""Converters between Connect data and bytes: Kafka's JsonConverter, StringConverter and
ByteArrayConverter, same configuration keys, same bytes.

JsonConverter writes compact JSON exactly as Kafka's (Jackson) does: with ``schemas.enable`` an
envelope ``{"schema":…,"payload":…}`` whose schema object lists ``type``, the nested shapes,
``optional``, then ``name``/``version``/``doc``/``parameters``/``default``; bytes and decimals as
base64; Date/Time/Timestamp as integers. A null with no schema is a null record (tombstone).
A schema-registry converter (Avro and friends) fits the same :class:`Converter` protocol.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Protocol

from tomyum.connect.data import (
    BOOLEAN_SCHEMA, BYTES_SCHEMA, DATE_LOGICAL_NAME, DECIMAL_LOGICAL_NAME, DECIMAL_SCALE_PARAMETER,
    FLOAT32_SCHEMA, FLOAT64_SCHEMA, INT8_SCHEMA, INT16_SCHEMA, INT32_SCHEMA, INT64_SCHEMA,
    OPTIONAL_BYTES_SCHEMA, OPTIONAL_STRING_SCHEMA, STRING_SCHEMA, TIME_LOGICAL_NAME,
    TIMESTAMP_LOGICAL_NAME, DataError, Headers, Schema, SchemaBuilder, Struct, Type,
)
from tomyum.connect.javamap import java_hash_map

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class Converter(Protocol):
    def configure(self, configs: Mapping[str, Any], is_key: bool) -> None: ...

    def from_connect_data(self, topic: str, schema: Schema | None, value: Any,
                          headers: Headers | None = None) -> bytes | None: ...

    def to_connect_data(self, topic: str, value: bytes | None,
                        headers: Headers | None = None) -> tuple[Schema | None, Any]: ...


def _bool(configs: Mapping[str, Any], key: str, default: bool) -> bool:
    v = configs.get(key)
    if v is None:
        return default
    return v if isinstance(v, bool) else str(v).strip().lower() == "true"


class StringConverter:
    """Kafka's StringConverter: ``str(value)`` in UTF-8 (``converter.encoding``); reads OPTIONAL_STRING."""

    def __init__(self) -> None:
        self.encoding = "utf-8"

    def configure(self, configs: Mapping[str, Any], is_key: bool) -> None:
        prefix = "key.converter.encoding" if is_key else "value.converter.encoding"
        self.encoding = str(configs.get("converter.encoding") or configs.get(prefix) or "utf-8")

    def from_connect_data(self, topic: str, schema: Schema | None, value: Any,
                          headers: Headers | None = None) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, bool):
            value = "true" if value else "false"
        return str(value).encode(self.encoding)

    def to_connect_data(self, topic: str, value: bytes | None,
                        headers: Headers | None = None) -> tuple[Schema | None, Any]:
        return OPTIONAL_STRING_SCHEMA, None if value is None else bytes(value).decode(self.encoding)


class ByteArrayConverter:
    """Kafka's ByteArrayConverter: bytes pass through; any schema but BYTES is an error."""

    def configure(self, configs: Mapping[str, Any], is_key: bool) -> None:
        pass

    def from_connect_data(self, topic: str, schema: Schema | None, value: Any,
                          headers: Headers | None = None) -> bytes | None:
        if schema is not None and schema.type is not Type.BYTES:
            raise DataError(f"Invalid schema type for ByteArrayConverter: {schema.type.name}")
        if value is not None and not isinstance(value, (bytes, bytearray, memoryview)):
            raise DataError(f"ByteArrayConverter is not compatible with objects of type {type(value).__name__}")
        return None if value is None else bytes(value)

    def to_connect_data(self, topic: str, value: bytes | None,
                        headers: Headers | None = None) -> tuple[Schema | None, Any]:
        return OPTIONAL_BYTES_SCHEMA, value


_JSON_TYPE = {Type.INT8: "int8", Type.INT16: "int16", Type.INT32: "int32", Type.INT64: "int64",
              Type.FLOAT32: "float", Type.FLOAT64: "double", Type.BOOLEAN: "boolean",
              Type.STRING: "string", Type.BYTES: "bytes", Type.ARRAY: "array", Type.MAP: "map",
              Type.STRUCT: "struct"}
_FROM_JSON_TYPE = {v: k for k, v in _JSON_TYPE.items()}


def java_double_str(value: float) -> str:
    """``Double.toString``: the shortest digits (as Python's repr), in plain notation from 10^-3
    up to 10^7 and as ``d.dddE<n>`` outside it (``1.709164807E9``, ``1.0E-4``)."""
    if math.isnan(value) or math.isinf(value):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(value)]
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "e" not in text else format(decimal.Decimal(text), "f")
    sign, digits, exponent = decimal.Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0") or "0"
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{len(digits) + exponent - 1}"


# A double outside 10^-3..10^7 goes into the document as this marker string, which dumps() turns
# into the bare number Jackson writes (Python's encoder has no hook for a number's text).
_RAW_NUMBER = "\x00"
_RAW_NUMBER_JSON = re.compile(rb'"\\u0000(-?[0-9][0-9.]*E-?[0-9]+)\\u0000"')


def _java_double(value: float) -> Any:
    """A float as Jackson writes it (``Double.toString``)."""
    if math.isnan(value) or math.isinf(value):
        return java_double_str(value)
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return value
    return _RAW_NUMBER + java_double_str(value) + _RAW_NUMBER


def _to_epoch_days(value: Any) -> int:
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        return (value - datetime.date(1970, 1, 1)).days
    days: int = int(value)
    return days


def _to_millis(value: Any, logical: str) -> int:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        delta = value - EPOCH
        millis: int = delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
        return millis if logical == TIMESTAMP_LOGICAL_NAME else millis % 86_400_000
    if isinstance(value, datetime.time):
        return ((value.hour * 60 + value.minute) * 60 + value.second) * 1000 + value.microsecond // 1000
    return int(value)


def decimal_to_bytes(value: decimal.Decimal, scale: int) -> bytes:
    """Kafka's Decimal.fromLogical: the unscaled value as big-endian two's complement, minimal length."""
    unscaled = int(value.scaleb(scale).to_integral_value())
    length = max(1, (unscaled + (unscaled < 0)).bit_length() // 8 + 1)
    return unscaled.to_bytes(length, "big", signed=True)


def decimal_from_bytes(data: bytes, scale: int) -> decimal.Decimal:
    return decimal.Decimal(int.from_bytes(data, "big", signed=True)).scaleb(-scale)


class JsonConverter:
    """Kafka's JsonConverter (``schemas.enable`` default true, ``decimal.format`` BASE64|NUMERIC,
    ``replace.null.with.default`` default true)."""

    def __init__(self) -> None:
        self.schemas_enable = True
        self.decimal_numeric = False
        self.replace_null_with_default = True

    def configure(self, configs: Mapping[str, Any], is_key: bool) -> None:
        self.schemas_enable = _bool(configs, "schemas.enable", True)
        self.decimal_numeric = str(configs.get("decimal.format", "BASE64")).upper() == "NUMERIC"
        self.replace_null_with_default = _bool(configs, "replace.null.with.default", True)

    # --- Connect → JSON -------------------------------------------------------------------
    def as_json_schema(self, schema: Schema) -> dict[str, Any]:
        out: dict[str, Any] = {"type": _JSON_TYPE[schema.type]}
        if schema.type is Type.ARRAY:
            assert schema.value_schema is not None
            out["items"] = self.as_json_schema(schema.value_schema)
        elif schema.type is Type.MAP:
            assert schema.key_schema is not None and schema.value_schema is not None
            out["keys"] = self.as_json_schema(schema.key_schema)
            out["values"] = self.as_json_schema(schema.value_schema)
        elif schema.type is Type.STRUCT:
            out["fields"] = [dict(self.as_json_schema(f.schema), field=f.name) for f in schema.fields]
        out["optional"] = schema.optional
        if schema.name is not None:
            out["name"] = schema.name
        if schema.version is not None:
            out["version"] = schema.version
        if schema.doc is not None:
            out["doc"] = schema.doc
        if schema.parameters is not None:
            out["parameters"] = dict(schema.parameters)
        if schema.default is not None:
            out["default"] = self.to_json(schema, schema.default)
        return out

    def to_json(self, schema: Schema | None, value: Any) -> Any:
        if value is None:
            if schema is None:
                return None
            if schema.default is not None and self.replace_null_with_default:
                return self.to_json(schema, schema.default)
            if schema.optional:
                return None
            raise DataError("Conversion error: null value for field that is required and has no default value")
        if schema is not None and schema.name is not None:
            if schema.name == DECIMAL_LOGICAL_NAME:
                if not isinstance(value, decimal.Decimal):
                    raise DataError("Invalid type for Decimal, expected BigDecimal but was " + type(value).__name__)
                if self.decimal_numeric:
                    return value
                scale = int((schema.parameters or {}).get(DECIMAL_SCALE_PARAMETER, "0"))
                return base64.b64encode(decimal_to_bytes(value, scale)).decode("ascii")
            if schema.name == DATE_LOGICAL_NAME:
                return _to_epoch_days(value)
            if schema.name in (TIME_LOGICAL_NAME, TIMESTAMP_LOGICAL_NAME):
                return _to_millis(value, schema.name)
        kind = schema.type if schema is not None else _infer_type(value)
        if kind in (Type.INT8, Type.INT16, Type.INT32, Type.INT64):
            if isinstance(value, bool) or not isinstance(value, int):
                raise DataError(f"Invalid type for {kind.name}: {type(value).__name__}")
            return value
        if kind in (Type.FLOAT32, Type.FLOAT64):
            return _java_double(float(value))
        if kind is Type.BOOLEAN:
            return bool(value)
        if kind is Type.STRING:
            return str(value)
        if kind is Type.BYTES:
            return base64.b64encode(bytes(value)).decode("ascii")
        if kind is Type.ARRAY:
            item = schema.value_schema if schema is not None else None
            return [self.to_json(item, v) for v in value]
        if kind is Type.MAP:
            ks = schema.key_schema if schema is not None else None
            vs = schema.value_schema if schema is not None else None
            object_mode = (ks.type is Type.STRING) if ks is not None else all(isinstance(k, str) for k in value)
            if object_mode:
                return {str(k): self.to_json(vs, v) for k, v in value.items()}
            return [[self.to_json(ks, k), self.to_json(vs, v)] for k, v in value.items()]
        if kind is Type.STRUCT:
            if not isinstance(value, Struct):
                raise DataError("Invalid type for STRUCT: " + type(value).__name__)
            if schema is not None and value.schema != schema:
                raise DataError("Mismatching schema.")
            return {f.name: self.to_json(f.schema, value.get_without_default(f.name)) for f in value.schema.fields}
        raise DataError(f"Couldn't convert {value!r} to JSON.")

    def from_connect_data(self, topic: str, schema: Schema | None, value: Any,
                          headers: Headers | None = None) -> bytes | None:
        if schema is None and value is None:
            return None
        if self.schemas_enable:
            doc: Any = {"schema": self.as_json_schema(schema) if schema is not None else None,
                        "payload": self.to_json(schema, value)}
        else:
            doc = self.to_json(schema, value)
        return dumps(doc)

    # --- JSON → Connect -------------------------------------------------------------------
    def as_connect_schema(self, node: Any) -> Schema | None:
        if node is None:
            return None
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            raise DataError("Schema must contain 'type' field")
        type_name = node["type"]
        if type_name not in _FROM_JSON_TYPE:
            raise DataError("Unknown schema type: " + type_name)
        kind = _FROM_JSON_TYPE[type_name]
        if kind is Type.STRUCT:
            fields = node.get("fields")
            if not isinstance(fields, list):
                raise DataError("Struct schema's \"fields\" argument is not an array.")
            b = SchemaBuilder.struct()
            for f in fields:
                if not isinstance(f, dict) or not isinstance(f.get("field"), str):
                    raise DataError("Struct schema's field name not specified properly")
                fs = self.as_connect_schema(f)
                assert fs is not None
                b.field(f["field"], fs)
        elif kind is Type.ARRAY:
            items = self.as_connect_schema(node.get("items"))
            if items is None:
                raise DataError("Array schema did not specify the element type")
            b = SchemaBuilder.array(items)
        elif kind is Type.MAP:
            ks, vs = self.as_connect_schema(node.get("keys")), self.as_connect_schema(node.get("values"))
            if ks is None or vs is None:
                raise DataError("Map schema did not specify the key and value types")
            b = SchemaBuilder.map(ks, vs)
        else:
            b = SchemaBuilder(kind)
        if node.get("optional", True) is not False:
            b.optional()
        if "name" in node:
            b.name(node["name"])
        if "version" in node:
            b.version(int(node["version"]))
        if "doc" in node:
            b.doc(node["doc"])
        if isinstance(node.get("parameters"), dict):
            b.parameters({str(k): str(v) for k, v in node["parameters"].items()})
        built = b.build()
        if node.get("default") is not None:
            b.default_value(self.to_connect(built, node["default"]))
            built = b.build()
        return built

    def to_connect(self, schema: Schema | None, value: Any) -> Any:
        if value is None:
            if schema is not None and schema.default is not None and self.replace_null_with_default:
                return schema.default
            if schema is not None and not schema.optional:
                raise DataError("Invalid null value for required " + schema.type.name + " field")
            return None
        if schema is None:
            if isinstance(value, dict):  # Kafka reads an object into a HashMap: its order
                return java_hash_map((k, self.to_connect(None, v)) for k, v in value.items())
            if isinstance(value, list):
                return [self.to_connect(None, v) for v in value]
            if isinstance(value, decimal.Decimal):
                return float(value)
            return value
        if schema.name == DECIMAL_LOGICAL_NAME:
            scale = int((schema.parameters or {}).get(DECIMAL_SCALE_PARAMETER, "0"))
            if isinstance(value, str):
                return decimal_from_bytes(base64.b64decode(value), scale)
            return decimal.Decimal(str(value)).quantize(decimal.Decimal(1).scaleb(-scale))
        if schema.name in (DATE_LOGICAL_NAME, TIME_LOGICAL_NAME, TIMESTAMP_LOGICAL_NAME) \
                and isinstance(value, int) and not isinstance(value, bool):
            # Kafka's converter gives a java.util.Date for all three: an instant, here in UTC
            if schema.name == DATE_LOGICAL_NAME:
                return EPOCH + datetime.timedelta(days=value)
            return EPOCH + datetime.timedelta(milliseconds=value)
        k = schema.type
        try:
            if k in (Type.INT8, Type.INT16, Type.INT32, Type.INT64):
                if isinstance(value, bool) or not isinstance(value, (int, decimal.Decimal)):
                    raise DataError(f"Invalid value {value!r} for {k.name}")
                return int(value)
            if k in (Type.FLOAT32, Type.FLOAT64):
                return float(value)
            if k is Type.BOOLEAN:
                if not isinstance(value, bool):
                    raise DataError(f"Invalid value {value!r} for BOOLEAN")
                return value
            if k is Type.STRING:
                if not isinstance(value, str):
                    raise DataError(f"Invalid value {value!r} for STRING")
                return value
            if k is Type.BYTES:
                return base64.b64decode(value)
            if k is Type.ARRAY:
                return [self.to_connect(schema.value_schema, v) for v in value]
            if k is Type.MAP:
                if schema.key_schema is not None and schema.key_schema.type is Type.STRING:
                    return java_hash_map((key, self.to_connect(schema.value_schema, v)) for key, v in value.items())
                return {self.to_connect(schema.key_schema, e[0]): self.to_connect(schema.value_schema, e[1]) for e in value}
            if k is Type.STRUCT:
                if not isinstance(value, dict):
                    raise DataError("Structs should be encoded as JSON objects, but found " + type(value).__name__)
                s = Struct(schema)
                for f in schema.fields:
                    s.put(f.name, self.to_connect(f.schema, value.get(f.name)))
                return s
        except (TypeError, ValueError, AttributeError, IndexError) as e:
            raise DataError(f"Invalid value for {k.name}: {e}") from e
        raise DataError("Unknown schema type: " + k.name)

    def to_connect_data(self, topic: str, value: bytes | None,
                        headers: Headers | None = None) -> tuple[Schema | None, Any]:
        if value is None:
            return None, None
        try:
            doc = json.loads(bytes(value), parse_float=decimal.Decimal)
        except ValueError as e:
            raise DataError("Converting byte[] to Kafka Connect data failed due to serialization error: " + str(e)) from e
        if self.schemas_enable:
            if not isinstance(doc, dict) or set(doc) != {"schema", "payload"}:
                raise DataError("JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may "
                                "not contain additional fields. If you are trying to deserialize plain JSON data, set "
                                "schemas.enable=false in your converter configuration.")
            schema = self.as_connect_schema(doc["schema"])
            return schema, self.to_connect(schema, doc["payload"])
        return None, self.to_connect(None, doc)


def _infer_type(value: Any) -> Type:
    if isinstance(value, bool):
        return Type.BOOLEAN
    if isinstance(value, int):
        return Type.INT64
    if isinstance(value, (float, decimal.Decimal)):
        return Type.FLOAT64
    if isinstance(value, str):
        return Type.STRING
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Type.BYTES
    if isinstance(value, (list, tuple)):
        return Type.ARRAY
    if isinstance(value, dict):
        return Type.MAP
    if isinstance(value, Struct):
        return Type.STRUCT
    raise DataError(f"Java class {type(value).__name__} does not have corresponding schema type.")


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default)


def dumps(doc: Any) -> bytes:
    """Compact JSON as Jackson writes it (no spaces, UTF-8, non-ASCII unescaped, doubles as
    ``Double.toString``)."""
    out = _ENCODER.encode(doc).encode("utf-8")
    return _RAW_NUMBER_JSON.sub(rb"\1", out) if b"\\u0000" in out else out


PRIMITIVE_SCHEMAS = {"int8": INT8_SCHEMA, "int16": INT16_SCHEMA, "int32": INT32_SCHEMA, "int64": INT64_SCHEMA,
                     "float32": FLOAT32_SCHEMA, "float64": FLOAT64_SCHEMA, "boolean": BOOLEAN_SCHEMA,
                     "string": STRING_SCHEMA, "bytes": BYTES_SCHEMA}
