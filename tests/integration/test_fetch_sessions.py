"""Incremental fetch sessions (KIP-227) with a client that uses them: kafka-python's consumer
opens a session with its first fetch and then sends only what changed. Every record of every
partition must still arrive once and in order, wave after wave, whichever partitions a wave
writes to. Against tomyum, its metrics show the session it held."""

from __future__ import annotations

import os
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.testing import BrokerProcess, ExternalBroker

TIMEOUT = 30.0
PARTITIONS = 4
#: which partitions each wave writes to: all, some, one, none of the first ones
WAVES = [(0, 1, 2, 3), (2,), (1, 3), (0,), (3, 0, 2)]
METRICS = re.compile(r"metrics on (http://[\d.]+:\d+/metrics)")


def consume_waves(bootstrap: str, topic: str) -> None:
    from kafka import KafkaConsumer, TopicPartition

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(TIMEOUT)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_incremental_fetch_sessions=True,
                             fetch_max_wait_ms=100, auto_offset_reset="earliest", enable_auto_commit=False,
                             request_timeout_ms=int(TIMEOUT * 1000))
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        expected: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        received: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        for wave, partitions in enumerate(WAVES):
            for p in partitions:
                for i in range(3):
                    value = f"w{wave}-p{p}-{i}".encode()
                    producer.produce(topic, value=value, partition=p)
                    expected[p].append(value)
            assert producer.flush(TIMEOUT) == 0
            deadline = time.monotonic() + TIMEOUT
            while received != expected:
                assert time.monotonic() < deadline, f"wave {wave}: received {received}, expected {expected}"
                for tp, records in consumer.poll(timeout_ms=200).items():
                    received[tp.partition] += [r.value for r in records]
                assert all(received[p] == expected[p][:len(received[p])] for p in received), received
    finally:
        consumer.close()


def test_a_consumer_in_a_fetch_session_gets_every_record_once_and_in_order(
        broker: BrokerProcess | ExternalBroker, topic_name: str) -> None:
    consume_waves(broker.bootstrap, topic_name)


@pytest.mark.skipif(bool(os.environ.get("TOMYUM_TEST_BOOTSTRAP")), reason="reads a tomyum broker's metrics")
def test_the_broker_held_the_consumers_session(tmp_path: Path, topic_name: str) -> None:
    with BrokerProcess(tmp_path / "data", settings={"metrics.listener": "127.0.0.1:0"}) as broker:
        consume_waves(broker.bootstrap, topic_name)
        found = METRICS.search(broker.output())
        assert found, broker.output()
        with urllib.request.urlopen(found[1], timeout=10) as response:
            text = response.read().decode()
        samples: dict[str, Any] = dict(re.findall(r"^(tomyum_fetch_session\w*) (\S+)$", text, re.M))
        # the consumer's session, with its four partitions, outlives the consumer (as in Kafka)
        assert float(samples["tomyum_fetch_sessions"]) >= 1, samples
        assert float(samples["tomyum_fetch_session_partitions"]) >= PARTITIONS, samples
