"""Decompression bombs and hostile counts: refused without allocating what they claim, and
the broker keeps serving everyone else."""

from __future__ import annotations

import struct
import time
import tracemalloc

import cramjam
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.test_bad_input import connect, is_closed, read_frame, request, still_serving
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.records import Compression, build_batch, decompress, iter_batches
from tomyum.testing import BrokerProcess

TIMEOUT = 10
BOMB = b"\0" * (64 << 20)  # 64 MiB of zeros: a few KiB once compressed


def compressed(codec: int, data: bytes = BOMB) -> bytes:
    if codec == Compression.SNAPPY:
        return bytes(cramjam.snappy.compress_raw(data))
    return bytes({Compression.GZIP: cramjam.gzip, Compression.LZ4: cramjam.lz4,
                  Compression.ZSTD: cramjam.zstd}[codec].compress(data))


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.LZ4, Compression.ZSTD, Compression.SNAPPY])
def test_a_decompression_bomb_fails_before_it_inflates(codec: int) -> None:
    data = compressed(codec)
    tracemalloc.start()
    try:
        with pytest.raises(KafkaError) as e:
            decompress(codec, data, 1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert e.value.code == ErrorCode.record_list_too_large
    assert peak < 8 << 20, f"{Compression.NAMES[codec]}: {peak} bytes allocated to refuse a bomb"
    assert decompress(codec, compressed(codec, b"x" * 1000), 1 << 20) == b"x" * 1000  # the honest still inflate


def test_a_batch_claiming_two_billion_records_is_refused_without_allocating() -> None:
    batch = bytearray(build_batch([(b"k", b"v")]))
    struct.pack_into(">i", batch, 57, 2**31 - 1)  # records_count
    started = time.monotonic()
    with pytest.raises(KafkaError):
        list(iter_batches(bytes(batch), verify_crc=False))
    assert time.monotonic() - started < 1


def produce_frame(topic: str, records: bytes, correlation_id: int = 1) -> bytes:
    name = topic.encode()
    body = (struct.pack(">hhi", -1, 1, 5000) + struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
            + struct.pack(">i", 1) + struct.pack(">ii", 0, len(records)) + records)
    return request(0, 3, correlation_id, body)


def partition_error(frame: bytes) -> int:
    pos = 4 + 4
    (n,) = struct.unpack_from(">h", frame, pos)
    return struct.unpack_from(">ih", frame, pos + 2 + n + 4)[1]


def test_hostile_produces_are_refused_and_others_are_served(own_broker: BrokerProcess, topic_name: str) -> None:
    admin = AdminClient({"bootstrap.servers": own_broker.bootstrap})
    compacted = f"{topic_name}-compacted"
    for f in admin.create_topics([NewTopic(topic_name, 1, 1),
                                  NewTopic(compacted, 1, 1, config={"cleanup.policy": "compact"})]).values():
        f.result(TIMEOUT)
    # a gzip bomb to a compacted topic (whose keys the broker must read)
    bomb = build_batch([(b"k", BOMB)], compression=Compression.GZIP)
    with connect(own_broker) as s:
        s.sendall(produce_frame(compacted, bomb, 1))
        assert partition_error(read_frame(s)) == ErrorCode.record_list_too_large.value
    # a batch that claims 2**31-1 records
    claim = bytearray(build_batch([(b"k", b"v")]))
    struct.pack_into(">i", claim, 57, 2**31 - 1)
    with connect(own_broker) as s:
        s.sendall(produce_frame(topic_name, bytes(claim), 2))
        assert partition_error(read_frame(s)) in (ErrorCode.corrupt_message.value, ErrorCode.invalid_record.value)
    # an array count far beyond the bytes that follow
    body = struct.pack(">hhi", -1, 1, 5000) + struct.pack(">i", 2**31 - 1) + b"\0\0"
    with connect(own_broker) as bystander, connect(own_broker) as s:
        s.sendall(request(0, 3, 3, body))
        assert is_closed(s)
        bystander.sendall(request(18, 0, 5))
        assert struct.unpack_from(">ih", read_frame(bystander)) == (5, 0)
    still_serving(own_broker)
