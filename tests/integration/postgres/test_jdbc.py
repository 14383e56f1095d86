"""The JDBC-style PostgreSQL source and sink against a real PostgreSQL (started by the test)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tomyum.connect.config import ConfigError
from tomyum.connect.postgres.connector import JdbcSinkConnector, JdbcSourceConnector
from tomyum.connect.postgres.jdbc_sink import JdbcSinkConfig, OffsetConflict, PostgresSink, SinkRow
from tomyum.connect.postgres.jdbc_source import JdbcSource, JdbcSourceConfig, SourceRow
from tomyum.testing.postgres import PostgresServer

pytestmark = pytest.mark.timeout(90)


def source_props(dsn: str, **extra: str) -> dict[str, str]:
    return {"connection.url": dsn, "table.whitelist": "events", "topic.prefix": "pg-", "poll.interval.ms": "0",
            "mode": "timestamp+incrementing", "timestamp.column.name": "ts", "incrementing.column.name": "id",
            **extra}


def create_events(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE events (id bigserial PRIMARY KEY, ts timestamp NOT NULL DEFAULT clock_timestamp(), "
                  "payload text)")


def as_sink_rows(rows: list[SourceRow]) -> list[SinkRow]:
    return [SinkRow(topic=r.topic, partition=0, offset=i, key_schema=None, key=None, value_schema=r.value_schema,
                    value=r.value) for i, r in enumerate(rows)]


def ids(rows: list[SourceRow]) -> list[Any]:
    return [r.value["id"] for r in rows]


def test_timestamp_incrementing_picks_up_rows_committed_out_of_order(postgres: PostgresServer) -> None:
    dsn = postgres.create_database("app")
    create_events(dsn)
    source = JdbcSource(JdbcSourceConfig.from_props(source_props(dsn)), {})
    late = psycopg.connect(dsn)  # a transaction that writes first and commits last
    try:
        late.execute("INSERT INTO events (payload) VALUES ('early-but-slow')")  # id 1, the lowest ts
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("INSERT INTO events (payload) VALUES ('quick')")  # id 2, committed first
        first = source.poll()
        # id 2 is committed, but a transaction older than it is open: nothing past the horizon is read
        assert ids(first) == []
        late.commit()
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("INSERT INTO events (payload) VALUES ('later')")
        second = source.poll()
        assert ids(second) == [1, 2, 3]
        assert [r.value["payload"] for r in second] == ["early-but-slow", "quick", "later"]
        assert second[-1].offset["incrementing"] == 3 and "txid_horizon" in second[-1].offset
        # an update is a new write: read again, once
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("UPDATE events SET payload = 'quick2', ts = clock_timestamp() WHERE id = 2")
        assert [r.value["payload"] for r in source.poll()] == ["quick2"]
        assert source.poll() == []
        # a restart from the stored offset reads nothing again
        again = JdbcSource(JdbcSourceConfig.from_props(source_props(dsn)), {"events": second[-1].offset})
        try:
            assert [r.value["payload"] for r in again.poll()] == ["quick2"]
        finally:
            again.close()
    finally:
        late.close()
        source.close()


def test_the_classic_cursor_alone_would_lose_the_late_row(postgres: PostgresServer) -> None:
    """The bug the horizon fixes, shown on the same workload with Kafka's plain query."""
    dsn = postgres.create_database("app")
    create_events(dsn)
    with psycopg.connect(dsn) as late, psycopg.connect(dsn, autocommit=True) as c:
        late.execute("INSERT INTO events (payload) VALUES ('early-but-slow')")
        c.execute("INSERT INTO events (payload) VALUES ('quick')")
        seen = c.execute("SELECT id, ts FROM events ORDER BY ts, id").fetchall()
        late.commit()
        ts, last_id = seen[-1][1], seen[-1][0]
        after = c.execute("SELECT id FROM events WHERE ts > %s OR (ts = %s AND id > %s)", (ts, ts, last_id)).fetchall()
    assert [r[0] for r in seen] == [2] and after == []


def test_bulk_and_incrementing_modes(postgres: PostgresServer) -> None:
    dsn = postgres.create_database("app")
    create_events(dsn)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("INSERT INTO events (payload) VALUES ('a'), ('b')")
    bulk = JdbcSource(JdbcSourceConfig.from_props(source_props(dsn, mode="bulk")), {})
    inc = JdbcSource(JdbcSourceConfig.from_props(source_props(dsn, mode="incrementing")), {})
    try:
        assert ids(bulk.poll()) == [1, 2] and ids(bulk.poll()) == [1, 2]
        assert ids(inc.poll()) == [1, 2]
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("INSERT INTO events (payload) VALUES ('c')")
            c.execute("UPDATE events SET payload = 'A' WHERE id = 1")
        assert ids(inc.poll()) == [3]
        first = inc.poll()
        assert first == []
        schema = bulk.poll()[0].value_schema
        ts_field = [f for f in schema["fields"] if f["field"] == "ts"][0]
        assert ts_field["name"] == "org.apache.kafka.connect.data.Timestamp"
    finally:
        bulk.close()
        inc.close()


def test_poll_interval_is_honoured(postgres: PostgresServer) -> None:
    dsn = postgres.create_database("app")
    create_events(dsn)
    source = JdbcSource(JdbcSourceConfig.from_props(source_props(dsn, mode="bulk", **{"poll.interval.ms": "60000"})), {})
    try:
        source.poll()
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("INSERT INTO events (payload) VALUES ('a')")
        assert source.poll() == [] and source.next_poll_in_s() > 50
    finally:
        source.close()


def test_sink_upserts_source_rows_into_a_second_database(postgres: PostgresServer) -> None:
    src = postgres.create_database("app")
    dst = postgres.create_database("warehouse")
    create_events(src)
    source = JdbcSource(JdbcSourceConfig.from_props(source_props(src)), {})
    sink = PostgresSink(JdbcSinkConfig.from_props({
        "connection.url": dst, "insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id",
        "auto.create": "true", "auto.evolve": "true", "table.name.format": "copy_${topic}"}))
    try:
        with psycopg.connect(src, autocommit=True) as c:
            c.execute("INSERT INTO events (payload) VALUES ('a'), ('b')")
        sink.write(as_sink_rows(source.poll()))
        with psycopg.connect(src, autocommit=True) as c:
            c.execute("UPDATE events SET payload = 'B', ts = clock_timestamp() WHERE id = 2")
            c.execute("ALTER TABLE events ADD COLUMN tag text")
            c.execute("INSERT INTO events (payload, tag) VALUES ('c', 'new')")
        source = _reopen(source, src)
        sink.write(as_sink_rows(source.poll()))
        with psycopg.connect(dst) as c:
            rows = c.execute('SELECT id, payload, tag FROM "copy_pg-events" ORDER BY id').fetchall()
            key = c.execute("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '\"copy_pg-events\"'::regclass "
                            "AND i.indisprimary").fetchall()
        assert rows == [(1, "a", None), (2, "B", None), (3, "c", "new")]
        assert key == [("id",)]
    finally:
        source.close()
        sink.close()


def _reopen(source: JdbcSource, dsn: str) -> JdbcSource:
    """A new source from the old one's offsets (it reads the table's columns afresh)."""
    offsets = {q.table: dict(q.offset) for q in source._queriers}
    source.close()
    return JdbcSource(JdbcSourceConfig.from_props(source_props(dsn)), offsets)


def test_sink_modes_keys_and_deletes(postgres: PostgresServer) -> None:
    dst = postgres.create_database("warehouse")
    key_schema = {"type": "struct", "optional": False, "name": "k", "fields": [{"type": "int32", "optional": False,
                                                                                "field": "id"}]}
    value_schema = {"type": "struct", "optional": False, "name": "v", "fields": [
        {"type": "int32", "optional": False, "field": "id"}, {"type": "string", "optional": True, "field": "name"}]}

    def row(offset: int, id_: int, name: str | None, tombstone: bool = False) -> SinkRow:
        return SinkRow(topic="people", partition=0, offset=offset, key_schema=key_schema, key={"id": id_},
                       value_schema=None if tombstone else value_schema,
                       value=None if tombstone else {"id": id_, "name": name})

    sink = PostgresSink(JdbcSinkConfig.from_props({"connection.url": dst, "insert.mode": "upsert",
                                                   "pk.mode": "record_key", "auto.create": "true",
                                                   "delete.enabled": "true"}))
    kafka = PostgresSink(JdbcSinkConfig.from_props({"connection.url": dst, "pk.mode": "kafka", "auto.create": "true",
                                                    "table.name.format": "log_${topic}"}))
    try:
        sink.write([row(0, 1, "a"), row(1, 2, "b"), row(2, 1, "a2"), row(3, 2, None, tombstone=True)])
        kafka.write([row(0, 1, "a"), row(1, 1, "a2")])
        with psycopg.connect(dst) as c:
            assert c.execute("SELECT id, name FROM people ORDER BY id").fetchall() == [(1, "a2")]
            assert c.execute("SELECT __connect_topic, __connect_partition, __connect_offset, name FROM log_people "
                             "ORDER BY __connect_offset").fetchall() == [("people", 0, 0, "a"), ("people", 0, 1, "a2")]
        update = PostgresSink(JdbcSinkConfig.from_props({"connection.url": dst, "insert.mode": "update",
                                                         "pk.mode": "record_key"}))
        try:
            update.write([row(4, 1, "a3"), row(5, 9, "nobody")])
        finally:
            update.close()
        with psycopg.connect(dst) as c:
            assert c.execute("SELECT id, name FROM people ORDER BY id").fetchall() == [(1, "a3")]
        with pytest.raises(LookupError, match="auto.create is false"):
            strict = PostgresSink(JdbcSinkConfig.from_props({"connection.url": dst}))
            try:
                strict.write([SinkRow(topic="missing", partition=0, offset=0, key_schema=None, key=None,
                                      value_schema=value_schema, value={"id": 1, "name": "x"})])
            finally:
                strict.close()
    finally:
        sink.close()
        kafka.close()


def test_sink_config_errors_are_one_line() -> None:
    for props, message in [({"insert.mode": "merge"}, "insert.mode=merge"),
                           ({"insert.mode": "upsert"}, "needs a primary key"),
                           ({"delete.enabled": "true", "pk.mode": "kafka"}, "delete.enabled")]:
        with pytest.raises(ValueError, match=message):
            JdbcSinkConfig.from_props({"connection.url": "postgresql://x", **props})
    with pytest.raises(ValueError, match="mode=timestamp needs"):
        JdbcSourceConfig.from_props({"connection.url": "x", "table.whitelist": "t", "mode": "timestamp"})




def query_props(dsn: str, mode: str, **extra: str) -> dict[str, str]:
    # Confluent's idiom: the join wrapped in a subquery, so the appended WHERE names its columns
    query = ("SELECT * FROM (SELECT e.id, e.ts, e.payload, u.name FROM events e JOIN users u ON u.id = e.user_id) "
             "AS joined")
    return {"connection.url": dsn, "query": query, "topic.prefix": "joined", "poll.interval.ms": "0", "mode": mode,
            "timestamp.column.name": "ts", "incrementing.column.name": "id", **extra}


def create_joined(dsn: str) -> None:
    create_events(dsn)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL)")
        c.execute("ALTER TABLE events ADD COLUMN user_id int")
        c.execute("INSERT INTO users VALUES (1, 'ann'), (2, 'bob')")
        c.execute("INSERT INTO events (payload, user_id) VALUES ('a', 1), ('b', 2), ('orphan', NULL)")


def test_custom_query_in_each_mode_appends_confluents_criteria(postgres: PostgresServer) -> None:
    dsn = postgres.create_database("app")
    create_joined(dsn)
    sources = {mode: JdbcSource(JdbcSourceConfig.from_props(query_props(dsn, mode)), {}) for mode in
               ("bulk", "incrementing", "timestamp", "timestamp+incrementing")}
    try:
        first = {mode: s.poll() for mode, s in sources.items()}
        for mode, rows in first.items():
            assert [(r.value["id"], r.value["name"]) for r in rows] == [(1, "ann"), (2, "bob")], mode
            assert {r.topic for r in rows} == {"joined"} and {str(r.partition) for r in rows} == {"{'query': 'query'}"}
        schema = first["bulk"][0].value_schema
        assert "name" not in schema  # Confluent's query mode: an unnamed struct
        assert [(f["field"], f["type"], f["optional"]) for f in schema["fields"]] == [
            ("id", "int64", False), ("ts", "int64", False), ("payload", "string", True), ("name", "string", False)]
        assert first["timestamp+incrementing"][-1].offset.keys() == {"incrementing", "timestamp", "timestamp_nanos"}
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("INSERT INTO events (payload, user_id) VALUES ('c', 1)")
            c.execute("UPDATE events SET payload = 'B', ts = clock_timestamp() WHERE id = 2")
        second = {mode: [(r.value["id"], r.value["payload"]) for r in s.poll()] for mode, s in sources.items()}
        second["bulk"].sort()  # the query as written: no ORDER BY
        assert second == {"bulk": [(1, "a"), (2, "B"), (4, "c")], "incrementing": [(4, "c")],
                          "timestamp": [(4, "c"), (2, "B")], "timestamp+incrementing": [(4, "c"), (2, "B")]}
        assert all(sources[m].poll() == [] for m in ("incrementing", "timestamp", "timestamp+incrementing"))
    finally:
        for s in sources.values():
            s.close()


def test_custom_query_resumes_from_confluents_offsets_and_takes_a_suffix(postgres: PostgresServer) -> None:
    dsn = postgres.create_database("app")
    create_joined(dsn)
    props = query_props(dsn, "timestamp+incrementing", **{"query.suffix": "LIMIT 1"})
    source = JdbcSource(JdbcSourceConfig.from_props(props), {})
    try:
        assert [r.value["id"] for r in source.poll()] == [1]  # the suffix ends the generated query
        offset = source.poll()[-1].offset
    finally:
        source.close()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("INSERT INTO events (payload, user_id) VALUES ('c', 2)")
    again = JdbcSource(JdbcSourceConfig.from_props(props), {"query": offset})
    try:
        assert [r.value["id"] for r in again.poll()] == [4]  # not 1 or 2 again: microsecond cursor
    finally:
        again.close()


def test_custom_query_config_errors() -> None:
    query = {"connection.url": "x", "query": "SELECT 1", "mode": "bulk"}
    with pytest.raises(ValueError, match="^query may not be combined with whole-table copying settings.$"):
        JdbcSourceConfig.from_props({**query, "table.whitelist": "events"})
    with pytest.raises(ValueError, match="mode=incrementing needs incrementing.column.name"):
        JdbcSourceConfig.from_props({**query, "mode": "incrementing"})
    with pytest.raises(ValueError, match="name at least one table, or set query"):
        JdbcSourceConfig.from_props({"connection.url": "x", "mode": "bulk"})
    with pytest.raises(ConfigError, match="configuration query: query may not be combined") as refused:
        JdbcSourceConnector().start({**query, "table.whitelist": "events"})
    assert refused.value.name == "query"


def test_custom_query_without_the_cursor_column_is_a_clear_error(postgres: PostgresServer) -> None:
    dsn = postgres.create_database("app")
    create_events(dsn)
    source = JdbcSource(JdbcSourceConfig.from_props({"connection.url": dsn, "query": "SELECT payload FROM events",
                                                     "mode": "incrementing", "incrementing.column.name": "id"}), {})
    try:
        with pytest.raises(LookupError, match="query: its result has no column id"):
            source.poll()
    finally:
        source.close()


def test_exactly_once_sink_stores_rows_and_offsets_in_one_transaction(postgres: PostgresServer) -> None:
    dst = postgres.create_database("warehouse")
    schema = {"type": "struct", "optional": False, "name": "v", "fields": [
        {"type": "int32", "optional": False, "field": "n"}]}
    props = {"connection.url": dst, "auto.create": "true", "exactly.once": "true", "name": "numbers",
             "offsets.table.name": "my_offsets"}

    def row(n: int, value: dict[str, Any] | None = None) -> SinkRow:
        return SinkRow(topic="numbers", partition=0, offset=n, key_schema=None, key=None, value_schema=schema,
                       value=value or {"n": n})

    first, second = PostgresSink(JdbcSinkConfig.from_props(props)), PostgresSink(JdbcSinkConfig.from_props(props))
    try:
        assert first.read_offsets([("numbers", 0)]) == {} == second.read_offsets([("numbers", 0)])
        first.write([row(0), row(1)], {("numbers", 0): 2})
        with pytest.raises(psycopg.errors.NotNullViolation):  # the batch fails: its offsets are not stored either
            first.write([row(2), row(3, {"n": None})], {("numbers", 0): 4})
        # a second writer that read the partition before the first committed cannot commit over it
        with pytest.raises(OffsetConflict, match="my_offsets: numbers-0 was committed by another writer"):
            second.write([row(2)], {("numbers", 0): 3})
        assert second.read_offsets([("numbers", 0)]) == {("numbers", 0): 2}
        second.write([row(2)], {("numbers", 0): 3})
        with psycopg.connect(dst) as c:
            assert c.execute("SELECT n FROM numbers ORDER BY n").fetchall() == [(0,), (1,), (2,)]
            assert c.execute("SELECT connector, topic, partition, next_offset FROM my_offsets").fetchall() == [
                ("numbers", "numbers", 0, 3)]
        # KIP-875 through the connector: the table is altered with Kafka's offsets
        connector = JdbcSinkConnector()
        assert connector.alter_offsets(props, {("numbers", 0): 1, ("numbers", 1): 5}) is True
        assert first.read_offsets([("numbers", 0), ("numbers", 1)]) == {("numbers", 0): 1, ("numbers", 1): 5}
        assert connector.alter_offsets(props, {("numbers", 0): None}) is True
        assert first.read_offsets([("numbers", 0), ("numbers", 1)]) == {("numbers", 1): 5}
        assert connector.alter_offsets({**props, "exactly.once": "false"}, {("numbers", 1): None}) is False
    finally:
        first.close()
        second.close()
