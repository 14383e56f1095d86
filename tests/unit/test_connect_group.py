"""Distributed mode's pure parts: ConnectProtocol v0's bytes (Kafka's ConnectProtocol schemas),
the eager round-robin assignor, and how config-topic records in Kafka's format are read."""

from __future__ import annotations

import struct

import pytest

from tomyum.connect.distributed import ConfigState
from tomyum.connect.group import Assignment, WorkerState, assign_eager
from tomyum.connect.worker import TargetState

pytestmark = pytest.mark.timeout(10)


def _str(s: str) -> bytes:
    return struct.pack(">h", len(s)) + s.encode()


def test_worker_state_is_connect_protocol_v0() -> None:
    state = WorkerState(url="http://w1:8083/", config_offset=7)
    assert state.encode() == struct.pack(">h", 0) + _str("http://w1:8083/") + struct.pack(">q", 7)
    assert WorkerState.decode(state.encode()) == state


def test_assignment_is_connect_protocol_v0_with_connector_task_minus_one() -> None:
    a = Assignment(error=0, leader="m1", leader_url="http://w1:8083/", config_offset=12,
                   connectors=("a",), tasks=(("a", 0), ("b", 1)))
    expected = (struct.pack(">hh", 0, 0) + _str("m1") + _str("http://w1:8083/") + struct.pack(">q", 12)
                + struct.pack(">i", 2)
                + _str("a") + struct.pack(">iii", 2, -1, 0)
                + _str("b") + struct.pack(">ii", 1, 1))
    assert a.encode() == expected
    assert Assignment.decode(expected) == a


def test_eager_assignor_round_robin_over_sorted_members() -> None:
    members = {"m2": WorkerState(url="http://w2/", config_offset=3), "m1": WorkerState(url="http://w1/", config_offset=3)}
    given = assign_eager("m1", members, 3, ["c2", "c1", "c3"], [("c1", 0), ("c2", 0), ("c3", 0)])
    assert given["m1"].connectors == ("c1", "c3") and given["m2"].connectors == ("c2",)
    assert given["m1"].tasks == (("c2", 0),) and given["m2"].tasks == (("c1", 0), ("c3", 0))
    assert {a.leader_url for a in given.values()} == {"http://w1/"}
    every = [t for a in given.values() for t in a.tasks]
    assert sorted(every) == [("c1", 0), ("c2", 0), ("c3", 0)]


def test_config_records_in_kafkas_format() -> None:
    state = ConfigState()
    assert state.apply("target-state-s", {"state": "PAUSED", "state.v2": "STOPPED"}) == ("target", "s")
    assert state.apply("connector-s", {"properties": {"name": "s", "tasks.max": "2"}}) == ("connector", "s")
    assert state.targets["s"] is TargetState.STOPPED  # state.v2 wins over the pre-KIP-875 "state"
    assert state.apply("task-s-0", {"properties": {"t": "0"}}) is None
    assert state.apply("task-s-1", {"properties": {"t": "1"}}) is None
    assert state.tasks.get("s") is None  # task configs count only once committed
    assert state.apply("commit-s", {"tasks": 2}) == ("commit", "s")
    assert state.tasks["s"] == [{"t": "0"}, {"t": "1"}]
    state.apply("target-state-old", {"state": "PAUSED"})  # a record written by an older Kafka worker
    assert state.targets["old"] is TargetState.PAUSED
    kind, name = state.apply("restart-connector-s", {"include-tasks": True, "only-failed": False}) or ("", "")
    assert kind.startswith("restart:") and name == "s"
    assert state.apply("session-key", {"key": "x", "algorithm": "HmacSHA256", "creation-timestamp": 1}) is None
    state.apply("connector-s", None)
    assert "s" not in state.configs and "s" not in state.tasks


def test_worker_state_v1_carries_the_current_assignment_as_nullable_bytes() -> None:
    current = Assignment(error=0, leader="m1", leader_url="http://w1/", config_offset=5, connectors=("a",),
                         tasks=(("a", 0),), version=1)
    state = WorkerState(url="http://w2/", config_offset=5, assignment=current)
    allocation = (struct.pack(">hh", 1, 0) + _str("m1") + _str("http://w1/") + struct.pack(">q", 5)
                  + struct.pack(">i", 1) + _str("a") + struct.pack(">iii", 2, -1, 0)
                  + struct.pack(">i", 0) + struct.pack(">i", 0))  # no revocations, no delay
    encoded = state.encode(1)
    assert encoded == (struct.pack(">h", 1) + _str("http://w2/") + struct.pack(">q", 5)
                       + struct.pack(">i", len(allocation)) + allocation)
    assert WorkerState.decode(encoded) == state
    fresh = WorkerState(url="http://w3/", config_offset=-1)  # no assignment yet: a null allocation
    assert fresh.encode(1) == struct.pack(">h", 1) + _str("http://w3/") + struct.pack(">qi", -1, -1)
    assert WorkerState.decode(fresh.encode(1)) == fresh
    assert WorkerState.decode(state.encode(0)) == WorkerState(url="http://w2/", config_offset=5)


def test_assignment_v1_adds_revoked_and_delay_and_tolerates_missing_fields() -> None:
    a = Assignment(error=0, leader="m1", leader_url="http://w1/", config_offset=9, connectors=(), tasks=(("b", 2),),
                   revoked_connectors=("a",), revoked_tasks=(("a", 0),), delay=3000, version=2)
    head = struct.pack(">hh", 2, 0) + _str("m1") + _str("http://w1/") + struct.pack(">q", 9)
    expected = (head + struct.pack(">i", 1) + _str("b") + struct.pack(">ii", 1, 2)
                + struct.pack(">i", 1) + _str("a") + struct.pack(">iii", 2, -1, 0) + struct.pack(">i", 3000))
    assert a.encode() == expected
    assert Assignment.decode(expected) == a
    # null arrays (-1) and a missing delay read as empty and 0, as Kafka's schema defaults them
    sparse = Assignment.decode(head + struct.pack(">ii", -1, -1))
    assert (sparse.tasks, sparse.revoked_tasks, sparse.delay, sparse.version) == ((), (), 0, 2)


def test_connect_protocol_offers_kafkas_order_and_rejects_unknown_modes() -> None:
    from tomyum.connect.connector import ConnectError
    from tomyum.connect.group import protocols_for

    assert protocols_for("compatible") == ("compatible", "default")
    assert protocols_for(" EAGER ") == ("default",)
    assert protocols_for("sessioned") == ("compatible", "default")  # unsigned: falls back, with a warning
    with pytest.raises(ConnectError, match="Invalid value fancy for configuration connect.protocol"):
        protocols_for("fancy")


def test_an_unreachable_coordinator_is_reported_once_after_the_heartbeat_interval() -> None:
    import socket
    import time

    from tomyum.connect.group import WorkerGroupMember

    with socket.socket() as closed:  # a port nobody listens on: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    member = WorkerGroupMember(bootstrap_servers=f"127.0.0.1:{port}", group_id="g", url="http://w/",
                               session_timeout_ms=6000, rebalance_timeout_ms=6000, heartbeat_interval_ms=300,
                               client_id="c", protocols=("compatible", "default"), request_timeout_s=1)
    calls: list[float] = []
    start = time.monotonic()
    deadline = start + 1
    got = member.join(WorkerState(url="http://w/", config_offset=-1), lambda leader, members: {},
                      lambda: time.monotonic() > deadline, lambda: calls.append(time.monotonic() - start))
    assert got is None and len(calls) == 1 and calls[0] >= 0.3
