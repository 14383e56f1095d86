"""ListOffsets (key 2) v1-11, OffsetForLeaderEpoch (key 23) v2-4, DeleteRecords (key 21) v0-2.

ListOffsets: -1 latest (the high watermark; for read_committed, the last stable offset), -2
earliest, -3 the record with the largest timestamp (KIP-734, from v7), -4 earliest local (v8,
KIP-405: = earliest, every segment is local), -5 latest tiered (v9, KIP-1005) and -6 earliest
pending upload (v11, KIP-1023): offset -1, nothing is tiered. Any other negative timestamp, or
one older than its version, is UNSUPPORTED_VERSION, as Kafka answers. A timestamp gives the
first record at or after it, or offset -1 when there is none (Kafka's answer). v10's timeout is
for tiered reads, which never happen here.
OffsetForLeaderEpoch: every batch carries leader epoch 0, so epoch 0 ends at the log end
offset; a later epoch is unknown (-1, -1), as Kafka answers.
DeleteRecords moves a partition's log start offset (the low watermark) up to the given
offset (-1: the high watermark); segments wholly below it are deleted at once, and the new
log start offset is checkpointed before the answer.
With an authorizer (Kafka's checks): ListOffsets and OffsetForLeaderEpoch need DESCRIBE on the
topic, DeleteRecords DELETE (else TOPIC_AUTHORIZATION_FAILED for each of its partitions).
"""

from __future__ import annotations

from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import handles
from tomyum.errors import ErrorCode, KafkaError
from tomyum.metadata import INTERNAL_TOPICS
from tomyum.security.acls import AclOperation
from tomyum.storage.engine import TopicPartition

LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED, EARLIEST_PENDING_UPLOAD = -1, -2, -3, -4, -5, -6
#: the first ListOffsets version that may ask for each special timestamp (Kafka's timestampMinSupportedVersion)
SINCE = {LATEST: 0, EARLIEST: 0, MAX_TIMESTAMP: 7, EARLIEST_LOCAL: 8, LATEST_TIERED: 9, EARLIEST_PENDING_UPLOAD: 11}


async def _list_offset(ctx: RequestContext, tp: TopicPartition, timestamp: int,
                       read_committed: bool) -> tuple[int, int]:
    store = ctx.broker.store
    if timestamp < 0 and ctx.api_version < SINCE.get(timestamp, 99):
        raise KafkaError(f"timestamp {timestamp} is not supported by ListOffsets v{ctx.api_version}",
                         ErrorCode.unsupported_version)
    offsets = store.offsets(tp)
    if timestamp == LATEST:
        return -1, offsets.last_stable_offset if read_committed else offsets.high_watermark
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return -1, offsets.log_start_offset
    if timestamp in (LATEST_TIERED, EARLIEST_PENDING_UPLOAD):
        return -1, -1  # no tiered storage
    if timestamp == MAX_TIMESTAMP:
        found = await store.offset_of_max_timestamp(tp)
    else:
        found = await store.offset_for_timestamp(tp, timestamp)
    return (found.timestamp, found.offset) if found else (-1, -1)


@handles(2, versions=range(1, 12))
async def list_offsets(ctx: RequestContext, request: Any) -> dict[str, Any]:
    topics = []
    for topic in request.topics:
        parts = []
        for p in topic.partitions:
            entry = {"partition_index": p.partition_index, "error_code": 0, "timestamp": -1, "offset": -1,
                     "leader_epoch": ctx.broker.metadata.leader_epoch(topic.name, p.partition_index)}
            try:
                ctx.authorize_topic(AclOperation.DESCRIBE, topic.name)
                entry["timestamp"], entry["offset"] = await _list_offset(
                    ctx, TopicPartition(topic.name, p.partition_index), p.timestamp,
                    getattr(request, "isolation_level", 0) == 1)
                if entry["offset"] == -1:  # no record at or after the time: Kafka names no epoch
                    entry["leader_epoch"] = -1
            except KafkaError as e:
                entry["error_code"] = e.code
                entry["leader_epoch"] = -1
            parts.append(entry)
        topics.append({"name": topic.name, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}


@handles(23, versions=range(2, 5))
async def offset_for_leader_epoch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    store = ctx.broker.store
    topics = []
    for topic in request.topics:
        parts = []
        for p in topic.partitions:
            entry = {"error_code": 0, "partition": p.partition, "leader_epoch": -1, "end_offset": -1}
            try:
                ctx.authorize_topic(AclOperation.DESCRIBE, topic.topic)
                offsets = store.offsets(TopicPartition(topic.topic, p.partition))
                epoch = ctx.broker.metadata.leader_epoch(topic.topic, p.partition)
                if p.current_leader_epoch > epoch:
                    raise KafkaError(code=ErrorCode.unknown_leader_epoch)
                if p.leader_epoch == epoch:
                    entry["leader_epoch"] = epoch
                    entry["end_offset"] = offsets.log_end_offset
                elif p.leader_epoch < epoch:
                    entry["leader_epoch"] = epoch
                    entry["end_offset"] = offsets.log_start_offset
            except KafkaError as e:
                entry["error_code"] = e.code
            parts.append(entry)
        topics.append({"topic": topic.topic, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}


@handles(21, versions=range(0, 3))
async def delete_records(ctx: RequestContext, request: Any) -> dict[str, Any]:
    topics = []
    for topic in request.topics:
        parts = []
        for p in topic.partitions:
            entry = {"partition_index": p.partition_index, "low_watermark": -1, "error_code": 0}
            try:
                ctx.authorize_topic(AclOperation.DELETE, topic.name)
                if topic.name in INTERNAL_TOPICS:
                    raise KafkaError(f"Cannot delete records of internal topic {topic.name}",
                                     ErrorCode.invalid_topic_exception)
                entry["low_watermark"] = await ctx.broker.store.delete_records(
                    TopicPartition(topic.name, p.partition_index), p.offset)
            except KafkaError as e:
                entry["error_code"] = e.code
            parts.append(entry)
        topics.append({"name": topic.name, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}
