"""The consumer group protocol of KIP-848 with confluent-kafka (``group.protocol=consumer``):
the broker assigns; members reconcile incrementally — a partition moves only once its owner
revoked it, and members that keep theirs see no revocation at all."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupType, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import BrokerWith
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until

TIMEOUT = 30


@pytest.fixture
def kbroker(broker_with: BrokerWith) -> Iterator[BrokerProcess | ExternalBroker]:
    with broker_with({"group.consumer.heartbeat.interval.ms": "500"}) as b:
        yield b


def send(bootstrap: str, topic: str, start: int, end: int, partitions: int = 2) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(start, end):
        p.produce(topic, value=f"m{i}".encode(), partition=i % partitions)
    assert p.flush(TIMEOUT) == 0


class Member:
    """A confluent-kafka consumer of the new protocol, with what it was given and revoked."""

    def __init__(self, bootstrap: str, group: str, topic: str, **extra: object) -> None:
        self.events: list[tuple[str, list[int]]] = []
        self.got: list[tuple[int, int, bytes]] = []
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False, **extra})
        self.consumer.subscribe(
            [topic], on_assign=lambda c, ps: self.events.append(("assign", sorted(p.partition for p in ps))),
            on_revoke=lambda c, ps: self.events.append(("revoke", sorted(p.partition for p in ps))))

    def poll(self) -> None:
        m = self.consumer.poll(0.05)
        if m is not None and m.error() is None:
            self.got.append((m.partition(), m.offset(), m.value()))
            self.consumer.commit(m, asynchronous=False)

    def partitions(self) -> list[int]:
        return sorted(tp.partition for tp in self.consumer.assignment())

    def offsets(self, partition: int) -> list[int]:
        return [o for p, o, _ in self.got if p == partition]


def settle(members: list[Member], want: list[list[int]], what: str) -> None:
    def done() -> bool:
        for m in members:
            m.poll()
        return sorted(m.partitions() for m in members) == sorted(want)

    wait_until(done, TIMEOUT, interval=0, what=what)


def test_members_split_a_third_waits_and_takes_over_when_one_leaves(kbroker: BrokerProcess, topic_name: str) -> None:
    admin = AdminClient({"bootstrap.servers": kbroker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(TIMEOUT)
    a, b = Member(kbroker.bootstrap, "kip848", topic_name), Member(kbroker.bootstrap, "kip848", topic_name)
    members = [a, b]
    try:
        settle(members, [[0], [1]], "one partition each")
        send(kbroker.bootstrap, topic_name, 0, 20)
        wait_until(lambda: [m.poll() for m in members] and len(a.got) + len(b.got) == 20, TIMEOUT, interval=0,
                   what="the first 20 records")
        revokes_before = [e for m in members for e in m.events if e[0] == "revoke"]
        c = Member(kbroker.bootstrap, "kip848", topic_name)
        members.append(c)

        def three_stable() -> bool:
            for m in members:
                m.poll()
            g = admin.describe_consumer_groups(["kip848"])["kip848"].result(TIMEOUT)
            return len(g.members) == 3 and g.state == ConsumerGroupState.STABLE

        wait_until(three_stable, TIMEOUT, interval=0.1, what="three members, stable")
        # two partitions for three: the newcomer waits, and nobody gave anything up
        assert c.partitions() == [] and sorted(a.partitions() + b.partitions()) == [0, 1]
        assert [e for m in members for e in m.events if e[0] == "revoke"] == revokes_before

        leaving = a.partitions()[0]
        a.consumer.close()  # leaves the group (member epoch -1): its partition goes to the newcomer
        members.remove(a)
        settle(members, [[0], [1]], "the newcomer owning the partition of the member that left")
        assert c.partitions() == [leaving]
        send(kbroker.bootstrap, topic_name, 20, 40)
        wait_until(lambda: [m.poll() for m in members] and len(c.got) + len(b.got) == 30, TIMEOUT, interval=0,
                   what="the next 20 records")
        # the newcomer resumed exactly after what the leaver committed: nothing lost, nothing twice
        assert c.offsets(leaving) == list(range(10, 20))
        assert sorted(v for m in (a, b, c) for _, _, v in m.got) == sorted(f"m{i}".encode() for i in range(40))

        described = admin.describe_consumer_groups(["kip848"])["kip848"].result(TIMEOUT)
        assert described.type == ConsumerGroupType.CONSUMER and len(described.members) == 2
        listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
        assert {g.group_id: g.type for g in listed.valid}["kip848"] == ConsumerGroupType.CONSUMER
    finally:
        for m in members:
            m.consumer.close()


def test_a_static_member_comes_back_to_its_partition_without_a_rebalance(
        kbroker: BrokerProcess, topic_name: str) -> None:
    admin = AdminClient({"bootstrap.servers": kbroker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(TIMEOUT)

    def member(instance: str) -> Member:
        return Member(kbroker.bootstrap, "kip848-static", topic_name, **{"group.instance.id": instance})

    stayer, leaver = member("stayer"), member("leaver")
    members = [stayer, leaver]
    try:
        settle(members, [[0], [1]], "one partition each")
        before = admin.describe_consumer_groups(["kip848-static"])["kip848-static"].result(TIMEOUT)
        partition, events = leaver.partitions(), list(stayer.events)
        leaver.consumer.close()  # a static member leaves for now (member epoch -2): its place is kept
        members.remove(leaver)
        again = member("leaver")
        members.append(again)
        settle(members, [[0], [1]], "the static member back")
        assert again.partitions() == partition
        for _ in range(10):
            stayer.poll()
        assert stayer.events == events, "the other member saw a rebalance"
        after = admin.describe_consumer_groups(["kip848-static"])["kip848-static"].result(TIMEOUT)
        assert {m.group_instance_id for m in after.members} == {"stayer", "leaver"}
        assert {m.member_id for m in after.members} != {m.member_id for m in before.members}
    finally:
        for m in members:
            m.consumer.close()


def test_commits_and_fetches_carry_the_member_epoch(kbroker: BrokerProcess, topic_name: str) -> None:
    """OffsetCommit v9 and OffsetFetch v9 carry the member epoch (read here with
    ConsumerGroupDescribe): the current one is served, another is STALE_MEMBER_EPOCH (113),
    an unknown member UNKNOWN_MEMBER_ID (25); a member of this protocol committing below v9
    is UNSUPPORTED_VERSION (35)."""
    from typing import Any

    from kio.schema.consumer_group_describe.v1 import request as cgd
    from kio.schema.offset_commit.v8 import request as oc8
    from kio.schema.offset_commit.v9 import request as oc9
    from kio.schema.offset_fetch.v9 import request as of9

    from tests.integration.test_bad_input import connect, decode_response, kio_request, read_frame

    admin = AdminClient({"bootstrap.servers": kbroker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
    m = Member(kbroker.bootstrap, "kip848-epochs", topic_name)
    try:
        settle([m], [[0]], "the partition")
        with connect(kbroker) as s:
            def call(api_key: int, version: int, body: object) -> Any:
                s.sendall(kio_request(api_key, version, 1, body))
                return decode_response(api_key, version, read_frame(s))

            group = call(69, 1, cgd.ConsumerGroupDescribeRequest(
                group_ids=("kip848-epochs",), include_authorized_operations=False)).groups[0]
            assert group.error_code == 0 and group.group_state == "Stable" and len(group.members) == 1
            member = group.members[0]
            assert [p for tp in member.assignment.topic_partitions for p in tp.partitions] == [0]
            assert member.assignment.topic_partitions[0].topic_name == topic_name

            def commit(module: Any, version: int, member_id: str, epoch: int) -> int:
                answer = call(8, version, module.OffsetCommitRequest(
                    group_id="kip848-epochs", generation_id_or_member_epoch=epoch, member_id=member_id,
                    topics=(module.OffsetCommitRequestTopic(name=topic_name, partitions=(
                        module.OffsetCommitRequestPartition(partition_index=0, committed_offset=7,
                                                            committed_metadata=""),)),)))
                return int(answer.topics[0].partitions[0].error_code)

            def fetch(member_id: str, epoch: int) -> Any:
                return call(9, 9, of9.OffsetFetchRequest(groups=(of9.OffsetFetchRequestGroup(
                    group_id="kip848-epochs", member_id=member_id, member_epoch=epoch,
                    topics=(of9.OffsetFetchRequestTopics(name=topic_name, partition_indexes=(0,)),)),))).groups[0]

            epoch, member_id = member.member_epoch, member.member_id
            assert commit(oc9, 9, member_id, epoch) == 0
            assert commit(oc9, 9, member_id, epoch + 1) == 113
            assert commit(oc9, 9, "nobody", epoch) == 25
            assert commit(oc8, 8, member_id, epoch) == 35
            fetched = fetch(member_id, epoch)
            assert fetched.error_code == 0 and fetched.topics[0].partitions[0].committed_offset == 7
            assert fetch(member_id, epoch + 1).error_code == 113
            missing = call(69, 1, cgd.ConsumerGroupDescribeRequest(group_ids=("no-such-group",),
                                                                   include_authorized_operations=False))
            assert missing.groups[0].error_code == 69  # GROUP_ID_NOT_FOUND: clients fall back to DescribeGroups
    finally:
        m.consumer.close()


MEMBER = """
import sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[3], "group.protocol": "consumer",
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([sys.argv[2]])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    m = c.poll(0.05)
    if m is not None and m.error() is None:
        c.commit(m, asynchronous=False)
        print("committed", m.partition(), m.offset() + 1, flush=True)
"""


@pytest.mark.slow
def test_a_killed_member_is_fenced_after_its_session_timeout(tmp_path: Path, topic_name: str) -> None:
    """No leave heartbeat from a member killed with SIGKILL: the broker fences it when
    group.consumer.session.timeout.ms passes, and the survivor resumes after its commits."""
    import subprocess
    import sys

    settings = {"group.consumer.heartbeat.interval.ms": "500", "group.consumer.session.timeout.ms": "4000"}
    with BrokerProcess(tmp_path / "data", settings=settings) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(TIMEOUT)
        survivor = Member(broker.bootstrap, "kip848-crash", topic_name)
        victim = subprocess.Popen([sys.executable, "-c", MEMBER, broker.bootstrap, topic_name, "kip848-crash"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: survivor.poll() or len(survivor.partitions()) == 1, TIMEOUT, interval=0,
                       what="the partitions split with the victim")
            theirs = 1 - survivor.partitions()[0]
            send(broker.bootstrap, topic_name, 0, 20)
            assert victim.stdout is not None
            for line in victim.stdout:  # ends with the child, whose own deadline is 60 s
                if line.split() == ["committed", str(theirs), "10"]:
                    break
            else:
                raise AssertionError("the victim ended before committing its 10 records")
            victim.kill()
            victim.wait(TIMEOUT)
            killed_at = time.monotonic()
            wait_until(lambda: survivor.poll() or survivor.partitions() == [0, 1], TIMEOUT, interval=0,
                       what="the survivor owning both partitions")
            assert 4 - 1 < time.monotonic() - killed_at < 4 + 5  # fenced by the session timeout, not before
            send(broker.bootstrap, topic_name, 20, 40)
            wait_until(lambda: survivor.poll() or len(survivor.offsets(theirs)) == 10, TIMEOUT, interval=0,
                       what="the survivor reading the victim's partition")
            assert survivor.offsets(theirs) == list(range(10, 20))
            assert "missed its session timeout" in broker.output()
        finally:
            victim.kill()
            victim.wait(TIMEOUT)
            victim.stdout.close()  # type: ignore[union-attr]
            survivor.consumer.close()


@pytest.mark.tomyum_only(reason="no KIP-848 online migration: a classic group with members is not converted "
                                "by a consumer-protocol heartbeat (Kafka 4 converts it)")
def test_classic_and_consumer_groups_do_not_share_an_id(kbroker: BrokerProcess, topic_name: str) -> None:
    """Without Kafka's online migration: a KIP-848 heartbeat for a classic group with members
    is GROUP_ID_NOT_FOUND; a JoinGroup for a consumer group with members is
    INCONSISTENT_GROUP_PROTOCOL."""
    import datetime

    from kio.schema.consumer_group_heartbeat.v1 import request as cgh
    from kio.schema.join_group.v5 import request as jg

    from tests.integration.test_bad_input import connect, decode_response, kio_request, read_frame

    admin = AdminClient({"bootstrap.servers": kbroker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
    classic = Consumer({"bootstrap.servers": kbroker.bootstrap, "group.id": "classic-one"})
    classic.subscribe([topic_name])
    modern = Member(kbroker.bootstrap, "modern-one", topic_name)
    try:
        wait_until(lambda: classic.poll(0.05) is None and bool(classic.assignment()), TIMEOUT, interval=0,
                   what="the classic member assigned")
        settle([modern], [[0]], "the modern member assigned")
        with connect(kbroker) as s:
            s.sendall(kio_request(68, 1, 1, cgh.ConsumerGroupHeartbeatRequest(
                group_id="classic-one", member_id="intruder", member_epoch=0,
                rebalance_timeout=datetime.timedelta(seconds=10), subscribed_topic_names=(topic_name,),
                topic_partitions=())))
            assert decode_response(68, 1, read_frame(s)).error_code == 69  # type: ignore[attr-defined]
            s.sendall(kio_request(11, 5, 2, jg.JoinGroupRequest(
                group_id="modern-one", session_timeout=datetime.timedelta(seconds=10),
                rebalance_timeout=datetime.timedelta(seconds=10), member_id="", protocol_type="consumer",
                protocols=(jg.JoinGroupRequestProtocol(name="range", metadata=b""),))))
            assert decode_response(11, 5, read_frame(s)).error_code == 23  # type: ignore[attr-defined]
    finally:
        classic.close()
        modern.consumer.close()


@pytest.mark.restarts_broker
def test_a_consumer_group_survives_a_broker_restart_without_a_rebalance(kbroker: BrokerProcess,
                                                                        topic_name: str) -> None:
    admin = AdminClient({"bootstrap.servers": kbroker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(TIMEOUT)
    a, b = Member(kbroker.bootstrap, "durable", topic_name), Member(kbroker.bootstrap, "durable", topic_name)
    members = [a, b]
    try:
        settle(members, [[0], [1]], "one partition each")
        before = describe(admin, "durable")
        events_before = [list(m.events) for m in members]
        kbroker.restart()
        assert "restored 1 consumer groups (2 members)" in kbroker.output()
        send(kbroker.bootstrap, topic_name, 0, 10)
        wait_until(lambda: [m.poll() for m in members] and len(a.got) + len(b.got) == 10, TIMEOUT, interval=0,
                   what="the records produced after the restart")
        after = describe(AdminClient({"bootstrap.servers": kbroker.bootstrap}), "durable")
        assert after == before  # the same members with the same epochs and partitions
        assert [m.events for m in members] == events_before  # nothing revoked or assigned again
        assert sorted(m.partitions() for m in members) == [[0], [1]]
    finally:
        for m in members:
            m.consumer.close()


def describe(admin: AdminClient, group: str) -> list[tuple[str, list[int]]]:
    d = admin.describe_consumer_groups([group])[group].result(TIMEOUT)
    return sorted((m.member_id, sorted(tp.partition for tp in m.assignment.topic_partitions)) for m in d.members)


@pytest.mark.restarts_broker
def test_a_classic_join_converts_an_empty_consumer_group(kbroker: BrokerProcess, topic_name: str) -> None:
    """Kafka converts an empty consumer group (KIP-848) that a classic member joins into a
    classic group: afterwards one group of that id exists, classic, and it stays so after a
    restart (the consumer group's removal was stored)."""
    admin = AdminClient({"bootstrap.servers": kbroker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
    modern = Member(kbroker.bootstrap, "turns-classic", topic_name)
    settle([modern], [[0]], "the consumer-protocol member assigned")
    modern.consumer.close()

    def groups() -> list[tuple[str, ConsumerGroupType]]:
        listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
        return [(g.group_id, g.type) for g in listed.valid if g.group_id == "turns-classic"]

    wait_until(lambda: groups() == [("turns-classic", ConsumerGroupType.CONSUMER)], TIMEOUT,
               what="the consumer group, empty")
    classic = Consumer({"bootstrap.servers": kbroker.bootstrap, "group.id": "turns-classic"})
    classic.subscribe([topic_name])
    try:
        wait_until(lambda: classic.poll(0.05) is None and bool(classic.assignment()), TIMEOUT, interval=0,
                   what="the classic member assigned")
        assert groups() == [("turns-classic", ConsumerGroupType.CLASSIC)]
    finally:
        classic.close()
    kbroker.restart()
    admin = AdminClient({"bootstrap.servers": kbroker.bootstrap})
    assert groups() == [("turns-classic", ConsumerGroupType.CLASSIC)]


def test_a_consumer_protocol_member_commits_offsets_in_a_transaction(kbroker: BrokerProcess, topic_name: str) -> None:
    """TxnOffsetCommit by a member of a KIP-848 group is checked against that group (its
    member epoch), not against the classic coordinator, which does not know the member."""
    admin = AdminClient({"bootstrap.servers": kbroker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
    send(kbroker.bootstrap, topic_name, 0, 3, partitions=1)
    member = Member(kbroker.bootstrap, "txn-848", topic_name)
    producer = Producer({"bootstrap.servers": kbroker.bootstrap, "transactional.id": "txn-848-tid"})
    try:
        wait_until(lambda: member.poll() or len(member.got) == 3, TIMEOUT, interval=0, what="the records read")
        producer.init_transactions(TIMEOUT)
        producer.begin_transaction()
        producer.send_offsets_to_transaction([TopicPartition(topic_name, 0, 3)],
                                             member.consumer.consumer_group_metadata(), TIMEOUT)
        producer.commit_transaction(TIMEOUT)
        committed = member.consumer.committed([TopicPartition(topic_name, 0)], TIMEOUT)
        assert committed[0].offset == 3
    finally:
        member.consumer.close()
