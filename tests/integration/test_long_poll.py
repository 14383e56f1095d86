"""A parked fetch is answered when data arrives, not when max_wait_ms runs out."""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.testing import BrokerProcess

MAX_WAIT_MS = 30_000  # the fetch would park this long if nothing woke it


def test_parked_fetch_wakes_on_append(broker: BrokerProcess, topic_name: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(20)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "lp", "enable.auto.commit": False,
                         "fetch.wait.max.ms": MAX_WAIT_MS, "fetch.min.bytes": 1,
                         "socket.timeout.ms": MAX_WAIT_MS + 10_000})
    consumer.assign([TopicPartition(topic_name, 0, 0)])
    assert consumer.poll(1.0) is None  # the consumer is now parked in a long fetch

    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 0})
    sent_at: list[float] = []

    def send() -> None:
        sent_at.append(time.monotonic())
        producer.produce(topic_name, value=b"wake up", partition=0)
        producer.flush(20)

    threading.Thread(target=send).start()
    msg = consumer.poll(MAX_WAIT_MS / 1000 / 2)
    received_at = time.monotonic()
    consumer.close()
    assert msg is not None and msg.error() is None and msg.value() == b"wake up"
    # answered by the append: well before the fetch's max wait could have expired
    assert received_at - sent_at[0] < MAX_WAIT_MS / 1000 / 2


def test_a_stopping_broker_answers_parked_fetches_at_once(own_broker: BrokerProcess, topic_name: str) -> None:
    """Stopping does not wait for parked fetches to run out their max wait (Kafka drops its
    fetch purgatory at shutdown): a fetch woken because the broker stops answers with what it
    has instead of parking again. Found with franz-go, whose fetches park 5 s."""
    admin = AdminClient({"bootstrap.servers": own_broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(20)
    consumer = Consumer({"bootstrap.servers": own_broker.bootstrap, "group.id": "lp", "enable.auto.commit": False,
                         "fetch.wait.max.ms": MAX_WAIT_MS, "fetch.min.bytes": 1,
                         "socket.timeout.ms": MAX_WAIT_MS + 10_000})
    try:
        consumer.assign([TopicPartition(topic_name, 0, 0)])
        assert consumer.poll(1.0) is None  # the consumer is now parked in a long fetch
        started = time.monotonic()
        assert own_broker.stop() == 0
        assert time.monotonic() - started < 5, "the broker waited for the parked fetch's max wait"
    finally:
        consumer.close()
