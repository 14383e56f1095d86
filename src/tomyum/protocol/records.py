"""Record batches (magic 2), per batch and without copying.

A batch on the wire and on disk::

    base_offset            int64   0   ┐ outside the CRC: the broker
    batch_length           int32   8   │ may rewrite base_offset and
    partition_leader_epoch int32  12   │ partition_leader_epoch
    magic                  int8   16   ┘
    crc                    uint32 17     CRC-32C of attributes .. end
    attributes             int16  21     compression (bits 0-2), timestamp type (3),
                                         transactional (4), control (5)
    last_offset_delta      int32  23
    base_timestamp         int64  27
    max_timestamp          int64  35
    producer_id            int64  43
    producer_epoch         int16  51
    base_sequence          int32  53
    records_count          int32  57
    records                       61..

``batch_length`` counts the bytes after itself, so a batch occupies ``12 + batch_length``
bytes. The broker's hot path reads only this header; records are decoded (and
decompressed) only where a feature needs them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import NamedTuple
from dataclasses import dataclass, field

import crc32c as _crc32c

from tomyum.errors import CorruptRecord, ErrorCode, KafkaError
from tomyum.protocol.primitives import MalformedVarint, read_uvarint, read_varint, varint_bytes

__all__ = [
    "BATCH_HEADER_SIZE",
    "BatchHeader",
    "Compression",
    "Header",
    "Record",
    "build_batch",
    "decode_records",
    "iter_batches",
    "parse_header",
    "patch_header",
]

BATCH_HEADER_SIZE = 61
LOG_OVERHEAD = 12
MAGIC = 2
_HDR = struct.Struct(">qiibIhiqqqhii")
_OFFSET_LENGTH_EPOCH = struct.Struct(">qii")
_ATTR_TS = struct.Struct(">hiqq")  # attributes, last_offset_delta, base_timestamp, max_timestamp
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20
NO_TIMESTAMP = -1


class Compression:
    NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
    NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


class BatchHeader(NamedTuple):
    """The 61-byte header of one batch, plus where it sits in its buffer. A named tuple, not a
    frozen dataclass: a Fetch walks a few KiB of headers to find its offset, and a tuple is
    built in C (0.3 µs against 1.2 µs a header)."""

    position: int
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        return LOG_OVERHEAD + self.batch_length

    @property
    def end(self) -> int:
        return self.position + self.size

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & 0x07

    @property
    def log_append_time(self) -> bool:
        return bool(self.attributes & TIMESTAMP_TYPE_BIT)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)


def parse_header(buf: bytes | bytearray | memoryview, offset: int = 0, *, position: int | None = None) -> BatchHeader:
    """Read the header at ``offset`` of ``buf`` (61 bytes must be there).

    ``position`` is where the batch sits in its file or request, if not at ``offset``.
    """
    return BatchHeader(offset if position is None else position, *_HDR.unpack_from(buf, offset))


def iter_batches(
    buf: bytes | bytearray | memoryview,
    *,
    verify_crc: bool = True,
    start: int = 0,
    end: int | None = None,
) -> Iterator[BatchHeader]:
    """Each complete, valid batch in ``buf[start:end]``.

    Raises :class:`CorruptRecord` at the first batch that is truncated, has a bad length,
    magic or CRC, or whose counts cannot be true for its size (a batch claiming 2**31
    records in a few bytes). The error's ``position`` attribute says where.
    """
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        yield check_batch(buf, pos, end, verify_crc=verify_crc)
        pos += LOG_OVERHEAD + _OFFSET_LENGTH_EPOCH.unpack_from(buf, pos)[1]


class BatchError(CorruptRecord):
    def __init__(self, message: str, position: int, code: ErrorCode = ErrorCode.corrupt_message) -> None:
        super().__init__(message, code)
        self.position = position


def check_batch(buf: bytes | bytearray | memoryview, pos: int, end: int, *, verify_crc: bool = True) -> BatchHeader:
    """Validate the batch at ``pos`` (which must end by ``end``) and return its header."""
    if end - pos < BATCH_HEADER_SIZE:
        raise BatchError(f"truncated batch header at position {pos}", pos)
    h = parse_header(buf, pos)
    if h.magic != MAGIC:
        raise BatchError(f"unsupported record batch magic {h.magic} at position {pos}", pos,
                         ErrorCode.invalid_record)
    if h.batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD or pos + h.size > end:
        raise BatchError(f"bad batch length {h.batch_length} at position {pos}", pos)
    # every record takes at least 7 bytes (length, attributes, 3 deltas, key, value, headers)
    body = h.size - BATCH_HEADER_SIZE
    if h.records_count < 0 or h.last_offset_delta < 0 or (
        h.compression == Compression.NONE and h.records_count * 7 > body
    ):
        raise BatchError(f"impossible record count {h.records_count} at position {pos}", pos,
                         ErrorCode.invalid_record)
    if verify_crc and _crc32c.crc32c(buf[pos + 21 : pos + h.size]) != h.crc:
        raise BatchError(f"CRC mismatch in batch at position {pos}", pos)
    return h


def patch_header(h: BatchHeader, buf: bytes | memoryview, base_offset: int, leader_epoch: int,
                 log_append_time: int | None = None, max_timestamp: int | None = None) -> bytes:
    """The first bytes of the batch rewritten for the log: the batch as stored is this
    prefix followed by ``buf[h.position + len(prefix) : h.end]``, unchanged.

    Without ``log_append_time`` or ``max_timestamp`` only base_offset and
    partition_leader_epoch change (16 bytes, outside the CRC). With ``log_append_time``, the
    timestamp type and max_timestamp are set as Kafka does for ``LogAppendTime``; with
    ``max_timestamp``, max_timestamp is set (the records' true maximum, when the producer's
    differs); either way the CRC is recomputed (61 bytes returned).
    """
    if log_append_time is None and max_timestamp is None:
        return _OFFSET_LENGTH_EPOCH.pack(base_offset, h.batch_length, leader_epoch)
    header = bytearray(buf[h.position : h.position + BATCH_HEADER_SIZE])
    _OFFSET_LENGTH_EPOCH.pack_into(header, 0, base_offset, h.batch_length, leader_epoch)
    if log_append_time is not None:
        attributes, max_timestamp = h.attributes | TIMESTAMP_TYPE_BIT, log_append_time
    else:
        attributes = h.attributes
    _ATTR_TS.pack_into(header, 21, attributes, h.last_offset_delta, h.base_timestamp, max_timestamp)
    crc = _crc32c.crc32c(buf[h.position + BATCH_HEADER_SIZE : h.end], _crc32c.crc32c(header[21:]))
    struct.pack_into(">I", header, 17, crc)
    return bytes(header)


# Records: decoded only where a feature needs them -----------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    key: str
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = field(default=())


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The zig-zag varint at ``pos`` (primitives.read_varint), a bad one a corrupt record."""
    try:
        return read_varint(buf, pos, len(buf))
    except MalformedVarint:
        raise CorruptRecord("truncated or oversized varint in record") from None


def _bytes(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    n, pos = _varint(buf, pos)
    if n < 0:
        return None, pos
    if pos + n > len(buf):
        raise CorruptRecord("record field runs past the end of its batch")
    return buf[pos : pos + n], pos + n


def decompress(codec: int, data: bytes, limit: int) -> bytes:
    """Inflate ``data``; refuses to produce more than ``limit`` bytes, and never allocates much
    more than what it returns: a decompression bomb fails as soon as it outgrows its buffer."""
    import cramjam

    if codec == Compression.NONE:
        return data
    if codec == Compression.SNAPPY:
        return _snappy_decompress(data, limit)
    into = {Compression.GZIP: cramjam.gzip.decompress_into, Compression.LZ4: cramjam.lz4.decompress_into,
            Compression.ZSTD: cramjam.zstd.decompress_into}.get(codec)
    if into is None:
        raise CorruptRecord(f"unknown compression codec {codec}")
    size = min(limit + 1, max(64 << 10, 8 * len(data)))
    while True:
        buf = bytearray(size)
        try:
            n = into(data, buf)
        except cramjam.DecompressionError as e:
            if not _overflowed(e):
                raise CorruptRecord(f"cannot decompress {Compression.NAMES.get(codec)} batch: {e}") from None
            n = size
        if n > limit:
            raise KafkaError(f"batch inflates past {limit} bytes", ErrorCode.record_list_too_large)
        if n < size:
            return bytes(memoryview(buf)[:n])
        size = min(limit + 1, size * 4)  # it may not have fit: try a bigger buffer


def _overflowed(e: Exception) -> bool:
    text = str(e)
    return "whole buffer" in text or "smaller than required" in text


_XERIAL = b"\x82SNAPPY\x00"


def _snappy_decompress(data: bytes, limit: int) -> bytes:
    """Kafka's Java producer frames snappy the xerial way; librdkafka may send raw blocks. Each
    raw block states its inflated length first: checked against ``limit`` before inflating."""
    import cramjam

    blocks: list[bytes] = []
    if data.startswith(_XERIAL):
        pos = 16
        while pos + 4 <= len(data):
            (n,) = struct.unpack_from(">i", data, pos)
            blocks.append(data[pos + 4 : pos + 4 + n])
            pos += 4 + n
    else:
        blocks.append(data)
    total = 0
    for block in blocks:
        total += _varint_unsigned(block)
        if total > limit:
            raise KafkaError(f"batch inflates past {limit} bytes", ErrorCode.record_list_too_large)
    try:
        return b"".join(bytes(cramjam.snappy.decompress_raw(block)) for block in blocks)
    except cramjam.DecompressionError as e:
        raise CorruptRecord(f"cannot decompress snappy batch: {e}") from None


def _varint_unsigned(data: bytes) -> int:
    """The unsigned varint at the start of ``data`` (a raw snappy block's inflated length)."""
    try:
        return read_uvarint(data, 0, len(data))[0]
    except MalformedVarint:
        raise CorruptRecord("snappy block without a length") from None


def decode_records(batch: bytes | memoryview, limit: int = 1 << 30) -> list[Record]:
    """Every record of one batch (``batch`` starts at its header), decompressed."""
    batch = bytes(batch)
    h = parse_header(batch)
    data = decompress(h.compression, batch[BATCH_HEADER_SIZE : h.size], limit)
    out, pos = [], 0
    for _ in range(h.records_count):
        length, pos = _varint(data, pos)
        end = pos + length
        pos += 1  # attributes
        ts_delta, pos = _varint(data, pos)
        off_delta, pos = _varint(data, pos)
        key, pos = _bytes(data, pos)
        value, pos = _bytes(data, pos)
        n_headers, pos = _varint(data, pos)
        headers = []
        for _ in range(n_headers):
            hk, pos = _bytes(data, pos)
            hv, pos = _bytes(data, pos)
            headers.append(Header((hk or b"").decode("utf-8", "replace"), hv))
        if pos != end:
            raise CorruptRecord("record length does not match its contents")
        ts = h.max_timestamp if h.log_append_time else h.base_timestamp + ts_delta
        out.append(Record(h.base_offset + off_delta, ts, key, value, tuple(headers)))
    return out


def _put_varint(out: bytearray, value: int) -> None:
    out += varint_bytes(value)


def _put_bytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        _put_varint(out, -1)
    else:
        _put_varint(out, len(value))
        out += value


def compress(codec: int, data: bytes) -> bytes:
    import cramjam

    if codec == Compression.NONE:
        return data
    if codec == Compression.GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == Compression.SNAPPY:
        return bytes(cramjam.snappy.compress_raw(data))
    if codec == Compression.LZ4:
        return bytes(cramjam.lz4.compress(data))
    if codec == Compression.ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise ValueError(f"unknown codec {codec}")


def build_batch(
    records: Sequence[tuple[bytes | None, bytes | None] | tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]]]],
    *,
    base_offset: int = 0,
    timestamp: int = 0,
    compression: int = Compression.NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    control: bool = False,
    partition_leader_epoch: int = 0,
) -> bytes:
    """Encode records ``(key, value[, headers])`` as one batch, all with ``timestamp``."""
    body = bytearray()
    for i, rec in enumerate(records):
        key, value = rec[0], rec[1]
        headers = rec[2] if len(rec) > 2 else ()
        r = bytearray(b"\0")
        _put_varint(r, 0)  # timestamp delta
        _put_varint(r, i)  # offset delta
        _put_bytes(r, key)
        _put_bytes(r, value)
        _put_varint(r, len(headers))
        for hk, hv in headers:
            _put_bytes(r, hk.encode())
            _put_bytes(r, hv)
        _put_varint(body, len(r))
        body += r
    payload = compress(compression, bytes(body))
    attributes = compression | (TRANSACTIONAL_BIT if transactional else 0) | (CONTROL_BIT if control else 0)
    n = len(records)
    tail = struct.pack(">hiqqqhii", attributes, max(n - 1, 0), timestamp, timestamp,
                       producer_id, producer_epoch, base_sequence, n) + payload
    crc = _crc32c.crc32c(tail)
    return struct.pack(">qiibI", base_offset, len(tail) + 9, partition_leader_epoch, MAGIC, crc) + tail


# Rewriting batches (the log cleaner) --------------------------------------------------------

_ATTRIBUTES_AT, _COUNT_AT = 21, 57


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record of a batch as encoded (its length varint included), with what the cleaner
    needs to judge it."""

    offset_delta: int
    key: bytes | None
    tombstone: bool
    raw: bytes


def iter_raw_records(batch: bytes, limit: int = 1 << 30) -> Iterator[RawRecord]:
    """The records of one batch (``batch`` starts at its header), decompressed, undecoded."""
    h = parse_header(batch)
    data = decompress(h.compression, batch[BATCH_HEADER_SIZE : h.size], limit)
    pos = 0
    for _ in range(h.records_count):
        start = pos
        length, pos = _varint(data, pos)
        end = pos + length
        if end > len(data):
            raise CorruptRecord("record runs past the end of its batch")
        pos += 1  # attributes
        _, pos = _varint(data, pos)  # timestamp delta
        offset_delta, pos = _varint(data, pos)
        key, pos = _bytes(data, pos)
        value_length, _ = _varint(data, pos)
        yield RawRecord(offset_delta, key, value_length < 0, data[start:end])
        pos = end


def rebuild_batch(batch: bytes, kept: Sequence[bytes]) -> bytes:
    """``batch`` with only the ``kept`` records (raw, in order), recompressed with its codec.

    Every header field stays — base offset, last offset delta, timestamps, producer id, epoch
    and base sequence — so offsets and producer state never change. A batch left with no
    records becomes an empty, uncompressed batch, as Kafka writes it.
    """
    h = parse_header(batch)
    attributes = h.attributes if kept else h.attributes & ~0x07
    payload = compress(attributes & 0x07, b"".join(kept)) if kept else b""
    tail = bytearray(batch[_ATTRIBUTES_AT:BATCH_HEADER_SIZE])
    struct.pack_into(">h", tail, 0, attributes)
    struct.pack_into(">i", tail, _COUNT_AT - _ATTRIBUTES_AT, len(kept))
    tail += payload
    crc = _crc32c.crc32c(tail)
    return struct.pack(">qiibI", h.base_offset, len(tail) + 9, h.partition_leader_epoch, MAGIC, crc) + tail


def complete_length(records: bytes | bytearray | memoryview) -> int:
    """The length of the complete batches at the start of ``records`` (a read may cut the last)."""
    pos = 0
    while pos + LOG_OVERHEAD <= len(records):
        size = LOG_OVERHEAD + int.from_bytes(records[pos + 8 : pos + 12], "big", signed=True)
        if pos + size > len(records):
            break
        pos += size
    return pos


def control_key(commit: bool) -> bytes:
    """A transaction marker's key: version 0, type 1 (commit) or 0 (abort)."""
    return struct.pack(">hh", 0, 1 if commit else 0)


def control_value(coordinator_epoch: int) -> bytes:
    """A transaction marker's value: version 0, the coordinator epoch."""
    return struct.pack(">hi", 0, coordinator_epoch)


def control_marker(batch: bytes) -> tuple[bool, int] | None:
    """For a transaction marker batch: (commit?, coordinator epoch); None for other batches."""
    for r in decode_records(batch):
        if r.key is not None and len(r.key) >= 4:
            kind = struct.unpack_from(">h", r.key, 2)[0]
            if kind not in (0, 1):
                return None
            epoch = struct.unpack_from(">i", r.value, 2)[0] if r.value is not None and len(r.value) >= 6 else -1
            return kind == 1, epoch
    return None


def control_type(batch: bytes) -> int | None:
    """For a control batch: 0 for an abort marker, 1 for a commit (None if not a marker)."""
    for r in decode_records(batch):
        if r.key is not None and len(r.key) >= 4:
            return int(struct.unpack_from(">h", r.key, 2)[0])
    return None
