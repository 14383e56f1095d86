"""Hand-written Metadata response encoder (v0-13), in parts a caller can cache.

A topic's entry is encoded in two parts: :func:`encode_topic_head` (error code, name, topic id,
is_internal and the partitions: everything that follows from the metadata image) and
:func:`encode_topic_tail` (the authorized operations, v8+, which depend on who asks, and the
entry's tagged fields, v9+). The head of a topic is the same bytes for every request of one
version until the topic's metadata changes, so the broker caches it per version and a Metadata
request for all topics is mostly joining cached bytes. :func:`encode_metadata_response` frames
the complete body around the entries. The bytes equal kio's generic encoding of the same
response (a unit test compares them version by version).

Versions (Kafka's MetadataResponse.json): throttle_time_ms v3+, rack and is_internal and
controller_id v1+, cluster_id v2+ (nullable), leader_epoch v7+, offline_replicas v5+,
topic_authorized_operations v8+, cluster_authorized_operations v8-10, flexible v9+, topic_id
v10+, a null topic name v12+ (earlier versions write a null name as the empty string), a
top-level error code v13+ (KIP-1102's REBOOTSTRAP_REQUIRED; one broker never answers it).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from tomyum.protocol.primitives import array_count, short_string

__all__ = ["BrokerEntry", "PartitionEntry", "encode_metadata_response", "encode_topic_head",
           "encode_topic_tail"]

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I16_I32_I32 = struct.Struct(">hii")
_NO_TOPIC_ID = bytes(16)


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionEntry:
    partition_index: int
    leader_id: int
    leader_epoch: int
    replica_nodes: Sequence[int]
    isr_nodes: Sequence[int]
    offline_replicas: Sequence[int] = ()
    error_code: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerEntry:
    node_id: int
    host: str
    port: int
    rack: str | None = None


def _int32s(values: Sequence[int], flexible: bool) -> bytes:
    return array_count(len(values), flexible) + b"".join(_I32.pack(v) for v in values)


def encode_topic_head(version: int, *, error_code: int, name: str | None, topic_id: uuid.UUID | None,
                      is_internal: bool, partitions: Sequence[PartitionEntry]) -> bytes:
    """A topic entry up to and including its partitions (what the metadata image decides)."""
    flexible = version >= 9
    if name is None and version < 12:
        name = ""
    out = [_I16.pack(error_code), short_string(name, flexible)]
    if version >= 10:
        out.append(topic_id.bytes if topic_id is not None else _NO_TOPIC_ID)
    if version >= 1:
        out.append(b"\1" if is_internal else b"\0")
    out.append(array_count(len(partitions), flexible))
    for p in partitions:
        out.append(_I16_I32_I32.pack(p.error_code, p.partition_index, p.leader_id))
        if version >= 7:
            out.append(_I32.pack(p.leader_epoch))
        out.append(_int32s(p.replica_nodes, flexible))
        out.append(_int32s(p.isr_nodes, flexible))
        if version >= 5:
            out.append(_int32s(p.offline_replicas, flexible))
        if flexible:
            out.append(b"\0")
    return b"".join(out)


def encode_topic_tail(version: int, authorized_operations: int) -> bytes:
    """The rest of a topic entry after :func:`encode_topic_head`."""
    if version < 8:
        return b""
    return _I32.pack(authorized_operations) + (b"\0" if version >= 9 else b"")


def encode_metadata_response(version: int, *, throttle_time_ms: int, brokers: Sequence[BrokerEntry],
                             cluster_id: str | None, controller_id: int, topics: Sequence[bytes],
                             cluster_authorized_operations: int, error_code: int = 0) -> bytes:
    """The response body; ``topics``: complete entries (head + tail) in order; ``error_code``:
    the top-level error (v13+, KIP-1102)."""
    flexible = version >= 9
    out = [_I32.pack(throttle_time_ms)] if version >= 3 else []
    out.append(array_count(len(brokers), flexible))
    for b in brokers:
        out += [_I32.pack(b.node_id), short_string(b.host, flexible), _I32.pack(b.port)]
        if version >= 1:
            out.append(short_string(b.rack, flexible))
        if flexible:
            out.append(b"\0")
    if version >= 2:
        out.append(short_string(cluster_id, flexible))
    if version >= 1:
        out.append(_I32.pack(controller_id))
    out.append(array_count(len(topics), flexible))
    out += topics
    if 8 <= version <= 10:
        out.append(_I32.pack(cluster_authorized_operations))
    if version >= 13:
        out.append(_I16.pack(error_code))
    if flexible:
        out.append(b"\0")
    return b"".join(out)
