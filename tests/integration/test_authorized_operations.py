"""KIP-430: asked for, the operations a principal may perform are reported — without an
authorizer, as Kafka does, every operation the resource type supports (8 for a topic, 7 for
the cluster, 5 for a group); not asked for, none."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, TopicCollection
from confluent_kafka.admin import AclOperation, AdminClient, NewTopic

from tomyum.testing import BrokerProcess

TIMEOUT = 30
pytestmark = pytest.mark.timeout(120)

TOPIC_OPS = {AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE, AclOperation.ALTER,
             AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS}
CLUSTER_OPS = {AclOperation.CREATE, AclOperation.CLUSTER_ACTION, AclOperation.DESCRIBE_CONFIGS,
               AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE, AclOperation.ALTER, AclOperation.DESCRIBE}
GROUP_OPS = {AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE, AclOperation.DESCRIBE_CONFIGS,
             AclOperation.ALTER_CONFIGS}


def test_authorized_operations_are_reported_when_asked(broker: BrokerProcess, topic_name: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
    asked = admin.describe_topics(TopicCollection([topic_name]), include_authorized_operations=True)
    assert set(asked[topic_name].result(TIMEOUT).authorized_operations) == TOPIC_OPS
    plain = admin.describe_topics(TopicCollection([topic_name]))
    assert not plain[topic_name].result(TIMEOUT).authorized_operations

    cluster = admin.describe_cluster(include_authorized_operations=True).result(TIMEOUT)
    assert set(cluster.authorized_operations) == CLUSTER_OPS
    assert not admin.describe_cluster().result(TIMEOUT).authorized_operations

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic_name}"})
    c.subscribe([topic_name])
    c.poll(1)
    try:
        group = admin.describe_consumer_groups([f"g-{topic_name}"], include_authorized_operations=True)
        assert set(group[f"g-{topic_name}"].result(TIMEOUT).authorized_operations) == GROUP_OPS
    finally:
        c.close()
