"""The hand-written Metadata response encoder writes exactly kio's bytes, version by version."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tomyum.protocol.codec import build_response, encode_response, response_header_flexible
from tomyum.protocol.metadata_response import (
    BrokerEntry,
    PartitionEntry,
    encode_metadata_response,
    encode_topic_head,
    encode_topic_tail,
)

TOPIC_ID = uuid.UUID("6f1c3a52-1111-4c2e-9d7e-0123456789ab")
OMITTED = -2147483648
PARTITIONS = [PartitionEntry(partition_index=i, leader_id=7, leader_epoch=i + 2, replica_nodes=(7, 8),
                             isr_nodes=(7,), offline_replicas=(8,) if i else ()) for i in range(3)]
# (error_code, name, topic_id, is_internal, partitions, authorized operations)
TOPICS: list[tuple[int, str | None, uuid.UUID | None, bool, list[PartitionEntry], int]] = [
    (0, "orders", TOPIC_ID, False, PARTITIONS, 3576),
    (0, "__consumer_offsets", uuid.uuid4(), True, PARTITIONS[:1], OMITTED),
    (3, "absent", None, False, [], OMITTED),
    (100, None, uuid.uuid4(), False, [], 0),
    (0, "é" * 200, uuid.uuid4(), False, [], 1),  # a name longer than one varint byte
]


def _as_dict(version: int) -> dict[str, Any]:
    return {
        "throttle_time": 5,
        "brokers": [{"node_id": 7, "host": "broker.example", "port": 9092, "rack": None},
                    {"node_id": 8, "host": "b8", "port": 9093, "rack": "r1"}],
        "cluster_id": "cluster-x" if version != 5 else None,
        "controller_id": 7,
        "topics": [{"error_code": code, "name": name, "topic_id": topic_id, "is_internal": internal,
                    "partitions": [{"error_code": p.error_code, "partition_index": p.partition_index,
                                    "leader_id": p.leader_id, "leader_epoch": p.leader_epoch,
                                    "replica_nodes": p.replica_nodes, "isr_nodes": p.isr_nodes,
                                    "offline_replicas": p.offline_replicas} for p in parts],
                    "topic_authorized_operations": ops}
                   for code, name, topic_id, internal, parts, ops in TOPICS],
        "cluster_authorized_operations": 424,
        "error_code": 0,
    }


@pytest.mark.parametrize("version", range(0, 14))
def test_the_metadata_response_encoder_writes_kios_bytes(version: int) -> None:
    frame = encode_response(3, version, 1, build_response(3, version, _as_dict(version)))
    header = 4 + 4 + response_header_flexible(3, version)
    topics = [encode_topic_head(version, error_code=code, name=name, topic_id=topic_id, is_internal=internal,
                                partitions=parts) + encode_topic_tail(version, ops)
              for code, name, topic_id, internal, parts, ops in TOPICS]
    body = encode_metadata_response(
        version, throttle_time_ms=5,
        brokers=[BrokerEntry(node_id=7, host="broker.example", port=9092),
                 BrokerEntry(node_id=8, host="b8", port=9093, rack="r1")],
        cluster_id="cluster-x" if version != 5 else None, controller_id=7, topics=topics,
        cluster_authorized_operations=424)
    assert body == frame[header:]
