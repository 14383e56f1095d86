"""Metadata (key 3) v0-13, DescribeCluster (key 60) v0-2 (v2: the broker is never fenced) and
DescribeTopicPartitions (75) v0.

DescribeTopicPartitions (KIP-966), as Kafka's handler answers it: the topics asked for (none:
every topic), in name order, from the request's cursor on, at most ``response_partition_limit``
partitions (and at most ``max.request.partition.size.limit``); where the answer stops, its next
cursor. An unknown topic asked for is UNKNOWN_TOPIC_OR_PARTITION (an invalid name
INVALID_TOPIC_EXCEPTION), one without DESCRIBE TOPIC_AUTHORIZATION_FAILED with no id (listing
every topic, both are left out); a cursor whose topic is not asked for, or whose partition is
negative, is INVALID_REQUEST for the whole request. No partition has eligible leader replicas
beyond its one replica (the lists are empty).

Notes: v0 empty topic list = all topics, v1+ null = all and empty = none. Topics missing
and allowed to be auto-created (request flag, v4+, and ``auto.create.topics.enable``) are
created synchronously and returned complete (KafkaJS fails the whole call on any topic
error). With an authorizer (Kafka's checks): a topic needs DESCRIBE — one asked for and not
authorized is TOPIC_AUTHORIZATION_FAILED, a listing of all topics leaves it out — and
auto-creation CREATE on the cluster or the topic (else TOPIC_AUTHORIZATION_FAILED). One broker leads every partition with the constant leader epoch 0. The broker
address is the one advertised for the listener the request came in on.

The response is encoded by hand (protocol/metadata_response.py). Each topic's entry up to its
partitions is cached per version in the metadata image (``MetadataImage.derived``), which drops
it whenever a record changes the topic; what depends on the asker (which topics it may see, its
authorized operations, the listener's address) is computed for every request.
"""

from __future__ import annotations

import uuid
from typing import Any

from tomyum.broker.context import CLUSTER, RequestContext
from tomyum.broker.dispatch import RawResponse, handles
from tomyum.errors import ErrorCode, KafkaError
from tomyum.metadata import INTERNAL_TOPICS, TopicImage, check_topic_name
from tomyum.protocol.metadata_response import (
    BrokerEntry,
    PartitionEntry,
    encode_metadata_response,
    encode_topic_head,
    encode_topic_tail,
)
from tomyum.security.acls import AUTHORIZED_OPERATIONS_OMITTED, AclOperation, ResourceType


def broker_entry(ctx: RequestContext, id_field: str) -> dict[str, Any]:
    """This broker as Metadata (``id_field="node_id"``) or DescribeCluster (``"broker_id"``) lists it."""
    return {id_field: ctx.broker.node_id,
            "host": ctx.listener.advertised_host, "port": ctx.listener.advertised_port, "rack": None,
            "is_fenced": False}


def _topic_head(ctx: RequestContext, meta: TopicImage) -> bytes:
    """The topic's entry up to its partitions, encoded for this request's version; cached in the
    image until a record changes the topic, so that listing 10,000 topics joins cached bytes."""
    node = ctx.broker.node_id
    image = ctx.broker.metadata.image
    cache = image.derived(meta)
    key = ("metadata", ctx.api_version, node)
    head: bytes | None = cache.get(key)
    if head is None:
        partitions = image.partitions(meta)
        head = cache[key] = encode_topic_head(
            ctx.api_version, error_code=0, name=meta.name, topic_id=meta.topic_id, is_internal=meta.internal,
            partitions=[PartitionEntry(partition_index=p, leader_id=node, leader_epoch=partitions[p].leader_epoch,
                                       replica_nodes=(node,), isr_nodes=(node,))
                        for p in range(meta.num_partitions)])
    return head


def topic_entry(ctx: RequestContext, meta: TopicImage, include_operations: bool = False) -> bytes:
    return _topic_head(ctx, meta) + encode_topic_tail(
        ctx.api_version, ctx.operations(ResourceType.TOPIC, meta.name, include_operations))


def error_entry(ctx: RequestContext, name: str | None, code: ErrorCode, topic_id: uuid.UUID | None = None,
                operations: int = AUTHORIZED_OPERATIONS_OMITTED) -> bytes:
    return encode_topic_head(ctx.api_version, error_code=code, name=name, topic_id=topic_id, is_internal=False,
                             partitions=()) + encode_topic_tail(ctx.api_version, operations)


@handles(3, versions=range(0, 14))
async def metadata(ctx: RequestContext, request: Any) -> RawResponse:
    broker = ctx.broker
    topics_now = broker.metadata.topics
    with_operations = bool(getattr(request, "include_topic_authorized_operations", False))
    requested = request.topics
    every_topic = requested is None or (ctx.api_version == 0 and not requested)
    if every_topic and broker.authorizer is None:  # the hot case: every topic, nothing asker-specific
        tail = encode_topic_tail(ctx.api_version, ctx.operations(ResourceType.TOPIC, "", with_operations))
        return _response(ctx, request, [_topic_head(ctx, meta) + tail for meta in topics_now().values()])
    if every_topic:
        names: list[str | None] = [n for n in topics_now()
                                   if ctx.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, n)]
    else:
        names = [t.name for t in requested]
    allow_auto = getattr(request, "allow_auto_topic_creation", True) and broker.config["auto.create.topics.enable"]
    topics: list[bytes] = []
    by_id = {}
    if any(n is None for n in names):  # v10+: topics asked for by id (a KIP-848 assignment carries ids)
        by_id = {meta.topic_id: meta for meta in topics_now().values()}
    for i, name in enumerate(names):
        topic_id = getattr(requested[i], "topic_id", None) if name is None and requested else None
        if topic_id is not None:
            found = by_id.get(topic_id)
            if found is None:
                topics.append(error_entry(ctx, None, ErrorCode.unknown_topic_id, topic_id))
            elif not ctx.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, found.name):
                topics.append(error_entry(ctx, None, ErrorCode.topic_authorization_failed, topic_id))
            else:
                topics.append(topic_entry(ctx, found, with_operations))
            continue
        if name is not None and not ctx.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, name):
            topics.append(error_entry(ctx, name, ErrorCode.topic_authorization_failed))
            continue
        meta = topics_now().get(name) if name is not None else None
        if meta is None:
            try:
                check_topic_name(name)
                if not allow_auto or requested is None:
                    raise KafkaError(code=ErrorCode.unknown_topic_or_partition)
                if not _may_create(ctx, name):  # type: ignore[arg-type]
                    raise KafkaError(code=ErrorCode.topic_authorization_failed)
                await broker.auto_create_topic(name)  # type: ignore[arg-type]
                meta = topics_now()[name]  # type: ignore[index]
            except KafkaError as e:
                operations = AUTHORIZED_OPERATIONS_OMITTED
                if e.code != ErrorCode.topic_authorization_failed and with_operations:
                    # Kafka: every topic it describes gets its operations, the unknown ones too
                    operations = ctx.operations(ResourceType.TOPIC, name or "", True)
                topics.append(error_entry(ctx, name, e.code, operations=operations))
                continue
        topics.append(topic_entry(ctx, meta, with_operations))
    return _response(ctx, request, topics)


def _response(ctx: RequestContext, request: Any, topics: list[bytes]) -> RawResponse:
    broker = ctx.broker
    return RawResponse(encode_metadata_response(
        ctx.api_version, throttle_time_ms=0,
        brokers=[BrokerEntry(node_id=broker.node_id, host=ctx.listener.advertised_host,
                             port=ctx.listener.advertised_port)],
        cluster_id=broker.cluster_id, controller_id=broker.node_id, topics=topics,
        cluster_authorized_operations=_cluster_operations(
            ctx, getattr(request, "include_cluster_authorized_operations", False))),
        throttle_at=0 if ctx.api_version >= 3 else None)


def _may_create(ctx: RequestContext, topic: str) -> bool:
    """CREATE on the cluster or the topic (Kafka's check for CreateTopics and auto-creation)."""
    return ctx.authorized(AclOperation.CREATE, ResourceType.CLUSTER, CLUSTER) or \
        ctx.authorized(AclOperation.CREATE, ResourceType.TOPIC, topic)


def _cluster_operations(ctx: RequestContext, requested: bool) -> int:
    """KIP-430 for the cluster: none at all without DESCRIBE on it, as Kafka answers."""
    if requested and not ctx.authorized(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER):
        return 0
    return ctx.operations(ResourceType.CLUSTER, CLUSTER, requested)


@handles(60, versions=range(0, 3))
async def describe_cluster(ctx: RequestContext, request: Any) -> dict[str, Any]:
    endpoint_type = getattr(request, "endpoint_type", 1)
    if endpoint_type != 1:  # KIP-919: controllers are asked on their own listener, as Kafka answers
        mismatched = endpoint_type == 2
        return {"error_code": ErrorCode.mismatched_endpoint_type if mismatched else ErrorCode.unsupported_endpoint_type,
                "error_message": "The request was sent to an endpoint of type BROKER, but we wanted an endpoint "
                                 "of type CONTROLLER" if mismatched else f"unsupported endpoint type {endpoint_type}",
                "cluster_id": "", "brokers": (), "throttle_time": 0, "endpoint_type": 1}
    return {
        "throttle_time": 0, "error_code": 0, "error_message": None, "endpoint_type": 1,
        "cluster_id": ctx.broker.cluster_id, "controller_id": ctx.broker.node_id,
        "brokers": [broker_entry(ctx, "broker_id")],
        "cluster_authorized_operations": ctx.operations(
            ResourceType.CLUSTER, CLUSTER, request.include_cluster_authorized_operations),
    }


# DescribeTopicPartitions ---------------------------------------------------------------------

def _described_topic(ctx: RequestContext, meta: TopicImage, start: int, limit: int) -> dict[str, Any]:
    node = ctx.broker.node_id
    partitions = ctx.broker.metadata.image.partitions(meta)
    return {"error_code": 0, "name": meta.name, "topic_id": meta.topic_id, "is_internal": meta.internal,
            "topic_authorized_operations": ctx.operations(ResourceType.TOPIC, meta.name, True),
            "partitions": [{"error_code": 0, "partition_index": p, "leader_id": node,
                            "leader_epoch": partitions[p].leader_epoch, "replica_nodes": (node,), "isr_nodes": (node,),
                            "eligible_leader_replicas": (), "last_known_elr": (), "offline_replicas": ()}
                           for p in range(start, min(meta.num_partitions, start + limit))]}


@handles(75, versions=range(0, 1))
async def describe_topic_partitions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    cursor = request.cursor
    after = cursor.topic_name if cursor is not None else ""
    every = not request.topics
    topics = ctx.broker.metadata.topics()
    names = sorted({n for n in (topics if every else (t.name for t in request.topics)) if n >= after})
    if cursor is not None and (not every and cursor.topic_name not in names or cursor.partition_index < 0):
        # Kafka's error response: every topic asked for with the error, nothing else
        return {"throttle_time": 0, "next_cursor": None, "topics": [
            {"error_code": ErrorCode.invalid_request, "name": t.name, "topic_id": None, "is_internal": False,
             "partitions": ()} for t in request.topics]}
    limit = max(min(ctx.broker.config["max.request.partition.size.limit"], request.response_partition_limit), 1)
    described: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    next_cursor: dict[str, Any] | None = None
    for name in names:  # as Kafka's: topics past where the answer stops are not looked at
        if not ctx.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, name):
            if not every:  # no id: nothing is told of a topic it may not see
                refused.append({"error_code": ErrorCode.topic_authorization_failed, "name": name, "topic_id": None,
                                "is_internal": False, "partitions": ()})
            continue
        if limit == 0:
            next_cursor = {"topic_name": name, "partition_index": 0}
            break
        meta = topics.get(name)
        if meta is None:
            if not every:
                try:
                    check_topic_name(name)
                    code = ErrorCode.unknown_topic_or_partition
                except KafkaError as e:
                    code = e.code
                described.append({"error_code": code, "name": name, "topic_id": None,
                                  "is_internal": name in INTERNAL_TOPICS, "partitions": (),
                                  "topic_authorized_operations": ctx.operations(ResourceType.TOPIC, name, True)})
            continue
        start = cursor.partition_index if cursor is not None and name == cursor.topic_name else 0
        entry = _described_topic(ctx, meta, start, limit)
        described.append(entry)
        limit -= len(entry["partitions"])
        if start + len(entry["partitions"]) < meta.num_partitions:
            next_cursor = {"topic_name": name, "partition_index": start + len(entry["partitions"])}
            break
    return {"throttle_time": 0, "topics": described + refused, "next_cursor": next_cursor}
