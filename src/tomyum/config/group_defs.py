"""Group configs (KIP-848's GroupConfig, resource type 32 of DescribeConfigs and
IncrementalAlterConfigs): per-group overrides of the broker's group settings.

A group's value is its override, else the broker key it stands for (``synonyms``); overrides
must fall within Kafka's bounds for the key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from tomyum.config.broker_defs import INT, STRING
from tomyum.config.definition import ConfigDef, Synonym, between, defs, one_of, parse_value
from tomyum.errors import ConfigError

log = logging.getLogger(__name__)

GROUP_CONFIGS = defs(
    ConfigDef("consumer.session.timeout.ms", INT, 45000, between(45000, 60000),
              synonyms=(Synonym("group.consumer.session.timeout.ms"),),
              doc="How long a member of this consumer group (KIP-848) may go without a heartbeat."),
    ConfigDef("consumer.heartbeat.interval.ms", INT, 5000, between(5000, 15000),
              synonyms=(Synonym("group.consumer.heartbeat.interval.ms"),),
              doc="How often members of this consumer group (KIP-848) heartbeat."),
    ConfigDef("share.session.timeout.ms", INT, 45000, between(45000, 60000), implemented=False,
              doc="How long a member of this share group (KIP-932) may go without a heartbeat."),
    ConfigDef("share.heartbeat.interval.ms", INT, 5000, between(5000, 15000), implemented=False,
              doc="How often members of this share group (KIP-932) heartbeat."),
    ConfigDef("share.record.lock.duration.ms", INT, 30000, between(15000, 60000), implemented=False,
              doc="How long a share group member holds a record it was given (KIP-932)."),
    ConfigDef("share.auto.offset.reset", STRING, "latest", one_of("latest", "earliest", "by_duration"),
              implemented=False, doc="Where a new share group starts reading (KIP-932)."),
)


def validate_group_configs(raw: Mapping[str, str | None]) -> dict[str, Any]:
    """Parse a group's overrides; ConfigError names the first unknown key or bad value. A key
    tomyum does not implement (share groups) is accepted with a warning and dropped."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        d = GROUP_CONFIGS.get(key)
        if d is None:
            raise ConfigError(key, "unknown group config")
        if not d.implemented:
            log.warning("group config %s is not supported by tomyum and is ignored", key)
            continue
        if value is not None:
            out[key] = parse_value(d, value)
    return out
