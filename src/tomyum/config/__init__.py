"""Typed configuration with Kafka's key names, defaults and rules, as data.

* :mod:`.definition` — :class:`ConfigDef` (Kafka's ConfigDef: name, :class:`ConfigType`,
  default, validator, doc, importance, synonyms, ``implemented``, ``dynamic``), parsing and
  Kafka's ConfigException wording;
* :mod:`.broker_defs`, :mod:`.topic_defs` — the tables: every key tomyum knows, each topic
  config with its broker synonyms in precedence order and their unit conversions (Kafka's
  ServerTopicConfigSynonyms);
* :mod:`.broker_config` — values: the broker's layers (default < static < dynamic default <
  dynamic per-broker) and a topic's overrides over them;
* :mod:`.describe` — DescribeConfigs entries derived from the tables;
* :mod:`.docs` — ``docs/configuration.md``, generated (``python -m tomyum.config``).

Contract: a rule about a key (type, range, default, synonyms, whether it may change at run
time, whether tomyum implements it) is stated once, in its definition; everything else
reads it from there.
"""

from tomyum.config.broker_config import (
    BROKER_SYNONYMS,
    DYNAMIC_BROKER,
    DYNAMIC_DEFAULT,
    NON_CONFIG_ENV,
    BrokerConfig,
    TopicConfig,
    broker_config_def,
    env_settings,
    read_properties,
    validate_dynamic_broker_configs,
    validate_topic_configs,
)
from tomyum.config.broker_defs import BROKER_CONFIGS, DAY_MS, MIN_SEGMENT_BYTES, STANDARD_AUTHORIZER
from tomyum.config.definition import (
    ConfigDef,
    ConfigType,
    Importance,
    Synonym,
    Validator,
    format_value,
    parse_value,
)
from tomyum.config.topic_defs import TOPIC_CONFIGS

__all__ = [
    "BROKER_CONFIGS",
    "BROKER_SYNONYMS",
    "DAY_MS",
    "DYNAMIC_BROKER",
    "DYNAMIC_DEFAULT",
    "MIN_SEGMENT_BYTES",
    "STANDARD_AUTHORIZER",
    "NON_CONFIG_ENV",
    "TOPIC_CONFIGS",
    "BrokerConfig",
    "ConfigDef",
    "ConfigType",
    "Importance",
    "Synonym",
    "TopicConfig",
    "Validator",
    "broker_config_def",
    "env_settings",
    "format_value",
    "parse_value",
    "read_properties",
    "validate_dynamic_broker_configs",
    "validate_topic_configs",
]
