"""Metadata (3), DescribeCluster (60) and DescribeTopicPartitions (75) called below the socket."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tomyum.config import STANDARD_AUTHORIZER
from tomyum.errors import ErrorCode
from tomyum.metadata.records import PartitionChangeRecord
from tomyum.testing.handlers import BlockingHarness

METADATA, DESCRIBE_CLUSTER, DESCRIBE_TOPIC_PARTITIONS = 3, 60, 75
COVERS = {METADATA: "Metadata", DESCRIBE_CLUSTER: "DescribeCluster",
          DESCRIBE_TOPIC_PARTITIONS: "DescribeTopicPartitions"}


@pytest.mark.parametrize("version", [0, 12, 13])
def test_metadata_describes_a_topic_with_this_broker_leading_every_partition(kafka: BlockingHarness,
                                                                          version: int) -> None:
    kafka.create_topic("orders", 3)
    r = kafka.call(METADATA, version, {"topics": [{"name": "orders"}]})
    assert [(b.node_id, b.host, b.port) for b in r.brokers] == [
        (kafka.broker.node_id, "127.0.0.1", kafka.broker.listeners[0].port)]
    (topic,) = r.topics
    assert (topic.name, topic.error_code) == ("orders", ErrorCode.none)
    assert [p.partition_index for p in topic.partitions] == [0, 1, 2]
    assert all(p.leader_id == kafka.broker.node_id and p.replica_nodes == (kafka.broker.node_id,)
               for p in topic.partitions)


def test_metadata_v12_carries_the_cluster_id_and_topic_id(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    r = kafka.call(METADATA, 12, {"topics": [{"name": "orders"}]})
    assert r.cluster_id == kafka.broker.cluster_id
    assert r.topics[0].topic_id == kafka.broker.metadata.topics()["orders"].topic_id


def test_metadata_reports_the_operations_of_an_unknown_topic_too(kafka: BlockingHarness) -> None:
    """KIP-430 as Kafka answers it: the operations of every topic it describes, error or not
    (without an authorizer, all eight of a topic's)."""
    kafka.create_topic("orders")
    r = kafka.call(METADATA, 12, {"topics": [{"name": "orders"}, {"name": "absent"}, {"name": "bad/name"}],
                                  "allow_auto_topic_creation": False, "include_topic_authorized_operations": True})
    assert [t.error_code for t in r.topics] == [ErrorCode.none, ErrorCode.unknown_topic_or_partition,
                                                ErrorCode.invalid_topic_exception]
    assert {t.topic_authorized_operations for t in r.topics} == {3576}


def test_metadata_v0_with_no_topics_lists_every_topic(kafka: BlockingHarness) -> None:
    kafka.create_topic("a")
    kafka.create_topic("b")
    assert {t.name for t in kafka.call(METADATA, 0, {"topics": []}).topics} >= {"a", "b"}


def test_metadata_v1_and_later_with_an_empty_list_lists_no_topic(kafka: BlockingHarness) -> None:
    kafka.create_topic("a")
    assert kafka.call(METADATA, 12, {"topics": []}).topics == ()
    assert {t.name for t in kafka.call(METADATA, 12, {"topics": None}).topics} >= {"a"}


def test_metadata_auto_creates_a_missing_topic_when_the_request_allows_it(kafka: BlockingHarness) -> None:
    r = kafka.call(METADATA, 12, {"topics": [{"name": "fresh"}], "allow_auto_topic_creation": True})
    assert r.topics[0].error_code == ErrorCode.none
    assert "fresh" in kafka.broker.metadata.topics()


def test_metadata_answers_unknown_topic_when_auto_creation_is_not_allowed(kafka: BlockingHarness) -> None:
    r = kafka.call(METADATA, 12, {"topics": [{"name": "absent"}], "allow_auto_topic_creation": False})
    assert r.topics[0].error_code == ErrorCode.unknown_topic_or_partition
    assert "absent" not in kafka.broker.metadata.topics()


def test_metadata_answers_invalid_topic_for_an_illegal_name(kafka: BlockingHarness) -> None:
    r = kafka.call(METADATA, 12, {"topics": [{"name": "bad/name"}], "allow_auto_topic_creation": True})
    assert r.topics[0].error_code == ErrorCode.invalid_topic_exception


def test_metadata_v12_finds_a_topic_by_id_and_answers_unknown_topic_id_otherwise(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    topic_id = kafka.broker.metadata.topics()["orders"].topic_id
    other = uuid.uuid4()
    r = kafka.call(METADATA, 12, {"topics": [{"name": None, "topic_id": topic_id},
                                             {"name": None, "topic_id": other}]})
    assert (r.topics[0].name, r.topics[0].error_code) == ("orders", ErrorCode.none)
    assert (r.topics[1].topic_id, r.topics[1].error_code) == (other, ErrorCode.unknown_topic_id)


@pytest.mark.parametrize("version", [0, 1, 2])
def test_describe_cluster_names_this_broker_and_the_cluster(kafka: BlockingHarness, version: int) -> None:
    r = kafka.call(DESCRIBE_CLUSTER, version, {"endpoint_type": 1, "include_fenced_brokers": True})
    assert r.error_code == ErrorCode.none
    assert r.cluster_id == kafka.broker.cluster_id
    assert [b.broker_id for b in r.brokers] == [kafka.broker.node_id]
    assert not any(getattr(b, "is_fenced", False) for b in r.brokers)  # v2: a running broker is not fenced


def test_describe_cluster_refuses_controller_and_unknown_endpoints_as_kafka_does(kafka: BlockingHarness) -> None:
    controllers = kafka.call(DESCRIBE_CLUSTER, 1, {"endpoint_type": 2})
    unknown = kafka.call(DESCRIBE_CLUSTER, 1, {"endpoint_type": 9})
    assert (controllers.error_code, unknown.error_code) == (ErrorCode.mismatched_endpoint_type,
                                                            ErrorCode.unsupported_endpoint_type)
    assert {(r.cluster_id, r.endpoint_type) for r in (controllers, unknown)} == {("", 1)}


# the cached topic entries (MetadataImage.derived) follow every change to a topic ------------

CREATE_PARTITIONS, DELETE_TOPICS, CREATE_ACLS = 37, 20, 30


def _listing(kafka: BlockingHarness, version: int = 12) -> dict[str | None, Any]:
    return {t.name: t for t in kafka.call(METADATA, version, {"topics": None}).topics}


@pytest.mark.parametrize("version", range(0, 14))
def test_a_cached_metadata_answer_equals_the_uncached_one(kafka: BlockingHarness, version: int) -> None:
    kafka.create_topic("orders", 3)
    kafka.create_topic("__consumer_offsets", 2)
    request = {"topics": [{"name": "orders"}, {"name": "__consumer_offsets"}, {"name": "bad/name"}],
               "allow_auto_topic_creation": False, "include_topic_authorized_operations": True}
    cold = kafka.call(METADATA, version, request)
    warm = kafka.call(METADATA, version, request)
    for topic in kafka.broker.metadata.topics().values():
        kafka.broker.metadata.image.derived(topic).clear()
    assert cold == warm == kafka.call(METADATA, version, request)
    assert [len(t.partitions) for t in warm.topics] == [3, 2, 0]


def test_metadata_follows_created_grown_deleted_and_recreated_topics(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    first_id = _listing(kafka)["orders"].topic_id
    r = kafka.call(CREATE_PARTITIONS, 3, {"timeout": 5000, "validate_only": False,
                                          "topics": [{"name": "orders", "count": 4, "assignments": None}]})
    assert r.results[0].error_code == ErrorCode.none
    assert [p.partition_index for p in _listing(kafka)["orders"].partitions] == [0, 1, 2, 3]
    kafka.call(DELETE_TOPICS, 6, {"timeout": 5000, "topics": [{"name": "orders", "topic_id": None}]})
    assert "orders" not in _listing(kafka)
    kafka.create_topic("orders", 2)
    again = _listing(kafka)["orders"]
    assert again.topic_id != first_id and len(again.partitions) == 2


def test_metadata_follows_a_leader_epoch_change(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders", 2)
    assert [p.leader_epoch for p in _listing(kafka)["orders"].partitions] == [0, 0]
    image = kafka.broker.metadata.image
    topic = kafka.broker.metadata.topics()["orders"]
    image.replay(PartitionChangeRecord(partition_id=1, topic_id=topic.topic_id, leader=kafka.broker.node_id),
                 image.last_offset + 1)
    assert [p.leader_epoch for p in _listing(kafka)["orders"].partitions] == [0, 1]


def test_metadata_follows_an_acl_change_in_listing_and_authorized_operations(tmp_path: Path) -> None:
    settings = {"authorizer.class.name": STANDARD_AUTHORIZER, "super.users": "User:admin"}
    with BlockingHarness(tmp_path / "secured", settings=settings) as h:
        h.create_topic("orders")
        h.connection.principal = "User:alice"
        request = {"topics": None, "include_topic_authorized_operations": True}
        assert h.call(METADATA, 12, request).topics == ()
        h.connection.principal = "User:admin"
        allow = {"resource_type": 2, "resource_name": "orders", "resource_pattern_type": 3,
                 "principal": "User:alice", "host": "*", "operation": 8, "permission_type": 3}  # DESCRIBE
        assert h.call(CREATE_ACLS, 3, {"creations": [allow]}).results[0].error_code == ErrorCode.none
        h.connection.principal = "User:alice"
        (topic,) = h.call(METADATA, 12, request).topics
        assert (topic.name, topic.topic_authorized_operations) == ("orders", 1 << 8)
        h.connection.principal = "User:admin"
        assert h.call(CREATE_ACLS, 3, {"creations": [allow | {"operation": 3}]}).results[0].error_code == 0  # READ
        h.connection.principal = "User:alice"
        (topic,) = h.call(METADATA, 12, request).topics
        assert topic.topic_authorized_operations == (1 << 8) | (1 << 3)


def describe_partitions(kafka: BlockingHarness, topics: list[str], limit: int = 2000,
                        cursor: tuple[str, int] | None = None) -> Any:
    return kafka.call(DESCRIBE_TOPIC_PARTITIONS, 0, {
        "topics": [{"name": t} for t in topics], "response_partition_limit": limit,
        "cursor": None if cursor is None else {"topic_name": cursor[0], "partition_index": cursor[1]}})


def pages(r: Any) -> tuple[list[tuple[str, int, list[int]]], tuple[str, int] | None]:
    """(each topic's name, error and partition indexes; the next cursor) of an answer."""
    cursor = r.next_cursor
    return ([(t.name, t.error_code, [p.partition_index for p in t.partitions]) for t in r.topics],
            None if cursor is None else (cursor.topic_name, cursor.partition_index))


def test_describe_topic_partitions_pages_through_the_topics_in_name_order(kafka: BlockingHarness) -> None:
    """KIP-966's DescribeTopicPartitions, as Kafka's handler answers (checked by the differential
    harness): name order, at most the limit's partitions, then a cursor to go on from."""
    kafka.create_topic("b", 2)
    kafka.create_topic("a", 3)
    assert pages(describe_partitions(kafka, ["b", "a"])) == ([("a", 0, [0, 1, 2]), ("b", 0, [0, 1])], None)
    assert pages(describe_partitions(kafka, ["a", "b"], limit=2)) == ([("a", 0, [0, 1])], ("a", 2))
    assert pages(describe_partitions(kafka, ["a", "b"], limit=2, cursor=("a", 2))) == (
        [("a", 0, [2]), ("b", 0, [0])], ("b", 1))
    assert pages(describe_partitions(kafka, ["a", "b"], limit=3)) == ([("a", 0, [0, 1, 2])], ("b", 0))
    every, _ = pages(describe_partitions(kafka, [], cursor=("b", 1)))
    assert every == [("b", 0, [1])]
    (topic,) = describe_partitions(kafka, ["a"], limit=1).topics
    node = kafka.broker.node_id
    assert (topic.topic_id, topic.is_internal) == (kafka.broker.metadata.image.topics["a"].topic_id, False)
    assert [(p.leader_id, p.replica_nodes, p.isr_nodes, p.eligible_leader_replicas) for p in topic.partitions] == \
        [(node, (node,), (node,), ())]


def test_describe_topic_partitions_names_what_it_cannot_describe(kafka: BlockingHarness) -> None:
    kafka.create_topic("a")
    described, _ = pages(describe_partitions(kafka, ["a", "missing", "bad/name"]))
    assert described == [("a", 0, [0]), ("bad/name", ErrorCode.invalid_topic_exception, []),
                         ("missing", ErrorCode.unknown_topic_or_partition, [])]
    # a cursor outside the topics asked for, or before partition 0: the whole request is refused
    for cursor in (("z", 0), ("a", -1)):
        assert pages(describe_partitions(kafka, ["a"], cursor=cursor)) == (
            [("a", ErrorCode.invalid_request, [])], None)


def test_describe_topic_partitions_tells_nothing_of_a_topic_without_describe(tmp_path: Path) -> None:
    with BlockingHarness(tmp_path / "secured", settings={"authorizer.class.name": STANDARD_AUTHORIZER}) as h:
        h.create_topic("a")
        (topic,) = describe_partitions(h, ["a"]).topics
        assert (topic.error_code, topic.topic_id, topic.partitions) == (ErrorCode.topic_authorization_failed,
                                                                        None, ())
        assert describe_partitions(h, []).topics == ()  # every topic: the hidden ones left out
