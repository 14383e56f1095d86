"""Emit-final windowed aggregations (KIP-825, ``EmitStrategy.on_window_close``): nothing
while a window is open, its final result once when it closes; checked against the same
aggregation emitting every update, on seeded random inputs."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.unit.test_streams_dsl import Capture
from tomyum.streams import (
    EmitStrategy,
    Record,
    Serdes,
    SessionWindows,
    SlidingWindows,
    StreamsBuilder,
    StreamsConfig,
    TimeWindows,
    TopologyTestDriver,
    Windowed,
)

STRINGS = StreamsConfig(default_key_serde=Serdes.string(), default_value_serde=Serdes.string())
Windows = TimeWindows | SlidingWindows | SessionWindows


def counts(windows: Windows, strategy: EmitStrategy, sink: list[Record[Any, Any]]) -> StreamsBuilder:
    builder = StreamsBuilder()
    windowed = builder.stream("clicks").group_by_key().windowed_by(windows)  # type: ignore[call-overload]
    windowed.emit_strategy(strategy).count().to_stream().process(lambda: Capture(sink))
    return builder


def run(windows: Windows, strategy: EmitStrategy, inputs: list[tuple[str, int]]) -> list[Record[Any, Any]]:
    sink: list[Record[Any, Any]] = []
    with TopologyTestDriver(counts(windows, strategy, sink).build(), STRINGS) as driver:
        for key, timestamp in inputs:
            driver.pipe_input("clicks", key, "x", timestamp=timestamp)
    return sink


def test_tumbling_windows_emit_once_when_closed() -> None:
    sink = run(TimeWindows.of_size_and_grace(10, 2), EmitStrategy.on_window_close(),
               [("b", 1), ("a", 5), ("a", 7), ("a", 11), ("b", 8), ("a", 12)])
    # stream time 12 closes [0, 10) (end 10 <= 12 - grace 2): its windows, in start then key order,
    # each stamped with its latest record's time; the late-but-in-grace b@8 is counted.
    assert [(r.key.key, r.key.window.start_ms, r.value, r.timestamp) for r in sink] == [
        ("a", 0, 2, 7), ("b", 0, 2, 8)]


def test_on_window_update_is_the_default() -> None:
    inputs = [("a", 1), ("a", 2), ("a", 30)]
    assert len(run(TimeWindows.of_size_with_no_grace(10), EmitStrategy.on_window_update(), inputs)) == 3


def test_a_late_record_changes_nothing_emitted() -> None:
    sink = run(TimeWindows.of_size_with_no_grace(10), EmitStrategy.on_window_close(),
               [("a", 1), ("a", 10), ("a", 3), ("a", 20)])
    assert [(r.key.window.start_ms, r.value) for r in sink] == [(0, 1), (10, 1)]


def test_sessions_emit_only_the_merged_final_session() -> None:
    sink = run(SessionWindows.of_inactivity_gap_and_grace(5, 1), EmitStrategy.on_window_close(),
               [("a", 0), ("a", 3), ("a", 8), ("a", 14), ("a", 15)])
    # [0, 8] closes once its end is before stream time - gap - grace: 8 < 15 - 6
    assert [(r.key.window.start_ms, r.key.window.end_ms, r.value, r.timestamp) for r in sink] == [(0, 8, 3, 8)]


def final_by_reference(updates: list[Record[Any, Any]], windows: Windows, stream_time: int) -> dict[Any, Any]:
    """The last update of every window the update stream leaves alive and ``stream_time`` has closed."""
    alive: dict[Windowed[Any], tuple[Any, int]] = {}
    for r in updates:
        if r.value is None:
            alive.pop(r.key, None)
        else:
            alive[r.key] = (r.value, r.timestamp)
    if isinstance(windows, TimeWindows):
        closed = lambda end: end <= stream_time - windows.grace_ms  # noqa: E731
    elif isinstance(windows, SlidingWindows):
        closed = lambda end: end < stream_time - windows.grace_ms  # noqa: E731
    else:
        closed = lambda end: end < stream_time - windows.grace_ms - windows.inactivity_gap_ms  # noqa: E731
    return {key: found for key, found in alive.items() if closed(key.window.end_ms)}


@pytest.mark.parametrize("windows", [
    TimeWindows.of_size_and_grace(10, 3).advance_by(4),
    TimeWindows.of_size_with_no_grace(7),
    SlidingWindows.of_time_difference_and_grace(6, 4),
    SessionWindows.of_inactivity_gap_and_grace(4, 3),
], ids=["hopping", "tumbling", "sliding", "session"])
@pytest.mark.parametrize("seed", range(8))
def test_final_results_are_the_last_update_of_each_closed_window(windows: Windows, seed: int) -> None:
    rng = random.Random(seed)
    inputs, now = [], 0
    for _ in range(150):
        now += rng.randint(0, 3)
        inputs.append((rng.choice("abc"), max(0, now - rng.randint(0, 12))))  # some out of order, some late
    final = run(windows, EmitStrategy.on_window_close(), inputs)
    expected = final_by_reference(run(windows, EmitStrategy.on_window_update(), inputs), windows,
                                  max(t for _, t in inputs))
    assert len(final) == len({r.key for r in final})  # each window once
    assert {r.key: (r.value, r.timestamp) for r in final} == expected
    ends = [r.key.window.end_ms for r in final]
    assert ends == sorted(ends)  # each emission in window order, and emissions in stream-time order
