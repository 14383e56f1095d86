"""The record cache on a real broker: a word count over a skewed input, run with the cache
off and on (``statestore.cache.max.bytes``): the committed counts are the same, and the
changelog (and the output topic) get far fewer writes with the cache."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.test_streams_runtime import word_count
from tomyum.streams import Serdes, StreamsConfig
from tomyum.streams.runtime import KafkaStreams, State
from tomyum.testing import BrokerProcess, wait_until

TIMEOUT = 60


def read_topic(bootstrap: str, topic: str) -> list[tuple[str, bytes]]:
    """Every record (key, value) of partition 0, up to its end."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{time.monotonic_ns()}"})
    try:
        end = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT)[1]
        c.assign([TopicPartition(topic, 0, 0)])
        records: list[tuple[str, bytes]] = []

        def done() -> bool:
            for m in c.consume(num_messages=1000, timeout=0.2):
                if m.error() is None:
                    records.append((m.key().decode(), m.value()))
            return len(records) >= end

        wait_until(done, TIMEOUT, interval=0, what=f"{end} records of {topic}")
        return records
    finally:
        c.close()


def run(bootstrap: str, text: str, app_id: str, state_dir: Path, cache_bytes: int, want: Counter[str]) -> dict[str, int]:
    """Run the word count until its output holds ``want``; returns the changelog's and the
    output's record counts."""
    counts = f"{app_id}-out"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(counts, 1, 1)])[counts].result(TIMEOUT)
    app = KafkaStreams(word_count(text, counts).build(),
                       StreamsConfig(application_id=app_id, state_dir=str(state_dir),
                                     statestore_cache_max_bytes=cache_bytes),
                       bootstrap_servers=bootstrap, commit_interval_ms=1000)
    app.start()
    try:
        wait_until(lambda: app.state == State.RUNNING, TIMEOUT, what="the app to run")
        wait_until(lambda: app.query("counts", lambda s: dict(s.all())) == dict(want), TIMEOUT,
                   what=f"{app_id}: every word counted")
    finally:
        assert app.close(TIMEOUT)  # a clean close commits (and so flushes the cache)
    out = read_topic(bootstrap, counts)
    assert {word: Serdes.long().deserialize(value) for word, value in out} == dict(want)  # the last committed update of every word is its count
    return {"changelog": len(read_topic(bootstrap, f"{app_id}-counts-changelog")), "output": len(out)}


@pytest.mark.slow
def test_the_cache_cuts_changelog_writes_and_keeps_the_results(broker: BrokerProcess, topic_name: str,
                                                              tmp_path: Path) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
    rng = random.Random(7)
    words = [f"w{i}" for i in range(50)]
    weights = [1 / (i + 1) ** 1.5 for i in range(50)]
    want: Counter[str] = Counter()
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for _ in range(1000):
        line = rng.choices(words, weights, k=5)
        want.update(line)
        p.produce(topic_name, value=" ".join(line).encode())
    assert p.flush(TIMEOUT) == 0
    off = run(broker.bootstrap, topic_name, f"nocache-{topic_name}", tmp_path / "off", 0, want)
    on = run(broker.bootstrap, topic_name, f"cache-{topic_name}", tmp_path / "on", 10 * 1024 * 1024, want)
    assert off == {"changelog": 5000, "output": 5000}  # every update
    assert on["changelog"] < off["changelog"] / 10 and on["output"] == on["changelog"]
