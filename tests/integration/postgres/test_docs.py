"""docs/connect-postgres.md's connector configurations, run as written (only the PostgreSQL
address, user, the broker's and the topic names are the test's: a broker shared by the whole
suite, as ``make test-kafka``'s, keeps other tests' topics): CDC in five minutes, and the JDBC
source and sink examples."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess
from tomyum.testing.postgres import PostgresServer
from tests.integration.postgres.test_connect_postgres import Reader

pytestmark = pytest.mark.timeout(120)
DOC = Path(__file__).resolve().parents[3] / "docs" / "connect-postgres.md"


def blocks(pg: PostgresServer, topic_prefix: str) -> list[dict[str, str]]:
    """The doc's ``properties`` blocks, pointed at the test's PostgreSQL, their topic names
    starting with ``topic_prefix`` (``dbserver1.…`` → ``<topic_prefix>.…``, ``pg-…`` →
    ``<topic_prefix>-…``)."""
    text = DOC.read_text(encoding="utf-8")
    text = (text.replace("127.0.0.1:5432", f"127.0.0.1:{pg.port}").replace("database.port=5432", f"database.port={pg.port}")
            .replace("postgres@", "tomyum@").replace("database.user=postgres", "database.user=tomyum"))
    for name, ours in (("topic.prefix=dbserver1\n", f"topic.prefix={topic_prefix}\n"),
                       ("topic.prefix=pg-\n", f"topic.prefix={topic_prefix}-\n"),
                       ("topics=pg-events\n", f"topics={topic_prefix}-events\n"),
                       ("topic.prefix=pg-joined\n", f"topic.prefix={topic_prefix}-joined\n"),
                       ("topics=pg-joined\n", f"topics={topic_prefix}-joined\n")):
        assert name in text, f"{DOC} no longer says {name!r}: update this test"
        text = text.replace(name, ours)
    out = []
    for body in re.findall(r"```properties\n(.*?)```", text, re.S):
        out.append(dict(line.split("=", 1) for line in body.splitlines() if line and not line.startswith("#")))
    return out


def test_postgres_cdc_in_five_minutes(broker: BrokerProcess | ExternalBroker, tmp_path: Path,
                                      postgres: PostgresServer, topic_name: str) -> None:
    worker, cdc, *_jdbc = blocks(postgres, topic_name)
    dsn = postgres.create_database("inventory")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
        c.execute("CREATE TABLE ignored (id int PRIMARY KEY)")
    worker = {**worker, "bootstrap.servers": broker.bootstrap, "listeners": "http://127.0.0.1:0"}
    reader = Reader(broker.bootstrap, [f"{topic_name}.public.customers"])
    try:
        with ConnectProcess(tmp_path / "w", broker.bootstrap, worker=worker, connectors=[cdc]):
            wait_until(lambda: _slot(dsn), timeout=30, what="the replication slot")
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("INSERT INTO ignored VALUES (1)")
                c.execute("INSERT INTO customers VALUES (1, 'ann')")
                c.execute("UPDATE customers SET name = 'anne' WHERE id = 1")
                c.execute("DELETE FROM customers WHERE id = 1")
            got = reader.until(4)
    finally:
        reader.close()
    assert [(k, v and v["op"]) for _, k, v in got] == [({"id": 1}, "c"), ({"id": 1}, "u"), ({"id": 1}, "d"),
                                                       ({"id": 1}, None)]
    assert got[1][2]["after"] == {"id": 1, "name": "anne"}


def _slot(dsn: str) -> bool:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT 1 FROM pg_replication_slots").fetchone() is not None


def test_jdbc_source_and_sink_examples(broker: BrokerProcess | ExternalBroker, tmp_path: Path,
                                       postgres: PostgresServer, topic_name: str) -> None:
    """The table source and upserting sink, and beside them in the same worker the custom-query
    source and the exactly-once sink."""
    worker, _cdc, source, sink, query_source, exactly_once_sink = blocks(postgres, topic_name)
    app, warehouse = postgres.create_database("app"), postgres.create_database("warehouse")
    with psycopg.connect(app, autocommit=True) as c:
        c.execute("CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL)")
        c.execute("CREATE TABLE events (id serial PRIMARY KEY, ts timestamp NOT NULL DEFAULT clock_timestamp(), "
                  "payload text, user_id int)")
        c.execute("INSERT INTO users VALUES (1, 'ann')")
        c.execute("INSERT INTO events (payload, user_id) VALUES ('a', 1), ('b', NULL)")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})  # kept alive until the topics exist
    events, joined = f"{topic_name}-events", f"{topic_name}-joined"
    for future in admin.create_topics([NewTopic(events, 1, 1), NewTopic(joined, 1, 1)]).values():
        future.result(30)
    worker = {**worker, "bootstrap.servers": broker.bootstrap, "listeners": "http://127.0.0.1:0",
              "consumer.auto.offset.reset": "earliest"}
    with ConnectProcess(tmp_path / "w", broker.bootstrap, worker=worker,
                        connectors=[source, sink, query_source, exactly_once_sink]) as w:
        def copied(table: str, count: int) -> list[tuple[object, ...]] | None:
            with psycopg.connect(warehouse) as c:
                if c.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,):
                    return None
                rows = c.execute(f"SELECT id, payload FROM {table} ORDER BY id").fetchall()
            return rows if len(rows) == count else None
        assert wait_until(lambda: copied("events", 2), timeout=60, interval=0.2,
                          what=f"the copy\n{w.output()[-2000:]}") == [(1, "a"), (2, "b")]
        assert wait_until(lambda: copied("joined", 1), timeout=60, interval=0.2,
                          what=f"the query's copy\n{w.output()[-2000:]}") == [(1, "a")]
        with psycopg.connect(warehouse) as c:
            assert c.execute("SELECT name FROM joined").fetchall() == [("ann",)]
            assert c.execute("SELECT connector, topic, next_offset FROM __tomyum_connect_offsets").fetchall() == [
                ("joined-sink", joined, 1)]
