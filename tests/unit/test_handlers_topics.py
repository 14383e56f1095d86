"""CreateTopics (19), DeleteTopics (20) and CreatePartitions (37) called below the socket."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tomyum.errors import ErrorCode
from tomyum.testing.handlers import BlockingHarness

CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 19, 20, 37
COVERS = {CREATE_TOPICS: "CreateTopics", DELETE_TOPICS: "DeleteTopics", CREATE_PARTITIONS: "CreatePartitions"}


def create(kafka: BlockingHarness, version: int, name: str, partitions: int = 1, replication: int = 1,
           configs: dict[str, str] | None = None, validate_only: bool = False) -> Any:
    r = kafka.call(CREATE_TOPICS, version, {"timeout": 5000, "validate_only": validate_only, "topics": [
        {"name": name, "num_partitions": partitions, "replication_factor": replication,
         "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()]}]})
    (topic,) = r.topics
    return topic


@pytest.mark.parametrize("version", [2, 7])
def test_create_topics_creates_a_topic_with_its_partitions(kafka: BlockingHarness, version: int) -> None:
    topic = create(kafka, version, "orders", 3, configs={"retention.ms": "1000"})
    assert (topic.name, topic.error_code) == ("orders", ErrorCode.none)
    assert kafka.broker.metadata.topics()["orders"].num_partitions == 3
    assert kafka.broker.metadata.topic_config("orders")["retention.ms"] == 1000


def test_create_topics_v7_answers_the_topic_id_partitions_and_replication(kafka: BlockingHarness) -> None:
    topic = create(kafka, 7, "orders", -1, -1)
    assert topic.topic_id == kafka.broker.metadata.topics()["orders"].topic_id
    assert (topic.num_partitions, topic.replication_factor) == (kafka.broker.config["num.partitions"], 1)


def test_create_topics_validate_only_creates_nothing(kafka: BlockingHarness) -> None:
    checked = create(kafka, 7, "orders", 2, validate_only=True)
    assert checked.error_code == ErrorCode.none and checked.topic_id is not None  # Kafka makes one up too
    assert "orders" not in kafka.broker.metadata.topics()


def test_create_topics_v7_answers_every_config_of_the_topic_with_its_source(kafka: BlockingHarness) -> None:
    """As Kafka (v5+, KIP-525): the new topic's whole configuration, overrides and defaults."""
    configs = {c.name: (c.value, c.config_source) for c in create(kafka, 7, "orders", 1,
                                                                  configs={"retention.ms": "1000"}).configs}
    assert configs["retention.ms"] == ("1000", 1)
    assert configs["cleanup.policy"] == ("delete", 5) and "segment.bytes" in configs and len(configs) > 10


def test_create_topics_of_an_existing_topic_is_topic_already_exists(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    assert create(kafka, 7, "orders").error_code == ErrorCode.topic_already_exists


@pytest.mark.parametrize("name", ["bad/name", "", "x" * 250, "."])
def test_create_topics_of_an_illegal_name_is_invalid_topic(kafka: BlockingHarness, name: str) -> None:
    assert create(kafka, 7, name).error_code == ErrorCode.invalid_topic_exception


@pytest.mark.parametrize("name", ["__transaction_state", "__cluster_metadata", "__consumer_offsets"])
def test_create_topics_of_an_internal_topic_is_invalid_request(kafka: BlockingHarness, name: str) -> None:
    assert create(kafka, 7, name).error_code == ErrorCode.invalid_request


def test_create_topics_with_zero_partitions_is_invalid_partitions(kafka: BlockingHarness) -> None:
    assert create(kafka, 7, "orders", 0).error_code == ErrorCode.invalid_partitions


def test_create_topics_with_more_replicas_than_brokers_is_invalid_replication_factor(kafka: BlockingHarness) -> None:
    assert create(kafka, 7, "orders", 1, 3).error_code == ErrorCode.invalid_replication_factor


def test_create_topics_with_a_bad_config_value_is_invalid_config(kafka: BlockingHarness) -> None:
    assert create(kafka, 7, "orders", configs={"retention.ms": "soon"}).error_code == ErrorCode.invalid_config
    assert "orders" not in kafka.broker.metadata.topics()


def test_create_topics_naming_a_topic_twice_answers_it_once_invalid_request_and_creates_nothing(
        kafka: BlockingHarness) -> None:
    topic = {"name": "orders", "num_partitions": 1, "replication_factor": 1}
    other = topic | {"name": "other"}
    r = kafka.call(CREATE_TOPICS, 7, {"timeout": 5000, "topics": [topic, other, topic]})
    assert [(t.name, t.error_code, t.error_message) for t in r.topics] == [
        ("orders", ErrorCode.invalid_request, "Duplicate topic name."), ("other", ErrorCode.none, None)]
    assert set(kafka.broker.metadata.topics()) == {"other"}


def test_create_partitions_naming_a_topic_twice_answers_it_once_invalid_request_and_grows_nothing(
        kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    grow = {"name": "orders", "count": 3, "assignments": None}
    r = kafka.call(CREATE_PARTITIONS, 3, {"timeout": 5000, "validate_only": False,
                                          "topics": [grow, grow | {"count": 4}]})
    assert [(t.name, t.error_code, t.error_message) for t in r.results] == [
        ("orders", ErrorCode.invalid_request, "Duplicate topic name.")]
    assert kafka.broker.metadata.topics()["orders"].num_partitions == 1


@pytest.mark.parametrize("version", [1, 6])
def test_delete_topics_deletes_a_topic_by_name(kafka: BlockingHarness, version: int) -> None:
    kafka.create_topic("orders")
    request = {"timeout": 5000, "topic_names": ["orders"], "topics": [{"name": "orders", "topic_id": None}]}
    (entry,) = kafka.call(DELETE_TOPICS, version, request).responses
    assert (entry.name, entry.error_code) == ("orders", ErrorCode.none)
    assert "orders" not in kafka.broker.metadata.topics()


def test_delete_topics_v6_deletes_a_topic_by_id_and_answers_unknown_ids(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    topic_id = kafka.broker.metadata.topics()["orders"].topic_id
    r = kafka.call(DELETE_TOPICS, 6, {"timeout": 5000, "topics": [{"name": None, "topic_id": topic_id},
                                                                  {"name": None, "topic_id": uuid.uuid4()}]})
    assert [(e.name, e.error_code) for e in r.responses] == [("orders", ErrorCode.none),
                                                            (None, ErrorCode.unknown_topic_id)]


def test_delete_topics_of_an_unknown_topic_is_unknown_topic_or_partition(kafka: BlockingHarness) -> None:
    (entry,) = kafka.call(DELETE_TOPICS, 5, {"timeout": 5000, "topic_names": ["absent"]}).responses
    assert entry.error_code == ErrorCode.unknown_topic_or_partition


def test_delete_topics_of_the_offsets_topic_is_invalid_topic(kafka: BlockingHarness) -> None:
    kafka.run(kafka.broker.offsets.ensure_topic())
    (entry,) = kafka.call(DELETE_TOPICS, 5, {"timeout": 5000, "topic_names": ["__consumer_offsets"]}).responses
    assert entry.error_code == ErrorCode.invalid_topic_exception
    assert "__consumer_offsets" in kafka.broker.metadata.topics()


def test_delete_topics_while_deletion_is_disabled_is_topic_deletion_disabled(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    kafka.broker.config.update({"delete.topic.enable": False})
    (entry,) = kafka.call(DELETE_TOPICS, 5, {"timeout": 5000, "topic_names": ["orders"]}).responses
    assert entry.error_code == ErrorCode.topic_deletion_disabled


def create_partitions(kafka: BlockingHarness, version: int, name: str, count: int,
                      assignments: list[list[int]] | None = None, validate_only: bool = False) -> Any:
    r = kafka.call(CREATE_PARTITIONS, version, {"timeout": 5000, "validate_only": validate_only, "topics": [
        {"name": name, "count": count,
         "assignments": None if assignments is None else [{"broker_ids": a} for a in assignments]}]})
    (entry,) = r.results
    return entry


@pytest.mark.parametrize("version", [0, 3])
def test_create_partitions_adds_partitions_to_a_topic(kafka: BlockingHarness, version: int) -> None:
    kafka.create_topic("orders", 1)
    assert create_partitions(kafka, version, "orders", 3).error_code == ErrorCode.none
    assert kafka.broker.metadata.topics()["orders"].num_partitions == 3


def test_create_partitions_validate_only_adds_nothing(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders", 1)
    assert create_partitions(kafka, 3, "orders", 3, validate_only=True).error_code == ErrorCode.none
    assert kafka.broker.metadata.topics()["orders"].num_partitions == 1


def test_create_partitions_that_would_not_increase_the_count_is_invalid_partitions(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders", 2)
    assert create_partitions(kafka, 3, "orders", 2).error_code == ErrorCode.invalid_partitions
    assert create_partitions(kafka, 3, "orders", 1).error_code == ErrorCode.invalid_partitions


def test_create_partitions_of_an_unknown_topic_is_unknown_topic_or_partition(kafka: BlockingHarness) -> None:
    assert create_partitions(kafka, 3, "absent", 2).error_code == ErrorCode.unknown_topic_or_partition


def test_create_partitions_of_the_offsets_topic_is_invalid_topic(kafka: BlockingHarness) -> None:
    kafka.run(kafka.broker.offsets.ensure_topic())
    assert create_partitions(kafka, 3, "__consumer_offsets", 500).error_code == ErrorCode.invalid_topic_exception


def test_create_partitions_with_assignments_naming_other_brokers_is_invalid_replica_assignment(
        kafka: BlockingHarness) -> None:
    kafka.create_topic("orders", 1)
    node = kafka.broker.node_id
    assert create_partitions(kafka, 3, "orders", 2, [[node + 1]]).error_code == ErrorCode.invalid_replica_assignment
    assert create_partitions(kafka, 3, "orders", 3, [[node]]).error_code == ErrorCode.invalid_replica_assignment
    assert create_partitions(kafka, 3, "orders", 2, [[node]]).error_code == ErrorCode.none
