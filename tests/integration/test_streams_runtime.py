"""tomyum.streams against a real broker: a word count runs with KafkaStreams, commits its
input offsets, logs its store to a changelog topic, and after a restart carries on from the
restored counts — at_least_once and exactly_once_v2."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import BrokerWith
from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig
from tomyum.streams._checkpoint import read_checkpoint
from tomyum.streams.runtime import KafkaStreams, State
from tomyum.testing import BrokerProcess, wait_until

#: processes started, killed and restarted: minutes of them (make test-slow; CI runs it)
pytestmark = pytest.mark.slow

TIMEOUT = 60


def word_count(text: str, counts: str) -> StreamsBuilder:
    builder = StreamsBuilder()
    (builder.stream(text, value_serde=Serdes.string())
        .flat_map_values(str.split)
        .group_by(lambda key, word: word, key_serde=Serdes.string(), value_serde=Serdes.string())
        .count(Materialized(store_name="counts"))
        .to_stream()
        .to(counts, value_serde=Serdes.long()))
    return builder


def latest_counts(bootstrap: str, topic: str, isolation: str, want: dict[str, int]) -> dict[str, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{time.monotonic_ns()}",
                  "isolation.level": isolation, "enable.auto.commit": False})
    latest: dict[str, int] = {}
    try:
        parts = c.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions
        c.assign([TopicPartition(topic, p, 0) for p in parts])

        def caught_up() -> bool:
            for m in c.consume(num_messages=500, timeout=0.2):
                if m.error() is None:
                    latest[m.key().decode()] = Serdes.long().deserialize(m.value())
            return all(latest.get(k) == v for k, v in want.items())

        wait_until(caught_up, TIMEOUT, interval=0, what=f"counts {want}")
        return latest
    finally:
        c.close()


class WordFeed:
    """Lines of words into the text topic's two partitions (alternately), with the count
    each word must reach."""

    def __init__(self, bootstrap: str, topic: str, line: Callable[[int], str]) -> None:
        from collections import Counter

        self.topic, self.line = topic, line
        self.expected: Counter[str] = Counter()
        self.producer = Producer({"bootstrap.servers": bootstrap})

    def send(self, n: int, start_at: int) -> None:
        for i in range(start_at, start_at + n):
            line = self.line(i)
            self.expected.update(line.split())
            self.producer.produce(self.topic, value=line.encode(), partition=i % 2)
        assert self.producer.flush(TIMEOUT) == 0


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_word_count_runs_commits_and_restores(broker: BrokerProcess, topic_name: str, guarantee: str,
                                              tmp_path) -> None:  # type: ignore[no-untyped-def]
    text, counts = f"{topic_name}-text", f"{topic_name}-counts"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic(text, 2, 1), NewTopic(counts, 2, 1)]).values():
        f.result(TIMEOUT)
    p = Producer({"bootstrap.servers": broker.bootstrap})

    def send(*lines: str) -> None:
        for i, line in enumerate(lines):
            p.produce(text, value=line.encode(), partition=i % 2)
        assert p.flush(TIMEOUT) == 0

    config = StreamsConfig(application_id=f"wc-{topic_name}", state_dir=str(tmp_path))
    isolation = "read_committed" if guarantee == "exactly_once_v2" else "read_uncommitted"
    states: list[State] = []
    app = KafkaStreams(word_count(text, counts).build(), config, bootstrap_servers=broker.bootstrap,
                       processing_guarantee=guarantee, commit_interval_ms=200)
    app.set_state_listener(lambda new, old: states.append(new))
    app.start()
    try:
        send("hello world", "hello kafka", "hello streams")
        latest_counts(broker.bootstrap, counts, isolation, {"hello": 3, "world": 1, "kafka": 1, "streams": 1})
        assert app.query("counts", lambda store: store.get("hello")) == 3  # interactive query
        assert dict(app.query("counts", lambda store: store.all())) == {"hello": 3, "world": 1, "kafka": 1,
                                                                        "streams": 1}
        assert sorted(app.query("counts", lambda store: store.range("k", "t"))) == [("kafka", 1), ("streams", 1)]
    finally:
        assert app.close(TIMEOUT)
    assert states[:2] == [State.REBALANCING, State.RUNNING] and states[-1] == State.NOT_RUNNING
    # the input offsets were committed in the application's group, and the store was logged
    group = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": config.application_id})
    try:
        committed = group.committed([TopicPartition(text, 0), TopicPartition(text, 1)], timeout=TIMEOUT)
        assert [tp.offset for tp in committed] == [2, 1]
        logged = sum(group.get_watermark_offsets(TopicPartition(app.changelog_topic("counts"), q), timeout=TIMEOUT)[1]
                     for q in (0, 1))  # one changelog partition per task of the counting sub-topology
        assert logged >= 4
    finally:
        group.close()

    # the clean close left checkpoints: a new instance on the same state directory replays
    # nothing, and resumes after the committed input with the counts it kept
    checkpoints = sorted(tmp_path.glob("tomyum-streams/*/*/.checkpoint"))
    assert [c.parent.name for c in checkpoints] == ["1_0", "1_1"]

    def logged_offsets() -> int:
        """The changelog offsets the checkpoints name, together."""
        return sum(sum((read_checkpoint(c.parent) or {}).values()) for c in checkpoints)

    closed_at = logged_offsets()
    restored: list[tuple[str, str, int]] = []
    again = KafkaStreams(word_count(text, counts).build(), config, bootstrap_servers=broker.bootstrap,
                         processing_guarantee=guarantee, commit_interval_ms=200)
    again.set_restore_listener(lambda task, store, n: restored.append((task, store, n)))
    again.start()
    try:
        send("hello again")
        latest_counts(broker.bootstrap, counts, isolation, {"hello": 4, "again": 1, "world": 1})
        assert sorted(restored) == [("1_0", "counts", 0), ("1_1", "counts", 0)]
        # written again at each commit: a crash from here on restores only the tail
        wait_until(lambda: logged_offsets() > closed_at, TIMEOUT, what="checkpoints written at a commit")
    finally:
        assert again.close(TIMEOUT)
    assert again.state == State.NOT_RUNNING

    # without the local state (a new machine), the changelog brings the counts back
    import shutil

    shutil.rmtree(tmp_path / "tomyum-streams")
    restored.clear()
    third = KafkaStreams(word_count(text, counts).build(), config, bootstrap_servers=broker.bootstrap,
                         processing_guarantee=guarantee, commit_interval_ms=200)
    third.set_restore_listener(lambda task, store, n: restored.append((task, store, n)))
    third.start()
    try:
        send("hello once more")
        latest_counts(broker.bootstrap, counts, isolation, {"hello": 5, "once": 1, "more": 1, "world": 1})
        assert sum(n for _, _, n in restored) >= 6  # every word counted so far, from the changelog
    finally:
        assert third.close(TIMEOUT)


def run_until_error(app: KafkaStreams, bootstrap: str, topic: str) -> None:
    """Start ``app``, write one record to ``topic``, wait until the app has failed, close it."""
    app.start()
    try:
        p = Producer({"bootstrap.servers": bootstrap})
        p.produce(topic, value=b"x")
        assert p.flush(TIMEOUT) == 0
        wait_until(lambda: app.state == State.ERROR, TIMEOUT, what="the app to fail")
    finally:
        app.close(TIMEOUT)


def test_an_uncaught_exception_stops_the_app_and_reaches_the_handler(broker: BrokerProcess, topic_name: str,
                                                                      tmp_path) -> None:  # type: ignore[no-untyped-def]
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
    builder = StreamsBuilder()

    def explode(key: object, value: object) -> None:
        raise ValueError("bad record")

    builder.stream(topic_name).foreach(explode)
    errors: list[BaseException] = []
    app = KafkaStreams(builder.build(), StreamsConfig(application_id=f"boom-{topic_name}", state_dir=str(tmp_path)),
                       bootstrap_servers=broker.bootstrap)
    app.set_uncaught_exception_handler(errors.append)
    states: list[State] = []
    app.set_state_listener(lambda new, old: states.append(new))
    run_until_error(app, broker.bootstrap, topic_name)
    assert isinstance(errors[0], ValueError)
    # Kafka's path to ERROR: the handler is called in PENDING_ERROR, while the clients close
    assert states == [State.REBALANCING, State.RUNNING, State.PENDING_ERROR, State.ERROR]
    assert app.state == State.ERROR  # close() after an error leaves it there


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_an_output_topic_that_does_not_exist_stops_the_app_before_it_commits(broker_with: BrokerWith, topic_name: str,
                                                                          guarantee: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Kafka Streams creates only its internal topics (docs/streams.md, output topics must
    exist): with auto-creation off, a record for a missing output topic is not delivered, and
    the application stops with an error naming the topic, its input offset not committed."""
    missing = f"{topic_name}-out"
    with broker_with({"auto.create.topics.enable": "false"}) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
        builder = StreamsBuilder()
        builder.stream(topic_name).to(missing)
        app_id = f"no-out-{topic_name}"
        errors: list[BaseException] = []
        app = KafkaStreams(builder.build(), StreamsConfig(application_id=app_id, state_dir=str(tmp_path)),
                           bootstrap_servers=broker.bootstrap, processing_guarantee=guarantee,
                           commit_interval_ms=100, client_config={"producer.topic.metadata.propagation.max.ms": 1000})
        app.set_uncaught_exception_handler(errors.append)
        run_until_error(app, broker.bootstrap, topic_name)
        assert missing in str(errors[0]), errors
        assert missing not in admin.list_topics(timeout=TIMEOUT).topics
        group = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": app_id})
        try:
            assert group.committed([TopicPartition(topic_name, 0)], timeout=TIMEOUT)[0].offset < 0
        finally:
            group.close()


def test_exactly_once_word_count_through_kill_9_and_a_lost_state_directory(broker: BrokerProcess, topic_name: str,
                                                                           tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The app is killed with SIGKILL mid-stream, restarted, then restarted again with its
    state directory deleted (restored from the changelog): a read_committed consumer of its
    output sees exactly the right counts."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    text, counts = f"{topic_name}-text", f"{topic_name}-counts"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic(text, 2, 1), NewTopic(counts, 2, 1)]).values():
        f.result(TIMEOUT)
    state_dir = tmp_path / "state"
    script = Path(__file__).parent / "streams_app.py"

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, str(script), broker.bootstrap, text, counts, f"eos-{topic_name}",
                                 str(state_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    words = ["alpha", "beta", "gamma", "delta"]
    feed = WordFeed(broker.bootstrap, text, lambda i: " ".join(words[(i + j) % 4] for j in range(i % 3 + 1)))
    send, expected = feed.send, feed.expected

    app = start()
    try:
        send(300, 0)
        probe = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "probe"})
        try:  # it is processing: committed output appears
            wait_until(lambda: any(probe.get_watermark_offsets(TopicPartition(counts, q), timeout=5)[1] > 0
                                   for q in (0, 1)), TIMEOUT, what="the first output")
        finally:
            probe.close()
        send(300, 300)
        app.kill()  # mid-stream: an open transaction is left behind
        app.wait(10)
        app = start()
        send(300, 600)
        latest_counts(broker.bootstrap, counts, "read_committed", dict(expected))
        app.terminate()
        assert app.wait(30) == 0
        shutil.rmtree(state_dir)  # the local state is gone: the changelog brings it back
        app = start()
        send(100, 900)
        got = latest_counts(broker.bootstrap, counts, "read_committed", dict(expected))
        assert got == dict(expected)
    finally:
        app.kill()
        app.wait(10)


class AppProcess:
    """streams_app.py as a process, its state lines read by a thread."""

    def __init__(self, *args: str) -> None:
        import queue
        import subprocess
        import sys
        import threading
        from pathlib import Path

        self.log = Path(args[4]).with_suffix(".log").open("w")  # beside its state directory  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "streams_app.py"), *args],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.restores: queue.SimpleQueue[str] = queue.SimpleQueue()
        """The app's RESTORE-START and RESTORED lines (see streams_app.py)."""
        self.standby_updates: queue.SimpleQueue[str] = queue.SimpleQueue()
        """The app's STANDBY-START, STANDBY-BATCH and STANDBY-SUSPENDED lines."""
        self.tasks: set[str] = set()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:  # closed at the end of the app's output
            for line in self.proc.stdout:
                target = self.restores if line.startswith("RESTORE") else self.lines
                (self.standby_updates if line.startswith("STANDBY-") else target).put(line.strip())

    def wait_running_with(self, count: int, timeout: float = 60) -> set[str]:
        """Wait until the app reports RUNNING with ``count`` tasks; return them."""
        def running() -> bool:
            while not self.lines.empty():
                state, _, tasks = self.lines.get_nowait().partition(" ")
                if state == "RUNNING":
                    self.tasks = set(filter(None, tasks.split(",")))
                elif state in ("REBALANCING", "ERROR"):
                    self.tasks = set()
            return len(self.tasks) == count

        wait_until(running, timeout, what=f"{count} tasks running")
        return self.tasks

    def signal(self, sig: int) -> None:
        import os

        os.kill(self.proc.pid, sig)

    def stop(self, kill: bool = False) -> int:
        if self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
        code = self.proc.wait(30)
        self.log.close()
        return code

    def errors(self) -> str:
        """The app's log lines at WARNING and above (for assertion messages)."""
        from pathlib import Path

        lines = Path(self.log.name).read_text(errors="replace").splitlines()
        return "\n".join(line for line in lines if " WARNING " in line or " ERROR " in line or "Error" in line)[-3000:]


def test_two_instances_split_the_tasks_and_take_over(broker: BrokerProcess, topic_name: str,
                                                     tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two instances of one exactly-once word count share its four tasks (the counting
    sub-topology behind a repartition topic, two partitions each), each holding partition n
    of both; one is killed with SIGKILL and the other takes its tasks over, restoring their
    counts from the changelog; it comes back and they split again. The counts seen by a
    read_committed consumer are exact throughout."""
    text, counts = f"{topic_name}-text", f"{topic_name}-counts"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic(text, 2, 1), NewTopic(counts, 2, 1)]).values():
        f.result(TIMEOUT)
    app_id = f"split-{topic_name}"
    words = ["alpha", "beta", "gamma", "delta", "epsilon"]
    feed = WordFeed(broker.bootstrap, text, lambda i: " ".join(words[(i + j) % 5] for j in range(i % 4 + 1)))
    send, expected = feed.send, feed.expected

    def start(name: str) -> AppProcess:
        return AppProcess(broker.bootstrap, text, counts, app_id, str(tmp_path / name))

    everything = {"0_0", "0_1", "1_0", "1_1"}
    a = start("a")
    b: AppProcess | None = None
    try:
        assert a.wait_running_with(4) == everything
        send(200, 0)
        latest_counts(broker.bootstrap, counts, "read_committed", dict(expected))
        b = start("b")
        b.wait_running_with(2)
        a.wait_running_with(2)
        assert a.tasks | b.tasks == everything and not a.tasks & b.tasks
        for tasks in (a.tasks, b.tasks):  # co-partitioned: both sub-topologies' tasks of one partition
            assert {t.split("_")[1] for t in tasks} in ({"0"}, {"1"})
        send(300, 200)
        latest_counts(broker.bootstrap, counts, "read_committed", dict(expected))

        a.stop(kill=True)  # b takes over a's tasks once a's session runs out
        send(300, 500)
        assert b.wait_running_with(4) == everything
        latest_counts(broker.bootstrap, counts, "read_committed", dict(expected))

        a = start("a")  # back, with its state directory: the tasks split again
        a.wait_running_with(2)
        b.wait_running_with(2)
        send(200, 800)
        got = latest_counts(broker.bootstrap, counts, "read_committed", dict(expected))
        assert got == dict(expected)
        assert a.stop() == 0 and b.stop() == 0
    finally:
        a.stop(kill=True)
        if b is not None:
            b.stop(kill=True)


def test_joins_across_partitions_foreign_key_and_global_table(broker: BrokerProcess, topic_name: str,
                                                              tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Orders (3 partitions) joined by customer id to customers (2 partitions) with a
    foreign-key join, whose subscriptions and answers cross partitions through internal
    topics; and a stream of payments (3 partitions) joined to a global table of currencies
    (2 partitions) by a field of the value. Updates on either side after the start show up."""
    S = Serdes.string()
    orders, customers, payments, currencies = (f"{topic_name}-{t}" for t in ("orders", "customers", "payments",
                                                                             "currencies"))
    out_orders, out_payments = f"{topic_name}-order-view", f"{topic_name}-payment-view"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    spec = [(orders, 3), (customers, 2), (payments, 3), (currencies, 2), (out_orders, 1), (out_payments, 1)]
    for f in admin.create_topics([NewTopic(t, n, 1) for t, n in spec]).values():
        f.result(TIMEOUT)
    # keyed as Kafka's Java clients, KafkaJS and tomyum.streams key them (librdkafka's default differs)
    p = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})

    def send(topic: str, *pairs: tuple[str, str | None]) -> None:
        for key, value in pairs:
            p.produce(topic, key=key.encode(), value=None if value is None else value.encode())
        assert p.flush(TIMEOUT) == 0

    send(customers, *[(f"c{i}", f"customer {i}") for i in range(10)])
    send(currencies, ("EUR", "euro"), ("NOK", "krone"))
    b = StreamsBuilder()
    (b.table(orders, key_serde=S, value_serde=S)
        .join(b.table(customers, key_serde=S, value_serde=S), lambda o, c: f"{o.split(':')[1]} for {c}",
              foreign_key=lambda o: o.split(":")[0])
        .to_stream().to(out_orders, value_serde=S))
    rates = b.global_table(currencies, key_serde=S, value_serde=S)
    (b.stream(payments, key_serde=S, value_serde=S)
        .left_join(rates, lambda v, name: f"{v.split(' ')[0]} {name}", key_selector=lambda k, v: v.split(" ")[1])
        .to(out_payments, value_serde=S))
    app = KafkaStreams(b.build(), StreamsConfig(application_id=f"joins-{topic_name}", state_dir=str(tmp_path)),
                       bootstrap_servers=broker.bootstrap, commit_interval_ms=200)
    app.start()

    def latest(topic: str, want: dict[str, str | None]) -> None:
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"check-{time.monotonic_ns()}"})
        seen: dict[str, str | None] = {}
        try:
            c.assign([TopicPartition(topic, 0, 0)])

            def caught_up() -> bool:
                for m in c.consume(num_messages=500, timeout=0.2):
                    if m.error() is None:
                        value = m.value()
                        seen[m.key().decode()] = None if value is None else value.decode()
                return all(k in seen and seen[k] == v for k, v in want.items())

            wait_until(caught_up, TIMEOUT, interval=0, what=f"{topic}: {want} (seen {seen})")
        finally:
            c.close()

    try:
        wait_until(lambda: app.state == State.RUNNING, TIMEOUT, what="the app to run")
        send(orders, *[(f"o{i}", f"c{i % 10}:item{i}") for i in range(30)])
        latest(out_orders, {f"o{i}": f"item{i} for customer {i % 10}" for i in range(30)})
        send(customers, ("c3", "Carol"), ("c4", None))  # a rename reaches o3, o13, o23; a delete drops o4...
        send(orders, ("o0", "c3:item0"))  # o0 moves to another customer
        latest(out_orders, {"o3": "item3 for Carol", "o13": "item13 for Carol", "o0": "item0 for Carol",
                            "o4": None, "o14": None, "o24": None})
        send(payments, *[(f"p{i}", f"{i}.00 {'EUR' if i % 2 else 'NOK'}") for i in range(6)], ("px", "1.00 USD"))
        latest(out_payments, {"p1": "1.00 euro", "p2": "2.00 krone", "px": "1.00 None"})
        send(currencies, ("USD", "dollar"))  # the global table follows its topic while running
        wait_until(lambda: app.query(next(iter(app.topology.global_stores)), lambda s: s.get("USD")) == "dollar",
                   TIMEOUT, what="the global table to see USD")
        send(payments, ("py", "2.00 USD"))
        latest(out_payments, {"py": "2.00 dollar"})
    finally:
        assert app.close(TIMEOUT)
    assert app.state == State.NOT_RUNNING


def test_a_second_instance_on_the_same_state_directory_is_refused(broker: BrokerProcess, topic_name: str,
                                                                  tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tomyum.streams import TopologyError

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic(f"{topic_name}-text", 1, 1), NewTopic(f"{topic_name}-counts", 1, 1)]).values():
        f.result(TIMEOUT)
    config = StreamsConfig(application_id=f"lock-{topic_name}", state_dir=str(tmp_path))
    first = KafkaStreams(word_count(f"{topic_name}-text", f"{topic_name}-counts").build(), config,
                         bootstrap_servers=broker.bootstrap)
    second = KafkaStreams(word_count(f"{topic_name}-text", f"{topic_name}-counts").build(), config,
                          bootstrap_servers=broker.bootstrap)
    errors: list[BaseException] = []
    second.set_uncaught_exception_handler(errors.append)
    first.start()
    try:
        wait_until(lambda: first.state == State.RUNNING, TIMEOUT, what="the first instance to run")
        second.start()
        wait_until(lambda: second.state == State.ERROR, TIMEOUT, what="the second instance to stop")
        assert isinstance(errors[0], TopologyError) and "in use by another instance" in str(errors[0])
        assert first.state == State.RUNNING
    finally:
        assert first.close(TIMEOUT) and second.close(TIMEOUT)
    again = KafkaStreams(word_count(f"{topic_name}-text", f"{topic_name}-counts").build(), config,
                         bootstrap_servers=broker.bootstrap)
    again.start()  # the lock went with the first instance
    try:
        wait_until(lambda: again.state == State.RUNNING, TIMEOUT, what="a later instance to run")
    finally:
        assert again.close(TIMEOUT)


def test_internal_topics_are_created_with_kafkas_configs(broker: BrokerProcess, topic_name: str,
                                                         tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A repartition topic as wide as its input, kept until purged; a key-value changelog
    compacted; a window store's changelog compacted and deleted after the store's retention
    plus a day; one changelog partition per task."""
    from confluent_kafka.admin import ConfigResource

    from tomyum.streams import TimeWindows

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 3, 1)])[topic_name].result(TIMEOUT)
    b = StreamsBuilder()
    grouped = b.stream(topic_name, value_serde=Serdes.string()).group_by(
        lambda k, v: v, key_serde=Serdes.string(), value_serde=Serdes.string(), name="by-value")
    grouped.count(Materialized(store_name="totals"))
    grouped.windowed_by(TimeWindows.of_size_and_grace(60_000, 5_000)).count(Materialized(store_name="per-minute"))
    app_id = f"cfg-{topic_name}"
    app = KafkaStreams(b.build(), StreamsConfig(application_id=app_id, state_dir=str(tmp_path)),
                       bootstrap_servers=broker.bootstrap)
    app.start()
    try:
        wait_until(lambda: app.state == State.RUNNING, TIMEOUT, what="the app to run")
        topics = {f"{app_id}-by-value-repartition": ("delete", "-1"), f"{app_id}-totals-changelog": ("compact", None),
                  f"{app_id}-per-minute-changelog": ("compact,delete", str(65_000 + 86_400_000))}
        metadata = admin.list_topics(timeout=TIMEOUT).topics
        for topic, (policy, retention) in topics.items():
            assert len(metadata[topic].partitions) == 3, topic
            resource = ConfigResource("topic", topic)
            config = admin.describe_configs([resource])[resource].result(TIMEOUT)
            assert config["cleanup.policy"].value == policy, topic
            if retention is not None:
                assert config["retention.ms"].value == retention, topic
    finally:
        assert app.close(TIMEOUT)


@pytest.mark.parametrize("windows", ["tumbling", "session", "sliding"])
def test_windowed_counts_are_restored_from_their_changelogs(broker: BrokerProcess, topic_name: str, tmp_path,
                                                            windows: str) -> None:  # type: ignore[no-untyped-def]
    """A windowed count runs, stops, loses its state directory, and a new instance carries
    on from the window store restored out of its changelog."""
    import shutil

    from tomyum.streams import SessionWindows, SlidingWindows, TimeWindows

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(TIMEOUT)
    spec = {"tumbling": TimeWindows.of_size_and_grace(10_000, 60_000),
            "session": SessionWindows.of_inactivity_gap_and_grace(10_000, 60_000),
            "sliding": SlidingWindows.of_time_difference_and_grace(10_000, 60_000)}[windows]

    def topology() -> Any:
        b = StreamsBuilder()
        b.stream(topic_name, key_serde=Serdes.string(), value_serde=Serdes.string()).group_by_key().windowed_by(
            spec).count(Materialized(store_name="per-window"))  # type: ignore[call-overload]
        return b.build()

    p = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})

    def send(*stamps: int) -> None:
        for ts in stamps:
            p.produce(topic_name, key=b"k", value=b"v", timestamp=ts)
        assert p.flush(TIMEOUT) == 0

    def count_at(app: KafkaStreams, ts: int) -> int | None:
        def read(stores: Any) -> int | None:
            if windows == "session":  # the session around ts
                return max((v for _, v in stores.find_sessions("k", ts, ts)), default=None)
            if windows == "sliding":  # the window ending at ts holds everything up to it
                return max((v for _, v in stores.fetch_range("k", ts - 10_000, ts)), default=None)
            count: int | None = stores.fetch("k", ts - ts % 10_000)
            return count
        return app.query("per-window", read)

    # a moment ago, on a window boundary: records stamped long ago would be Kafka's retention's
    # to delete at once (input topic and changelog alike)
    base = int(time.time() * 1000) // 10_000 * 10_000 - 10_000
    config = StreamsConfig(application_id=f"win-{windows}-{topic_name}", state_dir=str(tmp_path))
    first = KafkaStreams(topology(), config, bootstrap_servers=broker.bootstrap, commit_interval_ms=100)
    first.start()
    try:
        send(base + 1_000, base + 2_000, base + 3_000)
        wait_until(lambda: first.state == State.RUNNING and count_at(first, base + 3_000) == 3, TIMEOUT,
                   what="three records counted")
    finally:
        assert first.close(TIMEOUT)
    shutil.rmtree(tmp_path / "tomyum-streams")
    again = KafkaStreams(topology(), config, bootstrap_servers=broker.bootstrap, commit_interval_ms=100)
    again.start()
    try:
        send(base + 4_000)
        wait_until(lambda: again.state == State.RUNNING and count_at(again, base + 4_000) == 4, TIMEOUT,
                   what="the fourth record counted on the restored window")
    finally:
        assert again.close(TIMEOUT)


def test_a_paused_instance_is_fenced_and_rejoins_without_duplicates(broker: BrokerProcess, topic_name: str,
                                                                    tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The zombie case of exactly-once: one of two instances is frozen (SIGSTOP) while it
    works, the other takes its tasks over once its session runs out, and when the frozen one
    wakes up (SIGCONT) it must not get anything in: its transaction was aborted and its
    producer fenced, so it drops what it held, rejoins and the tasks split again. The counts
    stay exact for a read_committed consumer."""
    import signal as signals
    text, counts = f"{topic_name}-text", f"{topic_name}-counts"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic(text, 2, 1), NewTopic(counts, 2, 1)]).values():
        f.result(TIMEOUT)
    feed = WordFeed(broker.bootstrap, text, lambda i: f"w{i % 7} w{i % 11}")
    send, expected = feed.send, feed.expected

    app_id = f"zombie-{topic_name}"
    a = AppProcess(broker.bootstrap, text, counts, app_id, str(tmp_path / "a"))
    b: AppProcess | None = None
    try:
        a.wait_running_with(4)
        b = AppProcess(broker.bootstrap, text, counts, app_id, str(tmp_path / "b"))
        b.wait_running_with(2)
        a.wait_running_with(2)
        send(300, 0)
        latest_counts(broker.bootstrap, counts, "read_committed", dict(expected))

        send(400, 300)
        a.signal(signals.SIGSTOP)  # frozen, most likely inside a transaction
        assert b.wait_running_with(4, timeout=90) == {"0_0", "0_1", "1_0", "1_1"}
        latest_counts(broker.bootstrap, counts, "read_committed", dict(expected))

        a.tasks = set()
        a.signal(signals.SIGCONT)  # the zombie wakes up
        a.wait_running_with(2, timeout=90)
        b.wait_running_with(2, timeout=90)
        send(300, 700)
        got = latest_counts(broker.bootstrap, counts, "read_committed", dict(expected))
        assert got == dict(expected)
        assert a.stop() == 0, a.errors()
        assert b.stop() == 0, b.errors()
    finally:
        a.signal(signals.SIGCONT) if a.proc.poll() is None else None
        a.stop(kill=True)
        if b is not None:
            b.stop(kill=True)
