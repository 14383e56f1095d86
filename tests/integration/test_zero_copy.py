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


def consume_confluent(bootstrap: str, topic: str) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "zc", "enable.auto.commit": False,
                  "check.crcs": True, "fetch.max.bytes": 4 << 20})
    c.assign([TopicPartition(topic, 0, 0)])
    out: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(out) < N:
            assert time.monotonic() < deadline, f"read {len(out)} of {N}"
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


# sendfile needs the standard library's event loop; on uvloop (the default) every range is copied
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
