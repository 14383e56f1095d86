"""OffsetCommit (key 8) v2-9 and OffsetFetch (key 9) v1-9.

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
committed an offset for (the client retries until the transaction ends).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import Deferred, handles
from tomyum.coordinator.group.offsets_log import CommittedOffset
from tomyum.errors import ErrorCode, KafkaError

MAX_METADATA = 4096


@handles(8, versions=range(2, 10))
async def offset_commit(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    generation = getattr(request, "generation_id_or_member_epoch", getattr(request, "generation_id", -1))
    group_code = check_committer(ctx, request.group_id, request.member_id, generation,
                                 getattr(request, "group_instance_id", None))
    return commit_offsets(ctx, request.topics, group_code,
                          lambda commits: broker.offsets.commit(request.group_id, commits))


def check_committer(ctx: RequestContext, group_id: str, member_id: str, generation_or_epoch: int,
                    group_instance_id: str | None, transactional: bool = False) -> ErrorCode:
    """May this member commit offsets for ``group_id``? Checked by the coordinator of the
    group's kind: the member epoch of a consumer group (KIP-848), the generation of a
    classic one. OffsetCommit and TxnOffsetCommit both ask here."""
    broker = ctx.broker
    if group_id in broker.consumer_groups:
        return broker.consumer_groups.state.check_commit(group_id, member_id, generation_or_epoch,
                                                         ctx.api_version, transactional=transactional)
    return broker.groups.check_commit(group_id, generation_or_epoch, member_id, group_instance_id)


def commit_offsets(ctx: RequestContext, request_topics: Any, group_code: ErrorCode,
                   store: Callable[[list[tuple[str, int, CommittedOffset]]], Awaitable[None]]) -> Deferred:
    """Check each partition of an OffsetCommit or TxnOffsetCommit, store the valid commits with
    ``store`` and answer, per partition, once they are durable."""
    now = int(time.time() * 1000)
    topics: list[dict[str, Any]] = []
    commits: list[tuple[str, int, CommittedOffset]] = []
    known = ctx.broker.metadata.topics()
    for t in request_topics:
        parts = []
        for p in t.partitions:
            code = group_code
            if code == ErrorCode.none:
                if t.name not in known or not 0 <= p.partition_index < known[t.name].num_partitions:
                    code = ErrorCode.unknown_topic_or_partition
                elif len(p.committed_metadata or "") > MAX_METADATA:
                    code = ErrorCode.offset_metadata_too_large
                else:
                    commits.append((t.name, p.partition_index, CommittedOffset(
                        p.committed_offset, getattr(p, "committed_leader_epoch", -1),
                        p.committed_metadata or "", now)))
            parts.append({"partition_index": p.partition_index, "error_code": code})
        topics.append({"name": t.name, "partitions": parts})

    async def durable() -> dict[str, Any]:
        try:
            await store(commits)
        except KafkaError as e:
            for t in topics:
                for p in t["partitions"]:
                    if p["error_code"] == ErrorCode.none:
                        p["error_code"] = e.code
        return {"throttle_time": 0, "topics": topics}

    return Deferred(durable())


def _fetch_group(ctx: RequestContext, group_id: str, wanted: Any, require_stable: bool = False) -> list[dict[str, Any]]:
    offsets = ctx.broker.offsets
    if wanted is None:
        requested = sorted(offsets.topics_of(group_id).items())
    else:
        requested = [(t.name, list(t.partition_indexes)) for t in wanted]
    topics = []
    for name, partitions in requested:
        parts = []
        for p in sorted(partitions):
            c = offsets.fetch(group_id, name, p)
            parts.append({"partition_index": p, "committed_offset": c.offset if c else -1,
                          "committed_leader_epoch": c.leader_epoch if c else -1,
                          "metadata": c.metadata if c else "", "error_code": 0})
            if require_stable and offsets.unstable(group_id, name, p):
                parts[-1]["error_code"] = ErrorCode.unstable_offset_commit
        topics.append({"name": name, "partitions": parts})
    return topics


def _fetch_groups(ctx: RequestContext, groups: Any, require_stable: bool) -> list[dict[str, Any]]:
    consumer_groups = ctx.broker.consumer_groups
    out = []
    for g in groups:
        code = ErrorCode.none
        if g.group_id in consumer_groups:
            code = consumer_groups.state.check_fetch(g.group_id, getattr(g, "member_id", None),
                                                     getattr(g, "member_epoch", -1))
        topics = _fetch_group(ctx, g.group_id, g.topics, require_stable) if code == ErrorCode.none else []
        out.append({"group_id": g.group_id, "topics": topics, "error_code": code})
    return out


@handles(9, versions=range(1, 10))
async def offset_fetch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    require_stable = getattr(request, "require_stable", False)
    if hasattr(request, "groups"):
        return {"throttle_time": 0, "groups": _fetch_groups(ctx, request.groups, require_stable)}
    return {"throttle_time": 0, "error_code": 0,
            "topics": _fetch_group(ctx, request.group_id, request.topics, require_stable)}
