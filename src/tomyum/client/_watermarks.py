"""A partition's watermarks asked of the broker again while it has not taken the partition up."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

#: what a broker answers for a partition it has not taken up yet (a topic just created, on Kafka
#: whose brokers learn of it from the metadata log a moment after the controller answers)
NOT_YET_LED = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                         KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION})


def watermark_offsets(consumer: Any, tp: TopicPartition, timeout: float = 30.0) -> tuple[int, int]:
    """``tp``'s (low, high) watermarks from the broker, asked again while it is not led yet, as
    Kafka's clients retry retriable errors; anything else, or the timeout, raises."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=max(deadline - time.monotonic(), 0.1), cached=False)
            return int(low), int(high)
        except KafkaException as e:
            if e.args[0].code() not in NOT_YET_LED or time.monotonic() > deadline:
                raise
        time.sleep(0.1)  # a backoff between two requests, as librdkafka's retry.backoff.ms
