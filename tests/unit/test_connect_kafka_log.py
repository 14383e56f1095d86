"""A distributed worker's internal topics, just created, on a broker that has not taken them up
yet: Kafka's brokers learn of a new topic from the metadata log a moment after CreateTopics is
answered, and answer NOT_LEADER_FOR_PARTITION or leave the topic out of Metadata meanwhile."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from tomyum.connect.connector import ConnectError
from tomyum.connect.kafka_log import KafkaBasedLog, _Clients


@dataclass
class Topic:
    partitions: dict[int, object]
    error: KafkaError | None = None


@dataclass
class Metadata:
    topics: dict[str, Topic]


@dataclass
class Broker:
    """Answers Metadata without the topic, then with an error, then with its partitions; and
    watermarks with NOT_LEADER_FOR_PARTITION for ``misses`` requests, then (0, 5)."""

    misses: int = 2
    answers: list[Metadata] = field(default_factory=lambda: [
        Metadata({}), Metadata({"configs": Topic({}, KafkaError(KafkaError.LEADER_NOT_AVAILABLE))}),
        Metadata({"configs": Topic({0: object(), 1: object()})})])
    asked: int = 0

    def list_topics(self, topic: str, timeout: float) -> Metadata:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float, cached: bool) -> tuple[int, int]:
        self.asked += 1
        if self.asked <= self.misses:
            raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
        return (0, 5)


def log_on(broker: Any) -> KafkaBasedLog:
    log = KafkaBasedLog("configs", {}, lambda *_: None)
    log._clients = _Clients(reader=broker, offsets=broker, producer=broker)
    return log


def test_the_partitions_are_asked_again_until_the_broker_lists_the_new_topic() -> None:
    assert log_on(Broker())._partitions_of_topic(timeout_s=10) == [0, 1]


def test_a_topic_that_never_shows_up_fails_with_the_brokers_reason() -> None:
    broker = Broker(answers=[Metadata({"configs": Topic({}, KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))})])
    with pytest.raises(ConnectError, match="'configs' is not available: .*[Aa]uthoriz"):
        log_on(broker)._partitions_of_topic(timeout_s=0.3)


def test_end_offsets_are_asked_again_while_the_partition_is_not_led_yet() -> None:
    broker = Broker(misses=2)
    log = log_on(broker)
    log._partitions = [0, 1]
    assert log.end_offsets(timeout_s=10) == {0: 5, 1: 5}
    assert broker.asked == 4
