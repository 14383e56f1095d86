"""suppress beyond final results (Kafka's ``KTableSuppressProcessor``): ``until_time_limit``
rate limiting, bounded buffers that emit early or shut down when full, and the rule that
final results need a strict buffer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_streams_dsl import Capture
from tomyum.streams import (
    BufferConfig,
    Record,
    Serdes,
    StreamsBuilder,
    StreamsConfig,
    Suppressed,
    TimeWindows,
    TopologyTestDriver,
)
from tomyum.streams._record import Headers
from tomyum.streams._suppress import SuppressionBufferFullError

STRINGS = StreamsConfig(default_key_serde=Serdes.string(), default_value_serde=Serdes.string())


def suppressed_counts(suppressed: Suppressed, sink: list[Record[Any, Any]]) -> StreamsBuilder:
    builder = StreamsBuilder()
    builder.stream("clicks").group_by_key().count().suppress(suppressed).to_stream().process(lambda: Capture(sink))
    return builder


def run(suppressed: Suppressed, inputs: list[tuple[str, int]]) -> list[tuple[str, int, int]]:
    sink: list[Record[Any, Any]] = []
    with TopologyTestDriver(suppressed_counts(suppressed, sink).build(), STRINGS) as driver:
        for key, timestamp in inputs:
            driver.pipe_input("clicks", key, "x", timestamp=timestamp)
    return [(r.key, r.value, r.timestamp) for r in sink]


def test_until_time_limit_forwards_the_latest_update_after_the_first_buffered_plus_the_wait() -> None:
    limit = Suppressed.until_time_limit(10, BufferConfig.unbounded())
    # a's first buffered update is at 0: due at stream time 10, with its latest count then
    assert run(limit, [("a", 0), ("a", 3), ("b", 4), ("a", 9)]) == []
    assert run(limit, [("a", 0), ("a", 3), ("b", 4), ("a", 10)]) == [("a", 3, 10)]
    # once emitted, a key's next update starts a new wait
    assert run(limit, [("a", 0), ("a", 10), ("a", 12), ("b", 19), ("b", 22), ("c", 29)]) == [
        ("a", 2, 10), ("a", 3, 12), ("b", 2, 22)]


def test_until_time_limit_zero_forwards_every_update() -> None:
    assert run(Suppressed.until_time_limit(0, BufferConfig.unbounded()), [("a", 5), ("a", 1)]) == [
        ("a", 1, 5), ("a", 2, 5)]


def test_a_full_buffer_emits_its_oldest_entries_early() -> None:
    limit = Suppressed.until_time_limit(1000, BufferConfig.max_records(2))
    assert run(limit, [("a", 0), ("b", 1), ("a", 2), ("c", 3), ("d", 4)]) == [("a", 2, 2), ("b", 1, 1)]


def test_a_byte_bound_counts_serialized_keys_and_values() -> None:
    # key "a" (1 byte) + new value (8-byte long) + no old value + 8 for the timestamp = 17 bytes
    limit = Suppressed.until_time_limit(1000, BufferConfig.max_bytes(41))
    assert run(limit, [("a", 0), ("b", 1)]) == []  # 34 bytes
    # a's second update carries an old value too (25 bytes): with b, 42 bytes; a goes out early
    assert run(limit, [("a", 0), ("a", 1), ("b", 2)]) == [("a", 2, 1)]


def test_a_buffer_that_shuts_down_when_full_fails_the_task() -> None:
    limit = Suppressed.until_time_limit(1000, BufferConfig.max_records(1).shut_down_when_full())
    with pytest.raises(SuppressionBufferFullError, match="exceeded its bound"):
        run(limit, [("a", 0), ("a", 1), ("b", 2)])


def test_until_time_limit_forwards_deletes() -> None:
    builder = StreamsBuilder()
    sink: list[Record[Any, Any]] = []
    (builder.table("users", key_serde=Serdes.string(), value_serde=Serdes.string())
        .suppress(Suppressed.until_time_limit(5, BufferConfig.unbounded())).to_stream().process(lambda: Capture(sink)))
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("users", "u", "ann", timestamp=0)
        driver.pipe_input("users", "u", None, timestamp=1)
        driver.pipe_input("users", "v", "bo", timestamp=6)
    assert [(r.key, r.value) for r in sink] == [("u", None)]


def test_final_results_need_a_strict_buffer() -> None:
    with pytest.raises(ValueError, match="strict buffer"):
        Suppressed.until_window_closes(BufferConfig.max_records(10))
    assert Suppressed.until_window_closes(BufferConfig.max_records(10).shut_down_when_full()).buffer_config.strict
    assert BufferConfig.max_bytes(10).shut_down_when_full().emit_early_when_full().strict is False
    with pytest.raises(ValueError):
        BufferConfig.max_records(0)


def test_final_results_with_a_bound_fail_rather_than_emit_early() -> None:
    builder = StreamsBuilder()
    sink: list[Record[Any, Any]] = []
    (builder.stream("clicks").group_by_key().windowed_by(TimeWindows.of_size_with_no_grace(10)).count()
        .suppress(Suppressed.until_window_closes(BufferConfig.max_records(2).shut_down_when_full()))
        .to_stream().process(lambda: Capture(sink)))
    with TopologyTestDriver(builder.build(), STRINGS) as driver:
        driver.pipe_input("clicks", "a", "x", timestamp=0)
        driver.pipe_input("clicks", "b", "x", timestamp=1)
        driver.pipe_input("clicks", "a", "x", timestamp=10)  # closes [0,10): a and b out, a@[10,20) in
        assert [(r.key.key, r.value) for r in sink] == [("a", 1), ("b", 1)]
        driver.pipe_input("clicks", "b", "x", timestamp=11)
        with pytest.raises(SuppressionBufferFullError):
            driver.pipe_input("clicks", "c", "x", timestamp=12)


def test_until_time_limit_works_on_any_table_but_until_window_closes_needs_windows() -> None:
    builder = StreamsBuilder()
    table = builder.table("users", key_serde=Serdes.string(), value_serde=Serdes.string())
    with pytest.raises(ValueError, match="windowed KTable"):
        table.suppress(Suppressed.until_window_closes())
    table.suppress(Suppressed.until_time_limit(1, BufferConfig.unbounded()))


# the buffer's changelog: a task that restarts anywhere gets its buffer back -----------------------

def windowed_final_counts(suppressed: Suppressed, sink: list[Record[Any, Any]]) -> Any:
    builder = StreamsBuilder()
    (builder.stream("clicks").group_by_key().windowed_by(TimeWindows.of_size_and_grace(10, 5)).count()
        .suppress(suppressed, name="final").to_stream().process(lambda: Capture(sink)))
    return builder.build()


def run_with_restart(build: Any, inputs: list[tuple[str, int, Headers]], restart_at: int | None
                     ) -> tuple[list[tuple[Any, Any, int, Headers]], list[str]]:
    """Outputs of ``inputs`` when the task stops after ``restart_at`` of them (its memory
    lost) and a new task restored from the changelogs carries on; and the stores restored."""
    sink: list[Record[Any, Any]] = []
    topology = build(sink)
    driver = TopologyTestDriver(topology, STRINGS)
    restored: list[str] = []
    for i, (key, timestamp, headers) in enumerate(inputs):
        if i == restart_at:
            fresh = TopologyTestDriver(topology, STRINGS)
            for name in topology.stores:
                fresh.task.stores[name].restore((c.key, c.value) for c in driver.read_changelog(name))
                restored += [name] if driver.read_changelog(name) else []
            driver.close()
            driver = fresh
        driver.pipe_input("clicks", key, "x", timestamp=timestamp, headers=headers)
    driver.close()
    return [(r.key, r.value, r.timestamp, r.headers) for r in sink], restored


@pytest.mark.parametrize("suppressed", [
    Suppressed.until_window_closes(BufferConfig.unbounded()),
    Suppressed.until_time_limit(7, BufferConfig.max_records(3)),
], ids=["final-results", "time-limit-bounded"])
def test_a_task_restarted_anywhere_emits_what_an_uninterrupted_one_does(suppressed: Suppressed) -> None:
    """Seeded random keys, times and headers; the task restarts after each record in turn, with
    nothing but its changelogs: the suppressed results (keys, values, timestamps, headers)
    equal the uninterrupted run's — none lost, none twice."""
    import random

    rnd = random.Random(25)
    inputs = [(rnd.choice("abcd"), t + rnd.randint(0, 4), (("n", str(t).encode()),) if rnd.random() < 0.3 else ())
              for t in range(0, 120, 3)]

    def build(sink: list[Record[Any, Any]]) -> Any:
        return windowed_final_counts(suppressed, sink)

    expected, _ = run_with_restart(build, inputs, None)
    assert len(expected) >= 10
    for restart_at in range(1, len(inputs)):
        outputs, restored = run_with_restart(build, inputs, restart_at)
        assert "final-store" in restored
        assert outputs == expected, f"restarted after record {restart_at}"


def test_the_buffer_changelog_follows_the_buffer_and_can_be_turned_off() -> None:
    sink: list[Record[Any, Any]] = []
    with TopologyTestDriver(windowed_final_counts(Suppressed.until_window_closes(), sink), STRINGS) as driver:
        driver.pipe_input("clicks", "a", "x", timestamp=1)
        driver.pipe_input("clicks", "a", "x", timestamp=2)
        driver.pipe_input("clicks", "c", "x", timestamp=15)  # closes [0,10): a's entry leaves the buffer
        log = driver.read_changelog("final-store")
    assert [(r.key.key, r.value) for r in sink] == [("a", 2)]
    # a put per update, then a tombstone when the entry is emitted; c's entry stays
    assert [c.value is None for c in log] == [False, False, False, True]
    assert len({c.key for c in log}) == 2 and log[-1].key == log[0].key
    unlogged = Suppressed.until_window_closes(BufferConfig.unbounded().with_logging_disabled())
    with TopologyTestDriver(windowed_final_counts(unlogged, []), STRINGS) as driver:
        driver.pipe_input("clicks", "a", "x", timestamp=1)
        assert driver.read_changelog("final-store") == []
        assert driver.topology.stores["final-store"].logging_enabled is False


def test_the_buffer_store_takes_kafkas_names() -> None:
    named = StreamsBuilder()
    named.table("t").suppress(Suppressed.until_time_limit(1, BufferConfig.unbounded()), name="limit").to_stream()
    assert "limit-store" in named.build().stores and "limit" in named.build().nodes
    builder = StreamsBuilder()
    builder.table("t").suppress(Suppressed.until_time_limit(1, BufferConfig.unbounded())).to_stream().to("out")
    topology = builder.build()  # the node's name first, then its store's, from one counter
    assert [n for n in topology.stores if "SUPPRESS" in n] == ["KTABLE-SUPPRESS-STATE-STORE-0000000004"]
    assert "KTABLE-SUPPRESS-0000000003" in topology.nodes
