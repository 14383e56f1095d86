"""BrokerConfig layers: dynamic per-broker > dynamic cluster default > static > default,
and topic configs falling back through them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tomyum.config import (
    DYNAMIC_BROKER,
    DYNAMIC_DEFAULT,
    BrokerConfig,
    TopicConfig,
    env_settings,
    validate_dynamic_broker_configs,
)
from tomyum.errors import ConfigError
from tomyum.metadata import MetadataImage
from tomyum.metadata.log import MetadataLog
from tomyum.metadata.records import BROKER_RESOURCE, ConfigRecord
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
    assert TopicConfig(cfg, {"retention.ms": 5})["retention.ms"] == 5


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
           "TOMYUM_LOG_RETENTION_MS": "1000", "PATH": "/bin"}
    assert env_settings(env) == {"log.retention.ms": "1000"}
    assert BrokerConfig.load(environ=env)["log.retention.ms"] == 1000
    with pytest.raises(ConfigError, match="log.retenton.ms: unknown config key"):
        BrokerConfig.load(environ={"TOMYUM_LOG_RETENTON_MS": "1"})  # a typo is still named
