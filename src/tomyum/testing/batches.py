"""Record batches that lie, for tests: every field may be wrong, yet the CRC is right, so only
the broker's record validation can catch them."""

from __future__ import annotations

import struct

import crc32c

from tomyum.protocol.records import Compression, _put_bytes, _put_varint, compress

__all__ = ["crafted_batch", "crafted_record", "reseal"]


def crafted_record(offset_delta: int, key: bytes | None = b"k", value: bytes | None = b"v", *, ts_delta: int = 0,
                   headers: list[tuple[bytes | None, bytes | None]] | None = None, header_count: int | None = None,
                   length_adjust: int = 0) -> bytes:
    """One record as encoded, its length varint first (``length_adjust`` added to it)."""
    body = bytearray(b"\0")
    _put_varint(body, ts_delta)
    _put_varint(body, offset_delta)
    _put_bytes(body, key)
    _put_bytes(body, value)
    headers = headers or []
    _put_varint(body, len(headers) if header_count is None else header_count)
    for hk, hv in headers:
        _put_bytes(body, hk)
        _put_bytes(body, hv)
    out = bytearray()
    _put_varint(out, len(body) + length_adjust)
    return bytes(out + body)


def crafted_batch(records: list[bytes] | bytes, count: int | None = None, *, codec: int = Compression.NONE,
                  base_timestamp: int = 0, max_timestamp: int | None = None, trailing: bytes = b"") -> bytes:
    """A batch of ``records`` (encoded) whose header says ``count`` records (default: as many
    as given), with ``trailing`` bytes after them, compressed with ``codec``; CRC valid."""
    body = records if isinstance(records, bytes) else b"".join(records)
    n = len(records) if count is None else count
    tail = struct.pack(">hiqqqhii", codec, n - 1, base_timestamp,
                       base_timestamp if max_timestamp is None else max_timestamp, -1, -1, -1, n)
    tail += compress(codec, body + trailing)
    return struct.pack(">qiibI", 0, len(tail) + 9, 0, 2, crc32c.crc32c(tail)) + tail


def reseal(batch: bytes | bytearray) -> bytes:
    """``batch`` with its length and CRC-32C (attributes .. end) made right again."""
    out = bytearray(batch)
    struct.pack_into(">i", out, 8, len(out) - 12)
    struct.pack_into(">I", out, 17, crc32c.crc32c(bytes(out[21:])))
    return bytes(out)
