"""Consumer groups with confluent-kafka: every group sees every message; members of one
group split the partitions; committed offsets survive a restart; a member that vanishes is
replaced within its session timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import BrokerWith
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until

TIMEOUT = 30


@pytest.fixture
def gbroker(broker_with: BrokerWith) -> Iterator[BrokerProcess | ExternalBroker]:
    with broker_with({"group.initial.rebalance.delay.ms": "0"}) as b:
        yield b


def produce(bootstrap: str, topic: str, partitions: int, n: int) -> list[bytes]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(TIMEOUT)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    values = [f"m{i}".encode() for i in range(n)]
    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=i % partitions)
    assert p.flush(TIMEOUT) == 0
    return values


def consumer(bootstrap: str, group: str, **extra: object) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 6000,
                     "heartbeat.interval.ms": 500, **extra})


def drain(consumers: list[Consumer], want: int) -> list[list[tuple[int, int, bytes]]]:
    got: list[list[tuple[int, int, bytes]]] = [[] for _ in consumers]
    deadline = time.monotonic() + TIMEOUT
    while sum(len(g) for g in got) < want:
        assert time.monotonic() < deadline, f"got {sum(len(g) for g in got)} of {want}"
        for c, out in zip(consumers, got):
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                out.append((m.partition(), m.offset(), m.value()))
    return got


def test_two_groups_each_receive_everything(gbroker: BrokerProcess, topic_name: str) -> None:
    values = produce(gbroker.bootstrap, topic_name, 2, 20)
    a, b = consumer(gbroker.bootstrap, "group-a"), consumer(gbroker.bootstrap, "group-b")
    a.subscribe([topic_name])
    b.subscribe([topic_name])
    try:
        got_a, got_b = drain([a, b], 40)
    finally:
        a.close()
        b.close()
    assert sorted(v for _, _, v in got_a) == sorted(values)
    assert sorted(v for _, _, v in got_b) == sorted(values)


def test_members_of_one_group_split_the_partitions(gbroker: BrokerProcess, topic_name: str) -> None:
    values = produce(gbroker.bootstrap, topic_name, 2, 20)
    first, second = consumer(gbroker.bootstrap, "shared"), consumer(gbroker.bootstrap, "shared")
    first.subscribe([topic_name])
    second.subscribe([topic_name])
    try:
        def both_assigned() -> bool:
            first.poll(0.05)
            second.poll(0.05)
            return len(first.assignment()) == 1 and len(second.assignment()) == 1

        wait_until(both_assigned, TIMEOUT, interval=0, what="one partition each")
        parts = {tp.partition for tp in first.assignment()} | {tp.partition for tp in second.assignment()}
        assert parts == {0, 1}
        for c in (first, second):
            c.seek(TopicPartition(topic_name, c.assignment()[0].partition, 0))
        got = drain([first, second], 20)
    finally:
        first.close()
        second.close()
    assert len({p for p, _, _ in got[0]}) == 1 and len({p for p, _, _ in got[1]}) == 1
    assert sorted(v for g in got for _, _, v in g) == sorted(values)  # exactly once in all


def test_committed_offsets_survive_restart(tmp_path: Path, topic_name: str) -> None:
    with BrokerProcess(tmp_path / "data", settings={"group.initial.rebalance.delay.ms": "0"}) as b:
        produce(b.bootstrap, topic_name, 1, 10)
        c = consumer(b.bootstrap, "keeper")
        c.subscribe([topic_name])
        got = drain([c], 6)[0][:6]
        c.commit(offsets=[TopicPartition(topic_name, 0, got[-1][1] + 1)], asynchronous=False)
        c.close()
        b.restart()
        c = consumer(b.bootstrap, "keeper")
        try:
            committed = c.committed([TopicPartition(topic_name, 0)], timeout=TIMEOUT)
            assert committed[0].offset == got[-1][1] + 1
            c.subscribe([topic_name])
            rest = drain([c], 4)[0]
        finally:
            c.close()
        assert [o for _, o, _ in rest] == list(range(got[-1][1] + 1, 10))


MEMBER = """
import sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "crashy", "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
c.subscribe([sys.argv[2]])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    c.poll(0.1)
    if c.assignment():
        print("assigned", flush=True)
        break
while time.monotonic() < deadline:
    c.poll(0.1)
"""


def test_a_killed_member_is_replaced_after_its_session_timeout(gbroker: BrokerProcess, topic_name: str) -> None:
    import subprocess
    import sys

    produce(gbroker.bootstrap, topic_name, 2, 10)
    survivor = consumer(gbroker.bootstrap, "crashy")
    survivor.subscribe([topic_name])
    victim = subprocess.Popen([sys.executable, "-c", MEMBER, gbroker.bootstrap, topic_name],
                              stdout=subprocess.PIPE, text=True)
    try:
        def split() -> bool:
            survivor.poll(0.05)
            return len(survivor.assignment()) == 1

        wait_until(split, TIMEOUT, interval=0, what="the partitions split between two members")
        assert victim.stdout is not None and victim.stdout.readline().strip() == "assigned"
        victim.kill()  # no LeaveGroup: only the session timeout can tell
        victim.wait(TIMEOUT)

        def took_over() -> bool:
            survivor.poll(0.05)
            return len(survivor.assignment()) == 2

        wait_until(took_over, TIMEOUT, interval=0, what="the survivor owning both partitions")
        if isinstance(gbroker, BrokerProcess):  # tomyum's log line
            assert "missed its session timeout" in gbroker.output()
    finally:
        victim.kill()
        victim.wait(TIMEOUT)
        victim.stdout.close()  # type: ignore[union-attr]
        survivor.close()


def test_group_administration(gbroker: BrokerProcess, topic_name: str) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException

    produce(gbroker.bootstrap, topic_name, 2, 10)
    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    live = consumer(gbroker.bootstrap, "live-group")
    live.subscribe([topic_name])
    wait_until(lambda: live.poll(0.05) is not None or len(live.assignment()) == 2, TIMEOUT, interval=0,
               what="assignment")
    live.commit(offsets=[TopicPartition(topic_name, 0, 3)], asynchronous=False)
    idle = consumer(gbroker.bootstrap, "idle-group")
    idle.commit(offsets=[TopicPartition(topic_name, 1, 4)], asynchronous=False)  # standalone commit
    idle.close()

    listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
    states = {g.group_id: g.state.name for g in listed.valid}
    assert states["live-group"] == "STABLE" and states["idle-group"] == "EMPTY"

    described = admin.describe_consumer_groups(["live-group"], request_timeout=TIMEOUT)["live-group"].result(TIMEOUT)
    assert len(described.members) == 1
    assigned = {tp.partition for tp in described.members[0].assignment.topic_partitions}
    assert assigned == {0, 1}

    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("idle-group")])
    got = offsets["idle-group"].result(TIMEOUT)
    assert [(tp.topic, tp.partition, tp.offset) for tp in got.topic_partitions] == [(topic_name, 1, 4)]

    with pytest.raises(KafkaException):  # a group with members cannot be deleted
        admin.delete_consumer_groups(["live-group"], request_timeout=TIMEOUT)["live-group"].result(TIMEOUT)
    admin.delete_consumer_groups(["idle-group"], request_timeout=TIMEOUT)["idle-group"].result(TIMEOUT)
    listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
    assert "idle-group" not in {g.group_id for g in listed.valid}
    live.close()


def test_offset_delete(gbroker: BrokerProcess, topic_name: str) -> None:
    from kio.schema.offset_delete.v0 import request as od

    from tests.integration.test_bad_input import connect, decode_response, kio_request, read_frame

    produce(gbroker.bootstrap, topic_name, 2, 4)
    c = consumer(gbroker.bootstrap, "forgetful")
    c.commit(offsets=[TopicPartition(topic_name, 0, 1), TopicPartition(topic_name, 1, 2)], asynchronous=False)
    req = od.OffsetDeleteRequest(group_id="forgetful", topics=(od.OffsetDeleteRequestTopic(
        name=topic_name, partitions=(od.OffsetDeleteRequestPartition(partition_index=0),)),))
    with connect(gbroker) as s:
        s.sendall(kio_request(47, 0, 1, req))
        answer = decode_response(47, 0, read_frame(s))
    assert answer.error_code == 0  # type: ignore[attr-defined]
    assert answer.topics[0].partitions[0].error_code == 0  # type: ignore[attr-defined]
    committed = c.committed([TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)], timeout=TIMEOUT)
    c.close()
    assert [tp.offset for tp in committed] == [-1001, 2]  # -1001: no committed offset


def test_cooperative_sticky_keeps_partitions_when_a_third_member_joins(
        gbroker: BrokerProcess, topic_name: str) -> None:
    produce(gbroker.bootstrap, topic_name, 6, 12)
    revoked: dict[int, list[int]] = {0: [], 1: [], 2: []}

    def member(n: int) -> Consumer:
        c = consumer(gbroker.bootstrap, "coop", **{"partition.assignment.strategy": "cooperative-sticky"})
        c.subscribe([topic_name], on_revoke=lambda _c, parts: revoked[n].extend(p.partition for p in parts))
        return c

    members = [member(0), member(1)]
    try:
        def settled(cs: list[Consumer], sizes: list[int]) -> bool:
            for c in cs:
                c.poll(0.05)
            return sorted(len(c.assignment()) for c in cs) == sizes

        wait_until(lambda: settled(members, [3, 3]), TIMEOUT, interval=0, what="two members with 3 each")
        before = [{tp.partition for tp in c.assignment()} for c in members]
        for r in revoked.values():
            r.clear()  # from here on, only the third member's arrival
        members.append(member(2))
        wait_until(lambda: settled(members, [2, 2, 2]), TIMEOUT, interval=0, what="three members with 2 each")
        after = [{tp.partition for tp in c.assignment()} for c in members[:2]]
        for n in (0, 1):
            assert after[n] <= before[n], "an existing member was given a partition it did not own"
            # only what moved to the newcomer was revoked: the rest was kept throughout
            assert set(revoked[n]) == before[n] - after[n]
        assert {tp.partition for tp in members[2].assignment()} == set(range(6)) - after[0] - after[1]
    finally:
        for c in members:
            c.close()


def test_a_restarted_static_member_gets_its_partitions_back_without_a_rebalance(
        gbroker: BrokerProcess, topic_name: str) -> None:
    produce(gbroker.bootstrap, topic_name, 2, 20)
    events: list[str] = []
    static = {"session.timeout.ms": 10000}
    stayer = consumer(gbroker.bootstrap, "static", **static, **{"group.instance.id": "stayer"})
    stayer.subscribe([topic_name], on_assign=lambda c, ps: events.append(f"assign {[p.partition for p in ps]}"),
                     on_revoke=lambda c, ps: events.append(f"revoke {[p.partition for p in ps]}"))
    leaver = consumer(gbroker.bootstrap, "static", **static, **{"group.instance.id": "leaver"})
    leaver.subscribe([topic_name])

    def split(*cs: Consumer) -> bool:
        for c in cs:
            c.poll(0.05)
        return all(len(c.assignment()) == 1 for c in cs)

    wait_until(lambda: split(stayer, leaver), TIMEOUT, interval=0, what="two static members with a partition each")
    leaver_partition = leaver.assignment()[0].partition
    events_before = list(events)
    joins_before = gbroker.output().count("preparing to rebalance")
    leaver.close()  # a static member does not leave the group on close

    again = consumer(gbroker.bootstrap, "static", **static, **{"group.instance.id": "leaver"})
    again.subscribe([topic_name])
    try:
        def back() -> bool:
            stayer.poll(0.05)
            again.poll(0.05)
            return len(again.assignment()) == 1

        wait_until(back, TIMEOUT, interval=0, what="the restarted static member assigned")
        assert again.assignment()[0].partition == leaver_partition
        for _ in range(20):  # the stayer keeps polling: no revoke or new assignment arrives
            stayer.poll(0.05)
        assert events == events_before, "the other member saw a rebalance"
        if isinstance(gbroker, BrokerProcess):  # tomyum's log lines
            assert gbroker.output().count("preparing to rebalance") == joins_before
            assert "is back as" in gbroker.output()
    finally:
        again.close()
        stayer.close()


def test_kafka_python_group_commits_and_resumes(gbroker: BrokerProcess, topic_name: str) -> None:
    from kafka import KafkaConsumer

    values = produce(gbroker.bootstrap, topic_name, 2, 40)

    def member() -> KafkaConsumer:
        return KafkaConsumer(topic_name, bootstrap_servers=gbroker.bootstrap, group_id="kp",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=TIMEOUT * 1000, max_poll_records=5)

    first = member()
    got: list[bytes] = []
    for m in first:
        got.append(m.value)
        if len(got) == 15:
            break
    first.commit()  # the position: just after the 15 records read
    first.close()
    second = member()
    for m in second:
        got.append(m.value)
        if len(got) == 40:
            break
    second.commit()
    second.close()
    assert sorted(got) == sorted(values)  # every record once: the second resumed where the first stopped


def test_aiokafka_group_commits_and_resumes(gbroker: BrokerProcess, topic_name: str) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer

    values = produce(gbroker.bootstrap, topic_name, 2, 40)

    async def read(count: int, got: list[bytes]) -> None:
        c = AIOKafkaConsumer(topic_name, bootstrap_servers=gbroker.bootstrap, group_id="aio",
                             auto_offset_reset="earliest", enable_auto_commit=False)
        await c.start()
        try:
            target = len(got) + count
            while len(got) < target:
                batch = await c.getmany(timeout_ms=500, max_records=target - len(got))
                for records in batch.values():
                    got += [m.value for m in records]
            await c.commit()
        finally:
            await c.stop()

    async def scenario() -> list[bytes]:
        got: list[bytes] = []
        await read(15, got)
        await read(25, got)
        return got

    got = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert sorted(got) == sorted(values)


@pytest.mark.restarts_broker
def test_group_metadata_survives_a_broker_restart(gbroker: BrokerProcess, topic_name: str) -> None:
    from confluent_kafka import ConsumerGroupState

    produce(gbroker.bootstrap, topic_name, 2, 0)
    members = [consumer(gbroker.bootstrap, "durable", **{"session.timeout.ms": 30000}) for _ in range(2)]
    for c in members:
        c.subscribe([topic_name])
    got: list[tuple[int, int, bytes]] = []

    def send(start: int, end: int) -> None:
        p = Producer({"bootstrap.servers": gbroker.bootstrap, "acks": "all"})
        for i in range(start, end):
            p.produce(topic_name, value=f"m{i}".encode(), partition=i % 2)
        assert p.flush(TIMEOUT) == 0

    def poll_all() -> None:
        for c in members:
            m = c.poll(0.05)
            if m is not None and m.error() is None:
                got.append((m.partition(), m.offset(), m.value()))
                c.commit(m, asynchronous=False)

    try:
        def split() -> bool:
            for c in members:
                c.poll(0.05)
            return all(len(c.assignment()) == 1 for c in members)

        wait_until(split, TIMEOUT, interval=0, what="both members assigned")
        send(0, 20)
        wait_until(lambda: poll_all() or len(got) == 20, TIMEOUT, interval=0, what="the first 20 records")
        admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
        before = admin.describe_consumer_groups(["durable"])["durable"].result(TIMEOUT)
        gbroker.restart()
        admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
        after = admin.describe_consumer_groups(["durable"])["durable"].result(TIMEOUT)
        assert after.state == ConsumerGroupState.STABLE
        assert sorted(m.member_id for m in after.members) == sorted(m.member_id for m in before.members)
        assert sorted(len(m.assignment.topic_partitions) for m in after.members) == [1, 1]
        send(20, 40)
        wait_until(lambda: poll_all() or len(got) == 40, TIMEOUT, interval=0, what="the next 20 records")
        assert sorted(v for _, _, v in got) == sorted(f"m{i}".encode() for i in range(40))  # once each
        assert "preparing to rebalance" not in gbroker.output()  # the members just carried on
    finally:
        for c in members:
            c.close()


def test_a_replaced_static_member_id_is_fenced(gbroker: BrokerProcess, topic_name: str) -> None:
    """KIP-345 at the wire: a static member that joins again with no member id takes over
    under a new id in the same generation; the old id is then FENCED_INSTANCE_ID (82) on
    Heartbeat, SyncGroup, OffsetCommit and LeaveGroup, while the new one carries on."""
    import datetime

    from kio.schema.heartbeat.v3 import request as hb
    from kio.schema.join_group.v5 import request as jg
    from kio.schema.leave_group.v3 import request as lg
    from kio.schema.offset_commit.v7 import request as oc
    from kio.schema.sync_group.v3 import request as sg

    from tests.integration.test_bad_input import connect, decode_response, kio_request, read_frame

    produce(gbroker.bootstrap, topic_name, 1, 0)
    fenced = 82

    def call(s: Any, api_key: int, version: int, body: object) -> Any:
        s.sendall(kio_request(api_key, version, 1, body))
        return decode_response(api_key, version, read_frame(s))

    def join(s: Any) -> Any:
        return call(s, 11, 5, jg.JoinGroupRequest(
            group_id="fence", session_timeout=datetime.timedelta(seconds=10),
            rebalance_timeout=datetime.timedelta(seconds=10), member_id="", group_instance_id="static-1",
            protocol_type="consumer", protocols=(jg.JoinGroupRequestProtocol(name="range", metadata=b"m"),)))

    with connect(gbroker) as s:
        first = join(s)
        assert first.error_code == 0 and first.leader == first.member_id
        synced = call(s, 14, 3, sg.SyncGroupRequest(
            group_id="fence", generation_id=first.generation_id, member_id=first.member_id,
            group_instance_id="static-1",
            assignments=(sg.SyncGroupRequestAssignment(member_id=first.member_id, assignment=b"a"),)))
        assert synced.error_code == 0 and synced.assignment == b"a"

        second = join(s)  # the same instance, restarted: no rebalance, a new id, its assignment kept
        assert second.error_code == 0 and second.member_id != first.member_id
        assert second.generation_id == first.generation_id
        synced = call(s, 14, 3, sg.SyncGroupRequest(
            group_id="fence", generation_id=second.generation_id, member_id=second.member_id,
            group_instance_id="static-1", assignments=()))
        assert synced.error_code == 0 and synced.assignment == b"a"

        old, new = first.member_id, second.member_id
        for member, want in ((old, fenced), (new, 0)):
            beat = call(s, 12, 3, hb.HeartbeatRequest(group_id="fence", generation_id=first.generation_id,
                                                      member_id=member, group_instance_id="static-1"))
            assert beat.error_code == want
            commit = call(s, 8, 7, oc.OffsetCommitRequest(
                group_id="fence", generation_id_or_member_epoch=first.generation_id, member_id=member,
                group_instance_id="static-1", topics=(oc.OffsetCommitRequestTopic(name=topic_name, partitions=(
                    oc.OffsetCommitRequestPartition(partition_index=0, committed_offset=0,
                                                    committed_metadata=""),)),)))
            assert commit.topics[0].partitions[0].error_code == want
        synced = call(s, 14, 3, sg.SyncGroupRequest(group_id="fence", generation_id=first.generation_id,
                                                    member_id=old, group_instance_id="static-1", assignments=()))
        assert synced.error_code == fenced
        left = call(s, 13, 3, lg.LeaveGroupRequest(group_id="fence", members=(
            lg.MemberIdentity(member_id=old, group_instance_id="static-1"),)))
        assert left.members[0].error_code == fenced
        left = call(s, 13, 3, lg.LeaveGroupRequest(group_id="fence", members=(
            lg.MemberIdentity(member_id=new, group_instance_id="static-1"),)))
        assert left.error_code == 0 and left.members[0].error_code == 0
    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    described = admin.describe_consumer_groups(["fence"])["fence"].result(TIMEOUT)
    assert described.members == [] and described.state.name == "EMPTY"


@pytest.mark.restarts_broker
def test_restored_static_members_come_back_stable_and_deleted_groups_stay_deleted(
        gbroker: BrokerProcess, topic_name: str) -> None:
    """After a restart a static member that did not leave is in its stable group again; a group
    deleted before the restart (a tombstone) does not come back. (That a restored member which
    never heartbeats expires at its session timeout is shown on a fake clock:
    tests/unit/test_classic_group_coordinator.py.)"""
    produce(gbroker.bootstrap, topic_name, 1, 3)
    gone = consumer(gbroker.bootstrap, "gone", **{"group.instance.id": "gone-1"})
    gone.subscribe([topic_name])
    wait_until(lambda: gone.poll(0.05) is not None and bool(gone.assignment()), TIMEOUT, interval=0,
               what="a static member consuming")
    gone.close()  # a static member does not leave: only its session timeout removes it
    deleted = consumer(gbroker.bootstrap, "deleted")
    deleted.commit(offsets=[TopicPartition(topic_name, 0, 2)], asynchronous=False)
    deleted.close()
    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    admin.delete_consumer_groups(["deleted"], request_timeout=TIMEOUT)["deleted"].result(TIMEOUT)

    gbroker.restart()
    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    restored = admin.describe_consumer_groups(["gone"])["gone"].result(TIMEOUT)
    assert restored.state.name == "STABLE" and [m.group_instance_id for m in restored.members] == ["gone-1"]
    listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
    assert "deleted" not in {g.group_id for g in listed.valid}


def test_stopping_while_a_group_forms_answers_the_waiting_joins_and_stops_promptly(tmp_path: Path) -> None:
    """A JoinGroup parked in a forming group when the broker stops is answered with a
    JoinGroup-shaped NOT_COORDINATOR (as Kafka answers when it unloads a group: the client
    looks for the coordinator again), and the broker stops at once, with no error logged."""
    import datetime

    from kio.schema.join_group.v3 import request as jg

    from tests.integration.test_bad_input import connect, decode_response, kio_request, read_frame

    with BrokerProcess(tmp_path / "data", settings={"group.initial.rebalance.delay.ms": "30000"}) as b:
        with connect(b) as s:
            s.sendall(kio_request(11, 3, 7, jg.JoinGroupRequest(
                group_id="forming", session_timeout=datetime.timedelta(seconds=10),
                rebalance_timeout=datetime.timedelta(seconds=30), member_id="", protocol_type="consumer",
                protocols=(jg.JoinGroupRequestProtocol(name="range", metadata=b"m"),))))
            wait_until(lambda: "member" in b.output() and "joined" in b.output(), TIMEOUT, what="the join parked")
            started = time.monotonic()
            assert b.stop() == 0
            took = time.monotonic() - started
            answer = decode_response(11, 3, read_frame(s))
        assert answer.error_code == 16  # type: ignore[attr-defined]  # NOT_COORDINATOR
        assert took < 5, f"the broker took {took:.1f} s to stop"
        assert "Traceback" not in b.output() and "TypeError" not in b.output(), b.output()
