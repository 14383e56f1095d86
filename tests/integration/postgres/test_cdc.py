"""PostgreSQL change data capture against a real PostgreSQL (started by the test): the snapshot,
then the logical replication stream, as Debezium's envelope; and resuming from a stored offset."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from tomyum.connect.postgres.cdc import CdcConfig, CdcRecord, PostgresCdc
from tomyum.testing.postgres import PostgresServer

pytestmark = pytest.mark.timeout(90)


def cdc_props(pg: PostgresServer, **extra: str) -> dict[str, str]:
    return {"database.hostname": "127.0.0.1", "database.port": str(pg.port), "database.user": "tomyum",
            "database.dbname": "inventory", "topic.prefix": "dbserver1", **extra}


def drain(cdc: PostgresCdc, count: int, timeout_s: float = 20.0) -> list[CdcRecord]:
    got: list[CdcRecord] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"got {len(got)} of {count} records: {[summary(r) for r in got]}")
        got += cdc.poll(0.2)
    return got


def summary(r: CdcRecord) -> tuple[Any, ...]:
    """A record as the assertions compare it: topic, key, op, before, after (no times, no LSNs)."""
    v = r.record.value
    if v is None:
        return (r.record.topic, r.record.key, None)
    return (r.record.topic, r.record.key, v["op"], v["before"], v["after"])


def setup_inventory(pg: PostgresServer) -> str:
    dsn = pg.create_database("inventory")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email varchar(80))")
        c.execute("CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2))")
        c.execute("ALTER TABLE orders REPLICA IDENTITY FULL")
        c.execute("INSERT INTO customers VALUES (1, 'ann', 'ann@x'), (2, 'bob', NULL)")
        c.execute("INSERT INTO orders VALUES (10, 1, 9.50)")
    return dsn


C = "dbserver1.public.customers"
O = "dbserver1.public.orders"


def test_snapshot_then_stream_gives_debezium_envelopes(postgres: PostgresServer) -> None:
    from decimal import Decimal

    dsn = setup_inventory(postgres)
    cdc = PostgresCdc(CdcConfig.from_props(cdc_props(postgres, **{"skipped.operations": "none"})))
    cdc.start(None)
    try:
        snapshot = drain(cdc, 3)
        assert [summary(r) for r in snapshot] == [
            (C, {"id": 1}, "r", None, {"id": 1, "name": "ann", "email": "ann@x"}),
            (C, {"id": 2}, "r", None, {"id": 2, "name": "bob", "email": None}),
            (O, {"id": 10}, "r", None, {"id": 10, "customer_id": 1, "amount": Decimal("9.50")}),
        ]
        assert [r.record.value["source"]["snapshot"] for r in snapshot if r.record.value] == ["first", "true", "last"]
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("INSERT INTO customers VALUES (3, 'cy', 'cy@x')")
            c.execute("UPDATE customers SET email = 'bob@x' WHERE id = 2")
            c.execute("UPDATE orders SET amount = 10 WHERE id = 10")
            c.execute("DELETE FROM customers WHERE id = 1")
            with c.transaction():  # one transaction, two tables
                c.execute("INSERT INTO orders VALUES (11, 3, 1.25)")
                c.execute("UPDATE customers SET name = 'cyd' WHERE id = 3")
            c.execute("ALTER TABLE customers ADD COLUMN vip boolean NOT NULL DEFAULT false")
            c.execute("INSERT INTO customers VALUES (4, 'dee', NULL, true)")
            c.execute("TRUNCATE orders")
        stream = drain(cdc, 9)
        assert [summary(r) for r in stream] == [
            (C, {"id": 3}, "c", None, {"id": 3, "name": "cy", "email": "cy@x"}),
            (C, {"id": 2}, "u", None, {"id": 2, "name": "bob", "email": "bob@x"}),
            (O, {"id": 10}, "u", {"id": 10, "customer_id": 1, "amount": Decimal("9.50")},
             {"id": 10, "customer_id": 1, "amount": Decimal("10.00")}),
            # REPLICA IDENTITY DEFAULT: the old row is its key; NOT NULL name gets Debezium's fallback
            (C, {"id": 1}, "d", {"id": 1, "name": "", "email": None}, None),
            (C, {"id": 1}, None),
            (O, {"id": 11}, "c", None, {"id": 11, "customer_id": 3, "amount": Decimal("1.25")}),
            (C, {"id": 3}, "u", None, {"id": 3, "name": "cyd", "email": "cy@x"}),
            (C, {"id": 4}, "c", None, {"id": 4, "name": "dee", "email": None, "vip": True}),
            (O, None, "t", None, None),
        ]
        txids = {r.record.value["source"]["txId"] for r in stream[5:7] if r.record.value}
        assert len(txids) == 1, "the two-table transaction carries one txId"
        source = stream[0].record.value["source"]  # type: ignore[index]
        assert (source["connector"], source["name"], source["db"], source["schema"], source["table"]) == (
            "postgresql", "dbserver1", "inventory", "public", "customers")
        vip = [f for f in stream[7].record.value_schema["fields"][1]["fields"] if f["field"] == "vip"]  # type: ignore[index]
        assert vip == [{"type": "boolean", "optional": False, "field": "vip"}]
    finally:
        cdc.close()


def test_resume_from_stored_offset_loses_nothing_and_repeats_nothing_stored(postgres: PostgresServer) -> None:
    dsn = setup_inventory(postgres)
    cdc = PostgresCdc(CdcConfig.from_props(cdc_props(postgres, **{"snapshot.mode": "never"})))
    cdc.start(None)
    with psycopg.connect(dsn, autocommit=True) as c:
        for i in range(100, 110):
            c.execute("INSERT INTO customers VALUES (%s, %s, NULL)", (i, f"n{i}"))
        with c.transaction():
            for i in range(110, 115):
                c.execute("INSERT INTO customers VALUES (%s, %s, NULL)", (i, f"n{i}"))
    first = drain(cdc, 15)
    stored = first[11].offset  # stored mid-transaction (the 12th of 15); the slot was told the 4th
    cdc.flush(first[3].offset)
    cdc.close()  # as a crash would: nothing else flushed
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("INSERT INTO customers VALUES (200, 'after', NULL)")
    again = PostgresCdc(CdcConfig.from_props(cdc_props(postgres, **{"snapshot.mode": "never"})))
    again.start(stored)
    try:
        rest = drain(again, 4)
        keys = [r.record.key["id"] for r in first[:12]] + [r.record.key["id"] for r in rest]  # type: ignore[index]
        assert keys == [*range(100, 115), 200]
        assert again.poll(0.5) == []
    finally:
        again.close()


def test_heartbeat_carries_the_processed_position(postgres: PostgresServer) -> None:
    dsn = setup_inventory(postgres)
    cdc = PostgresCdc(CdcConfig.from_props(cdc_props(postgres, **{"snapshot.mode": "never",
                                                                   "heartbeat.interval.ms": "100"})))
    cdc.start(None)
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("INSERT INTO customers VALUES (5, 'eve', NULL)")
        change = drain(cdc, 1)[0]
        beat = drain(cdc, 1)[0]
        assert beat.record.topic == "__debezium-heartbeat.dbserver1"
        assert beat.record.key == {"serverName": "dbserver1"}
        assert beat.offset["lsn"] == change.offset["lsn"]
        cdc.flush(beat.offset)
    finally:
        cdc.close()
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute("SELECT confirmed_flush_lsn::text FROM pg_replication_slots").fetchone()
    assert row is not None
    from tomyum.connect.postgres.pgoutput import parse_lsn
    assert parse_lsn(row[0]) == beat.offset["lsn"]
