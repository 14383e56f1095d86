"""Gained tasks restore while the running ones process, on a real broker
(``group_protocol="consumer"``): the changelogs hold a large history (written quickly with
confluent-kafka before the tasks move), instance b joins and restores the two tasks it gains
while a's kept tasks go on; then a leaves and b restores a's two tasks while the two it has
keep processing — the longest stop of the running tasks' output during a restore is far below
the restore's length (measured where the restoring instance runs tasks too: the second move),
and the counts are exact."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.conftest import BrokerWith
from tests.integration.test_streams_cooperative_live import HEARTBEAT, PARTITIONS, Feed, create_topics, longest_gap
from tests.integration.test_streams_runtime import TIMEOUT, latest_counts
from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig
from tomyum.streams.processor import StateRestoreListener
from tomyum.streams.runtime import CONSUMER, KafkaStreams, State
from tomyum.testing import wait_until

#: two instances, two restores of 2 x HISTORY records (make test-slow)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

HISTORY = 150_000
"""Changelog records per partition written before the tasks move (keys no input record has)."""


class Restores(StateRestoreListener):
    """When each changelog partition's restore started and ended (monotonic seconds)."""

    def __init__(self) -> None:
        self.started: dict[int, float] = {}
        self.ended: dict[int, tuple[float, int]] = {}

    def on_restore_start(self, topic_partition: Any, store_name: str, starting_offset: int,
                         ending_offset: int) -> None:
        self.started[topic_partition.partition] = time.monotonic()

    def on_restore_end(self, topic_partition: Any, store_name: str, total_restored: int) -> None:
        self.ended[topic_partition.partition] = (time.monotonic(), total_restored)

    def window(self, partitions: set[int]) -> tuple[float, float]:
        """From the first start to the last end of ``partitions``' restores."""
        return min(self.started[p] for p in partitions), max(self.ended[p][0] for p in partitions)


def app(bootstrap: str, text: str, counts: str, app_id: str, state_dir: Path, guarantee: str,
        seen: list[tuple[float, str]]) -> KafkaStreams:
    builder = StreamsBuilder()
    (builder.stream(text, key_serde=Serdes.string(), value_serde=Serdes.string())
        .peek(lambda key, value: seen.append((time.monotonic(), key)))
        .group_by_key()
        .count(Materialized(store_name="counts"))
        .to_stream()
        .to(counts, value_serde=Serdes.long()))
    return KafkaStreams(builder.build(), StreamsConfig(application_id=app_id, state_dir=str(state_dir)),
                        bootstrap_servers=bootstrap, processing_guarantee=guarantee, commit_interval_ms=200,
                        group_protocol=CONSUMER)


def write_history(bootstrap: str, changelog: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10_000,
                         "queue.buffering.max.messages": 4 * HISTORY + 1000})
    value = Serdes.long().serialize(1)
    for partition in range(PARTITIONS):
        for i in range(HISTORY):
            producer.produce(changelog, key=f"h{partition}-{i}".encode(), value=value, partition=partition)
        producer.poll(0)
    assert producer.flush(TIMEOUT) == 0


def partitions_of(tasks: dict[str, Any]) -> set[int]:
    return {int(t.split("_")[1]) for t in tasks}


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_running_tasks_keep_processing_while_gained_tasks_restore(broker_with: BrokerWith, topic_name: str,
                                                                   tmp_path: Path, guarantee: str) -> None:
    with broker_with(HEARTBEAT) as broker:
        text, counts, app_id = f"{topic_name}-text", f"{topic_name}-counts", f"restore-{topic_name}"
        create_topics(broker.bootstrap, text, counts)
        seen_a: list[tuple[float, str]] = []
        seen_b: list[tuple[float, str]] = []
        a = app(broker.bootstrap, text, counts, app_id, tmp_path / "a", guarantee, seen_a)
        b = app(broker.bootstrap, text, counts, app_id, tmp_path / "b", guarantee, seen_b)
        restores_b = Restores()
        b.set_global_state_restore_listener(restores_b)
        feed = None
        try:
            a.start()
            wait_until(lambda: a.state is State.RUNNING and len(a.tasks) == PARTITIONS, TIMEOUT,
                       what="a running all four tasks")
            feed = Feed(broker.bootstrap, text)
            wait_until(lambda: len(seen_a) > 100, TIMEOUT, what="a processing")
            written = time.monotonic()
            write_history(broker.bootstrap, f"{app_id}-counts-changelog")
            print(f"{PARTITIONS * HISTORY} changelog records written in {time.monotonic() - written:.2f} s")

            # b joins: it restores the two tasks it gains while a's kept tasks go on
            b.start()
            wait_until(lambda: len(b.tasks) == 2 and len(restores_b.ended) == 2, TIMEOUT,
                       what="b's two tasks restored")
            gained = partitions_of(b.tasks)
            start, end = restores_b.window(gained)
            kept_gap = longest_gap(seen_a, partitions_of(a.tasks), start, end)
            print(f"b restored {sum(restores_b.ended[p][1] for p in gained)} records in {end - start:.2f} s; "
                  f"a's kept tasks' longest gap {kept_gap:.3f} s")
            assert all(restores_b.ended[p][1] >= HISTORY for p in gained)
            # (a's gap here is mostly its own rebalance: librdkafka fetches the kept partitions
            # again ~0.5 s after the callbacks, see test_streams_cooperative_live; it is not
            # b's restore that a waits for)
            assert any(start <= t <= end and int(key[1:]) % PARTITIONS in partitions_of(a.tasks) for t, key in seen_a)

            # a leaves: b restores a's two tasks while its own two keep processing
            wait_until(lambda: len(seen_b) > 50, TIMEOUT, what="b processing")
            running = partitions_of(b.tasks)
            assert a.close(TIMEOUT)
            wait_until(lambda: len(restores_b.ended) == PARTITIONS, TIMEOUT, what="b restoring a's tasks")
            taken = set(range(PARTITIONS)) - running
            start, end = restores_b.window(taken)
            gap = longest_gap(seen_b, running, start, end)
            print(f"b restored {sum(restores_b.ended[p][1] for p in taken)} records in {end - start:.2f} s "
                  f"while its running tasks' longest gap was {gap:.3f} s")
            assert all(restores_b.ended[p][1] >= HISTORY for p in taken)
            assert gap < (end - start) / 3
            assert any(start <= t <= end and int(key[1:]) % PARTITIONS in running for t, key in seen_b)

            expected = feed.stop()
            feed = None
            isolation = "read_committed" if guarantee == "exactly_once_v2" else "read_uncommitted"
            assert latest_counts(broker.bootstrap, counts, isolation, dict(expected)) == dict(expected)
        finally:
            if feed is not None:
                feed.stop()
            assert a.close(TIMEOUT) and b.close(TIMEOUT)
