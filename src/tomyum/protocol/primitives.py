"""Kafka's wire primitives, in one place: unsigned varints (flexible versions' lengths, counts
and tagged fields), signed zig-zag varints (the fields of a record in a batch, as Kafka's
``ByteUtils.writeVarint``/``writeVarlong``) and the length-prefixed strings and array counts of
both the classic and the flexible (compact) encodings. Every varint of tomyum is read and written
here.

Contracts:

- Encoders return ``bytes``; the one-byte cases (every count, length and tag below 128, i.e.
  nearly all of them) come from a table, so the hot response encoders pay no loop for them.
- Decoders take ``(buf, pos, end)`` and return ``(value, position after it)``; they never read
  at or past ``end``. Bytes that are not a varint raise :class:`MalformedVarint` (a
  ``ValueError``): a request decoder turns it into a ``ProtocolError``, a log reader into a
  record it skips.
- An unsigned varint is at most 5 bytes (a 32-bit value), as Kafka's
  ``ByteUtils.readUnsignedVarint`` reads it, unless a caller allows more (``max_bytes``: 10 for
  the raw form of a zig-zag varlong). A zig-zag varint is at most 10 bytes (a varlong).
"""

from __future__ import annotations

import struct

__all__ = [
    "MalformedVarint",
    "array_count",
    "read_uvarint",
    "read_varint",
    "short_string",
    "uvarint_bytes",
    "varint_bytes",
]

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_ONE_BYTE = tuple(bytes((n,)) for n in range(0x80))


class MalformedVarint(ValueError):
    """Bytes that are not a varint: truncated, or longer than the type allows."""


def uvarint_bytes(n: int) -> bytes:
    """``n`` (≥ 0) as an unsigned varint."""
    if n < 0x80:
        return _ONE_BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_uvarint(buf: bytes | bytearray | memoryview, pos: int, end: int, max_bytes: int = 5) -> tuple[int, int]:
    """The unsigned varint at ``pos`` (at most ``max_bytes`` bytes) and the position after it."""
    value = shift = 0
    limit = 7 * max_bytes
    while True:
        if pos >= end or shift >= limit:
            raise MalformedVarint("bad unsigned varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def varint_bytes(value: int) -> bytes:
    """``value`` (a signed 64-bit integer) as a zig-zag varint."""
    return uvarint_bytes((value << 1) ^ (value >> 63))


def read_varint(buf: bytes | bytearray | memoryview, pos: int, end: int) -> tuple[int, int]:
    """The zig-zag varint at ``pos`` (at most 10 bytes: a varlong) and the position after it."""
    b = buf[pos] if pos < end else 0x80
    if b < 0x80:  # nearly every record field: one byte, no loop
        return (b >> 1) ^ -(b & 1), pos + 1
    raw, pos = read_uvarint(buf, pos, end, 10)
    return (raw >> 1) ^ -(raw & 1), pos


def short_string(s: str | None, flexible: bool) -> bytes:
    """A nullable string: int16 length (-1 null), or in flexible versions a compact string
    (unsigned varint length + 1, 0 null)."""
    if s is None:
        return b"\0" if flexible else b"\xff\xff"
    b = s.encode()
    return (uvarint_bytes(len(b) + 1) if flexible else _I16.pack(len(b))) + b


def array_count(n: int, flexible: bool) -> bytes:
    """An array's element count: int32, or in flexible versions unsigned varint count + 1."""
    return uvarint_bytes(n + 1) if flexible else _I32.pack(n)
