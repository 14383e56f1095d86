"""DescribeConfigs (32), AlterConfigs (33) and IncrementalAlterConfigs (44) called below the socket."""

from __future__ import annotations

from typing import Any

import pytest

from tomyum.errors import ErrorCode
from tomyum.testing.handlers import BlockingHarness

DESCRIBE_CONFIGS, ALTER_CONFIGS, INCREMENTAL_ALTER_CONFIGS = 32, 33, 44
COVERS = {DESCRIBE_CONFIGS: "DescribeConfigs", ALTER_CONFIGS: "AlterConfigs",
          INCREMENTAL_ALTER_CONFIGS: "IncrementalAlterConfigs"}
TOPIC, BROKER = 2, 4
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
SOURCE_TOPIC, SOURCE_DYNAMIC_BROKER, SOURCE_DEFAULT = 1, 2, 5


def describe(kafka: BlockingHarness, version: int, resource_type: int, name: str,
             keys: list[str] | None = None, synonyms: bool = False) -> Any:
    r = kafka.call(DESCRIBE_CONFIGS, version, {"include_synonyms": synonyms, "resources": [
        {"resource_type": resource_type, "resource_name": name, "configuration_keys": keys}]})
    (result,) = r.results
    return result


def by_name(result: Any) -> dict[str, Any]:
    return {c.name: c for c in result.configs}


@pytest.mark.parametrize("version", [1, 4])
def test_describe_configs_of_a_topic_tells_overrides_from_defaults(kafka: BlockingHarness, version: int) -> None:
    kafka.create_topic("orders", 1, {"retention.ms": "1000"})
    result = describe(kafka, version, TOPIC, "orders", synonyms=True)
    assert result.error_code == ErrorCode.none
    configs = by_name(result)
    assert (configs["retention.ms"].value, configs["retention.ms"].config_source) == ("1000", SOURCE_TOPIC)
    assert configs["cleanup.policy"].config_source == SOURCE_DEFAULT
    assert configs["retention.ms"].synonyms[0].source == SOURCE_TOPIC


def test_describe_configs_answers_only_the_keys_asked_for(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    assert set(by_name(describe(kafka, 4, TOPIC, "orders", ["retention.ms"]))) == {"retention.ms"}


def test_describe_configs_of_this_broker_lists_its_configs(kafka: BlockingHarness) -> None:
    configs = by_name(describe(kafka, 4, BROKER, str(kafka.broker.node_id)))
    assert configs["num.partitions"].value == str(kafka.broker.config["num.partitions"])
    assert configs["node.id"].read_only


def test_describe_configs_of_an_unknown_topic_is_unknown_topic_or_partition(kafka: BlockingHarness) -> None:
    assert describe(kafka, 4, TOPIC, "absent").error_code == ErrorCode.unknown_topic_or_partition


@pytest.mark.parametrize("name", ["99", "not-a-number"])
def test_describe_configs_of_another_broker_is_invalid_request(kafka: BlockingHarness, name: str) -> None:
    assert describe(kafka, 4, BROKER, name).error_code == ErrorCode.invalid_request


def test_describe_configs_of_an_unsupported_resource_type_is_invalid_request(kafka: BlockingHarness) -> None:
    assert describe(kafka, 4, 3, "g").error_code == ErrorCode.invalid_request  # 3: a group


def alter(kafka: BlockingHarness, version: int, resource_type: int, name: str, configs: dict[str, str | None],
          validate_only: bool = False) -> Any:
    r = kafka.call(ALTER_CONFIGS, version, {"validate_only": validate_only, "resources": [
        {"resource_type": resource_type, "resource_name": name,
         "configs": [{"name": k, "value": v} for k, v in configs.items()]}]})
    (entry,) = r.responses
    return entry


@pytest.mark.parametrize("version", [0, 2])
def test_alter_configs_replaces_a_topics_whole_set_of_overrides(kafka: BlockingHarness, version: int) -> None:
    kafka.create_topic("orders", 1, {"retention.ms": "1000"})
    assert alter(kafka, version, TOPIC, "orders", {"cleanup.policy": "compact"}).error_code == ErrorCode.none
    cfg = kafka.broker.metadata.topic_config("orders")
    assert dict(cfg.overrides) == {"cleanup.policy": ["compact"]}


def test_alter_configs_validate_only_changes_nothing(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    assert alter(kafka, 2, TOPIC, "orders", {"retention.ms": "5"}, validate_only=True).error_code == ErrorCode.none
    assert not kafka.broker.metadata.topic_config("orders").overrides


def test_alter_configs_of_a_dynamic_broker_config_takes_effect_at_once(kafka: BlockingHarness) -> None:
    node = str(kafka.broker.node_id)
    assert alter(kafka, 2, BROKER, node, {"log.retention.ms": "60000"}).error_code == ErrorCode.none
    assert kafka.broker.config["log.retention.ms"] == 60000
    assert by_name(describe(kafka, 4, BROKER, node))["log.retention.ms"].config_source == SOURCE_DYNAMIC_BROKER


def test_alter_configs_with_a_bad_value_is_invalid_config(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    assert alter(kafka, 2, TOPIC, "orders", {"retention.ms": "soon"}).error_code == ErrorCode.invalid_config
    assert alter(kafka, 2, TOPIC, "orders", {"no.such.key": "1"}).error_code == ErrorCode.invalid_config


@pytest.mark.parametrize("resource_type", [TOPIC, BROKER])
def test_alter_configs_with_a_null_value_is_invalid_request_and_changes_nothing(
        kafka: BlockingHarness, resource_type: int) -> None:
    kafka.create_topic("orders", 1, {"retention.ms": "1000"})
    name = "orders" if resource_type == TOPIC else str(kafka.broker.node_id)
    entry = alter(kafka, 2, resource_type, name, {"segment.ms": "5000", "retention.ms": None})
    assert (entry.error_code, entry.error_message) == (ErrorCode.invalid_request, "Null value not supported for : retention.ms")
    assert dict(kafka.broker.metadata.topic_config("orders").overrides) == {"retention.ms": 1000}


def test_incremental_alter_configs_naming_a_key_twice_is_invalid_request_and_changes_nothing(
        kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    entry = incremental(kafka, 1, "orders", ("retention.ms", SET, "5"), ("retention.ms", SET, "6"))
    assert (entry.error_code, entry.error_message) == (ErrorCode.invalid_request, "Error due to duplicate config keys")
    assert not kafka.broker.metadata.topic_config("orders").overrides


def test_alter_configs_of_an_unknown_topic_is_unknown_topic_or_partition(kafka: BlockingHarness) -> None:
    assert alter(kafka, 2, TOPIC, "absent", {"retention.ms": "5"}).error_code == ErrorCode.unknown_topic_or_partition


def test_alter_configs_of_the_offsets_topic_is_a_policy_violation(kafka: BlockingHarness) -> None:
    kafka.run(kafka.broker.offsets.ensure_topic())
    entry = alter(kafka, 2, TOPIC, "__consumer_offsets", {"retention.ms": "5"})
    assert entry.error_code == ErrorCode.policy_violation


def incremental(kafka: BlockingHarness, version: int, name: str, *ops: tuple[str, int, str | None],
                resource_type: int = TOPIC) -> Any:
    r = kafka.call(INCREMENTAL_ALTER_CONFIGS, version, {"resources": [
        {"resource_type": resource_type, "resource_name": name,
         "configs": [{"name": k, "config_operation": op, "value": v} for k, op, v in ops]}]})
    (entry,) = r.responses
    return entry


@pytest.mark.parametrize("version", [0, 1])
def test_incremental_alter_configs_sets_and_deletes_single_keys(kafka: BlockingHarness, version: int) -> None:
    kafka.create_topic("orders", 1, {"retention.ms": "1000", "segment.ms": "2000"})
    entry = incremental(kafka, version, "orders", ("retention.ms", DELETE, None), ("max.message.bytes", SET, "4096"))
    assert entry.error_code == ErrorCode.none
    assert dict(kafka.broker.metadata.topic_config("orders").overrides) == {"segment.ms": 2000,
                                                                            "max.message.bytes": 4096}


def test_incremental_alter_configs_appends_to_and_subtracts_from_list_configs(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    assert incremental(kafka, 1, "orders", ("cleanup.policy", APPEND, "compact")).error_code == ErrorCode.none
    assert kafka.broker.metadata.topic_config("orders")["cleanup.policy"] == ["delete", "compact"]
    assert incremental(kafka, 1, "orders", ("cleanup.policy", SUBTRACT, "delete")).error_code == ErrorCode.none
    assert kafka.broker.metadata.topic_config("orders")["cleanup.policy"] == ["compact"]


def test_incremental_append_to_a_config_that_is_not_a_list_is_invalid_config(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    assert incremental(kafka, 1, "orders", ("retention.ms", APPEND, "5")).error_code == ErrorCode.invalid_config


def test_incremental_alter_configs_of_the_offsets_topic_is_a_policy_violation(kafka: BlockingHarness) -> None:
    kafka.run(kafka.broker.offsets.ensure_topic())
    entry = incremental(kafka, 1, "__consumer_offsets", ("retention.ms", SET, "5"))
    assert entry.error_code == ErrorCode.policy_violation


def test_incremental_alter_configs_of_an_unknown_operation_is_invalid_request(kafka: BlockingHarness) -> None:
    kafka.create_topic("orders")
    assert incremental(kafka, 1, "orders", ("retention.ms", 9, "5")).error_code == ErrorCode.invalid_request


GROUP = 32


def test_group_configs_are_described_altered_and_bounded(kafka: BlockingHarness) -> None:
    """Resource type 32 (KIP-848's group configs): the broker's group settings by default, an
    override per group within Kafka's bounds; share-group keys accepted and ignored."""
    described = by_name(describe(kafka, 4, GROUP, "g1", synonyms=True))
    assert (described["consumer.session.timeout.ms"].value, described["consumer.session.timeout.ms"].config_source) \
        == ("45000", SOURCE_DEFAULT)
    ok = kafka.call(INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{"resource_type": GROUP, "resource_name": "g1",
                                                                  "configs": [{"name": "consumer.session.timeout.ms",
                                                                               "config_operation": SET,
                                                                               "value": "50000"}]}]})
    assert ok.responses[0].error_code == ErrorCode.none
    described = by_name(describe(kafka, 4, GROUP, "g1", synonyms=True))
    entry = described["consumer.session.timeout.ms"]
    assert (entry.value, entry.config_source) == ("50000", 8)
    assert [s.name for s in entry.synonyms] == ["consumer.session.timeout.ms", "group.consumer.session.timeout.ms"]
    bad = kafka.call(INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{"resource_type": GROUP, "resource_name": "g1",
                                                                   "configs": [{"name": "consumer.session.timeout.ms",
                                                                                "config_operation": SET,
                                                                                "value": "1"}]}]})
    assert bad.responses[0].error_code == ErrorCode.invalid_config
    assert describe(kafka, 4, GROUP, "g2").error_code == ErrorCode.none  # any group id, configured or not


def test_a_kafka_broker_key_tomyum_does_not_implement_is_accepted_at_run_time(kafka: BlockingHarness) -> None:
    r = kafka.call(INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{"resource_type": 4, "resource_name": "1",
                                                                 "configs": [{"name": "num.io.threads",
                                                                              "config_operation": SET,
                                                                              "value": "16"}]}]})
    assert r.responses[0].error_code == ErrorCode.none
