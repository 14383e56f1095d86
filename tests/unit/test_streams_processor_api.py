"""The Processor API: KStream.process with state stores and punctuators on stream time and
wall-clock time; and the pinned export list of tomyum.streams."""

from __future__ import annotations

from typing import Any

import pytest

import tomyum.streams
from tomyum.streams import (
    Cancellable,
    Materialized,
    Processor,
    ProcessorContext,
    PunctuationType,
    Record,
    Serdes,
    StreamsBuilder,
    StreamsConfig,
    TopologyTestDriver,
)
from tomyum.streams.state import KeyValueStore


class CountAndReport(Processor):
    """Counts per key; every 10 ms of stream time forwards all counts; every second of
    wall-clock time forwards a tick, until cancelled after the second one."""

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store: KeyValueStore[str, int] = context.get_state_store("seen")
        context.schedule(10, PunctuationType.STREAM_TIME, self.report)
        self.ticks = 0
        self.ticker: Cancellable = context.schedule(1_000, PunctuationType.WALL_CLOCK_TIME, self.tick)

    def process(self, record: Record[Any, Any]) -> None:
        self.store.put(record.key, (self.store.get(record.key) or 0) + 1, record.timestamp)

    def report(self, stream_time_ms: int) -> None:
        for key, count in self.store.all():
            self.context.forward(Record(key=key, value=f"{count}@{stream_time_ms}", timestamp=stream_time_ms))

    def tick(self, wall_clock_ms: int) -> None:
        self.ticks += 1
        self.context.forward(Record(key="tick", value=str(wall_clock_ms), timestamp=wall_clock_ms))
        if self.ticks == 2:
            self.ticker.cancel()


def build() -> StreamsBuilder:
    builder = StreamsBuilder()
    store = builder.add_state_store(Materialized(store_name="seen", key_serde=Serdes.string(), value_serde=Serdes.long()))
    builder.stream("events").process(CountAndReport, stores=[store]).to("report")
    return builder


STRINGS = StreamsConfig(default_key_serde=Serdes.string(), default_value_serde=Serdes.string())


def test_stream_time_punctuation_is_aligned_to_zero_and_skips_missed_intervals() -> None:
    with TopologyTestDriver(build().build(), STRINGS) as driver:
        driver.pipe_input("events", "a", "x", timestamp=3)  # first due at 0: fires at once
        driver.pipe_input("events", "b", "x", timestamp=9)  # next due at 10
        driver.pipe_input("events", "a", "x", timestamp=25)  # fires once; next due at 30
        driver.pipe_input("events", "a", "x", timestamp=29)
        driver.pipe_input("events", "a", "x", timestamp=12)  # stream time does not go back
        assert [(r.key, r.value) for r in driver.read_output("report")] == [
            ("a", "1@3"), ("a", "2@25"), ("b", "1@25")
        ]
        assert driver.get_key_value_store("seen").get("a") == 4


def test_wall_clock_punctuation_and_cancel() -> None:
    with TopologyTestDriver(build().build(), STRINGS) as driver:
        driver.advance_wall_clock_time(999)
        assert driver.read_output("report") == []
        driver.advance_wall_clock_time(1)
        driver.advance_wall_clock_time(2_500)  # missed 2000 and 3000: fires once
        driver.advance_wall_clock_time(10_000)  # cancelled after the second tick
        assert [(r.key, r.value) for r in driver.read_output("report")] == [("tick", "1000"), ("tick", "3500")]
        with pytest.raises(ValueError):
            driver.advance_wall_clock_time(-1)


def test_process_needs_declared_stores() -> None:
    builder = StreamsBuilder()
    with pytest.raises(ValueError, match="add_state_store"):
        builder.stream("in").process(CountAndReport, stores=["missing"])
    with pytest.raises(ValueError, match="store_name"):
        builder.add_state_store(Materialized())


def test_public_names_are_pinned() -> None:
    assert tomyum.streams.__all__ == [
        "BranchedKStream", "BufferConfig", "Cancellable", "Change", "EmitStrategy", "Headers", "JoinWindows", "KGroupedStream", "KGroupedTable",
        "KStream", "KTable",
        "Materialized", "Processor", "ProcessorContext", "PunctuationType", "Punctuator", "Record",
        "RecordTimestampExtractor", "Serde", "Serdes", "SessionWindowedKStream", "SessionWindows",
        "SlidingWindowedKStream", "SlidingWindows", "StreamsBuilder", "StreamsConfig", "Suppressed",
        "TimeWindowedKStream", "TimeWindows", "TimestampExtractor", "Topology", "TopologyError", "TopologyTestDriver",
        "Window", "Windowed",
    ]
    assert all(hasattr(tomyum.streams, name) for name in tomyum.streams.__all__)
