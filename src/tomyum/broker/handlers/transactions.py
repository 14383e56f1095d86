"""Producer ids and transactions: InitProducerId (key 22) v0-4, AddPartitionsToTxn (24) v0-3,
AddOffsetsToTxn (25) v0-3, EndTxn (26) v0-3, TxnOffsetCommit (28) v0-3, DescribeProducers
(61) v0, DescribeTransactions (65) v0, ListTransactions (66) v0-2 (v2: a regular expression the
whole transactional id must match, KIP-1152; one that does not compile is
INVALID_REGULAR_EXPRESSION).

InitProducerId without a transactional id hands an idempotent producer a producer id never
used before (or bumps its epoch, KIP-360); with one, the transaction coordinator
(coordinator/txn) answers. Versions 4 and up of AddPartitionsToTxn are broker-to-broker
(KIP-890) and not offered. Before version 2 of the transaction APIs a fenced producer is told
INVALID_PRODUCER_EPOCH rather than PRODUCER_FENCED, as Kafka does for old clients.

With an authorizer (Kafka's checks): the transaction APIs need WRITE on the transactional id
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an idempotent InitProducerId IDEMPOTENT_WRITE on the
cluster or WRITE on some topic (CLUSTER_AUTHORIZATION_FAILED); AddPartitionsToTxn WRITE on each
topic, AddOffsetsToTxn and TxnOffsetCommit READ on the group, TxnOffsetCommit READ on each topic;
DescribeProducers READ on the topic; DescribeTransactions DESCRIBE on the transactional id (and
shows only topics the principal may DESCRIBE); ListTransactions lists only those it may DESCRIBE.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import Deferred, handles
from tomyum.broker.handlers.offset_commits import authorized_commit, commit_entries, commit_response
from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.codec import ms
from tomyum.security.acls import AclOperation, ResourceType
from tomyum.storage.engine import TopicPartition


def _code(ctx: RequestContext, e: KafkaError, fenced_from: int = 2) -> ErrorCode:
    if e.code == ErrorCode.producer_fenced and ctx.api_version < fenced_from:
        return ErrorCode.invalid_producer_epoch
    return e.code


@handles(22, versions=range(0, 5))
async def init_producer_id(ctx: RequestContext, request: Any) -> Any:
    producer_id = getattr(request, "producer_id", -1)
    epoch = getattr(request, "producer_epoch", -1)
    answer = {"throttle_time": 0, "error_code": 0, "producer_id": -1, "producer_epoch": -1}
    try:
        if request.transactional_id is not None:
            ctx.authorize_transactional_id(AclOperation.WRITE, request.transactional_id)
        elif not ctx.authorized_by_resource_type(AclOperation.WRITE, ResourceType.TOPIC):
            ctx.authorize_cluster(AclOperation.IDEMPOTENT_WRITE)
    except KafkaError as e:
        return answer | {"error_code": e.code}
    if request.transactional_id is None:
        if producer_id >= 0 and epoch >= 0:
            # KIP-360: an idempotent producer bumping its own epoch after an error
            return answer | {"producer_id": producer_id, "producer_epoch": (epoch + 1) % 32767}
        return answer | {"producer_id": await ctx.broker.metadata.allocate_producer_id(), "producer_epoch": 0}

    async def init() -> dict[str, Any]:
        try:
            pid, new_epoch = await ctx.broker.transactions.init_producer_id(
                request.transactional_id, ms(request.transaction_timeout), producer_id, epoch)
        except KafkaError as e:
            return answer | {"error_code": _code(ctx, e, fenced_from=4)}
        return answer | {"producer_id": pid, "producer_epoch": new_epoch}

    return Deferred(init())


def _unknown_partitions(ctx: RequestContext, wanted: list[tuple[str, int]]) -> set[tuple[str, int]]:
    topics = ctx.broker.metadata.topics()
    return {(t, p) for t, p in wanted if t not in topics or not 0 <= p < topics[t].num_partitions}


@handles(24, versions=range(0, 4))
async def add_partitions_to_txn(ctx: RequestContext, request: Any) -> Any:
    wanted = [(t.name, p) for t in request.v3_and_below_topics for p in t.partitions]
    writable = ctx.authorized_names(AclOperation.WRITE, ResourceType.TOPIC, (t for t, _ in wanted))
    refused = {(t, p): ErrorCode.topic_authorization_failed for t, p in wanted if t not in writable}
    refused |= {tp: ErrorCode.unknown_topic_or_partition for tp in _unknown_partitions(ctx, wanted)
                if tp not in refused}

    def answer(code_of: Any) -> dict[str, Any]:
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for t, p in wanted:
            by_topic.setdefault(t, []).append({"partition_index": p, "partition_error_code": code_of(t, p)})
        return {"throttle_time": 0, "error_code": 0,
                "results_by_topic_v3_and_below": [{"name": t, "results_by_partition": parts}
                                                  for t, parts in by_topic.items()]}

    if not ctx.authorized(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, request.v3_and_below_transactional_id):
        return answer(lambda t, p: ErrorCode.transactional_id_authorization_failed)
    if refused:  # Kafka's answer: the refused ones with their errors, the rest not attempted
        return answer(lambda t, p: refused.get((t, p), ErrorCode.operation_not_attempted))

    async def add() -> dict[str, Any]:
        try:
            await ctx.broker.transactions.add_partitions(
                request.v3_and_below_transactional_id, request.v3_and_below_producer_id,
                request.v3_and_below_producer_epoch, wanted)
        except KafkaError as e:
            code = _code(ctx, e)
            return answer(lambda t, p: code)
        return answer(lambda t, p: ErrorCode.none)

    return Deferred(add())


async def _answer(ctx: RequestContext, call: Awaitable[None]) -> dict[str, Any]:
    try:
        await call
    except KafkaError as e:
        return {"throttle_time": 0, "error_code": _code(ctx, e)}
    return {"throttle_time": 0, "error_code": 0}


@handles(25, versions=range(0, 4))
async def add_offsets_to_txn(ctx: RequestContext, request: Any) -> Any:
    try:
        ctx.authorize_transactional_id(AclOperation.WRITE, request.transactional_id)
        ctx.authorize_group(AclOperation.READ, request.group_id)
    except KafkaError as e:
        return {"throttle_time": 0, "error_code": e.code}
    return Deferred(_answer(ctx, ctx.broker.transactions.add_offsets(
        request.transactional_id, request.producer_id, request.producer_epoch, request.group_id)))


@handles(26, versions=range(0, 4))
async def end_txn(ctx: RequestContext, request: Any) -> Any:
    if not ctx.authorized(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, request.transactional_id):
        return {"throttle_time": 0, "error_code": ErrorCode.transactional_id_authorization_failed}
    return Deferred(_answer(ctx, ctx.broker.transactions.end_txn(
        request.transactional_id, request.producer_id, request.producer_epoch, request.committed)))


@handles(28, versions=range(0, 4))
async def txn_offset_commit(ctx: RequestContext, request: Any) -> Any:
    service = ctx.broker.group_coordinator
    if not ctx.authorized(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, request.transactional_id):
        code = ErrorCode.transactional_id_authorization_failed
    elif not ctx.authorized(AclOperation.READ, ResourceType.GROUP, request.group_id):
        code = ErrorCode.group_authorization_failed
    else:
        code = ctx.broker.transactions.check_offset_commit(request.transactional_id, request.producer_id,
                                                           request.producer_epoch, request.group_id)
    if code == ErrorCode.none:
        code = service.check_commit(request.group_id, getattr(request, "member_id", ""),
                                    getattr(request, "generation_id", -1), getattr(request, "group_instance_id", None),
                                    ctx.api_version, transactional=True)
    names = [t.name for t in request.topics]
    return commit_response(request.topics, names, authorized_commit(
        ctx, commit_entries(request.topics, names), lambda allowed: service.commit_offsets(
            request.group_id, code, allowed, producer_id=request.producer_id, producer_epoch=request.producer_epoch)))


@handles(61, versions=range(0, 1))
async def describe_producers(ctx: RequestContext, request: Any) -> dict[str, Any]:
    store = ctx.broker.store
    topics = []
    for t in request.topics:
        parts = []
        for p in t.partition_indexes:
            entry: dict[str, Any] = {"partition_index": p, "error_code": 0, "error_message": None,
                                     "active_producers": []}
            try:
                ctx.authorize_topic(AclOperation.READ, t.name)
                entry["active_producers"] = [
                    {"producer_id": s.producer_id, "producer_epoch": s.producer_epoch,
                     "last_sequence": s.last_sequence, "last_timestamp": s.last_timestamp,
                     "coordinator_epoch": s.coordinator_epoch,
                     "current_txn_start_offset": s.current_txn_start_offset}
                    for s in store.producers(TopicPartition(t.name, p))]
            except KafkaError as e:
                entry["error_code"], entry["error_message"] = e.code, str(e)
            parts.append(entry)
        topics.append({"name": t.name, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}


@handles(65, versions=range(0, 1))
async def describe_transactions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    states = []
    for tid in request.transactional_ids:
        allowed = ctx.authorized(AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, tid)
        view = ctx.broker.transactions.view(tid) if allowed else None
        if view is None:
            code = ErrorCode.transactional_id_not_found if allowed else ErrorCode.transactional_id_authorization_failed
            states.append({"error_code": code, "transactional_id": tid,
                           "transaction_state": "", "transaction_timeout": 0, "transaction_start_time": 0,
                           "producer_id": 0, "producer_epoch": 0, "topics": []})  # Kafka's zeros
            continue
        states.append({"error_code": 0, "transactional_id": tid, "transaction_state": view.state,
                       "transaction_timeout": view.timeout_ms, "transaction_start_time": view.start_ms,
                       "producer_id": view.producer_id, "producer_epoch": view.producer_epoch,
                       "topics": [{"topic": t, "partitions": ps} for t, ps in sorted(view.partitions.items())
                                  if ctx.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, t)]})
    return {"throttle_time": 0, "transaction_states": states}


@handles(66, versions=range(0, 3))
async def list_transactions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    from tomyum.coordinator.txn.log import TxnState

    pattern = getattr(request, "transactional_id_pattern", None)
    try:  # v2 (KIP-1152): ids the whole of which match the regular expression ("" or null: every id)
        matches = re.compile(pattern).fullmatch if pattern else None
    except re.error:
        return {"throttle_time": 0, "error_code": ErrorCode.invalid_regular_expression,
                "unknown_state_filters": [], "transaction_states": []}
    known = {s.display for s in TxnState}
    wanted_states = set(request.state_filters)
    wanted_pids = set(request.producer_id_filters)
    min_age = getattr(request, "duration_filter", -1)
    now = ctx.broker.clock.time_ms()
    listed = []
    for view in ctx.broker.transactions.views():
        if wanted_states and view.state not in wanted_states:
            continue
        if wanted_pids and view.producer_id not in wanted_pids:
            continue
        if matches is not None and matches(view.transactional_id) is None:
            continue
        if not ctx.authorized(AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, view.transactional_id):
            continue
        if min_age >= 0 and (view.start_ms < 0 or now - view.start_ms < min_age):
            continue
        listed.append({"transactional_id": view.transactional_id, "producer_id": view.producer_id,
                       "transaction_state": view.state})
    return {"throttle_time": 0, "error_code": 0,
            "unknown_state_filters": sorted(wanted_states - known), "transaction_states": listed}
