"""PostgreSQL column types as Debezium's PostgreSQL connector maps them to Connect schemas.

A schema here is Connect's JSON form of a schema (what JsonConverter writes with
``schemas.enable=true``: ``{"type": "int64", "optional": true, "name": ..., "parameters": ...}``),
so this module needs nothing of the Connect runtime; values are Connect's Python values (int,
float, str, bool, bytes, Decimal, list). Both come from the column's *text* form, which is what
``pgoutput`` sends and what the snapshot selects (``col::text``), so one parser serves both.

Mappings (Debezium's defaults; ``time.precision.mode=adaptive``, ``binary.handling.mode=bytes``):
int2/int4/int8 → int16/int32/int64; float4/float8 → float32/float64; bool → boolean;
numeric(p,s) → ``org.apache.kafka.connect.data.Decimal`` (``decimal.handling.mode=precise``),
float64 (``double``) or string (``string``); numeric without a scale → Debezium's
``io.debezium.data.VariableScaleDecimal`` struct in precise mode; text/varchar/bpchar/name →
string; date → ``io.debezium.time.Date`` (days); time(p) → ``Time`` (ms) for p ≤ 3 else
``MicroTime`` (µs); timestamp(p) → ``Timestamp`` (ms) for p ≤ 3 else ``MicroTimestamp`` (µs);
timestamptz → ``ZonedTimestamp`` (ISO-8601 string in UTC); uuid → ``io.debezium.data.Uuid``;
json/jsonb → ``io.debezium.data.Json``; bytea → bytes; one-dimensional arrays of these →
array. Other types are sent as strings, as Debezium does for unknown types with
``include.unknown.datatypes``.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from collections.abc import Callable
from typing import Any

JsonSchema = dict[str, Any]

_EPOCH = datetime.datetime(1970, 1, 1)
_EPOCH_DATE = datetime.date(1970, 1, 1)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ColumnType:
    """A column's type: its PostgreSQL type name (``int4``, ``_int4`` for arrays), its type
    modifier (``atttypmod``, -1 for none) and whether it may be NULL."""

    type_name: str
    type_modifier: int = -1
    optional: bool = True


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TypeOptions:
    decimal_handling_mode: str = "precise"  # precise | double | string
    time_precision_mode: str = "adaptive"  # adaptive | adaptive_time_microseconds | connect


def _precision(typmod: int) -> int:
    """Fractional-second precision of time/timestamp types (6 if not declared)."""
    return typmod if typmod >= 0 else 6


def _numeric_precision_scale(typmod: int) -> tuple[int, int] | None:
    if typmod < 4:
        return None
    value = typmod - 4
    return (value >> 16) & 0xFFFF, value & 0xFFFF


def _micros_of_time(text: str) -> int:
    if text.startswith("24:00:00"):
        return 24 * 3600 * 1_000_000
    t = datetime.time.fromisoformat(text)
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def _micros_of_timestamp(text: str) -> int:
    delta = datetime.datetime.fromisoformat(text) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _zoned_timestamp(text: str) -> str:
    """Debezium's ZonedTimestamp: ISO-8601 in UTC, fraction without trailing zeros, ``Z``."""
    value = datetime.datetime.fromisoformat(text).astimezone(datetime.UTC)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        base += "." + f"{value.microsecond:06d}".rstrip("0")
    return base + "Z"


def _days_of_date(text: str) -> int:
    return (datetime.date.fromisoformat(text) - _EPOCH_DATE).days


def _bytea(text: str) -> bytes:
    if text.startswith("\\x"):
        return bytes.fromhex(text[2:])
    raise ValueError("bytea in escape format; set bytea_output=hex")


def _bool(text: str) -> bool:
    return text in ("t", "true")


def _variable_scale_decimal(text: str) -> dict[str, Any]:
    value = decimal.Decimal(text)
    exponent = value.as_tuple().exponent
    scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    unscaled = int(value.scaleb(scale))
    return {"scale": scale, "value": unscaled.to_bytes((unscaled.bit_length() + 8) // 8 or 1, "big", signed=True)}


def _decimal_with_scale(scale: int) -> Callable[[str], decimal.Decimal]:
    return lambda text: decimal.Decimal(text).quantize(decimal.Decimal(1).scaleb(-scale))


@dataclasses.dataclass(frozen=True, slots=True)
class Mapped:
    """A column's Connect schema, its text → value parser and Debezium's fallback value for a
    required column whose value is absent (the non-key columns of a key-only old tuple)."""

    schema: JsonSchema
    parse: Callable[[str], Any]
    fallback: Any


def _schema(type_: str, optional: bool, name: str | None = None, version: int | None = None,
            parameters: dict[str, str] | None = None) -> JsonSchema:
    schema: JsonSchema = {"type": type_, "optional": optional}
    if name is not None:
        schema["name"] = name
    if version is not None:
        schema["version"] = version
    if parameters is not None:
        schema["parameters"] = parameters
    return schema


_SIMPLE: dict[str, tuple[str, Callable[[str], Any], Any]] = {
    "int2": ("int16", int, 0), "int4": ("int32", int, 0), "int8": ("int64", int, 0), "oid": ("int64", int, 0),
    "float4": ("float", float, 0.0), "float8": ("double", float, 0.0), "bool": ("boolean", _bool, False),
    "text": ("string", str, ""), "varchar": ("string", str, ""), "bpchar": ("string", str, ""),
    "name": ("string", str, ""), "char": ("string", str, ""), "bytea": ("bytes", _bytea, b""),
}
_NAMED_STRINGS = {"uuid": "io.debezium.data.Uuid", "json": "io.debezium.data.Json", "jsonb": "io.debezium.data.Json",
                  "xml": "io.debezium.data.Xml"}


def _temporal(column: ColumnType, options: TypeOptions) -> Mapped | None:
    optional, name = column.optional, column.type_name
    adaptive = options.time_precision_mode.startswith("adaptive")
    if name == "date":
        logical = "io.debezium.time.Date" if adaptive else "org.apache.kafka.connect.data.Date"
        return Mapped(_schema("int32", optional, logical, 1), _days_of_date, 0)
    if name == "timestamptz":
        return Mapped(_schema("string", optional, "io.debezium.time.ZonedTimestamp", 1), _zoned_timestamp,
                      "1970-01-01T00:00:00Z")
    if name == "timetz":
        return Mapped(_schema("string", optional, "io.debezium.time.ZonedTime", 1), str, "00:00:00Z")
    if name == "time":
        if options.time_precision_mode == "adaptive" and _precision(column.type_modifier) <= 3:
            return Mapped(_schema("int32", optional, "io.debezium.time.Time", 1),
                          lambda t: _micros_of_time(t) // 1000, 0)
        return Mapped(_schema("int64", optional, "io.debezium.time.MicroTime", 1), _micros_of_time, 0)
    if name == "timestamp":
        if not adaptive:
            return Mapped(_schema("int64", optional, "org.apache.kafka.connect.data.Timestamp", 1),
                          lambda t: _micros_of_timestamp(t) // 1000, 0)
        if _precision(column.type_modifier) <= 3:
            return Mapped(_schema("int64", optional, "io.debezium.time.Timestamp", 1),
                          lambda t: _micros_of_timestamp(t) // 1000, 0)
        return Mapped(_schema("int64", optional, "io.debezium.time.MicroTimestamp", 1), _micros_of_timestamp, 0)
    return None


def _numeric(column: ColumnType, options: TypeOptions) -> Mapped:
    optional = column.optional
    if options.decimal_handling_mode == "double":
        return Mapped(_schema("double", optional), float, 0.0)
    if options.decimal_handling_mode == "string":
        return Mapped(_schema("string", optional), str, "")
    declared = _numeric_precision_scale(column.type_modifier)
    if declared is None:
        schema = _schema("struct", optional, "io.debezium.data.VariableScaleDecimal", 1)
        schema["fields"] = [{"type": "int32", "optional": False, "field": "scale"},
                            {"type": "bytes", "optional": False, "field": "value"}]
        return Mapped(schema, _variable_scale_decimal, {"scale": 0, "value": b"\0"})
    precision, scale = declared
    return Mapped(_schema("bytes", optional, "org.apache.kafka.connect.data.Decimal", 1,
                          {"scale": str(scale), "connect.decimal.precision": str(precision)}),
                  _decimal_with_scale(scale), decimal.Decimal(0))


def map_type(column: ColumnType, options: TypeOptions = TypeOptions()) -> Mapped:
    """The Connect schema and parser for ``column`` (see the module docstring for the table)."""
    name, optional = column.type_name, column.optional
    if name.startswith("_"):
        element = map_type(ColumnType(type_name=name[1:], type_modifier=column.type_modifier, optional=True), options)
        schema = _schema("array", optional)
        schema["items"] = element.schema
        return Mapped(schema, lambda text: [None if v is None else element.parse(v) for v in parse_array(text)], [])
    if name in _SIMPLE:
        type_, parse, fallback = _SIMPLE[name]
        return Mapped(_schema(type_, optional), parse, fallback)
    if name in _NAMED_STRINGS:
        return Mapped(_schema("string", optional, _NAMED_STRINGS[name], 1), str, "")
    if name == "numeric":
        return _numeric(column, options)
    temporal = _temporal(column, options)
    if temporal is not None:
        return temporal
    return Mapped(_schema("string", optional), str, "")


def parse_array(text: str) -> list[str | None]:
    """The elements of a one-dimensional PostgreSQL array literal (``{1,2,NULL,"a,b"}``)."""
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"not an array literal: {text!r}")
    body, i = text[1:-1], 0
    items: list[str | None] = []
    if not body:
        return []
    while i <= len(body):
        if i < len(body) and body[i] == '"':
            i += 1
            chars = []
            while body[i] != '"':
                if body[i] == "\\":
                    i += 1
                chars.append(body[i])
                i += 1
            items.append("".join(chars))
            i += 2  # closing quote and comma
            continue
        end = body.find(",", i)
        end = len(body) if end < 0 else end
        raw = body[i:end]
        items.append(None if raw == "NULL" else raw)
        i = end + 1
    return items
