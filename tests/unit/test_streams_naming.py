"""One naming for the DSL: join kinds as Kafka's methods (``join``, ``left_join``,
``outer_join``), window factories as Kafka's names in snake_case, ``name=`` and
``materialized=`` where Kafka's DSL takes them; the names of earlier releases still work,
with a DeprecationWarning, and do the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tomyum.streams import (
    JoinWindows,
    Materialized,
    Serdes,
    SessionWindows,
    SlidingWindows,
    StreamsBuilder,
    StreamsConfig,
    TimeWindows,
    TopologyTestDriver,
)

S = Serdes.string()
CONFIG = StreamsConfig(application_id="naming", default_key_serde=S, default_value_serde=S)


@pytest.mark.parametrize(("old", "new"), [
    (lambda: TimeWindows.of_size_with_grace(10, 5), lambda: TimeWindows.of_size_and_grace(10, 5)),
    (lambda: TimeWindows.of_size_no_grace(10), lambda: TimeWindows.of_size_with_no_grace(10)),
    (lambda: SessionWindows.of_inactivity_gap_with_grace(10, 5), lambda: SessionWindows.of_inactivity_gap_and_grace(10, 5)),
    (lambda: SessionWindows.of_inactivity_gap_no_grace(10), lambda: SessionWindows.of_inactivity_gap_with_no_grace(10)),
    (lambda: SlidingWindows.of_time_difference_with_grace(10, 5),
     lambda: SlidingWindows.of_time_difference_and_grace(10, 5)),
    (lambda: SlidingWindows.of_time_difference_no_grace(10), lambda: SlidingWindows.of_time_difference_with_no_grace(10)),
    (lambda: JoinWindows.of_time_difference_without_grace(10), lambda: JoinWindows.of_time_difference_with_no_grace(10)),
])
def test_old_window_factory_names_warn_and_make_the_same_windows(old: Callable[[], Any], new: Callable[[], Any]) -> None:
    with pytest.deprecated_call():
        made = old()
    assert made == new()


def test_join_windows_before_and_after_move_one_end() -> None:
    windows = JoinWindows.of_time_difference_and_grace(10, 3)
    assert (windows.before_ms, windows.after_ms, windows.grace_ms) == (10, 10, 3)
    assert windows.before(0) == JoinWindows(before_ms=0, after_ms=10, grace_ms=3)
    assert windows.after(-5) == JoinWindows(before_ms=10, after_ms=-5, grace_ms=3)
    with pytest.raises(ValueError, match="must not be negative"):
        windows.before(-11)


def stream_join_output(build: Callable[[Any, Any], Any], steps: list[tuple[str, str, str, int]]) -> list[tuple[Any, ...]]:
    b = StreamsBuilder()
    build(b.stream("left"), b.stream("right")).to("out")
    with TopologyTestDriver(b.build(), CONFIG) as driver:
        for topic, key, value, ts in steps:
            driver.pipe_input(topic, key, value, timestamp=ts)
        return [(r.key, r.value, r.timestamp) for r in driver.read_output("out")]


STEPS = [("left", "k", "a", 100), ("right", "k", "x", 104), ("left", "j", "b", 110), ("right", "i", "y", 300),
         ("left", "z", "c", 500)]  # the last closes the windows of all before it


@pytest.mark.parametrize("kind", ["inner", "left", "outer"])
def test_join_windowed_with_kind_is_deprecated_and_joins_as_the_methods(kind: str) -> None:
    def joiner(x: str | None, y: str | None) -> str:
        return f"{x}+{y}"

    windows = JoinWindows.of_time_difference_with_no_grace(10)
    new = stream_join_output(
        lambda left, right: {"inner": left.join, "left": left.left_join, "outer": left.outer_join}[kind](
            right, joiner, windows), STEPS)
    with pytest.deprecated_call():
        old = stream_join_output(lambda left, right: left.join_windowed(right, joiner, windows, kind=kind), STEPS)
    assert old == new
    assert ("k", "a+x", 104) in new
    assert (("j", "b+None", 110) in new) == (kind != "inner")
    assert (("i", "None+y", 300) in new) == (kind == "outer")


@pytest.mark.parametrize("left", [False, True])
def test_join_global_and_join_foreign_key_are_deprecated_and_join_as_the_methods(left: bool) -> None:
    def run(old: bool) -> tuple[list[Any], list[Any]]:
        b = StreamsBuilder()
        products = b.global_table("products")
        lines = b.stream("lines")
        if old:
            lines.join_global(products, lambda k, v: v, lambda v, p: f"{v}:{p}", left=left).to("named")
        else:
            (lines.left_join if left else lines.join)(products, lambda v, p: f"{v}:{p}",
                                                      key_selector=lambda k, v: v).to("named")
        orders, customers = b.table("orders"), b.table("customers")
        if old:
            orders.join_foreign_key(customers, lambda o: o, lambda o, c: f"{o}:{c}", left=left).to_stream().to("fk")
        else:
            (orders.left_join if left else orders.join)(customers, lambda o, c: f"{o}:{c}",
                                                        foreign_key=lambda o: o).to_stream().to("fk")
        with TopologyTestDriver(b.build(), CONFIG) as driver:
            driver.pipe_input("products", "p1", "pen", timestamp=1)
            driver.pipe_input("lines", "l1", "p1", timestamp=2)
            driver.pipe_input("lines", "l2", "p2", timestamp=3)
            driver.pipe_input("customers", "c1", "Ann", timestamp=4)
            driver.pipe_input("orders", "o1", "c1", timestamp=5)
            driver.pipe_input("orders", "o2", "c2", timestamp=6)
            return ([(r.key, r.value) for r in driver.read_output("named")],
                    [(r.key, r.value) for r in driver.read_output("fk")])

    with pytest.deprecated_call():
        old = run(True)
    new = run(False)
    assert old == new
    assert new[0] == [("l1", "p1:pen")] + ([("l2", "p2:None")] if left else [])
    assert new[1] == [("o1", "c1:Ann")] + ([("o2", "c2:None")] if left else [])


def test_name_names_the_join_processors_and_materialized_makes_the_result_queryable() -> None:
    b = StreamsBuilder()
    users, plans = b.table("users"), b.table("plans")
    joined = users.join(plans, lambda u, p: f"{u}/{p}", materialized=Materialized(store_name="user-plans"),
                        name="user-plans")
    left, right = b.stream("left"), b.stream("right")
    left.outer_join(right, lambda x, y: f"{x}{y}", JoinWindows.of_time_difference_with_no_grace(5), name="pairs")
    left.join(users, lambda x, u: x, name="enrich")
    topology = b.build()
    assert {"user-plans-join-this", "user-plans-join-other", "user-plans", "pairs-this-join", "pairs-other-join",
            "pairs-merge", "enrich"} <= set(topology.nodes)
    assert joined.store_name == "user-plans"
    with TopologyTestDriver(topology, CONFIG) as driver:
        driver.pipe_input("users", "u", "ann", timestamp=1)
        driver.pipe_input("plans", "u", "pro", timestamp=2)
        assert driver.get_key_value_store("user-plans").get("u") == "ann/pro"
        assert driver.get_key_value_store("user-plans").get_with_timestamp("u").timestamp == 2  # type: ignore[union-attr]


def test_joins_say_which_arguments_they_need() -> None:
    b = StreamsBuilder()
    stream, other = b.stream("s"), b.stream("o")
    table, global_table = b.table("t"), b.global_table("g")
    with pytest.raises(ValueError, match="needs JoinWindows"):
        stream.join(other, lambda x, y: x)
    with pytest.raises(ValueError, match="for stream-stream joins"):
        stream.join(table, lambda x, y: x, JoinWindows.of_time_difference_with_no_grace(5))
    with pytest.raises(ValueError, match="needs key_selector"):
        stream.join(global_table, lambda x, y: x)
    with pytest.raises(ValueError, match="for joins with a global table"):
        stream.left_join(table, lambda x, y: x, key_selector=lambda k, v: v)


def test_name_names_operators_and_materialized_stores_derived_tables() -> None:
    b = StreamsBuilder()
    words = (b.stream("text").flat_map_values(str.split, name="split").filter(lambda k, w: w != "x", name="no-x")
             .map_values(str.upper, name="upper"))
    words.group_by_key().count(name="count").to_stream(name="counts").to("out", value_serde=Serdes.long(),
                                                                            name="sink")
    plans = b.table("plans")
    pro = plans.filter(lambda k, v: v == "pro", materialized=Materialized(store_name="pro"), name="only-pro")
    pro.map_values(len, materialized=Materialized(store_name="lengths", value_serde=Serdes.long()), name="len")
    topology = b.build()
    assert {"split", "no-x", "upper", "count", "counts", "sink", "only-pro", "only-pro-materialize", "len",
            "len-materialize"} <= set(topology.nodes)
    with TopologyTestDriver(topology, CONFIG) as driver:
        driver.pipe_input("plans", "ann", "pro", timestamp=1)
        driver.pipe_input("plans", "bob", "free", timestamp=2)
        driver.pipe_input("plans", "ann", "free", timestamp=3)   # no longer passes: deleted from "pro"
        driver.pipe_input("plans", "cid", "pro", timestamp=4)
        assert driver.get_key_value_store("pro").all() == [("cid", "pro")]
        assert driver.get_key_value_store("lengths").all() == [("cid", 3)]
        assert driver.get_key_value_store("pro").get_with_timestamp("cid").timestamp == 4  # type: ignore[union-attr]
