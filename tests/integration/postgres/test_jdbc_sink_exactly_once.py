"""The JDBC sink's ``exactly.once=true`` in a real ``tomyum connect standalone`` worker, reading a
real broker and writing a real PostgreSQL: kill -9 of the worker, again and again mid-stream,
then a restart — every record is a row exactly once, with ``insert.mode=insert`` into a table
without a key (nothing there could hide a duplicate). The same worker runs the same sink
without the option beside it, to show what the option prevents: Kafka's offsets are committed
only every ``offset.flush.interval.ms``, so that one writes again what it wrote before a kill."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess
from tomyum.testing.postgres import PostgresServer

pytestmark = pytest.mark.timeout(240)
SCHEMA = {"type": "struct", "optional": False, "name": "number",
          "fields": [{"type": "int32", "optional": False, "field": "n"}]}


def sink(name: str, dsn: str, topic: str, table: str, **extra: str) -> dict[str, str]:
    return {"name": name, "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "tasks.max": "1",
            "connection.url": dsn, "topics": topic, "insert.mode": "insert", "pk.mode": "none",
            "auto.create": "true", "table.name.format": table, **extra}


def counts(dsn: str, table: str) -> tuple[int, int]:
    """(rows, distinct numbers) of ``table``; (0, 0) before it exists."""
    with psycopg.connect(dsn) as c:
        if c.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,):
            return 0, 0
        row = c.execute(f"SELECT count(*), count(DISTINCT n) FROM {table}").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.mark.slow
def test_kill_9_mid_stream_never_duplicates_or_loses_a_row_with_exactly_once(
        broker: BrokerProcess | ExternalBroker, tmp_path: Path, postgres: PostgresServer, topic_name: str) -> None:
    dsn = postgres.create_database("warehouse")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(30)
    total = 20_000
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20})
    for n in range(total):
        producer.produce(topic_name, key=str(n % 7), value=json.dumps({"schema": SCHEMA, "payload": {"n": n}}))
        if n % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    connectors = [sink("numbers-eos", dsn, topic_name, "numbers_eos", **{"exactly.once": "true"}),
                  sink("numbers-plain", dsn, topic_name, "numbers_plain")]
    # Kafka's offsets are committed once a minute: every kill finds them behind the table.
    # Static membership: a restarted worker takes its partitions back without waiting out a session.
    worker = {"offset.flush.interval.ms": "60000", "consumer.group.instance.id": "worker-1",
              "key.converter": "org.apache.kafka.connect.storage.StringConverter",
              "consumer.max.partition.fetch.bytes": "16384"}
    seen = 0
    for _ in range(3):
        with ConnectProcess(tmp_path / "w", broker.bootstrap, worker=worker, connectors=connectors) as w:
            target = seen + 2_000
            wait_until(lambda: min(counts(dsn, "numbers_eos")[0], counts(dsn, "numbers_plain")[0]) >= target,
                       timeout=60, interval=0.05, what=f"{target} rows\n{w.output()[-2000:]}")
            w.kill()  # kill -9, mid-stream
            seen = counts(dsn, "numbers_eos")[0]
        assert seen < total, "the stream ended before the kill: make it longer"
    with ConnectProcess(tmp_path / "w", broker.bootstrap, worker=worker, connectors=connectors) as w:
        wait_until(lambda: counts(dsn, "numbers_eos")[1] == total and counts(dsn, "numbers_plain")[1] == total,
                   timeout=90, interval=0.2, what=f"all {total} numbers\n{w.output()[-2000:]}")
    assert counts(dsn, "numbers_eos") == (total, total)  # each number once: none lost, none repeated
    plain_rows, plain_distinct = counts(dsn, "numbers_plain")
    assert plain_distinct == total and plain_rows > total  # at-least-once: the kills repeated rows
    with psycopg.connect(dsn) as c:
        stored = c.execute("SELECT topic, partition, next_offset FROM __tomyum_connect_offsets "
                           "WHERE connector = 'numbers-eos' ORDER BY partition").fetchall()
    assert sum(o for _, _, o in stored) == total and {t for t, _, _ in stored} == {topic_name}
