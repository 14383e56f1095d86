"""ListGroups (key 16) v0-5, DescribeGroups (15) v0-6, DeleteGroups (42) v0-2, OffsetDelete (47) v0.

A group known only by its committed offsets is listed as Empty. Consumer groups (KIP-848) are
listed with group type "consumer" and their own states (Empty, Assigning, Reconciling,
Stable); DescribeGroups, a classic API, answers Dead for them (ConsumerGroupDescribe
describes them), and from v6 (KIP-1043) GROUP_ID_NOT_FOUND, as for a group that does not exist. DeleteGroups refuses a group
with members (NON_EMPTY_GROUP); OffsetDelete refuses a topic the group's members subscribe to
(GROUP_SUBSCRIBED_TO_TOPIC), reading the consumer protocol's subscription.

With an authorizer (Kafka's checks): ListGroups lists every group with DESCRIBE on the cluster,
else those with DESCRIBE on the group; DescribeGroups needs DESCRIBE, DeleteGroups DELETE on
each group (GROUP_AUTHORIZATION_FAILED); OffsetDelete DELETE on the group and READ on each
topic (TOPIC_AUTHORIZATION_FAILED for its partitions).
"""

from __future__ import annotations

import struct
from typing import Any

from tomyum.broker.context import CLUSTER, RequestContext
from tomyum.broker.dispatch import handles
from tomyum.coordinator.group.classic_group import Group, GroupState
from tomyum.errors import ErrorCode
from tomyum.security.acls import AUTHORIZED_OPERATIONS_OMITTED, AclOperation, ResourceType


async def _known(ctx: RequestContext) -> dict[str, Group]:
    """Classic groups, and groups known only by their offsets (as empty classic groups); members
    past their session timeout are expired first, exactly when it is due (Kafka's per-member timer)."""
    await ctx.broker.groups.timer.run_due()
    consumer = ctx.broker.consumer_groups
    groups = {g.group_id: g for g in ctx.broker.groups.groups.values() if g.state != GroupState.DEAD}
    for name in ctx.broker.offsets.groups():
        if name not in consumer:
            groups.setdefault(name, Group(name))
    return groups


def subscribed_topics(g: Group) -> set[str]:
    """Topics in the members' consumer-protocol subscriptions (version, [topic], ...)."""
    topics: set[str] = set()
    if g.protocol_type != "consumer" or g.protocol_name is None:
        return topics
    for m in g.members.values():
        try:
            data = m.metadata_for(g.protocol_name)
            (count,) = struct.unpack_from(">i", data, 2)
            pos = 6
            for _ in range(count):
                (n,) = struct.unpack_from(">h", data, pos)
                topics.add(data[pos + 2 : pos + 2 + n].decode())
                pos += 2 + n
        except (StopIteration, struct.error, UnicodeDecodeError):
            continue
    return topics


@handles(16, versions=range(0, 6))
async def list_groups(ctx: RequestContext, request: Any) -> dict[str, Any]:
    states = {s.lower() for s in getattr(request, "states_filter", ())}
    types = {t.lower() for t in getattr(request, "types_filter", ())}
    listed = [(g.group_id, g.protocol_type or "consumer", g.state.value, "classic") for g in (await _known(ctx)).values()]
    listed += [(group_id, "consumer", cg.state(), "consumer")
               for group_id, cg in ctx.broker.consumer_groups.state.groups.items()]
    everything = ctx.authorized(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER)
    groups = [{"group_id": group_id, "protocol_type": protocol_type, "group_state": state, "group_type": kind}
              for group_id, protocol_type, state, kind in listed
              if (not states or state.lower() in states) and (not types or kind in types)
              and (everything or ctx.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, group_id))]
    return {"throttle_time": 0, "error_code": 0, "groups": groups}


def _described(ctx: RequestContext, name: str, g: Group | None, wanted: bool) -> dict[str, Any]:
    if g is None:  # from v6 (KIP-1043) an error, with no authorized operations; before it a dead group
        dead = {"group_id": name, "group_state": "Dead", "protocol_type": "", "protocol_data": "", "members": ()}
        if ctx.api_version < 6:
            return {**dead, "error_code": 0, "authorized_operations": ctx.operations(ResourceType.GROUP, name, wanted)}
        why = "is not a classic group" if name in ctx.broker.consumer_groups else "not found"
        return {**dead, "error_code": ErrorCode.group_id_not_found, "error_message": f"Group {name} {why}.",
                "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED}
    stable = g.state == GroupState.STABLE
    members = [{"member_id": m.member_id, "group_instance_id": m.group_instance_id, "client_id": m.client_id,
                "client_host": m.client_host,
                "member_metadata": m.metadata_for(g.protocol_name) if stable and g.protocol_name else b"",
                "member_assignment": m.assignment if stable else b""} for m in g.members.values()]
    return {"error_code": 0, "group_id": name, "group_state": g.state.value,
            "protocol_type": g.protocol_type or "", "protocol_data": g.protocol_name or "",
            "members": members, "authorized_operations": ctx.operations(ResourceType.GROUP, name, wanted)}


@handles(15, versions=range(0, 7))
async def describe_groups(ctx: RequestContext, request: Any) -> dict[str, Any]:
    known = await _known(ctx)
    wanted = getattr(request, "include_authorized_operations", False)
    return {"throttle_time": 0, "groups": [
        _described(ctx, name, known.get(name), wanted)
        if ctx.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, name) else _refused(name)
        for name in request.groups]}


def _refused(name: str) -> dict[str, Any]:
    return {"error_code": ErrorCode.group_authorization_failed, "group_id": name, "group_state": "",
            "protocol_type": "", "protocol_data": "", "members": (), "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED}


@handles(42, versions=range(0, 3))
async def delete_groups(ctx: RequestContext, request: Any) -> dict[str, Any]:
    names = list(request.groups_names)
    allowed = ctx.authorized_names(AclOperation.DELETE, ResourceType.GROUP, names)
    codes = iter(await ctx.broker.group_coordinator.delete_groups([n for n in names if n in allowed]))
    return {"throttle_time": 0, "results": [
        {"group_id": name, "error_code": next(codes) if name in allowed else ErrorCode.group_authorization_failed}
        for name in names]}


@handles(47, versions=range(0, 1))
async def offset_delete(ctx: RequestContext, request: Any) -> dict[str, Any]:
    consumer = ctx.broker.consumer_groups
    if not ctx.authorized(AclOperation.DELETE, ResourceType.GROUP, request.group_id):
        return {"error_code": ErrorCode.group_authorization_failed, "throttle_time": 0, "topics": ()}
    g = (await _known(ctx)).get(request.group_id)
    if request.group_id in consumer:
        busy = set(consumer.state.subscribed_topic_names(request.group_id, ctx.broker.metadata.topics()))
    elif g is None:
        return {"error_code": ErrorCode.group_id_not_found, "throttle_time": 0, "topics": ()}
    else:
        busy = subscribed_topics(g) if g.members else set()
    deletable, topics = [], []
    readable = ctx.authorized_names(AclOperation.READ, ResourceType.TOPIC, (t.name for t in request.topics))
    for t in request.topics:
        parts = []
        for p in t.partitions:
            code = (ErrorCode.topic_authorization_failed if t.name not in readable else
                    ErrorCode.group_subscribed_to_topic if t.name in busy else ErrorCode.none)
            if code == ErrorCode.none:
                deletable.append((t.name, p.partition_index))
            parts.append({"partition_index": p.partition_index, "error_code": code})
        topics.append({"name": t.name, "partitions": parts})
    await ctx.broker.offsets.delete(request.group_id, deletable)
    return {"error_code": 0, "throttle_time": 0, "topics": topics}
