"""Standby replicas on a real broker: two instances of an exactly-once count over thousands of
keys, one killed with SIGKILL. With ``num_standby_replicas=1`` the survivor held a warm copy
of the killed instance's store and restores only the changelog's tail after its checkpoint;
with 0 it restores the whole changelog partition. The counts are exact either way."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.streams._checkpoint import read_checkpoint
from tomyum.testing import BrokerProcess, wait_until
from tests.integration.test_streams_runtime import TIMEOUT, AppProcess, WordFeed, latest_counts

#: two fail-overs of two processes, each past a 6 s session timeout (make test-slow)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

KEYS = 3_000


def words_of_line(i: int) -> str:
    """Line ``i`` of the input: five words, KEYS of them in turn."""
    return " ".join(f"k{(i * 5 + j) % KEYS:05d}" for j in range(5))


def create_topics(bootstrap: str, *topics: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until the answers are in
    for f in admin.create_topics([NewTopic(t, 2, 1) for t in topics]).values():
        f.result(TIMEOUT)


def changelog_records(bootstrap: str, topic: str, partition: int, start: int, end: int) -> int:
    """The committed records of ``topic[partition]`` in ``[start, end)``, counted by a
    read_committed consumer of our own."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"count-{time.monotonic_ns()}",
                  "isolation.level": "read_committed", "enable.auto.commit": False})
    seen = 0
    try:
        c.assign([TopicPartition(topic, partition, start)])

        def at_end() -> bool:
            nonlocal seen
            seen += sum(1 for m in c.consume(num_messages=1000, timeout=0.2)
                        if m.error() is None and m.offset() < end)
            return c.position([TopicPartition(topic, partition)])[0].offset >= end

        wait_until(at_end, TIMEOUT, interval=0, what=f"{topic}[{partition}] read to {end}")
        return seen
    finally:
        c.close()


def restores(app: AppProcess, tasks: set[str]) -> dict[str, tuple[int, int, int]]:
    """task -> (first offset read, end offset, records restored) of its counts store, from the
    app's RESTORE lines (first and end are -1 when a checkpoint left nothing to read)."""
    starts: dict[int, tuple[int, int]] = {}
    done: dict[str, tuple[int, int, int]] = {}

    def all_restored() -> bool:
        while not app.restores.empty():
            kind, *fields = app.restores.get_nowait().split()
            if kind == "RESTORE-START":
                starts[int(fields[1])] = (int(fields[3]), int(fields[4]))
            elif kind == "RESTORE-END":  # the listener's batches add up to its total
                assert int(fields[3]) == int(fields[4]), fields
            elif fields[0] in tasks:
                partition = int(fields[0].split("_")[1])
                done[fields[0]] = (*starts.pop(partition, (-1, -1)), int(fields[2]))
        return tasks <= done.keys()

    wait_until(all_restored, TIMEOUT, what=f"restores of {sorted(tasks)}")
    return done


def fail_over(broker: BrokerProcess, topic_name: str, tmp_path: Path, standbys: int,
              topology: str = "count") -> dict[str, Any]:
    """Run a and b (``standbys`` replicas; ``topology`` of streams_app.py), count KEYS keys, kill
    a with SIGKILL; what b restored, and what b's StandbyUpdateListener heard (split lines)."""
    text, counts = f"{topic_name}-{standbys}-text", f"{topic_name}-{standbys}-counts"
    create_topics(broker.bootstrap, text, counts)
    app_id = f"standby-{standbys}-{topic_name}"
    changelog = f"{app_id}-counts-changelog"
    feed = WordFeed(broker.bootstrap, text, words_of_line)
    expected = feed.expected

    a = AppProcess(broker.bootstrap, text, counts, app_id, str(tmp_path / f"a{standbys}"), str(standbys),
                   "exactly_once_v2", topology)
    b = AppProcess(broker.bootstrap, text, counts, app_id, str(tmp_path / f"b{standbys}"), str(standbys),
                   "exactly_once_v2", topology)
    heard: list[list[str]] = []

    def standby_loaded_to() -> int:
        """The offset after the last changelog record b's standby loaded of a's counting task."""
        while not b.standby_updates.empty():
            heard.append(b.standby_updates.get_nowait().split())
        return max((int(u[5]) + 1 for u in heard if u[:3] == ["STANDBY-BATCH", changelog, str(partition)]),
                   default=-1)

    try:
        a.wait_running_with(2)
        b.wait_running_with(2)
        taken = {t for t in a.tasks if t.startswith("1_")}  # the counting task b will take over
        partition = int(next(iter(taken)).split("_")[1])
        feed.send(1_200, 0)  # 6,000 words over 3,000 keys
        latest_counts(broker.bootstrap, counts, "read_committed", dict(expected))
        b_copy = Path(tmp_path / f"b{standbys}" / "tomyum-streams" / app_id / next(iter(taken)))
        if standbys and topology == "count-in-memory":  # b's standby in memory caught up (its listener says)
            end = admin_end(broker.bootstrap, changelog, partition)  # (the last record; then a commit marker)
            wait_until(lambda: standby_loaded_to() >= end - 1, TIMEOUT, what="the standby at the changelog's end")
        elif standbys:  # b's standby caught up with a's changelog (its checkpoint, written after a flush)
            end = admin_end(broker.bootstrap, changelog, partition)
            wait_until(lambda: (read_checkpoint(b_copy) or {}).get(changelog, -1) >= end - 1, TIMEOUT,
                       what="the standby's checkpoint at the changelog's end")
        else:  # b holds nothing of the task: no copy, or one left from owning it before any record came
            # (the first rebalance may give b every task until a joins; the fed records all came after)
            assert (read_checkpoint(b_copy) or {}).get(changelog, 0) == 0
        feed.send(200, 1_200)  # the tail: a counts these, b's standby may not have them yet
        latest_counts(broker.bootstrap, counts, "read_committed", dict(expected))
        while not b.restores.empty():  # what b restored when it started
            b.restores.get_nowait()
        a.stop(kill=True)
        killed = time.monotonic()
        assert b.wait_running_with(4) == {"0_0", "0_1", "1_0", "1_1"}
        took_over_s = time.monotonic() - killed
        restored = restores(b, taken)
        feed.send(200, 1_400)  # b goes on, from the restored counts: exact
        assert latest_counts(broker.bootstrap, counts, "read_committed", dict(expected)) == dict(expected), b.errors()
        first, end, records = restored[next(iter(taken))]
        standby_loaded_to()
        return {"standby_updates": heard, "first": first, "end": end, "restored": records, "took_over_s": took_over_s,
                "changelog": changelog, "partition": partition,
                "logged": changelog_records(broker.bootstrap, changelog, partition, 0, admin_end(
                    broker.bootstrap, changelog, partition))}
    finally:
        a.stop(kill=True)
        assert b.stop() == 0, b.errors()


def admin_end(bootstrap: str, topic: str, partition: int) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ends-{time.monotonic_ns()}"})
    try:
        return int(c.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT, cached=False)[1])
    finally:
        c.close()


def test_in_memory_stores_have_standbys_and_the_standby_update_listener_hears_them(
        broker: BrokerProcess, topic_name: str, tmp_path: Path) -> None:
    """An in-memory count with one standby: b keeps a's task warm in memory, and when a is
    killed b's active task carries on from that copy, restoring only the changelog's tail.
    b's StandbyUpdateListener (KIP-988) heard the standby start at the changelog's start,
    load it batch by batch, and stop, PROMOTED, when the task became active."""
    warm = fail_over(broker, topic_name, tmp_path, standbys=1, topology="count-in-memory")
    print(f"in-memory standby: { {k: v for k, v in warm.items() if k != 'standby_updates'} }")
    assert warm["logged"] >= KEYS // 2
    assert warm["restored"] < warm["logged"] // 10
    if warm["restored"]:
        assert warm["first"] > 0
    tp = [warm["changelog"], str(warm["partition"])]
    updates = warm["standby_updates"]
    assert ["STANDBY-START", *tp, "counts", "0"] in updates
    batches = [u for u in updates if u[:3] == ["STANDBY-BATCH", *tp]]
    assert batches and all(int(u[6]) > 0 and int(u[5]) < int(u[7]) for u in batches if int(u[7]) >= 0)
    suspended = [u for u in updates if u[:3] == ["STANDBY-SUSPENDED", *tp]]
    assert [u[-1] for u in suspended] == ["PROMOTED"]
    assert int(suspended[0][4]) >= int(batches[-1][5])  # it stopped where its last batch left it


def test_with_a_standby_the_survivor_of_a_kill_9_restores_only_the_changelog_tail(
        broker: BrokerProcess, topic_name: str, tmp_path: Path) -> None:
    warm = fail_over(broker, topic_name, tmp_path, standbys=1)
    cold = fail_over(broker, topic_name, tmp_path, standbys=0)
    print(f"standby: {warm}\nno standby: {cold}")
    # without a standby: the whole changelog partition, every record of it
    assert cold["first"] == 0 and cold["restored"] == changelog_records(
        broker.bootstrap, cold["changelog"], cold["partition"], 0, cold["end"]) >= KEYS // 2
    # with one: only what came after the standby's checkpoint — exactly the committed records there
    assert warm["restored"] < warm["logged"] // 10
    if warm["restored"]:
        assert warm["first"] > 0 and warm["restored"] == changelog_records(
            broker.bootstrap, warm["changelog"], warm["partition"], warm["first"], warm["end"])
    assert warm["took_over_s"] < 20 and cold["took_over_s"] < 20


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_restarted_after_a_kill_9_an_instance_restores_only_the_changelog_tail(
        broker: BrokerProcess, topic_name: str, tmp_path: Path, guarantee: str) -> None:
    """Each commit leaves a checkpoint (under exactly-once, once the transaction committed):
    one instance, killed with SIGKILL once its input is committed, then started again on its
    state directory, restores only what its changelogs hold after the checkpoints it left —
    here nothing — and counts on, exactly."""
    text, counts = f"{topic_name}-text", f"{topic_name}-counts"
    create_topics(broker.bootstrap, text, counts)
    app_id, state_dir = f"alos-{topic_name}", tmp_path / "a"
    feed = WordFeed(broker.bootstrap, text, words_of_line)
    expected = feed.expected

    def committed() -> bool:
        group = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": app_id})
        try:
            repartition = next(t for t in group.list_topics(timeout=TIMEOUT).topics
                               if t.startswith(app_id) and t.endswith("-repartition"))
            done = group.committed([TopicPartition(repartition, p) for p in (0, 1)], timeout=TIMEOUT)
            return sum(tp.offset for tp in done) == sum(expected.values())  # every word counted and committed
        finally:
            group.close()

    changelog = f"{app_id}-counts-changelog"
    isolation = "read_committed" if guarantee == "exactly_once_v2" else "read_uncommitted"
    a = AppProcess(broker.bootstrap, text, counts, app_id, str(state_dir), "0", guarantee)
    try:
        a.wait_running_with(4)
        feed.send(600, 0)
        latest_counts(broker.bootstrap, counts, isolation, dict(expected))
        if guarantee == "at_least_once":  # (exactly-once: outputs read committed come with their offsets)
            wait_until(committed, TIMEOUT, what="the counts committed")
        ends = {p: admin_end(broker.bootstrap, changelog, p) for p in (0, 1)}
        checkpoints = {p: state_dir / "tomyum-streams" / app_id / f"1_{p}" for p in (0, 1)}
        # (under exactly-once the changelog ends with the commit marker, after the last record)
        wait_until(lambda: all((read_checkpoint(checkpoints[p]) or {}).get(changelog, -1) >= ends[p] - 1
                               for p in (0, 1)), TIMEOUT, what="checkpoints at the changelogs' ends")
        a.stop(kill=True)
        a = AppProcess(broker.bootstrap, text, counts, app_id, str(state_dir), "0", guarantee)
        a.wait_running_with(4)
        assert {task: n for task, (_, _, n) in restores(a, {"1_0", "1_1"}).items()} == {"1_0": 0, "1_1": 0}
        assert sum(ends.values()) >= KEYS  # against a full restore of every key
        feed.send(100, 600)
        assert latest_counts(broker.bootstrap, counts, isolation, dict(expected)) == dict(expected)
    finally:
        assert a.stop() == 0, a.errors()


def test_each_instance_knows_where_the_standbys_of_a_key_are(broker: BrokerProcess, topic_name: str,
                                                            tmp_path: Path) -> None:
    """Two instances in one process, one standby replica: every stateful task has its standby
    on the other instance, and both instances' query metadata name it (``standby_hosts``)."""
    from tomyum.streams import StreamsConfig
    from tomyum.streams.runtime import HostInfo, KafkaStreams, State
    from tests.integration.test_streams_runtime import word_count

    text, counts = f"{topic_name}-text", f"{topic_name}-counts"
    create_topics(broker.bootstrap, text, counts)
    app_id = f"where-{topic_name}"
    apps = [KafkaStreams(word_count(text, counts).build(), StreamsConfig(application_id=app_id,
                                                                         state_dir=str(tmp_path / name)),
                         bootstrap_servers=broker.bootstrap, commit_interval_ms=200, num_standby_replicas=1,
                         application_server=f"127.0.0.1:{port}",
                         client_config={"consumer.session.timeout.ms": 6000,
                                        "consumer.heartbeat.interval.ms": 1000})
            for name, port in (("a", 1001), ("b", 1002))]
    try:
        for app in apps:
            app.start()
        hosts = {HostInfo("127.0.0.1", 1001): apps[0], HostInfo("127.0.0.1", 1002): apps[1]}

        def placed() -> bool:
            return all(app.state is State.RUNNING and len(app.tasks) == 2 and app.standby_tasks == sorted(
                {"1_0", "1_1"} - set(app.tasks)) for app in apps)

        wait_until(placed, TIMEOUT, what="two tasks and one standby each")
        for key in ("alpha", "beta", "gamma", "delta"):
            for app in apps:
                where = app.query_metadata_for_key("counts", key)
                owner = hosts[where.active_host]
                assert f"1_{where.partition}" in owner.tasks
                assert [hosts[h] for h in where.standby_hosts] == [b for b in apps if b is not owner]
                assert f"1_{where.partition}" in next(b for b in apps if b is not owner).standby_tasks
    finally:
        for app in apps:
            assert app.close(TIMEOUT)
