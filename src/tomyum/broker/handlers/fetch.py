"""Fetch (key 1), v4-12.

Long poll: a fetch that has fewer than ``min_bytes`` parks until a partition it asked for
gets new durable data (woken by the high watermark, never by polling) or ``max_wait_ms``
passes. ``max_bytes`` bounds the response and ``partition_max_bytes`` each partition, except
that the first batch of the response is returned whole (KIP-74). Fetch sessions (KIP-227,
``fetch_sessions.py``): a fetch in a session reads every partition of the session, and is
answered with only those that have something new. A fetch over its client's
``consumer_byte_rate`` is answered with its throttle time and no partitions, as Kafka answers.
isolation_level=1 (read_committed) reads up to the last stable offset and answers the aborted
transactions among what it reads, so the client drops their records. With an authorizer a
topic needs READ (TOPIC_AUTHORIZATION_FAILED for each of its partitions), as in Kafka.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import Deferred, RawResponse, handles
from tomyum.broker.fetch_sessions import FetchContext, Wanted
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.codec import ms
from tomyum.protocol.fetch_response import FetchPartition, encode_fetch_response
from tomyum.security.acls import AclOperation, ResourceType
from tomyum.storage.engine import TopicPartition


_REFUSED_BEFORE_THE_LOG = frozenset({ErrorCode.unknown_topic_or_partition, ErrorCode.topic_authorization_failed})


async def _read_all(ctx: RequestContext, request: Any,
                    wanted: Wanted) -> tuple[list[tuple[str, list[FetchPartition]]], int, bool]:
    """Read each partition of ``wanted`` (the request's, or its session's) from its fetch offset."""
    store = ctx.broker.store
    remaining = request.max_bytes if ctx.api_version >= 3 else 2**31 - 1
    zero_copy_min = ctx.connection.zero_copy_min
    total, errors = 0, False
    read_committed = request.isolation_level == 1
    topics: list[tuple[str, list[FetchPartition]]] = []
    readable = ctx.authorized_names(AclOperation.READ, ResourceType.TOPIC, (name for name, _ in wanted))
    read = store.read
    for name, partitions in wanted:
        parts: list[FetchPartition] = []
        topics.append((name, parts))
        allowed = name in readable
        for p in partitions:
            try:
                if not allowed:
                    raise KafkaError(code=ErrorCode.topic_authorization_failed)
                result = await read(TopicPartition(name, p.partition), p.fetch_offset,
                                    min(p.partition_max_bytes, remaining), min_one=total == 0,
                                    zero_copy_min=zero_copy_min, read_committed=read_committed)
            except KafkaError as e:
                # Kafka: an empty aborted list where it refuses before the log, null from the log
                parts.append(FetchPartition(p.partition, e.code,
                                            aborted_transactions=() if e.code in _REFUSED_BEFORE_THE_LOG else None))
                errors = True
                continue
            aborted, records = result.aborted, result.records
            parts.append(FetchPartition(
                p.partition, 0, result.high_watermark, result.last_stable_offset, result.log_start_offset,
                None if aborted is None else [(a.producer_id, a.first_offset) for a in aborted], records,
                result.record_count))
            if records:
                total += len(records)
                remaining -= len(records)
    return topics, total, errors


def _respond(ctx: RequestContext, context: FetchContext, topics: list[tuple[str, list[FetchPartition]]]) -> RawResponse:
    # Only partitions with records carry bytes, and an incremental answer keeps every one of
    # them: what was read is what the answer would carry, whatever the session leaves out.
    throttle_ms = ctx.broker.quotas.fetch.throttle_fetch(ctx.principal, ctx.client_id, topics, ctx.connection.throttle)
    if throttle_ms:
        # Kafka's throttled answer: no partitions, and the session left as it was (a full
        # fetch makes none; an incremental one keeps its partitions' last answers)
        for _, parts in topics:
            for p in parts:
                if hasattr(p.records, "release"):
                    p.records.release()
        error, session_id = context.throttled()
        return RawResponse(encode_fetch_response(ctx.api_version, [], error_code=error, session_id=session_id,
                                                 throttle_time_ms=throttle_ms))
    error, session_id, topics = context.respond(topics)
    for name, parts in topics:
        ctx.broker.stats.fetched(name, sum(len(p.records) for p in parts), sum(p.record_count for p in parts))
    return RawResponse(encode_fetch_response(ctx.api_version, topics, error_code=error, session_id=session_id))


@handles(1, versions=range(4, 13))
async def fetch(ctx: RequestContext, request: Any) -> Any:
    context = ctx.broker.fetch_sessions.context(request)
    topics, total, errors = await _read_all(ctx, request, context.wanted)
    max_wait_s = max(ms(request.max_wait), 0) / 1000
    if (total >= request.min_bytes or errors or max_wait_s == 0 or not context.wanted  # as Kafka's ReplicaManager
            or ctx.broker.waiters.closed):
        return _respond(ctx, context, topics)
    seen = {TopicPartition(name, p.partition_index): p.high_watermark for name, parts in topics for p in parts}
    return Deferred(_long_poll(ctx, request, context, max_wait_s, seen))


async def _long_poll(ctx: RequestContext, request: Any, context: FetchContext, max_wait_s: float,
                     seen: dict[TopicPartition, int]) -> RawResponse:
    """Park until a partition's high watermark moves past what the last read ``seen``. The
    waiter is registered before that check, so a move in between still counts: no wake-up is
    lost, and nothing is registered before this coroutine runs (a cancelled fetch leaves none)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait_s
    store, waiters = ctx.broker.store, ctx.broker.waiters
    while True:
        waiter = waiters.register(seen)
        try:
            moved = any(_high_watermark(store, tp) != hw for tp, hw in seen.items())
            woken = moved or await waiter.wait(deadline - loop.time())
        finally:
            waiter.cancel()
        topics, total, errors = await _read_all(ctx, request, context.wanted)
        if not woken or total >= request.min_bytes or errors or loop.time() >= deadline or waiters.closed:
            return _respond(ctx, context, topics)
        seen = {TopicPartition(name, p.partition_index): p.high_watermark for name, parts in topics for p in parts}


def _high_watermark(store: Any, tp: TopicPartition) -> int:
    try:
        return int(store.offsets(tp).high_watermark)
    except KafkaError:
        return -1  # gone: let the read report it
