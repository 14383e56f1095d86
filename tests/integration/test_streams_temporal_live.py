"""A versioned table and a temporal stream-table join on a real broker: the table's
topic carries an out-of-order update; the running application answers as-of queries, joins
each order with the rate valid at the order's time, and an instance started on an empty
state directory restores every version from the changelog (compacted, with Kafka's
``min.compaction.lag.ms`` for versioned stores)."""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig
from tomyum.streams.runtime import KafkaStreams, State
from tomyum.streams.state import VersionedRecord
from tomyum.testing import BrokerProcess, wait_until

TIMEOUT = 60
HISTORY_MS = 3_600_000


def produce(bootstrap: str, topic: str, *records: tuple[str, str, int]) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for key, value, timestamp in records:
        p.produce(topic, key=key.encode(), value=value.encode(), timestamp=timestamp)
    assert p.flush(TIMEOUT) == 0


def read_values(bootstrap: str, topic: str, count: int) -> list[str]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{time.monotonic_ns()}"})
    values: list[str] = []
    try:
        c.assign([TopicPartition(topic, 0, 0)])

        def enough() -> bool:
            values.extend(m.value().decode() for m in c.consume(num_messages=100, timeout=0.2) if m.error() is None)
            return len(values) >= count

        wait_until(enough, TIMEOUT, interval=0, what=f"{count} records on {topic} (seen {values})")
        return values
    finally:
        c.close()


def start(bootstrap: str, rates: str, orders: str, priced: str, app_id: str, state_dir: Path) -> KafkaStreams:
    S = Serdes.string()
    b = StreamsBuilder()
    table = b.table(rates, key_serde=S, value_serde=S,
                    materialized=Materialized(store_name="rates", history_retention_ms=HISTORY_MS))
    (b.stream(orders, key_serde=S, value_serde=S)
        .left_join(table, lambda order, rate: f"{order}@{rate}")
        .to(priced, value_serde=S))
    app = KafkaStreams(b.build(), StreamsConfig(application_id=app_id, state_dir=str(state_dir)),
                       bootstrap_servers=bootstrap, commit_interval_ms=200)
    app.start()
    return app


def test_temporal_join_and_as_of_queries_survive_a_restore(broker: BrokerProcess, topic_name: str,
                                                           tmp_path: Path) -> None:
    rates, orders, priced = (f"{topic_name}-{t}" for t in ("rates", "orders", "priced"))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic(t, 1, 1) for t in (rates, orders, priced)]).values():
        f.result(TIMEOUT)
    # a recent time: records older than the broker's log.retention.ms (7 days) may be deleted at
    # its next retention check (Apache Kafka deletes even the active segment's)
    base = int(time.time() * 1000) - 60_000
    produce(broker.bootstrap, rates, ("eur", "1.10", base + 10), ("eur", "1.30", base + 30), ("eur", "1.20", base + 20))
    app_id = f"temporal-{topic_name}"
    app = start(broker.bootstrap, rates, orders, priced, app_id, tmp_path / "a")
    try:
        wait_until(lambda: app.state == State.RUNNING, TIMEOUT, what="the app to run")
        wait_until(lambda: app.query("rates", lambda s: s.get("eur", base + 22)) == VersionedRecord(
            "1.20", base + 20, base + 30), TIMEOUT, what="the out-of-order version in the table's history")
        assert app.query("rates", lambda s: s.get("eur")) == VersionedRecord("1.30", base + 30, None)
        produce(broker.bootstrap, orders, *[("eur", f"o{t}", base + t) for t in (5, 15, 25, 35)])
        assert read_values(broker.bootstrap, priced, 4) == ["o5@None", "o15@1.10", "o25@1.20", "o35@1.30"]
    finally:
        assert app.close(TIMEOUT)
    changelog = ConfigResource("topic", f"{app_id}-rates-changelog")
    config = admin.describe_configs([changelog])[changelog].result(TIMEOUT)
    assert config["cleanup.policy"].value == "compact"
    assert config["min.compaction.lag.ms"].value == str(HISTORY_MS + 86_400_000)
    restored = start(broker.bootstrap, rates, orders, priced, app_id, tmp_path / "b")  # nothing on disk
    try:
        wait_until(lambda: restored.state == State.RUNNING, TIMEOUT, what="the restored app to run")
        assert [restored.query("rates", lambda s, t=t: s.get("eur", base + t)) for t in (5, 15, 25, 35)] == [
            None, VersionedRecord("1.10", base + 10, base + 20), VersionedRecord("1.20", base + 20, base + 30),
            VersionedRecord("1.30", base + 30, None)]
    finally:
        assert restored.close(TIMEOUT)
