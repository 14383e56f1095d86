"""``max.task.idle.ms`` on a real broker: a stream-table join whose table record arrives on
its topic after the order it belongs to (but is older). With a task idle time the task waits
for the table side and joins the order; with ``-1`` it processes the order at once and
misses the rate."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.streams import Serdes, StreamsBuilder, StreamsConfig
from tomyum.streams.runtime import KafkaStreams, State
from tomyum.testing import BrokerProcess, wait_until

TIMEOUT = 60


def produce(p: Producer, topic: str, value: str, timestamp: int) -> None:
    p.produce(topic, key=b"eur", value=value.encode(), timestamp=timestamp)
    assert p.flush(TIMEOUT) == 0


@pytest.mark.parametrize("max_task_idle_ms", [3000, -1])
def test_a_join_waits_for_a_late_table_record(broker: BrokerProcess, topic_name: str, tmp_path: Path,
                                              max_task_idle_ms: int) -> None:
    orders, rates, priced = (f"{topic_name}-{t}" for t in ("orders", "rates", "priced"))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic(t, 1, 1) for t in (orders, rates, priced)]).values():
        f.result(TIMEOUT)
    S = Serdes.string()
    b = StreamsBuilder()
    (b.stream(orders, key_serde=S, value_serde=S)
        .join(b.table(rates, key_serde=S, value_serde=S), lambda order, rate: f"{order}@{rate}")
        .to(priced, value_serde=S))
    app = KafkaStreams(b.build(), StreamsConfig(application_id=f"idle-{topic_name}", state_dir=str(tmp_path),
                                                max_task_idle_ms=max_task_idle_ms),
                       bootstrap_servers=broker.bootstrap, commit_interval_ms=200)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    # a recent time: records older than the broker's log.retention.ms (7 days) may be deleted at
    # its next retention check (Apache Kafka deletes even the active segment's)
    base = int(time.time() * 1000) - 60_000
    app.start()
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"check-{time.monotonic_ns()}"})
    try:
        wait_until(lambda: app.state == State.RUNNING, TIMEOUT, what="the app to run")
        produce(p, orders, "o1", base + 20)
        # the app has consumed o1: buffered (waiting for the table side) or already processed
        wait_until(lambda: app._task_manager.partition_groups["0_0"].buffered == 1  # noqa: SLF001
                   or app._task_manager.positions.get((orders, 0)) == 1, TIMEOUT, what="o1 consumed")  # noqa: SLF001
        produce(p, rates, "1.10", base + 10)  # older than o1, but late on its topic
        produce(p, orders, "o2", base + 30)
        c.assign([TopicPartition(priced, 0, 0)])
        seen: list[str] = []

        def o2_joined() -> bool:
            seen.extend(m.value().decode() for m in c.consume(num_messages=10, timeout=0.2) if m.error() is None)
            return "o2@1.10" in seen

        wait_until(o2_joined, TIMEOUT, interval=0, what=f"o2 joined (seen {seen})")
        assert seen == (["o1@1.10", "o2@1.10"] if max_task_idle_ms > 0 else ["o2@1.10"])
    finally:
        c.close()
        assert app.close(TIMEOUT)
