"""The record cache in front of window and session stores (Kafka's ``CachingWindowStore`` and
``CachingSessionStore``): a windowed aggregation's writes to one window between commits
become one changelog record and one downstream update, and at every commit (after each input
record in the test driver) stores, changelogs and outputs equal those without a cache —
checked on a skewed workload and on seeded random inputs for every kind of window."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tomyum.streams import (EmitStrategy, Materialized, Serdes, SessionWindows, SlidingWindows, StreamsBuilder,
                            StreamsConfig, TimeWindows, TopologyTestDriver)

WINDOWS: dict[str, Any] = {
    "tumbling": TimeWindows.of_size_and_grace(10, 5),
    "hopping": TimeWindows.of_size_and_grace(20, 5).advance_by(5),
    "sliding": SlidingWindows.of_time_difference_and_grace(10, 5),
    "session": SessionWindows.of_inactivity_gap_and_grace(3, 5),
}


def windowed_word_count(windows: Any, emit_final: bool) -> Any:
    builder = StreamsBuilder()
    grouped = builder.stream("text").flat_map_values(str.split).group_by(lambda key, word: word).windowed_by(windows)
    if emit_final:
        grouped = grouped.emit_strategy(EmitStrategy.on_window_close())
    (grouped.count(Materialized(store_name="per-window"))
        .to_stream().map(lambda w, n: (f"{w.key}@{w.window.start_ms}-{w.window.end_ms}", n))
        .to("out", value_serde=Serdes.long()))
    return builder.build()


def run(windows: Any, cache_bytes: int, lines: list[tuple[str, int]], emit_final: bool = False) -> dict[str, Any]:
    config = StreamsConfig(default_key_serde=Serdes.string(), default_value_serde=Serdes.string(),
                           statestore_cache_max_bytes=cache_bytes)
    with TopologyTestDriver(windowed_word_count(windows, emit_final), config) as driver:
        for line, timestamp in lines:
            driver.pipe_input("text", None, line, timestamp=timestamp)
        store = (driver.get_session_store if isinstance(windows, SessionWindows) else driver.get_window_store)(
            "per-window")
        changelog = driver.read_changelog("per-window")
        return {
            "store": store.all(),
            "out": [(r.key, r.value) for r in driver.read_output("out")],
            "changelog": len(changelog),
            "logged": {c.key: c.value for c in changelog},  # what the compacted changelog keeps
        }


def skewed_lines(rng: random.Random, count: int, jitter: int) -> list[tuple[str, int]]:
    words = [f"w{i}" for i in range(20)]
    weights = [1 / (i + 1) ** 1.5 for i in range(20)]  # a few hot words
    return [(" ".join(rng.choices(words, weights, k=rng.randint(1, 20))), max(0, i - rng.randint(0, jitter)))
            for i in range(count)]


def live(mapping: dict[Any, Any]) -> dict[Any, Any]:
    """Without what was removed (a session merged away): the cache may never write those."""
    return {k: v for k, v in mapping.items() if v is not None}


def test_a_windowed_count_writes_fewer_changelog_records_and_commits_the_same_results() -> None:
    lines = skewed_lines(random.Random(7), 80, 0)
    off, on = run(WINDOWS["tumbling"], 0, lines), run(WINDOWS["tumbling"], 1 << 20, lines)
    print(f"tumbling count over {sum(len(line.split()) for line, _ in lines)} words: changelog records "
          f"{off['changelog']} without the cache, {on['changelog']} with it")
    assert on["changelog"] < off["changelog"] // 2
    assert len(on["out"]) == on["changelog"] < len(off["out"])  # one update per changelog write
    assert on["store"] == off["store"] and on["logged"] == off["logged"]
    assert dict(on["out"]) == dict(off["out"])


@pytest.mark.parametrize("cache_bytes", [1, 64, 1 << 20])
@pytest.mark.parametrize("kind", sorted(WINDOWS))
def test_committed_windowed_results_equal_those_without_a_cache(kind: str, cache_bytes: int) -> None:
    """Seeded random skewed lines, out of order (some late beyond grace): with the cache the
    stores and compacted changelogs equal those without, each window's last update is the
    same, and each window's updates are some of those without, in order."""
    for seed in range(3):
        lines = skewed_lines(random.Random(seed), 40, 12)
        off, on = run(WINDOWS[kind], 0, lines), run(WINDOWS[kind], cache_bytes, lines)
        assert on["store"] == off["store"], seed
        assert live(on["logged"]) == live(off["logged"]), seed
        assert live(dict(on["out"])) == live(dict(off["out"])), seed
        assert on["changelog"] <= off["changelog"]
        for window in {k for k, _ in off["out"]}:
            without = iter(n for k, n in off["out"] if k == window)
            assert all(n in without for k, n in on["out"] if k == window), (seed, window)


@pytest.mark.parametrize("kind", sorted(WINDOWS))
def test_emit_final_forwards_the_same_results_behind_the_cache(kind: str) -> None:
    lines = skewed_lines(random.Random(3), 60, 4)
    off = run(WINDOWS[kind], 0, lines, emit_final=True)
    on = run(WINDOWS[kind], 1 << 20, lines, emit_final=True)
    assert off["out"] and on["out"] == off["out"]
    assert on["store"] == off["store"]
