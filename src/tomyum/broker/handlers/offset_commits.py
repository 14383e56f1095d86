"""OffsetCommit (key 8) v2-10 and OffsetFetch (key 9) v1-10.

Commits are appended to ``__consumer_offsets`` and answered once durable. A commit by a
group member is checked against the group's generation (ILLEGAL_GENERATION,
UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS); a standalone commit (generation -1, no member)
is accepted while the group has no members. As in Kafka, a member of the current generation may
commit while the group prepares a rebalance (REBALANCE_IN_PROGRESS only while the leader
assigns). OffsetFetch v8 takes several groups.

A consumer group of KIP-848 checks the member epoch instead (Kafka's rules): its members
commit with OffsetCommit v9+ (UNSUPPORTED_VERSION below), an old epoch is STALE_MEMBER_EPOCH;
OffsetFetch v9 that names a member is checked the same way. OffsetFetch v7+ with
require_stable answers UNSTABLE_OFFSET_COMMIT for a partition an open transaction has
committed an offset for (the client retries until the transaction ends). From v10 both name
topics by id (KIP-848's consumers): an id the broker does not know is UNKNOWN_TOPIC_ID for each
of its partitions, and a fetch of all a group's offsets lists its topics by id.

The rules are the group coordinator's (coordinator/group/service.py: check_commit,
commit_offsets, check_fetch); this module decodes and encodes.

With an authorizer (Kafka's checks): OffsetCommit needs READ on the group (else every
partition is GROUP_AUTHORIZATION_FAILED) and READ on each topic (TOPIC_AUTHORIZATION_FAILED for
its partitions); OffsetFetch DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED) and DESCRIBE on
a topic asked for by name (its partitions TOPIC_AUTHORIZATION_FAILED) — asked for all, a group's
topics without DESCRIBE are left out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import Deferred, handles
from tomyum.coordinator.group.service import OffsetCommitEntry
from tomyum.errors import ErrorCode
from tomyum.security.acls import AclOperation, ResourceType


#: the first OffsetCommit / OffsetFetch version that names topics by id
TOPIC_IDS_VERSION = 10


def topic_names(ctx: RequestContext, request_topics: Any) -> list[str | None]:
    """The name of each of a request's topics: as named, or (v10+) by id (None: an id the
    broker does not know)."""
    if ctx.api_version < TOPIC_IDS_VERSION:
        return [t.name for t in request_topics]
    by_id = ctx.broker.metadata.image.topics_by_id
    return [by_id[t.topic_id].name if t.topic_id in by_id else None for t in request_topics]


@handles(8, versions=range(2, 11))
async def offset_commit(ctx: RequestContext, request: Any) -> Any:
    service = ctx.broker.group_coordinator
    generation = getattr(request, "generation_id_or_member_epoch", getattr(request, "generation_id", -1))
    by_id = ctx.api_version >= TOPIC_IDS_VERSION
    if not ctx.authorized(AclOperation.READ, ResourceType.GROUP, request.group_id):
        refused = ErrorCode.group_authorization_failed  # Kafka's getErrorResponse: every partition
        return {"throttle_time": 0, "topics": [
            _as_named(t, by_id) | {"partitions": [
                {"partition_index": p.partition_index, "error_code": refused} for p in t.partitions]}
            for t in request.topics]}
    group_code = service.check_commit(request.group_id, request.member_id, generation,
                                      getattr(request, "group_instance_id", None), ctx.api_version)
    names = topic_names(ctx, request.topics)
    return commit_response(request.topics, names, authorized_commit(
        ctx, commit_entries(request.topics, names),
        lambda allowed: service.commit_offsets(request.group_id, group_code, allowed)), by_id=by_id)


def authorized_commit(ctx: RequestContext, entries: list[OffsetCommitEntry],
                      commit: Any) -> Awaitable[list[ErrorCode]]:
    """``commit(entries)`` of the entries whose topics this principal may READ; the others are
    answered TOPIC_AUTHORIZATION_FAILED (OffsetCommit and TxnOffsetCommit, as Kafka)."""
    readable = ctx.authorized_names(AclOperation.READ, ResourceType.TOPIC, (e.topic for e in entries))
    stored: Awaitable[Sequence[ErrorCode]] = commit([e for e in entries if e.topic in readable])

    async def merged() -> list[ErrorCode]:
        codes = iter(await stored)
        return [next(codes) if e.topic in readable else ErrorCode.topic_authorization_failed for e in entries]

    return merged()


def _as_named(topic: Any, by_id: bool) -> dict[str, Any]:
    """A response topic named as the request's ``topic`` was: by id (v10+) or by name."""
    return {"topic_id": topic.topic_id} if by_id else {"name": topic.name}


def commit_entries(request_topics: Any, names: Sequence[str | None]) -> list[OffsetCommitEntry]:
    """The partitions of an OffsetCommit or TxnOffsetCommit, decoded: those of the topics
    ``names`` (:func:`topic_names`) knows."""
    return [OffsetCommitEntry(topic=name, partition=p.partition_index, offset=p.committed_offset,
                              leader_epoch=getattr(p, "committed_leader_epoch", -1),
                              metadata=p.committed_metadata or "")
            for t, name in zip(request_topics, names) if name is not None for p in t.partitions]


def commit_response(request_topics: Any, names: Sequence[str | None], stored: Awaitable[list[ErrorCode]], *,
                    by_id: bool = False) -> Deferred:
    """The response of an OffsetCommit or TxnOffsetCommit, once its commits are durable: the
    codes ``stored`` gave the :func:`commit_entries` of known topics, UNKNOWN_TOPIC_ID for the
    rest; each topic named as the request named it."""
    async def durable() -> dict[str, Any]:
        codes = iter(await stored)
        topics = [_as_named(t, by_id) | {"partitions": [
            {"partition_index": p.partition_index,
             "error_code": next(codes) if name is not None else ErrorCode.unknown_topic_id} for p in t.partitions]}
            for t, name in zip(request_topics, names)]
        return {"throttle_time": 0, "topics": topics}

    return Deferred(durable())


def _fetch_group(ctx: RequestContext, group_id: str, wanted: Any, require_stable: bool = False) -> list[dict[str, Any]]:
    offsets = ctx.broker.offsets
    by_id = ctx.api_version >= TOPIC_IDS_VERSION
    image = ctx.broker.metadata.image
    requested: list[tuple[str | None, Any, list[int]]]  # (name, topic id, partitions)
    if wanted is None:  # by id: a topic the broker no longer has, no id, is left out
        requested = [(t, image.topics[t].topic_id if by_id else None, ps)
                     for t, ps in sorted(offsets.topics_of(group_id).items())
                     if ctx.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, t)
                     and (not by_id or t in image.topics)]
    else:
        requested = [(name, getattr(t, "topic_id", None), list(t.partition_indexes))
                     for t, name in zip(wanted, topic_names(ctx, wanted))]
    described = ctx.authorized_names(AclOperation.DESCRIBE, ResourceType.TOPIC, (t for t, _, _ in requested))
    topics = []
    for name, topic_id, partitions in requested:
        parts = []
        for p in sorted(partitions):
            c = offsets.fetch(group_id, name, p) if name in described else None
            parts.append({"partition_index": p, "committed_offset": c.offset if c else -1,
                          "committed_leader_epoch": c.leader_epoch if c else -1,
                          "metadata": c.metadata if c else "", "error_code": 0})
            if name is None:
                parts[-1]["error_code"] = ErrorCode.unknown_topic_id
            elif name not in described:
                parts[-1]["error_code"] = ErrorCode.topic_authorization_failed
            elif require_stable and offsets.unstable(group_id, name, p):
                parts[-1]["error_code"] = ErrorCode.unstable_offset_commit
        topics.append({"topic_id": topic_id, "partitions": parts} if by_id else {"name": name, "partitions": parts})
    return topics


def _fetch_groups(ctx: RequestContext, groups: Any, require_stable: bool) -> list[dict[str, Any]]:
    service = ctx.broker.group_coordinator
    out = []
    for g in groups:
        code = ErrorCode.group_authorization_failed
        if ctx.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, g.group_id):
            code = service.check_fetch(g.group_id, getattr(g, "member_id", None), getattr(g, "member_epoch", -1))
        topics = _fetch_group(ctx, g.group_id, g.topics, require_stable) if code == ErrorCode.none else []
        out.append({"group_id": g.group_id, "topics": topics, "error_code": code})
    return out


@handles(9, versions=range(1, 11))
async def offset_fetch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    require_stable = getattr(request, "require_stable", False)
    if hasattr(request, "groups"):
        return {"throttle_time": 0, "groups": _fetch_groups(ctx, request.groups, require_stable)}
    if not ctx.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, request.group_id):
        refused = ErrorCode.group_authorization_failed  # v1 has no top-level error: on each partition
        return {"throttle_time": 0, "error_code": refused, "topics": [
            {"name": t.name, "partitions": [{"partition_index": p, "committed_offset": -1, "metadata": "",
                                             "committed_leader_epoch": -1, "error_code": refused}
                                            for p in t.partition_indexes]}
            for t in request.topics or ()] if ctx.api_version < 2 else ()}
    return {"throttle_time": 0, "error_code": 0,
            "topics": _fetch_group(ctx, request.group_id, request.topics, require_stable)}
