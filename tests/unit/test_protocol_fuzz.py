"""Property tests (hypothesis) over everything that reads untrusted bytes: the request header,
every request decoder the broker registers, record batches and their codecs. Whatever the
bytes, the only way out is the answer or the project's own error (ProtocolError,
KafkaError) — never an IndexError, struct.error or MemoryError."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from tomyum.broker.dispatch import load_handlers
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

VERSIONS = sorted((h.api_key, v) for h in load_handlers().values() for v in range(h.min_version, h.max_version + 1))
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
