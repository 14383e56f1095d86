"""Topic administration through confluent-kafka's AdminClient: create (validate-only, configs,
bad names, replication), partitions, configs, cluster description, delete."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic, ResourceType

from tomyum.testing import BrokerProcess, wait_until

TIMEOUT = 20


@pytest.fixture
def admin(broker: BrokerProcess) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def error_of(future: object) -> int:
    with pytest.raises(KafkaException) as e:
        future.result(TIMEOUT)  # type: ignore[attr-defined]
    return int(e.value.args[0].code())


def test_validate_only_creates_nothing(admin: AdminClient, topic_name: str) -> None:
    admin.create_topics([NewTopic(topic_name, 2, 1)], validate_only=True)[topic_name].result(TIMEOUT)
    assert topic_name not in admin.list_topics(timeout=TIMEOUT).topics


def test_create_errors(admin: AdminClient, topic_name: str) -> None:
    assert error_of(admin.create_topics([NewTopic("bad/name", 1, 1)])["bad/name"]) == KafkaError.TOPIC_EXCEPTION
    assert error_of(admin.create_topics([NewTopic(topic_name, 1, 3)])[topic_name]) == \
        KafkaError.INVALID_REPLICATION_FACTOR
    assert error_of(admin.create_topics([NewTopic(topic_name, 1, 1, config={"retention.ms": "soon"})])[
        topic_name]) == KafkaError.INVALID_CONFIG
    assert error_of(admin.create_topics([NewTopic(topic_name, 1, 1, config={"no.such.key": "1"})])[
        topic_name]) == KafkaError.INVALID_CONFIG
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
    assert error_of(admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name]) == KafkaError.TOPIC_ALREADY_EXISTS


def test_partitions_configs_and_cluster(admin: AdminClient, topic_name: str, broker: BrokerProcess) -> None:
    admin.create_topics([NewTopic(topic_name, 2, 1, config={"retention.ms": "3600000",
                                                            "cleanup.policy": "delete"})])[topic_name].result(TIMEOUT)
    admin.create_partitions([NewPartitions(topic_name, 5)])[topic_name].result(TIMEOUT)
    wait_until(lambda: len(admin.list_topics(timeout=TIMEOUT).topics[topic_name].partitions) == 5, TIMEOUT,
               what="5 partitions")
    assert error_of(admin.create_partitions([NewPartitions(topic_name, 3)])[topic_name]) == \
        KafkaError.INVALID_PARTITIONS

    resource = ConfigResource(ResourceType.TOPIC, topic_name)
    configs = admin.describe_configs([resource])[resource].result(TIMEOUT)
    assert configs["retention.ms"].value == "3600000" and not configs["retention.ms"].is_default
    assert configs["segment.bytes"].value == "1073741824" and configs["segment.bytes"].is_default
    broker_resource = ConfigResource(ResourceType.BROKER, "1")
    broker_configs = admin.describe_configs([broker_resource])[broker_resource].result(TIMEOUT)
    assert broker_configs["num.partitions"].value == "1"

    cluster = admin.describe_cluster(request_timeout=TIMEOUT).result(TIMEOUT)
    assert cluster.controller.id == 1 and [n.port for n in cluster.nodes] == [broker.port]
    assert cluster.cluster_id

    admin.delete_topics([topic_name])[topic_name].result(TIMEOUT)
    assert error_of(admin.delete_topics([topic_name])[topic_name]) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_topics_and_configs_survive_restart(own_broker: BrokerProcess, topic_name: str) -> None:
    admin = AdminClient({"bootstrap.servers": own_broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 3, 1, config={"max.message.bytes": "5000"})])[topic_name].result(TIMEOUT)
    own_broker.restart()
    admin = AdminClient({"bootstrap.servers": own_broker.bootstrap})
    assert len(admin.list_topics(timeout=TIMEOUT).topics[topic_name].partitions) == 3
    resource = ConfigResource(ResourceType.TOPIC, topic_name)
    assert admin.describe_configs([resource])[resource].result(TIMEOUT)["max.message.bytes"].value == "5000"
