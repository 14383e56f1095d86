"""Log lifecycle through real clients: DeleteRecords with confluent-kafka's AdminClient,
time retention in a running broker, compaction seen by a consumer."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import BrokerWith
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until

TIMEOUT = 30
DAY_MS = 24 * 3600 * 1000


@pytest.fixture
def lbroker(broker_with: BrokerWith) -> Iterator[BrokerProcess | ExternalBroker]:
    """A broker that checks retention and compaction often."""
    with broker_with({"log.retention.check.interval.ms": "100", "log.cleaner.backoff.ms": "100"}) as b:
        yield b


def create(bootstrap: str, topic: str, partitions: int = 1, **configs: str) -> AdminClient:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1, config=configs)])[topic].result(TIMEOUT)
    return admin


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]],
            timestamp: int = 0, **extra: object) -> None:
    """Every record acknowledged (a delivery error fails the test, not only an undelivered record)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, **extra})
    errors: list[object] = []
    for key, value in records:
        p.produce(topic, key=key, value=value, partition=0, timestamp=timestamp,
                  on_delivery=lambda err, _: err is not None and errors.append(err))
    assert p.flush(TIMEOUT) == 0
    assert errors == []


def read_all(bootstrap: str, topic: str, want_end: int) -> list[tuple[int, bytes | None, bytes | None]]:
    """Everything from the earliest offset up to ``want_end`` (the high watermark)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{time.monotonic_ns()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, -2)])
    out: list[tuple[int, bytes | None, bytes | None]] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while not out or out[-1][0] < want_end - 1:
            assert time.monotonic() < deadline, f"read up to {out[-1][0] if out else None} of {want_end}"
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                out.append((m.offset(), m.key(), m.value()))
    finally:
        c.close()
    return out


def watermarks(bootstrap: str, topic: str) -> tuple[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm"})
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT)
        return int(low), int(high)
    finally:
        c.close()


def test_delete_records_moves_the_low_watermark(broker: BrokerProcess, topic_name: str) -> None:
    admin = create(broker.bootstrap, topic_name, **{"internal.segment.bytes": "2000"})
    # Kafka refuses a batch larger than a segment (RECORD_LIST_TOO_LARGE): keep batches smaller
    produce(broker.bootstrap, topic_name, [(None, b"x" * 100)] * 100, **{"batch.size": 1500})
    result = admin.delete_records([TopicPartition(topic_name, 0, 60)])
    deleted = result[TopicPartition(topic_name, 0)].result(TIMEOUT)
    assert deleted.low_watermark == 60
    assert watermarks(broker.bootstrap, topic_name) == (60, 100)
    records = read_all(broker.bootstrap, topic_name, 100)
    assert [o for o, _, _ in records] == list(range(60, 100))
    # beyond the high watermark: OFFSET_OUT_OF_RANGE
    bad = admin.delete_records([TopicPartition(topic_name, 0, 500)])
    with pytest.raises(Exception) as e:
        bad[TopicPartition(topic_name, 0)].result(TIMEOUT)
    assert "OFFSET_OUT_OF_RANGE" in str(e.value) or "out of range" in str(e.value).lower()


def test_time_retention_in_a_running_broker(lbroker: BrokerProcess, topic_name: str) -> None:
    create(lbroker.bootstrap, topic_name, **{"internal.segment.bytes": "2000", "retention.ms": str(DAY_MS)})
    old = int(time.time() * 1000) - 3 * DAY_MS
    produce(lbroker.bootstrap, topic_name, [(None, b"o" * 100)] * 50, timestamp=old, **{"batch.size": 1500})
    produce(lbroker.bootstrap, topic_name, [(None, b"n" * 100)] * 10)  # recent: a new segment
    # the old records' segments go; the segment with recent records stays
    wait_until(lambda: watermarks(lbroker.bootstrap, topic_name)[0] >= 40, TIMEOUT,
               what="old segments deleted by retention")
    low, high = watermarks(lbroker.bootstrap, topic_name)
    assert high == 60 and low <= 50
    records = read_all(lbroker.bootstrap, topic_name, 60)
    assert [v for o, _, v in records if o >= 50] == [b"n" * 100] * 10


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_compaction_seen_by_a_consumer(lbroker: BrokerProcess, topic_name: str, codec: str) -> None:
    create(lbroker.bootstrap, topic_name, **{"cleanup.policy": "compact", "internal.segment.bytes": "4096",
                                             "min.cleanable.dirty.ratio": "0.01"})
    updates = [(b"key-%d" % (i % 20), b"value-%d" % i) for i in range(2000)]
    produce(lbroker.bootstrap, topic_name, updates, **{"compression.type": codec, "batch.num.messages": 10})
    latest = {k: v for k, v in updates}

    def compacted() -> bool:
        return len(read_all(lbroker.bootstrap, topic_name, 2000)) < 500

    wait_until(compacted, TIMEOUT, what="the cleaner to compact the topic")
    records = read_all(lbroker.bootstrap, topic_name, 2000)
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(set(offsets))
    for offset, key, value in records:
        assert value == b"value-%d" % offset  # offsets never change
    assert {k: v for _, k, v in records} == latest  # the latest value of every key is there
