"""State stores: one contract for every engine, SQLite durability across reopening, and
the changelog records that will back stores with compacted topics."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tomyum.errors import StorageError
from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig, TimeWindows, TopologyTestDriver
from tomyum.streams.state import (
    BytesStore,
    ChangelogRecord,
    InMemoryBytesStore,
    KeyValueStore,
    SessionStore,
    SqliteBytesStore,
    WindowStore,
)
from tomyum.streams.windows import Window, Windowed


@pytest.fixture(params=["in_memory", "sqlite_file", "sqlite_memory"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BytesStore]:
    store: BytesStore
    if request.param == "in_memory":
        store = InMemoryBytesStore("s")
    else:
        store = SqliteBytesStore("s", tmp_path / "s.db" if request.param == "sqlite_file" else None)
    yield store
    store.close()


def test_engine_contract(engine: BytesStore) -> None:
    for key in (b"b", b"a", b"\xff", b"ab", b""):
        engine.put(key, key + b"!")
    engine.put(b"a", b"again")
    engine.delete(b"b")
    engine.delete(b"missing")
    assert engine.get(b"a") == b"again" and engine.get(b"b") is None
    assert [k for k, _ in engine.range(None, None)] == [b"", b"a", b"ab", b"\xff"]  # unsigned byte order
    assert list(engine.range(b"a", b"ab")) == [(b"a", b"again"), (b"ab", b"ab!")]
    assert [k for k, _ in engine.range(b"aa", None)] == [b"ab", b"\xff"]
    assert engine.approximate_num_entries() == 4
    for key, _ in engine.range(None, None):  # writing while iterating is allowed
        engine.delete(key)
    assert engine.approximate_num_entries() == 0


def test_typed_store_logs_every_write(engine: BytesStore) -> None:
    log: list[ChangelogRecord] = []
    store = KeyValueStore(engine, Serdes.string(), Serdes.long(), log.append)
    store.put("x", 1, timestamp=5)
    assert store.put_if_absent("x", 2) == 1
    assert store.put_if_absent("y", 3, timestamp=6) is None
    assert store.delete("x", timestamp=7) == 1
    assert [(c.key, c.value, c.timestamp) for c in log] == [
        (b"x", struct.pack(">q", 1), 5), (b"y", struct.pack(">q", 3), 6), (b"x", None, 7)
    ]
    replica = KeyValueStore(InMemoryBytesStore("s"), Serdes.string(), Serdes.long())
    replica.restore((c.key, c.value) for c in log)
    assert replica.all() == store.all() == [("y", 3)]
    with pytest.raises(ValueError, match="None"):
        store.put(None, 1)  # type: ignore[arg-type]


def test_sqlite_store_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "app" / "0_0" / "sqlite" / "counts.db"
    store = KeyValueStore(SqliteBytesStore("counts", path), Serdes.string(), Serdes.json())
    store.put("a", {"n": 1})
    store.put("b", {"n": 2})
    store.flush()
    store.put("c", {"n": 3})  # not flushed: lost with the process
    store.inner._db.close()  # type: ignore[attr-defined]  # a crash: no commit
    reopened = KeyValueStore(SqliteBytesStore("counts", path), Serdes.string(), Serdes.json())
    assert reopened.all() == [("a", {"n": 1}), ("b", {"n": 2})]
    reopened.put("c", {"n": 3})
    reopened.close()
    assert KeyValueStore(SqliteBytesStore("counts", path), Serdes.string(), Serdes.json()).get("c") == {"n": 3}
    mode = SqliteBytesStore("counts", path)._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_sqlite_failures_are_storage_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StorageError, match="cannot open"):
        SqliteBytesStore("s", tmp_path / "file" / "s.db")
    store = SqliteBytesStore("s", tmp_path / "s.db")
    store._db.execute("DROP TABLE kv")
    with pytest.raises(StorageError, match="state store s: no such table"):
        store.get(b"k")


def word_count(store_type: str) -> StreamsBuilder:
    builder = StreamsBuilder()
    builder.stream("text").flat_map_values(str.split).group_by(lambda _, word: word).count(
        Materialized(store_name="counts", store_type=store_type)  # type: ignore[arg-type]
    )
    return builder


def test_task_state_persists_in_the_state_dir(tmp_path: Path) -> None:
    config = StreamsConfig(application_id="wc", default_key_serde=Serdes.string(),
                           default_value_serde=Serdes.string(), state_dir=str(tmp_path))
    with TopologyTestDriver(word_count("persistent").build(), config) as driver:
        driver.pipe_input("text", None, "a b a", timestamp=0)
    assert (tmp_path / "wc" / "0_0" / "sqlite" / "counts.db").exists()
    with TopologyTestDriver(word_count("persistent").build(), config) as driver:
        driver.pipe_input("text", None, "a", timestamp=1)
        assert driver.get_key_value_store("counts").all() == [("a", 3), ("b", 1)]


@pytest.mark.parametrize("store_type", ["persistent", "in_memory"])
def test_driver_collects_changelog_records(store_type: str) -> None:
    config = StreamsConfig(default_key_serde=Serdes.string(), default_value_serde=Serdes.string())
    with TopologyTestDriver(word_count(store_type).build(), config) as driver:
        driver.pipe_input("text", None, "a b a", timestamp=9)
        log = driver.read_changelog("counts")
    # an aggregation's store is timestamped: each value is logged as timestamp ‖ value
    assert [(c.store_name, c.key, c.value[:8], Serdes.long().deserialize(c.value[8:]), c.timestamp) for c in log] == [
        ("counts", b"a", (9).to_bytes(8, "big"), 1, 9), ("counts", b"b", (9).to_bytes(8, "big"), 1, 9),
        ("counts", b"a", (9).to_bytes(8, "big"), 2, 9),
    ]
    assert driver.topology.stores["counts"].changelog_topic == "counts-changelog"


def test_logging_can_be_disabled() -> None:
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().count(Materialized(store_name="c", logging_enabled=False))
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_input("in", b"k", b"v", timestamp=0)
        assert driver.read_changelog("c") == []
        assert driver.get_key_value_store("c").get(b"k") == 1


def test_window_store_layout_and_retention() -> None:
    log: list[ChangelogRecord] = []
    store = WindowStore(InMemoryBytesStore("w"), Serdes.string(), Serdes.long(), window_size_ms=10,
                        retention_ms=20, changelog=log.append)
    store.put("a", 0, 1, timestamp=3)
    store.put("ab", 0, 5, timestamp=3)  # a key that extends "a" must not show up in "a"'s range
    store.put("a", 10, 2, timestamp=12)
    assert log[0].key == b"a" + struct.pack(">q", 0)  # Kafka's WindowKeySchema: key, then start
    assert store.fetch_range("a", 0, 10) == [(0, 1), (10, 2)]
    store.observe(20)  # min live start: 20 - 20 + 1 = 1
    assert store.fetch_range("a", 0, 10) == [(10, 2)]
    assert store.all() == [(Windowed("a", Window(10, 20)), 2)]
    assert len(log) == 3  # expiry is not logged: the changelog topic's retention forgets them
    store.put("a", 0, 9, timestamp=20)  # an expired window is not written back
    assert store.fetch("a", 0) is None


def test_session_store_layout() -> None:
    log: list[ChangelogRecord] = []
    store = SessionStore(InMemoryBytesStore("s"), Serdes.string(), Serdes.long(), 100, log.append)
    store.put(Windowed("a", Window(5, 9)), 2, timestamp=9)
    assert log[0].key == b"a" + struct.pack(">q", 9) + struct.pack(">q", 5)  # key, end, start
    assert store.fetch_session(Windowed("a", Window(5, 9))) == 2
    assert store.find_sessions("a", 9, 5) == [(Windowed("a", Window(5, 9)), 2)]
    assert store.find_sessions("a", 10, 100) == [] and store.find_sessions("a", 0, 4) == []


def test_windowed_stores_are_sqlite_by_default(tmp_path: Path) -> None:
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().windowed_by(TimeWindows.of_size_with_no_grace(10)).count(
        Materialized(store_name="w")
    )
    config = StreamsConfig(application_id="win", state_dir=str(tmp_path))
    with TopologyTestDriver(builder.build(), config) as driver:
        driver.pipe_input("in", b"k", b"v", timestamp=4)
        assert isinstance(driver.get_window_store("w").kv.inner, SqliteBytesStore)
        assert driver.get_window_store("w").fetch(b"k", 0) == 1
        with pytest.raises(KeyError, match="KeyValueStore"):
            driver.get_key_value_store("w")
