"""Leaders, replicas and the metadata quorum of a one-broker cluster, answered as Kafka's
controller answers them: ElectLeaders (key 43) v0-2, AlterPartitionReassignments (45) v0-1,
ListPartitionReassignments (46) v0 and DescribeQuorum (55) v0-2, so that Kafka's own tools
(``kafka-leader-election``, ``kafka-reassign-partitions``, ``kafka-metadata-quorum``) work.

Every partition has one replica, this broker, which leads it: a preferred or an unclean election
is never needed (ELECTION_NOT_NEEDED; for every partition at once, Kafka leaves those out and
answers each topic with no partitions); a reassignment onto this broker alone changes nothing
and succeeds at once, onto any other broker (or none, or the same one twice) is
INVALID_REPLICA_ASSIGNMENT, a cancellation NO_REASSIGNMENT_IN_PROGRESS; none is ever in
progress. The metadata quorum is this broker alone, voter and leader: the metadata log's
``__cluster_metadata-0``, everything in it durable (its high watermark its end).

With an authorizer: ALTER on the cluster for an election or a reassignment, DESCRIBE to list
reassignments or describe the quorum, else CLUSTER_AUTHORIZATION_FAILED, as Kafka answers.
"""

from __future__ import annotations

import uuid
from typing import Any

from tomyum.broker.context import CLUSTER, RequestContext
from tomyum.broker.dispatch import handles
from tomyum.errors import ErrorCode
from tomyum.metadata.properties import read_properties
from tomyum.metadata.records import parse_short_uuid
from tomyum.security.acls import AclOperation, ResourceType

PREFERRED, UNCLEAN = 0, 1
#: the metadata log's partition (Kafka's KRaft topic)
QUORUM_TOPIC = "__cluster_metadata"
#: the leader epoch of the quorum: one voter, elected once and never again
QUORUM_EPOCH = 1
_MESSAGES = {
    ErrorCode.cluster_authorization_failed: "Cluster authorization failed.",
    ErrorCode.election_not_needed: "Leader election not needed for topic partition.",
}


def _missing(ctx: RequestContext, topic: str, partition: int) -> str | None:
    """What the broker lacks of the partition: "topic", "partition", or None (it has it); each
    API words its UNKNOWN_TOPIC_OR_PARTITION in Kafka's own message."""
    meta = ctx.broker.metadata.image.topics.get(topic)
    if meta is None:
        return "topic"
    return None if 0 <= partition < meta.num_partitions else "partition"


# ElectLeaders ---------------------------------------------------------------------------------

@handles(43, versions=range(0, 3))
async def elect_leaders(ctx: RequestContext, request: Any) -> dict[str, Any]:
    election = getattr(request, "election_type", PREFERRED)
    error, message = ErrorCode.none, ""
    if not ctx.authorized(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER):
        error, message = ErrorCode.cluster_authorization_failed, _MESSAGES[ErrorCode.cluster_authorization_failed]
    elif election not in (PREFERRED, UNCLEAN):
        error, message = ErrorCode.invalid_request, f"Unknown election type {election}"
    if error:  # Kafka's ElectLeadersRequest.getErrorResponse: the error everywhere
        return {"throttle_time": 0, "error_code": error, "replica_election_results": [
            {"topic": t.topic, "partition_result": [
                {"partition_id": p, "error_code": error, "error_message": message} for p in t.partitions]}
            for t in request.topic_partitions or ()]}
    results: list[dict[str, Any]] = []
    if request.topic_partitions is None:  # every partition: those that need no election are left out
        results = [{"topic": name, "partition_result": []} for name in ctx.broker.metadata.image.topics]
    else:
        for t in request.topic_partitions:
            parts = []
            for p in t.partitions:
                missing = _missing(ctx, t.topic, p)
                code = ErrorCode.unknown_topic_or_partition if missing else ErrorCode.election_not_needed
                why = (f"No such topic as {t.topic}" if missing == "topic" else
                       f"No such partition as {t.topic}-{p}" if missing else _MESSAGES[code])
                parts.append({"partition_id": p, "error_code": code, "error_message": why})
            results.append({"topic": t.topic, "partition_result": parts})
    return {"throttle_time": 0, "error_code": 0, "replica_election_results": results}


# AlterPartitionReassignments, ListPartitionReassignments ----------------------------------------

def _reassignment_error(ctx: RequestContext, topic: str, partition: int,
                        replicas: tuple[int, ...] | None) -> tuple[ErrorCode, str | None]:
    missing = _missing(ctx, topic, partition)
    if missing == "topic":
        return ErrorCode.unknown_topic_or_partition, f"Unable to find a topic named {topic}."
    if missing == "partition":
        return ErrorCode.unknown_topic_or_partition, f"Unable to find partition {topic}:{partition}."
    if replicas is None:
        return ErrorCode.no_reassignment_in_progress, None
    if not replicas:
        return ErrorCode.invalid_replica_assignment, ("The manual partition assignment includes an empty "
                                                      "replica list.")
    previous = None
    for broker in sorted(replicas):
        if broker != ctx.broker.node_id:
            return ErrorCode.invalid_replica_assignment, (f"The manual partition assignment includes broker "
                                                          f"{broker}, but no such broker is registered.")
        if broker == previous:
            return ErrorCode.invalid_replica_assignment, (f"The manual partition assignment includes the broker "
                                                          f"{broker} more than once.")
        previous = broker
    return ErrorCode.none, None  # the replicas it has: nothing to move


@handles(45, versions=range(0, 2))
async def alter_partition_reassignments(ctx: RequestContext, request: Any) -> dict[str, Any]:
    allow = getattr(request, "allow_replication_factor_change", True)
    if not ctx.authorized(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER):
        error = ErrorCode.cluster_authorization_failed
        denied = _MESSAGES[error]
        return {"throttle_time": 0, "allow_replication_factor_change": allow, "error_code": error,
                "error_message": denied, "responses": [
                    {"name": t.name, "partitions": [
                        {"partition_index": p.partition_index, "error_code": error, "error_message": denied}
                        for p in t.partitions]} for t in request.topics]}
    responses = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            code, message = _reassignment_error(ctx, t.name, p.partition_index, p.replicas)
            parts.append({"partition_index": p.partition_index, "error_code": code, "error_message": message})
        responses.append({"name": t.name, "partitions": parts})
    return {"throttle_time": 0, "allow_replication_factor_change": allow, "error_code": 0, "error_message": None,
            "responses": responses}


@handles(46, versions=range(0, 1))
async def list_partition_reassignments(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not ctx.authorized(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER):
        error = ErrorCode.cluster_authorization_failed
        return {"throttle_time": 0, "error_code": error, "error_message": _MESSAGES[error], "topics": []}
    return {"throttle_time": 0, "error_code": 0, "error_message": None, "topics": []}  # none is ever in progress


# DescribeQuorum -------------------------------------------------------------------------------

def _directory_id(ctx: RequestContext) -> uuid.UUID | None:
    """The data directory's id (``meta.properties``' ``directory.id``)."""
    raw = read_properties(ctx.broker.data_dir / "meta.properties").get("directory.id")
    try:
        return parse_short_uuid(raw) if raw else None
    except ValueError:
        return None


@handles(55, versions=range(0, 3))
async def describe_quorum(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not ctx.authorized(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER):
        error = ErrorCode.cluster_authorization_failed
        return {"error_code": error, "error_message": _MESSAGES[error], "topics": [],
                "nodes": []}
    topics = request.topics
    if not (len(topics) == 1 and topics[0].topic_name == QUORUM_TOPIC and len(topics[0].partitions) == 1
            and topics[0].partitions[0].partition_index == 0):
        error = ErrorCode.unknown_topic_or_partition
        return {"error_code": 0, "error_message": None, "nodes": [], "topics": [
            {"topic_name": t.topic_name, "partitions": [
                {"partition_index": p.partition_index, "error_code": error,
                 "error_message": "This server does not host this topic-partition.",
                 "leader_id": 0, "leader_epoch": 0, "high_watermark": 0,  # the schema's zeros, as Kafka answers
                 "current_voters": [], "observers": []}
                for p in t.partitions]} for t in topics]}
    node = ctx.broker.node_id
    end = ctx.broker.metadata.log.next_offset
    now_ms = ctx.broker.clock.time_ms()
    voter = {"replica_id": node, "replica_directory_id": _directory_id(ctx), "log_end_offset": end,
             "last_fetch_timestamp": now_ms, "last_caught_up_timestamp": now_ms}
    return {"error_code": 0, "error_message": None, "topics": [{"topic_name": QUORUM_TOPIC, "partitions": [
        {"partition_index": 0, "error_code": 0, "error_message": None, "leader_id": node,
         "leader_epoch": QUORUM_EPOCH, "high_watermark": end, "current_voters": [voter], "observers": []}]}],
        "nodes": [{"node_id": node, "listeners": [
            {"name": listener.name, "host": listener.advertised_host, "port": listener.advertised_port}
            for listener in ctx.broker.listeners]}]}
