"""ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe (69) called below the socket: the
consumer group protocol of KIP-848."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tomyum.errors import ErrorCode
from tomyum.testing.handlers import BlockingHarness

JOIN_GROUP, SYNC_GROUP, CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE = 11, 14, 68, 69
COVERS = {CONSUMER_GROUP_HEARTBEAT: "ConsumerGroupHeartbeat", CONSUMER_GROUP_DESCRIBE: "ConsumerGroupDescribe"}


def heartbeat(kafka: BlockingHarness, version: int, *, member_id: str = "", epoch: int = 0,
              topics: list[str] | None = None, group: str = "g", assignor: str | None = None) -> Any:
    return kafka.call(CONSUMER_GROUP_HEARTBEAT, version, {
        "group_id": group, "member_id": member_id, "member_epoch": epoch, "instance_id": None, "rack_id": None,
        "rebalance_timeout": 30_000, "subscribed_topic_names": topics, "server_assignor": assignor,
        "topic_partitions": [] if epoch == 0 else None})


def join(kafka: BlockingHarness, version: int, group: str = "g", topics: tuple[str, ...] = ("t",)) -> Any:
    member_id = "" if version == 0 else str(uuid.uuid4())  # v1 (KIP-1082): the client names itself
    return heartbeat(kafka, version, member_id=member_id, topics=list(topics), group=group)


@pytest.mark.parametrize("version", [0, 1])
def test_a_joining_member_gets_an_epoch_and_every_partition_of_its_topics(kafka: BlockingHarness,
                                                                         version: int) -> None:
    kafka.create_topic("t", 3)
    r = join(kafka, version)
    assert (r.error_code, r.member_epoch >= 1) == (ErrorCode.none, True)
    assert r.member_id and r.heartbeat_interval.total_seconds() > 0
    (assigned,) = r.assignment.topic_partitions
    assert assigned.topic_id == kafka.broker.metadata.topics()["t"].topic_id
    assert sorted(assigned.partitions) == [0, 1, 2]


def test_a_member_heartbeating_with_its_epoch_stays_in_the_group(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    joined = join(kafka, 1)
    r = heartbeat(kafka, 1, member_id=joined.member_id, epoch=joined.member_epoch)
    assert (r.error_code, r.member_epoch) == (ErrorCode.none, joined.member_epoch)


def test_a_heartbeat_of_an_unknown_member_is_unknown_member_id(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    join(kafka, 1)
    assert heartbeat(kafka, 1, member_id=str(uuid.uuid4()), epoch=3).error_code == ErrorCode.unknown_member_id


def test_a_heartbeat_with_a_wrong_member_epoch_is_fenced_member_epoch(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    joined = join(kafka, 1)
    r = heartbeat(kafka, 1, member_id=joined.member_id, epoch=joined.member_epoch + 7)
    assert r.error_code == ErrorCode.fenced_member_epoch


def test_a_member_leaves_with_epoch_minus_one(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    joined = join(kafka, 1)
    r = heartbeat(kafka, 1, member_id=joined.member_id, epoch=-1)
    assert (r.error_code, r.member_epoch) == (ErrorCode.none, -1)
    assert not kafka.broker.consumer_groups.state.groups["g"].members


def test_a_heartbeat_naming_an_unknown_server_assignor_is_unsupported_assignor(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    r = heartbeat(kafka, 1, member_id=str(uuid.uuid4()), topics=["t"], assignor="no-such-assignor")
    assert r.error_code == ErrorCode.unsupported_assignor


def test_a_heartbeat_to_a_classic_group_with_members_is_group_id_not_found(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    kafka.call(JOIN_GROUP, 3, {"group_id": "classic", "session_timeout": 10_000, "rebalance_timeout": 10_000,
                               "member_id": "", "protocol_type": "consumer",
                               "protocols": [{"name": "range", "metadata": b""}]})
    assert join(kafka, 1, group="classic").error_code == ErrorCode.group_id_not_found


@pytest.mark.parametrize("version", [0, 1])
def test_consumer_group_describe_describes_members_and_their_assignments(kafka: BlockingHarness,
                                                                        version: int) -> None:
    kafka.create_topic("t", 2)
    joined = join(kafka, 1)
    (g,) = kafka.call(CONSUMER_GROUP_DESCRIBE, version, {"group_ids": ["g"],
                                                         "include_authorized_operations": False}).groups
    assert (g.error_code, g.group_id, g.group_epoch >= 1) == (ErrorCode.none, "g", True)
    (m,) = g.members
    assert (m.member_id, m.member_epoch, m.subscribed_topic_names) == (joined.member_id, joined.member_epoch, ("t",))
    assert [(tp.topic_name, sorted(tp.partitions)) for tp in m.assignment.topic_partitions] == [("t", [0, 1])]


def test_consumer_group_describe_of_an_unknown_group_is_group_id_not_found(kafka: BlockingHarness) -> None:
    (g,) = kafka.call(CONSUMER_GROUP_DESCRIBE, 1, {"group_ids": ["nobody"], "include_authorized_operations": True}).groups
    assert g.error_code == ErrorCode.group_id_not_found
    # Kafka's answer: the error and defaults, no state nor operations (the differential harness)
    assert (g.group_state, g.group_epoch, g.assignment_epoch, g.authorized_operations) == ("", 0, 0, -2147483648)


def test_a_first_heartbeat_without_a_subscription_is_invalid_request(kafka: BlockingHarness) -> None:
    assert heartbeat(kafka, 1, member_id=str(uuid.uuid4()), topics=None).error_code == ErrorCode.invalid_request


def test_a_heartbeat_v1_without_a_member_id_is_invalid_request(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    assert heartbeat(kafka, 1, member_id="", topics=["t"]).error_code == ErrorCode.invalid_request
