"""ElectLeaders (43), AlterPartitionReassignments (45), ListPartitionReassignments (46) and
DescribeQuorum (55) called below the socket: one broker, one replica of every partition, and a
metadata quorum of one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tomyum.config import STANDARD_AUTHORIZER
from tomyum.errors import ErrorCode
from tomyum.metadata.properties import read_properties
from tomyum.metadata.records import parse_short_uuid
from tomyum.testing.handlers import BlockingHarness

ELECT_LEADERS, ALTER_REASSIGNMENTS, LIST_REASSIGNMENTS, DESCRIBE_QUORUM = 43, 45, 46, 55
COVERS = {ELECT_LEADERS: "ElectLeaders", ALTER_REASSIGNMENTS: "AlterPartitionReassignments",
          LIST_REASSIGNMENTS: "ListPartitionReassignments", DESCRIBE_QUORUM: "DescribeQuorum"}
PREFERRED, UNCLEAN = 0, 1


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[BlockingHarness]:
    """An authorizer and no ACLs: the anonymous principal may do nothing."""
    with BlockingHarness(tmp_path / "secured", settings={"authorizer.class.name": STANDARD_AUTHORIZER}) as h:
        h.create_topic("t", 2)
        yield h


def results(r: Any) -> dict[tuple[str, int], int]:
    return {(t.topic, p.partition_id): p.error_code for t in r.replica_election_results for p in t.partition_result}


@pytest.mark.parametrize("election", [PREFERRED, UNCLEAN])
def test_no_election_is_ever_needed_and_unknown_partitions_are_named(kafka: BlockingHarness, election: int) -> None:
    kafka.create_topic("t", 2)
    r = kafka.call(ELECT_LEADERS, 2, {"election_type": election, "timeout": 10000, "topic_partitions": [
        {"topic": "t", "partitions": [0, 1, 7]}, {"topic": "absent", "partitions": [0]}]})
    assert r.error_code == ErrorCode.none
    assert results(r) == {("t", 0): ErrorCode.election_not_needed, ("t", 1): ErrorCode.election_not_needed,
                          ("t", 7): ErrorCode.unknown_topic_or_partition,
                          ("absent", 0): ErrorCode.unknown_topic_or_partition}


def test_electing_every_partition_answers_each_topic_with_none_of_them(kafka: BlockingHarness) -> None:
    """Kafka leaves out the partitions that need no election when asked for all of them."""
    kafka.create_topic("t", 2)
    kafka.create_topic("u", 1)
    r = kafka.call(ELECT_LEADERS, 0, {"timeout": 10000, "topic_partitions": None})
    assert sorted((t.topic, t.partition_result) for t in r.replica_election_results) == [("t", ()), ("u", ())]


def test_an_unknown_election_type_is_invalid_request_for_every_partition(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    r = kafka.call(ELECT_LEADERS, 1, {"election_type": 7, "timeout": 10000,
                                      "topic_partitions": [{"topic": "t", "partitions": [0]}]})
    assert r.error_code == ErrorCode.invalid_request
    assert [(p.error_code, p.error_message) for t in r.replica_election_results for p in t.partition_result] == \
        [(ErrorCode.invalid_request, "Unknown election type 7")]


def reassign(kafka: BlockingHarness, replicas: list[int] | None, topic: str = "t", partition: int = 0) -> Any:
    r = kafka.call(ALTER_REASSIGNMENTS, 1, {"timeout": 10000, "topics": [
        {"name": topic, "partitions": [{"partition_index": partition, "replicas": replicas}]}]})
    ((topic_result,),) = [r.responses]
    (part,) = topic_result.partitions
    return r.error_code, part.error_code


def test_a_reassignment_onto_the_one_broker_succeeds_and_any_other_is_refused(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    node = kafka.broker.node_id
    assert reassign(kafka, [node]) == (0, 0)
    assert reassign(kafka, [node + 1]) == (0, ErrorCode.invalid_replica_assignment)
    assert reassign(kafka, [node, node]) == (0, ErrorCode.invalid_replica_assignment)
    assert reassign(kafka, []) == (0, ErrorCode.invalid_replica_assignment)
    assert reassign(kafka, None) == (0, ErrorCode.no_reassignment_in_progress)  # a cancellation
    assert reassign(kafka, [node], topic="absent") == (0, ErrorCode.unknown_topic_or_partition)
    assert reassign(kafka, [node], partition=4) == (0, ErrorCode.unknown_topic_or_partition)
    # none is ever in progress, and the partition is where it was
    assert kafka.call(LIST_REASSIGNMENTS, 0, {"timeout": 10000, "topics": None}).topics == ()
    assert kafka.call(LIST_REASSIGNMENTS, 0, {"timeout": 10000, "topics": [
        {"name": "t", "partition_indexes": [0]}]}).topics == ()
    assert kafka.broker.metadata.image.partitions(kafka.broker.metadata.image.topics["t"])[0].replicas == (node,)


def test_the_metadata_quorum_is_this_broker_alone(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    before = kafka.broker.clock.time_ms()
    r = kafka.call(DESCRIBE_QUORUM, 2, {"topics": [{"topic_name": "__cluster_metadata",
                                                    "partitions": [{"partition_index": 0}]}]})
    ((partition,),) = [p for t in r.topics for p in [t.partitions]]
    node, end = kafka.broker.node_id, kafka.broker.metadata.log.next_offset
    assert (partition.error_code, partition.leader_id, partition.high_watermark) == (0, node, end)
    assert end > 0 and partition.leader_epoch > 0 and partition.observers == ()
    (voter,) = partition.current_voters
    assert (voter.replica_id, voter.log_end_offset) == (node, end)
    assert voter.last_fetch_timestamp >= before and voter.last_caught_up_timestamp >= before
    directory = read_properties(kafka.broker.data_dir / "meta.properties")["directory.id"]
    assert voter.replica_directory_id == parse_short_uuid(directory)
    ((n,),) = [r.nodes]
    assert n.node_id == node and [(x.host, x.port) for x in n.listeners] == \
        [(listener.advertised_host, listener.advertised_port) for listener in kafka.broker.listeners]


@pytest.mark.parametrize("topic,partitions", [("t", (0,)), ("__cluster_metadata", (1,)),
                                              ("__cluster_metadata", (0, 1))])
def test_any_other_partition_is_unknown(kafka: BlockingHarness, topic: str, partitions: tuple[int, ...]) -> None:
    r = kafka.call(DESCRIBE_QUORUM, 1, {"topics": [{"topic_name": topic, "partitions": [
        {"partition_index": i} for i in partitions]}]})
    assert [(t.topic_name, p.partition_index, p.error_code) for t in r.topics for p in t.partitions] == \
        [(topic, i, ErrorCode.unknown_topic_or_partition) for i in partitions]


def test_without_cluster_permissions_each_is_cluster_authorization_failed(secured: BlockingHarness) -> None:
    denied = ErrorCode.cluster_authorization_failed
    r = secured.call(ELECT_LEADERS, 2, {"election_type": PREFERRED, "timeout": 10000,
                                        "topic_partitions": [{"topic": "t", "partitions": [0]}]})
    assert (r.error_code, results(r)) == (denied, {("t", 0): denied})
    assert reassign(secured, [secured.broker.node_id]) == (denied, denied)
    assert secured.call(LIST_REASSIGNMENTS, 0, {"timeout": 10000, "topics": None}).error_code == denied
    r = secured.call(DESCRIBE_QUORUM, 2, {"topics": [{"topic_name": "__cluster_metadata",
                                                      "partitions": [{"partition_index": 0}]}]})
    assert (r.error_code, r.topics) == (denied, ())
