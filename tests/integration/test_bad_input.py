"""Bad input gets a clear error (or a closed connection), a log line, and nobody else notices."""

from __future__ import annotations

import socket
import struct

import pytest
from confluent_kafka.admin import AdminClient

from tomyum.testing import BrokerProcess, wait_until

TIMEOUT = 10


def connect(broker: BrokerProcess) -> socket.socket:
    s = socket.create_connection((broker.host, broker.port), timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    return s


def request(api_key: int, version: int, correlation_id: int, body: bytes = b"", client_id: bytes = b"t") -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    frame = header + body
    return struct.pack(">i", len(frame)) + frame


def read_frame(s: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    (size,) = struct.unpack(">i", exactly(4))
    return exactly(size)


def is_closed(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def still_serving(broker: BrokerProcess) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    md = admin.list_topics(timeout=TIMEOUT)
    assert md.brokers, "broker stopped answering metadata"


def test_api_versions_v0_lists_our_ranges(own_broker: BrokerProcess) -> None:
    with connect(own_broker) as s:
        s.sendall(request(18, 0, 7))
        frame = read_frame(s)
    correlation_id, error_code, count = struct.unpack_from(">ihi", frame)
    assert (correlation_id, error_code) == (7, 0)
    keys = {struct.unpack_from(">hhh", frame, 10 + 6 * i)[0] for i in range(count)}
    assert {0, 1, 2, 3, 18, 19, 20} <= keys


def test_unknown_api_versions_version_gets_kip511_fallback(own_broker: BrokerProcess) -> None:
    with connect(own_broker) as s:
        # a future ApiVersions v99 with a body we cannot know: only the header is read
        s.sendall(request(18, 99, 42, body=b"\x01\x02\x03"))
        frame = read_frame(s)
    correlation_id, error_code, count = struct.unpack_from(">ihi", frame)
    assert correlation_id == 42
    assert error_code == 35  # UNSUPPORTED_VERSION, v0 body
    assert count > 0
    min_v, max_v = next(struct.unpack_from(">hh", frame, 12 + 6 * i) for i in range(count)
                        if struct.unpack_from(">h", frame, 10 + 6 * i)[0] == 18)
    assert (min_v, max_v) == (0, 4)


@pytest.mark.parametrize("payload, why", [
    (struct.pack(">i", 200 * 1024 * 1024), "exceeds socket.request.max.bytes"),
    (struct.pack(">i", -5), "exceeds socket.request.max.bytes"),
    (request(9999, 0, 1), "unknown API key"),
    (request(3, 77, 1), "unsupported version"),
    (request(3, 12, 1, body=b"\xff\xff\xff"), "malformed"),
])
def test_garbage_closes_only_that_connection(own_broker: BrokerProcess, payload: bytes, why: str) -> None:
    with connect(own_broker) as bystander, connect(own_broker) as s:
        s.sendall(payload)
        assert is_closed(s)
        wait_until(lambda: why in own_broker.output(), timeout=TIMEOUT, what=f"log line {why!r}")
        bystander.sendall(request(18, 0, 5))
        assert struct.unpack_from(">ih", read_frame(bystander)) == (5, 0)
    still_serving(own_broker)


def test_bad_crc_is_rejected_with_corrupt_message(own_broker: BrokerProcess, topic_name: str) -> None:
    from tomyum.protocol.records import build_batch

    admin = AdminClient({"bootstrap.servers": own_broker.bootstrap})
    from confluent_kafka.admin import NewTopic

    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
    batch = bytearray(build_batch([(b"k", b"v")]))
    batch[-1] ^= 0xFF  # inside the CRC-covered part
    name = topic_name.encode()
    # Produce v3: transactional_id, acks, timeout, [topic [partition records]]
    body = (struct.pack(">hhi", -1, 1, 5000) + struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
            + struct.pack(">i", 1) + struct.pack(">ii", 0, len(batch)) + bytes(batch))
    with connect(own_broker) as s:
        s.sendall(request(0, 3, 11, body))
        frame = read_frame(s)
    # correlation, [topic: name, [partition: index, error_code, base_offset, log_append_time]]
    pos = 4 + 4
    (n,) = struct.unpack_from(">h", frame, pos)
    pos += 2 + n + 4
    index, error_code, base_offset = struct.unpack_from(">ihq", frame, pos)
    assert (index, error_code, base_offset) == (0, 2, -1)  # CORRUPT_MESSAGE
    from confluent_kafka import Consumer, TopicPartition

    # and the log holds nothing
    c = Consumer({"bootstrap.servers": own_broker.bootstrap, "group.id": "x", "enable.auto.commit": False})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=TIMEOUT) == (0, 0)
    finally:
        c.close()


def kio_request(api_key: int, version: int, correlation_id: int, body: object) -> bytes:
    """Encode a request with kio (header v1 or v2 as the version requires)."""
    import io

    from kio.serial import entity_writer

    from tomyum.protocol.codec import request_class

    cls = request_class(api_key, version)
    buf = io.BytesIO()
    entity_writer(cls)(buf, body)
    header = struct.pack(">hhih", api_key, version, correlation_id, 1) + b"t" + (b"\0" if cls.__flexible__ else b"")
    frame = header + buf.getvalue()
    return struct.pack(">i", len(frame)) + frame


def decode_response(api_key: int, version: int, frame: bytes) -> object:
    from kio.serial import entity_reader

    from tomyum.protocol.codec import response_class, response_header_flexible

    offset = 4 + (1 if response_header_flexible(api_key, version) else 0)
    return entity_reader(response_class(api_key, version))(frame, offset)[0]


def test_offset_for_leader_epoch_and_unknown_partition(own_broker: BrokerProcess, topic_name: str) -> None:
    import datetime

    from confluent_kafka import Producer
    from kio.schema.offset_for_leader_epoch.v4 import request as ofle
    from kio.schema.produce.v9 import request as prod

    from tomyum.protocol.records import build_batch

    p = Producer({"bootstrap.servers": own_broker.bootstrap})
    for i in range(5):
        p.produce(topic_name, value=b"%d" % i, partition=0)
    assert p.flush(TIMEOUT) == 0

    req = ofle.OffsetForLeaderEpochRequest(replica_id=-1, topics=(ofle.OffsetForLeaderTopic(
        topic=topic_name, partitions=(
            ofle.OffsetForLeaderPartition(partition=0, current_leader_epoch=0, leader_epoch=0),
            ofle.OffsetForLeaderPartition(partition=0, current_leader_epoch=-1, leader_epoch=5),
            ofle.OffsetForLeaderPartition(partition=7, current_leader_epoch=-1, leader_epoch=0))),))
    produce = prod.ProduceRequest(transactional_id=None, acks=-1, timeout=datetime.timedelta(seconds=5),
                                  topic_data=(prod.TopicProduceData(name=topic_name, partition_data=(
                                      prod.PartitionProduceData(index=9, records=build_batch([(None, b"x")])),)),))
    with connect(own_broker) as s:
        s.sendall(kio_request(23, 4, 1, req))
        epochs = decode_response(23, 4, read_frame(s))
        s.sendall(kio_request(0, 9, 2, produce))
        produced = decode_response(0, 9, read_frame(s))
    parts = epochs.topics[0].partitions  # type: ignore[attr-defined]
    assert [(x.error_code, x.leader_epoch, x.end_offset) for x in parts] == [
        (0, 0, 5),       # epoch 0 ends at the log end offset
        (0, -1, -1),     # an epoch this log never had
        (3, -1, -1),     # UNKNOWN_TOPIC_OR_PARTITION
    ]
    answer = produced.responses[0].partition_responses[0]  # type: ignore[attr-defined]
    assert (answer.index, answer.error_code, answer.base_offset) == (9, 3, -1)
