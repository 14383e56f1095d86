"""Hand-written decoders for the hot requests, Produce (v3-12) and Fetch (v4-18): the
counterpart of ``produce_response`` / ``fetch_response``.

The generic path (:func:`tomyum.protocol.codec.decode_request`) walks the request's schema in
Python to guard kio's native reader against hostile counts, then builds kio's frozen entities;
for a one-record Produce that is ~6 µs, several times the reading itself. These decoders read
the common shape of the two requests in one pass, bounds-checked as they go, into light
named tuples with the same field names as kio's entities, so a handler reads either alike.
Differences a handler may rely on: ``timeout`` / ``max_wait`` are milliseconds (``int``,
which :func:`~tomyum.protocol.codec.ms` passes through) instead of ``timedelta``; ``records``
is a ``memoryview`` into the request frame (no copy) instead of ``bytes``. A Fetch topic (and
forgotten topic) has both kio's names, ``topic`` (v4-12; "" from v13) and ``topic_id`` (v13+, None
for the null id as kio reads it; None before v13); ``replica_id`` is -1 from v15, where kio has
none (a consumer's; a follower's comes in a tagged field, which the generic decoder reads).

Contract: a decoder returns the decoded body, or ``None`` when the request is not of the shape
it reads — tagged fields present (anywhere but an empty section), or bytes that do not parse
(truncated, a negative or oversized length or count, a bad varint, a string that is not UTF-8).
Then the generic decoder decides, so a malformed request fails exactly as before, with the
same error, and a rare shape (a Fetch with KIP-482 tagged fields) decodes as before. Whatever
a decoder returns equals what the generic decoder makes of the same bytes
(tests/unit/test_request_decoders.py checks it on generated and damaged requests).

Pure: no I/O, no asyncio.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

from tomyum.protocol.primitives import MalformedVarint, read_uvarint

__all__ = [
    "FAST_DECODERS",
    "FetchPartition",
    "FetchRequest",
    "FetchTopic",
    "ForgottenTopic",
    "PartitionProduceData",
    "ProduceRequest",
    "TopicProduceData",
    "decode_fetch",
    "decode_produce",
]

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_PRODUCE_HEAD = struct.Struct(">hi")  # acks, timeout_ms
_FETCH_HEAD = struct.Struct(">iiiib")  # replica_id, max_wait_ms, min_bytes, max_bytes, isolation_level
_FETCH_HEAD_V15 = struct.Struct(">iiib")  # the same without replica_id (v15+: a tagged ReplicaState)
_SESSION = struct.Struct(">ii")  # session_id, session_epoch
_PART_V4 = struct.Struct(">iqi")  # partition, fetch_offset, partition_max_bytes
_PART_V5 = struct.Struct(">iqqi")  # + log_start_offset
_PART_V9 = struct.Struct(">iiqqi")  # + current_leader_epoch
_PART_V12 = struct.Struct(">iiqiqi")  # + last_fetched_epoch


class _NotOurs(Exception):
    """The bytes are not of the shape the decoder reads: the generic decoder decides."""


class PartitionProduceData:
    """(A class, not a named tuple: kio's field name ``index`` is a tuple method.)"""

    __slots__ = ("index", "records")

    def __init__(self, index: int, records: memoryview | None) -> None:
        self.index = index
        #: the partition's record batches, a view into the request frame (None: null)
        self.records = records

    def _asdict(self) -> dict[str, Any]:
        return {"index": self.index, "records": self.records}

    def __repr__(self) -> str:
        return f"PartitionProduceData(index={self.index}, records={self.records!r})"


class TopicProduceData(NamedTuple):
    name: str
    partition_data: tuple[PartitionProduceData, ...]


class ProduceRequest(NamedTuple):
    transactional_id: str | None
    acks: int
    #: milliseconds
    timeout: int
    topic_data: tuple[TopicProduceData, ...]


class FetchPartition(NamedTuple):
    partition: int
    current_leader_epoch: int
    fetch_offset: int
    last_fetched_epoch: int
    log_start_offset: int
    partition_max_bytes: int


class FetchTopic(NamedTuple):
    topic: str
    partitions: tuple[FetchPartition, ...]
    topic_id: uuid.UUID | None = None


class ForgottenTopic(NamedTuple):
    topic: str
    partitions: tuple[int, ...]
    topic_id: uuid.UUID | None = None


class FetchRequest(NamedTuple):
    replica_id: int
    #: milliseconds
    max_wait: int
    min_bytes: int
    max_bytes: int
    isolation_level: int
    session_id: int
    session_epoch: int
    topics: tuple[FetchTopic, ...]
    forgotten_topics_data: tuple[ForgottenTopic, ...]
    rack_id: str
    cluster_id: str | None = None


def _uvarint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """An unsigned varint (one byte without a loop: nearly every length and count)."""
    if pos < end:
        b = buf[pos]
        if b < 0x80:
            return b, pos + 1
    return read_uvarint(buf, pos, end)


def _length(buf: bytes, pos: int, end: int, flexible: bool, wide: bool) -> tuple[int, int]:
    """A string/bytes length or an array count (-1: null) and the position after it."""
    if flexible:
        n, pos = _uvarint(buf, pos, end)
        return n - 1, pos
    if wide:
        if pos + 4 > end:
            raise _NotOurs
        return _I32.unpack_from(buf, pos)[0], pos + 4
    if pos + 2 > end:
        raise _NotOurs
    return _I16.unpack_from(buf, pos)[0], pos + 2


def _count(buf: bytes, pos: int, end: int, flexible: bool) -> tuple[int, int]:
    """A non-null array's element count (each element at least a byte) and the position after it."""
    n, pos = _length(buf, pos, end, flexible, True)
    if n < 0 or n > end - pos:
        raise _NotOurs
    return n, pos


def _string(buf: bytes, pos: int, end: int, flexible: bool, nullable: bool) -> tuple[str | None, int]:
    n, pos = _length(buf, pos, end, flexible, False)
    if n < 0:
        if n == -1 and nullable:
            return None, pos
        raise _NotOurs
    if pos + n > end:
        raise _NotOurs
    return buf[pos : pos + n].decode(), pos + n  # not UTF-8: UnicodeDecodeError, caught by _run


def _fixed(s: struct.Struct, buf: bytes, pos: int, end: int) -> tuple[Any, ...]:
    if pos + s.size > end:
        raise _NotOurs
    return s.unpack_from(buf, pos)


def _no_tags(buf: bytes, pos: int, end: int) -> int:
    """A flexible entity's tagged-field section, which must be empty here."""
    if pos >= end or buf[pos] != 0:
        raise _NotOurs
    return pos + 1


def _run(read: Callable[[bytes, int, int, int, bool], Any], frame: bytes, offset: int, version: int,
         flexible: bool) -> Any:
    """``read`` over ``frame`` from ``offset`` (just past the header's client id), or None."""
    end = len(frame)
    try:
        if flexible:
            offset = _no_tags(frame, offset, end)  # request header v2: its tagged fields
        return read(frame, offset, end, version, flexible)
    except (_NotOurs, MalformedVarint, UnicodeDecodeError):
        return None


def _produce(buf: bytes, pos: int, end: int, version: int, flexible: bool) -> ProduceRequest:
    transactional_id, pos = _string(buf, pos, end, flexible, True)
    acks, timeout_ms = _fixed(_PRODUCE_HEAD, buf, pos, end)
    topics_left, pos = _count(buf, pos + 6, end, flexible)
    view = memoryview(buf)
    topics = []
    while topics_left:
        topics_left -= 1
        name, pos = _string(buf, pos, end, flexible, False)
        parts_left, pos = _count(buf, pos, end, flexible)
        parts = []
        while parts_left:
            parts_left -= 1
            if pos + 4 > end:
                raise _NotOurs
            (index,) = _I32.unpack_from(buf, pos)
            n, pos = _length(buf, pos + 4, end, flexible, True)
            if n < 0:
                if n != -1:
                    raise _NotOurs
                parts.append(PartitionProduceData(index, None))
            else:
                if pos + n > end:
                    raise _NotOurs
                parts.append(PartitionProduceData(index, view[pos : pos + n]))
                pos += n
            if flexible:
                pos = _no_tags(buf, pos, end)
        topics.append(TopicProduceData(name, tuple(parts)))  # type: ignore[arg-type]
        if flexible:
            pos = _no_tags(buf, pos, end)
    if flexible:
        _no_tags(buf, pos, end)
    return ProduceRequest(transactional_id, acks, timeout_ms, tuple(topics))


def _fetch_partitions(buf: bytes, pos: int, end: int, version: int, flexible: bool) -> tuple[list[FetchPartition], int]:
    left, pos = _count(buf, pos, end, flexible)
    s = _PART_V12 if version >= 12 else _PART_V9 if version >= 9 else _PART_V5 if version >= 5 else _PART_V4
    out = []
    while left:
        left -= 1
        f = _fixed(s, buf, pos, end)
        pos += s.size
        if version >= 12:
            out.append(FetchPartition(*f))
            pos = _no_tags(buf, pos, end)
        elif version >= 9:
            out.append(FetchPartition(f[0], f[1], f[2], -1, f[3], f[4]))
        elif version >= 5:
            out.append(FetchPartition(f[0], -1, f[1], -1, f[2], f[3]))
        else:
            out.append(FetchPartition(f[0], -1, f[1], -1, -1, f[2]))
    return out, pos


def _topic_id(buf: bytes, pos: int, end: int) -> tuple[uuid.UUID | None, int]:
    """A topic id (16 bytes; all zero is null, None, as kio reads it)."""
    if pos + 16 > end:
        raise _NotOurs
    raw = buf[pos : pos + 16]
    return (uuid.UUID(bytes=raw) if any(raw) else None), pos + 16


def _fetch_topic(buf: bytes, pos: int, end: int, version: int,
                 flexible: bool) -> tuple[str, uuid.UUID | None, int]:
    """A Fetch topic's name (v4-12) or id (v13+): (name or "", id or None, position after)."""
    if version >= 13:
        topic_id, pos = _topic_id(buf, pos, end)
        return "", topic_id, pos
    name, pos = _string(buf, pos, end, flexible, False)
    return name, None, pos  # type: ignore[return-value]


def _fetch(buf: bytes, pos: int, end: int, version: int, flexible: bool) -> FetchRequest:
    if version >= 15:
        replica_id = -1
        max_wait_ms, min_bytes, max_bytes, isolation_level = _fixed(_FETCH_HEAD_V15, buf, pos, end)
        pos += _FETCH_HEAD_V15.size
    else:
        replica_id, max_wait_ms, min_bytes, max_bytes, isolation_level = _fixed(_FETCH_HEAD, buf, pos, end)
        pos += _FETCH_HEAD.size
    session_id, session_epoch = 0, -1
    if version >= 7:
        session_id, session_epoch = _fixed(_SESSION, buf, pos, end)
        pos += _SESSION.size
    left, pos = _count(buf, pos, end, flexible)
    topics = []
    while left:
        left -= 1
        name, topic_id, pos = _fetch_topic(buf, pos, end, version, flexible)
        parts, pos = _fetch_partitions(buf, pos, end, version, flexible)
        topics.append(FetchTopic(name, tuple(parts), topic_id))
        if flexible:
            pos = _no_tags(buf, pos, end)
    forgotten = []
    if version >= 7:
        left, pos = _count(buf, pos, end, flexible)
        while left:
            left -= 1
            name, topic_id, pos = _fetch_topic(buf, pos, end, version, flexible)
            n, pos = _count(buf, pos, end, flexible)
            ids = _fixed(struct.Struct(f">{n}i"), buf, pos, end) if n else ()
            pos += 4 * n
            forgotten.append(ForgottenTopic(name, ids, topic_id))
            if flexible:
                pos = _no_tags(buf, pos, end)
    rack_id: str | None = ""
    if version >= 11:
        rack_id, pos = _string(buf, pos, end, flexible, False)
    if flexible:
        _no_tags(buf, pos, end)
    return FetchRequest(replica_id, max_wait_ms, min_bytes, max_bytes, isolation_level, session_id, session_epoch,
                        tuple(topics), tuple(forgotten), rack_id or "")


def decode_produce(frame: bytes, offset: int, version: int) -> ProduceRequest | None:
    """The Produce request (v3-12) in ``frame`` from ``offset`` (past the client id), or None."""
    result: ProduceRequest | None = _run(_produce, frame, offset, version, version >= 9)
    return result


def decode_fetch(frame: bytes, offset: int, version: int) -> FetchRequest | None:
    """The Fetch request (v4-18) in ``frame`` from ``offset`` (past the client id), or None."""
    result: FetchRequest | None = _run(_fetch, frame, offset, version, version >= 12)
    return result


#: API key -> (lowest version, highest version, decoder)
FAST_DECODERS: dict[int, tuple[int, int, Callable[[bytes, int, int], Any]]] = {
    0: (3, 12, decode_produce),
    1: (4, 18, decode_fetch),
}
