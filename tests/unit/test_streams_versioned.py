"""Versioned key-value stores (KIP-889) and temporal stream-table joins (KIP-914): as-of
reads, history retention, changelog and restore, out-of-order table updates; the join
checked against an independent reference on seeded random inputs."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig, TopologyTestDriver
from tomyum.streams.state import InMemoryBytesStore, VersionedKeyValueStore, VersionedRecord
from tomyum.streams.state.base import ChangelogRecord
from tomyum.streams.state.versioned import PUT_RETURN_CODE_NOT_PUT, PUT_RETURN_CODE_VALID_TO_UNDEFINED

STRINGS = StreamsConfig(default_key_serde=Serdes.string(), default_value_serde=Serdes.string())


def store(history_ms: int, log: list[ChangelogRecord] | None = None) -> VersionedKeyValueStore[str, str]:
    return VersionedKeyValueStore(InMemoryBytesStore("rates"), Serdes.string(), Serdes.string(), history_ms,
                                  None if log is None else log.append)


def test_as_of_reads_return_the_version_valid_then() -> None:
    s = store(100)
    assert s.put("k", "a", 10) == PUT_RETURN_CODE_VALID_TO_UNDEFINED
    assert s.put("k", "c", 30) == PUT_RETURN_CODE_VALID_TO_UNDEFINED
    assert s.put("k", "b", 20) == 30  # out of order: valid until the next version
    assert s.get("k") == VersionedRecord("c", 30, None)
    assert s.get("k", 9) is None
    assert s.get("k", 10) == VersionedRecord("a", 10, 20)
    assert s.get("k", 25) == VersionedRecord("b", 20, 30)
    assert s.get("k", 1000) == VersionedRecord("c", 30, None)
    assert s.delete("k", 40) == VersionedRecord("c", 30, None)
    assert s.get("k") is None and s.get("k", 45) is None
    assert s.get("k", 35) == VersionedRecord("c", 30, 40)
    assert s.get_with_timestamp("missing") is None


def test_history_retention_refuses_old_writes_and_reads_and_forgets_old_versions() -> None:
    s = store(10)
    s.put("k", "a", 0)
    s.put("k", "b", 5)
    s.put("k", "c", 20)  # stream time 20: the history starts at 10
    assert s.put("k", "x", 9) == PUT_RETURN_CODE_NOT_PUT
    assert s.delete("k", 9) is None
    assert s.get("k", 9) is None
    assert s.get("k", 10) == VersionedRecord("b", 5, 20)  # b was valid until 20, inside the history
    s.put("k", "d", 30)  # history starts at 20: a and b are gone from the engine
    assert s.approximate_num_entries() == 2
    s.put("j", "old", 1000)
    assert s.get("k") == VersionedRecord("d", 30, None)  # the latest version stays, however old


def test_the_changelog_restores_every_version() -> None:
    log: list[ChangelogRecord] = []
    s = store(100, log)
    for value, timestamp in [("a", 10), ("c", 30), ("b", 20)]:
        s.put("k", value, timestamp)
    s.delete("k", 40)
    assert [r.timestamp for r in log] == [10, 30, 20, 40]
    assert all(r.value is not None for r in log)  # a delete's time travels too
    restored = store(100)
    restored.restore((r.key, r.value) for r in log)
    for at in (5, 10, 25, 35, 45):
        assert restored.get("k", at) == s.get("k", at)


def temporal_join(kind: str, history_ms: int = 1000) -> StreamsBuilder:
    builder = StreamsBuilder()
    rates = builder.table("rates", materialized=Materialized(store_name="rates", history_retention_ms=history_ms))
    orders = builder.stream("orders")
    joined = (orders.join if kind == "inner" else orders.left_join)(rates, lambda order, rate: f"{order}@{rate}")
    joined.to("priced")
    rates.to_stream().to("rate-updates")
    return builder


def test_a_stream_record_joins_the_table_value_valid_at_its_timestamp() -> None:
    with TopologyTestDriver(temporal_join("left").build(), STRINGS) as driver:
        driver.pipe_input("rates", "eur", "1.10", timestamp=10)
        driver.pipe_input("rates", "eur", "1.30", timestamp=30)
        driver.pipe_input("rates", "eur", "1.20", timestamp=20)  # late: into the history only
        for timestamp in (5, 15, 25, 35):
            driver.pipe_input("orders", "eur", f"o{timestamp}", timestamp=timestamp)
        assert [r.value for r in driver.read_output("priced")] == ["o5@None", "o15@1.10", "o25@1.20", "o35@1.30"]
        # the out-of-order update is not forwarded downstream (KIP-914)
        assert [(r.value, r.timestamp) for r in driver.read_output("rate-updates")] == [("1.10", 10), ("1.30", 30)]
        assert driver.get_versioned_key_value_store("rates").get("eur", 22) == VersionedRecord("1.20", 20, 30)


def test_a_stream_record_older_than_the_history_finds_no_table_value() -> None:
    with TopologyTestDriver(temporal_join("inner", history_ms=10).build(), STRINGS) as driver:
        driver.pipe_input("rates", "eur", "1.10", timestamp=0)
        driver.pipe_input("rates", "eur", "1.30", timestamp=50)
        driver.pipe_input("orders", "eur", "late", timestamp=30)  # before 50 - 10
        driver.pipe_input("orders", "eur", "ok", timestamp=45)  # 1.10 was valid until 50
        driver.pipe_input("orders", "eur", "now", timestamp=55)
        assert [r.value for r in driver.read_output("priced")] == ["ok@1.10", "now@1.30"]


@pytest.mark.parametrize("seed", range(10))
def test_temporal_join_matches_a_reference_on_random_inputs(seed: int) -> None:
    rng = random.Random(seed)
    history_ms = 40
    versions: dict[str, list[tuple[int, str | None]]] = {}
    expected: list[str] = []
    stream_time = -1
    with TopologyTestDriver(temporal_join("left", history_ms).build(), STRINGS) as driver:
        for i in range(200):
            key, timestamp = rng.choice("xyz"), max(0, stream_time + rng.randint(-30, 5))
            if rng.random() < 0.5:
                value = None if rng.random() < 0.15 else f"v{i}"
                if timestamp >= stream_time - history_ms:  # else refused
                    versions.setdefault(key, []).append((timestamp, value))
                    stream_time = max(stream_time, timestamp)
                driver.pipe_input("rates", key, value, timestamp=timestamp)
            else:
                # the reference: the latest version at or before the record's time (a later put
                # at the same time replaces an earlier one), none if older than the history
                valid = [v for t, v in sorted(versions.get(key, []), key=lambda tv: tv[0]) if t <= timestamp]
                found = valid[-1] if valid and timestamp >= stream_time - history_ms else None
                expected.append(f"o{i}@{found}")
                driver.pipe_input("orders", key, f"o{i}", timestamp=timestamp)
        assert [r.value for r in driver.read_output("priced")] == expected


def test_versioned_store_keys_and_values_use_the_table_serdes() -> None:
    builder = StreamsBuilder()
    builder.table("t", key_serde=Serdes.string(), value_serde=Serdes.long(),
                  materialized=Materialized(store_name="t", history_retention_ms=5))
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_input("t", "k", 7, timestamp=3)
        found: Any = driver.get_versioned_key_value_store("t").get("k", 3)
        assert found == VersionedRecord(7, 3, None)
        assert [c.key for c in driver.read_changelog("t")] == [b"k"]
