"""The wire primitives: every varint round-trips, and bad bytes are refused, never over-read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tomyum.protocol.primitives import (
    MalformedVarint,
    array_count,
    read_uvarint,
    read_varint,
    short_string,
    uvarint_bytes,
    varint_bytes,
)


@given(st.integers(0, 2**32 - 1), st.binary(max_size=4))
def test_unsigned_varints_round_trip(n: int, tail: bytes) -> None:
    encoded = uvarint_bytes(n)
    buf = b"\x01" + encoded + tail
    assert read_uvarint(buf, 1, len(buf)) == (n, 1 + len(encoded))


@given(st.binary(min_size=1, max_size=5).map(lambda b: bytes(x | 0x80 for x in b)))
def test_a_truncated_varint_is_refused_without_reading_past_the_end(buf: bytes) -> None:
    with pytest.raises(MalformedVarint):
        read_uvarint(buf + b"\x00", 0, len(buf))


def test_an_unsigned_varint_longer_than_five_bytes_is_refused() -> None:
    with pytest.raises(MalformedVarint):
        read_uvarint(b"\x80\x80\x80\x80\x80\x01", 0, 6)


def test_strings_and_counts_in_both_encodings() -> None:
    assert short_string(None, False) == b"\xff\xff"
    assert short_string(None, True) == b"\x00"
    assert short_string("ab", False) == b"\x00\x02ab"
    assert short_string("ab", True) == b"\x03ab"
    assert array_count(2, False) == b"\x00\x00\x00\x02"
    assert array_count(2, True) == b"\x03"
    assert array_count(-1, True) == b"\x00"


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1), st.binary(max_size=4))
def test_zigzag_varints_round_trip_over_the_whole_varlong_range(n: int, tail: bytes) -> None:
    encoded = varint_bytes(n)
    assert len(encoded) <= 10
    buf = b"\x00" + encoded + tail
    assert read_varint(buf, 1, len(buf)) == (n, 1 + len(encoded))


def test_zigzag_varints_are_kafkas_encoding() -> None:
    # ByteUtils.writeVarint: 0 → 00, -1 → 01, 1 → 02, 63 → 7e, -64 → 7f, 64 → 80 01
    assert [varint_bytes(n) for n in (0, -1, 1, 63, -64, 64)] == [
        b"\x00", b"\x01", b"\x02", b"\x7e", b"\x7f", b"\x80\x01"]


def test_a_truncated_zigzag_varint_is_refused() -> None:
    with pytest.raises(MalformedVarint):
        read_varint(b"\x80\x80", 0, 2)
    with pytest.raises(MalformedVarint):
        read_varint(b"", 0, 0)
