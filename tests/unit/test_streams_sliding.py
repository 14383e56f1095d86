"""Sliding-window aggregations (KIP-450) and closing an idle stream's windows with a
wall-clock punctuator.

The expected windows are worked out by hand from Kafka's definition, with ``d`` the time
difference: a record at ``t`` has a left window ``[t - d, t]`` holding every record in that
range, and, when later records fall within ``(t, t + 1 + d]``, a right window
``[t + 1, t + 1 + d]`` holding those; records before ``d`` share the window ``[0, d]``.
Both ends of a window are included; a window closes once ``end + grace < stream time``.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import pytest

from tests.unit.test_streams_windows import STRINGS, windowed_to_strings
from tomyum.streams import (
    KTable,
    Materialized,
    Record,
    Serdes,
    SlidingWindows,
    StreamsBuilder,
    Suppressed,
    TimeWindows,
    TopologyTestDriver,
    Window,
    Windowed,
)

StoreType = Literal["persistent", "in_memory"]


def sliding(builder: StreamsBuilder, d: int, grace_ms: int, value_serde: Any = None) -> Any:
    return (
        builder.stream("events", value_serde=value_serde)
        .group_by_key()
        .windowed_by(SlidingWindows.of_time_difference_and_grace(d, grace_ms))
    )


def windows_of(driver: TopologyTestDriver, store_name: str) -> list[tuple[str, int, int, Any]]:
    return [(w.key, w.window.start_ms, w.window.end_ms, v) for w, v in driver.get_window_store(store_name).all()]


def updates(records: list[Record[Any, Any]]) -> list[tuple[str, Any]]:
    return [(r.key, r.value) for r in records]


def test_sliding_windows_validate_and_size_their_retention() -> None:
    windows = SlidingWindows.of_time_difference_and_grace(10, 5)
    assert (windows.time_difference_ms, windows.grace_ms, windows.size_ms) == (10, 5, 10)
    assert SlidingWindows.of_time_difference_and_grace(10, 5) == windows
    assert SlidingWindows.of_time_difference_with_no_grace(10).grace_ms == 0
    assert SlidingWindows.of_time_difference_with_no_grace(0).time_difference_ms == 0  # Kafka allows 0
    # a record 10 + 5 behind stream time is still admitted and reads windows from 2 × 10
    # before itself: 35 behind stream time, so 36 ms of starts are kept
    assert windows.retention_ms == 36
    with pytest.raises(ValueError, match="time_difference_ms"):
        SlidingWindows.of_time_difference_and_grace(-1, 0)
    with pytest.raises(ValueError, match="grace_ms"):
        SlidingWindows.of_time_difference_and_grace(10, -1)
    with pytest.raises(ValueError, match="idle_close_ms"):
        Suppressed.until_window_closes(idle_close_ms=0)
    with pytest.raises(ValueError, match="retention_ms"):
        sliding(StreamsBuilder(), 10, 5).count(Materialized(retention_ms=35))


@pytest.mark.parametrize("store_type", ["persistent", "in_memory"])
def test_sliding_counts_are_kafkas_javadoc_example(store_type: StoreType) -> None:
    """SlidingWindows' javadoc: d = 5000 and records at 8000, 9200, 12400 make exactly five
    windows: [3000,8000] {1}, [4200,9200] {1,2}, [7400,12400] {1,2,3}, [8001,13001] {2,3},
    [9201,14201] {3}."""
    builder = StreamsBuilder()
    table = sliding(builder, 5000, 0).count(Materialized(store_name="counts", store_type=store_type))
    table.to_stream().to("out", key_serde=Serdes.time_windowed(Serdes.string(), 5000), value_serde=Serdes.long())
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for ts in (8000, 9200, 12400):
            driver.pipe_input("events", "A", "x", timestamp=ts)
        out = driver.read_output("out")
        assert [(r.key.window.start_ms, r.key.window.end_ms, r.value) for r in out] == [
            (3000, 8000, 1),  # 8000: its left window
            (8001, 13001, 1), (4200, 9200, 2),  # 9200: 8000's right window, then its left window
            # 12400: joins [8001,13001]; 9200's right window; its left window
            (8001, 13001, 2), (9201, 14201, 1), (7400, 12400, 3),
        ]
        assert all(r.key.key == "A" for r in out)
        assert windows_of(driver, "counts") == [
            ("A", 3000, 8000, 1), ("A", 4200, 9200, 2), ("A", 7400, 12400, 3),
            ("A", 8001, 13001, 2), ("A", 9201, 14201, 1),
        ]
        assert driver.get_window_store("counts").fetch("A", 7400) == 3


def test_sliding_aggregate_with_out_of_order_and_early_records() -> None:
    """d = 10; a@20, b@35, then c@28 out of order, then d@5 before the time difference.
    Windows: [0,10] {d}; [10,20] {a}; [18,28] {a,c}; [21,31] {c} (20's right window);
    [25,35] {b,c}; [29,39] {b} (28's right window: the later b, not c itself)."""
    builder = StreamsBuilder()
    table = sliding(builder, 10, 100).aggregate(
        lambda: [], lambda key, value, agg: [*agg, value], Materialized(store_name="lists", value_serde=Serdes.json())
    )
    table.to_stream().map(windowed_to_strings).to("out", value_serde=Serdes.json())
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for value, ts in [("a", 20), ("b", 35), ("c", 28), ("d", 5)]:
            driver.pipe_input("events", "k", value, timestamp=ts)
        out = driver.read_output("out")
        assert updates(out) == [
            ("k@10-20", ["a"]),
            ("k@25-35", ["b"]),
            ("k@25-35", ["b", "c"]), ("k@21-31", ["c"]), ("k@18-28", ["a", "c"]), ("k@29-39", ["b"]),
            ("k@0-10", ["d"]),
        ]
        # each update carries the latest record time of its window, as in Kafka
        assert [r.timestamp for r in out[2:6]] == [35, 28, 28, 35]
        assert windows_of(driver, "lists") == [
            ("k", 0, 10, ["d"]), ("k", 10, 20, ["a"]), ("k", 18, 28, ["a", "c"]), ("k", 21, 31, ["c"]),
            ("k", 25, 35, ["b", "c"]), ("k", 29, 39, ["b"]),
        ]


def test_records_before_the_time_difference_share_the_first_window() -> None:
    """d = 10; records at 2, 7, 4, then 15. [0,10] holds 2, 4, 7; the right windows are
    [3,13] {4,7}, [5,15] {7,15} (also 15's left window) and [8,18] {15}."""
    builder = StreamsBuilder()
    sliding(builder, 10, 100).count(Materialized(store_name="counts"))
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for ts in (2, 7, 4, 15):
            driver.pipe_input("events", "a", "x", timestamp=ts)
        assert windows_of(driver, "counts") == [
            ("a", 0, 10, 3), ("a", 3, 13, 2), ("a", 5, 15, 2), ("a", 8, 18, 1),
        ]


def test_sliding_reduce_sums_each_window() -> None:
    """d = 10; 3@10, 4@15, 5@25: [0,10] 3; [5,15] 3+4; [11,21] 4 (10's right window);
    [15,25] 4+5; [16,26] 5 (15's right window)."""
    builder = StreamsBuilder()
    sliding(builder, 10, 0, value_serde=Serdes.long()).reduce(lambda a, b: a + b, Materialized(store_name="sums"))
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for value, ts in [(3, 10), (4, 15), (5, 25)]:
            driver.pipe_input("events", "a", value, timestamp=ts)
        assert windows_of(driver, "sums") == [
            ("a", 0, 10, 3), ("a", 5, 15, 7), ("a", 11, 21, 4), ("a", 15, 25, 9), ("a", 16, 26, 5),
        ]


def test_a_window_both_right_and_left_window_is_made_once() -> None:
    """d = 5; 0, 5, 11: [6,11] is 5's right window and 11's left window. Kafka, without a
    record cache, forwards it twice with the same value; here it is made and forwarded once."""
    builder = StreamsBuilder()
    sliding(builder, 5, 0).count().to_stream().map(windowed_to_strings).to("out", value_serde=Serdes.long())
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for ts in (0, 5, 11):
            driver.pipe_input("events", "a", "x", timestamp=ts)
        assert updates(driver.read_output("out")) == [("a@0-5", 1), ("a@0-5", 2), ("a@1-6", 1), ("a@6-11", 1)]


def test_grace_admits_late_records_and_drops_closed_windows() -> None:
    """d = 10, grace 5: a window closes once end < stream time - 5; a record whose windows
    would all be closed (t + d < stream time - 5) is dropped whole; otherwise each closed
    window it belongs in is skipped and counted, as Kafka does."""
    builder = StreamsBuilder()
    sliding(builder, 10, 5).count(Materialized(store_name="counts"))
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("events", "a", "x", timestamp=100)  # [90,100] {100}; closes after 105
        driver.pipe_input("events", "a", "x", timestamp=92)  # joins [90,100]; [82,92] closed (1); [93,103] {100}
        driver.pipe_input("events", "a", "x", timestamp=84)  # 84 + 10 < 95: dropped whole (2)
        assert driver.metrics()["dropped-records-total"] == 2
        driver.pipe_input("events", "a", "x", timestamp=106)  # [96,106] {100,106}; [101,111] {106}
        # stream time 106: [90,100] is closed now, [93,103] is not
        driver.pipe_input("events", "a", "x", timestamp=99)  # joins [93,103] and [96,106]; [90,100] and
        #                                                      its left window [89,99] closed (3, 4);
        #                                                      its right window [100,110] {100,106}
        assert driver.metrics()["dropped-records-total"] == 4
        driver.pipe_input("events", "a", "x", timestamp=90)  # 90 + 10 < 101: dropped whole, no right window (5)
        assert driver.metrics()["dropped-records-total"] == 5
        assert windows_of(driver, "counts") == [
            ("a", 90, 100, 2), ("a", 93, 103, 2), ("a", 96, 106, 3), ("a", 100, 110, 2), ("a", 101, 111, 1),
        ]


def suppressed_counts(builder: StreamsBuilder, d: int, grace_ms: int, suppressed: Suppressed) -> KTable[Any, Any]:
    table: KTable[Any, Any] = sliding(builder, d, grace_ms).count().suppress(suppressed)
    table.to_stream().map(windowed_to_strings).to("final", value_serde=Serdes.long())
    return table


def test_suppress_emits_each_sliding_window_once_when_it_closes() -> None:
    builder = StreamsBuilder()
    suppressed_counts(builder, 10, 0, Suppressed.until_window_closes())
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for ts in (0, 5, 10):  # [0,10] {0,5,10}; [1,11] {5,10}; [6,16] {10}
            driver.pipe_input("events", "a", "x", timestamp=ts)
        # stream time 10 = end of [0,10] + grace: the window is still open (ends are inclusive)...
        driver.pipe_input("events", "a", "x", timestamp=10)
        assert driver.read_output("final") == []
        # ...and closes at 11, with the second record at 10 counted
        driver.pipe_input("events", "a", "x", timestamp=11)
        assert updates(driver.read_output("final")) == [("a@0-10", 4)]
        driver.pipe_input("events", "a", "x", timestamp=30)
        assert updates(driver.read_output("final")) == [("a@1-11", 4), ("a@6-16", 3), ("a@11-21", 1)]
        driver.pipe_input("events", "a", "x", timestamp=9)  # late: dropped, nothing emitted again
        assert driver.read_output("final") == []
        assert driver.metrics()["dropped-records-total"] == 1


def test_idle_close_punctuator_emits_windows_of_an_idle_stream() -> None:
    """d = 10, grace 5: [90,100] closes at stream time 106. No record comes after 103; the
    punctuator (every 1000 ms of wall-clock time) moves the suppression's stream time on by
    the wall-clock time elapsed since the last record, once that is at least 1000 ms."""
    builder = StreamsBuilder()
    suppressed_counts(builder, 10, 5, Suppressed.until_window_closes(idle_close_ms=1000))
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("events", "a", "x", timestamp=100)
        driver.advance_wall_clock_time(500)
        driver.pipe_input("events", "a", "x", timestamp=103)  # at wall-clock 500
        driver.advance_wall_clock_time(500)  # the punctuator fires, but the stream was idle for 500 ms only
        assert driver.read_output("final") == []
        driver.advance_wall_clock_time(1000)  # idle for 1500 ms: stream time 103 + 1500
        assert updates(driver.read_output("final")) == [("a@90-100", 1), ("a@93-103", 2), ("a@101-111", 1)]
        driver.advance_wall_clock_time(5000)
        assert driver.read_output("final") == []  # each window once


def test_idle_close_moves_stream_time_by_the_idle_time_only() -> None:
    builder = StreamsBuilder()
    suppressed_counts(builder, 10, 5, Suppressed.until_window_closes(idle_close_ms=2))
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("events", "a", "x", timestamp=100)  # [90,100] closes at stream time 106
        driver.advance_wall_clock_time(2)
        driver.advance_wall_clock_time(2)  # stream time 104
        assert driver.read_output("final") == []
        driver.advance_wall_clock_time(2)  # stream time 106
        assert updates(driver.read_output("final")) == [("a@90-100", 1)]


def test_without_idle_close_windows_of_an_idle_stream_stay_open() -> None:
    builder = StreamsBuilder()
    suppressed_counts(builder, 10, 5, Suppressed.until_window_closes())
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("events", "a", "x", timestamp=100)
        driver.advance_wall_clock_time(3_600_000)
        assert driver.read_output("final") == []
        driver.pipe_input("events", "b", "x", timestamp=106)
        assert updates(driver.read_output("final")) == [("a@90-100", 1)]


def test_idle_close_works_for_time_windows_too() -> None:
    builder = StreamsBuilder()
    (
        builder.stream("events")
        .group_by_key()
        .windowed_by(TimeWindows.of_size_and_grace(10, 0))
        .count()
        .suppress(Suppressed.until_window_closes(idle_close_ms=100))
        .to_stream()
        .map(windowed_to_strings)
        .to("final", value_serde=Serdes.long())
    )
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("events", "a", "x", timestamp=3)
        driver.advance_wall_clock_time(100)  # stream time 103: [0,10) closed
        assert updates(driver.read_output("final")) == [("a@0-10", 1)]


def test_a_restored_sliding_store_keeps_each_windows_latest_record_time() -> None:
    """The third record of the javadoc example needs the time of the latest record before
    it (9200, kept with window [4200,9200]) to make 9200's right window; the changelog
    carries it."""

    def build() -> Any:
        builder = StreamsBuilder()
        table = sliding(builder, 5000, 0).count(Materialized(store_name="counts"))
        table.to_stream().map(windowed_to_strings).to("out", value_serde=Serdes.long())
        return builder.build()

    with TopologyTestDriver(build(), STRINGS) as first:
        for ts in (8000, 9200):
            first.pipe_input("events", "A", "x", timestamp=ts)
        changelog = [(c.key, c.value) for c in first.read_changelog("counts")]
    with TopologyTestDriver(build(), STRINGS) as second:
        second.get_window_store("counts").restore(changelog)
        assert windows_of(second, "counts") == [("A", 3000, 8000, 1), ("A", 4200, 9200, 2), ("A", 8001, 13001, 1)]
        second.pipe_input("events", "A", "x", timestamp=12400)
        assert updates(second.read_output("out")) == [("A@8001-13001", 2), ("A@9201-14201", 1), ("A@7400-12400", 3)]
        fetched = second.get_window_store("counts").fetch_with_timestamp("A", 4200)
        assert fetched is not None and (fetched.value, fetched.timestamp) == (2, 9200)


def test_windowed_keys_of_sliding_results() -> None:
    builder = StreamsBuilder()
    table = sliding(builder, 10, 0).count()
    assert table.store_name is not None
    table.to_stream().to("out", key_serde=Serdes.time_windowed(Serdes.string(), 10), value_serde=Serdes.long())
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("events", "a", "x", timestamp=50)
        assert [(r.key, r.value) for r in driver.read_output("out")] == [(Windowed("a", Window(40, 50)), 1)]


def kafkas_windows(timestamps: list[int], d: int) -> dict[int, int]:
    """Window start → record count, straight from the definition in the module docstring."""
    windows: dict[int, int] = {}
    for t in timestamps:
        start = max(0, t - d)
        windows[start] = sum(start <= x <= start + d for x in timestamps)
        later = sum(t < x <= t + 1 + d for x in timestamps)
        if later:
            windows[t + 1] = later
    return windows


def test_any_arrival_order_makes_the_windows_of_the_definition() -> None:
    """Out of order, duplicated, early records, d = 0: with a grace period long enough for
    every record, the store holds exactly the windows of the definition."""
    rnd = random.Random(450)
    for _ in range(300):
        d = rnd.choice([0, 1, 3, 10])
        timestamps = [rnd.randint(0, 40) for _ in range(rnd.randint(1, 8))]
        builder = StreamsBuilder()
        sliding(builder, d, 1000).count(Materialized(store_name="counts", store_type="in_memory"))
        with TopologyTestDriver(builder.build(), STRINGS) as driver:
            for ts in timestamps:
                driver.pipe_input("events", "a", "x", timestamp=ts)
            got = {start: count for _, start, _, count in windows_of(driver, "counts")}
        assert got == kafkas_windows(timestamps, d), (d, timestamps)
