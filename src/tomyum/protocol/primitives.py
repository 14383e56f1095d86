"""Kafka's wire primitives, in one place: unsigned varints (flexible versions' lengths, counts
and tagged fields) and the length-prefixed strings and array counts of both the classic and the
flexible (compact) encodings.

Contracts:

- Encoders return ``bytes``; the one-byte cases (every count, length and tag below 128, i.e.
  nearly all of them) come from a table, so the hot response encoders pay no loop for them.
- Decoders take ``(buf, pos, end)`` and return ``(value, position after it)``; they never read
  at or past ``end``. Bytes that are not a varint raise :class:`MalformedVarint` (a
  ``ValueError``): a request decoder turns it into a ``ProtocolError``, a log reader into a
  record it skips.
- An unsigned varint is at most 5 bytes (a 32-bit value), as Kafka's
  ``ByteUtils.readUnsignedVarint`` reads it.

``protocol/records.py`` still has its own zigzag (record-field) varints: it is being edited
elsewhere, and they move here with its next change.
"""

from __future__ import annotations

import struct

__all__ = [
    "MalformedVarint",
    "array_count",
    "read_uvarint",
    "short_string",
    "uvarint_bytes",
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


def read_uvarint(buf: bytes | bytearray | memoryview, pos: int, end: int) -> tuple[int, int]:
    """The unsigned varint at ``pos`` (at most 5 bytes) and the position after it."""
    value = shift = 0
    while True:
        if pos >= end or shift > 28:
            raise MalformedVarint("bad unsigned varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


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
