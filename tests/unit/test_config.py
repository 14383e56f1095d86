"""BrokerConfig layers: dynamic per-broker > dynamic cluster default > static > default,
and topic configs falling back through them."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tomyum.config import (
    BROKER_CONFIGS,
    DYNAMIC_BROKER,
    DYNAMIC_DEFAULT,
    TOPIC_CONFIGS,
    BrokerConfig,
    ConfigType,
    TopicConfig,
    env_settings,
    validate_dynamic_broker_configs,
    validate_topic_configs,
)
from tomyum.config.describe import describe_broker, describe_topic
from tomyum.errors import ConfigError
from tomyum.metadata import MetadataImage
from tomyum.metadata.log import MetadataLog
from tomyum.metadata.records import BROKER_RESOURCE, ConfigRecord
from tomyum.storage.log_rules import append_rules
from tomyum.testing.store import TopicStore


def test_precedence_of_the_layers() -> None:
    cfg = BrokerConfig({"log.retention.ms": "1000"})
    assert cfg["log.retention.ms"] == 1000 and cfg.source("log.retention.ms") == "static"
    cfg.set_dynamic(DYNAMIC_DEFAULT, validate_dynamic_broker_configs({"log.retention.ms": "2000"}))
    assert cfg["log.retention.ms"] == 2000 and cfg.source("log.retention.ms") == DYNAMIC_DEFAULT
    cfg.set_dynamic(DYNAMIC_BROKER, validate_dynamic_broker_configs({"log.retention.ms": "3000"}))
    assert cfg["log.retention.ms"] == 3000 and cfg.source("log.retention.ms") == DYNAMIC_BROKER
    assert [s for s, _ in cfg.layers("log.retention.ms")] == [DYNAMIC_BROKER, DYNAMIC_DEFAULT, "static", "default"]
    cfg.set_dynamic(DYNAMIC_BROKER, {})
    assert cfg["log.retention.ms"] == 2000
    assert cfg.source("num.partitions") == "default" and cfg.is_default("num.partitions")


def test_topic_configs_see_dynamic_broker_defaults() -> None:
    cfg = BrokerConfig()
    topic = TopicConfig(cfg, {})
    assert topic["retention.ms"] == 7 * 24 * 3600 * 1000 and topic.source("retention.ms") == "default"
    cfg.set_dynamic(DYNAMIC_DEFAULT, {"log.retention.ms": 60_000})
    assert topic["retention.ms"] == 60_000 and topic.source("retention.ms") == DYNAMIC_DEFAULT
    cfg.set_dynamic(DYNAMIC_DEFAULT, {})  # the remembered defaults go with the change
    assert topic["retention.ms"] == 7 * 24 * 3600 * 1000 and topic.source("retention.ms") == "default"
    assert TopicConfig(cfg, {"retention.ms": 5})["retention.ms"] == 5


def test_what_is_derived_from_a_topic_config_is_recomputed_after_a_broker_change() -> None:
    cfg = BrokerConfig()
    topic, compacted = TopicConfig(cfg, {}), TopicConfig(cfg, {"cleanup.policy": ["compact"]})
    calls: list[int] = []

    def max_message(config: TopicConfig) -> int:
        calls.append(1)
        return int(config["max.message.bytes"])

    default = topic.derived(max_message)
    assert topic.derived(max_message) == default and len(calls) == 1  # remembered
    cfg.set_dynamic(DYNAMIC_DEFAULT, {"message.max.bytes": 5000})
    assert topic.derived(max_message) == 5000 and len(calls) == 2
    cfg.update({"log.segment.bytes": "2000000"})
    assert append_rules(topic).segment_bytes == 2_000_000 and append_rules(topic).max_message_bytes == 5000
    assert append_rules(topic).roll_ms == 7 * 24 * 3600 * 1000 and not append_rules(topic).compacted
    # on a compacted topic, the segment rolls by max.compaction.lag.ms when that is sooner
    cfg.set_dynamic(DYNAMIC_DEFAULT, {"log.cleaner.max.compaction.lag.ms": 60_000})
    assert append_rules(compacted).compacted and append_rules(compacted).roll_ms == 60_000
    assert append_rules(topic).roll_ms == 7 * 24 * 3600 * 1000 and append_rules(topic).max_message_bytes == default


@pytest.mark.parametrize("raw, key", [
    ({"listeners": "PLAINTEXT://:1"}, "listeners"),        # static only
    ({"no.such.key": "1"}, "no.such.key"),                  # unknown
    ({"log.retention.ms": "soon"}, "log.retention.ms"),     # bad value
    ({"log.retention.hours": "1"}, "log.retention.hours"),  # dynamic only as log.retention.ms, as in Kafka
    ({"log.cleaner.enable": "false", "num.partitions": "3", "message.max.bytes": "9"},
     "log.cleaner.enable, num.partitions"),                  # every static key is named
])
def test_dynamic_changes_are_validated(raw: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        validate_dynamic_broker_configs(raw)
    assert e.value.key == key


def test_static_keys_are_refused_in_kafkas_words() -> None:
    with pytest.raises(ConfigError, match="Cannot update these configs dynamically"):
        validate_dynamic_broker_configs({"listeners": "PLAINTEXT://:1"})
    assert validate_dynamic_broker_configs({"log.retention.ms": None, "message.max.bytes": "9"}) == \
        {"message.max.bytes": 9}


def test_topic_sources_follow_the_broker_layers() -> None:
    cfg = BrokerConfig({"log.segment.bytes": "5000000"})
    topic = TopicConfig(cfg, {"retention.ms": 1})
    assert (topic["segment.bytes"], topic.source("segment.bytes")) == (5000000, "static")
    cfg.set_dynamic(DYNAMIC_BROKER, {"log.segment.bytes": 6000000})
    assert (topic["segment.bytes"], topic.source("segment.bytes")) == (6000000, DYNAMIC_BROKER)
    cfg.set_dynamic(DYNAMIC_BROKER, {"log.retention.ms": 2})
    assert (topic["retention.ms"], topic.source("retention.ms")) == (1, "topic")
    assert topic.source("max.message.bytes") == "default"


def test_dynamic_layers_persist_in_the_data_dir(tmp_path: Path) -> None:
    async def cycle(config: BrokerConfig, change: dict[str, dict[str, object]] | None = None) -> None:
        store = TopicStore(tmp_path, config)
        await store.start()
        for layer, values in (change or {}).items():
            await store.alter_broker_configs(layer, values)
        await store.close()

    asyncio.run(cycle(BrokerConfig(), {DYNAMIC_DEFAULT: {"log.retention.ms": 60_000},
                                       DYNAMIC_BROKER: {"message.max.bytes": 5000}}))
    log = MetadataLog(tmp_path)
    stored = MetadataImage()
    for offset, record in log.recover().records:
        stored.replay(record, offset)
    assert stored.broker_configs == {"1": {"message.max.bytes": "5000"}, "": {"log.retention.ms": "60000"}}
    restarted = BrokerConfig({"log.retention.ms": "1000"})
    asyncio.run(cycle(restarted))
    assert restarted["log.retention.ms"] == 60_000 and restarted.source("log.retention.ms") == DYNAMIC_DEFAULT
    assert restarted["message.max.bytes"] == 5000 and restarted.source("message.max.bytes") == DYNAMIC_BROKER

    # a stored key that is no longer valid is dropped alone, with a warning
    log.append([ConfigRecord(resource_type=BROKER_RESOURCE, resource_name="", name="log.retention.hours", value="1")])
    log.close()
    again = BrokerConfig()
    asyncio.run(cycle(again))
    assert dict(again.dynamic(DYNAMIC_DEFAULT)) == {"log.retention.ms": 60_000}


def test_variables_of_tomyums_own_tools_are_not_broker_configs() -> None:
    env = {"TOMYUM_DEBUG": "1", "TOMYUM_TIMEOUT": "5", "TOMYUM_TEST_MIGRATED": "1", "TOMYUM_BOOTSTRAP": "x:1",
           "TOMYUM_KAFKA_CACHE": "/tmp/jars", "TOMYUM_CHROMIUM": "/usr/bin/chromium",
           "TOMYUM_STREAMS_PROFILE": "/tmp/p", "TOMYUM_LOG_RETENTION_MS": "1000", "PATH": "/bin"}
    assert env_settings(env) == {"log.retention.ms": "1000"}
    assert BrokerConfig.load(environ=env)["log.retention.ms"] == 1000
    with pytest.raises(ConfigError, match="log.retenton.ms: unknown config key"):
        BrokerConfig.load(environ={"TOMYUM_LOG_RETENTON_MS": "1"})  # a typo is still named


# the definitions as data -------------------------------------------------------------------------

def test_every_definition_is_documented_and_its_synonyms_are_broker_keys() -> None:
    for d in [*BROKER_CONFIGS.values(), *TOPIC_CONFIGS.values()]:
        assert isinstance(d.type, ConfigType) and len(d.doc) > 20, d.name
    for d in TOPIC_CONFIGS.values():
        for i, synonym in enumerate(d.synonyms):
            assert synonym.name in BROKER_CONFIGS, (d.name, synonym.name)
            # as in Kafka, only the first of a chain changes at run time (log.retention.ms, not .hours)
            assert i == 0 or not BROKER_CONFIGS[synonym.name].dynamic, (d.name, synonym.name)


@pytest.mark.parametrize("settings, topic_key, value, source", [
    ({}, "retention.ms", 168 * 3_600_000, "default"),
    ({"log.retention.minutes": "2"}, "retention.ms", 120_000, "static"),
    ({"log.retention.minutes": "2", "log.retention.ms": "5"}, "retention.ms", 5, "static"),
    ({"log.roll.hours": "1"}, "segment.ms", 3_600_000, "static"),
    ({"log.roll.jitter.hours": "1"}, "segment.jitter.ms", 3_600_000, "static"),
    ({}, "flush.ms", 2**63 - 1, "default"),
    ({"log.flush.scheduler.interval.ms": "5000"}, "flush.ms", 5000, "static"),  # Kafka's fallback
    ({"log.flush.interval.ms": "7", "log.flush.scheduler.interval.ms": "5000"}, "flush.ms", 7, "static"),
    ({"message.max.bytes": "2000"}, "max.message.bytes", 2000, "static"),
    ({}, "message.timestamp.difference.max.ms", 2**63 - 1, "default"),  # no synonym: its own default
])
def test_topic_defaults_follow_the_declared_synonyms(settings: dict[str, str], topic_key: str, value: int,
                                                      source: str) -> None:
    topic = TopicConfig(BrokerConfig(settings), {})
    assert (topic[topic_key], topic.source(topic_key)) == (value, source)


@pytest.mark.parametrize("key, raw, message", [
    ("segment.bytes", "3", "Invalid value 3 for configuration segment.bytes: Value must be at least 1048576"),
    ("retention.ms", "soon", "Invalid value soon for configuration retention.ms: Not a number of type LONG"),
    ("min.cleanable.dirty.ratio", "2", "Invalid value 2 for configuration min.cleanable.dirty.ratio: "
                                       "Value must be no more than 1"),
    ("preallocate", "yes", "Invalid value yes for configuration preallocate: "
                           "Expected value to be either true or false"),
    ("message.timestamp.type", "Now", "Invalid value Now for configuration message.timestamp.type: "
                                      "String must be one of: CreateTime, LogAppendTime"),
])
def test_bad_values_are_refused_in_kafkas_words(key: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        validate_topic_configs({key: raw})
    assert (str(e.value), e.value.key) == (message, key)


def test_kafka_keys_tomyum_does_not_implement_are_accepted_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tomyum.config"):
        cfg = BrokerConfig({"num.network.threads": "8", "replica.lag.time.max.ms": "30000"})
        assert validate_topic_configs({"segment.jitter.ms": "10"}) == {"segment.jitter.ms": 10}
    assert cfg["num.network.threads"] == 8
    assert [r.getMessage() for r in caplog.records] == [
        "broker config num.network.threads is not supported by tomyum and is ignored",
        "broker config replica.lag.time.max.ms is not supported by tomyum and is ignored",
        "topic config segment.jitter.ms is not supported by tomyum and is ignored"]
    with pytest.raises(ConfigError, match="Not a number of type INT"):
        BrokerConfig({"num.network.threads": "many"})


def test_describe_configs_is_derived_from_the_definitions() -> None:
    cfg = BrokerConfig({"log.retention.hours": "1"})
    topic = {e["name"]: e for e in describe_topic(TopicConfig(cfg, {"internal.segment.bytes": 100}),
                                                  include_synonyms=True, include_documentation=True)}
    assert "internal.segment.bytes" not in topic and "segment.jitter.ms" not in topic  # internal, not implemented
    retention = topic["retention.ms"]
    assert (retention["value"], retention["config_source"], retention["config_type"]) == ("3600000", 4, 5)
    assert [(s["name"], s["source"]) for s in retention["synonyms"]] == \
        [("log.retention.hours", 4), ("log.retention.hours", 5)]
    assert retention["documentation"] == TOPIC_CONFIGS["retention.ms"].doc
    broker = {e["name"]: e for e in describe_broker(cfg, include_synonyms=False)}
    assert broker["listeners"]["read_only"] and not broker["log.retention.ms"]["read_only"]
    assert broker["listeners"]["config_type"] == ConfigType.LIST and broker["listeners"]["documentation"] is None
    assert "num.network.threads" not in broker  # not implemented: not described
    assert broker["ssl.keystore.password"]["is_sensitive"] and broker["ssl.keystore.password"]["value"] is None


def test_broker_synonyms_are_listed_from_the_key_itself_on() -> None:
    cfg = BrokerConfig({"log.retention.ms": "1000", "log.retention.hours": "2"})
    assert cfg.synonyms("log.retention.ms") == [("log.retention.ms", "static", 1000),
                                                ("log.retention.hours", "static", 2),
                                                ("log.retention.hours", "default", 168)]
    assert cfg.synonyms("log.retention.hours") == [("log.retention.hours", "static", 2),
                                                   ("log.retention.hours", "default", 168)]
    assert cfg.synonyms("num.partitions") == [("num.partitions", "default", 1)]


def test_a_listeners_stores_change_at_run_time_per_broker_with_the_listener_prefix_only() -> None:
    parsed = validate_dynamic_broker_configs({"listener.name.TLS.ssl.keystore.location": "/new.pem"})
    assert parsed == {"listener.name.tls.ssl.keystore.location": "/new.pem"}
    cfg = BrokerConfig({"ssl.keystore.location": "/static.pem", "listener.name.tls.ssl.keystore.location": "/l.pem"})
    assert cfg.for_listener("TLS", "ssl.keystore.location") == "/l.pem"
    cfg.set_dynamic(DYNAMIC_BROKER, parsed)
    assert cfg.for_listener("TLS", "ssl.keystore.location") == "/new.pem"
    assert cfg.for_listener("TLS", "ssl.keystore.location", dynamic={}) == "/l.pem"
    assert cfg.for_listener("OTHER", "ssl.keystore.location") == "/static.pem"
    entries = {e["name"]: e for e in describe_broker(cfg, include_synonyms=True)}
    assert entries["listener.name.tls.ssl.keystore.location"]["value"] == "/new.pem"
    with pytest.raises(ConfigError, match="default cluster level") as e:
        validate_dynamic_broker_configs({"listener.name.tls.ssl.keystore.location": "/x.pem"}, per_broker=False)
    assert e.value.bad_value  # INVALID_REQUEST, as Kafka
    with pytest.raises(ConfigError, match="listener prefix"):
        validate_dynamic_broker_configs({"ssl.keystore.location": "/x.pem"})
    with pytest.raises(ConfigError, match="unknown broker config"):  # not a store key: not dynamic
        validate_dynamic_broker_configs({"listener.name.tls.ssl.client.auth": "required"})
