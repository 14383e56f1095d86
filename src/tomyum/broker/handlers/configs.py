"""DescribeConfigs (key 32) v1-4.

Resource type 2 is a topic, 4 a broker (by node id, or "" for the cluster default).
Sources follow Kafka: 1 dynamic topic config, 4 static broker config, 5 default. Synonyms
(v1+) list, for a topic config, the override and the broker key it falls back to.
"""

from __future__ import annotations

from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import handles
from tomyum.config import BROKER_CONFIGS, TOPIC_CONFIGS, ConfigDef, format_value
from tomyum.errors import ErrorCode, KafkaError

TOPIC, BROKER = 2, 4
SOURCE_TOPIC, SOURCE_STATIC_BROKER, SOURCE_DEFAULT = 1, 4, 5
TYPES = {"bool": 1, "string": 2, "int": 3, "long": 5, "double": 6, "list": 7}


def _entry(d: ConfigDef, value: Any, source: int, synonyms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": d.name, "value": None if d.sensitive else format_value(value),
            "read_only": not d.dynamic, "is_default": source == SOURCE_DEFAULT,
            "config_source": source, "is_sensitive": d.sensitive, "synonyms": synonyms,
            "config_type": TYPES.get(d.type, 0), "documentation": None}


def _topic_configs(ctx: RequestContext, name: str, include_synonyms: bool) -> list[dict[str, Any]]:
    store = ctx.broker.store
    if name not in store.topics():
        raise KafkaError(f"unknown topic {name!r}", ErrorCode.unknown_topic_or_partition)
    cfg = store.topic_config(name)
    broker = ctx.broker.config
    out = []
    for key, d in TOPIC_CONFIGS.items():
        if not d.supported:
            continue
        source = {"topic": SOURCE_TOPIC, "broker": SOURCE_STATIC_BROKER}.get(cfg.source(key), SOURCE_DEFAULT)
        synonyms = []
        if include_synonyms:
            if key in cfg.overrides:
                synonyms.append({"name": key, "value": format_value(cfg.overrides[key]), "source": SOURCE_TOPIC})
            if d.synonym:
                bsource = SOURCE_DEFAULT if broker.is_default(d.synonym) else SOURCE_STATIC_BROKER
                synonyms.append({"name": d.synonym, "value": format_value(broker.topic_default(key)),
                                 "source": bsource})
        out.append(_entry(d, cfg[key], source, synonyms))
    return out


def _broker_configs(ctx: RequestContext, include_synonyms: bool) -> list[dict[str, Any]]:
    cfg = ctx.broker.config
    out = []
    for key, d in BROKER_CONFIGS.items():
        source = SOURCE_DEFAULT if cfg.is_default(key) else SOURCE_STATIC_BROKER
        synonyms = [{"name": key, "value": format_value(cfg[key]), "source": source}] if include_synonyms else []
        out.append(_entry(d, cfg[key], source, synonyms))
    return out


@handles(32, versions=range(1, 5))
async def describe_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    results = []
    for r in request.resources:
        entry: dict[str, Any] = {"error_code": 0, "error_message": None, "resource_type": r.resource_type,
                                 "resource_name": r.resource_name, "configs": ()}
        try:
            if r.resource_type == TOPIC:
                configs = _topic_configs(ctx, r.resource_name, request.include_synonyms)
            elif r.resource_type == BROKER:
                if r.resource_name not in ("", str(ctx.broker.node_id)):
                    raise KafkaError(f"unknown broker {r.resource_name!r}", ErrorCode.invalid_request)
                configs = _broker_configs(ctx, request.include_synonyms)
            else:
                raise KafkaError(f"resource type {r.resource_type} is not supported",
                                 ErrorCode.invalid_request)
            if r.configuration_keys is not None:
                keys = set(r.configuration_keys)
                configs = [c for c in configs if c["name"] in keys]
            entry["configs"] = configs
        except KafkaError as e:
            entry["error_code"] = e.code
            entry["error_message"] = str(e)
        results.append(entry)
    return {"throttle_time": 0, "results": results}
