"""Record batches (magic 2): build, validate, patch, decode — per codec, and when damaged."""

from __future__ import annotations

import struct

import pytest

from tomyum.errors import CorruptRecord, ErrorCode
from tomyum.protocol.records import (
    Compression,
    build_batch,
    check_batch,
    decode_records,
    iter_batches,
    parse_header,
    patch_header,
)

RECORDS = [(b"k1", b"v1", [("h", b"x")]), (None, b"", []), (b"k3", None, [("a", None), ("b", b"\x00")])]


@pytest.mark.parametrize("codec", [0, 1, 2, 3, 4])
def test_round_trip_every_codec(codec: int) -> None:
    data = build_batch(RECORDS, base_offset=10, timestamp=1234, compression=codec)
    (h,) = iter_batches(data)
    assert (h.base_offset, h.records_count, h.last_offset_delta, h.compression) == (10, 3, 2, codec)
    assert h.size == len(data)
    out = decode_records(data)
    assert [(r.offset, r.timestamp, r.key, r.value) for r in out] == [
        (10, 1234, b"k1", b"v1"), (11, 1234, None, b""), (12, 1234, b"k3", None)]
    assert [(x.key, x.value) for x in out[2].headers] == [("a", None), ("b", b"\x00")]


def test_several_batches_are_walked_in_order() -> None:
    data = build_batch(RECORDS[:1], base_offset=0) + build_batch(RECORDS, base_offset=1)
    assert [(h.position, h.base_offset, h.next_offset) for h in iter_batches(data)] == [
        (0, 0, 1), (len(build_batch(RECORDS[:1])), 1, 4)]


def test_crc_mismatch_is_corrupt_message() -> None:
    data = bytearray(build_batch(RECORDS))
    data[30] ^= 0x01  # base_timestamp: inside the CRC
    with pytest.raises(CorruptRecord) as e:
        list(iter_batches(data))
    assert e.value.code == ErrorCode.corrupt_message


def test_fields_outside_the_crc_may_change() -> None:
    data = bytearray(build_batch(RECORDS))
    struct.pack_into(">qii", data, 0, 99, len(data) - 12, 7)  # base offset, length, leader epoch
    (h,) = iter_batches(data)
    assert (h.base_offset, h.partition_leader_epoch) == (99, 7)


@pytest.mark.parametrize("cut", [1, 20, 60])
def test_truncated_batch(cut: int) -> None:
    data = build_batch(RECORDS)
    with pytest.raises(CorruptRecord) as e:
        list(iter_batches(data[:-cut]))
    assert e.value.position == 0  # type: ignore[attr-defined]


def test_bad_magic_is_invalid_record() -> None:
    data = bytearray(build_batch(RECORDS))
    data[16] = 1
    with pytest.raises(CorruptRecord) as e:
        check_batch(data, 0, len(data))
    assert e.value.code == ErrorCode.invalid_record


def test_hostile_record_count_is_rejected_without_decoding() -> None:
    data = bytearray(build_batch(RECORDS))
    struct.pack_into(">i", data, 57, 2**31 - 1)
    with pytest.raises(CorruptRecord) as e:
        check_batch(data, 0, len(data), verify_crc=False)
    assert e.value.code == ErrorCode.invalid_record


def test_patch_header_rewrites_offset_and_epoch_only() -> None:
    data = build_batch(RECORDS, base_offset=0, timestamp=5)
    h = parse_header(data)
    prefix = patch_header(h, data, 1000, 0)
    stored = prefix + data[len(prefix):]
    (p,) = iter_batches(stored)  # CRC still valid
    assert (p.base_offset, p.crc, p.max_timestamp) == (1000, h.crc, 5)


def test_patch_header_for_log_append_time_sets_time_and_crc() -> None:
    data = build_batch(RECORDS, base_offset=0, timestamp=5, compression=Compression.GZIP)
    h = parse_header(data)
    prefix = patch_header(h, data, 50, 0, log_append_time=777)
    stored = prefix + data[len(prefix):]
    (p,) = iter_batches(stored)  # CRC recomputed
    assert p.log_append_time and p.max_timestamp == 777
    assert {r.timestamp for r in decode_records(stored)} == {777}
    assert [r.offset for r in decode_records(stored)] == [50, 51, 52]
