"""PostgreSQL CDC with exactly-once source (KIP-618): a distributed ``tomyum connect`` worker
with ``exactly.once.source.support=enabled``, killed with SIGKILL three times while numbered
inserts (and a few updates and deletes) stream from a real PostgreSQL, and restarted each time.
A ``read_committed`` consumer sees the snapshot and then every change exactly once, in commit
order, and the changes folded by key give the table's final state: the restarted task resumes
right after the last change whose transaction committed in Kafka, and what PostgreSQL re-sends
from the slot at or before that point is skipped. At each kill the slot's confirmed flush LSN
is at most the LSN of the last offset committed in Kafka.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from tests.integration.postgres.test_connect_postgres import cdc_connector
from tomyum.connect.postgres.pgoutput import parse_lsn
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess
from tomyum.testing.postgres import PostgresServer

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

SNAPSHOT = 40  # rows there before the connector starts: op=r
PHASE = 150  # numbered inserts per phase; the worker is killed during each of the first three
PHASES = 4

Change = tuple[str | None, int, Any]  # (op, id, after); op None for a tombstone


def phase_ops(phase: int) -> list[tuple[str, int]]:
    """The statements of a phase, in order: ("c"|"u"|"d", id)."""
    ops: list[tuple[str, int]] = []
    for i in range(SNAPSHOT + phase * PHASE, SNAPSHOT + (phase + 1) * PHASE):
        ops.append(("c", i))
        if i % 40 == 0:
            ops.append(("u", i - 5))
        if i % 60 == 0:
            ops.append(("d", i - 30))
    return ops


def run(conn: psycopg.Connection[Any], op: str, i: int) -> None:
    if op == "c":
        conn.execute("INSERT INTO customers VALUES (%s, %s)", (i, f"n{i}"))
    elif op == "u":
        conn.execute("UPDATE customers SET name = %s WHERE id = %s", (f"u{i}", i))
    else:
        conn.execute("DELETE FROM customers WHERE id = %s", (i,))


def paced(dsn: str, ops: list[tuple[str, int]]) -> None:
    """The statements, one every 10 ms or so, each its own transaction: the worker is then
    mid-stream whenever it is killed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for op, i in ops:
            run(conn, op, i)
            time.sleep(0.01)


def expected_changes(ops: list[tuple[str, int]]) -> list[Change]:
    out: list[Change] = []
    for op, i in ops:
        if op == "d":
            out += [("d", i, None), (None, i, None)]  # the delete, then its tombstone
        else:
            out.append((op, i, {"id": i, "name": f"n{i}" if op == "c" else f"u{i}"}))
    return out


class TopicReader:
    """The topic's one partition from the start, ``read_committed`` unless told."""

    def __init__(self, bootstrap: str, topic: str, isolation: str = "read_committed") -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                                  "enable.auto.commit": False, "isolation.level": isolation,
                                  "enable.partition.eof": True})
        self.consumer.assign([TopicPartition(topic, 0, 0)])
        self.got: list[Change] = []
        self.at_end = False

    def _consume(self) -> None:
        for m in self.consumer.consume(500, 0.2):
            if m.error() is not None:
                self.at_end = m.error().code() == -191  # _PARTITION_EOF
                continue
            self.at_end = False
            key = json.loads(m.key())["payload"]["id"]
            value = json.loads(m.value())["payload"] if m.value() is not None else None
            self.got.append((value["op"], key, value["after"]) if value else (None, key, None))

    def until(self, count: int, timeout: float = 90) -> list[Change]:
        def enough() -> bool:
            self._consume()
            return len(self.got) >= count
        wait_until(enough, timeout=timeout, interval=0, what=f"{count} committed records (have {len(self.got)})")
        return self.got

    def to_end(self, timeout: float = 30) -> list[Change]:
        def ended() -> bool:
            self._consume()
            return self.at_end
        wait_until(ended, timeout=timeout, interval=0, what="the end of the topic")
        return self.got

    def close(self) -> None:
        self.consumer.close()


def committed_offset(bootstrap: str, offsets_topic: str, server: str) -> dict[str, Any]:
    """The CDC task's last committed source offset, read ``read_committed`` from the worker's
    offsets topic (five partitions)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "enable.auto.commit": False,
                         "isolation.level": "read_committed", "enable.partition.eof": True})
    consumer.assign([TopicPartition(offsets_topic, p, 0) for p in range(5)])
    found: list[dict[str, Any]] = []
    ended: set[int] = set()
    try:
        def done() -> bool:
            for m in consumer.consume(500, 0.2):
                if m.error() is None:
                    if json.loads(m.key()) == ["inventory-cdc", {"server": server}]:
                        found.append(json.loads(m.value()))
                elif m.error().code() == -191:  # _PARTITION_EOF
                    ended.add(m.partition())
            return len(ended) == 5
        wait_until(done, timeout=30, interval=0, what=f"the end of {offsets_topic}")
    finally:
        consumer.close()
    assert found, "no offset committed"
    return found[-1]


def confirmed_flush_lsn(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'debezium'"
                        ).fetchone()
    assert row is not None
    return parse_lsn(row[0])


def test_kill_9_under_exactly_once_source_writes_every_change_once(
        broker: BrokerProcess | ExternalBroker, tmp_path: Path, postgres: PostgresServer, topic_name: str) -> None:
    dsn = postgres.create_database("inventory")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)")
        for i in range(SNAPSHOT):
            c.execute("INSERT INTO customers VALUES (%s, %s)", (i, f"n{i}"))
    topic = f"{topic_name}.public.customers"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    tag = uuid.uuid4().hex[:6]
    worker = ConnectProcess(tmp_path / "worker", broker.bootstrap, mode="distributed", worker={
        "group.id": f"cdc-eos-{tag}", "exactly.once.source.support": "enabled",
        "config.storage.topic": f"cfg-{tag}", "offset.storage.topic": f"off-{tag}",
        "status.storage.topic": f"sts-{tag}", "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1", "status.storage.replication.factor": "1",
        "offset.storage.partitions": "5", "status.storage.partitions": "1",
        "session.timeout.ms": "6000", "heartbeat.interval.ms": "1000", "rebalance.timeout.ms": "10000"})
    connector = {k: v for k, v in cdc_connector(postgres, topic_name).items() if k != "name"}
    # a transaction takes 2 s of changes: a kill once the broker has some of them lands inside one
    connector |= {"exactly.once.support": "required", "transaction.boundary": "interval",
                  "transaction.boundary.interval.ms": "2000"}
    reader = TopicReader(broker.bootstrap, topic)
    raw = TopicReader(broker.bootstrap, topic, "read_uncommitted")
    expected: list[Change] = []
    writer: threading.Thread | None = None
    try:
        worker.start()
        r = httpx.put(f"{worker.url}/connectors/inventory-cdc/config", json=connector, timeout=60)
        assert r.status_code == 201, r.text
        for phase in range(PHASES):
            ops = phase_ops(phase)
            reader.until(SNAPSHOT + len(expected))  # the snapshot, or the restarted worker caught up
            seen = len(raw.to_end())
            if phase == PHASES - 1:  # the last phase runs to the end, uninterrupted
                paced(dsn, ops)
            else:
                writer = threading.Thread(target=paced, args=(dsn, ops))
                writer.start()
                # a transaction is open 2 s: these records are written, not committed
                raw.until(seen + PHASE // 5)
                worker.kill()
                # the slot confirms no more than Kafka committed: its WAL is there for the restart
                assert confirmed_flush_lsn(dsn) <= committed_offset(broker.bootstrap, f"off-{tag}", topic_name)["lsn"]
                writer.join(60)
                worker.start()
            expected += expected_changes(ops)
        got = reader.until(SNAPSHOT + len(expected), timeout=120)
        got = reader.to_end()
        raw.to_end()
        worker.stop()
    except TimeoutError as e:
        raise AssertionError(f"{e}\n{worker.output()[-3000:]}") from e
    finally:
        worker.kill()
        if writer is not None and writer.is_alive():
            writer.join(60)
        reader.close()
        raw.close()

    snapshot, stream = got[:SNAPSHOT], got[SNAPSHOT:]
    assert sorted(snapshot, key=lambda r: r[1]) == [("r", i, {"id": i, "name": f"n{i}"}) for i in range(SNAPSHOT)]
    assert len(stream) == len(expected), f"{len(stream) - len(expected)} records more than changes"
    assert stream == expected
    state: dict[int, Any] = {}
    for op, i, after in got:
        if op == "d":
            del state[i]
        elif op is not None:
            state[i] = after["name"]
    with psycopg.connect(dsn) as c:
        assert state == dict(c.execute("SELECT id, name FROM customers").fetchall())
    aborted = len(raw.got) - len(got)
    assert aborted > 0, "no kill left a transaction open: nothing was aborted and sent again"
    print(f"{aborted} records written in aborted transactions")
