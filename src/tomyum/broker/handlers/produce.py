"""Produce (key 0), v3-9.

acks=0: no response at all; on an error the connection is closed, as Kafka does, so the
client notices. acks=1: answered once the batches are written to the segment files.
acks=-1: answered once the group commit has made them durable (the high watermark has
passed them). Every record of every batch is checked as Kafka's LogValidator does
(storage/log_validator.py); a batch with a bad record fails whole, nothing of it stored, with
INVALID_RECORD or INVALID_TIMESTAMP and KIP-467 record_errors (v8+). Batches are stored as
received. A batch with a producer id is checked against the partition's producer
state (storage/local/producer_state.py): a retry of one of the producer's last five batches is
answered with its original offsets, a fenced epoch gets INVALID_PRODUCER_EPOCH, a sequence gap
OUT_OF_ORDER_SEQUENCE_NUMBER.

With an authorizer (Kafka's checks): a request with transactional batches needs WRITE on its
transactional id (else every partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED), each topic
WRITE (TOPIC_AUTHORIZATION_FAILED). An idempotent producer is checked once, at InitProducerId.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from tomyum.broker.client_quotas import produce_bytes
from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import NO_RESPONSE, Deferred, RawResponse, handles
from tomyum.errors import ErrorCode, KafkaError, RecordValidationError
from tomyum.log_limit import RateLimitedLog
from tomyum.metadata import INTERNAL_TOPICS
from tomyum.protocol.codec import ms
from tomyum.protocol.records import BATCH_HEADER_SIZE, MAGIC, parse_header
from tomyum.protocol.produce_response import PartitionResult, encode_produce_response
from tomyum.security.acls import AclOperation, ResourceType
from tomyum.storage.engine import TopicPartition

log = logging.getLogger(__name__)

QUIET_ERRORS = {ErrorCode.unknown_topic_or_partition}
#: one line per error and topic every 10 s, whatever a client sends
rejections = RateLimitedLog(log)


@handles(0, versions=range(3, 10))
async def produce(ctx: RequestContext, request: Any) -> Any:
    store = ctx.broker.store
    acks = request.acks
    results: list[tuple[str, list[PartitionResult]]] = []
    durable: list[tuple[TopicPartition, int, list[PartitionResult], int]] = []
    failed = False
    txn_refusal = _transactional_refusal(ctx, request)
    for topic in request.topic_data:
        parts: list[PartitionResult] = []
        results.append((topic.name, parts))
        refusal = txn_refusal or _refusal(ctx, topic.name, acks)
        for pdata in topic.partition_data:
            tp = TopicPartition(topic.name, pdata.index)
            try:
                if refusal is not None:
                    raise refusal
                if not pdata.records:
                    raise KafkaError("no records", ErrorCode.invalid_record)
                r = await store.append(tp, memoryview(pdata.records))
            except KafkaError as e:
                failed = True
                if e.code not in QUIET_ERRORS:
                    rejections.warning((e.code, tp.topic), "produce to %s from client %r (%s) rejected: %s: %s", tp,
                                       ctx.client_id, ctx.client_address, e.code.name.upper(), e)
                if isinstance(e, RecordValidationError):  # Kafka tells the log start offset there too
                    parts.append(PartitionResult(pdata.index, e.code, log_start_offset=store.offsets(tp).log_start_offset,
                                                 error_message=str(e), record_errors=e.record_errors))
                else:
                    parts.append(PartitionResult(pdata.index, e.code, error_message=str(e)))
                continue
            parts.append(PartitionResult(pdata.index, 0, r.base_offset, r.log_append_time, r.log_start_offset))
            ctx.broker.stats.produced(tp.topic, len(pdata.records), r.last_offset - r.base_offset + 1)
            if acks == -1:
                durable.append((tp, r.last_offset + 1, parts, len(parts) - 1))
    throttle_ms = ctx.broker.quotas.produce.throttle(ctx.principal, ctx.client_id, lambda: produce_bytes(request),
                                                     ctx.connection.throttle)
    if acks == 0:
        if failed:
            ctx.connection.close("an acks=0 produce failed; closing so that the client notices")
        return NO_RESPONSE
    if durable:
        response = _when_durable(ctx, request, results, durable, throttle_ms)
        return Deferred(response) if isinstance(response, asyncio.Future) else response
    return RawResponse(encode_produce_response(ctx.api_version, results, throttle_ms))


def _refusal(ctx: RequestContext, topic: str, acks: int) -> KafkaError | None:
    """Why no partition of ``topic`` takes this produce, as Kafka's ReplicaManager says it."""
    if acks not in (0, 1, -1):
        return KafkaError(f"acks={acks} is not 0, 1 or -1", ErrorCode.invalid_required_acks)
    if not ctx.authorized(AclOperation.WRITE, ResourceType.TOPIC, topic):
        return KafkaError(f"{ctx.principal} may not write to {topic}", ErrorCode.topic_authorization_failed)
    if topic in INTERNAL_TOPICS:
        return KafkaError(f"Cannot append to internal topic {topic}", ErrorCode.invalid_topic_exception)
    if acks == -1:
        # KIP-966 (eligible leader replicas, on in every cluster Kafka 4.x formats): the
        # effective min ISR is min(min.insync.replicas, replication factor). One broker: the
        # replicas and the ISR are this broker alone, so acks=-1 is always satisfiable.
        replication_factor = isr_size = 1
        min_isr = min(ctx.broker.metadata.topic_config(topic)["min.insync.replicas"], replication_factor)
        if isr_size < min_isr:
            return KafkaError(f"The size of the current ISR ({isr_size}) is insufficient to satisfy the min.isr "
                              f"requirement of {min_isr} for topic {topic}", ErrorCode.not_enough_replicas)
    return None


def _transactional_refusal(ctx: RequestContext, request: Any) -> KafkaError | None:
    """Transactional batches need WRITE on the request's transactional id (Kafka checks the first
    batch of each partition, as RequestUtils.hasTransactionalRecords)."""
    if ctx.broker.authorizer is None or not any(
            _transactional(p.records) for t in request.topic_data for p in t.partition_data):
        return None
    tid = request.transactional_id
    if tid is not None and ctx.authorized(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, tid):
        return None
    return KafkaError(f"{ctx.principal} may not write as transactional id {tid}",
                      ErrorCode.transactional_id_authorization_failed)


def _transactional(records: Any) -> bool:
    if not records or len(records) < BATCH_HEADER_SIZE:
        return False
    header = parse_header(memoryview(records))
    return header.magic == MAGIC and header.is_transactional


def _when_durable(
    ctx: RequestContext,
    request: Any,
    results: list[tuple[str, list[PartitionResult]]],
    durable: list[tuple[TopicPartition, int, list[PartitionResult], int]],
    throttle_ms: int,
) -> RawResponse | asyncio.Future[RawResponse]:
    """The response once every partition in ``durable`` has passed a group commit, or the
    request's timeout (those not yet durable then answer REQUEST_TIMED_OUT). Callbacks the
    group commit calls as the high watermark passes each partition's end (no task, no future
    per partition); the last one encodes the response."""
    store = ctx.broker.store
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[RawResponse] = loop.create_future()
    #: the partitions not yet durable, by their place in ``durable``
    pending: dict[int, tuple[TopicPartition, list[PartitionResult], int]] = {}
    timer: asyncio.TimerHandle | None = None

    def finish() -> None:
        if answer.done():  # cancelled: the broker is stopping, and answers nothing
            return
        if timer is not None:
            timer.cancel()
        for tp, parts, i in pending.values():
            _not_acknowledged(tp, parts, i, ErrorCode.request_timed_out, "not durable within the request timeout")
        pending.clear()
        answer.set_result(RawResponse(encode_produce_response(ctx.api_version, results, throttle_ms)))

    def one_done(key: int, error: Exception | None) -> None:
        if answer.done():  # answered already: timed out, or the broker is stopping
            return
        tp, parts, i = pending.pop(key)
        if error is not None:
            code = error.code if isinstance(error, KafkaError) else ErrorCode.kafka_storage_error
            _not_acknowledged(tp, parts, i, code, str(error))
        if not pending:
            finish()

    for key, (tp, end, parts, i) in enumerate(durable):
        pending[key] = (tp, parts, i)
        try:
            waiting = store.call_when_durable(tp, end, functools.partial(one_done, key))
        except KafkaError as e:  # gone since the append
            del pending[key]
            _not_acknowledged(tp, parts, i, e.code, str(e))
            continue
        if not waiting:
            del pending[key]
    if not pending:
        return RawResponse(encode_produce_response(ctx.api_version, results, throttle_ms))

    timeout_s = max(ms(request.timeout), 0) / 1000
    if timeout_s:
        timer = loop.call_later(timeout_s, finish)
    return answer


def _not_acknowledged(tp: TopicPartition, parts: list[PartitionResult], i: int, code: ErrorCode,
                      message: str) -> None:
    log.warning("produce to %s not acknowledged: %s", tp, message)
    parts[i] = PartitionResult(parts[i].index, code, error_message=message)
