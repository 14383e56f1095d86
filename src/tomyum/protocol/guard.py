"""A guard against hostile lengths, run before kio's native decoder.

kio's native reader sizes an array by the count the client sends; a count of 2**31 in a
100-byte request makes it ask for hundreds of GiB, and a failed allocation aborts the whole
process. The guard walks a request's schema (compiled once per request class from kio's
dataclass metadata) and checks that every array count, string and bytes length fits in the
bytes that are left — every element takes at least one byte — before the native reader sees
the frame. It reads nothing else, so it costs a few microseconds per request.

A check raises :class:`ProtocolError`, or :class:`~tomyum.protocol.primitives.MalformedVarint`
for a bad varint (the caller, :func:`tomyum.protocol.codec.decode_request`, turns it into a
``ProtocolError``; catching it there rather than per varint keeps the walk free of wrappers).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from functools import cache
from typing import Any

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    classify_field,
    get_field_tag,
    get_schema_field_type,
    is_optional,
)

from tomyum.errors import ProtocolError
from tomyum.protocol.primitives import read_uvarint as uvarint
from tomyum.protocol.primitives import uvarint_bytes

#: an entity's tagged-field section that holds tags the schema does not know: where its count
#: is (start, end), the count without them, and the (start, end) of each unknown entry
Unknown = tuple[int, int, int, list[tuple[int, int]]]
#: check(buf, pos, end, unknown) -> the position after what was checked; sections with unknown
#: tags are added to ``unknown`` (None inside a tagged field's value, where they cannot be cut)
Check = Callable[[bytes | memoryview, int, int, "list[Unknown] | None"], int]

_FIXED = {"bool": 1, "int8": 1, "int16": 2, "uint16": 2, "error_code": 2, "int32": 4, "uint32": 4,
          "timedelta_i32": 4, "int64": 8, "uint64": 8, "float64": 8, "timedelta_i64": 8, "datetime_i64": 8,
          "uuid": 16}
_I16, _I32 = struct.Struct(">h"), struct.Struct(">i")


def strip_unknown_tags(frame: bytes, unknown: list[Unknown]) -> bytes:
    """``frame`` without the tagged fields the schema does not know (Kafka's rule: a receiver
    ignores them), each section's count lowered to match."""
    out, at = bytearray(), 0
    for count_at, count_end, count, cut in sorted(unknown):
        out += frame[at:count_at] + uvarint_bytes(count)
        at = count_end
        for start, stop in cut:
            out += frame[at:start]
            at = stop
    return bytes(out + frame[at:])


def _fail(what: str) -> ProtocolError:
    return ProtocolError(f"malformed request: {what}")


def _length(buf: bytes | memoryview, pos: int, end: int, flexible: bool, wide: bool) -> tuple[int, int]:
    """A string/bytes length or an array count (-1: null), and the position after it."""
    if flexible:
        n, pos = uvarint(buf, pos, end)
        return n - 1, pos
    size = 4 if wide else 2
    if pos + size > end:
        raise _fail("length runs past the end")
    return (_I32 if wide else _I16).unpack_from(buf, pos)[0], pos + size


def _scalar(kind: str, flexible: bool) -> Check:
    fixed = _FIXED.get(kind)
    if fixed is not None:
        def check_fixed(buf: bytes | memoryview, pos: int, end: int, unknown: list[Unknown] | None) -> int:
            if pos + fixed > end:
                raise _fail(f"{kind} runs past the end")
            return pos + fixed
        return check_fixed
    wide = kind in ("bytes", "records")

    def check_sized(buf: bytes | memoryview, pos: int, end: int, unknown: list[Unknown] | None) -> int:
        n, pos = _length(buf, pos, end, flexible, wide)
        if n < -1 or pos + max(n, 0) > end:
            raise _fail(f"{kind} of {n} bytes with {end - pos} left")
        return pos + max(n, 0)
    return check_sized


def _array(element: Check, flexible: bool, nullable: bool) -> Check:
    lowest = -1 if nullable else 0

    def check_array(buf: bytes | memoryview, pos: int, end: int, unknown: list[Unknown] | None) -> int:
        n, pos = _length(buf, pos, end, flexible, True)
        if n < lowest or n > end - pos:
            raise _fail(f"array of {n} elements with {end - pos} bytes left" if n >= 0 else "null array")
        for _ in range(n):
            pos = element(buf, pos, end, unknown)
        return pos
    return check_array


def _nullable(entity: Check) -> Check:
    """A nullable struct (KIP-893): an int8 marker, negative for null, else the struct."""
    def check_nullable(buf: bytes | memoryview, pos: int, end: int, unknown: list[Unknown] | None) -> int:
        if pos >= end:
            raise _fail("nullable struct marker runs past the end")
        marker = buf[pos]
        return pos + 1 if marker >= 0x80 else entity(buf, pos + 1, end, unknown)
    return check_nullable


@cache
def guard(cls: Any) -> Check:
    """The check for entity class ``cls`` (its fields in order, then its tagged fields)."""
    flexible = bool(cls.__flexible__)
    steps: list[Check] = []
    tagged: dict[int, Check] = {}
    for field in dataclasses.fields(cls):
        kind = classify_field(field)
        if isinstance(kind, (EntityField, EntityTupleField)):
            check = guard(kind.type_)
        else:
            check = _scalar(get_schema_field_type(field), flexible)
        tag = get_field_tag(field)
        if kind.is_array:
            check = _array(check, flexible, is_optional(field))
        elif isinstance(kind, EntityField) and tag is None and is_optional(field):
            check = _nullable(check)
        if tag is not None:
            tagged[int(tag)] = check
        else:
            steps.append(check)

    def check_entity(buf: bytes | memoryview, pos: int, end: int, unknown: list[Unknown] | None) -> int:
        for step in steps:
            pos = step(buf, pos, end, unknown)
        if flexible:
            count_at = pos
            count, pos = uvarint(buf, pos, end)
            count_end, cut = pos, []
            for _ in range(count):
                entry = pos
                tag, pos = uvarint(buf, pos, end)
                size, pos = uvarint(buf, pos, end)
                if pos + size > end:
                    raise _fail(f"tagged field {tag} of {size} bytes with {end - pos} left")
                if tag in tagged:
                    tagged[tag](buf, pos, pos + size, None)
                elif unknown is None:
                    raise _fail(f"unknown tagged field {tag} inside a tagged field")
                else:
                    cut.append((entry, pos + size))
                pos += size
            if cut and unknown is not None:
                unknown.append((count_at, count_end, count - len(cut), cut))
        return pos

    return check_entity
