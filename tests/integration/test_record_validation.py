"""Batches whose records lie about themselves are refused whole, as Kafka's LogValidator
refuses them: INVALID_RECORD with KIP-467 record_errors, and nothing of them stored."""

from __future__ import annotations

import datetime
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.produce.v8 import request as prod8
from kio.schema.produce.v9 import request as prod9

from tomyum.testing import BrokerProcess
from tomyum.testing.batches import crafted_batch, crafted_record
from tests.integration.test_bad_input import connect, decode_response, kio_request, read_frame

TIMEOUT = 10


def create(broker: BrokerProcess, topic: str, config: dict[str, str] | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config=config or {})])[topic].result(TIMEOUT)


def produce_raw(broker: BrokerProcess, topic: str, batches: list[bytes], version: int = 9) -> list[object]:
    """One Produce request per batch, on one connection; the partition answers, in order."""
    prod = prod9 if version == 9 else prod8
    answers = []
    with connect(broker) as s:
        for i, batch in enumerate(batches):
            req = prod.ProduceRequest(transactional_id=None, acks=-1, timeout=datetime.timedelta(seconds=5),
                                      topic_data=(prod.TopicProduceData(name=topic, partition_data=(
                                          prod.PartitionProduceData(index=0, records=batch),)),))
            s.sendall(kio_request(0, version, i, req))
            answers.append(decode_response(0, version, read_frame(s)).responses[0]  # type: ignore[attr-defined]
                           .partition_responses[0])
    return answers


def consume_all(broker: BrokerProcess, topic: str, expected: int) -> list[tuple[int, bytes | None, bytes | None]]:
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got: list[tuple[int, bytes | None, bytes | None]] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(got) < expected and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append((m.offset(), m.key(), m.value()))
        # anything stored beyond what is expected shows up in the high watermark
        from confluent_kafka import TopicPartition
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT)
        assert (low, high) == (0, expected)
    finally:
        c.close()
    return got


@pytest.mark.slow
def test_lying_batches_get_invalid_record_with_record_errors_and_are_not_stored(
        own_broker: BrokerProcess, topic_name: str) -> None:
    create(own_broker, topic_name)
    r = crafted_record
    now = int(time.time() * 1000)
    answers = produce_raw(own_broker, topic_name, [
        crafted_batch([r(0, value=b"good-0")], base_timestamp=now),
        crafted_batch([r(0), r(1), r(2)], count=1, base_timestamp=now),          # declares 1, holds 3
        crafted_batch([r(7), r(7), r(3)], base_timestamp=now),                   # offset deltas 7, 7, 3
        crafted_batch([r(0), r(1)], base_timestamp=now, trailing=b"\x00junk"),   # bytes after the last record
        crafted_batch([r(0), r(1, length_adjust=3), r(2)], base_timestamp=now),  # a record length that lies
        crafted_batch([r(0, value=b"good-1"), r(1, value=b"good-2")], base_timestamp=now),
    ])
    codes = [(a.error_code, [e.batch_index for e in a.record_errors]) for a in answers]  # type: ignore[attr-defined]
    assert codes == [(0, []), (87, [1]), (87, [0]), (87, [2]), (87, [1]), (0, [])]
    for a in answers[1:5]:
        assert a.error_message and "topic partition" in a.error_message  # type: ignore[attr-defined]
        assert a.record_errors[0].batch_index_error_message  # type: ignore[attr-defined]
    assert answers[5].base_offset == 1  # type: ignore[attr-defined]
    assert consume_all(own_broker, topic_name, 3) == [(0, b"k", b"good-0"), (1, b"k", b"good-1"),
                                                     (2, b"k", b"good-2")]


def test_keyless_records_on_a_compacted_topic_are_each_reported(own_broker: BrokerProcess, topic_name: str) -> None:
    create(own_broker, topic_name, {"cleanup.policy": "compact"})
    r = crafted_record
    now = int(time.time() * 1000)
    bad = crafted_batch([r(0), r(1, key=None), r(2), r(3, key=None)], base_timestamp=now)
    for version in (8, 9):
        (answer,) = produce_raw(own_broker, topic_name, [bad], version)
        assert answer.error_code == 87  # type: ignore[attr-defined]
        assert [e.batch_index for e in answer.record_errors] == [1, 3]  # type: ignore[attr-defined]
    consume_all(own_broker, topic_name, 0)


def test_timestamps_beyond_message_timestamp_after_max_ms_are_invalid_timestamp(
        own_broker: BrokerProcess, topic_name: str) -> None:
    create(own_broker, topic_name, {"message.timestamp.after.max.ms": "60000"})
    r = crafted_record
    now = int(time.time() * 1000)
    (answer,) = produce_raw(own_broker, topic_name, [
        crafted_batch([r(0), r(1, ts_delta=3_600_000), r(2)], base_timestamp=now)])
    assert answer.error_code == 32  # type: ignore[attr-defined]  # INVALID_TIMESTAMP
    assert [e.batch_index for e in answer.record_errors] == [1]  # type: ignore[attr-defined]
    consume_all(own_broker, topic_name, 0)


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_confluent_kafka_keyless_records_to_a_compacted_topic_fail_with_invalid_record(
        broker: BrokerProcess, topic_name: str, compression: str) -> None:
    create(broker, topic_name, {"cleanup.policy": "compact"})
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 50, "compression.type": compression})
    outcome: dict[bytes, int | None] = {}

    def delivered(err: KafkaError | None, msg: object) -> None:
        outcome[msg.value()] = err.code() if err else None  # type: ignore[attr-defined]

    for i in range(5):
        p.produce(topic_name, key=None if i % 2 else b"k%d" % i, value=b"v%d" % i, partition=0,
                  on_delivery=delivered)
    assert p.flush(TIMEOUT) == 0
    # KIP-467: librdkafka fails the records named in record_errors with INVALID_RECORD, the
    # others of the batch with _INVALID_DIFFERENT_RECORD (they may be retried on their own)
    assert outcome == {b"v0": KafkaError._INVALID_DIFFERENT_RECORD, b"v1": KafkaError.INVALID_RECORD,
                       b"v2": KafkaError._INVALID_DIFFERENT_RECORD, b"v3": KafkaError.INVALID_RECORD,
                       b"v4": KafkaError._INVALID_DIFFERENT_RECORD}
    p.produce(topic_name, key=b"k", value=b"kept", partition=0, on_delivery=delivered)
    assert p.flush(TIMEOUT) == 0 and outcome[b"kept"] is None
    assert consume_all(broker, topic_name, 1) == [(0, b"k", b"kept")]
