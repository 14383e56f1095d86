"""The KStream / KTable operators and plain aggregations, through the test driver."""

from __future__ import annotations

from typing import Any

import pytest

from tomyum.streams import (
    Change,
    Materialized,
    Processor,
    Record,
    Serdes,
    StreamsBuilder,
    StreamsConfig,
    TopologyTestDriver,
)

STRINGS = StreamsConfig(default_key_serde=Serdes.string(), default_value_serde=Serdes.string())


def pairs(records: list[Record[Any, Any]]) -> list[tuple[Any, Any]]:
    return [(r.key, r.value) for r in records]


def test_word_count() -> None:
    builder = StreamsBuilder()
    (
        builder.stream("text")
        .flat_map_values(lambda line: line.lower().split())
        .group_by(lambda _, word: word)
        .count(Materialized(store_name="counts"))
        .to_stream()
        .to("word-counts", value_serde=Serdes.long())
    )
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("text", None, "Hello world", timestamp=0)
        driver.pipe_input("text", None, "hello tomyum", timestamp=1)
        assert pairs(driver.read_output("word-counts")) == [("hello", 1), ("world", 1), ("hello", 2), ("tomyum", 1)]
        store = driver.get_key_value_store("counts")
        assert store.all() == [("hello", 2), ("tomyum", 1), ("world", 1)]
        assert store.get("world") == 1 and store.get("absent") is None


def test_stateless_operators_keep_record_metadata() -> None:
    seen: list[tuple[str, str]] = []
    builder = StreamsBuilder()
    (
        builder.stream("in")
        .filter(lambda k, v: v != "drop")
        .filter_not(lambda k, v: v.startswith("x"))
        .peek(lambda k, v: seen.append((k, v)))
        .map(lambda k, v: (v, k))
        .select_key(lambda k, v: k.upper())
        .map_values(lambda v: v + "!")
        .flat_map(lambda k, v: [(k, v), (k + "2", v)])
        .to("out")
    )
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for value in ("a", "drop", "xa", "b"):
            driver.pipe_input("in", "k", value, timestamp=10, headers=(("h", b"1"),))
        out = driver.read_output("out")
    assert pairs(out) == [("A", "k!"), ("A2", "k!"), ("B", "k!"), ("B2", "k!")]
    assert seen == [("k", "a"), ("k", "b")]
    assert all(r.timestamp == 10 and r.headers == (("h", b"1"),) and r.topic == "out" for r in out)
    assert [r.offset for r in out] == [0, 1, 2, 3]


def test_records_carry_their_source_coordinates() -> None:
    seen: list[Record[Any, Any]] = []
    builder = StreamsBuilder()
    stream = builder.stream("in")
    stream.foreach(lambda k, v: None)
    stream._builder.add("CAPTURE", lambda: Capture(seen), [stream.node])
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("in", "a", "1", timestamp=3, partition=2)
        driver.pipe_input("in", "b", "2", timestamp=4, partition=2)
    assert [(r.topic, r.partition, r.offset, r.timestamp) for r in seen] == [("in", 2, 0, 3), ("in", 2, 1, 4)]


def test_pipe_input_partition_labels_the_record_but_every_partition_shares_one_task() -> None:
    """The driver runs one task: ``partition=`` sets ``record.partition`` and picks the partition
    time a timestamp extractor is given, but records of other partitions share the task's stores
    and stream time, so they close each other's windows (docs/streams.md, Testing)."""
    from tomyum.streams import TimeWindows

    partition_times: list[tuple[int, int]] = []

    def extractor(record: Record[Any, Any], partition_time: int) -> int:
        partition_times.append((record.partition, partition_time))
        return record.timestamp

    builder = StreamsBuilder()
    (builder.stream("in", timestamp_extractor=extractor).group_by_key()
        .windowed_by(TimeWindows.of_size_with_no_grace(10)).count(Materialized(store_name="counts"))
        .to_stream().to("out", key_serde=Serdes.time_windowed(Serdes.string(), 10), value_serde=Serdes.long()))
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("in", "k", "a", timestamp=5, partition=0)
        driver.pipe_input("in", "k", "b", timestamp=20, partition=1)   # closes [0, 10) for partition 0 too
        driver.pipe_input("in", "k", "c", timestamp=6, partition=0)    # late in the one task: dropped
        driver.pipe_input("in", "k", "d", timestamp=21, partition=1)
        out = driver.read_output("out")
        assert [(r.key.window.start_ms, r.value, r.partition) for r in out] == [(0, 1, 0), (20, 1, 0), (20, 2, 0)]
        assert driver.metrics() == {"dropped-records-total": 1}
        assert driver.get_window_store("counts").fetch("k", 20) == 2   # one store for both partitions
    assert partition_times == [(0, -1), (1, -1), (0, 5), (1, 20)]


class Capture(Processor):
    """Records what reaches it, for tests that look inside the topology."""

    def __init__(self, sink: list[Record[Any, Any]]) -> None:
        self.sink = sink

    def process(self, record: Record[Any, Any]) -> None:
        self.sink.append(record)


def test_split_branches_and_merge() -> None:
    builder = StreamsBuilder()
    branches = (
        builder.stream("numbers", value_serde=Serdes.integer())
        .split("n-")
        .branch(lambda k, v: v < 0, "negative")
        .branch(lambda k, v: v == 0)
        .default_branch()
    )
    assert sorted(branches) == ["n-0", "n-2", "n-negative"]
    branches["n-negative"].to("negative")
    branches["n-0"].merge(branches["n-2"]).to("rest")
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for i, v in enumerate([-1, 0, 5, -7]):
            driver.pipe_input("numbers", str(i), v, timestamp=i)
        assert pairs(driver.read_output("negative")) == [("0", -1), ("3", -7)]
        assert pairs(driver.read_output("rest")) == [("1", 0), ("2", 5)]


def test_reduce_and_aggregate_per_key() -> None:
    builder = StreamsBuilder()
    grouped = builder.stream("amounts", value_serde=Serdes.long()).group_by_key()
    grouped.reduce(lambda a, b: a + b, Materialized(store_name="sums", store_type="in_memory")).to_stream().to("sums")
    grouped.aggregate(
        lambda: {"n": 0, "max": None},
        lambda key, value, agg: {"n": agg["n"] + 1, "max": value if agg["max"] is None else max(agg["max"], value)},
        Materialized(store_name="stats", value_serde=Serdes.json()),
    ).to_stream().to("stats", value_serde=Serdes.json())
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for key, amount in [("a", 5), ("b", 1), ("a", 7), ("a", None), (None, 3)]:
            driver.pipe_input("amounts", key, amount, timestamp=0)
        assert pairs(driver.read_output("sums")) == [("a", 5), ("b", 1), ("a", 12)]
        assert driver.read_output("stats")[-1].value == {"n": 2, "max": 7}
        assert driver.get_key_value_store("stats").get("a") == {"n": 2, "max": 7}
        assert driver.metrics()["dropped-records-total"] == 4  # null value and null key, in each aggregation


def test_ktable_filter_map_values_to_stream() -> None:
    builder = StreamsBuilder()
    table = builder.table("prices", value_serde=Serdes.long(), materialized=Materialized(store_name="prices"))
    table.filter(lambda k, v: v >= 10).map_values(lambda v: v * 2).to_stream().to("expensive", value_serde=Serdes.long())
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("prices", "apple", 5, timestamp=0)  # filtered out; nothing was there: no delete
        driver.pipe_input("prices", "pear", 20, timestamp=1)
        driver.pipe_input("prices", "pear", 3, timestamp=2)  # falls below: a delete downstream
        driver.pipe_input("prices", "fig", 11, timestamp=3)
        driver.pipe_input("prices", "fig", None, timestamp=4)  # tombstone
        assert pairs(driver.read_output("expensive")) == [("pear", 40), ("pear", None), ("fig", 22), ("fig", None)]
        assert driver.get_key_value_store("prices").all() == [("apple", 5), ("pear", 3)]


def test_aggregation_forwards_changes() -> None:
    changes: list[Any] = []
    builder = StreamsBuilder()
    table = builder.stream("in").group_by_key().count()
    table._builder.add("CAPTURE", lambda: Capture(changes), [table.node])
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("in", "k", "x", timestamp=0)
        driver.pipe_input("in", "k", "y", timestamp=0)
    assert [r.value for r in changes] == [Change(1, None), Change(2, 1)]


def test_output_topic_that_is_also_a_source_is_piped_back() -> None:
    builder = StreamsBuilder()
    builder.stream("a").map_values(lambda v: v + "-a").to("b")
    builder.stream("b").map_values(lambda v: v + "-b").to("c")
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("a", "k", "v", timestamp=0)
        assert pairs(driver.read_output("c")) == [("k", "v-a-b")]
        assert driver.read_output("c") == []


def test_wall_clock_time_stamps_records_without_a_timestamp() -> None:
    builder = StreamsBuilder()
    builder.stream("in").to("out")
    with TopologyTestDriver(builder.build(), STRINGS, initial_wall_clock_time_ms=1_000) as driver:
        driver.pipe_input("in", "k", "v")
        driver.advance_wall_clock_time(500)
        driver.pipe_input("in", "k", "w")
        assert [r.timestamp for r in driver.read_output("out")] == [1_000, 1_500]


def test_describe_names_nodes_like_kafka() -> None:
    builder = StreamsBuilder()
    builder.stream("in").filter(lambda k, v: True).to("out")
    assert builder.build().describe().splitlines() == [
        "source in -> KSTREAM-SOURCE-0000000000",
        "KSTREAM-SOURCE-0000000000 -> KSTREAM-FILTER-0000000001",
        "KSTREAM-FILTER-0000000001 -> KSTREAM-SINK-0000000002",
        "KSTREAM-SINK-0000000002 -> (none)",
    ]


@pytest.mark.parametrize("cache_bytes", [0, 1 << 20])
def test_a_tombstone_for_a_key_the_table_does_not_hold_is_not_forwarded(cache_bytes: int) -> None:
    """As Kafka Streams with its default record cache (CachingKeyValueStore forwards only a
    change with a new or an old value); the same with tomyum's cache on or off."""
    builder = StreamsBuilder()
    builder.table("t").to_stream().to("out")
    config = StreamsConfig(default_key_serde=Serdes.string(), default_value_serde=Serdes.string(),
                           statestore_cache_max_bytes=cache_bytes)
    with TopologyTestDriver(builder.build(), config) as driver:
        driver.pipe_input("t", "ghost", None, timestamp=1)
        driver.pipe_input("t", "k", "v", timestamp=2)
        driver.pipe_input("t", "k", None, timestamp=3)
        driver.pipe_input("t", "k", None, timestamp=4)   # already deleted
        assert [(r.key, r.value, r.timestamp) for r in driver.read_output("out")] == [("k", "v", 2), ("k", None, 3)]
