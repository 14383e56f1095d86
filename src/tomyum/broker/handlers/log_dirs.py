"""DescribeLogDirs (key 35) v1-5: the broker's log directory, each partition's size on disk in it,
and (v4, KIP-827) the volume's total and usable bytes; (v5, KIP-1066) it is never cordoned.

tomyum has one log directory, the data dir. Sizes are the engine's own counts
(``LogStore.disk_usage``, no ``stat`` per file); an engine that keeps nothing on disk reports its
partitions with size 0. OffsetLag is 0: Kafka reports ``max(high watermark - log end offset, 0)``
for a current (not future) log, which is 0 on a leader, and tomyum has no future logs
(AlterReplicaLogDirs). A null topic list describes every partition; partitions the broker does not
have are left out, as Kafka does. Version 0 (deprecated in Kafka 4) is not offered.

With an authorizer: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED (v3+ in the
top-level error code) and no results, as in Kafka.
"""

from __future__ import annotations

import shutil
from typing import Any

from tomyum.broker.context import CLUSTER, RequestContext
from tomyum.broker.dispatch import handles
from tomyum.errors import ErrorCode
from tomyum.security.acls import AclOperation, ResourceType
from tomyum.storage.engine import TopicPartition


@handles(35, versions=range(1, 6))
async def describe_log_dirs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not ctx.authorized(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "results": []}
    topics = ctx.broker.metadata.topics()
    wanted: set[TopicPartition] = set()
    if request.topics is None:
        wanted = {TopicPartition(t, p) for t, meta in topics.items() for p in range(meta.num_partitions)}
    else:
        for t in request.topics:
            meta = topics.get(t.topic)
            wanted.update(TopicPartition(t.topic, p) for p in t.partitions
                          if meta is not None and 0 <= p < meta.num_partitions)
    log_dir = str(ctx.broker.data_dir.resolve())
    try:
        volume = shutil.disk_usage(log_dir)
    except OSError:
        return {"throttle_time": 0, "error_code": 0, "results": [
            {"error_code": ErrorCode.kafka_storage_error, "log_dir": log_dir, "topics": []}]}
    usage = ctx.broker.store.disk_usage()
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for tp in sorted(wanted, key=lambda tp: (tp.topic, tp.partition)):
        used = usage.get(tp)
        by_topic.setdefault(tp.topic, []).append(
            {"partition_index": tp.partition, "partition_size": used.size_in_bytes if used else 0,
             "offset_lag": 0, "is_future_key": False})
    return {"throttle_time": 0, "error_code": 0, "results": [
        {"error_code": 0, "log_dir": log_dir, "total_bytes": volume.total, "usable_bytes": volume.free,
         "is_cordoned": False,
         "topics": [{"name": t, "partitions": ps} for t, ps in by_topic.items()]}]}
