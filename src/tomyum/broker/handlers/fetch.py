"""Fetch (key 1), v4-18.

Long poll: a fetch that has fewer than ``min_bytes`` parks until a partition it asked for
gets new durable data (woken by the high watermark, never by polling) or ``max_wait_ms``
passes. ``max_bytes`` bounds the response and ``partition_max_bytes`` each partition, except
that the first batch of the response is returned whole (KIP-74). Fetch sessions (KIP-227,
``fetch_sessions.py``): a fetch in a session reads every partition of the session, and is
answered with only those that have something new. A fetch over its client's
``consumer_byte_rate`` or ``request_percentage`` is answered with its throttle time and no
partitions, as Kafka answers: the handler records its own time against the request quota when it
answers (its time until then, or until it parked: a long poll's wait is not the broker's work).
isolation_level=1 (read_committed) reads up to the last stable offset and answers the aborted
transactions among what it reads, so the client drops their records. With an authorizer a
topic needs READ (TOPIC_AUTHORIZATION_FAILED for each of its partitions), as in Kafka.
From v13 (KIP-516) topics are named by id, in the request and in the answer; an id the broker
does not know is UNKNOWN_TOPIC_ID for each of its partitions, before any authorization (as
Kafka answers: ids are not names, and give nothing away). v15-18 change only what a follower
sends; the broker has none, and a consumer's fetch reads the same.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import Deferred, RawResponse, handles
from tomyum.broker.fetch_sessions import FetchContext, TopicKey
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.codec import ms
from tomyum.protocol.fetch_response import FetchPartition, encode_fetch_response
from tomyum.security.acls import AclOperation, ResourceType
from tomyum.storage.engine import TopicPartition


_REFUSED_BEFORE_THE_LOG = frozenset({ErrorCode.unknown_topic_or_partition, ErrorCode.topic_authorization_failed,
                                     ErrorCode.unknown_topic_id})


#: what was read: each topic as the request names it (by name, or by id) with its partitions' answers
Read = list[tuple[TopicKey, list[FetchPartition]]]


def _names(ctx: RequestContext, context: FetchContext) -> dict[TopicKey, str]:
    """The name of each topic of ``context.wanted`` the broker knows, by how the fetch names it."""
    if not context.uses_topic_ids:
        return {key: key for key, _ in context.wanted}  # type: ignore[misc]
    by_id = ctx.broker.metadata.image.topics_by_id
    out: dict[TopicKey, str] = {}
    for key, _ in context.wanted:
        topic = by_id.get(key) if key is not None else None  # type: ignore[arg-type]
        if topic is not None:
            out[key] = topic.name
    return out


async def _read_all(ctx: RequestContext, request: Any, context: FetchContext,
                    names: dict[TopicKey, str]) -> tuple[Read, int, bool]:
    """Read each partition of ``context.wanted`` (the request's, or its session's) from its
    fetch offset; ``names``: the topics' names (:func:`_names`)."""
    store = ctx.broker.store
    remaining = request.max_bytes if ctx.api_version >= 3 else 2**31 - 1
    zero_copy_min = ctx.connection.zero_copy_min
    total, errors = 0, False
    read_committed = request.isolation_level == 1
    topics: Read = []
    readable = ctx.authorized_names(AclOperation.READ, ResourceType.TOPIC, names.values())
    read = store.read
    for key, partitions in context.wanted:
        parts: list[FetchPartition] = []
        topics.append((key, parts))
        name = names.get(key, "")
        refused = (ErrorCode.unknown_topic_id if key not in names else None if name in readable
                   else ErrorCode.topic_authorization_failed)
        for p in partitions:
            try:
                if refused is not None:
                    raise KafkaError(code=refused)
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


def _respond(ctx: RequestContext, context: FetchContext, topics: Read, names: dict[TopicKey, str],
             elapsed_ns: int | None = None) -> RawResponse:
    """The answer to what was read; ``elapsed_ns``: the handler's time before it parked (None:
    it did not; its time is until now)."""
    if elapsed_ns is None:
        elapsed_ns = time.perf_counter_ns() - ctx.connection.request_started_ns
    # Only partitions with records carry bytes, and an incremental answer keeps every one of
    # them: what was read is what the answer would carry, whatever the session leaves out.
    throttle_ms = ctx.broker.quotas.throttle_fetch(ctx.principal, ctx.client_id, elapsed_ns, topics,
                                                   ctx.connection.throttle)
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
    for key, parts in topics:
        if key in names:
            ctx.broker.stats.fetched(names[key], sum(len(p.records) for p in parts), sum(p.record_count for p in parts))
    return RawResponse(encode_fetch_response(ctx.api_version, topics, error_code=error, session_id=session_id))


@handles(1, versions=range(4, 19), times_itself=True)
async def fetch(ctx: RequestContext, request: Any) -> Any:
    context = ctx.broker.fetch_sessions.context(request, ctx.api_version)
    names = _names(ctx, context)
    topics, total, errors = await _read_all(ctx, request, context, names)
    max_wait_s = max(ms(request.max_wait), 0) / 1000
    if (total >= request.min_bytes or errors or max_wait_s == 0 or not context.wanted  # as Kafka's ReplicaManager
            or ctx.broker.waiters.closed):
        return _respond(ctx, context, topics, names)
    seen = _seen(topics, names)
    elapsed_ns = time.perf_counter_ns() - ctx.connection.request_started_ns
    return Deferred(_long_poll(ctx, request, context, names, max_wait_s, seen, elapsed_ns))


async def _long_poll(ctx: RequestContext, request: Any, context: FetchContext, names: dict[TopicKey, str],
                     max_wait_s: float, seen: dict[TopicPartition, int], elapsed_ns: int) -> RawResponse:
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
        topics, total, errors = await _read_all(ctx, request, context, names)
        if not woken or total >= request.min_bytes or errors or loop.time() >= deadline or waiters.closed:
            return _respond(ctx, context, topics, names, elapsed_ns)
        seen = _seen(topics, names)


def _seen(topics: Read, names: dict[TopicKey, str]) -> dict[TopicPartition, int]:
    """Each read partition's high watermark, by partition (what a long poll waits to see move)."""
    return {TopicPartition(names[key], p.partition_index): p.high_watermark
            for key, parts in topics if key in names for p in parts}


def _high_watermark(store: Any, tp: TopicPartition) -> int:
    try:
        return int(store.offsets(tp).high_watermark)
    except KafkaError:
        return -1  # gone: let the read report it
