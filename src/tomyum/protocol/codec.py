"""Request decoding and response encoding over kio's generated entities.

Handlers describe a response once, as plain nested dicts with the union of every
version's fields; :func:`build` turns that into the kio entity of the version the client
asked for, dropping fields that version lacks and converting plain values (milliseconds,
error-code numbers) into the types kio expects. That keeps handlers version-agnostic.

Dropping what a version lacks would also drop a key no version has — a handler's typo, a field
silently never sent. In strict mode (:func:`strict_responses`; on in the test suite through
``TOMYUM_TEST_STRICT_RESPONSES=1``, off in production where it costs a dict walk per response)
such a key raises :class:`TypeError` naming its path.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

from kio.index import KioIndexError, load_payload_module
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer
from kio.serial._introspect import EntityField, EntityTupleField, classify_field, is_optional
from kio.static.constants import EntityType

from tomyum.errors import ProtocolError, UnsupportedVersion
from tomyum.protocol.guard import Unknown, guard, strip_unknown_tags
from tomyum.protocol.primitives import MalformedVarint
from tomyum.protocol.primitives import read_uvarint as uvarint
from tomyum.protocol.request_decoders import FAST_DECODERS

_HEADER = struct.Struct(">hhi")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
API_VERSIONS_KEY = 18
_UTC = datetime.timezone.utc
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)


class RequestHeader(NamedTuple):  # a NamedTuple: made per request, it costs a third of a frozen dataclass
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


class Request(NamedTuple):  # a NamedTuple: made per request, it costs a third of a frozen dataclass
    header: RequestHeader
    body: Any
    #: size of the frame in bytes, without the 4-byte length prefix
    size: int


def read_header_prefix(frame: bytes | memoryview) -> RequestHeader:
    """The fixed part of any request header (key, version, correlation id, client id).

    Readable for every version, which is what KIP-511's ApiVersions fallback needs.
    """
    if len(frame) < 10:
        raise ProtocolError(f"request frame of {len(frame)} bytes is shorter than a request header")
    api_key, api_version, correlation_id = _HEADER.unpack_from(frame, 0)
    (n,) = _I16.unpack_from(frame, 8)
    if n < -1 or 10 + max(n, 0) > len(frame):
        raise ProtocolError("request header client_id length is out of bounds")
    client_id = None if n == -1 else bytes(frame[10 : 10 + n]).decode("utf-8", "replace")
    return RequestHeader(api_key, api_version, correlation_id, client_id)


@cache
def request_class(api_key: int, api_version: int) -> Any:
    return load_payload_module(api_key, api_version, EntityType.request).__dict__[
        _payload_name(api_key, api_version, EntityType.request)
    ]


@cache
def response_class(api_key: int, api_version: int) -> Any:
    return load_payload_module(api_key, api_version, EntityType.response).__dict__[
        _payload_name(api_key, api_version, EntityType.response)
    ]


def _payload_name(api_key: int, api_version: int, kind: Any) -> str:
    module = load_payload_module(api_key, api_version, kind)
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "__type__", None) is kind:
            return value.__name__
    raise LookupError(f"no {kind.name} entity for API {api_key} v{api_version}")


@cache
def _body_reader(api_key: int, api_version: int) -> Callable[[Any, int], tuple[Any, int]]:
    return entity_reader(request_class(api_key, api_version))


def decode_request(frame: bytes, header: RequestHeader | None = None, *, fast: bool = True) -> Request:
    """Decode one request frame (without its length prefix); ``header``: its
    :func:`read_header_prefix`, if the caller has read it already.

    Produce and Fetch go through their hand-written decoders (:mod:`request_decoders`: light
    tuples with kio's field names) unless ``fast`` is false; whatever those do not read, and
    every other request, is decoded by kio into its entity.
    Raises :class:`UnsupportedVersion` for versions kio has no schema for and
    :class:`ProtocolError` for bytes that do not parse.
    """
    if header is None:
        header = read_header_prefix(frame)
    decoder = FAST_DECODERS.get(header.api_key) if fast else None
    if decoder is not None and decoder[0] <= header.api_version <= decoder[1]:
        (n,) = _I16.unpack_from(frame, 8)
        body = decoder[2](frame, 10 + max(n, 0), header.api_version)
        if body is not None:
            return Request(header, body, len(frame))
    try:
        cls = request_class(header.api_key, header.api_version)
    except Exception:
        raise UnsupportedVersion(header.api_key, header.api_version) from None
    (n,) = _I16.unpack_from(frame, 8)
    offset = 10 + max(n, 0)
    unknown: list[Unknown] = []
    try:
        if cls.__flexible__:
            offset = _skip_tagged_fields(frame, offset)
        guard(cls)(frame, offset, len(frame), unknown)  # no hostile count may reach the native reader
    except MalformedVarint as e:
        raise ProtocolError(f"malformed request: {e}") from None
    if unknown:
        frame = strip_unknown_tags(frame, unknown)
    try:
        body, size = _body_reader(header.api_key, header.api_version)(frame, offset)
    except Exception as e:
        raise ProtocolError(
            f"malformed {cls.__name__} v{header.api_version}: {type(e).__name__}: {e}"
        ) from None
    return Request(header, body, len(frame))


def _skip_tagged_fields(buf: bytes | memoryview, pos: int) -> int:
    count, pos = uvarint(buf, pos, len(buf))
    for _ in range(count):
        _, pos = uvarint(buf, pos, len(buf))
        size, pos = uvarint(buf, pos, len(buf))
        pos += size
    if pos > len(buf):
        raise ProtocolError("malformed request header: tagged fields overrun it")
    return pos


def response_header_flexible(api_key: int, api_version: int) -> bool:
    """Response header v1 (with tagged fields) for flexible versions, except ApiVersions (always v0)."""
    if api_key == API_VERSIONS_KEY:
        return False
    return bool(response_class(api_key, api_version).__flexible__)


def encode_response(api_key: int, api_version: int, correlation_id: int, body: Any) -> bytes:
    """A complete response frame: length prefix, response header, body."""
    buf = io.BytesIO()
    buf.write(b"\0\0\0\0")
    buf.write(_I32.pack(correlation_id))
    if response_header_flexible(api_key, api_version):
        buf.write(b"\0")
    cls: Any = type(body)
    _body_writer(cls)(buf, body)
    out = buf.getbuffer()
    _I32.pack_into(out, 0, len(out) - 4)
    del out
    return buf.getvalue()


@cache
def _body_writer(cls: Any) -> Callable[[Any, Any], None]:
    return entity_writer(cls)


# Building entities from plain data -------------------------------------------------------

_Plan = tuple[tuple[str, str, Any], ...]


@cache
def _plan(cls: Any) -> _Plan:
    """For each field: (name, conversion, nested entity type or None)."""
    plan: list[tuple[str, str, Any]] = []
    for f in dataclasses.fields(cls):
        kind = classify_field(f)
        if isinstance(kind, EntityTupleField):
            plan.append((f.name, "entities", kind.type_))
        elif isinstance(kind, EntityField):
            plan.append((f.name, "entity", kind.type_))
        else:
            kind_name = f.metadata.get("kafka_type", "")
            if kind_name == "string" and not is_optional(f):
                kind_name = "string!"  # a version where the field is not nullable: None → ""
            plan.append((f.name, kind_name, None))
    return tuple(plan)


def _convert(kind: str, nested: Any, value: Any) -> Any:
    if value is None:
        return "" if kind == "string!" else None
    if kind == "entities":
        return tuple(v if isinstance(v, nested) else build(nested, v) for v in value)
    if kind == "entity":
        return value if isinstance(value, nested) else build(nested, value)
    if kind == "error_code":
        return value if isinstance(value, ErrorCode) else ErrorCode(value)
    if kind.startswith("timedelta"):
        return value if isinstance(value, datetime.timedelta) else datetime.timedelta(milliseconds=value)
    if kind == "datetime_i64":
        if isinstance(value, datetime.datetime):
            return value
        return _EPOCH + datetime.timedelta(milliseconds=value)
    return value


_STRICT = False

#: a response message's field names over all its versions; nested entities' fields below theirs
_KeyTree = dict[str, "_KeyTree | None"]


def strict_responses(enabled: bool) -> None:
    """Make :func:`build_response` refuse keys that no version of the response knows."""
    global _STRICT
    _STRICT = enabled


@cache
def _known_keys(api_key: int) -> _KeyTree:
    tree: _KeyTree = {}
    for version in range(0, 64):
        try:
            cls = response_class(api_key, version)
        except (KioIndexError, LookupError):  # versions kio has no schema for
            continue
        _merge_fields(tree, cls)
    return tree


def _merge_fields(tree: _KeyTree, cls: Any) -> None:
    for f in dataclasses.fields(cls):
        kind = classify_field(f)
        if isinstance(kind, (EntityField, EntityTupleField)):
            sub = tree.get(f.name) or {}
            tree[f.name] = sub
            _merge_fields(sub, kind.type_)
        else:
            tree.setdefault(f.name, None)


def _check_keys(tree: _KeyTree, data: Mapping[str, Any], path: str) -> None:
    for key, value in data.items():
        if key not in tree:
            raise TypeError(f"{path}.{key}: no version of this response has such a field")
        sub = tree[key]
        if sub is None or value is None:
            continue
        if isinstance(value, Mapping):
            _check_keys(sub, value, f"{path}.{key}")
        elif isinstance(value, (list, tuple)):
            for i, element in enumerate(value):
                if isinstance(element, Mapping):
                    _check_keys(sub, element, f"{path}.{key}[{i}]")


def build(cls: type, data: Mapping[str, Any]) -> Any:
    """Build entity ``cls`` from ``data``, ignoring keys ``cls`` does not have.

    Missing keys take the entity's defaults; a missing key without a default is a bug in
    the handler and raises TypeError naming the entity.
    """
    kwargs = {}
    for name, kind, nested in _plan(cls):
        if name in data:
            kwargs[name] = _convert(kind, nested, data[name])
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise TypeError(f"building {cls.__module__}.{cls.__name__}: {e}") from None


def build_response(api_key: int, api_version: int, data: Mapping[str, Any]) -> Any:
    """The response entity of ``api_version`` from ``data`` (see :func:`build`); in strict mode,
    a key that no version of the response has raises TypeError first."""
    cls = response_class(api_key, api_version)
    if _STRICT:
        _check_keys(_known_keys(api_key), data, cls.__name__)
    return build(cls, data)


def ms(value: datetime.timedelta | datetime.datetime | int | None) -> int:
    """Milliseconds from kio's timedelta/datetime fields (or pass an int through)."""
    if value is None:
        return -1
    if isinstance(value, datetime.timedelta):
        return value // datetime.timedelta(milliseconds=1)
    if isinstance(value, datetime.datetime):
        return (value - _EPOCH) // datetime.timedelta(milliseconds=1)
    return int(value)
