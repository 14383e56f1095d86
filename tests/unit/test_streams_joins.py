"""Joins with a table, in the TopologyTestDriver: stream-table (inner, left) looks the table
up as each record arrives; table-table (inner, left, outer) recomputes a key's result when
either side changes and forwards the change."""

from __future__ import annotations

from typing import Any

import pytest

from tomyum.streams import Serdes, StreamsBuilder, StreamsConfig, TopologyTestDriver

S = Serdes.string()


def run(build: Any, steps: list[tuple[str, str, str | None, int]]) -> list[tuple[str, Any]]:
    builder = StreamsBuilder()
    build(builder)
    with TopologyTestDriver(builder.build(), StreamsConfig(application_id="joins")) as driver:
        for topic, key, value, ts in steps:
            driver.pipe_input(topic, key, value, timestamp=ts)
        return [(r.key, r.value) for r in driver.read_output("out", value_serde=S)]


@pytest.mark.parametrize("kind, expected", [
    ("join", [("alice", "click by Alice (Paris)"), ("alice", "click by Alice (Rome)")]),
    ("left_join", [("bob", "click by ?"), ("alice", "click by Alice (Paris)"),
                   ("alice", "click by Alice (Rome)")]),
])
def test_stream_table_joins_see_the_table_as_each_record_arrives(kind: str, expected: list[Any]) -> None:
    def build(b: StreamsBuilder) -> None:
        users = b.table("users", key_serde=S, value_serde=S)
        clicks = b.stream("clicks", key_serde=S, value_serde=S)
        joined = getattr(clicks, kind)(users, lambda click, user: f"{click} by {user or '?'}")
        joined.to("out", value_serde=S)

    steps = [("clicks", "bob", "click", 1), ("users", "alice", "Alice (Paris)", 2), ("clicks", "alice", "click", 3),
             ("users", "alice", "Alice (Rome)", 4), ("clicks", "alice", "click", 5)]
    assert run(build, steps) == expected


@pytest.mark.parametrize("kind, expected", [
    ("join", [("k", "a1+b1"), ("k", "a2+b1"), ("k", None)]),
    ("left_join", [("k", "a1+-"), ("k", "a1+b1"), ("k", "a2+b1"), ("k", "a2+-"), ("k", None)]),
    ("outer_join", [("k", "a1+-"), ("k", "a1+b1"), ("k", "a2+b1"), ("k", "a2+-"), ("k", None)]),
])
def test_table_table_joins_follow_both_sides(kind: str, expected: list[Any]) -> None:
    def build(b: StreamsBuilder) -> None:
        left = b.table("left", key_serde=S, value_serde=S)
        right = b.table("right", key_serde=S, value_serde=S)
        joined = getattr(left, kind)(right, lambda x, y: f"{x or '-'}+{y or '-'}")
        joined.to_stream().to("out", value_serde=S)

    steps = [("left", "k", "a1", 1), ("right", "k", "b1", 2), ("left", "k", "a2", 3), ("right", "k", None, 4),
             ("left", "k", None, 5)]
    assert run(build, steps) == expected


def test_joining_an_unmaterialized_table_is_refused() -> None:
    b = StreamsBuilder()
    table = b.table("t", key_serde=S, value_serde=S).map_values(str.upper)
    with pytest.raises(ValueError):
        b.stream("s", key_serde=S, value_serde=S).join(table, lambda x, y: x)
