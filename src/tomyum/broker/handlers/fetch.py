"""Fetch (key 1), v4-12.

Long poll: a fetch that has fewer than ``min_bytes`` parks until a partition it asked for
gets new durable data (woken by the high watermark, never by polling) or ``max_wait_ms``
passes. ``max_bytes`` bounds the response and ``partition_max_bytes`` each partition, except
that the first batch of the response is returned whole (KIP-74). Fetch sessions (KIP-227)
are answered with session id 0, so every requested partition is in every response.
isolation_level=1 (read_committed) reads up to the last stable offset and answers the aborted
transactions among what it reads, so the client drops their records. With an authorizer a
topic needs READ (TOPIC_AUTHORIZATION_FAILED for each of its partitions), as in Kafka.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import Deferred, RawResponse, handles
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.codec import ms
from tomyum.protocol.fetch_response import FetchPartition, encode_fetch_response
from tomyum.security.acls import AclOperation, ResourceType
from tomyum.storage.engine import TopicPartition


_REFUSED_BEFORE_THE_LOG = frozenset({ErrorCode.unknown_topic_or_partition, ErrorCode.topic_authorization_failed})


async def _read_all(ctx: RequestContext, request: Any) -> tuple[list[tuple[str, list[FetchPartition]]], int, bool]:
    store = ctx.broker.store
    remaining = request.max_bytes if ctx.api_version >= 3 else 2**31 - 1
    zero_copy_min = ctx.connection.zero_copy_min
    total, errors = 0, False
    read_committed = request.isolation_level == 1
    topics: list[tuple[str, list[FetchPartition]]] = []
    readable = ctx.authorized_names(AclOperation.READ, ResourceType.TOPIC, (t.topic for t in request.topics))
    for topic in request.topics:
        parts: list[FetchPartition] = []
        topics.append((topic.topic, parts))
        for p in topic.partitions:
            tp = TopicPartition(topic.topic, p.partition)
            out = FetchPartition(p.partition)
            parts.append(out)
            try:
                if topic.topic not in readable:
                    raise KafkaError(code=ErrorCode.topic_authorization_failed)
                limit = min(p.partition_max_bytes, remaining)
                result = await store.read(tp, p.fetch_offset, limit, min_one=total == 0,
                                          zero_copy_min=zero_copy_min, read_committed=read_committed)
                out.high_watermark = result.high_watermark
                out.last_stable_offset = result.last_stable_offset
                out.log_start_offset = result.log_start_offset
                out.aborted_transactions = (
                    [(a.producer_id, a.first_offset) for a in result.aborted] if result.aborted is not None else None)
                out.records = result.records
                out.record_count = result.record_count
            except KafkaError as e:
                out.error_code = e.code
                if e.code in _REFUSED_BEFORE_THE_LOG:  # Kafka: an empty list there, null from the log
                    out.aborted_transactions = ()
                errors = True
                continue
            total += len(out.records)
            remaining -= len(out.records)
    return topics, total, errors


def _respond(ctx: RequestContext, topics: list[tuple[str, list[FetchPartition]]]) -> RawResponse:
    for name, parts in topics:
        ctx.broker.stats.fetched(name, sum(len(p.records) for p in parts), sum(p.record_count for p in parts))
    throttle_ms = ctx.broker.quotas.fetch.throttle_fetch(ctx.principal, ctx.client_id, topics, ctx.connection.throttle)
    return RawResponse(encode_fetch_response(ctx.api_version, topics, throttle_time_ms=throttle_ms))


@handles(1, versions=range(4, 13))
async def fetch(ctx: RequestContext, request: Any) -> Any:
    topics, total, errors = await _read_all(ctx, request)
    max_wait_s = max(ms(request.max_wait), 0) / 1000
    if total >= request.min_bytes or errors or max_wait_s == 0 or ctx.broker.waiters.closed:
        return _respond(ctx, topics)
    seen = {TopicPartition(name, p.partition_index): p.high_watermark for name, parts in topics for p in parts}
    return Deferred(_long_poll(ctx, request, max_wait_s, seen))


async def _long_poll(ctx: RequestContext, request: Any, max_wait_s: float,
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
        topics, total, errors = await _read_all(ctx, request)
        if not woken or total >= request.min_bytes or errors or loop.time() >= deadline or waiters.closed:
            return _respond(ctx, topics)
        seen = {TopicPartition(name, p.partition_index): p.high_watermark for name, parts in topics for p in parts}


def _high_watermark(store: Any, tp: TopicPartition) -> int:
    try:
        return int(store.offsets(tp).high_watermark)
    except KafkaError:
        return -1  # gone: let the read report it
