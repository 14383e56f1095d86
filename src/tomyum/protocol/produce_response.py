"""Hand-written Produce response encoder (v3-9): the hot path skips the generic codec."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from tomyum.protocol.primitives import array_count, short_string

_I32 = struct.Struct(">i")
_PART = struct.Struct(">ihqq")  # index, error_code, base_offset, log_append_time
_I64 = struct.Struct(">q")


@dataclass(frozen=True, slots=True)
class PartitionResult:
    index: int
    error_code: int
    base_offset: int = -1
    log_append_time: int = -1
    log_start_offset: int = -1
    error_message: str | None = None
    #: KIP-467: (batch_index, batch_index_error_message) of each record that failed the batch
    record_errors: Sequence[tuple[int, str | None]] = ()


def encode_produce_response(version: int, topics: Sequence[tuple[str, Sequence[PartitionResult]]],
                            throttle_time_ms: int = 0) -> bytes:
    flexible = version >= 9
    out = [array_count(len(topics), flexible)]
    for name, parts in topics:
        out.append(short_string(name, flexible))
        out.append(array_count(len(parts), flexible))
        for p in parts:
            out.append(_PART.pack(p.index, p.error_code, p.base_offset, p.log_append_time))
            if version >= 5:
                out.append(_I64.pack(p.log_start_offset))
            if version >= 8:
                out.append(array_count(len(p.record_errors), flexible))
                for batch_index, message in p.record_errors:
                    out.append(_I32.pack(batch_index))
                    out.append(short_string(message, flexible))
                    if flexible:
                        out.append(b"\0")
                out.append(short_string(p.error_message, flexible))
            if flexible:
                out.append(b"\0")
        if flexible:
            out.append(b"\0")
    out.append(_I32.pack(throttle_time_ms))
    if flexible:
        out.append(b"\0")
    return b"".join(out)
