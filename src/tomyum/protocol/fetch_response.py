"""Hand-written Fetch response encoder (v4-18): record bytes go out as they came from disk,
as separate buffers, never copied into one response object. From v13 a topic is named by its
id. v16's node endpoints and current leaders (tagged fields, KIP-951) tell a client where a
partition's leader moved: one broker has nowhere to send it, so they are never written (an
absent tagged field is its default, as Kafka writes it), and a NOT_LEADER_OR_FOLLOWER (the store
shutting down) sends the client to Metadata, as before v16."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tomyum.protocol.primitives import array_count, short_string, uvarint_bytes

_PART = struct.Struct(">ihqq")  # partition_index, error_code, high_watermark, last_stable_offset
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_ABORTED = struct.Struct(">qq")
_HEAD = struct.Struct(">ihi")  # throttle_time_ms, error_code, session_id
_NULL_ID = bytes(16)


@dataclass(slots=True)
class FetchPartition:
    partition_index: int
    error_code: int = 0
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    aborted_transactions: Sequence[tuple[int, int]] | None = None
    #: bytes, or a zero-copy slice of a file (anything with ``len``; the server sends it)
    records: Any = field(default=b"")
    #: records in the whole batches of ``records`` (the broker's metrics; not encoded)
    record_count: int = 0


def encode_fetch_response(
    version: int,
    topics: Sequence[tuple[str | uuid.UUID | None, Sequence[FetchPartition]]],
    *,
    error_code: int = 0,
    session_id: int = 0,
    throttle_time_ms: int = 0,
) -> list[Any]:
    """The response body as a list of buffers (join or ``writelines`` them); record ranges
    appear as given (a zero-copy slice stays a slice). A topic is its name (v4-12) or its id
    (v13+; None: the null id)."""
    flexible = version >= 12
    out: list[Any] = []
    head = bytearray(_I32.pack(throttle_time_ms))
    if version >= 7:
        head += struct.pack(">hi", error_code, session_id)
    head += array_count(len(topics), flexible)
    by_id = version >= 13
    for name, parts in topics:
        if by_id:
            head += _NULL_ID if name is None else name.bytes  # type: ignore[union-attr]
        else:
            head += short_string(name, flexible)  # type: ignore[arg-type]
        head += array_count(len(parts), flexible)
        for p in parts:
            head += _PART.pack(p.partition_index, p.error_code, p.high_watermark, p.last_stable_offset)
            if version >= 5:
                head += _I64.pack(p.log_start_offset)
            aborted = p.aborted_transactions
            if aborted is None:
                head += b"\0" if flexible else b"\xff\xff\xff\xff"
            else:
                head += array_count(len(aborted), flexible)
                for producer_id, first_offset in aborted:
                    head += _ABORTED.pack(producer_id, first_offset)
                    if flexible:
                        head += b"\0"
            if version >= 11:
                head += _I32.pack(-1)  # preferred_read_replica
            records = p.records
            head += uvarint_bytes(len(records) + 1) if flexible else _I32.pack(len(records))
            if records:
                out.append(bytes(head))
                out.append(records)
                head = bytearray()
            if flexible:
                head += b"\0"
        if flexible:
            head += b"\0"
    if flexible:
        head += b"\0"
    out.append(bytes(head))
    return out
