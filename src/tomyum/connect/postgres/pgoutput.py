"""A decoder for PostgreSQL's ``pgoutput`` logical replication messages (protocol version 1).

Pure: bytes in, frozen messages out; no I/O. The format is PostgreSQL's "Logical Replication
Message Formats" chapter: one message per ``XLogData`` payload, the first byte its type —
Begin ``B``, Commit ``C``, Origin ``O``, Relation ``R``, Type ``Y``, Insert ``I``, Update ``U``,
Delete ``D``, Truncate ``T``, Message ``M``. Column values arrive in text form (``t``), as NULL
(``n``) or as an unchanged TOASTed value (``u``, whose value the server did not send); the
binary form (``b``) is only sent when asked for, and this decoder does not ask.
Timestamps are microseconds since 2000-01-01 (PostgreSQL's epoch); :func:`pg_to_unix_us`
converts them.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable

# microseconds between 1970-01-01 and 2000-01-01
PG_EPOCH_OFFSET_US = 946_684_800_000_000


def pg_to_unix_us(pg_us: int) -> int:
    return pg_us + PG_EPOCH_OFFSET_US


class DecodeError(ValueError):
    """A message that is not valid pgoutput."""


class Unchanged:
    """An unchanged TOASTed column value that the server did not send (``u``)."""

    def __repr__(self) -> str:
        return "UNCHANGED_TOAST"


UNCHANGED_TOAST = Unchanged()

# a tuple: one entry per column: None (NULL), UNCHANGED_TOAST or the value's text form
TupleData = tuple["str | Unchanged | None", ...]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Begin:
    final_lsn: int
    commit_ts_us: int
    xid: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_ts_us: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    lsn: int
    name: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    name: str
    type_oid: int
    type_modifier: int
    part_of_key: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Relation:
    oid: int
    namespace: str
    name: str
    replica_identity: str  # d(efault: primary key), n(othing), f(ull), i(ndex)
    columns: tuple[Column, ...]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TypeMessage:
    oid: int
    namespace: str
    name: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Insert:
    relation_oid: int
    new: TupleData


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Update:
    relation_oid: int
    new: TupleData
    old: TupleData | None  # the old row (REPLICA IDENTITY FULL) or its key (key changed / index)
    old_is_key: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Delete:
    relation_oid: int
    old: TupleData
    old_is_key: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Truncate:
    relation_oids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LogicalMessage:
    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Message = Begin | Commit | Origin | Relation | TypeMessage | Insert | Update | Delete | Truncate | LogicalMessage


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError(f"not UTF-8: {e}") from None


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise DecodeError(f"truncated message at byte {self.pos}")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return int(value)

    def int8(self) -> int:
        return self._take(">b")

    def byte(self) -> str:
        return chr(self._take(">B"))

    def int16(self) -> int:
        return self._take(">h")

    def int32(self) -> int:
        return self._take(">i")

    def uint32(self) -> int:
        return self._take(">I")

    def int64(self) -> int:
        return self._take(">q")

    def uint64(self) -> int:
        return self._take(">Q")

    def string(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise DecodeError(f"unterminated string at byte {self.pos}")
        value = _utf8(self.data[self.pos:end])
        self.pos = end + 1
        return value

    def raw(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError(f"truncated value at byte {self.pos}")
        value = self.data[self.pos:self.pos + n]
        self.pos += n
        return value

    def tuple_data(self) -> TupleData:
        values: list[str | Unchanged | None] = []
        for _ in range(self.int16()):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED_TOAST)
            elif kind == "t":
                values.append(_utf8(self.raw(self.int32())))
            else:
                raise DecodeError(f"unknown tuple value kind {kind!r}")
        return tuple(values)


def _begin(r: _Reader) -> Begin:
    return Begin(final_lsn=r.uint64(), commit_ts_us=r.int64(), xid=r.uint32())


def _commit(r: _Reader) -> Commit:
    return Commit(flags=r.int8(), commit_lsn=r.uint64(), end_lsn=r.uint64(), commit_ts_us=r.int64())


def _origin(r: _Reader) -> Origin:
    return Origin(lsn=r.uint64(), name=r.string())


def _relation(r: _Reader) -> Relation:
    oid, namespace, name, identity = r.uint32(), r.string(), r.string(), r.byte()
    columns = []
    for _ in range(r.int16()):
        flags = r.int8()
        columns.append(Column(name=r.string(), type_oid=r.uint32(), type_modifier=r.int32(),
                              part_of_key=bool(flags & 1)))
    return Relation(oid=oid, namespace=namespace, name=name, replica_identity=identity, columns=tuple(columns))


def _type(r: _Reader) -> TypeMessage:
    return TypeMessage(oid=r.uint32(), namespace=r.string(), name=r.string())


def _insert(r: _Reader) -> Insert:
    oid = r.uint32()
    if (kind := r.byte()) != "N":
        raise DecodeError(f"insert: expected 'N', got {kind!r}")
    return Insert(relation_oid=oid, new=r.tuple_data())


def _update(r: _Reader) -> Update:
    oid = r.uint32()
    kind = r.byte()
    old: TupleData | None = None
    old_is_key = False
    if kind in ("K", "O"):
        old, old_is_key = r.tuple_data(), kind == "K"
        kind = r.byte()
    if kind != "N":
        raise DecodeError(f"update: expected 'N', got {kind!r}")
    return Update(relation_oid=oid, new=r.tuple_data(), old=old, old_is_key=old_is_key)


def _delete(r: _Reader) -> Delete:
    oid = r.uint32()
    kind = r.byte()
    if kind not in ("K", "O"):
        raise DecodeError(f"delete: expected 'K' or 'O', got {kind!r}")
    return Delete(relation_oid=oid, old=r.tuple_data(), old_is_key=kind == "K")


def _truncate(r: _Reader) -> Truncate:
    count, options = r.int32(), r.int8()
    return Truncate(relation_oids=tuple(r.uint32() for _ in range(count)),
                    cascade=bool(options & 1), restart_identity=bool(options & 2))


def _message(r: _Reader) -> LogicalMessage:
    flags, lsn, prefix = r.int8(), r.uint64(), r.string()
    return LogicalMessage(transactional=bool(flags & 1), lsn=lsn, prefix=prefix, content=r.raw(r.int32()))


_DECODERS: dict[str, Callable[[_Reader], Message]] = {"B": _begin, "C": _commit, "O": _origin, "R": _relation, "Y": _type, "I": _insert,
             "U": _update, "D": _delete, "T": _truncate, "M": _message}


def decode(payload: bytes) -> Message:
    """The message in one ``XLogData`` payload; DecodeError if it is not valid pgoutput v1."""
    if not payload:
        raise DecodeError("empty message")
    reader = _Reader(bytes(payload))
    decoder = _DECODERS.get(reader.byte())
    if decoder is None:
        raise DecodeError(f"unknown message type {chr(payload[0])!r}")
    message: Message = decoder(reader)
    if reader.pos != len(reader.data):
        raise DecodeError(f"{len(reader.data) - reader.pos} trailing bytes after {type(message).__name__}")
    return message


def format_lsn(lsn: int) -> str:
    """PostgreSQL's text form of an LSN: ``16/B374D848``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)
