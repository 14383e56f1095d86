"""Interactive queries' metadata on its own (no broker): Kafka's murmur2 partitioner (Kafka's
own test vectors), the endpoint a member's client id carries, the instances and stores a group's
assignment makes, where a key lives; and KafkaStreams' states with Kafka's transitions. The
live side (two instances answering for each other) is
tests/integration/test_streams_interactive_queries.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig
from tomyum.streams._metadata import (
    NOT_AVAILABLE,
    HostInfo,
    InstanceMap,
    KeyQueryMetadata,
    StreamsMetadata,
    consumer_client_id,
    default_partition,
    murmur2,
    server_of,
)
from tomyum.streams._plan import plan
from tomyum.streams.runtime import KafkaStreams, State
from tomyum.streams.topology import Topology

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(("data", "hashed"), [
    (b"21", -973932308), (b"foobar", -790332482), (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829), (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107)])
def test_murmur2_hashes_as_kafkas_utils(data: bytes, hashed: int) -> None:
    assert murmur2(data) == hashed


def test_the_default_partition_is_the_positive_hash_modulo_the_partitions() -> None:
    assert default_partition(b"21", 7) == (-973932308 & 0x7FFFFFFF) % 7
    assert {default_partition(f"user-{i}".encode(), 4) for i in range(40)} == {0, 1, 2, 3}


def test_host_info_parses_host_and_port_and_refuses_anything_else() -> None:
    assert HostInfo.parse("localhost:8080") == HostInfo("localhost", 8080)
    assert HostInfo.parse("[::1]:8080") == HostInfo("::1", 8080)
    assert str(HostInfo("::1", 8080)) == "[::1]:8080" and str(HostInfo("a", 1)) == "a:1"
    for bad in ("localhost", ":8080", "localhost:0", "localhost:http", "h:70000"):
        with pytest.raises(ValueError, match="application.server must be HOST:PORT"):
            HostInfo.parse(bad)


def test_the_client_id_carries_the_endpoint() -> None:
    client_id = consumer_client_id("app-1-StreamThread-1-consumer", HostInfo("10.0.0.1", 7070))
    assert client_id == "app-1-StreamThread-1-consumer@10.0.0.1:7070"
    assert server_of(client_id) == HostInfo("10.0.0.1", 7070)
    assert consumer_client_id("app-1", None) == "app-1" and server_of("app-1") is None
    assert server_of("someone@not-an-endpoint") is None


def counts_with_a_global_table() -> Topology:
    builder = StreamsBuilder()
    builder.global_table("countries", materialized=Materialized(store_name="countries"))
    (builder.stream("clicks", key_serde=Serdes.string())
        .group_by_key()
        .count(Materialized(store_name="counts")))
    return builder.build()


def instance_map(members: list[tuple[str, list[tuple[str, int]]]] | None,
                 local: HostInfo | None = HostInfo("a", 1)) -> InstanceMap:
    topology = counts_with_a_global_table()
    the_plan = plan(topology, {"clicks": 4, "countries": 1})
    return InstanceMap(topology, lambda: {"clicks": "clicks"}, lambda: the_plan, lambda: members, local)


def test_instances_are_the_members_with_an_endpoint_and_hold_their_tasks_stores() -> None:
    members = [("x-consumer@a:1", [("clicks", 0), ("clicks", 1)]), ("y-consumer@b:2", [("clicks", 2)]),
               ("z-consumer@c:3", []), ("plain-consumer", [("clicks", 3)])]
    assert instance_map(members).all_metadata() == [
        StreamsMetadata(host_info=HostInfo("a", 1), state_store_names=frozenset({"counts", "countries"}),
                        topic_partitions=frozenset({("clicks", 0), ("clicks", 1)})),
        StreamsMetadata(host_info=HostInfo("b", 2), state_store_names=frozenset({"counts", "countries"}),
                        topic_partitions=frozenset({("clicks", 2)})),
        StreamsMetadata(host_info=HostInfo("c", 3), state_store_names=frozenset({"countries"}),
                        topic_partitions=frozenset())]
    assert [m.host for m in instance_map(members).all_metadata_for_store("counts")] == ["a", "b"]


def test_a_key_lives_where_its_partition_is_assigned() -> None:
    members = [("x@a:1", [("clicks", 0), ("clicks", 1)]), ("y@b:2", [("clicks", 2), ("clicks", 3)])]
    instances = instance_map(members)
    for i in range(20):
        key = f"user-{i}"
        partition = default_partition(key.encode(), 4)
        expected = HostInfo("a", 1) if partition < 2 else HostInfo("b", 2)
        assert instances.for_key("counts", key, Serdes.string()) == KeyQueryMetadata(active_host=expected,
                                                                                    partition=partition)
        assert instances.for_key("counts", key) == instances.for_key("counts", key, str.encode)  # the store's serde
    assert instances.for_key("countries", "FR") == KeyQueryMetadata(active_host=HostInfo("a", 1), partition=-1)
    with pytest.raises(KeyError, match="no store named nope"):
        instances.for_key("nope", "k")


def test_no_owner_while_the_group_is_not_stable_or_the_owner_has_no_endpoint() -> None:
    assert instance_map(None).for_key("counts", "k") is NOT_AVAILABLE
    assert instance_map(None).all_metadata() == []
    assert instance_map([("plain", [("clicks", p) for p in range(4)])]).for_key("counts", "k") is NOT_AVAILABLE


def test_the_map_is_asked_again_after_a_rebalance() -> None:
    members = [("x@a:1", [("clicks", p) for p in range(4)])]
    instances = instance_map(members)
    assert [m.host for m in instances.all_metadata()] == ["a"]
    members[:] = [("y@b:2", [("clicks", p) for p in range(4)])]
    assert [m.host for m in instances.all_metadata()] == ["a"]  # cached until the next rebalance
    instances.invalidate()
    assert [m.host for m in instances.all_metadata()] == ["b"]


KAFKA_TRANSITIONS = {  # Kafka's KafkaStreams.State, valid transitions by ordinal
    "CREATED": (1, 3), "REBALANCING": (2, 3, 5), "RUNNING": (1, 2, 3, 5), "PENDING_SHUTDOWN": (4,),
    "NOT_RUNNING": (), "PENDING_ERROR": (6,), "ERROR": ()}


def test_states_and_transitions_are_kafkas() -> None:
    states = list(State)
    assert [s.value for s in states] == list(KAFKA_TRANSITIONS)
    for old in states:
        allowed = {states[i] for i in KAFKA_TRANSITIONS[old.value]}
        assert {new for new in states if old.is_valid_transition(new)} == allowed, old


def test_an_application_closed_before_it_started_ends_not_running(tmp_path: Path) -> None:
    app = KafkaStreams(counts_with_a_global_table(), StreamsConfig(application_id="never", state_dir=str(tmp_path)),
                       bootstrap_servers="127.0.0.1:1", application_server="localhost:7070")
    seen: list[tuple[State, State]] = []
    app.set_state_listener(lambda new, old: seen.append((new, old)))
    assert app.application_server == HostInfo("localhost", 7070)
    with pytest.raises(RuntimeError, match="while RUNNING or REBALANCING, not CREATED"):
        app.query_metadata_for_key("counts", "k")
    assert app.close(1)
    assert seen == [(State.PENDING_SHUTDOWN, State.CREATED), (State.NOT_RUNNING, State.PENDING_SHUTDOWN)]
    with pytest.raises(RuntimeError, match="cannot start from state NOT_RUNNING"):
        app.start()


def test_a_bad_application_server_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="application.server must be HOST:PORT, not 'localhost'"):
        KafkaStreams(counts_with_a_global_table(), StreamsConfig(application_id="bad", state_dir=str(tmp_path)),
                     bootstrap_servers="127.0.0.1:1", application_server="localhost")
