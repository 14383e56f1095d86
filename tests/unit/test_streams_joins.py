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


def windowed(kind: str, steps: list[tuple[str, str, str, int]]) -> list[tuple[str, Any, int]]:
    from tomyum.streams.windows import JoinWindows

    b = StreamsBuilder()
    left = b.stream("left", key_serde=S, value_serde=S)
    right = b.stream("right", key_serde=S, value_serde=S)
    method = {"inner": left.join, "left": left.left_join, "outer": left.outer_join}[kind]
    method(right, lambda x, y: f"{x}+{y}", JoinWindows.of_time_difference_and_grace(10, 5)).to("out", value_serde=S)
    with TopologyTestDriver(b.build(), StreamsConfig(application_id="ss")) as driver:
        for topic, key, value, ts in steps:
            driver.pipe_input(topic, key, value, timestamp=ts)
        return [(r.key, r.value, r.timestamp) for r in driver.read_output("out", value_serde=S)]


STEPS = [("left", "k", "a", 100), ("right", "k", "x", 105), ("right", "k", "y", 130),
         ("left", "j", "b", 140), ("left", "k", "c", 200)]


def test_a_windowed_inner_join_pairs_records_within_the_window() -> None:
    assert windowed("inner", STEPS) == [("k", "a+x", 105)]


def test_a_windowed_left_join_emits_the_unmatched_only_when_their_window_has_closed() -> None:
    out = windowed("left", STEPS)
    # a met x; b found nothing and is emitted with None once stream time passed 140 + 10 + 5
    assert out == [("k", "a+x", 105), ("j", "b+None", 140)]


def test_a_windowed_outer_join_emits_both_sides_unmatched() -> None:
    out = windowed("outer", STEPS)
    assert ("k", "a+x", 105) in out and ("j", "b+None", 140) in out and ("k", "None+y", 130) in out
    assert all(v != "a+None" for _, v, _ in out)  # a was matched: never a spurious (a, None)


def test_a_regrouped_table_moves_values_between_groups_with_adder_and_subtractor() -> None:
    """Users by city: a user who moves is subtracted from the old city before being added to
    the new one; a deleted user leaves its city."""
    from tomyum.streams import Materialized

    b = StreamsBuilder()
    (b.table("users", key_serde=S, value_serde=S)
        .group_by(lambda user, city: (city, user), key_serde=S, value_serde=S)
        .count(Materialized(store_name="per-city"))
        .to_stream()
        .to("out", value_serde=Serdes.long()))
    with TopologyTestDriver(b.build(), StreamsConfig(application_id="cities")) as driver:
        for user, city, ts in [("ann", "Paris", 1), ("bob", "Paris", 2), ("ann", "Rome", 3), ("bob", None, 4)]:
            driver.pipe_input("users", user, city, timestamp=ts)
        out = [(r.key, r.value) for r in driver.read_output("out", value_serde=Serdes.long())]
        assert out == [("Paris", 1), ("Paris", 2), ("Paris", 1), ("Rome", 1), ("Paris", 0)]
        assert dict(driver.get_key_value_store("per-city").all()) == {"Paris": 0, "Rome": 1}


def test_a_regrouped_table_aggregates_and_reduces() -> None:
    b = StreamsBuilder()
    grouped = b.table("scores", key_serde=S, value_serde=Serdes.long()).group_by(
        lambda player, score: (player[0], score), key_serde=S, value_serde=Serdes.long())
    grouped.reduce(lambda a, v: a + v, lambda a, v: a - v).to_stream().to("out", value_serde=Serdes.long())
    with TopologyTestDriver(b.build(), StreamsConfig(application_id="scores")) as driver:
        for player, score in [("amy", 3), ("al", 4), ("amy", 10)]:
            driver.pipe_input("scores", player, score, timestamp=0)
        # amy's 3 -> 10 stays in group "a": one update (subtract, then add), as Kafka's
        # KTableAggregate/KTableReduce make it since KIP-904
        assert [r.value for r in driver.read_output("out", value_serde=Serdes.long())] == [3, 7, 14]


def test_a_stream_global_table_join_looks_up_by_a_selected_key() -> None:
    b = StreamsBuilder()
    products = b.global_table("products", key_serde=S, value_serde=S)
    orders = b.stream("orders", key_serde=S, value_serde=S)  # key: order id, value: "product:qty"
    orders.join(products, lambda line, name: f"{line.split(':')[1]} x {name}",
                key_selector=lambda order, line: line.split(":")[0]).to("out", value_serde=S)
    orders.left_join(products, lambda line, name: f"{name}",
                     key_selector=lambda order, line: line.split(":")[0]).to("all", value_serde=S)
    with TopologyTestDriver(b.build(), StreamsConfig(application_id="shop")) as driver:
        driver.pipe_input("products", "p1", "pen", timestamp=1)
        driver.pipe_input("orders", "o1", "p1:3", timestamp=2)
        driver.pipe_input("orders", "o2", "p9:1", timestamp=3)
        assert [(r.key, r.value) for r in driver.read_output("out", value_serde=S)] == [("o1", "3 x pen")]
        assert [(r.key, r.value) for r in driver.read_output("all", value_serde=S)] == [("o1", "pen"), ("o2", "None")]


@pytest.mark.parametrize("left", [False, True])
def test_a_foreign_key_join_follows_both_tables(left: bool) -> None:
    """Orders name a customer (value "customer:item"); the join follows an order moving to
    another customer and a customer being renamed or deleted (its orders answer in key order)."""
    b = StreamsBuilder()
    customers = b.table("customers", key_serde=S, value_serde=S)
    orders = b.table("orders", key_serde=S, value_serde=S)
    join = orders.left_join if left else orders.join
    join(customers, lambda order, name: f"{order.split(':')[1]} for {name}",
         foreign_key=lambda order: order.split(":")[0]).to_stream().to("out", value_serde=S)
    steps = [("customers", "c1", "Ann", 1), ("orders", "o1", "c1:pen", 2), ("orders", "o2", "c2:ink", 3),
             ("customers", "c2", "Bob", 4), ("customers", "c1", "Anna", 5), ("orders", "o1", "c2:pen", 6),
             ("customers", "c2", None, 7)]
    with TopologyTestDriver(b.build(), StreamsConfig(application_id="fk")) as driver:
        for topic, key, value, ts in steps:
            driver.pipe_input(topic, key, value, timestamp=ts)
        out = [(r.key, r.value) for r in driver.read_output("out", value_serde=S)]
    if left:
        assert out == [("o1", "pen for Ann"), ("o2", "ink for None"), ("o2", "ink for Bob"), ("o1", "pen for Anna"),
                       ("o1", "pen for Bob"), ("o1", "pen for None"), ("o2", "ink for None")]
    else:
        assert out == [("o1", "pen for Ann"), ("o2", "ink for Bob"), ("o1", "pen for Anna"), ("o1", "pen for Bob"),
                       ("o1", None), ("o2", None)]


def test_a_windowed_join_buffer_survives_a_restart_without_losing_records(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The buffers are persistent stores: records buffered before a restart still join, and
    a record buffered after it with the same key and timestamp does not overwrite them."""
    from tomyum.streams.windows import JoinWindows

    def run(steps: list[tuple[str, str, str, int]]) -> list[tuple[str, Any]]:
        b = StreamsBuilder()
        left = b.stream("left", key_serde=S, value_serde=S)
        right = b.stream("right", key_serde=S, value_serde=S)
        left.left_join(right, lambda x, y: f"{x}+{y}", JoinWindows.of_time_difference_and_grace(10, 5)).to(
            "out", value_serde=S)
        with TopologyTestDriver(b.build(), StreamsConfig(application_id="ss", state_dir=str(tmp_path))) as driver:
            for topic, key, value, ts in steps:
                driver.pipe_input(topic, key, value, timestamp=ts)
            return [(r.key, r.value) for r in driver.read_output("out", value_serde=S)]

    assert run([("left", "k", "a", 100)]) == []
    assert run([("left", "k", "b", 100), ("right", "k", "x", 104)]) == [("k", "a+x"), ("k", "b+x")]
    # both were matched, so when their window closes neither comes out as unmatched; y was not
    assert run([("left", "y", "c", 150), ("left", "w", "d", 300)]) == [("y", "c+None")]


def test_left_joins_keep_records_with_a_none_key_as_kafka_does_since_kip_962() -> None:
    from tomyum.streams import JoinWindows

    b = StreamsBuilder()
    table = b.table("t", key_serde=S, value_serde=S)
    left, right = b.stream("left", key_serde=S, value_serde=S), b.stream("right", key_serde=S, value_serde=S)
    left.left_join(table, lambda v, t: f"{v}/{t}").to("stream-table", value_serde=S)
    left.join(table, lambda v, t: f"{v}/{t}").to("inner", value_serde=S)
    left.left_join(right, lambda x, y: f"{x}+{y}", JoinWindows.of_time_difference_with_no_grace(10)).to(
        "stream-stream", value_serde=S)
    with TopologyTestDriver(b.build(), StreamsConfig(application_id="nulls")) as driver:
        driver.pipe_input("t", "k", "T", timestamp=0)
        driver.pipe_input("left", None, "a", timestamp=5)
        driver.pipe_input("right", None, "x", timestamp=6)   # the right side of a left join drops it
        assert [(r.key, r.value, r.timestamp) for r in driver.read_output("stream-table")] == [(None, "a/None", 5)]
        assert driver.read_output("inner") == []
        assert [(r.key, r.value, r.timestamp) for r in driver.read_output("stream-stream")] == [(None, "a+None", 5)]
        # dropped: by the inner stream-table join, and the right side of the stream-stream join
        assert driver.metrics() == {"dropped-records-total": 2}


def test_records_with_a_none_key_move_a_stream_stream_join_s_stream_time() -> None:
    """Kafka's KStreamKStreamJoin advances its time tracker before it drops a record with a
    None key, so such a record can close the windows of records waiting for a partner."""
    from tomyum.streams import JoinWindows

    b = StreamsBuilder()
    left, right = b.stream("left", key_serde=S, value_serde=S), b.stream("right", key_serde=S, value_serde=S)
    left.left_join(right, lambda x, y: f"{x}+{y}", JoinWindows.of_time_difference_with_no_grace(10)).to(
        "out", value_serde=S)
    with TopologyTestDriver(b.build(), StreamsConfig(application_id="nulls")) as driver:
        driver.pipe_input("left", "k", "a", timestamp=100)
        driver.pipe_input("right", None, "x", timestamp=200)   # dropped, but join time is 200 now
        driver.pipe_input("right", "j", "y", timestamp=150)    # late for time 200: dropped
        driver.pipe_input("right", "j", "z", timestamp=195)    # in time, but not at stream time: emits nothing
        assert driver.read_output("out") == []
        driver.pipe_input("right", "j", "w", timestamp=200)    # at stream time: what expired comes out
        assert [(r.key, r.value, r.timestamp) for r in driver.read_output("out")] == [("k", "a+None", 100)]
        assert driver.metrics() == {"dropped-records-total": 2}
