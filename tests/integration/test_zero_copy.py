"""Fetch with sendfile (zero copy) and without: real consumers read the same bytes either way,
also while retention deletes the segments being sent."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

from tests.integration.test_tls_reload import tls_port
from tomyum.broker.server import PIECEWISE_MIN_BYTES
from tomyum.security.certs import LocalCA
from tomyum.testing import BrokerProcess

TIMEOUT = 30
N = 3000


def fill(bootstrap: str, topic: str) -> list[bytes]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={"internal.segment.bytes": "200000"})])[topic].result(TIMEOUT)
    # batches smaller than a segment: Kafka refuses a larger one (RECORD_LIST_TOO_LARGE)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "batch.size": 65536})
    values = [(b"%06d" % i) * 170 for i in range(N)]  # ~1 KiB each
    failed: list[object] = []
    for v in values:
        p.produce(topic, value=v, partition=0, on_delivery=lambda err, msg: err and failed.append(err))
        p.poll(0)
    assert p.flush(TIMEOUT) == 0 and not failed, failed[:3]
    return values


def consume_confluent(bootstrap: str, topic: str, count: int = N, **conf: object) -> list[bytes]:
    """``count`` values of partition 0 from the start, CRCs checked; ``conf``: more settings."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "zc", "enable.auto.commit": False,
                  "check.crcs": True, "fetch.max.bytes": 4 << 20, **conf})
    c.assign([TopicPartition(topic, 0, 0)])
    out: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(out) < count:
            assert time.monotonic() < deadline, f"read {len(out)} of {count}"
            for m in c.consume(num_messages=1000, timeout=0.5):
                assert m.error() is None, m.error()
                out.append(m.value())
    finally:
        c.close()
    return out


def consume_kafka_python(bootstrap: str, topic: str) -> list[bytes]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, check_crcs=True,
                      consumer_timeout_ms=TIMEOUT * 1000, fetch_max_bytes=4 << 20)
    tp = KTopicPartition(topic, 0)
    c.assign([tp])
    c.seek(tp, 0)
    out: list[bytes] = []
    try:
        for m in c:
            out.append(m.value)
            if len(out) == N:
                break
    finally:
        c.close()
    return out


# sendfile needs the standard library's event loop; on uvloop (the default) a range is copied (read
# whole, or in pieces when it is over PIECEWISE_MIN_BYTES: the test below)
@pytest.mark.parametrize(("zero_copy_min", "event_loop"),
                         [("0", "asyncio"), ("65536", "asyncio"), ("-1", "asyncio"), ("65536", "uvloop")],
                         ids=["always", "large", "never", "uvloop"])
def test_consumers_read_the_same_bytes_with_and_without_sendfile(tmp_path: Path, topic_name: str,
                                                                   zero_copy_min: str, event_loop: str) -> None:
    with BrokerProcess(tmp_path / "data", settings={"fetch.zero.copy.min.bytes": zero_copy_min},
                       extra_args=["--event-loop", event_loop]) as b:
        values = fill(b.bootstrap, topic_name)
        assert consume_confluent(b.bootstrap, topic_name) == values
        assert consume_kafka_python(b.bootstrap, topic_name) == values


@pytest.mark.parametrize("listener", ["plaintext", "tls"])
def test_a_fetch_of_more_than_32_mib_of_one_partition_reads_the_same_bytes_without_sendfile(
        tmp_path: Path, topic_name: str, listener: str) -> None:
    """Without sendfile (uvloop, the default loop; TLS), a fetched range over
    ``PIECEWISE_MIN_BYTES`` is read and written a piece at a time: the consumer gets every byte,
    in order, CRCs checked."""
    count, size = 4000, 10_240  # 41 MB, in batches of about 1 MB
    ca = LocalCA(tmp_path / "ca")
    settings = {"listeners": "PLAINTEXT://127.0.0.1:0,TLS://127.0.0.1:0",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,TLS:SSL",
                "ssl.keystore.location": str(ca.broker().keystore)}
    with BrokerProcess(tmp_path / "data", settings=settings) as b:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 20, "batch.size": 1_000_000})
        values = [(b"%06d" % i) * (size // 6) for i in range(count)]
        assert sum(map(len, values)) > PIECEWISE_MIN_BYTES
        for v in values:
            p.produce(topic_name, value=v, partition=0)
            p.poll(0)
        assert p.flush(TIMEOUT) == 0
        big: dict[str, object] = {"fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 64 << 20,
                                  "receive.message.max.bytes": 80 << 20}
        bootstrap = b.bootstrap
        if listener == "tls":
            bootstrap = f"127.0.0.1:{tls_port(b)}"
            big.update({"security.protocol": "SSL", "ssl.ca.location": str(ca.cert_path)})
        assert consume_confluent(bootstrap, topic_name, count, **big) == values
