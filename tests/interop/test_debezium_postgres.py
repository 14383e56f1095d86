"""Debezium's own PostgreSQL connector, in Apache Kafka Connect's worker (connect-runtime 4.1,
the newest Debezium 3.6 runs on;
both fetched from Maven Central on first use), as the oracle of tomyum connect's CDC: the same
scripted workload on the same PostgreSQL and the same tomyum broker must give the same records
— topic, key, op, before, after, tombstones; timestamps, LSNs and `source` left out. Needs java
and mvn."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from tests.integration.postgres.test_connect_postgres import Reader, summary
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess, write_properties
from tomyum.testing.kafka_peer import fetch_jars
from tomyum.testing.postgres import PostgresServer

pytestmark = pytest.mark.timeout(600)
POM = Path(__file__).resolve().parent / "debezium" / "pom.xml"

SETUP = [
    "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email varchar(80), born date, "
    "seen timestamp, score numeric(10,2), tags text[], doc jsonb, u uuid, flag boolean, raw bytea)",
    "CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2))",
    "ALTER TABLE orders REPLICA IDENTITY FULL",
    "INSERT INTO customers VALUES (1, 'ann', 'ann@x', '1990-05-06', '2020-01-02 03:04:05.123456', 1.50, "
    "'{a,b}', '{\"k\": 1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true, '\\x0102')",
    "INSERT INTO orders VALUES (10, 1, 9.50)",
]
WORKLOAD = [
    "INSERT INTO customers (id, name) VALUES (2, 'bob')",
    "UPDATE customers SET email = 'bob@x' WHERE id = 2",
    "UPDATE orders SET amount = 10 WHERE id = 10",
    "DELETE FROM customers WHERE id = 1",
    "BEGIN; INSERT INTO orders VALUES (11, 2, 1.25); UPDATE customers SET name = 'rob' WHERE id = 2; COMMIT",
    "ALTER TABLE customers ADD COLUMN vip boolean NOT NULL DEFAULT false",
    "INSERT INTO customers (id, name, vip) VALUES (3, 'cy', true)",
    "DELETE FROM orders WHERE id = 11",
]
EXPECTED = 2 + 10  # snapshot reads, then the workload's records (tombstones included)
TOPICS = ["dbserver1.public.customers", "dbserver1.public.orders"]


def connector(pg: PostgresServer) -> dict[str, str]:
    return {"name": "inventory-cdc", "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "tasks.max": "1", "database.hostname": "127.0.0.1", "database.port": str(pg.port),
            "database.user": "tomyum", "database.password": "unused", "database.dbname": "inventory",
            "topic.prefix": "dbserver1", "plugin.name": "pgoutput"}


@contextmanager
def kafka_worker(workdir: Path, bootstrap: str, config: dict[str, str]) -> Iterator[Path]:
    """Apache Kafka Connect's standalone worker with Debezium on its class path."""
    java = shutil.which("java")
    if java is None or shutil.which("mvn") is None:
        pytest.fail("java and mvn are needed for the Debezium oracle test")
    libs = fetch_jars(pom=POM, timeout=900)
    workdir.mkdir(parents=True)
    worker = write_properties(workdir / "worker.properties", {
        "bootstrap.servers": bootstrap, "listeners": "http://127.0.0.1:0",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "offset.storage.file.filename": str(workdir / "connect.offsets"), "offset.flush.interval.ms": "1000"})
    conn = write_properties(workdir / "connector.properties", config)
    log = workdir / "connect.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([java, "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info", "-cp",
                                    f"{libs}/*", "org.apache.kafka.connect.cli.ConnectStandalone", str(worker),
                                    str(conn)], stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        yield log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def run(pg: PostgresServer, bootstrap: str, start: Any, log: Path) -> list[tuple[Any, ...]]:
    try:
        return _run(pg, bootstrap, start)
    except TimeoutError as e:
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        raise TimeoutError(f"{e}; the worker's log ends:\n{tail}") from None


def _run(pg: PostgresServer, bootstrap: str, start: Any) -> list[tuple[Any, ...]]:
    dsn = pg.create_database("inventory")
    with psycopg.connect(dsn, autocommit=True) as c:
        for statement in SETUP:
            c.execute(statement)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    with start():
        # subscribe once the snapshot has made both topics (a consumer subscribed to a missing
        # topic may not notice it being created)
        wait_until(lambda: set(TOPICS) <= set(admin.list_topics(timeout=10).topics), timeout=180,
                   interval=0.5, what="the snapshot's topics")
        reader = Reader(bootstrap, TOPICS)
        try:
            reader.until(2, timeout=60)
            with psycopg.connect(dsn, autocommit=True) as c:
                for statement in WORKLOAD:
                    c.execute(statement)
            got = reader.until(EXPECTED, timeout=120)
        finally:
            reader.close()
    by_topic = sorted(range(len(got)), key=lambda i: (got[i][0], i))  # order is per topic
    return [summary(got[i]) for i in by_topic]


def test_tomyum_cdc_records_equal_debeziums(broker_with: Any, tmp_path: Path) -> None:
    results = []
    for name in ("debezium", "tomyum"):
        with PostgresServer() as pg, broker_with({}) as broker:
            assert isinstance(broker, (BrokerProcess, ExternalBroker))
            config = connector(pg)
            if name == "debezium":
                def start() -> Any:
                    return kafka_worker(tmp_path / name, broker.bootstrap, config)
            else:
                def start() -> Any:
                    return ConnectProcess(tmp_path / name, broker.bootstrap, connectors=[config])
            log = tmp_path / name / ("connect.log")
            results.append(run(pg, broker.bootstrap, start, log))
        shutil.rmtree(tmp_path / "data", ignore_errors=True)
    debezium, tomyum = results
    assert len(debezium) == EXPECTED
    assert tomyum == debezium
