"""The KIP-848 state machine alone: heartbeats in, records and answers out, no broker."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tomyum.coordinator.group.consumer import ConsumerGroups, HeartbeatRequest
from tomyum.coordinator.group.consumer.assignors import range_, uniform
from tomyum.coordinator.group.consumer.records import GroupRemovedRecord, MemberRemovedRecord, MemberState

T = uuid.UUID(int=1)
TOPICS = {"t": (T, 4)}


class Member:
    """A well-behaved client: owns what it was last given, acknowledges revocations."""

    def __init__(self, groups: ConsumerGroups, member_id: str, **extra: Any) -> None:
        self.groups, self.member_id, self.epoch, self.owned, self.extra = groups, member_id, 0, set[int](), extra

    def beat(self, topics: Any = TOPICS) -> dict[str, Any]:
        joining = self.epoch == 0
        req = HeartbeatRequest(
            group_id="g", member_id=self.member_id, member_epoch=self.epoch,
            rebalance_timeout_ms=30000 if joining else -1,
            subscribed_topic_names=("t",) if joining else None,
            owned={} if joining else {T: frozenset(self.owned)}, **self.extra)
        result = self.groups.heartbeat(req, topics)
        for r in result.records:
            self.groups.replay(r)
        answer = result.response
        assert answer["error_code"] == 0, answer
        self.epoch = answer["member_epoch"]
        if answer["assignment"] is not None:
            self.owned = {p for tp in answer["assignment"]["topic_partitions"] for p in tp["partitions"]}
        return answer


def settle(members: list[Member], rounds: int = 6) -> None:
    for _ in range(rounds):
        for m in members:
            m.beat()


def test_two_members_split_then_a_third_takes_a_share_without_double_ownership() -> None:
    groups = ConsumerGroups(heartbeat_interval_ms=500)
    a, b = Member(groups, "a"), Member(groups, "b")
    a.beat()
    assert a.owned == {0, 1, 2, 3} and a.epoch == 1
    settle([a, b])
    assert sorted([a.owned, b.owned], key=min) == [{0, 1}, {2, 3}]
    c = Member(groups, "c")
    c.beat()
    for _ in range(6):
        for m in (a, b, c):
            m.beat()
            owners = [p for x in (a, b, c) for p in x.owned]
            assert len(owners) == len(set(owners)), "a partition owned by two members at once"
    assert sorted(len(x.owned) for x in (a, b, c)) == [1, 1, 2]
    assert a.owned | b.owned | c.owned == {0, 1, 2, 3}
    assert groups.groups["g"].state() == "Stable"


def test_leaving_releases_the_partitions_and_a_stale_epoch_is_fenced() -> None:
    groups = ConsumerGroups(heartbeat_interval_ms=500)
    a, b = Member(groups, "a"), Member(groups, "b")
    settle([a, b])
    result = groups.heartbeat(HeartbeatRequest(group_id="g", member_id="b", member_epoch=-1), TOPICS)
    for r in result.records:
        groups.replay(r)
    assert result.response["member_epoch"] == -1
    settle([a])
    assert a.owned == {0, 1, 2, 3}
    stale = groups.heartbeat(HeartbeatRequest(group_id="g", member_id="a", member_epoch=a.epoch + 5), TOPICS)
    assert stale.response["error_code"] == 110  # FENCED_MEMBER_EPOCH
    unknown = groups.heartbeat(HeartbeatRequest(group_id="g", member_id="b", member_epoch=3), TOPICS)
    assert unknown.response["error_code"] == 25  # UNKNOWN_MEMBER_ID


def test_a_static_member_that_leaves_for_now_is_replaced_with_its_partitions() -> None:
    groups = ConsumerGroups(heartbeat_interval_ms=500)
    a, b = Member(groups, "a", instance_id="ia"), Member(groups, "b", instance_id="ib")
    settle([a, b])
    epoch_before, b_owned = groups.groups["g"].group_epoch, set(b.owned)
    result = groups.heartbeat(HeartbeatRequest(group_id="g", member_id="b", member_epoch=-2, instance_id="ib"),
                              TOPICS)
    for r in result.records:
        groups.replay(r)
    again = Member(groups, "b2", instance_id="ib")
    again.beat()
    assert again.owned == b_owned and groups.groups["g"].group_epoch == epoch_before
    busy = groups.heartbeat(HeartbeatRequest(group_id="g", member_id="b3", member_epoch=0, instance_id="ib",
                                             rebalance_timeout_ms=1, subscribed_topic_names=("t",), owned={}),
                            TOPICS)
    assert busy.response["error_code"] == 111  # UNRELEASED_INSTANCE_ID


def test_assignors_are_balanced_and_uniform_is_sticky() -> None:
    u, v = uuid.UUID(int=2), uuid.UUID(int=3)
    subs = {"m1": frozenset({u, v}), "m2": frozenset({u, v})}
    first = uniform(subs, {u: 3, v: 3}, {})
    assert sorted(sum(len(ps) for ps in a.values()) for a in first.values()) == [3, 3]
    second = uniform({**subs, "m3": frozenset({u, v})}, {u: 3, v: 3}, first)
    assert sorted(sum(len(ps) for ps in a.values()) for a in second.values()) == [2, 2, 2]
    for m in ("m1", "m2"):  # each kept two of what it had
        kept = {(t, p) for t, ps in second[m].items() for p in ps} & {(t, p) for t, ps in first[m].items() for p in ps}
        assert len(kept) == 2
    ranged = range_(subs, {u: 3}, {})
    assert ranged["m1"] == {u: frozenset({0, 1})} and ranged["m2"] == {u: frozenset({2})}


def test_records_survive_their_kafka_encoding_and_a_compacted_replay_rebuilds_the_groups() -> None:
    from tomyum.coordinator.group.consumer.log import decode, encode

    groups = ConsumerGroups(heartbeat_interval_ms=500)
    log: list[tuple[bytes, bytes | None]] = []
    original = groups.heartbeat

    def recording(req: HeartbeatRequest, topics: Any) -> Any:
        result = original(req, topics)
        for r in result.records:
            pairs = encode(r)
            log.extend(pairs)
            if not isinstance(r, (MemberRemovedRecord, GroupRemovedRecord)):
                assert [decode(k, v) for k, v in pairs] == [r]  # each record round-trips
        return result

    groups.heartbeat = recording  # type: ignore[method-assign]
    a, b, c = Member(groups, "a", instance_id="ia", rack_id="r1"), Member(groups, "b"), Member(groups, "c")
    settle([a, b, c])
    left = groups.heartbeat(HeartbeatRequest(group_id="g", member_id="c", member_epoch=-1), TOPICS)
    for r in left.records:
        groups.replay(r)
    settle([a, b])
    latest: dict[bytes, bytes] = {}
    for k, v in log:  # what compaction leaves: the latest value per key at its place in the log, tombstones gone
        latest.pop(k, None)
        if v is not None:
            latest[k] = v
    assert [k[:2] for k in latest] != sorted(k[:2] for k in latest)  # not in the order they were first written
    restored = ConsumerGroups(heartbeat_interval_ms=500)
    for k, v in latest.items():  # replayed in log order, as the loader does
        record = decode(k, v)
        assert record is not None
        restored.replay(record)
    before, after = groups.groups["g"], restored.groups["g"]
    assert (after.group_epoch, after.assignment_epoch, after.target) == (before.group_epoch, before.assignment_epoch,
                                                                          before.target)
    assert set(after.members) == {"a", "b"}
    for m in ("a", "b"):
        x, y = before.members[m], after.members[m]
        assert (y.member_epoch, y.assigned, y.state, y.metadata) == (x.member_epoch, x.assigned, x.state, x.metadata)
    assert after.owners == before.owners


def test_the_runtime_fences_a_member_that_does_not_revoke_within_its_rebalance_timeout(tmp_path: Path) -> None:
    """On a fake clock, through the coordinator runtime's write path (the in-memory log engine):
    the member is fenced exactly at its rebalance timeout, and its removal is stored (a restart
    does not bring it back)."""
    import asyncio

    from tomyum.config import BrokerConfig
    from tomyum.coordinator.group.consumer import ConsumerGroupRuntime
    from tomyum.coordinator.group.offsets import OffsetStore
    from tomyum.coordinator.timer import CoordinatorTimer
    from tomyum.storage.memory import MemoryLogStore
    from tomyum.testing.clock import FakeClock
    from tomyum.testing.store import TopicStore

    def runtime(offsets: OffsetStore, clock: FakeClock) -> ConsumerGroupRuntime:
        rt = ConsumerGroupRuntime(heartbeat_interval_ms=500, session_timeout_ms=60_000, topics=lambda: TOPICS,
                                  timer=CoordinatorTimer(clock), write=offsets.runtime.write)
        offsets.consumer = rt.state
        return rt

    async def main() -> None:
        clock = FakeClock()
        store = TopicStore(tmp_path, BrokerConfig(), clock, engine=MemoryLogStore(tmp_path, BrokerConfig(), clock))
        await store.start()
        rt = runtime(OffsetStore(store, 3, clock), clock)
        try:
            def join(member: str, timeout_ms: int) -> HeartbeatRequest:
                return HeartbeatRequest(group_id="g", member_id=member, member_epoch=0, rebalance_timeout_ms=timeout_ms,
                                        subscribed_topic_names=("t",), owned={})

            a = await rt.heartbeat(join("a", 200))
            assert a["assignment"]["topic_partitions"][0]["partitions"] == [0, 1, 2, 3]
            await rt.heartbeat(join("b", 30_000))
            # a is asked to give up two partitions and never answers; its session is long,
            # its rebalance timeout short
            owned = {T: frozenset({0, 1, 2, 3})}
            await rt.heartbeat(HeartbeatRequest(group_id="g", member_id="a", member_epoch=a["member_epoch"],
                                                owned=owned))
            assert rt.state.groups["g"].members["a"].state == MemberState.UNREVOKED_PARTITIONS
            clock.advance(199)
            await rt.timer.run_due()
            assert "a" in rt.state.groups["g"].members  # not yet
            clock.advance(1)
            await rt.timer.run_due()
            assert "a" not in rt.state.groups["g"].members
            rt.timer.stop()

            offsets = OffsetStore(store, 3, clock)
            rt = runtime(offsets, clock)
            await offsets.start()  # the loader replays what was stored
            assert set(rt.state.groups["g"].members) == {"b"}
        finally:
            rt.timer.stop()
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_range_gives_every_member_the_same_partitions_of_each_topic_static_members_first() -> None:
    """Kafka's RangeAssignor (KIP-848): co-partitioned when every member subscribes to the same
    topics of equal partition counts (what Kafka Streams' tasks need), members ordered static
    first by instance id, then by member id."""
    u, v = uuid.UUID(int=2), uuid.UUID(int=3)
    subs = {"m1": frozenset({u, v}), "m2": frozenset({u, v}), "m3": frozenset({u, v})}
    ranged = range_(subs, {u: 4, v: 4}, {})
    assert ranged == {"m1": {u: frozenset({0, 1}), v: frozenset({0, 1})}, "m2": {u: frozenset({2}), v: frozenset({2})},
                      "m3": {u: frozenset({3}), v: frozenset({3})}}
    static = range_(subs, {u: 4, v: 4}, {}, {"m3": "a", "m2": "b"})
    assert [static[m][u] for m in ("m3", "m2", "m1")] == [frozenset({0, 1}), frozenset({2}), frozenset({3})]
    assert all(static[m][u] == static[m][v] for m in subs)


def _owners_from_members(groups: ConsumerGroups) -> dict[tuple[uuid.UUID, int], str]:
    group = groups.groups["g"]
    return {(t, p): m.member_id for m in group.members.values()
            for a in (m.assigned, m.pending_revocation) for t, ps in a.items() for p in ps}


def test_a_heartbeat_whose_records_are_not_replayed_leaves_the_group_as_it_was() -> None:
    """The heartbeat works on a copy of the group (not a deep copy): until the runtime replays
    its records, the group, its members and the partitions' owners are untouched."""
    groups = ConsumerGroups(heartbeat_interval_ms=500)
    a, b = Member(groups, "a"), Member(groups, "b")
    settle([a, b])
    group = groups.groups["g"]
    before = (group.group_epoch, group.assignment_epoch, dict(group.target), dict(group.owners),
              {m: x.current() for m, x in group.members.items()}, {m: x.metadata for m, x in group.members.items()})
    joined = groups.heartbeat(HeartbeatRequest(group_id="g", member_id="c", member_epoch=0, rebalance_timeout_ms=30000,
                                               subscribed_topic_names=("t",), owned={}), TOPICS)
    assert joined.records  # a new member, a new group epoch, a new target
    revoking = groups.heartbeat(HeartbeatRequest(group_id="g", member_id="a", member_epoch=a.epoch,
                                                 owned={T: frozenset(a.owned)}, rack_id="r9"), TOPICS)
    assert revoking.records  # new metadata
    after = (group.group_epoch, group.assignment_epoch, dict(group.target), dict(group.owners),
             {m: x.current() for m, x in group.members.items()}, {m: x.metadata for m, x in group.members.items()})
    assert after == before and groups.groups["g"] is group


def test_the_owners_of_partitions_follow_the_members_through_joins_moves_and_leaves() -> None:
    topics = {"t": (T, 12)}
    groups = ConsumerGroups(heartbeat_interval_ms=500)
    members = [Member(groups, f"m{i}") for i in range(3)]
    for step in range(8):
        if step in (2, 4):
            members.append(Member(groups, f"n{step}"))
        if step == 6:
            gone = members.pop(0)
            for r in groups.heartbeat(HeartbeatRequest(group_id="g", member_id=gone.member_id, member_epoch=-1),
                                      topics).records:
                groups.replay(r)
        for m in members:
            m.beat(topics)
            assert groups.groups["g"].owners == _owners_from_members(groups)
    assert sorted(len(m.owned) for m in members) == [3, 3, 3, 3]
    assert set().union(*(m.owned for m in members)) == set(range(12))


def test_a_groups_scratch_copy_shares_its_immutable_members_and_assignments() -> None:
    """Each heartbeat copies its group; a deep copy made one cost ~9 ms at 200 members (so a
    200-member group heartbeating every 500 ms took more than a core; benchmarks/group_join.py
    measures it). The copy has its own containers but the same member and assignment objects,
    which nothing mutates in place (members are frozen: a change replaces one)."""
    import dataclasses

    groups = ConsumerGroups(heartbeat_interval_ms=500)
    settle([Member(groups, "a"), Member(groups, "b")])
    group = groups.groups["g"]
    scratch = group.copy()
    assert scratch.members is not group.members and scratch.target is not group.target
    assert scratch.owners is not group.owners
    assert all(scratch.members[m] is member for m, member in group.members.items())
    assert all(scratch.target[m] is target for m, target in group.target.items())
    member = next(iter(group.members.values()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        member.metadata = member.metadata  # type: ignore[misc]
