"""Distributed workers' group membership: Kafka's WorkerGroupMember / WorkerCoordinator.

Workers join a Kafka consumer group (``group.id``) with protocol type ``connect``, as Kafka's
workers do; librdkafka can only join with protocol type ``consumer``, so this module speaks
FindCoordinator, JoinGroup (v5), SyncGroup (v3), Heartbeat (v3) and LeaveGroup (v3) itself, over
one blocking connection with kio's codecs.

Protocols, offered in Kafka's order of preference (the group coordinator picks the one every
member supports, by the members' votes): ``connect.protocol=compatible`` offers ``compatible``
(ConnectProtocol v1, incremental cooperative, KIP-415) then ``default`` (v0, eager);
``eager`` offers ``default`` only. ``sessioned`` (v2, KIP-507's signed internal requests) is not
offered: tomyum does not sign requests between workers (see :mod:`tomyum.connect.distributed`).

Bytes are Kafka's, so Kafka's own workers read them:

- v0 metadata ``version:int16 url:string config_offset:int64``; v1/v2 add
  ``allocation:nullable bytes``, the member's current assignment in its own v1/v2 bytes;
- v0 assignment ``version:int16 error:int16 leader:string leader_url:string config_offset:int64
  [connector:string [task:int32]]`` where task -1 stands for the connector itself; v1/v2 make
  that array nullable and add ``revoked`` (same shape, nullable) and ``delay:int32`` (ms after
  which every member rejoins: a scheduled rebalance). Fields missing at the end of v1 bytes take
  their defaults, as Kafka reads them.

Only PLAINTEXT connections are supported here; the member is used by one thread only.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import socket
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tomyum.connect.connector import ConnectError

log = logging.getLogger("tomyum.connect.group")

PROTOCOL_TYPE = "connect"
EAGER = "default"
COMPATIBLE = "compatible"
SESSIONED = "sessioned"
#: ConnectProtocol version of each protocol name (Kafka's ConnectProtocolCompatibility)
PROTOCOL_VERSIONS = {EAGER: 0, COMPATIBLE: 1, SESSIONED: 2}
CONNECTOR_TASK = -1

FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 10, 11, 12, 13, 14
_VERSIONS = {FIND_COORDINATOR: 3, JOIN_GROUP: 5, HEARTBEAT: 3, LEAVE_GROUP: 3, SYNC_GROUP: 3}

# Kafka error codes the member acts on
NONE, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR = 0, 14, 15, 16
ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, MEMBER_ID_REQUIRED = 22, 25, 27, 79
_RETRY_COORDINATOR = {COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR}

_I16, _I32, _I64 = struct.Struct(">h"), struct.Struct(">i"), struct.Struct(">q")


# --- ConnectProtocol v0 -------------------------------------------------------------------------
def _string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _I16.pack(len(raw)) + raw


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, s: struct.Struct) -> int:
        (value,) = s.unpack_from(self.data, self.pos)
        self.pos += s.size
        return int(value)

    def more(self) -> bool:
        return self.pos < len(self.data)

    def string(self) -> str:
        n = self.take(_I16)
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        return raw.decode("utf-8")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkerState:
    """A member's metadata: its REST URL, how far it has read the config topic and (protocol v1
    and later) what it runs now, as the assignment it was last given in full."""

    url: str
    config_offset: int
    assignment: Assignment | None = None

    def encode(self, version: int = 0) -> bytes:
        head = _I16.pack(version) + _string(self.url) + _I64.pack(self.config_offset)
        if version == 0:
            return head
        if self.assignment is None:
            return head + _I32.pack(-1)
        allocation = dataclasses.replace(self.assignment, version=version).encode()
        return head + _I32.pack(len(allocation)) + allocation

    @classmethod
    def decode(cls, data: bytes) -> WorkerState:
        r = _Reader(data)
        version = r.take(_I16)
        if version < 0:
            raise ConnectError("Unsupported Connect protocol version")
        url, offset = r.string(), r.take(_I64)
        assignment = None
        if version >= 1 and r.more():
            n = r.take(_I32)
            if n >= 0:
                assignment = Assignment.decode(r.data[r.pos:r.pos + n])
        return cls(url=url, config_offset=offset, assignment=assignment)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Assignment:
    """What the leader gave one member: connectors to run and task ids (``(connector, n)``); from
    v1 on, also what it must stop and the delay (ms) after which it must rejoin. Under v1 the
    connectors and tasks are only what is *new*; a member adds them to what it kept."""

    error: int
    leader: str
    leader_url: str
    config_offset: int
    connectors: tuple[str, ...]
    tasks: tuple[tuple[str, int], ...]
    revoked_connectors: tuple[str, ...] = ()
    revoked_tasks: tuple[tuple[str, int], ...] = ()
    delay: int = 0
    version: int = 0

    def encode(self) -> bytes:
        out = [_I16.pack(self.version), _I16.pack(self.error), _string(self.leader), _string(self.leader_url),
               _I64.pack(self.config_offset), _encode_work(self.connectors, self.tasks)]
        if self.version >= 1:
            out += [_encode_work(self.revoked_connectors, self.revoked_tasks), _I32.pack(self.delay)]
        return b"".join(out)

    @classmethod
    def decode(cls, data: bytes) -> Assignment:
        r = _Reader(data)
        version = r.take(_I16)
        if version < 0:
            raise ConnectError("Unsupported Connect protocol version")
        error, leader, leader_url, offset = r.take(_I16), r.string(), r.string(), r.take(_I64)
        connectors, tasks = _decode_work(r)
        revoked: tuple[tuple[str, ...], tuple[tuple[str, int], ...]] = ((), ())
        delay = 0
        if version >= 1:
            revoked = _decode_work(r) if r.more() else revoked
            delay = r.take(_I32) if r.more() else 0
        return cls(error=error, leader=leader, leader_url=leader_url, config_offset=offset, connectors=connectors,
                   tasks=tasks, revoked_connectors=revoked[0], revoked_tasks=revoked[1], delay=delay,
                   version=version)


def _encode_work(connectors: Sequence[str], tasks: Sequence[tuple[str, int]]) -> bytes:
    """``[connector:string [task:int32]]``, connectors first (task -1), in Kafka's order."""
    grouped: dict[str, list[int]] = {}
    for c in connectors:
        grouped.setdefault(c, []).append(CONNECTOR_TASK)
    for c, n in tasks:
        grouped.setdefault(c, []).append(n)
    out = [_I32.pack(len(grouped))]
    for c, ids in grouped.items():
        out.append(_string(c) + _I32.pack(len(ids)) + b"".join(_I32.pack(i) for i in ids))
    return b"".join(out)


def _decode_work(r: _Reader) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    """The inverse of :func:`_encode_work`; a null array (-1) or none left reads as empty."""
    connectors: list[str] = []
    tasks: list[tuple[str, int]] = []
    for _ in range(r.take(_I32) if r.more() else 0):
        name = r.string()
        for _ in range(r.take(_I32)):
            n = r.take(_I32)
            if n == CONNECTOR_TASK:
                connectors.append(name)
            else:
                tasks.append((name, n))
    return tuple(connectors), tuple(tasks)


def assign_eager(leader: str, members: Mapping[str, WorkerState], config_offset: int,
                 connectors: Sequence[str], tasks: Sequence[tuple[str, int]]) -> dict[str, Assignment]:
    """Kafka's EagerAssignor: connectors, then tasks, round-robin over the members in member-id
    order. Connectors and tasks are taken in sorted order so every leader computes the same."""
    ids = sorted(members)
    given_c: dict[str, list[str]] = {m: [] for m in ids}
    given_t: dict[str, list[tuple[str, int]]] = {m: [] for m in ids}
    i = 0
    for c in sorted(connectors):
        given_c[ids[i % len(ids)]].append(c)
        i += 1
    for t in sorted(tasks):
        given_t[ids[i % len(ids)]].append(t)
        i += 1
    leader_url = members[leader].url
    return {m: Assignment(error=0, leader=leader, leader_url=leader_url, config_offset=config_offset,
                          connectors=tuple(given_c[m]), tasks=tuple(given_t[m])) for m in ids}


def protocols_for(value: str) -> tuple[str, ...]:
    """The protocols a worker offers for ``connect.protocol``, most preferred first (Kafka's order)."""
    mode = value.strip().lower()
    if mode == "sessioned":
        log.warning("connect.protocol=sessioned needs signed requests between workers (KIP-507), which tomyum "
                    "does not implement: offering 'compatible' (incremental cooperative, unsigned) instead")
        mode = "compatible"
    if mode == "compatible":
        return (COMPATIBLE, EAGER)
    if mode == "eager":
        return (EAGER,)
    raise ConnectError(f"Invalid value {value} for configuration connect.protocol: Invalid Connect protocol compatibility")


# --- the member -------------------------------------------------------------------------------
class RebalanceNeeded(Exception):
    """The group is rebalancing (or forgot this member): join again."""


class _Connection:
    def __init__(self, host: str, port: int, timeout_s: float, client_id: str) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.correlation_id = 0
        self.client_id = client_id.encode("utf-8")

    def send(self, api_key: int, body: Any, timeout_s: float) -> Any:
        from kio.index import load_payload_module
        from kio.serial import entity_reader, entity_writer
        from kio.static.constants import EntityType

        version = _VERSIONS[api_key]
        self.correlation_id += 1
        req_cls = type(body)
        buf = io.BytesIO()
        entity_writer(req_cls)(buf, body)
        flexible = bool(getattr(req_cls, "__flexible__", False))
        header = (struct.pack(">hhih", api_key, version, self.correlation_id, len(self.client_id)) + self.client_id
                  + (b"\0" if flexible else b""))
        frame = header + buf.getvalue()
        self.sock.settimeout(timeout_s)
        self.sock.sendall(_I32.pack(len(frame)) + frame)
        (size,) = _I32.unpack(self._exactly(4))
        data = self._exactly(size)
        module = load_payload_module(api_key, version, EntityType.response)
        resp_cls = next(v for v in vars(module).values()
                        if isinstance(v, type) and getattr(v, "__type__", None) is EntityType.response)
        return entity_reader(resp_cls)(data, 4 + (1 if flexible else 0))[0]

    def _exactly(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the coordinator closed the connection")
            buf += chunk
        return bytes(buf)

    def close(self) -> None:
        self.sock.close()


def _request(module: str, entity: str, /, **fields: Any) -> Any:
    """kio's ``entity`` of ``kio.schema.<module>.request``, built from ``fields``."""
    import importlib

    return getattr(importlib.import_module(f"kio.schema.{module}.request"), entity)(**fields)


class WorkerGroupMember:
    """One worker's membership of the Connect group. ``join()`` blocks until this member has an
    assignment for a new generation; ``heartbeat()`` raises :class:`RebalanceNeeded` when the
    group must be joined again. Every call is bounded by ``request_timeout_s``."""

    def __init__(self, *, bootstrap_servers: str, group_id: str, url: str, session_timeout_ms: int,
                 rebalance_timeout_ms: int, heartbeat_interval_ms: int, client_id: str,
                 protocols: Sequence[str] = (EAGER,), request_timeout_s: float = 30.0) -> None:
        self.bootstrap = [b.strip().split("://")[-1] for b in bootstrap_servers.split(",") if b.strip()]
        self.group_id = group_id
        self.url = url
        self.session_timeout_ms = session_timeout_ms
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.heartbeat_interval_s = heartbeat_interval_ms / 1000
        self.client_id = client_id
        self.request_timeout_s = request_timeout_s
        #: the protocols offered, most preferred first (names of :data:`PROTOCOL_VERSIONS`)
        self.protocols = tuple(protocols)
        #: the protocol the group chose at the last join (before any: the most preferred)
        self.protocol = self.protocols[0]
        self.member_id = ""
        self.generation_id = -1
        self.leader_id = ""
        self.last_heartbeat = 0.0
        self._coordinator: _Connection | None = None

    # connections
    def _coordinator_connection(self) -> _Connection:
        if self._coordinator is not None:
            return self._coordinator
        last: Exception | None = None
        for address in self.bootstrap:
            host, _, port = address.rpartition(":")
            try:
                conn = _Connection(host.strip("[]") or "localhost", int(port), self.request_timeout_s, self.client_id)
                try:
                    r = conn.send(FIND_COORDINATOR, _request("find_coordinator.v3", "FindCoordinatorRequest",
                                                             key=self.group_id), self.request_timeout_s)
                finally:
                    conn.close()
            except OSError as e:
                last = e
                continue
            if r.error_code.value != NONE:
                last = ConnectionError(f"FindCoordinator answered error {r.error_code.value}")
                continue
            self._coordinator = _Connection(str(r.host), int(r.port), self.request_timeout_s, self.client_id)
            return self._coordinator
        raise ConnectionError(f"no group coordinator found for {self.group_id}: {last}")

    def _send(self, api_key: int, body: Any, timeout_s: float | None = None) -> Any:
        conn = self._coordinator_connection()
        try:
            response = conn.send(api_key, body, timeout_s or self.request_timeout_s)
        except OSError:
            self.disconnect()
            raise
        if response.error_code.value in _RETRY_COORDINATOR:
            self.disconnect()
        return response

    def disconnect(self) -> None:
        if self._coordinator is not None:
            self._coordinator.close()
            self._coordinator = None

    # the protocol
    def join(self, state: WorkerState,
             assign: Callable[[str, Mapping[str, WorkerState]], Mapping[str, Assignment]],
             should_stop: Callable[[], bool], on_unreachable: Callable[[], None] | None = None) -> Assignment | None:
        """Join (and sync) until an assignment arrives; ``assign(leader, members)`` is called when
        this member leads, with ``self.protocol`` and ``self.generation_id`` already those of the
        new generation. None if ``should_stop()`` turned true first. ``on_unreachable()`` is
        called once the coordinator has been unreachable for ``heartbeat.interval.ms`` (Kafka's
        WorkerCoordinator then revokes what the worker runs: it may no longer be a member)."""
        from datetime import timedelta

        from kio.static.primitive import i32, i32Timedelta

        unreachable_since: float | None = None
        while not should_stop():
            if (unreachable_since is not None and on_unreachable is not None
                    and time.monotonic() - unreachable_since >= self.heartbeat_interval_s):
                on_unreachable()
                on_unreachable = None
            try:
                r = self._send(JOIN_GROUP, _request(
                    "join_group.v5", "JoinGroupRequest", group_id=self.group_id,
                    session_timeout=i32Timedelta.parse(timedelta(milliseconds=self.session_timeout_ms)),
                    rebalance_timeout=i32Timedelta.parse(timedelta(milliseconds=self.rebalance_timeout_ms)),
                    member_id=self.member_id, group_instance_id=None, protocol_type=PROTOCOL_TYPE,
                    protocols=tuple(_request("join_group.v5", "JoinGroupRequestProtocol", name=name,
                                             metadata=state.encode(PROTOCOL_VERSIONS[name]))
                                    for name in self.protocols)),
                    timeout_s=self.rebalance_timeout_ms / 1000 + self.request_timeout_s)
            except OSError:
                unreachable_since = unreachable_since or time.monotonic()
                time.sleep(0.2)  # the coordinator moved or went away: look it up again
                continue
            unreachable_since = None
            code = r.error_code.value
            if code == MEMBER_ID_REQUIRED:
                self.member_id = str(r.member_id)
                continue
            if code == UNKNOWN_MEMBER_ID:
                self.member_id = ""
                continue
            if code != NONE:
                time.sleep(0.2)  # REBALANCE_IN_PROGRESS, a coordinator moving: ask again shortly
                continue
            self.member_id, self.generation_id, self.leader_id = str(r.member_id), int(r.generation_id), str(r.leader)
            self.protocol = str(r.protocol_name)
            assignments: tuple[Any, ...] = ()
            if self.leader_id == self.member_id:
                members = {str(m.member_id): WorkerState.decode(bytes(m.metadata)) for m in r.members}
                given = assign(self.leader_id, members)
                assignments = tuple(_request("sync_group.v3", "SyncGroupRequestAssignment", member_id=m,
                                         assignment=a.encode()) for m, a in given.items())
            try:
                s = self._send(SYNC_GROUP, _request(
                    "sync_group.v3", "SyncGroupRequest", group_id=self.group_id,
                    generation_id=i32(self.generation_id), member_id=self.member_id, group_instance_id=None,
                    assignments=assignments), timeout_s=self.rebalance_timeout_ms / 1000 + self.request_timeout_s)
            except OSError:
                continue
            if s.error_code.value == UNKNOWN_MEMBER_ID:
                self.member_id = ""
            if s.error_code.value != NONE:
                continue
            self.last_heartbeat = time.monotonic()
            return Assignment.decode(bytes(s.assignment))
        return None

    def heartbeat_due(self) -> float:
        """Seconds until the next heartbeat is due (0 if it is)."""
        return max(0.0, self.last_heartbeat + self.heartbeat_interval_s - time.monotonic())

    def heartbeat(self) -> None:
        from kio.static.primitive import i32

        self.last_heartbeat = time.monotonic()
        try:
            r = self._send(HEARTBEAT, _request("heartbeat.v3", "HeartbeatRequest", group_id=self.group_id,
                                               generation_id=i32(self.generation_id), member_id=self.member_id,
                                               group_instance_id=None))
        except OSError as e:
            raise RebalanceNeeded(f"heartbeat failed: {e}") from None
        code = r.error_code.value
        if code == UNKNOWN_MEMBER_ID:
            self.member_id = ""
        if code in (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID) or code in _RETRY_COORDINATOR:
            raise RebalanceNeeded(f"heartbeat answered error {code}")

    def leave(self) -> None:
        if not self.member_id:
            return
        try:
            self._send(LEAVE_GROUP, _request("leave_group.v3", "LeaveGroupRequest", group_id=self.group_id,
                                             members=(_request("leave_group.v3", "MemberIdentity",
                                                           member_id=self.member_id, group_instance_id=None),)),
                       timeout_s=5)
        except OSError as e:
            log.info("Could not leave the group (the coordinator forgets this member after the session "
                     "timeout): %s", e)
        finally:
            self.member_id = ""
            self.disconnect()
