"""ConsumerGroupHeartbeat (key 68) v0-1 and ConsumerGroupDescribe (69) v0-1: the consumer
group protocol of KIP-848 (librdkafka's ``group.protocol=consumer``), thin adapters over
:mod:`tomyum.coordinator.group.consumer`.

v0 names a joining member that sends no member id; v1 (KIP-1082) expects the client to name
itself and adds ``SubscribedTopicRegex`` (matched here with Python's ``re``, whole names, not
RE2/J). Server assignors: ``uniform`` (default) and ``range``. A group id held by a classic
group with members answers GROUP_ID_NOT_FOUND, as Kafka does without online migration; an
empty classic group of that id is replaced. A heartbeat that changes the group is answered
once its records are durable in ``__consumer_offsets``; after a restart members carry on with
their epochs and assignments. Which type a group id is, is the coordinator's to decide
(coordinator/group/service.py).
"""

from __future__ import annotations

from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import handles
from tomyum.coordinator.group.consumer import HeartbeatRequest
from tomyum.errors import ErrorCode
from tomyum.protocol.codec import ms
from tomyum.security.acls import ResourceType, authorized_operations



@handles(68, versions=range(0, 2))
async def consumer_group_heartbeat(ctx: RequestContext, request: Any) -> dict[str, Any]:
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
        client_host=ctx.client_address))
    return {"throttle_time": 0, **answer}


@handles(69, versions=range(0, 2))
async def consumer_group_describe(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.broker
    names = {meta.topic_id: name for name, meta in broker.metadata.topics().items()}
    groups = []
    for group_id in request.group_ids:
        if group_id in broker.consumer_groups:
            described = broker.consumer_groups.state.describe(group_id, names)
        else:
            why = "is not a consumer group" if group_id in broker.groups.groups else "not found"
            described = {"error_code": ErrorCode.group_id_not_found, "error_message": f"Group {group_id} {why}.",
                         "group_id": group_id, "group_state": "Dead", "group_epoch": -1, "assignment_epoch": -1,
                         "assignor_name": "", "members": ()}
        groups.append({**described, "authorized_operations": authorized_operations(
            ResourceType.GROUP, request.include_authorized_operations)})
    return {"throttle_time": 0, "groups": groups}
