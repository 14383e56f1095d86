"""CreateTopics (key 19) v2-7, DeleteTopics (key 20) v1-6, CreatePartitions (key 37) v0-3.

One broker: a replication factor above 1 is INVALID_REPLICATION_FACTOR, manual replica
assignments may name only this broker. ``validate_only`` checks everything and creates
nothing. DeleteTopics v6 may name topics by id. A topic named twice in CreateTopics or
CreatePartitions is answered once, INVALID_REQUEST, and left alone (Kafka's ControllerApis).

With an authorizer (Kafka's checks, ControllerApis): CreateTopics needs CREATE on the cluster or
the topic (TOPIC_AUTHORIZATION_FAILED), and answers a topic's configs only with DESCRIBE_CONFIGS
on it (else topic_config_error_code TOPIC_AUTHORIZATION_FAILED); DeleteTopics DELETE on the
cluster or the topic, naming a topic given by id only to who may DESCRIBE it; CreatePartitions
ALTER on the topic.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from tomyum.broker.context import CLUSTER, RequestContext
from tomyum.broker.dispatch import errors_into, handles
from tomyum.config import TopicConfig, validate_topic_configs
from tomyum.config.describe import describe_topic
from tomyum.errors import ConfigError, ErrorCode, KafkaError
from tomyum.metadata import INTERNAL_TOPICS, RESERVED_TOPICS, check_topic_name
from tomyum.security.acls import AclOperation, ResourceType

log = logging.getLogger(__name__)
INTERNAL_PREFIX = "__"


def _check_replicas(ctx: RequestContext, replication_factor: int, assignments: Any) -> None:
    if replication_factor not in (-1, 1):
        raise KafkaError(f"replication factor {replication_factor} is larger than the 1 available broker",
                         ErrorCode.invalid_replication_factor)
    for a in assignments or ():
        if list(a.broker_ids) != [ctx.broker.node_id]:
            raise KafkaError(f"assignment {list(a.broker_ids)} names brokers other than "
                             f"{ctx.broker.node_id}", ErrorCode.invalid_replica_assignment)


@handles(19, versions=range(2, 8))
async def create_topics(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.broker
    results = []
    duplicates, seen = _duplicates(t.name for t in request.topics), set()
    creator = ctx.authorized(AclOperation.CREATE, ResourceType.CLUSTER, CLUSTER)
    for t in request.topics:
        result: dict[str, Any] = {"name": t.name, "topic_id": None, "error_code": 0, "error_message": None,
                                  "topic_config_error_code": 0, "num_partitions": -1,
                                  "replication_factor": -1, "configs": ()}
        if t.name in seen:
            continue
        seen.add(t.name)
        with errors_into(result):
            if t.name in duplicates:
                raise KafkaError("Duplicate topic name.", ErrorCode.invalid_request)
            if not creator:
                ctx.authorize_topic(AclOperation.CREATE, t.name)
            check_topic_name(t.name)
            if t.name in INTERNAL_TOPICS | RESERVED_TOPICS:
                raise KafkaError(f"Creation of internal topic {t.name} is prohibited.", ErrorCode.invalid_request)
            if t.name in broker.metadata.topics():
                raise KafkaError(f"topic '{t.name}' already exists.", ErrorCode.topic_already_exists)
            partitions = len(t.assignments) if t.assignments else t.num_partitions
            if partitions == -1:
                partitions = broker.config["num.partitions"]
            if partitions <= 0:
                raise KafkaError("number of partitions must be larger than 0", ErrorCode.invalid_partitions)
            _check_partition_limit(ctx, partitions)
            _check_replicas(ctx, t.replication_factor, t.assignments)
            raw = {c.name: c.value for c in t.configs}
            try:
                parsed = validate_topic_configs(raw)
            except ConfigError as e:
                raise KafkaError(str(e), ErrorCode.invalid_config) from None
            if not request.validate_only:
                await broker.create_topic(t.name, partitions, raw)
                result["topic_id"] = broker.metadata.topics()[t.name].topic_id
            else:  # Kafka answers a validate-only creation with an id too, one nothing will have
                result["topic_id"] = uuid.uuid4()
            if not ctx.authorized(AclOperation.DESCRIBE_CONFIGS, ResourceType.TOPIC, t.name):
                result["topic_config_error_code"] = ErrorCode.topic_authorization_failed
                results.append(result)
                continue
            result["num_partitions"] = partitions
            result["replication_factor"] = 1
            # v5+: every config of the new topic with its source, as DescribeConfigs would (Kafka)
            result["configs"] = [
                {k: c[k] for k in ("name", "value", "read_only", "config_source", "is_sensitive")}
                for c in describe_topic(TopicConfig(broker.config, parsed), include_synonyms=False)]
        results.append(result)
    return {"throttle_time": 0, "topics": results}


@handles(20, versions=range(1, 7))
async def delete_topics(ctx: RequestContext, request: Any) -> dict[str, Any]:
    metadata = ctx.broker.metadata
    if hasattr(request, "topic_names"):
        wanted = [(name, None) for name in request.topic_names]
    else:
        wanted = [(t.name, t.topic_id) for t in request.topics]
    by_id = {m.topic_id: m.name for m in metadata.topics().values()}
    everything = ctx.authorized(AclOperation.DELETE, ResourceType.CLUSTER, CLUSTER)
    responses = []
    for name, topic_id in wanted:
        entry: dict[str, Any] = {"name": name, "topic_id": topic_id, "error_code": 0, "error_message": None}
        with errors_into(entry):
            if name is None and topic_id is not None:
                name = by_id.get(topic_id)
                if name is None:
                    raise KafkaError(f"unknown topic id {topic_id}", ErrorCode.unknown_topic_id)
                if everything or ctx.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, name):
                    entry["name"] = name
            elif not everything:
                ctx.authorize_topic(AclOperation.DESCRIBE, name)
            meta = metadata.topics().get(name)
            if meta is None:
                raise KafkaError(f"unknown topic {name!r}", ErrorCode.unknown_topic_or_partition)
            if not everything:
                ctx.authorize_topic(AclOperation.DELETE, meta.name)
            _refuse_internal(meta.name, "deleted")
            if not ctx.broker.config["delete.topic.enable"]:
                raise KafkaError("delete.topic.enable is false", ErrorCode.topic_deletion_disabled)
            entry["topic_id"] = meta.topic_id
            await metadata.delete_topic(meta.name)
        responses.append(entry)
    return {"throttle_time": 0, "responses": responses}


@handles(37, versions=range(0, 4))
async def create_partitions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    metadata = ctx.broker.metadata
    results = []
    duplicates, seen = _duplicates(t.name for t in request.topics), set()
    for t in request.topics:
        entry: dict[str, Any] = {"name": t.name, "error_code": 0, "error_message": None}
        if t.name in seen:
            continue
        seen.add(t.name)
        with errors_into(entry):
            if t.name in duplicates:
                raise KafkaError("Duplicate topic name.", ErrorCode.invalid_request)
            ctx.authorize_topic(AclOperation.ALTER, t.name)
            meta = metadata.topics().get(t.name)
            if meta is None:
                raise KafkaError(f"unknown topic {t.name!r}", ErrorCode.unknown_topic_or_partition)
            _refuse_internal(t.name, "given more partitions")
            if t.count <= meta.num_partitions:
                raise KafkaError(f"topic currently has {meta.num_partitions} partitions, {t.count} would "
                                 "not be an increase.", ErrorCode.invalid_partitions)
            _check_partition_limit(ctx, t.count)
            if t.assignments is not None:
                if len(t.assignments) != t.count - meta.num_partitions:
                    raise KafkaError("assignments do not match the number of new partitions",
                                     ErrorCode.invalid_replica_assignment)
                _check_replicas(ctx, 1, t.assignments)
            if not request.validate_only:
                await metadata.create_partitions(t.name, t.count)
        results.append(entry)
    return {"throttle_time": 0, "results": results}


def _duplicates(names: Iterable[str]) -> set[str]:
    """Names given more than once: Kafka answers each once, INVALID_REQUEST, and acts on none."""
    counts = Counter(names)
    return {name for name, n in counts.items() if n > 1}


def _refuse_internal(name: str, what: str) -> None:
    if name in INTERNAL_TOPICS:
        raise KafkaError(f"internal topic {name} belongs to the broker and cannot be {what} by a client",
                         ErrorCode.invalid_topic_exception)


def _check_partition_limit(ctx: RequestContext, partitions: int) -> None:
    """Each partition is a directory with open files: a topic may have at most
    ``topic.max.partitions`` (tomyum's own key) of them."""
    limit = ctx.broker.config["topic.max.partitions"]
    if partitions > limit:
        raise KafkaError(f"{partitions} partitions exceed topic.max.partitions ({limit}) of this broker",
                         ErrorCode.invalid_partitions)
