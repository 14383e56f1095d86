"""ConsumerGroupHeartbeat (key 68) v0-1 and ConsumerGroupDescribe (69) v0-1: the consumer
group protocol of KIP-848 (librdkafka's ``group.protocol=consumer``), thin adapters over
:mod:`tomyum.coordinator.group.consumer`.

v0 names a joining member that sends no member id; v1 (KIP-1082) expects the client to name
itself (an empty member id is INVALID_REQUEST "MemberId can't be empty.", as Kafka answers) and adds ``SubscribedTopicRegex`` (matched here with Python's ``re``, whole names, not
RE2/J). Server assignors: ``uniform`` (default) and ``range``. A group id held by a classic
group with members answers GROUP_ID_NOT_FOUND, as Kafka does without online migration; an
empty classic group of that id is replaced. A heartbeat that changes the group is answered
once its records are durable in ``__consumer_offsets``; after a restart members carry on with
their epochs and assignments. Which type a group id is, is the coordinator's to decide
(coordinator/group/service.py). With an authorizer (Kafka's checks): a heartbeat needs READ
on the group (GROUP_AUTHORIZATION_FAILED) and DESCRIBE on every topic it subscribes to by name
(TOPIC_AUTHORIZATION_FAILED); ConsumerGroupDescribe DESCRIBE on each group.
"""

from __future__ import annotations

from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import handles
from tomyum.coordinator.group.consumer import HeartbeatRequest
from tomyum.errors import ErrorCode
from tomyum.protocol.codec import ms
from tomyum.security.acls import AclOperation, ResourceType


@handles(68, versions=range(0, 2))
async def consumer_group_heartbeat(ctx: RequestContext, request: Any) -> dict[str, Any]:
    refusal = _refusal(ctx, request)
    if refusal is not None:
        return {"throttle_time": 0, "error_code": refusal[0], "error_message": refusal[1], "member_epoch": 0,
                "heartbeat_interval": 0}
    owned = None
    if request.topic_partitions is not None:
        owned = {tp.topic_id: frozenset(tp.partitions) for tp in request.topic_partitions}
    answer = await ctx.broker.group_coordinator.consumer_group_heartbeat(HeartbeatRequest(
        group_id=request.group_id, member_id=request.member_id, member_epoch=request.member_epoch,
        instance_id=request.instance_id, rack_id=request.rack_id,
        rebalance_timeout_ms=ms(request.rebalance_timeout),
        subscribed_topic_names=None if request.subscribed_topic_names is None
        else tuple(request.subscribed_topic_names),
        subscribed_topic_regex=getattr(request, "subscribed_topic_regex", None),
        server_assignor=request.server_assignor, owned=owned, client_id=ctx.client_id or "",
        client_host=f"/{ctx.client_host}", api_version=ctx.api_version))  # host as Kafka shows it (InetAddress.toString)
    return {"throttle_time": 0, **answer}


def _refusal(ctx: RequestContext, request: Any) -> tuple[ErrorCode, str] | None:
    if not ctx.authorized(AclOperation.READ, ResourceType.GROUP, request.group_id):
        return ErrorCode.group_authorization_failed, f"Not authorized to read group {request.group_id}"
    names = request.subscribed_topic_names or ()
    hidden = sorted(set(names) - ctx.authorized_names(AclOperation.DESCRIBE, ResourceType.TOPIC, names))
    if hidden:
        return ErrorCode.topic_authorization_failed, f"Not authorized to describe topics {hidden}"
    return None


@handles(69, versions=range(0, 2))
async def consumer_group_describe(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.broker
    names = {meta.topic_id: name for name, meta in broker.metadata.topics().items()}
    groups = []
    for group_id in request.group_ids:
        if not ctx.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
            groups.append(_described_error(group_id, ErrorCode.group_authorization_failed, None))
        elif group_id in broker.consumer_groups:
            groups.append({**broker.consumer_groups.state.describe(group_id, names),
                           "authorized_operations": ctx.operations(
                               ResourceType.GROUP, group_id, request.include_authorized_operations)})
        else:
            why = "is not a consumer group" if group_id in broker.groups.groups else "not found"
            groups.append(_described_error(group_id, ErrorCode.group_id_not_found, f"Group {group_id} {why}."))
    return {"throttle_time": 0, "groups": groups}


def _described_error(group_id: str, code: ErrorCode, message: str | None) -> dict[str, Any]:
    """A group ConsumerGroupDescribe cannot describe: only the error, every other field at its
    default (no state, epochs 0, no operations), as Kafka answers it."""
    return {"error_code": code, "error_message": message, "group_id": group_id, "group_state": "",
            "group_epoch": 0, "assignment_epoch": 0, "assignor_name": "", "members": (),
            "authorized_operations": -2147483648}
