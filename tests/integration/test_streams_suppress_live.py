"""A suppression buffer through a SIGKILL on a real broker: an exactly-once count of words per
10-second window, suppressed until each window closes, is killed while every count is still
in the buffer (committed: the input offsets are past those records), and started again. The
buffer comes back from its changelog, so when the window closes each word's final count
comes out — once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.integration.test_streams_runtime import TIMEOUT, AppProcess
from tests.integration.test_streams_standby_live import create_topics
from tomyum.streams import Serdes
from tomyum.testing import BrokerProcess, wait_until

#: a process started, killed and started again (make test-slow)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

WORDS = ("apple", "banana", "cherry", "damson")
LINES = 40


class CommittedReader:
    """The committed records of a topic's two partitions, read on as they come."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{time.monotonic_ns()}",
                                  "isolation.level": "read_committed", "enable.auto.commit": False})
        self.consumer.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
        self.records: list[tuple[bytes, bytes | None]] = []

    def wait_for(self, count: int, what: str) -> list[tuple[bytes, bytes | None]]:
        def enough() -> bool:
            self.records += [(m.key(), m.value()) for m in self.consumer.consume(num_messages=1000, timeout=0.2)
                             if m.error() is None]
            return len(self.records) >= count

        wait_until(enough, TIMEOUT, interval=0, what=what)
        return self.records

    def close(self) -> None:
        self.consumer.close()


def test_suppressed_final_results_survive_a_kill_9_and_come_out_once(broker: BrokerProcess, topic_name: str,
                                                                     tmp_path: Path) -> None:
    text, out = f"{topic_name}-text", f"{topic_name}-final"
    create_topics(broker.bootstrap, text, out)
    app_id = f"final-{topic_name}"
    buffer_changelog = f"{app_id}-final-store-changelog"
    base = int(time.time() * 1000) // 10_000 * 10_000 - 60_000  # recent: retention keeps it
    producer = Producer({"bootstrap.servers": broker.bootstrap})

    def send(lines: int, timestamp: int, partitions: int = 2) -> None:
        for i in range(lines):
            producer.produce(text, value=" ".join(WORDS).encode(), partition=i % partitions, timestamp=timestamp + i)
        assert producer.flush(TIMEOUT) == 0

    def start() -> AppProcess:
        app = AppProcess(broker.bootstrap, text, out, app_id, str(tmp_path / "state"), "0", "exactly_once_v2",
                         "final")
        app.wait_running_with(4)
        return app

    app = start()
    buffered, results = CommittedReader(broker.bootstrap, buffer_changelog), CommittedReader(broker.bootstrap, out)
    try:
        send(LINES, base)  # window [base, base + 10 s): every word LINES times, nothing closed yet
        # every update is in the buffer's changelog, committed with its input offsets
        buffered.wait_for(LINES * len(WORDS), "the buffered counts committed")
        app.stop(kill=True)
        app = start()
        # one input partition from here on, so that no record comes after a later one closed its window
        send(2, base + 20_000, 1)  # closes the first window (each word reaches the task that holds it)
        send(2, base + 30_000, 1)  # closes the second
        counts = Serdes.long()
        got = results.wait_for(2 * len(WORDS), "both windows closed")
        assert sorted((k.decode(), counts.deserializer(v)) for k, v in got if v is not None) == sorted(
            [(f"{w}@{base}", LINES) for w in WORDS] + [(f"{w}@{base + 20_000}", 2) for w in WORDS])
    finally:
        buffered.close()
        results.close()
        assert app.stop() == 0, app.errors()
