"""DescribeConfigs' view of the configuration, derived from the definitions: each entry's
value, source, synonyms, type, sensitivity, read-only flag and documentation.

Kafka's rules, as this module applies them:

* sources are Kafka's ``ConfigSource`` codes (:class:`ConfigSource`);
* a topic lists every implemented, non-``internal.`` key; its synonyms are the override,
  then the broker keys its definition declares, layer by layer (KIP-226);
* a broker (its node id) lists every implemented key, read-only if it cannot change at run
  time; the broker resource "" lists, as in Kafka, only what the cluster-wide dynamic
  default sets;
* a password (sensitive) key shows no value.

Entries are dicts in the shape of kio's ``DescribeConfigsResult`` fields, so the handler only
wraps them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

from tomyum.config.broker_config import (
    DYNAMIC_BROKER,
    DYNAMIC_DEFAULT,
    BrokerConfig,
    TopicConfig,
    broker_config_def,
)
from tomyum.config.broker_defs import BROKER_CONFIGS
from tomyum.config.definition import ConfigDef, format_value
from tomyum.config.topic_defs import TOPIC_CONFIGS


class ConfigSource(enum.IntEnum):
    """Kafka's ``DescribeConfigsResponse.ConfigSource`` codes."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    CLIENT_METRICS_CONFIG = 7
    DYNAMIC_GROUP_CONFIG = 8


#: tomyum's names of the places a value comes from, as Kafka's codes
SOURCES = {"topic": ConfigSource.DYNAMIC_TOPIC_CONFIG, DYNAMIC_BROKER: ConfigSource.DYNAMIC_BROKER_CONFIG,
           DYNAMIC_DEFAULT: ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
           "static": ConfigSource.STATIC_BROKER_CONFIG, "default": ConfigSource.DEFAULT_CONFIG,
           "group": ConfigSource.DYNAMIC_GROUP_CONFIG}


def describable(d: ConfigDef) -> bool:
    """Whether DescribeConfigs lists ``d``: implemented and not ``internal.``."""
    return d.implemented and not d.internal


def _synonyms(found: Iterable[tuple[str, str, Any]], d: ConfigDef) -> list[dict[str, Any]]:
    return [{"name": name, "value": None if d.sensitive else format_value(value), "source": SOURCES[source]}
            for name, source, value in found]


def _entry(d: ConfigDef, value: Any, source: str, synonyms: list[dict[str, Any]], *, read_only: bool,
           include_documentation: bool) -> dict[str, Any]:
    code = SOURCES[source]
    return {"name": d.name, "value": None if d.sensitive else format_value(value),
            "read_only": read_only,
            "config_source": code, "is_sensitive": d.sensitive, "synonyms": synonyms,
            "config_type": d.type.value, "documentation": d.doc if include_documentation else None}


def describe_topic(config: TopicConfig, *, include_synonyms: bool,
                   include_documentation: bool = False) -> list[dict[str, Any]]:
    """A topic's configs, in the table's order."""
    return [_entry(d, config[key], config.source(key),
                   _synonyms(config.synonyms(key), d) if include_synonyms else [],
                   read_only=False, include_documentation=include_documentation)
            for key, d in TOPIC_CONFIGS.items() if describable(d)]


def describe_broker(config: BrokerConfig, *, include_synonyms: bool,
                    include_documentation: bool = False) -> list[dict[str, Any]]:
    """This broker's configs (the resource named by its node id), in the table's order, then the
    listener-prefixed ones its dynamic layer sets (a listener's stores)."""
    out = [_entry(d, config[key], config.source(key),
                  _synonyms(config.synonyms(key), d) if include_synonyms else [],
                  read_only=not d.dynamic, include_documentation=include_documentation)
           for key, d in BROKER_CONFIGS.items() if describable(d)]
    for key, value in config.dynamic(DYNAMIC_BROKER).items():
        prefixed = broker_config_def(key)
        if key not in BROKER_CONFIGS and prefixed is not None:
            synonyms = _synonyms([(key, DYNAMIC_BROKER, value)], prefixed) if include_synonyms else []
            out.append(_entry(prefixed, value, DYNAMIC_BROKER, synonyms, read_only=False,
                              include_documentation=include_documentation))
    return out


def describe_cluster_default(config: BrokerConfig, *, include_synonyms: bool,
                             include_documentation: bool = False) -> list[dict[str, Any]]:
    """The broker resource "": only the keys the cluster-wide dynamic default layer sets."""
    out = []
    for key, value in config.dynamic(DYNAMIC_DEFAULT).items():
        d = BROKER_CONFIGS[key]
        synonyms = _synonyms([(key, DYNAMIC_DEFAULT, value)], d) if include_synonyms else []
        out.append(_entry(d, value, DYNAMIC_DEFAULT, synonyms, read_only=False,
                          include_documentation=include_documentation))
    return out


def describe_group(config: BrokerConfig, overrides: Mapping[str, str], *, include_synonyms: bool,
                   include_documentation: bool = False) -> list[dict[str, Any]]:
    """A group's configs (resource type 32): its override, else the broker key it stands for."""
    from tomyum.config.group_defs import GROUP_CONFIGS

    out = []
    for key, d in GROUP_CONFIGS.items():
        if not describable(d):
            continue
        broker_key = d.synonyms[0].name if d.synonyms else None
        found: list[tuple[str, str, Any]] = []
        if key in overrides:
            found.append((key, "group", overrides[key]))
        if broker_key is not None:
            found.append((broker_key, config.source(broker_key), config[broker_key]))
        value = overrides[key] if key in overrides else (config[broker_key] if broker_key else d.default)
        source = "group" if key in overrides else "default"
        out.append(_entry(d, value, source, _synonyms(found, d) if include_synonyms else [], read_only=False,
                          include_documentation=include_documentation))
    return out
