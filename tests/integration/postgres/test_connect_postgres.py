"""The PostgreSQL connectors in a real ``tomyum connect standalone`` worker, producing to and
consuming from a real tomyum broker, against a real PostgreSQL: Debezium-envelope records on
the topics (JsonConverter, schemas on), no change lost across a kill -9 of the worker, and the
JDBC source → broker → JDBC sink path upserting into a second database."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.connect.converters import decimal_to_bytes
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess
from tomyum.testing.postgres import PostgresServer

pytestmark = pytest.mark.timeout(180)


def cdc_connector(pg: PostgresServer, prefix: str, **extra: str) -> dict[str, str]:
    return {"name": "inventory-cdc", "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "tasks.max": "1", "database.hostname": "127.0.0.1", "database.port": str(pg.port),
            "database.user": "tomyum", "database.dbname": "inventory", "topic.prefix": prefix,
            "plugin.name": "pgoutput", **extra}


class Reader:
    """One consumer over ``topics`` from the start; ``until(n)`` collects n JSON records."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                  "topic.metadata.refresh.interval.ms": 500})
        self.consumer.subscribe(topics)
        self.got: list[tuple[str, Any, Any]] = []
        self.seen: set[tuple[str, int, int]] = set()  # a rebalance (a new topic) re-reads from the start

    def until(self, count: int, timeout: float = 60,
              measure: Callable[[list[tuple[str, Any, Any]]], int] = len) -> list[tuple[str, Any, Any]]:
        """The records so far, once ``measure`` of them (by default their number) is ``count``."""
        def enough() -> bool:
            for m in self.consumer.consume(500, 0.3):
                if m.error() is None and (m.topic(), m.partition(), m.offset()) not in self.seen:
                    self.seen.add((m.topic(), m.partition(), m.offset()))
                    key = json.loads(m.key()) if m.key() else None
                    value = json.loads(m.value()) if m.value() is not None else None
                    self.got.append((m.topic(), key and key["payload"], value and value["payload"]))
            return measure(self.got) >= count
        wait_until(enough, timeout=timeout, interval=0, what=f"{count} records (have {measure(self.got)})")
        return self.got

    def close(self) -> None:
        self.consumer.close()


def summary(record: tuple[str, Any, Any]) -> tuple[Any, ...]:
    topic, key, value = record
    if value is None:
        return (topic, key, None)
    return (topic, key, value["op"], value["before"], value["after"])


def money(amount: str) -> str:
    return base64.b64encode(decimal_to_bytes(Decimal(amount), 2)).decode()


def test_cdc_through_the_worker_gives_debezium_records(broker: BrokerProcess | ExternalBroker, tmp_path: Path,
                                                      postgres: PostgresServer, topic_name: str) -> None:
    # the topics are the test's own (Debezium's topic.prefix): a shared broker keeps other tests' records
    C, O = f"{topic_name}.public.customers", f"{topic_name}.public.orders"
    dsn = postgres.create_database("inventory")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)")
        c.execute("CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2))")
        c.execute("INSERT INTO customers VALUES (1, 'ann')")
    reader = Reader(broker.bootstrap, [C, O])
    with ConnectProcess(tmp_path / "worker", broker.bootstrap, connectors=[cdc_connector(postgres, topic_name)]) as worker:
        try:
            assert summary(reader.until(1)[0]) == (C, {"id": 1}, "r", None, {"id": 1, "name": "ann"})
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("INSERT INTO customers VALUES (2, 'bob')")
                c.execute("UPDATE customers SET name = 'bobby' WHERE id = 2")
                c.execute("DELETE FROM customers WHERE id = 1")
                with c.transaction():
                    c.execute("INSERT INTO orders VALUES (10, 2, 9.50)")
                    c.execute("UPDATE customers SET name = 'rob' WHERE id = 2")
                c.execute("ALTER TABLE customers ADD COLUMN email text")
                c.execute("INSERT INTO customers VALUES (3, 'cy', 'cy@x')")
            got = [summary(r) for r in reader.until(8)]
        finally:
            reader.close()
        # order is kept per topic (each table's topic has one partition), not across topics
        assert [r for r in got if r[0] == C] == [
            (C, {"id": 1}, "r", None, {"id": 1, "name": "ann"}),
            (C, {"id": 2}, "c", None, {"id": 2, "name": "bob"}),
            (C, {"id": 2}, "u", None, {"id": 2, "name": "bobby"}),
            (C, {"id": 1}, "d", {"id": 1, "name": ""}, None),
            (C, {"id": 1}, None),
            (C, {"id": 2}, "u", None, {"id": 2, "name": "rob"}),
            (C, {"id": 3}, "c", None, {"id": 3, "name": "cy", "email": "cy@x"}),
        ], worker.output()[-3000:]
        assert [r for r in got if r[0] == O] == [
            (O, {"id": 10}, "c", None, {"id": 10, "customer_id": 2, "amount": money("9.50")})]


def test_kill_9_of_the_worker_mid_stream_loses_no_change(broker: BrokerProcess | ExternalBroker, tmp_path: Path,
                                                        postgres: PostgresServer, topic_name: str) -> None:
    dsn = postgres.create_database("inventory")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)")
    total = 600
    stop = threading.Event()

    def write() -> None:
        with psycopg.connect(dsn, autocommit=True) as c:
            for i in range(total):
                if stop.is_set():
                    return
                c.execute("INSERT INTO customers VALUES (%s, %s)", (i, f"n{i}"))

    connector = cdc_connector(postgres, topic_name, **{"snapshot.mode": "never"})
    workdir = tmp_path / "worker"
    reader = Reader(broker.bootstrap, [f"{topic_name}.public.customers"])
    writer = threading.Thread(target=write)
    try:
        with ConnectProcess(workdir, broker.bootstrap, connectors=[connector]) as worker:
            wait_until(lambda: postgres_slot_exists(dsn), timeout=30, what="the replication slot")
            writer.start()
            reader.until(100)
            assert worker.process is not None
            worker.process.kill()  # kill -9, mid-stream: the writer goes on
            worker.process.wait(10)
        writer.join(60)
        with ConnectProcess(workdir, broker.bootstrap, connectors=[connector]):
            # at-least-once: changes after the last stored offset come again, so wait for every id
            got = reader.until(total, timeout=90, measure=lambda got: len({r[1]["id"] for r in got}))
            ids = [r[1]["id"] for r in got]
            assert set(ids) == set(range(total))
            # at-least-once: a repeat is only a change re-sent after the last stored offset
            assert len(ids) - total < total
    finally:
        stop.set()
        if writer.is_alive():
            writer.join(30)
        reader.close()


def postgres_slot_exists(dsn: str) -> bool:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'debezium'").fetchone() is not None


def test_jdbc_source_to_jdbc_sink_through_the_broker(broker: BrokerProcess | ExternalBroker, tmp_path: Path,
                                                     postgres: PostgresServer, topic_name: str) -> None:
    src = postgres.create_database("app")
    dst = postgres.create_database("warehouse")
    with psycopg.connect(src, autocommit=True) as c:
        c.execute("CREATE TABLE events (id bigserial PRIMARY KEY, ts timestamp NOT NULL DEFAULT clock_timestamp(), "
                  "payload text)")
        c.execute("INSERT INTO events (payload) VALUES ('a'), ('b')")
    source = {"name": "jdbc-src", "connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector",
              "connection.url": src, "table.whitelist": "events", "topic.prefix": f"{topic_name}-", "tasks.max": "1",
              "mode": "timestamp+incrementing", "timestamp.column.name": "ts", "incrementing.column.name": "id",
              "poll.interval.ms": "200"}
    sink = {"name": "jdbc-sink", "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "connection.url": dst, "topics": f"{topic_name}-events", "tasks.max": "1", "insert.mode": "upsert",
            "pk.mode": "record_value", "pk.fields": "id", "auto.create": "true", "table.name.format": "events"}
    # the sink's consumer would not see a topic created after it subscribed until its next
    # metadata refresh: create it first
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(f"{topic_name}-events", 1, 1)])[f"{topic_name}-events"].result(30)
    late = psycopg.connect(src)
    try:
        with ConnectProcess(tmp_path / "worker", broker.bootstrap, connectors=[source, sink],
                            worker={"consumer.auto.offset.reset": "earliest"}) as worker:
            late.execute("INSERT INTO events (payload) VALUES ('late')")  # id 3, committed after id 4
            with psycopg.connect(src, autocommit=True) as c:
                c.execute("INSERT INTO events (payload) VALUES ('quick')")
                c.execute("UPDATE events SET payload = 'B', ts = clock_timestamp() WHERE id = 2")
            late.commit()

            def copied() -> list[tuple[Any, ...]] | None:
                with psycopg.connect(dst) as c:
                    exists = c.execute("SELECT to_regclass('events')").fetchone()
                    if exists is None or exists[0] is None:
                        return None
                    rows = c.execute("SELECT id, payload FROM events ORDER BY id").fetchall()
                return rows if len(rows) == 4 and rows[1][1] == "B" else None
            rows = wait_until(copied, timeout=60, interval=0.2, what=f"the copy\n{worker.output()[-2000:]}")
        assert rows == [(1, "a"), (2, "B"), (3, "late"), (4, "quick")]
    finally:
        late.close()
