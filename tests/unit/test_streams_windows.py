"""Windowed aggregations on stream time: window boundaries, grace, late records, session
merging, and suppression of all but final results."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_streams_dsl import Capture
from tomyum.streams import (
    Materialized,
    Record,
    Serdes,
    SessionWindows,
    StreamsBuilder,
    StreamsConfig,
    Suppressed,
    TimeWindows,
    TopologyTestDriver,
    Window,
    Windowed,
)

STRINGS = StreamsConfig(default_key_serde=Serdes.string(), default_value_serde=Serdes.string())


def flat(records: list[Record[Any, Any]]) -> list[tuple[str, int, int, Any]]:
    """(key, window start, window end, value) of records keyed by ``Windowed``."""
    return [(r.key.key, r.key.window.start_ms, r.key.window.end_ms, r.value) for r in records]


def windowed_to_strings(key: Windowed[str], value: Any) -> tuple[str, Any]:
    return f"{key.key}@{key.window.start_ms}-{key.window.end_ms}", value


def test_windows_for_tumbling_and_hopping() -> None:
    tumbling = TimeWindows.of_size_with_no_grace(10)
    assert tumbling.windows_for(0) == [Window(0, 10)]
    assert tumbling.windows_for(9) == [Window(0, 10)]
    assert tumbling.windows_for(10) == [Window(10, 20)]
    hopping = TimeWindows.of_size_and_grace(10, 0).advance_by(5)
    assert hopping.windows_for(3) == [Window(0, 10)]
    assert hopping.windows_for(7) == [Window(0, 10), Window(5, 15)]
    assert hopping.windows_for(10) == [Window(5, 15), Window(10, 20)]
    with pytest.raises(ValueError):
        hopping.advance_by(11)
    with pytest.raises(ValueError):
        TimeWindows.of_size_and_grace(0, 1)


def tumbling_counts(grace_ms: int) -> tuple[StreamsBuilder, str]:
    builder = StreamsBuilder()
    table = (
        builder.stream("clicks")
        .group_by_key()
        .windowed_by(TimeWindows.of_size_and_grace(10, grace_ms))
        .count(Materialized(store_name="clicks-per-10ms"))
    )
    table.to_stream().map(windowed_to_strings).to("counts", value_serde=Serdes.long())
    assert table.store_name == "clicks-per-10ms"
    return builder, table.store_name


def test_tumbling_counts_at_window_boundaries() -> None:
    builder, store_name = tumbling_counts(grace_ms=100)
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for ts in (0, 9, 10, 19, 20):
            driver.pipe_input("clicks", "a", "x", timestamp=ts)
        out = [(r.key, r.value) for r in driver.read_output("counts")]
        assert out == [("a@0-10", 1), ("a@0-10", 2), ("a@10-20", 1), ("a@10-20", 2), ("a@20-30", 1)]
        store = driver.get_window_store(store_name)
        assert store.fetch_range("a", 0, 20) == [(0, 2), (10, 2), (20, 1)]
        assert store.fetch("a", 10) == 2
        assert [(w.window.start_ms, v) for w, v in store.all()] == [(0, 2), (10, 2), (20, 1)]


def test_grace_admits_out_of_order_records_then_drops_late_ones() -> None:
    builder, store_name = tumbling_counts(grace_ms=5)
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("clicks", "a", "x", timestamp=3)
        driver.pipe_input("clicks", "a", "x", timestamp=14)  # stream time 14: [0,10) closes at 15
        driver.pipe_input("clicks", "a", "x", timestamp=8)  # out of order, within grace
        driver.pipe_input("clicks", "a", "x", timestamp=15)  # stream time 15: [0,10) is closed
        driver.pipe_input("clicks", "a", "x", timestamp=9)  # late: dropped
        out = [(r.key, r.value) for r in driver.read_output("counts")]
        assert out == [("a@0-10", 1), ("a@10-20", 1), ("a@0-10", 2), ("a@10-20", 2)]
        assert driver.metrics()["dropped-records-total"] == 1
        assert driver.get_window_store(store_name).fetch_range("a", 0, 100) == [(10, 2)]  # [0,10) retained 15 ms


def test_hopping_windows_count_a_record_in_each_window() -> None:
    builder = StreamsBuilder()
    (
        builder.stream("clicks")
        .group_by_key()
        .windowed_by(TimeWindows.of_size_and_grace(10, 0).advance_by(5))
        .count()
        .to_stream()
        .map(windowed_to_strings)
        .to("counts", value_serde=Serdes.long())
    )
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for ts in (2, 7, 12):
            driver.pipe_input("clicks", "a", "x", timestamp=ts)
        driver.pipe_input("clicks", "a", "x", timestamp=4)  # stream time 12: [0,10) closed, so dropped
        out = [(r.key, r.value) for r in driver.read_output("counts")]
        assert out == [("a@0-10", 1), ("a@0-10", 2), ("a@5-15", 1), ("a@5-15", 2), ("a@10-20", 1)]
        assert driver.metrics()["dropped-records-total"] == 1


def test_windowed_reduce_and_aggregate() -> None:
    builder = StreamsBuilder()
    windowed = builder.stream("temps", value_serde=Serdes.double()).group_by_key().windowed_by(
        TimeWindows.of_size_with_no_grace(60_000)
    )
    windowed.reduce(max).to_stream().map(windowed_to_strings).to("max", value_serde=Serdes.double())
    windowed.aggregate(lambda: [], lambda k, v, agg: [*agg, v], Materialized(value_serde=Serdes.json())).to_stream().map(
        windowed_to_strings
    ).to("all", value_serde=Serdes.json())
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for ts, temp in [(0, 20.5), (30_000, 22.0), (59_999, 21.0), (60_000, 19.0)]:
            driver.pipe_input("temps", "room", temp, timestamp=ts)
        assert [(r.key, r.value) for r in driver.read_output("max")][-2:] == [("room@0-60000", 22.0), ("room@60000-120000", 19.0)]
        assert driver.read_output("all")[2].value == [20.5, 22.0, 21.0]


def session_counts(builder: StreamsBuilder, gap_ms: int, grace_ms: int) -> Any:
    return (
        builder.stream("clicks")
        .group_by_key()
        .windowed_by(SessionWindows.of_inactivity_gap_and_grace(gap_ms, grace_ms))
        .count(Materialized(store_name="sessions"))
    )


def test_a_closed_session_is_not_merged_into() -> None:
    builder = StreamsBuilder()
    session_counts(builder, gap_ms=5, grace_ms=0)
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for ts in (0, 3, 12, 8):  # at stream time 12, [0,3] is closed: 8 joins [12,12] only
            driver.pipe_input("clicks", "a", "x", timestamp=ts)
        sessions = driver.get_session_store("sessions").all()
        assert [(w.window.start_ms, w.window.end_ms, v) for w, v in sessions] == [(8, 12, 2)]


def test_session_windows_merge_and_drop_late_records() -> None:
    builder = StreamsBuilder()
    session_counts(builder, gap_ms=5, grace_ms=10)
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("clicks", "a", "x", timestamp=0)
        driver.pipe_input("clicks", "a", "x", timestamp=3)  # joins [0,0]
        driver.pipe_input("clicks", "a", "x", timestamp=12)  # gap > 5: a new session
        driver.pipe_input("clicks", "a", "x", timestamp=8)  # bridges [0,3] and [12,12]
        store = driver.get_session_store("sessions")
        assert [(w.key, w.window.start_ms, w.window.end_ms, v) for w, v in store.all()] == [("a", 0, 12, 4)]
        assert [(w.window.start_ms, v) for w, v in store.find_sessions("a", 12, 100)] == [(0, 4)]
        assert store.find_sessions("a", 13, 100) == []
        driver.pipe_input("clicks", "b", "x", timestamp=30)
        driver.pipe_input("clicks", "b", "x", timestamp=1)  # session [1,1] ends before 30 - grace: late
        assert driver.metrics()["dropped-records-total"] == 1
        assert store.all() == [(Windowed("b", Window(30, 30)), 1)]  # [0,12] is past retention (gap + grace)


def test_session_updates_forward_deletes_for_merged_sessions() -> None:
    builder = StreamsBuilder()
    table = session_counts(builder, gap_ms=5, grace_ms=10)

    seen: list[Record[Any, Any]] = []
    table._builder.add("CAPTURE", lambda: Capture(seen), [table.node])
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for ts in (0, 3, 12, 8):
            driver.pipe_input("clicks", "a", "x", timestamp=ts)
    changes = [(r.key.window.start_ms, r.key.window.end_ms, r.value.new_value, r.value.old_value) for r in seen]
    assert changes == [
        (0, 0, 1, None),
        (0, 0, None, 1), (0, 3, 2, None),
        (12, 12, 1, None),
        (0, 3, None, 2), (12, 12, None, 1), (0, 12, 4, None),
    ]


def test_suppress_emits_each_window_once_when_it_closes() -> None:
    builder = StreamsBuilder()
    (
        builder.stream("clicks")
        .group_by_key()
        .windowed_by(TimeWindows.of_size_and_grace(10, 2))
        .count()
        .suppress(Suppressed.until_window_closes())
        .to_stream()
        .map(windowed_to_strings)
        .to("final", value_serde=Serdes.long())
    )
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for key, ts in [("a", 1), ("a", 2), ("b", 5), ("a", 9), ("a", 10), ("b", 11)]:
            driver.pipe_input("clicks", key, "x", timestamp=ts)
        assert driver.read_output("final") == []  # stream time 11 < 10 + grace 2
        driver.pipe_input("clicks", "a", "x", timestamp=8)  # within grace: counted, still not emitted
        driver.pipe_input("clicks", "a", "x", timestamp=12)  # stream time 12: [0,10) closes
        assert [(r.key, r.value) for r in driver.read_output("final")] == [("a@0-10", 4), ("b@0-10", 1)]
        driver.pipe_input("clicks", "a", "x", timestamp=3)  # late: dropped, nothing re-emitted
        driver.pipe_input("clicks", "c", "x", timestamp=21)
        assert driver.read_output("final") == []
        driver.pipe_input("clicks", "c", "x", timestamp=40)
        assert [(r.key, r.value) for r in driver.read_output("final")] == [
            ("a@10-20", 2), ("b@10-20", 1), ("c@20-30", 1)
        ]
        assert driver.metrics()["dropped-records-total"] == 1


def test_suppress_on_sessions_waits_for_gap_and_grace() -> None:
    builder = StreamsBuilder()
    (
        session_counts(builder, gap_ms=5, grace_ms=1)
        .suppress(Suppressed.until_window_closes())
        .to_stream()
        .map(windowed_to_strings)
        .to("final", value_serde=Serdes.long())
    )
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        for ts in (0, 3, 8):  # one session [0,8]; merged-away sessions are never emitted
            driver.pipe_input("clicks", "a", "x", timestamp=ts)
        driver.pipe_input("clicks", "b", "x", timestamp=13)
        assert driver.read_output("final") == []  # 8 + 5 + 1 = 14 > 13
        driver.pipe_input("clicks", "b", "x", timestamp=14)
        assert [(r.key, r.value) for r in driver.read_output("final")] == [("a@0-8", 3)]


def test_suppress_needs_a_windowed_table() -> None:
    builder = StreamsBuilder()
    with pytest.raises(ValueError, match="windowed"):
        builder.stream("in").group_by_key().count().suppress(Suppressed.until_window_closes())


def test_records_with_a_none_key_move_the_task_s_stream_time_but_close_no_window() -> None:
    """Kafka's partition time moves with every record read (RecordQueue), whatever its key, so
    stream-time punctuators fire; an aggregation drops such a record before it observes its
    timestamp (KStreamWindowAggregate), so its windows stay open."""
    from tomyum.streams import Processor, PunctuationType

    fired: list[int] = []

    class Tick(Processor):
        def init(self, context: Any) -> None:
            super().init(context)
            context.schedule(100, PunctuationType.STREAM_TIME, fired.append)

        def process(self, record: Record[Any, Any]) -> None:
            pass

    b = StreamsBuilder()
    clicks = b.stream("clicks")
    clicks.process(Tick)
    (clicks.group_by_key().windowed_by(TimeWindows.of_size_with_no_grace(10)).count().to_stream()
        .to("out", key_serde=Serdes.time_windowed(Serdes.string(), 10), value_serde=Serdes.long()))
    with TopologyTestDriver(b.build(), STRINGS) as driver:
        driver.pipe_input("clicks", "k", "a", timestamp=5)
        driver.pipe_input("clicks", None, "b", timestamp=500)   # dropped by the aggregation
        driver.pipe_input("clicks", "k", "c", timestamp=6)      # its window [0, 10) is still open
        assert [(r.key.window.start_ms, r.value) for r in driver.read_output("out")] == [(0, 1), (0, 2)]
        assert driver.metrics() == {"dropped-records-total": 1}
    assert fired == [5, 500]
