"""The classic group state machine on a fake clock: join, sync, heartbeat, session expiry,
rebalance timeout, static members and the initial delay, with the group metadata stored through
the coordinator runtime (on the in-memory log engine) and replayed. Time moves only when a test
moves it (``clock.advance`` then ``groups.timer.run_due()``); nothing waits real seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from tomyum.config import BrokerConfig
from tomyum.coordinator.group.classic_group import GroupState
from tomyum.coordinator.group.coordinator import GroupCoordinator
from tomyum.coordinator.group.offsets import OffsetStore
from tomyum.coordinator.group.offsets_log import GroupSnapshot
from tomyum.errors import ErrorCode
from tomyum.storage.memory import MemoryLogStore
from tomyum.testing.clock import FakeClock
from tomyum.testing.store import TopicStore

SESSION_MS, REBALANCE_MS = 10_000, 30_000
Scenario = Callable[[GroupCoordinator, FakeClock], Awaitable[None]]


def coordinator(offsets: OffsetStore, clock: FakeClock, initial_delay_ms: int = 0) -> GroupCoordinator:
    """A classic group coordinator whose records go through ``offsets``' runtime and come back
    through its replay."""
    groups = GroupCoordinator(initial_rebalance_delay_ms=initial_delay_ms, min_session_timeout_ms=6000,
                              max_session_timeout_ms=1_800_000, write=offsets.runtime.write, clock=clock)
    offsets.classic = groups
    return groups


def run(tmp_path: Path, scenario: Scenario, initial_delay_ms: int = 0) -> None:
    async def main() -> None:
        clock = FakeClock()
        store = TopicStore(tmp_path, BrokerConfig(), clock, engine=MemoryLogStore(tmp_path, BrokerConfig(), clock))
        await store.start()
        groups = coordinator(OffsetStore(store, 3, clock), clock, initial_delay_ms)
        try:
            await scenario(groups, clock)
        finally:
            await groups.stop()
            groups.timer.stop()
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 10))


async def settle() -> None:
    """Let the tasks that can run, run (no time passes)."""
    for _ in range(10):
        await asyncio.sleep(0)


def join(groups: GroupCoordinator, member_id: str = "", *, instance: str | None = None, client: str = "c",
         protocols: list[tuple[str, bytes]] | None = None) -> asyncio.Task[dict[str, Any]]:
    return asyncio.ensure_future(groups.join(
        group_id="g", member_id=member_id, group_instance_id=instance, client_id=client, client_host="/127.0.0.1",
        session_timeout_ms=SESSION_MS, rebalance_timeout_ms=REBALANCE_MS, protocol_type="consumer",
        protocols=protocols or [("range", b"meta-" + client.encode())], require_known_member_id=False))


def sync(groups: GroupCoordinator, member_id: str, generation: int,
         assignments: list[tuple[str, bytes]] | None = None, instance: str | None = None) -> asyncio.Task[dict[str, Any]]:
    return asyncio.ensure_future(groups.sync(group_id="g", generation_id=generation, member_id=member_id,
                                             assignments=assignments or [], group_instance_id=instance))


def heartbeat(groups: GroupCoordinator, member_id: str, generation: int, instance: str | None = None) -> ErrorCode:
    result = groups.heartbeat(group_id="g", generation_id=generation, member_id=member_id, group_instance_id=instance)
    assert not result.records  # a heartbeat stores nothing
    return result.response


async def stable_pair(groups: GroupCoordinator) -> tuple[str, str, int]:
    """Two members, joined and synced: (leader, follower, generation)."""
    ja, jb = await asyncio.gather(join(groups, client="a"), join(groups, client="b"))
    assert ja["generation_id"] == jb["generation_id"] == 1  # both in the first generation
    leader = ja["leader"]
    assert leader == jb["leader"] and [r["member_id"] for r in (ja, jb) if r["members"]] == [leader]
    gen = ja["generation_id"]
    follower = jb["member_id"] if leader == ja["member_id"] else ja["member_id"]
    sf = sync(groups, follower, gen)
    sl = sync(groups, leader, gen, [(leader, b"A"), (follower, b"B")])
    assert (await sl)["assignment"] == b"A" and (await sf)["assignment"] == b"B"
    return leader, follower, gen


def test_one_member_joins_syncs_and_heartbeats(tmp_path: Path) -> None:
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        joined = await join(groups)
        assert joined["error_code"] == 0 and joined["generation_id"] == 1
        me = joined["member_id"]
        assert joined["leader"] == me and [m["member_id"] for m in joined["members"]] == [me]
        assert groups.groups["g"].state == GroupState.COMPLETING_REBALANCE
        synced = await sync(groups, me, 1, [(me, b"all")])
        assert synced == {"error_code": 0, "protocol_type": "consumer", "protocol_name": "range", "assignment": b"all"}
        assert groups.groups["g"].state == GroupState.STABLE
        assert heartbeat(groups, me, 1) == ErrorCode.none
        assert heartbeat(groups, me, 0) == ErrorCode.illegal_generation
        assert heartbeat(groups, "nobody", 1) == ErrorCode.unknown_member_id

    run(tmp_path, scenario)


def test_a_member_that_keeps_heartbeating_keeps_its_place(tmp_path: Path) -> None:
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        me = (await join(groups))["member_id"]
        await sync(groups, me, 1, [(me, b"x")])
        for _ in range(10):  # 10 × 5 s: far past the session timeout, heartbeating all along
            clock.advance(SESSION_MS // 2)
            await groups.timer.run_due()
            assert heartbeat(groups, me, 1) == ErrorCode.none
        assert groups.groups["g"].state == GroupState.STABLE

    run(tmp_path, scenario)


def test_a_member_that_misses_its_session_timeout_is_removed_and_the_group_rebalances(tmp_path: Path) -> None:
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        leader, follower, gen = await stable_pair(groups)
        clock.advance(SESSION_MS - 1000)
        assert heartbeat(groups, leader, gen) == ErrorCode.none
        clock.advance(1001)  # the follower's session has run out; the leader's has not
        await groups.timer.run_due()
        g = groups.groups["g"]
        assert set(g.members) == {leader}
        assert g.state == GroupState.PREPARING_REBALANCE
        assert heartbeat(groups, leader, gen) == ErrorCode.rebalance_in_progress
        rejoined = await join(groups, leader, client="a")
        assert rejoined["generation_id"] == gen + 1 and len(rejoined["members"]) == 1

    run(tmp_path, scenario)


def test_the_last_member_to_go_leaves_the_group_empty(tmp_path: Path) -> None:
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        me = (await join(groups))["member_id"]
        await sync(groups, me, 1, [(me, b"x")])
        clock.advance(SESSION_MS + 1)
        await groups.timer.run_due()
        g = groups.groups["g"]
        assert g.state == GroupState.EMPTY and not g.members and g.generation_id == 2
        assert g.leader_id is None and g.protocol_name is None

    run(tmp_path, scenario)


def test_a_member_that_does_not_rejoin_within_the_rebalance_timeout_is_dropped(tmp_path: Path) -> None:
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        leader, follower, gen = await stable_pair(groups)
        newcomer = join(groups, client="c")  # a rebalance: both old members must rejoin
        await settle()
        assert groups.groups["g"].state == GroupState.PREPARING_REBALANCE
        again = join(groups, leader, client="a")  # the follower does not (it heartbeats, though)
        await settle()
        clock.advance(REBALANCE_MS - 1)
        assert heartbeat(groups, follower, gen) == ErrorCode.rebalance_in_progress
        await groups.timer.run_due()
        await settle()
        assert not again.done() and not newcomer.done()
        clock.advance(1)
        await groups.timer.run_due()
        ja, jc = await again, await newcomer
        assert ja["generation_id"] == jc["generation_id"] == gen + 1
        assert {m["member_id"] for m in ja["members"]} == {leader, jc["member_id"]}
        assert follower not in groups.groups["g"].members
        assert heartbeat(groups, follower, gen) == ErrorCode.unknown_member_id

    run(tmp_path, scenario)


def test_the_first_rebalance_of_an_empty_group_waits_the_initial_delay(tmp_path: Path) -> None:
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        a = join(groups, client="a")
        await settle()
        clock.advance(2000)
        await groups.timer.run_due()
        b = join(groups, client="b")
        await settle()
        assert not a.done() and not b.done()  # everyone is here, but the delay runs
        clock.advance(1000)
        await groups.timer.run_due()
        ja, jb = await a, await b
        assert ja["generation_id"] == jb["generation_id"] == 1
        assert len([r for r in (ja, jb) if r["members"]]) == 1  # one leader, for both members

    run(tmp_path, scenario, initial_delay_ms=3000)


def test_after_the_initial_delay_the_rebalance_waits_for_known_members_up_to_the_rebalance_timeout(tmp_path: Path) -> None:
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        groups.replay("g", GroupSnapshot("consumer", 4, None, None, 0, ()))  # an empty group, gen 4
        a = join(groups, client="a")
        await settle()
        clock.advance(3000)
        await groups.timer.run_due()
        ja = await a  # alone and every member joined: the group forms at the end of the delay
        assert ja["generation_id"] == 5

    run(tmp_path, scenario, initial_delay_ms=3000)


def test_a_static_member_that_restarts_takes_its_place_without_a_rebalance(tmp_path: Path) -> None:
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        first = await join(groups, instance="i-1", client="a")
        old = first["member_id"]
        await sync(groups, old, 1, [(old, b"mine")], instance="i-1")
        back = await join(groups, instance="i-1", client="a")
        new = back["member_id"]
        assert new != old and back["generation_id"] == 1 and back["leader"] == old and back["members"] == []
        g = groups.groups["g"]
        assert g.state == GroupState.STABLE and list(g.members) == [new]
        assert heartbeat(groups, old, 1, instance="i-1") == ErrorCode.fenced_instance_id
        assert heartbeat(groups, new, 1, instance="i-1") == ErrorCode.none
        assert (await sync(groups, new, 1, instance="i-1"))["assignment"] == b"mine"
        assert await groups.leave("g", old, "i-1") == ErrorCode.fenced_instance_id
        assert await groups.leave("g", "", "i-1") == ErrorCode.none
        assert g.state == GroupState.EMPTY

    run(tmp_path, scenario)


def test_a_static_member_restarting_is_timed_by_its_new_session(tmp_path: Path) -> None:
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        old = (await join(groups, instance="i-1"))["member_id"]
        await sync(groups, old, 1, [(old, b"mine")], instance="i-1")
        clock.advance(SESSION_MS - 1)
        new = (await join(groups, instance="i-1"))["member_id"]  # back just in time
        clock.advance(SESSION_MS - 1)
        await groups.timer.run_due()
        assert list(groups.groups["g"].members) == [new]
        clock.advance(2)
        await groups.timer.run_due()
        assert not groups.groups["g"].members

    run(tmp_path, scenario)


def test_commits_are_checked_against_the_generation(tmp_path: Path) -> None:
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        assert groups.check_commit("g", -1, "") == ErrorCode.none  # standalone, no group
        me = (await join(groups))["member_id"]
        assert groups.check_commit("g", 1, me) == ErrorCode.rebalance_in_progress  # the leader assigns
        await sync(groups, me, 1, [(me, b"x")])
        assert groups.check_commit("g", 1, me) == ErrorCode.none
        assert groups.check_commit("g", 0, me) == ErrorCode.illegal_generation
        assert groups.check_commit("g", -1, "") == ErrorCode.unknown_member_id  # into a live group
        clock.advance(SESSION_MS - 1)
        assert groups.check_commit("g", 1, me) == ErrorCode.none  # a commit counts as a heartbeat
        clock.advance(SESSION_MS - 1)
        await groups.timer.run_due()
        assert me in groups.groups["g"].members

    run(tmp_path, scenario)


def test_a_member_told_member_id_required_that_never_returns_does_not_hold_the_rebalance(tmp_path: Path) -> None:
    """KIP-394's pending member expires after its session timeout, and the first rebalance of a
    new group completes then, not at the rebalance timeout."""
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        first = join(groups, client="a")
        ghost = await asyncio.ensure_future(groups.join(
            group_id="g", member_id="", group_instance_id=None, client_id="ghost", client_host="/127.0.0.1",
            session_timeout_ms=SESSION_MS, rebalance_timeout_ms=REBALANCE_MS, protocol_type="consumer",
            protocols=[("range", b"x")], require_known_member_id=True))
        assert ghost["error_code"] == ErrorCode.member_id_required
        clock.advance(3100)  # past the initial delay: the pending member still holds it
        await groups.timer.run_due()
        await settle()
        assert not first.done()
        clock.advance(SESSION_MS - 3000)  # its session timeout: it is forgotten
        await groups.timer.run_due()
        await settle()
        assert first.done() and first.result()["error_code"] == ErrorCode.none
        assert SESSION_MS < REBALANCE_MS  # long before the rebalance timeout would have ended it

    run(tmp_path, scenario, initial_delay_ms=3000)


def test_a_commit_outside_a_group_is_accepted_whatever_member_id_it_carries(tmp_path: Path) -> None:
    """librdkafka commits after assign() with generation -1 and its member id (KIP-848 on):
    Kafka accepts any commit with a negative generation on an empty or missing group."""
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        assert groups.check_commit("nobody-home", -1, "rdkafka-member-1") == ErrorCode.none
        assert groups.check_commit("nobody-home", -1, "") == ErrorCode.none
        leader, _, _ = await stable_pair(groups)
        assert groups.check_commit("g", -1, "rdkafka-member-1") == ErrorCode.unknown_member_id  # a live group

    run(tmp_path, scenario)


def test_an_assignment_that_cannot_be_stored_is_not_handed_out(tmp_path: Path) -> None:
    """Group metadata too large to store (or any store error): SyncGroup answers Kafka's error
    and the group rebalances, so that no member works from an assignment a restart would lose."""
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        from tomyum.errors import KafkaError

        async def too_large(group_id: str, records: Sequence[tuple[bytes, bytes | None]]) -> None:
            raise KafkaError("the group's metadata is larger than max.message.bytes", ErrorCode.message_too_large)

        groups.write = too_large
        joined = await join(groups, client="a")
        synced = await sync(groups, joined["member_id"], joined["generation_id"],
                            [(joined["member_id"], b"x" * 100)])
        assert synced["error_code"] == ErrorCode.unknown_server_error and synced["assignment"] == b""
        assert groups.groups["g"].state == GroupState.PREPARING_REBALANCE

    run(tmp_path, scenario)


def test_a_restart_replays_stored_groups_and_restored_members_expire_on_their_session(tmp_path: Path) -> None:
    """What a restart restores is what the records say, replayed by the loader: a stable group
    comes back stable with its assignments, its members given a fresh session (one that does not
    come back is expired at its session timeout, and the emptied group is stored); a deleted
    group (a tombstone) stays deleted."""
    async def main() -> None:
        clock = FakeClock()
        store = TopicStore(tmp_path, BrokerConfig(), clock, engine=MemoryLogStore(tmp_path, BrokerConfig(), clock))
        await store.start()
        try:
            groups = coordinator(OffsetStore(store, 3, clock), clock)
            leader, follower, gen = await stable_pair(groups)
            other = await groups.join(
                group_id="deleted", member_id="", group_instance_id=None, client_id="c", client_host="/127.0.0.1",
                session_timeout_ms=SESSION_MS, rebalance_timeout_ms=REBALANCE_MS, protocol_type="consumer",
                protocols=[("range", b"")], require_known_member_id=False)
            await groups.sync(group_id="deleted", generation_id=1, member_id=other["member_id"], assignments=[])
            assert await groups.leave("deleted", other["member_id"], None) == ErrorCode.none
            assert await groups.forget("deleted") == ErrorCode.none
            await groups.stop()
            groups.timer.stop()

            offsets = OffsetStore(store, 3, clock)
            restarted = coordinator(offsets, clock)
            await offsets.start()  # the loader: every record replayed from the log
            assert "deleted" not in restarted.groups
            g = restarted.groups["g"]
            assert (g.state, g.generation_id, g.leader_id) == (GroupState.STABLE, gen, leader)
            assert {m: x.assignment for m, x in g.members.items()} == {leader: b"A", follower: b"B"}
            clock.advance(SESSION_MS - 1)
            assert heartbeat(restarted, leader, gen) == ErrorCode.none  # the leader comes back
            await restarted.timer.run_due()
            assert set(g.members) == {leader, follower}
            clock.advance(1)  # the follower's fresh session has run out
            await restarted.timer.run_due()
            assert set(g.members) == {leader} and g.state == GroupState.PREPARING_REBALANCE
            clock.advance(SESSION_MS)  # and the leader's, while the rebalance waits for it
            await restarted.timer.run_due()
            assert g.state == GroupState.EMPTY and g.generation_id == gen + 1
            await restarted.stop()
            restarted.timer.stop()

            offsets = OffsetStore(store, 3, clock)
            again = coordinator(offsets, clock)
            await offsets.start()
            assert again.groups["g"].state == GroupState.EMPTY and again.groups["g"].generation_id == gen + 1
            again.timer.stop()
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_a_member_joining_again_with_the_same_protocols_gets_the_current_generation(tmp_path: Path) -> None:
    """Kafka's classicGroupJoinExistingMember: before SyncGroup (it may have lost the answer), or as a
    follower of a stable group, the same protocols are answered with the generation there is; the
    leader rejoining a stable group, or a member with new metadata, starts a rebalance."""
    async def scenario(groups: GroupCoordinator, clock: FakeClock) -> None:
        first = await join(groups, client="a")
        again = await join(groups, first["member_id"], client="a")
        assert again == first and groups.groups["g"].state == GroupState.COMPLETING_REBALANCE
        await sync(groups, first["member_id"], 1, [(first["member_id"], b"A")])
        leader, follower, gen = await stable_pair_after(groups, first["member_id"])
        same = await join(groups, follower, client="b")
        assert (same["generation_id"], same["members"], same["leader"]) == (gen, [], leader)
        assert groups.groups["g"].state == GroupState.STABLE
        changed = join(groups, follower, client="b", protocols=[("range", b"new metadata")])
        rejoined = join(groups, leader, client="a")
        assert (await changed)["generation_id"] == (await rejoined)["generation_id"] == gen + 1

    async def stable_pair_after(groups: GroupCoordinator, leader: str) -> tuple[str, str, int]:
        jb = join(groups, client="b")
        await settle()
        ja = await join(groups, leader, client="a")  # the group is rebalancing: the leader comes back
        jb_done = await jb
        gen = ja["generation_id"]
        sf = sync(groups, jb_done["member_id"], gen)
        await sync(groups, leader, gen, [(leader, b"A"), (jb_done["member_id"], b"B")])
        await sf
        return leader, jb_done["member_id"], gen

    run(tmp_path, scenario)
