"""Internal topics belong to the broker: clients may read them, not write, delete, grow,
truncate, reconfigure or pre-create them (Kafka's errors), and a record in them that the
broker cannot read — written straight into the file — is skipped at start with a warning
instead of stopping the broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from tomyum.coordinator.group.offsets_log import OFFSETS_TOPIC, offset_key
from tomyum.coordinator.runtime import partition_for
from tomyum.protocol.records import build_batch, iter_batches
from tomyum.testing import BrokerProcess

TIMEOUT = 30
pytestmark = pytest.mark.timeout(120)


def commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    c.close()


def committed(bootstrap: str, group: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return int(c.committed([TopicPartition(topic, 0)], timeout=TIMEOUT)[0].offset)
    finally:
        c.close()


def error_of(future: object) -> KafkaError:
    with pytest.raises(KafkaException) as e:
        future.result(TIMEOUT)  # type: ignore[attr-defined]
    return e.value.args[0]  # type: ignore[no-any-return]


def test_clients_cannot_write_delete_grow_truncate_or_reconfigure_internal_topics(own_broker: BrokerProcess,
                                                                                 topic_name: str) -> None:
    b = own_broker.bootstrap
    admin = AdminClient({"bootstrap.servers": b})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
    commit(b, "g", topic_name, 7)  # the broker makes __consumer_offsets

    errors: list[object] = []
    p = Producer({"bootstrap.servers": b, "message.timeout.ms": 5000})
    p.produce(OFFSETS_TOPIC, key=offset_key("g", topic_name, 0), value=b"\x00\x03zz", partition=0,
              on_delivery=lambda err, msg: errors.append(err))
    p.flush(TIMEOUT)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.TOPIC_EXCEPTION  # type: ignore[attr-defined]

    assert error_of(admin.delete_topics([OFFSETS_TOPIC])[OFFSETS_TOPIC]).code() == KafkaError.TOPIC_EXCEPTION
    assert error_of(admin.create_partitions([NewPartitions(OFFSETS_TOPIC, 60)])[OFFSETS_TOPIC]).code() == \
        KafkaError.TOPIC_EXCEPTION
    entry = ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, OFFSETS_TOPIC, incremental_configs=[entry])
    assert error_of(admin.incremental_alter_configs([resource])[resource]).code() == KafkaError.POLICY_VIOLATION
    low = admin.delete_records([TopicPartition(OFFSETS_TOPIC, partition_for("g", 50), 1)])
    assert error_of(next(iter(low.values()))).code() == KafkaError.TOPIC_EXCEPTION
    for name in ("__transaction_state", "__cluster_metadata"):
        assert error_of(admin.create_topics([NewTopic(name, 3, 1)])[name]).code() == KafkaError.INVALID_REQUEST
    assert "__transaction_state" not in admin.list_topics(timeout=TIMEOUT).topics

    own_broker.restart()  # and the group's offsets are intact
    assert committed(b, "g", topic_name) == 7
    topics = AdminClient({"bootstrap.servers": b}).list_topics(timeout=TIMEOUT).topics
    assert len(topics[OFFSETS_TOPIC].partitions) == 50


def test_an_unreadable_record_in_an_internal_topic_is_skipped_at_start(own_broker: BrokerProcess,
                                                                      topic_name: str) -> None:
    b = own_broker.bootstrap
    admin = AdminClient({"bootstrap.servers": b})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
    commit(b, "victim", topic_name, 3)
    commit(b, "bystander", topic_name, 5)
    own_broker.stop()
    # the record that used to brick the broker: a valid offset-commit key, a 3-byte value
    segment = own_broker.data_dir / f"{OFFSETS_TOPIC}-{partition_for('victim', 50)}" / "00000000000000000000.log"
    data = segment.read_bytes()
    next_offset = max(h.next_offset for h in iter_batches(data))
    segment.write_bytes(data + build_batch([(offset_key("victim", topic_name, 0), b"\x00\x03z")],
                                           base_offset=next_offset))
    own_broker.start()
    assert "skipping the record at offset" in own_broker.output()
    assert committed(b, "bystander", topic_name) == 5
    assert committed(b, "victim", topic_name) == 3  # the unreadable commit after it changed nothing
    own_broker.restart()
    assert committed(b, "bystander", topic_name) == 5


def test_colliding_names_and_min_insync_replicas(broker: BrokerProcess, tmp_path: Path) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("metrics.cpu", 1, 1)])["metrics.cpu"].result(TIMEOUT)
    err = error_of(admin.create_topics([NewTopic("metrics_cpu", 1, 1)])["metrics_cpu"])
    assert err.code() == KafkaError.TOPIC_EXCEPTION and "collides with existing topic: metrics.cpu" in err.str()

    # Kafka 4 (KIP-966): the effective min ISR is min(min.insync.replicas, replication factor),
    # so a one-replica topic takes acks=all whatever its min.insync.replicas
    admin.create_topics([NewTopic("guarded", 1, 1, config={"min.insync.replicas": "2"})])["guarded"].result(TIMEOUT)
    outcomes: list[object] = []
    strict = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "retries": 0})
    strict.produce("guarded", value=b"x", on_delivery=lambda err, msg: outcomes.append(err))
    relaxed = Producer({"bootstrap.servers": broker.bootstrap, "acks": "1"})
    relaxed.produce("guarded", value=b"y", on_delivery=lambda err, msg: outcomes.append(err))
    assert strict.flush(TIMEOUT) == 0 and relaxed.flush(TIMEOUT) == 0
    assert outcomes == [None, None]
