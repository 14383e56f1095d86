"""The differential harness's machinery: raw requests through tomyum's own codec (kio's entities,
generated from Kafka's message schemas), a transcript of what each broker answered, the
normalisation that makes two brokers' answers comparable, and the field-by-field comparison.

A session (``sessions.py``) is a function of a :class:`Conn`; it runs once against tomyum and once
against Apache Kafka, each on a connection of its own, and leaves one :class:`Step` per request in
``Conn.transcript``. The two transcripts are then normalised (:func:`normalise`) and compared
(:func:`compare`); what differs and is not in ``accepted.py`` fails the test.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import fnmatch
import io
import socket
import struct
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from kio.serial import entity_reader, entity_writer
from kio.serial._introspect import EntityField, EntityTupleField, classify_field, is_optional

from tomyum.protocol.codec import request_class, response_class, response_header_flexible

TIMEOUT = 30.0
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
CLOSED = "<connection closed>"

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
    10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
    15: "DescribeGroups", 16: "ListGroups", 17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics",
    20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch",
    24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit",
    29: "DescribeAcls", 30: "CreateAcls", 31: "DeleteAcls", 32: "DescribeConfigs", 33: "AlterConfigs",
    35: "DescribeLogDirs", 36: "SaslAuthenticate", 37: "CreatePartitions", 42: "DeleteGroups", 43: "ElectLeaders",
    44: "IncrementalAlterConfigs", 45: "AlterPartitionReassignments", 46: "ListPartitionReassignments",
    47: "OffsetDelete", 48: "DescribeClientQuotas", 49: "AlterClientQuotas",
    50: "DescribeUserScramCredentials", 51: "AlterUserScramCredentials", 55: "DescribeQuorum", 60: "DescribeCluster",
    61: "DescribeProducers", 65: "DescribeTransactions", 66: "ListTransactions",
    68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe", 75: "DescribeTopicPartitions",
}


def api_name(api_key: int) -> str:
    return API_NAMES.get(api_key, f"Api{api_key}")


# Requests from plain data ------------------------------------------------------------------

def fill(cls: Any, data: dict[str, Any]) -> Any:
    """Entity ``cls`` from ``data``: nested dicts and lists become entities, milliseconds become
    timedeltas, strings become UUIDs where the schema says so; a field ``data`` lacks and the
    entity has no default for takes the schema's zero (0, "", empty, null where nullable)."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = classify_field(f)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        key = f.name if f.name in data else f"{f.name}_ms"  # kio drops _ms from durations
        if key not in data:
            if not has_default:
                kwargs[f.name] = _zero(f, kind)
            continue
        value = data[key]
        if isinstance(kind, EntityTupleField):
            kwargs[f.name] = None if value is None else tuple(fill(kind.type_, v) for v in value)
        elif isinstance(kind, EntityField):
            kwargs[f.name] = None if value is None else fill(kind.type_, value)
        else:
            kwargs[f.name] = _primitive(f.metadata.get("kafka_type", ""), value)
    return cls(**kwargs)


@cache
def _request_keys(api_key: int) -> dict[str, Any]:
    """Every field name of the request over all its versions (durations also with ``_ms``)."""
    tree: dict[str, Any] = {}

    def merge(node: dict[str, Any], cls: Any) -> None:
        for f in dataclasses.fields(cls):
            kind = classify_field(f)
            names = [f.name, f"{f.name}_ms"]
            for name in names:
                if isinstance(kind, (EntityField, EntityTupleField)):
                    node.setdefault(name, {})
                    merge(node[name], kind.type_)
                else:
                    node.setdefault(name, None)

    for version in range(64):
        try:
            merge(tree, request_class(api_key, version))
        except Exception:
            continue
    return tree


def check_keys(api_key: int, data: dict[str, Any]) -> None:
    """A session's key that no version of the request has is a typo: raise, naming it."""
    def walk(node: dict[str, Any], value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k not in node:
                    raise TypeError(f"{api_name(api_key)}{path}.{k}: no version of the request has it")
                if node[k] is not None:
                    walk(node[k], v, f"{path}.{k}")
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(node, v, path)
    walk(_request_keys(api_key), data, "")


def _zero(f: dataclasses.Field[Any], kind: Any) -> Any:
    if isinstance(kind, EntityTupleField) or "tuple[" in str(f.type):
        return None if is_optional(f) else ()
    if isinstance(kind, EntityField):
        return fill(kind.type_, {})
    if is_optional(f):
        return None
    return _primitive(f.metadata.get("kafka_type", ""), {
        "string": "", "bytes": b"", "bool": False, "float64": 0.0}.get(f.metadata.get("kafka_type", ""), 0))


def _primitive(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(_primitive(kind, v) for v in value)
    if kind.startswith("timedelta"):
        return value if isinstance(value, datetime.timedelta) else datetime.timedelta(milliseconds=value)
    if kind == "datetime_i64":
        return value if isinstance(value, datetime.datetime) else _EPOCH + datetime.timedelta(milliseconds=value)
    if kind == "uuid" and isinstance(value, str):
        return uuid.UUID(value)
    return value


def plain(value: Any) -> Any:
    """A decoded response as JSON-like data: dicts, lists, ints, strings, bytes."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime.timedelta):
        return value // datetime.timedelta(milliseconds=1)
    if isinstance(value, datetime.datetime):
        return (value - _EPOCH) // datetime.timedelta(milliseconds=1)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return bytes(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    return value


# The connection ------------------------------------------------------------------------------

@dataclass
class Step:
    label: str
    response: Any


@dataclass
class Conn:
    """A blocking connection to one broker; ``send`` records each answer in ``transcript``. A
    closed connection is recorded as :data:`CLOSED` and the next ``send`` reconnects."""

    bootstrap: str
    peer: str
    transcript: list[Step] = field(default_factory=list)
    sent: set[tuple[int, int]] = field(default_factory=set)
    sock: socket.socket | None = None
    correlation_id: int = 0
    #: the request header's client id (a quota on a client id can then be this connection's alone)
    client_id: bytes = b"diff"

    def _connect(self) -> socket.socket:
        host, _, port = self.bootstrap.rpartition(":")
        sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        sock.settimeout(TIMEOUT)
        return sock

    def send(self, api_key: int, version: int, label: str = "", *, record: bool = True,
             view: Callable[[Any], Any] | None = None, **fields: Any) -> Any:
        """Send one request; return its answer as plain data (``CLOSED`` if the broker closed
        the connection instead of answering). ``record=False``: set-up, kept out of the
        transcript; ``view``: what of the answer the transcript keeps (all of it by default)."""
        if self.sock is None:
            self.sock = self._connect()
        if record:
            self.sent.add((api_key, version))
        self.correlation_id += 1
        cls = request_class(api_key, version)
        check_keys(api_key, fields)
        buf = io.BytesIO()
        entity_writer(cls)(buf, fill(cls, fields))
        frame = (struct.pack(">hhih", api_key, version, self.correlation_id, len(self.client_id)) + self.client_id
                 + (b"\0" if cls.__flexible__ else b"") + buf.getvalue())
        name = f"{api_name(api_key)} v{version}" + (f" {label}" if label else "")
        try:
            self.sock.sendall(struct.pack(">i", len(frame)) + frame)
            if api_key == 0 and fields.get("acks") == 0:
                if record:
                    self.transcript.append(Step(name, "<no response>"))
                return None
            (size,) = struct.unpack(">i", self._exactly(4))
            payload = self._exactly(size)
        except (ConnectionError, socket.timeout) as e:
            self.close()
            if isinstance(e, socket.timeout):
                raise
            if record:
                self.transcript.append(Step(name, CLOSED))
            return CLOSED
        (correlation_id,) = struct.unpack_from(">i", payload)
        assert correlation_id == self.correlation_id, f"{self.peer}: answer out of order"
        offset = 4 + (1 if response_header_flexible(api_key, version) else 0)
        response = plain(entity_reader(response_class(api_key, version))(payload, offset)[0])
        if record:
            self.transcript.append(Step(name, view(response) if view is not None else response))
        return response

    def note(self, label: str, value: Any) -> None:
        """Record an observation of the session's own (compared like an answer)."""
        self.transcript.append(Step(label, value))

    def _exactly(self, n: int) -> bytes:
        assert self.sock is not None
        chunks, got = [], 0
        while got < n:
            chunk = self.sock.recv(min(n - got, 1 << 20))
            if not chunk:
                raise ConnectionError("closed")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


# Normalisation -------------------------------------------------------------------------------

#: fields whose values differ between any two brokers and are compared only for consistency
#: within a transcript: each distinct value becomes ``<kind#n>`` in order of appearance
ID_KINDS = {
    "topic_id": "topic-id", "member_id": "member", "leader": "member", "producer_id": "pid",
    "cluster_id": "cluster", "node_id": "node", "leader_id": "node", "controller_id": "node",
    "broker_id": "node", "replica_nodes": "node", "isr_nodes": "node", "offline_replicas": "node",
    "coordinator_id": "node", "host": "host", "port": "port", "session_id": "fetch-session",
}
#: fields that are clocks: compared as "set" (≥ 0) or not
CLOCKS = {"last_timestamp", "transaction_start_time_ms", "transaction_start_time"}
#: lists whose order is meaningful (synonyms: in order of precedence)
ORDERED = {"synonyms", "records"}
#: list elements are put in order by the first of these they have, before ids are numbered
SORT_KEYS = ("name", "topic", "topic_name", "partition_index", "partition", "group_id", "resource_name",
             "transactional_id", "key", "api_key", "index", "config_name")


def normalise(transcript: list[Step]) -> list[Step]:
    ids: dict[tuple[str, Any], str] = {}
    counters: dict[str, int] = {}

    def token(kind: str, value: Any) -> Any:
        if value in (None, "", -1) or (kind == "node" and value < 0) or value == "00000000-0000-0000-0000-000000000000":
            return value
        if kind == "fetch-session" and value == 0:
            return value
        if (kind, value) not in ids:
            counters[kind] = counters.get(kind, 0) + 1
            ids[(kind, value)] = f"<{kind}#{counters[kind]}>"
        return ids[(kind, value)]

    def walk(value: Any, name: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, name) for v in (value if name in ORDERED else _sorted(value))]
        if name == "records" and isinstance(value, bytes) and value:
            return walk(batches(value), "records")
        if name in ("throttle_time", "throttle_time_ms"):
            return 0
        if name in CLOCKS and isinstance(value, int):
            return "<time>" if value >= 0 else value
        kind = ID_KINDS.get(name)
        if kind is not None:
            return token(kind, value)
        return value

    return [Step(s.label, walk(s.response)) for s in transcript]


_BATCH = struct.Struct(">qiibIhiqqqhii")


def batches(data: bytes) -> list[dict[str, Any]]:
    """Record batches (magic 2) as their header fields and their records' bytes, without the CRC:
    it covers the producer id, which differs between brokers (compared as an id instead)."""
    out, pos = [], 0
    while pos + _BATCH.size <= len(data):
        (base_offset, length, leader_epoch, magic, _crc, attributes, last_offset_delta, first_timestamp,
         max_timestamp, producer_id, producer_epoch, base_sequence, count) = _BATCH.unpack_from(data, pos)
        end = pos + 12 + length
        if attributes & 0x20:  # a control batch (transaction marker): stamped with the broker's clock
            first_timestamp = max_timestamp = "<time>"  # type: ignore[assignment]
        out.append({"base_offset": base_offset, "partition_leader_epoch": leader_epoch, "magic": magic,
                    "attributes": attributes, "last_offset_delta": last_offset_delta,
                    "first_timestamp": first_timestamp, "max_timestamp": max_timestamp,
                    "producer_id": producer_id, "producer_epoch": producer_epoch, "base_sequence": base_sequence,
                    "count": count, "body": data[pos + _BATCH.size:end] if end <= len(data) else "<partial>"})
        pos = end
    if pos < len(data):
        out.append({"partial batch bytes": len(data) - pos})
    return out


def _sorted(items: list[Any]) -> list[Any]:
    if not items or not all(isinstance(i, dict) for i in items):
        return items
    for key in SORT_KEYS:
        if all(key in i for i in items):
            return sorted(items, key=lambda i: str(i[key]))
    return items


# Comparison ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Difference:
    step: str
    path: str
    tomyum: Any
    kafka: Any

    def __str__(self) -> str:
        return f"{self.step} {self.path or '(whole answer)'}: tomyum={_short(self.tomyum)} kafka={_short(self.kafka)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "…"


def compare(tomyum: list[Step], kafka: list[Step]) -> list[Difference]:
    out: list[Difference] = []
    for i in range(max(len(tomyum), len(kafka))):
        if i >= len(tomyum) or i >= len(kafka):
            step = (tomyum[i] if i < len(tomyum) else kafka[i]).label
            out.append(Difference(step, "<steps>", len(tomyum), len(kafka)))
            break
        t, k = tomyum[i], kafka[i]
        if t.label != k.label:
            out.append(Difference(f"#{i}", "<step>", t.label, k.label))
            break
        out.extend(_diff(t.label, "", t.response, k.response))
    return out


def _diff(step: str, path: str, a: Any, b: Any) -> Iterator[Difference]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            yield from _diff(step, f"{path}.{key}", a.get(key, "<absent>"), b.get(key, "<absent>"))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _diff(step, f"{path}[{i}]", x, y)
    elif a != b:
        yield Difference(step, path, a, b)


@dataclass(frozen=True)
class Accepted:
    """A difference tomyum keeps on purpose: ``step`` and ``path`` are fnmatch patterns over
    :class:`Difference`'s ``step`` (e.g. ``"JoinGroup v0*"``) and ``path`` (``"*.error_message"``)."""

    step: str
    path: str
    reason: str

    def matches(self, d: Difference) -> bool:
        return fnmatch.fnmatchcase(d.step, self.step) and fnmatch.fnmatchcase(d.path, self.path)
