"""ListGroups (16), DescribeGroups (15), DeleteGroups (42) and OffsetDelete (47) called below the socket."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from tomyum.errors import ErrorCode
from tomyum.testing.handlers import BlockingHarness

OFFSET_COMMIT, OFFSET_FETCH, JOIN_GROUP, SYNC_GROUP = 8, 9, 11, 14
DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS, OFFSET_DELETE = 15, 16, 42, 47
COVERS = {DESCRIBE_GROUPS: "DescribeGroups", LIST_GROUPS: "ListGroups", DELETE_GROUPS: "DeleteGroups",
          OFFSET_DELETE: "OffsetDelete"}


def subscription(*topics: str) -> bytes:
    """A consumer protocol subscription (version 0): the topics, no user data."""
    out = struct.pack(">hi", 0, len(topics))
    for t in topics:
        out += struct.pack(">h", len(t)) + t.encode()
    return out + struct.pack(">i", -1)


def member(kafka: BlockingHarness, group: str, *topics: str) -> str:
    """A member alone in a stable ``group``, subscribed to ``topics``."""
    joined = kafka.call(JOIN_GROUP, 3, {"group_id": group, "session_timeout": 10_000, "rebalance_timeout": 10_000,
                                        "member_id": "", "protocol_type": "consumer",
                                        "protocols": [{"name": "range", "metadata": subscription(*topics)}]})
    kafka.call(SYNC_GROUP, 3, {"group_id": group, "generation_id": joined.generation_id,
                               "member_id": joined.member_id,
                               "assignments": [{"member_id": joined.member_id, "assignment": b"a"}]})
    return str(joined.member_id)


def committed(kafka: BlockingHarness, group: str, topic: str, offset: int = 1) -> None:
    r = kafka.call(OFFSET_COMMIT, 8, {"group_id": group, "generation_id": -1, "member_id": "", "topics": [
        {"name": topic, "partitions": [{"partition_index": 0, "committed_offset": offset}]}]})
    assert r.topics[0].partitions[0].error_code == ErrorCode.none


def committed_offset(kafka: BlockingHarness, group: str, topic: str) -> int:
    r = kafka.call(OFFSET_FETCH, 7, {"group_id": group, "topics": [{"name": topic, "partition_indexes": [0]}]})
    return int(r.topics[0].partitions[0].committed_offset)


@pytest.mark.parametrize("version", [0, 5])
def test_list_groups_lists_live_groups_and_groups_known_by_their_offsets(kafka: BlockingHarness,
                                                                        version: int) -> None:
    kafka.create_topic("t")
    member(kafka, "live", "t")
    committed(kafka, "offsets-only", "t")
    r = kafka.call(LIST_GROUPS, version, {"states_filter": [], "types_filter": []})
    assert r.error_code == ErrorCode.none
    groups = {g.group_id: g for g in r.groups}
    assert set(groups) == {"live", "offsets-only"}
    if version >= 4:
        assert (groups["live"].group_state, groups["offsets-only"].group_state) == ("Stable", "Empty")
    if version >= 5:
        assert groups["live"].group_type == "classic"


def test_list_groups_v4_filters_by_state(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    member(kafka, "live", "t")
    committed(kafka, "offsets-only", "t")
    r = kafka.call(LIST_GROUPS, 4, {"states_filter": ["Empty"]})
    assert [g.group_id for g in r.groups] == ["offsets-only"]


@pytest.mark.parametrize("version", [0, 5])
def test_describe_groups_describes_a_stable_group_and_its_members(kafka: BlockingHarness, version: int) -> None:
    member_id = member(kafka, "g", "t")
    (g,) = kafka.call(DESCRIBE_GROUPS, version, {"groups": ["g"], "include_authorized_operations": False}).groups
    assert (g.error_code, g.group_state, g.protocol_type, g.protocol_data) == (
        ErrorCode.none, "Stable", "consumer", "range")
    assert [(m.member_id, m.member_assignment) for m in g.members] == [(member_id, b"a")]
    assert g.members[0].member_metadata == subscription("t")
    assert g.members[0].client_host == "/127.0.0.1"  # the address as Kafka shows it, without the port


def test_describe_groups_of_an_unknown_group_answers_dead(kafka: BlockingHarness) -> None:
    (g,) = kafka.call(DESCRIBE_GROUPS, 5, {"groups": ["nobody"]}).groups
    assert (g.error_code, g.group_state, g.members) == (ErrorCode.none, "Dead", ())


def test_describe_groups_v6_of_an_unknown_group_is_group_id_not_found(kafka: BlockingHarness) -> None:
    """KIP-1043, as Kafka 4.4 answers (checked by the differential harness): an error and a
    message, no authorized operations."""
    (g,) = kafka.call(DESCRIBE_GROUPS, 6, {"groups": ["nobody"], "include_authorized_operations": True}).groups
    assert (g.error_code, g.error_message, g.group_state) == (ErrorCode.group_id_not_found,
                                                              "Group nobody not found.", "Dead")
    assert g.authorized_operations == -2**31


def delete_groups(kafka: BlockingHarness, version: int, *groups: str) -> dict[str, ErrorCode]:
    return {r.group_id: r.error_code for r in kafka.call(DELETE_GROUPS, version, {"groups_names": list(groups)}).results}


@pytest.mark.parametrize("version", [0, 2])
def test_delete_groups_deletes_an_empty_group_and_its_offsets(kafka: BlockingHarness, version: int) -> None:
    kafka.create_topic("t")
    committed(kafka, "g", "t", 5)
    assert delete_groups(kafka, version, "g") == {"g": ErrorCode.none}
    assert committed_offset(kafka, "g", "t") == -1
    assert kafka.call(LIST_GROUPS, 4, {}).groups == ()


def test_delete_groups_of_a_group_with_members_is_non_empty_group(kafka: BlockingHarness) -> None:
    member(kafka, "g", "t")
    assert delete_groups(kafka, 2, "g") == {"g": ErrorCode.non_empty_group}


def test_delete_groups_of_an_unknown_group_is_group_id_not_found(kafka: BlockingHarness) -> None:
    assert delete_groups(kafka, 2, "nobody") == {"nobody": ErrorCode.group_id_not_found}


def offset_delete(kafka: BlockingHarness, group: str, topic: str) -> Any:
    return kafka.call(OFFSET_DELETE, 0, {"group_id": group, "topics": [
        {"name": topic, "partitions": [{"partition_index": 0}]}]})


def test_offset_delete_deletes_the_committed_offsets_of_an_empty_group(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    committed(kafka, "g", "t", 5)
    r = offset_delete(kafka, "g", "t")
    assert (r.error_code, r.topics[0].partitions[0].error_code) == (ErrorCode.none, ErrorCode.none)
    assert committed_offset(kafka, "g", "t") == -1


def test_offset_delete_of_a_topic_the_members_subscribe_to_is_group_subscribed_to_topic(
        kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    committed(kafka, "g", "t", 5)
    member(kafka, "g", "t")
    assert offset_delete(kafka, "g", "t").topics[0].partitions[0].error_code == ErrorCode.group_subscribed_to_topic
    assert committed_offset(kafka, "g", "t") == 5


def test_offset_delete_of_an_unknown_group_is_group_id_not_found(kafka: BlockingHarness) -> None:
    assert offset_delete(kafka, "nobody", "t").error_code == ErrorCode.group_id_not_found
