"""AlterConfigs and IncrementalAlterConfigs through confluent-kafka's AdminClient: topic and
broker configs, validation, validate-only, sources in DescribeConfigs, effect without a
restart, and persistence across one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)

from tests.integration.test_bad_input import connect, decode_response, kio_request, read_frame
from tests.conftest import BrokerWith
from tomyum.config import TOPIC_CONFIGS
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until

TIMEOUT = 20
SET, DELETE = AlterConfigOpType.SET.value, AlterConfigOpType.DELETE.value
INVALID_REQUEST = 42
#: AlterConfigs (key 33) is deprecated in the client, and still what these tests exercise
LEGACY_ALTER = pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")
DYNAMIC_TOPIC, DYNAMIC_BROKER, DYNAMIC_DEFAULT, STATIC, DEFAULT = (
    ConfigSource.DYNAMIC_TOPIC_CONFIG.value, ConfigSource.DYNAMIC_BROKER_CONFIG.value,
    ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value, ConfigSource.STATIC_BROKER_CONFIG.value,
    ConfigSource.DEFAULT_CONFIG.value)


@pytest.fixture
def cbroker(broker_with: BrokerWith) -> Iterator[BrokerProcess | ExternalBroker]:
    with broker_with({"log.retention.check.interval.ms": "100"}) as b:
        yield b


def admin_of(b: BrokerProcess) -> AdminClient:
    return AdminClient({"bootstrap.servers": b.bootstrap})


def describe(admin: AdminClient, resource: ConfigResource) -> dict[str, ConfigEntry]:
    return admin.describe_configs([resource])[resource].result(TIMEOUT)  # type: ignore[no-any-return]


def describe_once(admin: AdminClient, resource: ConfigResource, applied: Any) -> dict[str, ConfigEntry]:
    """DescribeConfigs once ``applied(configs)`` holds: Kafka answers an alteration once the
    controller has committed it, and its broker applies the record a moment later."""
    def once() -> dict[str, ConfigEntry] | None:
        try:
            configs = describe(admin, resource)
        except KafkaException as e:  # Kafka's broker may not know a topic just created yet
            if e.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
            return None
        return configs if applied(configs) else None

    return wait_until(once, timeout=TIMEOUT, what=f"the alteration of {resource} applied")


def incremental(admin: AdminClient, resource: ConfigResource, *entries: tuple[str, str | None, AlterConfigOpType],
                validate_only: bool = False) -> None:
    for name, value, op in entries:
        resource.add_incremental_config(ConfigEntry(name, value, incremental_operation=op))
    admin.incremental_alter_configs([resource], validate_only=validate_only)[resource].result(TIMEOUT)


def raw_incremental(b: BrokerProcess, resource_name: str, *ops: tuple[str, str | None, int],
                    resource_type: int = ResourceType.BROKER.value, validate_only: bool = False) -> Any:
    """IncrementalAlterConfigs v1 by hand: librdkafka refuses the broker resource "" (the
    cluster-wide default) and waits for a broker named by any other id to exist."""
    from kio.schema.incremental_alter_configs.v1 import request as req

    body = req.IncrementalAlterConfigsRequest(validate_only=validate_only, resources=(req.AlterConfigsResource(
        resource_type=resource_type, resource_name=resource_name, configs=tuple(
            req.AlterableConfig(name=name, config_operation=op, value=value) for name, value, op in ops)),))
    with connect(b) as s:
        s.sendall(kio_request(44, 1, 5, body))
        (response,) = decode_response(44, 1, read_frame(s)).responses  # type: ignore[attr-defined]
    return response


def set_cluster_default(b: BrokerProcess, name: str, value: str) -> None:
    assert raw_incremental(b, "", (name, value, SET)).error_code == 0


def raw_describe(b: BrokerProcess, resource_type: ResourceType, resource_name: str,
                 keys: tuple[str, ...] | None = None, include_documentation: bool = False) -> Any:
    """DescribeConfigs v4 with synonyms, whose order the AdminClient (a dict by name) loses."""
    from kio.schema.describe_configs.v4 import request as req

    body = req.DescribeConfigsRequest(include_synonyms=True, include_documentation=include_documentation, resources=(
        req.DescribeConfigsResource(resource_type=resource_type.value, resource_name=resource_name,
                                    configuration_keys=keys),))
    with connect(b) as s:
        s.sendall(kio_request(32, 4, 6, body))
        (result,) = decode_response(32, 4, read_frame(s)).results  # type: ignore[attr-defined]
    return result


def sources(entry: Any) -> list[tuple[str, str | None, int]]:
    return [(s.name, s.value, s.source) for s in entry.synonyms]


def failure(call: object) -> KafkaError:
    with pytest.raises(KafkaException) as e:
        call.result(TIMEOUT)  # type: ignore[attr-defined]
    return e.value.args[0]  # type: ignore[no-any-return]


@LEGACY_ALTER
def test_topic_configs_set_delete_append_subtract(cbroker: BrokerProcess, topic_name: str) -> None:
    admin = admin_of(cbroker)
    admin.create_topics([NewTopic(topic_name, 1, 1, config={"retention.ms": "1000000"})])[topic_name].result(TIMEOUT)
    topic = ConfigResource(ResourceType.TOPIC, topic_name)
    incremental(admin, ConfigResource(ResourceType.TOPIC, topic_name),
                ("segment.bytes", "2000000", AlterConfigOpType.SET),
                ("retention.ms", None, AlterConfigOpType.DELETE),
                ("cleanup.policy", "compact", AlterConfigOpType.APPEND))
    configs = describe_once(admin, topic, lambda c: c["cleanup.policy"].value != "delete")
    assert configs["segment.bytes"].value == "2000000"
    assert configs["segment.bytes"].source == DYNAMIC_TOPIC
    # what a topic falls back to is the broker's layers: the suite's other tests may have set
    # those on a shared broker (make test-kafka), so the claim is only that the override is gone
    assert configs["retention.ms"].source != DYNAMIC_TOPIC
    assert configs["cleanup.policy"].value == "delete,compact"
    incremental(admin, ConfigResource(ResourceType.TOPIC, topic_name),
                ("cleanup.policy", "delete", AlterConfigOpType.SUBTRACT))
    assert describe_once(admin, topic, lambda c: c["cleanup.policy"].value == "compact")
    # the legacy AlterConfigs replaces the whole set of overrides
    legacy = ConfigResource(ResourceType.TOPIC, topic_name, set_config={"max.message.bytes": "5000"})
    admin.alter_configs([legacy])[legacy].result(TIMEOUT)
    configs = describe_once(admin, topic, lambda c: c["max.message.bytes"].value == "5000")
    assert configs["segment.bytes"].source != DYNAMIC_TOPIC and configs["cleanup.policy"].source != DYNAMIC_TOPIC


def test_bad_values_unknown_keys_and_validate_only(cbroker: BrokerProcess, topic_name: str) -> None:
    admin = admin_of(cbroker)
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
    for name, value in (("retention.ms", "soon"), ("no.such.config", "1"), ("segment.bytes", "3")):
        r = ConfigResource(ResourceType.TOPIC, topic_name)
        r.add_incremental_config(ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET))
        err = failure(admin.incremental_alter_configs([r])[r])
        assert err.code() == KafkaError.INVALID_CONFIG and name in err.str()
    r = ConfigResource(ResourceType.TOPIC, topic_name)
    r.add_incremental_config(ConfigEntry("segment.bytes", "1", incremental_operation=AlterConfigOpType.APPEND))
    assert failure(admin.incremental_alter_configs([r])[r]).code() == KafkaError.INVALID_CONFIG
    incremental(admin, ConfigResource(ResourceType.TOPIC, topic_name),
                ("retention.ms", "12345", AlterConfigOpType.SET), validate_only=True)
    assert describe(admin, ConfigResource(ResourceType.TOPIC, topic_name))["retention.ms"].is_default
    missing = ConfigResource(ResourceType.TOPIC, "no-such-topic")
    missing.add_incremental_config(ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET))
    assert failure(admin.incremental_alter_configs([missing])[missing]).code() == \
        KafkaError.UNKNOWN_TOPIC_OR_PART


@pytest.mark.restarts_broker
def test_broker_configs_take_effect_at_once_and_survive_restart(cbroker: BrokerProcess, topic_name: str) -> None:
    admin = admin_of(cbroker)
    admin.create_topics([NewTopic(topic_name, 1, 1, config={"internal.segment.bytes": "1000"})])[topic_name].result(TIMEOUT)
    topic = ConfigResource(ResourceType.TOPIC, topic_name)
    # the cluster-wide default layer ("": librdkafka refuses the empty name, so a raw request)
    set_cluster_default(cbroker, "log.retention.ms", "86400000")
    retention = describe(admin, topic)["retention.ms"]
    assert retention.value == "86400000"
    assert retention.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    incremental(admin, ConfigResource(ResourceType.BROKER, "1"),
                ("log.retention.ms", "3600000", AlterConfigOpType.SET),
                ("message.max.bytes", "200000", AlterConfigOpType.SET))
    retention = describe(admin, topic)["retention.ms"]
    assert retention.value == "3600000" and retention.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert "log.retention.ms" in retention.synonyms  # (keyed by name: the layers collapse here)
    broker_view = describe(admin, ConfigResource(ResourceType.BROKER, "1"))
    assert broker_view["message.max.bytes"].value == "200000"
    assert broker_view["listeners"].is_read_only
    # a static key cannot change at run time
    r = ConfigResource(ResourceType.BROKER, "1")
    r.add_incremental_config(ConfigEntry("listeners", "PLAINTEXT://:1", incremental_operation=AlterConfigOpType.SET))
    err = failure(admin.incremental_alter_configs([r])[r])
    assert err.code() == KafkaError.INVALID_CONFIG and "listeners" in err.str()
    assert "Cannot update these configs dynamically" in err.str()
    # the new retention applies without a restart: records from two hours ago go
    # batches smaller than the topic's 1000-byte segments (Kafka refuses a larger one: RECORD_LIST_TOO_LARGE)
    p = Producer({"bootstrap.servers": cbroker.bootstrap, "acks": "all", "batch.num.messages": 5})
    for _ in range(30):
        p.produce(topic_name, value=b"x" * 100, partition=0, timestamp=int(time.time() * 1000) - 2 * 3600_000)
    assert p.flush(TIMEOUT) == 0
    p.produce(topic_name, value=b"now", partition=0)  # a recent record, in a new segment
    assert p.flush(TIMEOUT) == 0
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": cbroker.bootstrap, "group.id": "wm"})
    try:
        wait_until(lambda: c.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=TIMEOUT)[0] > 0,
                   TIMEOUT, what="retention by the dynamic log.retention.ms")
    finally:
        c.close()

    cbroker.restart()
    admin = admin_of(cbroker)
    assert describe(admin, topic)["retention.ms"].value == "3600000"
    assert [(c.name, c.value, c.config_source) for c in raw_describe(cbroker, ResourceType.BROKER, "").configs] == \
        [("log.retention.ms", "86400000", DYNAMIC_DEFAULT)]
    assert describe(admin, ConfigResource(ResourceType.BROKER, "1"))["message.max.bytes"].value == "200000"


def test_sources_and_synonyms_in_order_of_precedence(tmp_path: Path, topic_name: str) -> None:
    with BrokerProcess(tmp_path / "data", settings={"log.retention.ms": "7200000"}) as b:
        admin = admin_of(b)
        admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)

        def retention() -> Any:
            (entry,) = raw_describe(b, ResourceType.TOPIC, topic_name, ("retention.ms",)).configs
            return entry

        assert (retention().value, retention().config_source) == ("7200000", STATIC)
        set_cluster_default(b, "log.retention.ms", "86400000")
        assert raw_incremental(b, "1", ("log.retention.ms", "3600000", SET)).error_code == 0
        incremental(admin, ConfigResource(ResourceType.TOPIC, topic_name), ("retention.ms", "1000", AlterConfigOpType.SET))
        entry = retention()
        assert (entry.value, entry.config_source) == ("1000", DYNAMIC_TOPIC)
        assert sources(entry) == [("retention.ms", "1000", DYNAMIC_TOPIC),
                                  ("log.retention.ms", "3600000", DYNAMIC_BROKER),
                                  ("log.retention.ms", "86400000", DYNAMIC_DEFAULT),
                                  ("log.retention.ms", "7200000", STATIC),
                                  ("log.retention.hours", "168", DEFAULT)]
        incremental(admin, ConfigResource(ResourceType.TOPIC, topic_name),
                    ("retention.ms", None, AlterConfigOpType.DELETE))
        assert (retention().value, retention().config_source) == ("3600000", DYNAMIC_BROKER)
        assert raw_incremental(b, "1", ("log.retention.ms", None, DELETE)).error_code == 0
        assert (retention().value, retention().config_source) == ("86400000", DYNAMIC_DEFAULT)

        # the broker itself: its id shows every layer, "" only what the cluster default sets
        (mine,) = raw_describe(b, ResourceType.BROKER, "1", ("log.retention.ms",)).configs
        assert (mine.value, mine.config_source, mine.read_only) == ("86400000", DYNAMIC_DEFAULT, False)
        assert [s for _, _, s in sources(mine)] == [DYNAMIC_DEFAULT, STATIC, DEFAULT]
        default = raw_describe(b, ResourceType.BROKER, "")
        assert [(c.name, c.value, c.config_source) for c in default.configs] == \
            [("log.retention.ms", "86400000", DYNAMIC_DEFAULT)]


def test_retention_in_hours_is_the_topic_default_as_a_static_synonym(tmp_path: Path, topic_name: str) -> None:
    """log.retention.hours=1 (no log.retention.ms): a topic's retention.ms is 3600000 from the
    static broker config, its synonyms as Kafka lists them (the unset log.retention.ms absent)."""
    with BrokerProcess(tmp_path / "data", settings={"log.retention.hours": "1"}) as b:
        admin = admin_of(b)
        admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
        (entry,) = raw_describe(b, ResourceType.TOPIC, topic_name, ("retention.ms",)).configs
        assert (entry.value, entry.config_source) == ("3600000", STATIC)
        assert sources(entry) == [("log.retention.hours", "1", STATIC), ("log.retention.hours", "168", DEFAULT)]
        assert entry.documentation is None and entry.config_type == 5  # LONG
        (documented,) = raw_describe(b, ResourceType.TOPIC, topic_name, ("retention.ms",), True).configs
        assert documented.documentation == TOPIC_CONFIGS["retention.ms"].doc  # v3+, when asked


def test_broker_names_other_than_empty_or_the_node_id(cbroker: BrokerProcess) -> None:
    # what the cluster was formatted with (Kafka 4 sets min.insync.replicas cluster-wide, KIP-966)
    initial = raw_describe(cbroker, ResourceType.BROKER, "").configs
    for name, altering, describing in (
            ("2", "Unexpected broker id, expected 1, but received 2",
             "Unexpected broker id, expected 1 or empty string, but received 2"),
            ("one", "Node id must be an integer, but it is: one", "Broker id must be an integer, but it is: one")):
        response = raw_incremental(cbroker, name, ("log.retention.ms", "1000", SET))
        assert (response.error_code, response.error_message) == (INVALID_REQUEST, altering)
        described = raw_describe(cbroker, ResourceType.BROKER, name)
        assert (described.error_code, described.error_message, described.configs) == (INVALID_REQUEST, describing, ())
    assert raw_describe(cbroker, ResourceType.BROKER, "").configs == initial  # nothing set cluster-wide


@LEGACY_ALTER
def test_broker_validate_only_and_legacy_replace(cbroker: BrokerProcess) -> None:
    admin = admin_of(cbroker)
    initial = raw_describe(cbroker, ResourceType.BROKER, "").configs  # as formatted (KIP-966 on Kafka)
    me = ConfigResource(ResourceType.BROKER, "1")
    incremental(admin, ConfigResource(ResourceType.BROKER, "1"),
                ("message.max.bytes", "200000", AlterConfigOpType.SET),
                ("log.segment.bytes", "5000000", AlterConfigOpType.SET))
    try:
        legacy_replace(cbroker, admin, initial)
    finally:  # a shared broker (make test-kafka) is left as the test found it
        incremental(admin, ConfigResource(ResourceType.BROKER, "1"),
                    ("message.max.bytes", None, AlterConfigOpType.DELETE),
                    ("log.segment.bytes", None, AlterConfigOpType.DELETE))
        describe_once(admin, me, lambda c: c["log.segment.bytes"].source != DYNAMIC_BROKER)


def legacy_replace(cbroker: BrokerProcess, admin: AdminClient, initial: Any) -> None:
    me = ConfigResource(ResourceType.BROKER, "1")
    describe_once(admin, me, lambda c: c["message.max.bytes"].value == "200000")
    incremental(admin, ConfigResource(ResourceType.BROKER, "1"),
                ("message.max.bytes", "1", AlterConfigOpType.SET), validate_only=True)
    assert raw_incremental(cbroker, "", ("message.max.bytes", "2", SET), validate_only=True).error_code == 0
    assert describe(admin, me)["message.max.bytes"].value == "200000"
    assert raw_describe(cbroker, ResourceType.BROKER, "").configs == initial
    bad = raw_incremental(cbroker, "", ("message.max.bytes", "lots", SET))
    assert bad.error_code == INVALID_REQUEST and "message.max.bytes" in bad.error_message  # Kafka's code
    # AlterConfigs replaces the broker's whole dynamic layer
    legacy = ConfigResource(ResourceType.BROKER, "1", set_config={"log.segment.bytes": "2000000"})
    admin.alter_configs([legacy])[legacy].result(TIMEOUT)
    configs = describe_once(admin, me, lambda c: c["log.segment.bytes"].value == "2000000")
    assert configs["message.max.bytes"].value == "1048588"
    assert configs["message.max.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert (configs["log.segment.bytes"].value, configs["log.segment.bytes"].source) == ("2000000", DYNAMIC_BROKER)
