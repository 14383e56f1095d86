"""LogValidator on crafted batches: every record checked, errors as Kafka answers them."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tomyum.errors import CorruptRecord, ErrorCode, RecordValidationError
from tomyum.protocol.records import Compression, build_batch, parse_header
from tomyum.storage.log_validator import (
    MalformedRecord,
    TimestampPolicy,
    records_of,
    scan_records,
    validate_batch,
    walk_records,
)
from tomyum.testing.batches import crafted_batch, crafted_record, reseal

NOW = 1_700_000_000_000
DEFAULT = TimestampPolicy(now_ms=NOW, log_append_time=False, before_max_ms=2**63 - 1, after_max_ms=3_600_000)
CODECS = [Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD]


def record(offset_delta: int, key: bytes | None = b"k", value: bytes | None = b"v", **kw: Any) -> bytes:
    return crafted_record(offset_delta, key, value, **kw)


def batch(records: list[bytes] | bytes, count: int | None = None, **kw: Any) -> bytes:
    return crafted_batch(records, count, **{"base_timestamp": NOW, **kw})


def validate(b: bytes, policy: TimestampPolicy = DEFAULT, *, compacted: bool = False) -> int:
    return validate_batch(parse_header(b), memoryview(b), policy, compacted=compacted, topic_partition="t-0")


def refused(b: bytes, **kw: object) -> RecordValidationError:
    with pytest.raises(RecordValidationError) as e:
        validate(b, **kw)  # type: ignore[arg-type]
    return e.value


def indices(e: RecordValidationError) -> list[int]:
    return [r.batch_index for r in e.record_errors]


@pytest.mark.parametrize("codec", CODECS)
def test_a_well_formed_batch_passes_and_its_max_timestamp_is_the_records(codec: int) -> None:
    recs = [record(i, ts_delta=d, headers=[(b"h", b"x"), (b"n", None)]) for i, d in enumerate([3, 9, 1])]
    assert validate(batch(recs, codec=codec, max_timestamp=NOW + 9)) == NOW + 9
    assert validate(batch(recs, codec=codec, max_timestamp=NOW + 1)) == NOW + 9  # the producer's was wrong


@pytest.mark.parametrize("codec", CODECS)
def test_a_header_claiming_fewer_records_than_present_is_refused_at_the_first_extra_one(codec: int) -> None:
    e = refused(batch([record(0), record(1), record(2)], count=1, codec=codec))
    assert e.code == ErrorCode.invalid_record and indices(e) == [1]


@pytest.mark.parametrize("codec", CODECS)
def test_a_header_claiming_more_records_than_present_is_refused_at_the_first_missing_one(codec: int) -> None:
    e = refused(batch([record(0), record(1), record(2)], count=5, codec=codec))
    assert e.code == ErrorCode.invalid_record and indices(e) == [3]


@pytest.mark.parametrize("codec", CODECS)
def test_offset_deltas_must_be_0_1_2_in_order(codec: int) -> None:
    e = refused(batch([record(7), record(7), record(3)], codec=codec))
    assert e.code == ErrorCode.invalid_record and indices(e) == [0]
    assert "sequential" in (e.record_errors[0].message or "")
    assert indices(refused(batch([record(0), record(1), record(1)], codec=codec))) == [2]


@pytest.mark.parametrize("codec", CODECS)
def test_trailing_bytes_after_the_last_record_are_refused(codec: int) -> None:
    e = refused(batch([record(0), record(1)], codec=codec, trailing=b"\0\0\0"))
    assert e.code == ErrorCode.invalid_record and indices(e) == [2]


@pytest.mark.parametrize("codec", CODECS)
def test_a_truncated_record_is_refused(codec: int) -> None:
    whole = record(1, value=b"x" * 50)
    assert indices(refused(batch([record(0), whole[:-10]], codec=codec))) == [1]


def test_a_record_length_that_does_not_match_its_fields_is_refused() -> None:
    assert indices(refused(batch([record(0), record(1, length_adjust=2), record(2, value=b"")]))) == [1]
    assert indices(refused(batch([record(0, length_adjust=-1), record(1)]))) == [0]


def test_malformed_headers_are_refused() -> None:
    for bad in (record(0, header_count=-2), record(0, header_count=1000), record(0, headers=[(None, b"v")]),
                record(0, headers=[(b"k", b"v")], header_count=2)):
        e = refused(batch([bad]))
        assert e.code == ErrorCode.invalid_record and indices(e) == [0], bad


def test_negative_key_or_value_lengths_other_than_null_are_refused() -> None:
    for rec in (record(0, key=None), record(0, value=None)):
        validate(batch([rec]))
    body = bytearray(record(0, key=b"", value=b""))
    body[4] = 3  # key length -2
    assert indices(refused(batch([bytes(body)]))) == [0]


def test_timestamps_out_of_bounds_are_refused_per_record() -> None:
    policy = TimestampPolicy(now_ms=NOW, log_append_time=False, before_max_ms=1000, after_max_ms=1000)
    recs = [record(0, ts_delta=0), record(1, ts_delta=-5000), record(2, ts_delta=500), record(3, ts_delta=5000)]
    e = refused(batch(recs), policy=policy)
    assert e.code == ErrorCode.invalid_timestamp and indices(e) == [1, 3]
    after = refused(batch([record(0)], base_timestamp=NOW + 3_600_001))  # Kafka 4's default after.max
    assert after.code == ErrorCode.invalid_timestamp
    assert validate(batch([record(0)], base_timestamp=NOW - 10**9)) == NOW - 10**9  # before: unbounded
    log_append = TimestampPolicy(now_ms=NOW, log_append_time=True, before_max_ms=1000, after_max_ms=1000)
    validate(batch(recs), policy=log_append)  # LogAppendTime topics ignore the producer's timestamps


def test_records_without_timestamps_are_not_checked() -> None:
    policy = TimestampPolicy(now_ms=NOW, log_append_time=False, before_max_ms=1000, after_max_ms=1000)
    assert validate(batch([record(0), record(1)], base_timestamp=-1), policy) == -1
    # base -1 and a delta of 1: the second record is stamped 0, long before now
    assert indices(refused(batch([record(0), record(1, ts_delta=1)], base_timestamp=-1), policy=policy)) == [1]


@pytest.mark.parametrize("codec", CODECS)
def test_a_compacted_topic_refuses_keyless_records_each_by_index(codec: int) -> None:
    recs = [record(0), record(1, key=None), record(2), record(3, key=None)]
    e = refused(batch(recs, codec=codec), compacted=True)
    assert e.code == ErrorCode.invalid_record and indices(e) == [1, 3]
    assert all("without key" in (r.message or "") for r in e.record_errors)
    validate(batch(recs, codec=codec))  # not compacted: fine


def test_a_missing_key_is_reported_before_a_bad_timestamp_as_kafka_does() -> None:
    policy = TimestampPolicy(now_ms=NOW, log_append_time=False, before_max_ms=1000, after_max_ms=1000)
    e = refused(batch([record(0, key=None, ts_delta=9999), record(1, ts_delta=9999)]), policy=policy, compacted=True)
    assert e.code == ErrorCode.invalid_timestamp and indices(e) == [0, 1]
    assert "without key" in (e.record_errors[0].message or "")


def test_an_undecompressable_batch_is_corrupt() -> None:
    b = bytearray(batch([record(0)], codec=Compression.GZIP))
    b[61:] = b"\x1f\x8b" + bytes(len(b) - 63)
    with pytest.raises(CorruptRecord):
        validate(reseal(b))


# The fast path gives the walk's answer ------------------------------------------------------


def _outcome(fn: object, data: bytes, count: int, **kw: int) -> object:
    try:
        return fn(data, count, **kw)  # type: ignore[operator]
    except MalformedRecord as e:
        return ("malformed", e.index)


def _uniform(n: int, rng: random.Random) -> list[bytes]:
    key = rng.choice([None, b"", b"key-1"])
    value = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 60, 200])))
    headers = rng.choice([[], [(b"trace", b"0123456789")], [(b"a", None), (b"bb", b"c")]])
    step = rng.choice([0, 1, 3, 40, 700, 100_000])
    return [record(i, key, value, ts_delta=(i * step) // 10 - rng.choice([0, 50]), headers=headers) for i in range(n)]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 9000), st.integers(0, 6))
def test_scan_records_agrees_with_the_walk_on_mutated_batches(seed: int, n: int, mutations: int) -> None:
    rng = random.Random(seed)
    recs = _uniform(n, rng)
    if rng.random() < 0.3:  # some records that differ
        for _ in range(rng.randrange(1, 5)):
            i = rng.randrange(n)
            recs[i] = record(i, b"other", b"x" * rng.randrange(300), ts_delta=rng.randrange(-99, 99))
    data = bytearray(b"".join(recs))
    for _ in range(mutations):
        kind = rng.randrange(3)
        at = rng.randrange(len(data))
        if kind == 0:
            data[at] = rng.randrange(256)
        elif kind == 1:
            del data[at]
        else:
            data.insert(at, rng.randrange(256))
    count = n + rng.choice([0, 0, 0, -1, 1])
    if count < 1:
        return
    expected = _outcome(walk_records, bytes(data), count)
    assert _outcome(scan_records, bytes(data), count) == expected
    # the records inside a larger buffer (a request's other batches around them): same answer
    before, after = bytes(rng.randrange(256) for _ in range(rng.randrange(70))), bytes([rng.randrange(256)] * 99)
    inside = before + bytes(data) + after
    window = {"start": len(before), "end": len(before) + len(data)}
    assert _outcome(scan_records, inside, count, **window) == expected
    assert _outcome(walk_records, inside, count, **window) == expected


def test_scan_records_on_a_large_uniform_batch_with_a_late_odd_record() -> None:
    recs = [record(i, None, b"v" * 100, ts_delta=i % 50) for i in range(20_000)]
    recs[15_000] = record(15_000, b"k", b"v" * 100, ts_delta=-3)
    data = b"".join(recs)
    assert scan_records(data, 20_000) == walk_records(data, 20_000) == (-3, 49, True)
    b = build_batch([(None, b"x")] * 5000)
    h = parse_header(b)
    data, start, end = records_of(h, memoryview(b))
    assert data is b and (start, end) == (61, len(b))  # no copy of an uncompressed batch
    assert scan_records(data, 5000, start=start, end=end) == (0, 0, True)
