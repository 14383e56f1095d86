"""FindCoordinator (key 10) v0-6, JoinGroup (11) v0-9, SyncGroup (14) v0-5, Heartbeat (12)
v0-4, LeaveGroup (13) v0-5: thin adapters over :mod:`tomyum.coordinator.group`.

This broker coordinates every group. FindCoordinator v4+ answers in the ``coordinators``
array (batched keys); key type 1 (transactions) is not available until the transaction
coordinator exists. JoinGroup v4+ without a group instance id gets MEMBER_ID_REQUIRED with
an id to come back with (KIP-394). JoinGroup and SyncGroup park until the rebalance moves on.
JoinGroup v8's reason (KIP-800) is read and not kept; from v9 a static leader that restarts
into a stable group is told it leads, with the members, and to skip the assignment (KIP-814).
JoinGroup for a consumer group (KIP-848) with members is INCONSISTENT_GROUP_PROTOCOL, as in
Kafka without online migration; an empty one is replaced by a classic group (the routing is
the coordinator's: coordinator/group/service.py). With an authorizer (Kafka's checks):
FindCoordinator needs DESCRIBE on the group or transactional id, the other four READ on the
group (GROUP_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import Deferred, handles
from tomyum.errors import ErrorCode
from tomyum.protocol.codec import ms
from tomyum.security.acls import AclOperation, ResourceType

#: what FindCoordinator needs for each key type, and its error without it
_KEY_RESOURCES = {0: (ResourceType.GROUP, ErrorCode.group_authorization_failed),
                  1: (ResourceType.TRANSACTIONAL_ID, ErrorCode.transactional_id_authorization_failed)}


@handles(10, versions=range(0, 7))
async def find_coordinator(ctx: RequestContext, request: Any) -> dict[str, Any]:
    keys = list(request.coordinator_keys) if hasattr(request, "coordinator_keys") else [request.key]
    key_type = getattr(request, "key_type", 0)
    listener = ctx.listener
    found = []
    for key in keys:
        loaded = (ctx.broker.offsets.coordinates(key) if key_type == 0 else
                  ctx.broker.transactions.coordinates(key) if key_type == 1 else True)
        resource = _KEY_RESOURCES.get(key_type)
        if resource is not None and not ctx.authorized(AclOperation.DESCRIBE, resource[0], key):
            found.append({"key": key, "node_id": -1, "host": "", "port": -1, "error_code": resource[1],
                          "error_message": None})
        elif key_type in (0, 1) and not loaded:
            found.append({"key": key, "node_id": -1, "host": "", "port": -1,
                          "error_code": ErrorCode.coordinator_not_available,
                          "error_message": "its partition of the internal topic could not be loaded"})
        elif key_type in (0, 1):  # a group or a transactional id: this broker coordinates both
            found.append({"key": key, "node_id": ctx.broker.node_id, "host": listener.advertised_host,
                          "port": listener.advertised_port, "error_code": 0, "error_message": None})
        else:
            found.append({"key": key, "node_id": -1, "host": "", "port": -1,
                          "error_code": ErrorCode.invalid_request,
                          "error_message": f"unknown coordinator key type {key_type}"})
    first = found[0] if found else {"node_id": -1, "host": "", "port": -1, "error_code": 0, "error_message": None}
    return {"throttle_time": 0, "coordinators": found, **{k: v for k, v in first.items() if k != "key"}}


@handles(11, versions=range(0, 10))
async def join_group(ctx: RequestContext, request: Any) -> Deferred | dict[str, Any]:
    session_ms = ms(request.session_timeout)
    rebalance_ms = ms(getattr(request, "rebalance_timeout", None)) if ctx.api_version >= 1 else session_ms
    if not _readable(ctx, request.group_id):
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed, "generation_id": -1,
                "protocol_name": None, "leader": "", "member_id": request.member_id, "members": ()}

    joined = await ctx.broker.group_coordinator.join_group(
        group_id=request.group_id, member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None), client_id=ctx.client_id or "",
        client_host=f"/{ctx.client_host}", session_timeout_ms=session_ms, rebalance_timeout_ms=rebalance_ms,
        protocol_type=request.protocol_type, protocols=[(p.name, p.metadata) for p in request.protocols],
        require_known_member_id=ctx.api_version >= 4, may_skip_assignment=ctx.api_version >= 9)

    async def answer() -> dict[str, Any]:
        return {"throttle_time": 0, **await joined}

    return Deferred(answer())


@handles(14, versions=range(0, 6))
async def sync_group(ctx: RequestContext, request: Any) -> Deferred | dict[str, Any]:
    if not _readable(ctx, request.group_id):
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed, "assignment": b""}

    async def answer() -> dict[str, Any]:
        result = await ctx.broker.groups.sync(
            group_id=request.group_id, generation_id=request.generation_id, member_id=request.member_id,
            assignments=[(a.member_id, a.assignment) for a in request.assignments],
            group_instance_id=getattr(request, "group_instance_id", None))
        return {"throttle_time": 0, **result}

    return Deferred(answer())


@handles(12, versions=range(0, 5))
async def heartbeat(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not _readable(ctx, request.group_id):
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed}
    result = ctx.broker.groups.heartbeat(group_id=request.group_id, generation_id=request.generation_id,
                                         member_id=request.member_id,
                                         group_instance_id=getattr(request, "group_instance_id", None))
    return {"throttle_time": 0, "error_code": result.response}


@handles(13, versions=range(0, 6))
async def leave_group(ctx: RequestContext, request: Any) -> dict[str, Any]:
    groups = ctx.broker.groups
    if not _readable(ctx, request.group_id):
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed, "members": ()}
    if hasattr(request, "members"):
        results = [{"member_id": m.member_id, "group_instance_id": m.group_instance_id,
                    "error_code": await groups.leave(request.group_id, m.member_id, m.group_instance_id)}
                   for m in request.members]
        return {"throttle_time": 0, "error_code": 0, "members": results}
    code = await groups.leave(request.group_id, request.member_id, None)
    return {"throttle_time": 0, "error_code": code, "members": ()}


def _readable(ctx: RequestContext, group_id: str) -> bool:
    return ctx.authorized(AclOperation.READ, ResourceType.GROUP, group_id)
