"""Sub-topologies, repartition topics and co-partitioning: how a topology maps onto topics
and tasks before a runtime creates anything (tomyum.streams._plan)."""

from __future__ import annotations

import pytest

from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig, TopologyTestDriver
from tomyum.streams._plan import TopologyError, plan
from tomyum.streams.windows import JoinWindows

pytestmark = pytest.mark.timeout(30)
S = Serdes.string()


def word_count() -> StreamsBuilder:
    b = StreamsBuilder()
    (b.stream("text", value_serde=S)
        .flat_map_values(str.split)
        .group_by(lambda _, word: word, key_serde=S, value_serde=S, name="words")
        .count(Materialized(store_name="counts"))
        .to_stream()
        .to("counts", value_serde=Serdes.long()))
    return b


def test_a_group_by_splits_the_topology_at_its_repartition_topic() -> None:
    topology = word_count().build()
    first, second = topology.subtopologies()
    assert topology.repartition_topics == {"words-repartition": None}
    assert first.source_topics == ("text",) and first.sink_topics == ("words-repartition",) and not first.stores
    assert second.source_topics == ("words-repartition",) and second.sink_topics == ("counts",)
    assert second.stores == ("counts",)
    p = plan(topology, {"text": 3, "counts": 1})
    assert p.partitions["words-repartition"] == 3  # as wide as the topic upstream
    assert p.tasks == {0: 3, 1: 3}
    assert p.task_ids(1) == ["1_0", "1_1", "1_2"]
    assert p.subtopology_of_store == {"counts": 1}


def test_the_test_driver_runs_the_repartitioned_topology_as_one_task() -> None:
    config = StreamsConfig(application_id="wc")
    with TopologyTestDriver(word_count().build(), config) as driver:
        driver.pipe_input("text", None, "b a b", timestamp=0)
        assert [(r.key, r.value) for r in driver.read_output("counts")] == [("b", 1), ("a", 1), ("b", 2)]
        assert [r.key for r in driver.read_output("words-repartition")] == ["b", "a", "b"]


def test_stateless_operators_keep_the_key_and_need_no_repartition() -> None:
    b = StreamsBuilder()
    b.stream("in", key_serde=S, value_serde=S).filter(lambda k, v: True).map_values(str.upper).peek(
        lambda k, v: None).group_by_key().count().to_stream().to("out")
    topology = b.build()
    assert topology.repartition_topics == {} and len(topology.subtopologies()) == 1


@pytest.mark.parametrize("change", ["map", "select_key", "flat_map", "process"])
def test_key_changing_operators_repartition_before_an_aggregation(change: str) -> None:
    from tomyum.streams import Processor

    b = StreamsBuilder()
    s = b.stream("in", key_serde=S, value_serde=S)
    changed = {
        "map": lambda: s.map(lambda k, v: (v, k)),
        "select_key": lambda: s.select_key(lambda k, v: v),
        "flat_map": lambda: s.flat_map(lambda k, v: [(v, k)]),
        "process": lambda: s.process(Processor),
    }[change]()
    changed.filter(lambda k, v: True).group_by_key(key_serde=S, value_serde=S).count()
    topology = b.build()
    assert len(topology.repartition_topics) == 1 and len(topology.subtopologies()) == 2


def test_a_stream_table_join_needs_co_partitioned_topics() -> None:
    b = StreamsBuilder()
    table = b.table("users", key_serde=S, value_serde=S)
    b.stream("clicks", key_serde=S, value_serde=S).join(table, lambda c, u: (c, u)).to("out")
    topology = b.build()
    assert len(topology.subtopologies()) == 1
    assert plan(topology, {"users": 4, "clicks": 4}).tasks == {0: 4}
    with pytest.raises(TopologyError, match=r"clicks \(3 partitions\), users \(4 partitions\)"):
        plan(topology, {"users": 4, "clicks": 3})


def test_a_rekeyed_stream_is_repartitioned_to_the_width_of_the_table_it_joins() -> None:
    b = StreamsBuilder()
    table = b.table("users", key_serde=S, value_serde=S)
    (b.stream("clicks", key_serde=S, value_serde=S)
        .select_key(lambda k, v: v)
        .join(table, lambda c, u: (c, u))
        .to("out"))
    p = plan(b.build(), {"users": 3, "clicks": 5})
    (topic,) = b.build().repartition_topics
    assert p.partitions[topic] == 3  # co-partitioned with users, not as wide as clicks
    assert p.tasks[p.subtopology_of_topic["clicks"]] == 5 and p.tasks[p.subtopology_of_topic["users"]] == 3
    assert p.subtopology_of_topic["users"] == p.subtopology_of_topic[topic]


def test_an_explicit_partition_count_is_kept_and_checked() -> None:
    b = StreamsBuilder()
    b.stream("in", key_serde=S, value_serde=S).repartition(num_partitions=4, name="spread").group_by_key().count()
    assert plan(b.build(), {"in": 1}).partitions["spread-repartition"] == 4

    b = StreamsBuilder()
    table = b.table("users", key_serde=S, value_serde=S)
    b.stream("in", key_serde=S, value_serde=S).repartition(num_partitions=2).join(table, lambda a, c: a)
    with pytest.raises(TopologyError, match="not co-partitioned"):
        plan(b.build(), {"in": 1, "users": 3})
    with pytest.raises(ValueError, match="num_partitions"):
        StreamsBuilder().stream("in").repartition(num_partitions=0)


def test_stream_stream_joins_put_both_sides_in_one_sub_topology() -> None:
    b = StreamsBuilder()
    left = b.stream("left", key_serde=S, value_serde=S)
    right = b.stream("right", key_serde=S, value_serde=S).select_key(lambda k, v: v)
    left.join(right, lambda x, y: x + y, JoinWindows.of_time_difference_and_grace(10, 0)).to("out")
    topology = b.build()
    p = plan(topology, {"left": 2, "right": 6})
    assert p.tasks[p.subtopology_of_topic["left"]] == 2
    assert p.subtopology_of_topic["left"] == p.subtopology_of_topic[next(iter(topology.repartition_topics))]


def test_a_table_group_by_repartitions_its_changes() -> None:
    b = StreamsBuilder()
    (b.table("users", key_serde=S, value_serde=S)
        .group_by(lambda user, city: (city, user), key_serde=S, value_serde=S, name="by-city")
        .count(Materialized(store_name="per-city")))
    topology = b.build()
    assert set(topology.repartition_topics) == {"by-city-repartition"}
    assert plan(topology, {"users": 2}).tasks == {0: 2, 1: 2}
    with TopologyTestDriver(topology, StreamsConfig()) as driver:
        driver.pipe_input("users", "ann", "oslo", timestamp=0)
        driver.pipe_input("users", "bob", "oslo", timestamp=1)
        driver.pipe_input("users", "ann", "rome", timestamp=2)  # ann moves: oslo loses her, rome gains her
        store = driver.get_key_value_store("per-city")
        assert store.get("oslo") == 1 and store.get("rome") == 1


def test_global_tables_stay_out_of_the_sub_topologies() -> None:
    b = StreamsBuilder()
    customers = b.global_table("customers", key_serde=S, value_serde=S)
    b.stream("orders", key_serde=S, value_serde=S).join(customers, lambda o, c: c, key_selector=lambda k, v: v).to("out")
    topology = b.build()
    (only,) = topology.subtopologies()
    assert only.source_topics == ("orders",) and not only.stores
    assert topology.global_stores and not topology.stores[next(iter(topology.global_stores))].logging_enabled
    assert plan(topology, {"orders": 4, "customers": 2}).tasks == {0: 4}  # no co-partitioning needed
    with pytest.raises(TopologyError, match="customers"):
        plan(topology, {"orders": 4})


def test_missing_source_topics_are_named() -> None:
    with pytest.raises(TopologyError, match="source topic.* text do not exist"):
        plan(word_count().build(), {})


def test_a_value_without_a_serde_for_a_repartition_topic_says_which_serde_to_give() -> None:
    b = StreamsBuilder()
    b.stream("text", value_serde=S).flat_map_values(str.split).group_by(lambda _, w: w, key_serde=S).count()
    with TopologyTestDriver(b.build(), StreamsConfig()) as driver, \
            pytest.raises(TypeError, match=r"repartition topic.*group_by\(\.\.\., value_serde="):
        driver.pipe_input("text", None, "hello", timestamp=0)


def test_a_foreign_key_join_needs_no_co_partitioning() -> None:
    b = StreamsBuilder()
    customers = b.table("customers", key_serde=S, value_serde=S)
    orders = b.table("orders", key_serde=S, value_serde=S)
    orders.join(customers, lambda o, c: f"{o}/{c}", foreign_key=lambda o: o.split(":")[0], name="fk").to_stream().to("out")
    topology = b.build()
    p = plan(topology, {"customers": 2, "orders": 3})
    assert p.partitions["fk-subscription-repartition"] == 2  # to the customers' tasks
    assert p.partitions["fk-response-repartition"] == 3  # back to the orders' tasks
    assert p.subtopology_of_topic["fk-subscription-repartition"] == p.subtopology_of_topic["customers"]
    assert p.subtopology_of_topic["fk-response-repartition"] == p.subtopology_of_topic["orders"]


def test_a_materialized_foreign_key_join_keeps_its_result_and_forwards_old_values() -> None:
    from tomyum.streams import Change

    b = StreamsBuilder()
    customers = b.table("customers", key_serde=S, value_serde=S)
    orders = b.table("orders", key_serde=S, value_serde=S)
    changes: list[tuple[str, Change[str]]] = []
    joined = orders.join(customers, lambda o, c: f"{o.split(':')[1]}/{c}", foreign_key=lambda o: o.split(":")[0],
                         materialized=Materialized(store_name="joined", value_serde=S))
    joined.to_stream().to("out", value_serde=S)
    b.build().nodes[joined.node].children.clear()  # observe the changes themselves instead
    from tomyum.streams import Processor, Record

    class Spy(Processor):
        def process(self, record: Record[str, Change[str]]) -> None:
            changes.append((record.key, record.value))

    b.build().add_node("SPY", Spy, [joined.node])
    with TopologyTestDriver(b.build(), StreamsConfig()) as driver:
        driver.pipe_input("customers", "c1", "Ann", timestamp=0)
        driver.pipe_input("orders", "o1", "c1:pen", timestamp=1)
        driver.pipe_input("customers", "c1", "Anna", timestamp=2)
        driver.pipe_input("orders", "o1", "c9:pen", timestamp=3)  # no such customer: the inner join drops o1
        assert driver.get_key_value_store("joined").all() == []
        driver.pipe_input("customers", "c9", "Zed", timestamp=4)
        assert driver.get_key_value_store("joined").all() == [("o1", "pen/Zed")]
    assert changes == [("o1", Change("pen/Ann", None)), ("o1", Change("pen/Anna", "pen/Ann")),
                       ("o1", Change(None, "pen/Anna")), ("o1", Change("pen/Zed", None))]


def test_an_explicit_repartition_reads_the_records_back_keyed_as_they_were() -> None:
    b = StreamsBuilder()
    (b.stream("in", key_serde=S, value_serde=S)
        .map(lambda k, v: (v, k))          # key-changing: the repartition below is what makes it safe
        .repartition(key_serde=S, value_serde=S, name="by-value")
        .group_by_key()                   # no second repartition: the stream is keyed already
        .count(Materialized(store_name="n"))
        .to_stream().to("out", value_serde=Serdes.long()))
    topology = b.build()
    assert list(topology.repartition_topics) == ["by-value-repartition"]
    with TopologyTestDriver(topology, StreamsConfig()) as driver:
        for k, v in [("a", "x"), ("b", "x"), ("c", "y")]:
            driver.pipe_input("in", k, v, timestamp=0)
        assert [(r.key, r.value) for r in driver.read_output("by-value-repartition", key_serde=S, value_serde=S)] \
            == [("x", "a"), ("x", "b"), ("y", "c")]
        assert [(r.key, r.value) for r in driver.read_output("out")] == [("x", 1), ("x", 2), ("y", 1)]
