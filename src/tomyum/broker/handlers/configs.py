"""DescribeConfigs (key 32) v1-4, AlterConfigs (key 33) v0-2, IncrementalAlterConfigs (key 44) v0-1.

Resource type 2 is a topic, 4 a broker: its node id names the per-broker dynamic layer, ""
the cluster-wide dynamic default; another name is INVALID_REQUEST. What a resource's configs
are — values, sources, synonyms (v1+), types and documentation (v3+) — is
:mod:`tomyum.config.describe`'s, derived from the config definitions; this module shapes
requests and responses.

AlterConfigs replaces a resource's whole set of dynamic values; IncrementalAlterConfigs
applies SET, DELETE, APPEND and SUBTRACT (the last two for list configs). Values are
validated with the broker's own parsers — a bad one is INVALID_CONFIG naming the key — and
take effect at once, for topics and brokers alike, and survive restarts. ``validate_only``
checks and changes nothing.

A listener's key and trust stores change per broker with the listener prefix
(``listener.name.<l>.ssl.keystore.location`` and the other store keys, as Kafka allows): the
new stores must load and, unless ``ssl.allow.dn.changes`` / ``ssl.allow.san.changes``, the new
certificate must keep the old one's distinguished name and subject alternative names, else
INVALID_REQUEST (Kafka's answer to a dynamic broker config that fails validation) and nothing
changes. New TLS connections then use the new stores; existing ones keep theirs. Setting the
same location again re-reads a file changed in place.

With an authorizer (Kafka's checks): describing needs DESCRIBE_CONFIGS, altering ALTER_CONFIGS,
on the topic (TOPIC_AUTHORIZATION_FAILED) or, for a broker, on the cluster
(CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import errors_into, handles
from tomyum.config import (
    DYNAMIC_BROKER,
    DYNAMIC_DEFAULT,
    TOPIC_CONFIGS,
    ConfigDef,
    ConfigType,
    broker_config_def,
    format_value,
    parse_value,
    validate_dynamic_broker_configs,
    validate_topic_configs,
)
from tomyum.config.describe import describe_group
from tomyum.config.group_defs import GROUP_CONFIGS, validate_group_configs
from tomyum.config.describe import describe_broker, describe_cluster_default, describe_topic
from tomyum.errors import ConfigError, ErrorCode, KafkaError
from tomyum.metadata import INTERNAL_TOPICS
from tomyum.security.acls import AclOperation

TOPIC, BROKER, GROUP = 2, 4, 32
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


# DescribeConfigs ---------------------------------------------------------------------------------

def _check_broker_name(ctx: RequestContext, name: str, *, altering: bool = False) -> str:
    """The dynamic layer a broker resource name addresses ("" or this broker's id), else
    INVALID_REQUEST in Kafka's words (Kafka 4.4 words a describe and an alter differently)."""
    if name == "":
        return DYNAMIC_DEFAULT
    try:
        node_id = int(name)
    except ValueError:
        noun = "Node" if altering else "Broker"
        raise KafkaError(f"{noun} id must be an integer, but it is: {name}", ErrorCode.invalid_request) from None
    if node_id != ctx.broker.node_id:
        expected = f"{ctx.broker.node_id}" if altering else f"{ctx.broker.node_id} or empty string"
        raise KafkaError(f"Unexpected broker id, expected {expected}, but received {name}",
                         ErrorCode.invalid_request)
    return DYNAMIC_BROKER


def _authorize(ctx: RequestContext, operation: AclOperation, resource: Any) -> None:
    if resource.resource_type == TOPIC:
        ctx.authorize_topic(operation, resource.resource_name)
    elif resource.resource_type == BROKER:
        ctx.authorize_cluster(operation)


def _describe(ctx: RequestContext, r: Any, **include: bool) -> list[dict[str, Any]]:
    _authorize(ctx, AclOperation.DESCRIBE_CONFIGS, r)
    if r.resource_type == TOPIC:
        metadata = ctx.broker.metadata
        if r.resource_name not in metadata.topics():
            raise KafkaError(f"unknown topic {r.resource_name!r}", ErrorCode.unknown_topic_or_partition)
        return describe_topic(metadata.topic_config(r.resource_name), **include)
    if r.resource_type == BROKER:
        if _check_broker_name(ctx, r.resource_name) == DYNAMIC_DEFAULT:
            return describe_cluster_default(ctx.broker.config, **include)
        return describe_broker(ctx.broker.config, **include)
    if r.resource_type == GROUP:
        return describe_group(ctx.broker.config, ctx.broker.metadata.image.group_configs.get(r.resource_name, {}),
                              **include)
    raise KafkaError(f"resource type {r.resource_type} is not supported", ErrorCode.invalid_request)


@handles(32, versions=range(1, 5))
async def describe_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    results = []
    for r in request.resources:
        entry: dict[str, Any] = {"error_code": 0, "error_message": None, "resource_type": r.resource_type,
                                 "resource_name": r.resource_name, "configs": ()}
        with errors_into(entry):
            configs = _describe(ctx, r, include_synonyms=request.include_synonyms,
                                include_documentation=getattr(request, "include_documentation", False))
            if r.configuration_keys is not None:
                keys = set(r.configuration_keys)
                configs = [c for c in configs if c["name"] in keys]
            entry["configs"] = configs
        results.append(entry)
    return {"throttle_time": 0, "results": results}


# AlterConfigs and IncrementalAlterConfigs ---------------------------------------------------------

def _apply_ops(current: Mapping[str, Any], ops: Any, definition: Callable[[str], ConfigDef | None],
               effective: Any) -> dict[str, str | None]:
    """The raw (string) values of a resource after IncrementalAlterConfigs ``ops``."""
    raw: dict[str, str | None] = {k: format_value(v) for k, v in current.items()}
    for op in ops:
        d = definition(op.name)
        if d is None:
            raise ConfigError(op.name, "unknown config")
        if op.config_operation == SET:
            raw[op.name] = op.value
        elif op.config_operation == DELETE:
            raw.pop(op.name, None)
        elif op.config_operation in (APPEND, SUBTRACT):
            if d.type is not ConfigType.LIST:
                raise ConfigError(op.name, "APPEND and SUBTRACT apply only to list configs")
            base = parse_value(d, raw[op.name]) if op.name in raw else list(effective(op.name) or [])
            items = parse_value(d, op.value or "")
            if op.config_operation == APPEND:
                merged = base + [x for x in items if x not in base]
            else:
                merged = [x for x in base if x not in items]
            raw[op.name] = ",".join(merged)
        else:
            raise KafkaError(f"unknown config operation {op.config_operation} for {op.name}",
                             ErrorCode.invalid_request)
    return raw


async def _alter(ctx: RequestContext, resource: Any, validate_only: bool, incremental: bool) -> None:
    metadata, config = ctx.broker.metadata, ctx.broker.config
    _authorize(ctx, AclOperation.ALTER_CONFIGS, resource)
    names = [c.name for c in resource.configs]
    if incremental and len(set(names)) < len(names):  # as Kafka's ConfigAdminManager
        raise KafkaError("Error due to duplicate config keys", ErrorCode.invalid_request)
    nulls = [c.name for c in resource.configs if c.value is None]
    if not incremental and nulls:  # the legacy request replaces the set: a null has no meaning
        raise KafkaError(f"Null value not supported for : {', '.join(nulls)}", ErrorCode.invalid_request)
    try:
        if resource.resource_type == TOPIC:
            name = resource.resource_name
            if name not in metadata.topics():
                raise KafkaError(f"unknown topic {name!r}", ErrorCode.unknown_topic_or_partition)
            if name in INTERNAL_TOPICS:
                raise KafkaError(f"internal topic {name} belongs to the broker: its configs are the broker's "
                                 "to set", ErrorCode.policy_violation)
            cfg = metadata.topic_config(name)
            if incremental:
                raw = _apply_ops(cfg.overrides, resource.configs, TOPIC_CONFIGS.get, cfg.__getitem__)
            else:
                raw = {c.name: c.value for c in resource.configs}
            parsed = validate_topic_configs(raw)
            if not validate_only:
                await metadata.alter_topic_configs(name, parsed)
        elif resource.resource_type == BROKER:
            layer = _check_broker_name(ctx, resource.resource_name, altering=True)
            if incremental:
                raw = _apply_ops(config.dynamic(layer), resource.configs, broker_config_def, config.__getitem__)
            else:
                raw = {c.name: c.value for c in resource.configs}
            try:
                parsed = validate_dynamic_broker_configs(raw, per_broker=layer == DYNAMIC_BROKER)
                # a listener's new stores must load and fit (Kafka's SslFactory.validateReconfiguration)
                ctx.broker.check_listener_reconfiguration(parsed if layer == DYNAMIC_BROKER else None)
            except ConfigError as e:  # Kafka: a bad value is INVALID_REQUEST, a bad key INVALID_CONFIG
                raise KafkaError(str(e), ErrorCode.invalid_request if e.bad_value else ErrorCode.invalid_config) \
                    from None
            if not validate_only:
                await metadata.alter_broker_configs(layer, parsed)
                ctx.broker.reconfigure_listeners()
        elif resource.resource_type == GROUP:
            group = resource.resource_name
            current = {k: parse_value(GROUP_CONFIGS[k], v)
                       for k, v in metadata.image.group_configs.get(group, {}).items() if k in GROUP_CONFIGS}
            if incremental:
                raw = _apply_ops(current, resource.configs, GROUP_CONFIGS.get, lambda key: None)
            else:
                raw = {c.name: c.value for c in resource.configs}
            parsed = validate_group_configs(raw)
            if not validate_only:
                await metadata.alter_group_configs(group, parsed)
        else:
            raise KafkaError(f"resource type {resource.resource_type} is not supported", ErrorCode.invalid_request)
    except ConfigError as e:
        raise KafkaError(str(e), ErrorCode.invalid_config) from None


async def _alter_all(ctx: RequestContext, request: Any, incremental: bool) -> dict[str, Any]:
    responses = []
    for r in request.resources:
        entry: dict[str, Any] = {"error_code": 0, "error_message": None, "resource_type": r.resource_type,
                                 "resource_name": r.resource_name}
        with errors_into(entry):
            await _alter(ctx, r, request.validate_only, incremental)
        responses.append(entry)
    return {"throttle_time": 0, "responses": responses}


@handles(33, versions=range(0, 3))
async def alter_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    return await _alter_all(ctx, request, incremental=False)


@handles(44, versions=range(0, 2))
async def incremental_alter_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    return await _alter_all(ctx, request, incremental=True)
