"""FindCoordinator (10), JoinGroup (11), SyncGroup (14), Heartbeat (12) and LeaveGroup (13)
called below the socket: the classic group protocol."""

from __future__ import annotations

from typing import Any

import pytest

from tomyum.errors import ErrorCode
from tomyum.testing.handlers import BlockingHarness

FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 10, 11, 12, 13, 14
COVERS = {FIND_COORDINATOR: "FindCoordinator", JOIN_GROUP: "JoinGroup", HEARTBEAT: "Heartbeat",
          LEAVE_GROUP: "LeaveGroup", SYNC_GROUP: "SyncGroup"}


def join_request(group: str = "g", member_id: str = "", protocol_type: str = "consumer",
                 session_timeout: int = 10_000) -> dict[str, Any]:
    return {"group_id": group, "session_timeout": session_timeout, "rebalance_timeout": 10_000,
            "member_id": member_id, "protocol_type": protocol_type,
            "protocols": [{"name": "range", "metadata": b"\x00\x01"}]}


def join(kafka: BlockingHarness, version: int = 7, **kwargs: Any) -> Any:
    """JoinGroup, coming back with the member id the broker asks for (v4+, KIP-394)."""
    r = kafka.call(JOIN_GROUP, version, join_request(**kwargs))
    if r.error_code == ErrorCode.member_id_required:
        r = kafka.call(JOIN_GROUP, version, join_request(**{**kwargs, "member_id": r.member_id}))
    return r


def sync(kafka: BlockingHarness, version: int, member_id: str, generation_id: int,
         assignments: dict[str, bytes] | None = None, group: str = "g") -> Any:
    return kafka.call(SYNC_GROUP, version, {
        "group_id": group, "generation_id": generation_id, "member_id": member_id,
        "protocol_type": "consumer", "protocol_name": "range",
        "assignments": [{"member_id": m, "assignment": a} for m, a in (assignments or {}).items()]})


def stable_member(kafka: BlockingHarness, group: str = "g") -> tuple[str, int]:
    """A member alone in a stable group: (member id, generation id)."""
    joined = join(kafka, group=group)
    sync(kafka, 5, joined.member_id, joined.generation_id, {joined.member_id: b"mine"}, group=group)
    return joined.member_id, joined.generation_id


def heartbeat(kafka: BlockingHarness, version: int, member_id: str, generation_id: int, group: str = "g") -> Any:
    return kafka.call(HEARTBEAT, version, {"group_id": group, "generation_id": generation_id,
                                           "member_id": member_id}).error_code


@pytest.mark.parametrize("version", [0, 6])
def test_find_coordinator_names_this_broker_for_a_group(kafka: BlockingHarness, version: int) -> None:
    r = kafka.call(FIND_COORDINATOR, version, {"key": "g", "key_type": 0, "coordinator_keys": ["g"]})
    found = r.coordinators[0] if version >= 4 else r
    assert (found.error_code, found.node_id) == (ErrorCode.none, kafka.broker.node_id)
    assert (found.host, found.port) == ("127.0.0.1", kafka.broker.listeners[0].port)


def test_find_coordinator_v4_answers_every_key_of_a_batch(kafka: BlockingHarness) -> None:
    r = kafka.call(FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["a", "b"]})
    assert [(c.key, c.error_code) for c in r.coordinators] == [("a", ErrorCode.none), ("b", ErrorCode.none)]


def test_find_coordinator_of_a_transactional_id_names_this_broker(kafka: BlockingHarness) -> None:
    r = kafka.call(FIND_COORDINATOR, 6, {"key_type": 1, "coordinator_keys": ["txn"]})
    assert (r.coordinators[0].error_code, r.coordinators[0].node_id) == (ErrorCode.none, kafka.broker.node_id)


def test_find_coordinator_of_an_unknown_key_type_is_invalid_request(kafka: BlockingHarness) -> None:
    r = kafka.call(FIND_COORDINATOR, 6, {"key_type": 7, "coordinator_keys": ["x"]})
    assert r.coordinators[0].error_code == ErrorCode.invalid_request


@pytest.mark.parametrize("version", [0, 7])
def test_the_first_member_to_join_leads_generation_1(kafka: BlockingHarness, version: int) -> None:
    r = join(kafka, version)
    assert r.error_code == ErrorCode.none
    assert (r.generation_id, r.leader) == (1, r.member_id)
    assert [m.member_id for m in r.members] == [r.member_id]


def test_join_group_v4_without_a_member_id_is_member_id_required_with_an_id(kafka: BlockingHarness) -> None:
    r = kafka.call(JOIN_GROUP, 4, join_request())
    assert r.error_code == ErrorCode.member_id_required
    assert r.member_id


def test_join_group_with_an_unknown_member_id_is_unknown_member_id(kafka: BlockingHarness) -> None:
    stable_member(kafka)
    assert join(kafka, 7, member_id="stranger").error_code == ErrorCode.unknown_member_id


def test_join_group_with_an_empty_group_id_is_invalid_group_id(kafka: BlockingHarness) -> None:
    assert join(kafka, 7, group="").error_code == ErrorCode.invalid_group_id


def test_join_group_with_a_session_timeout_out_of_bounds_is_invalid_session_timeout(kafka: BlockingHarness) -> None:
    too_short = kafka.broker.config["group.min.session.timeout.ms"] - 1
    assert join(kafka, 7, session_timeout=too_short).error_code == ErrorCode.invalid_session_timeout


def test_join_group_with_another_protocol_type_is_inconsistent_group_protocol(kafka: BlockingHarness) -> None:
    stable_member(kafka)
    assert join(kafka, 7, protocol_type="connect").error_code == ErrorCode.inconsistent_group_protocol


@pytest.mark.parametrize("version", [0, 5])
def test_sync_group_hands_each_member_the_leaders_assignment(kafka: BlockingHarness, version: int) -> None:
    joined = join(kafka)
    r = sync(kafka, version, joined.member_id, joined.generation_id, {joined.member_id: b"partitions"})
    assert (r.error_code, r.assignment) == (ErrorCode.none, b"partitions")


@pytest.mark.parametrize("version", [7, 9])
def test_a_static_leader_back_in_a_stable_group_skips_the_assignment_from_v9(kafka: BlockingHarness,
                                                                            version: int) -> None:
    """KIP-814, as Kafka 4.4 answers (checked by the differential harness): no rebalance; from v9
    the restarted leader is told it leads, with the members, and to skip the assignment; before,
    it is told the old leader id (so it never assigns). Its SyncGroup gets the kept assignment."""
    first = kafka.call(JOIN_GROUP, version, {**join_request(), "group_instance_id": "i-1"})
    sync(kafka, 5, first.member_id, first.generation_id, {first.member_id: b"kept"})
    back = kafka.call(JOIN_GROUP, version, {**join_request(), "group_instance_id": "i-1"})
    assert back.error_code == ErrorCode.none and back.member_id != first.member_id
    assert back.generation_id == first.generation_id  # no rebalance
    if version >= 9:
        assert (back.skip_assignment, back.leader) == (True, back.member_id)
        assert [(m.member_id, m.group_instance_id) for m in back.members] == [(back.member_id, "i-1")]
    else:
        assert (back.leader, back.members) == (first.member_id, ())
    r = sync(kafka, 5, back.member_id, back.generation_id, {})  # a leader that skips sends none
    assert (r.error_code, r.assignment) == (ErrorCode.none, b"kept")


def test_sync_group_of_an_old_generation_is_illegal_generation(kafka: BlockingHarness) -> None:
    joined = join(kafka)
    r = sync(kafka, 5, joined.member_id, joined.generation_id + 1, {joined.member_id: b""})
    assert r.error_code == ErrorCode.illegal_generation


def test_sync_group_of_an_unknown_member_is_unknown_member_id(kafka: BlockingHarness) -> None:
    joined = join(kafka)
    assert sync(kafka, 5, "stranger", joined.generation_id).error_code == ErrorCode.unknown_member_id


@pytest.mark.parametrize("version", [0, 4])
def test_heartbeat_of_a_stable_member_is_answered_none(kafka: BlockingHarness, version: int) -> None:
    member_id, generation = stable_member(kafka)
    assert heartbeat(kafka, version, member_id, generation) == ErrorCode.none


def test_heartbeat_of_an_unknown_member_is_unknown_member_id(kafka: BlockingHarness) -> None:
    _, generation = stable_member(kafka)
    assert heartbeat(kafka, 4, "stranger", generation) == ErrorCode.unknown_member_id
    assert heartbeat(kafka, 4, "stranger", 1, group="no-such-group") == ErrorCode.unknown_member_id


def test_heartbeat_of_another_generation_is_illegal_generation(kafka: BlockingHarness) -> None:
    member_id, generation = stable_member(kafka)
    assert heartbeat(kafka, 4, member_id, generation + 1) == ErrorCode.illegal_generation


def rebalance_with_heartbeat(kafka: BlockingHarness, heartbeat_generation_delta: int) -> tuple[Any, Any, Any, int]:
    """A stable member, a newcomer whose JoinGroup starts a rebalance, a heartbeat of the first
    member (generation moved by ``heartbeat_generation_delta``) while the rebalance waits for it,
    then its JoinGroup: (newcomer's join, heartbeat, first member's join, old generation)."""
    first, generation = stable_member(kafka)
    newcomer = kafka.call(JOIN_GROUP, 7, join_request()).member_id  # MEMBER_ID_REQUIRED hands out the id
    group = kafka.broker.groups.groups["g"]

    async def scenario() -> tuple[Any, Any, Any]:
        h = kafka.harness
        second_join = h.start(JOIN_GROUP, 7, join_request(member_id=newcomer))
        await h.until(lambda: group.state.value == "PreparingRebalance", "the rebalance")
        beat = await h.call(HEARTBEAT, 4, {"group_id": "g", "member_id": first,
                                           "generation_id": generation + heartbeat_generation_delta})
        first_join = await h.call(JOIN_GROUP, 7, join_request(member_id=first))
        return await h.bounded(second_join), beat, first_join

    second_join, beat, first_join = kafka.run(scenario())
    return second_join, beat, first_join, generation


def test_a_rebalance_is_announced_by_heartbeat_and_ends_when_every_member_rejoins(kafka: BlockingHarness) -> None:
    second_join, beat, first_join, generation = rebalance_with_heartbeat(kafka, 0)
    assert beat.error_code == ErrorCode.rebalance_in_progress
    assert second_join.error_code == first_join.error_code == ErrorCode.none
    assert second_join.generation_id == first_join.generation_id == generation + 1
    assert {m.member_id for m in first_join.members} == {first_join.member_id, second_join.member_id}


def test_heartbeat_of_another_generation_during_a_rebalance_is_illegal_generation(kafka: BlockingHarness) -> None:
    _, beat, _, _ = rebalance_with_heartbeat(kafka, 5)
    assert beat.error_code == ErrorCode.illegal_generation


@pytest.mark.parametrize("version", [0, 5])
def test_leave_group_removes_the_member(kafka: BlockingHarness, version: int) -> None:
    member_id, _ = stable_member(kafka)
    r = kafka.call(LEAVE_GROUP, version, {"group_id": "g", "member_id": member_id,
                                          "members": [{"member_id": member_id, "group_instance_id": None}]})
    codes = [m.error_code for m in r.members] if version >= 3 else [r.error_code]
    assert r.error_code == ErrorCode.none and codes == [ErrorCode.none]
    assert not kafka.broker.groups.groups["g"].members


@pytest.mark.parametrize("version", [0, 5])
def test_leave_group_of_an_unknown_member_is_unknown_member_id(kafka: BlockingHarness, version: int) -> None:
    stable_member(kafka)
    r = kafka.call(LEAVE_GROUP, version, {"group_id": "g", "member_id": "stranger",
                                          "members": [{"member_id": "stranger", "group_instance_id": None}]})
    assert (r.members[0].error_code if version >= 3 else r.error_code) == ErrorCode.unknown_member_id
