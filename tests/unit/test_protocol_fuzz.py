"""Property tests (hypothesis) over everything that reads untrusted bytes: the request header,
every request decoder the broker registers, record batches and their codecs. Whatever the
bytes, the only way out is the answer or the project's own error (ProtocolError,
KafkaError) — never an IndexError, struct.error or MemoryError."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tomyum.broker.handlers import registry
from tomyum.errors import KafkaError, ProtocolError
from tomyum.protocol.codec import decode_request, read_header_prefix
from tomyum.protocol.records import (
    Compression,
    build_batch,
    control_marker,
    decode_records,
    decompress,
    iter_batches,
    iter_raw_records,
)

VERSIONS = sorted((h.api_key, v) for h in registry().values() for v in range(h.min_version, h.max_version + 1))
SETTINGS = settings(max_examples=400, deadline=None)


@SETTINGS
@given(st.binary(max_size=64))
def test_the_header_prefix_reads_anything(data: bytes) -> None:
    try:
        read_header_prefix(data)
    except ProtocolError:
        pass


@SETTINGS
@given(st.sampled_from(VERSIONS), st.binary(max_size=600))
def test_every_request_decoder_refuses_garbage_cleanly(key_version: tuple[int, int], body: bytes) -> None:
    api_key, version = key_version
    frame = struct.pack(">hhih", api_key, version, 1, 4) + b"fuzz" + body
    try:
        decode_request(frame)
    except ProtocolError:
        pass


@SETTINGS
@given(st.binary(max_size=400))
def test_record_batches_refuse_garbage_cleanly(data: bytes) -> None:
    try:
        for h in iter_batches(data):
            batch = data[h.position : h.end]
            decode_records(batch)
            list(iter_raw_records(batch, 1 << 20))
            control_marker(batch)
    except KafkaError:
        pass


VALID = build_batch([(b"key", b"value" * 20), (None, b"x")], compression=Compression.GZIP)


@SETTINGS
@given(st.integers(min_value=0, max_value=len(VALID) - 1), st.binary(min_size=1, max_size=8))
def test_mutated_batches_refuse_cleanly(at: int, patch: bytes) -> None:
    data = bytearray(VALID)
    data[at : at + len(patch)] = patch
    try:
        for h in iter_batches(bytes(data), verify_crc=False):  # as if the CRC had been forged
            batch = bytes(data[h.position : h.end])
            decode_records(batch)
            list(iter_raw_records(batch, 1 << 20))
    except KafkaError:
        pass


@SETTINGS
@given(st.sampled_from([Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD, 7]),
       st.binary(max_size=300))
def test_decompressors_refuse_garbage_cleanly(codec: int, data: bytes) -> None:
    try:
        decompress(codec, data, 1 << 16)
    except KafkaError:
        pass


def test_unknown_tagged_fields_are_ignored_as_kafka_says() -> None:
    """A newer client may send tagged fields this broker's schema does not know, at a version
    it supports: they are skipped, at the top level and inside nested entities."""
    import io
    import uuid

    from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
    from kio.serial import entity_writer

    def frame_of(body: bytes) -> bytes:
        return struct.pack(">hhih", 3, 12, 9, 4) + b"fuzz" + b"\0" + body

    buf = io.BytesIO()
    entity_writer(MetadataRequest)(buf, MetadataRequest(
        topics=(MetadataRequestTopic(topic_id=uuid.UUID(int=0), name="t1"),), allow_auto_topic_creation=True,
        include_topic_authorized_operations=False))
    body = bytearray(buf.getvalue())
    # the topic entity ends with its (empty) tagged section: 1 + 16 (array, uuid) + 3 ("t1") in
    topic_tags = 1 + 16 + 3
    assert body[topic_tags] == 0
    body[topic_tags : topic_tags + 1] = b"\x01\x05\x02zz"  # one unknown tag (5) of 2 bytes
    assert body[-1] == 0
    body[-1:] = b"\x02\x09\x01x\x0a\x00"  # two unknown top-level tags (9 and 10)
    request = decode_request(frame_of(bytes(body)))
    assert [t.name for t in request.body.topics] == ["t1"]
    assert request.body.allow_auto_topic_creation is True


def test_a_nullable_struct_is_read_by_its_marker_and_its_lengths_checked() -> None:
    """KIP-893: a nullable struct (DescribeTopicPartitions' cursor) is an int8 marker, negative
    for null, then the struct; the guard checks the struct's lengths like any other."""
    import io

    from kio.schema.describe_topic_partitions.v0.request import Cursor, DescribeTopicPartitionsRequest, TopicRequest
    from kio.serial import entity_writer

    def frame_of(cursor: Cursor | None) -> bytes:
        buf = io.BytesIO()
        entity_writer(DescribeTopicPartitionsRequest)(buf, DescribeTopicPartitionsRequest(
            topics=(TopicRequest(name="t"),), response_partition_limit=5, cursor=cursor))
        return struct.pack(">hhih", 75, 0, 9, 4) + b"fuzz" + b"\0" + buf.getvalue()

    assert decode_request(frame_of(None)).body.cursor is None
    present = frame_of(Cursor(topic_name="t", partition_index=3))
    assert decode_request(present).body.cursor == Cursor(topic_name="t", partition_index=3)
    # the cursor's topic name claims 126 bytes where none are left: refused, nothing allocated
    marker = present.index(b"\x01\x02t")  # marker 1, compact string of length 1, "t"
    hostile = present[:marker + 1] + b"\x7f" + present[marker + 2:]
    try:
        decode_request(hostile)
    except ProtocolError as e:
        assert "string of 126 bytes" in str(e)
    else:
        raise AssertionError("a hostile length inside a nullable struct was not refused")
    for cut in range(len(present) - 8, len(present)):  # cut anywhere in the cursor: refused cleanly
        with pytest.raises(ProtocolError):
            decode_request(present[:cut])
