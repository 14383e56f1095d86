"""What the group handlers ask of the coordinator, decided there once: group-type routing,
commit validation for every group type, commit timestamps from the injected clock, deletion."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from tomyum.config import BrokerConfig
from tomyum.coordinator.group.consumer import ConsumerGroupRuntime, HeartbeatRequest
from tomyum.coordinator.group.coordinator import GroupCoordinator
from tomyum.coordinator.group.offsets import OffsetStore
from tomyum.coordinator.group.service import GroupCoordinatorService, OffsetCommitEntry
from tomyum.coordinator.timer import CoordinatorTimer
from tomyum.errors import ErrorCode
from tomyum.protocol.records import iter_batches
from tomyum.storage.memory import MemoryLogStore
from tomyum.testing.clock import FakeClock
from tomyum.testing.store import TopicStore

Scenario = Callable[[GroupCoordinatorService, FakeClock], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario) -> None:
    async def main() -> None:
        clock = FakeClock()
        store = TopicStore(tmp_path, BrokerConfig(), clock, engine=MemoryLogStore(tmp_path, BrokerConfig(), clock))
        await store.start()
        await store.create_topic("t", 2, {})
        offsets = OffsetStore(store, 3, clock)
        timer = CoordinatorTimer(clock)
        classic = GroupCoordinator(initial_rebalance_delay_ms=0, min_session_timeout_ms=6000,
                                   max_session_timeout_ms=60_000, write=offsets.runtime.write, clock=clock, timer=timer)
        offsets.classic = classic
        consumer = ConsumerGroupRuntime(heartbeat_interval_ms=5000, session_timeout_ms=45_000, topics=lambda: {},
                                        timer=timer, write=offsets.runtime.write)
        offsets.consumer = consumer.state
        service = GroupCoordinatorService(classic=classic, consumer=consumer, offsets=offsets,
                                          topics=store.topics, clock=clock)
        try:
            await scenario(service, clock)
        finally:
            await classic.stop()
            timer.stop()
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def entry(partition: int, offset: int, topic: str = "t", metadata: str = "") -> OffsetCommitEntry:
    return OffsetCommitEntry(topic=topic, partition=partition, offset=offset, leader_epoch=-1, metadata=metadata)


async def classic_member(service: GroupCoordinatorService, group_id: str = "g") -> str:
    joined = await (await service.join_group(
        group_id=group_id, member_id="", group_instance_id=None, client_id="c", client_host="/127.0.0.1",
        session_timeout_ms=10_000, rebalance_timeout_ms=10_000, protocol_type="consumer",
        protocols=[("range", b"")], require_known_member_id=False))
    me = str(joined["member_id"])
    await service.classic.sync(group_id=group_id, generation_id=1, member_id=me, assignments=[(me, b"")])
    return me


def consumer_heartbeat(group_id: str = "g") -> HeartbeatRequest:
    return HeartbeatRequest(group_id=group_id, member_id="m-1", member_epoch=0, instance_id=None, rack_id=None,
                            rebalance_timeout_ms=30_000, subscribed_topic_names=("t",), subscribed_topic_regex=None,
                            server_assignor=None, owned={}, client_id="c", client_host="/127.0.0.1")


def test_commits_are_checked_per_partition_and_stamped_with_the_clock(tmp_path: Path) -> None:
    async def scenario(service: GroupCoordinatorService, clock: FakeClock) -> None:
        code = service.check_commit("g", "", -1, None, 9)
        codes = await service.commit_offsets("g", code, [entry(0, 5), entry(7, 1), entry(1, 2, topic="nope"),
                                                         entry(1, 3, metadata="x" * 5000)])
        assert codes == [ErrorCode.none, ErrorCode.unknown_topic_or_partition,
                         ErrorCode.unknown_topic_or_partition, ErrorCode.offset_metadata_too_large]
        committed = service.offsets.fetch("g", "t", 0)
        assert committed is not None and (committed.offset, committed.commit_timestamp) == (5, clock.time_ms())

    run(tmp_path, scenario)


def test_a_refused_group_refuses_every_partition_and_stores_nothing(tmp_path: Path) -> None:
    async def scenario(service: GroupCoordinatorService, clock: FakeClock) -> None:
        me = await classic_member(service)
        assert service.check_commit("g", me, 1, None, 8) == ErrorCode.none
        assert service.check_commit("g", me, 0, None, 8) == ErrorCode.illegal_generation
        assert service.check_commit("g", "", -1, None, 8) == ErrorCode.unknown_member_id
        codes = await service.commit_offsets("g", ErrorCode.illegal_generation, [entry(0, 5), entry(1, 5)])
        assert codes == [ErrorCode.illegal_generation] * 2 and service.offsets.fetch("g", "t", 0) is None
        # a transactional commit without a generation or member is not the group's to check
        assert service.check_commit("g", "", -1, None, 3, transactional=True) == ErrorCode.none

    run(tmp_path, scenario)


def test_a_consumer_group_is_checked_by_member_epoch(tmp_path: Path) -> None:
    async def scenario(service: GroupCoordinatorService, clock: FakeClock) -> None:
        answer = await service.consumer_group_heartbeat(consumer_heartbeat())
        assert answer["error_code"] == ErrorCode.none
        epoch = int(answer["member_epoch"])
        assert service.check_commit("g", "m-1", epoch, None, 9) == ErrorCode.none
        assert service.check_commit("g", "m-1", epoch - 1, None, 9) == ErrorCode.stale_member_epoch

    run(tmp_path, scenario)


def test_one_group_id_is_one_type(tmp_path: Path) -> None:
    async def scenario(service: GroupCoordinatorService, clock: FakeClock) -> None:
        await classic_member(service, "classic")
        refused = await service.consumer_group_heartbeat(consumer_heartbeat("classic"))
        assert refused["error_code"] == ErrorCode.group_id_not_found
        assert (await service.consumer_group_heartbeat(consumer_heartbeat("kip848")))["error_code"] == 0
        joined = await (await service.join_group(
            group_id="kip848", member_id="", group_instance_id=None, client_id="c", client_host="h",
            session_timeout_ms=10_000, rebalance_timeout_ms=10_000, protocol_type="consumer",
            protocols=[("range", b"")], require_known_member_id=False))
        assert joined["error_code"] == ErrorCode.inconsistent_group_protocol

    run(tmp_path, scenario)


def test_only_empty_groups_are_deleted_with_their_offsets(tmp_path: Path) -> None:
    async def scenario(service: GroupCoordinatorService, clock: FakeClock) -> None:
        await classic_member(service, "busy")
        await service.commit_offsets("idle", ErrorCode.none, [entry(0, 1)])
        codes = await service.delete_groups(["busy", "idle", "unknown"])
        assert codes == [ErrorCode.non_empty_group, ErrorCode.none, ErrorCode.group_id_not_found]
        assert service.offsets.fetch("idle", "t", 0) is None

    run(tmp_path, scenario)


def test_a_static_member_past_its_session_is_gone_when_its_group_is_deleted(tmp_path: Path) -> None:
    """A static member closed without leaving is removed exactly at its session timeout (Kafka's
    per-member timer): DeleteGroups just after it finds the group empty, with no sweep between."""
    async def scenario(service: GroupCoordinatorService, clock: FakeClock) -> None:
        classic = service.classic
        joined = await classic.join(group_id="g", member_id="", group_instance_id="static-1", client_id="c",
                                    client_host="/h", session_timeout_ms=6000, rebalance_timeout_ms=10_000,
                                    protocol_type="consumer", protocols=[("range", b"m")],
                                    require_known_member_id=False)
        await classic.sync(group_id="g", generation_id=joined["generation_id"], member_id=joined["member_id"],
                           assignments=[(joined["member_id"], b"a")], group_instance_id="static-1")
        assert await service.delete_groups(["g"]) == [ErrorCode.non_empty_group]
        clock.advance(6001)  # past the session timeout; no tick of the sweep
        assert await service.delete_groups(["g"]) == [ErrorCode.none]

    run(tmp_path, scenario)


def test_a_deleted_group_goes_with_its_offsets_in_one_batch_and_stays_gone_after_a_load(tmp_path: Path) -> None:
    """Kafka writes a group's deletion as one batch: its metadata tombstone and its offsets'."""
    async def scenario(service: GroupCoordinatorService, clock: FakeClock) -> None:
        me = await classic_member(service, "g")
        await service.commit_offsets("g", service.check_commit("g", me, 1, None, 8), [entry(0, 5), entry(1, 7)])
        assert await service.classic.leave("g", me, None) == ErrorCode.none
        runtime = service.offsets.runtime
        tp = runtime.partition_of("g")
        before = runtime.store.offsets(tp).high_watermark
        assert await service.delete_groups(["g"]) == [ErrorCode.none]
        assert runtime.store.offsets(tp).high_watermark == before + 3  # 2 offset tombstones + the group's
        read = await runtime.store.read(tp, before, 1 << 20)
        data = read.records if isinstance(read.records, bytes) else read.records.read_all()
        assert len(list(iter_batches(data))) == 1  # in one batch
        assert "g" not in service.classic.groups and service.offsets.fetch("g", "t", 0) is None
        offsets = OffsetStore(runtime.store, 3, clock)
        reloaded = GroupCoordinator(initial_rebalance_delay_ms=0, min_session_timeout_ms=6000,
                                    max_session_timeout_ms=60_000, write=offsets.runtime.write, clock=clock)
        offsets.classic = reloaded
        await offsets.start()
        assert "g" not in reloaded.groups and offsets.groups() == set()

    run(tmp_path, scenario)


def test_offsets_of_groups_without_members_expire_on_the_coordinator_timer(tmp_path: Path) -> None:
    """offsets.retention.check.interval.ms on the fake clock: each check expires the committed
    offsets of empty groups past offsets.retention.minutes; a group with members keeps them."""
    async def scenario(service: GroupCoordinatorService, clock: FakeClock) -> None:
        me = await classic_member(service, "busy")
        await service.commit_offsets("busy", service.check_commit("busy", me, 1, None, 8), [entry(0, 3)])
        await service.commit_offsets("idle", ErrorCode.none, [entry(0, 1)])
        service.schedule_offsets_expiry(retention_ms=60_000, interval_ms=10_000)
        for _ in range(5):  # 50 s: not yet; the busy member heartbeats
            clock.advance(10_000)
            assert service.classic.heartbeat(group_id="busy", generation_id=1, member_id=me).response == ErrorCode.none
            await service.classic.timer.run_due()
        assert service.offsets.fetch("idle", "t", 0) is not None
        clock.advance(10_000)
        assert service.classic.heartbeat(group_id="busy", generation_id=1, member_id=me).response == ErrorCode.none
        await service.classic.timer.run_due()
        assert service.offsets.fetch("idle", "t", 0) is None
        assert service.offsets.fetch("busy", "t", 0) is not None

    run(tmp_path, scenario)
