"""Java kafka-clients 4.4 and Kafka Streams 4.4 against a real tomyum broker (issue 20).

The programs are ``tests/interop/java/src/*.java``, compiled once per session against the jars
``tests/interop/java/pom.xml`` names (fetched with Maven on first use, never committed). Each
prints JSON lines that these tests assert on. Test names are ``test_<capability>`` for the
compatibility matrix (docs/compatibility.md).
"""

from __future__ import annotations

import collections
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.interop.java.harness import Event, Java, JavaProcess, build
from tomyum.protocol.records import Compression, parse_header
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until

TIMEOUT = 30
Broker = BrokerProcess | ExternalBroker
RECORD_BATCH_OVERHEAD = 61
#: groups that form at once; KIP-848 members that learn of a new assignment within half a second
QUICK_GROUPS = {"group.initial.rebalance.delay.ms": "0", "group.consumer.heartbeat.interval.ms": "500"}


@pytest.fixture(scope="session")
def java_classpath(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build(tmp_path_factory.mktemp("java-classes"))


@pytest.fixture
def java(java_classpath: str, tmp_path: Path) -> Java:
    return Java(java_classpath, tmp_path)


@pytest.fixture
def processes() -> Iterator[list[JavaProcess]]:
    """Long-running programs a test starts; whatever is still running at its end is killed."""
    started: list[JavaProcess] = []
    yield started
    for process in started:
        process.kill()


def create_topic(broker: Broker, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(TIMEOUT)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def one(events: list[Event], **match: Any) -> Event:
    found = [e for e in events if all(e.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one event {match} in {events}"
    return found[0]


# --- producer and consumer ------------------------------------------------------------------

def round_trip(java: Java, broker: Broker, topic: str, codec: str, idempotent: bool, count: int) -> list[Event]:
    events = java.run("RoundTrip", broker.bootstrap, topic, codec, str(idempotent).lower(), count)
    records = one(events, event="consumed")["records"]
    assert sorted((key, value, header) for _, _, key, value, header in records) == sorted(
        (f"k{i}", f"v{i}-" + "x" * (i % 50), str(i)) for i in range(count))
    by_partition = collections.defaultdict(list)
    for partition, offset, *_ in records:
        by_partition[partition].append(offset)
    assert all(offsets == list(range(len(offsets))) for offsets in by_partition.values())
    return events


def stored_codecs(broker: BrokerProcess, topic: str) -> set[int]:
    """The compression codec of every batch in the topic's segment files (a segment may be
    preallocated: its batches end at the first zero length)."""
    codecs = set()
    for log in broker.data_dir.glob(f"{topic}-*/*.log"):
        data, position = log.read_bytes(), 0
        while position + RECORD_BATCH_OVERHEAD <= len(data):
            header = parse_header(data, position)
            if header.batch_length == 0:
                break
            codecs.add(header.compression)
            position = header.end
    return codecs


def test_roundtrip(java: Java, broker: Broker) -> None:
    """Keys, values and headers through the Java producer and back through the Java consumer,
    over three partitions, each partition's offsets dense from 0."""
    topic = unique("java-rt")
    create_topic(broker, topic, 3)
    events = round_trip(java, broker, topic, "none", idempotent=False, count=300)
    assert one(events, event="produced")["count"] == 300


def check_compression(java: Java, broker: Broker, codec: str) -> None:
    """The Java producer's batches compressed with ``codec`` are stored as they came (the codec
    in each batch's attributes) and read back by the Java consumer and by librdkafka."""
    topic = unique(f"java-{codec}")
    create_topic(broker, topic, 1)
    round_trip(java, broker, topic, codec, idempotent=False, count=200)
    if isinstance(broker, BrokerProcess):
        assert stored_codecs(broker, topic) == {getattr(Compression, codec.upper())}
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("rd"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[bytes] = []
        while len(values) < 200:
            message = consumer.poll(TIMEOUT)
            assert message is not None and message.error() is None, message and message.error()
            values.append(message.value())
        assert sorted(values) == sorted(f"v{i}-{'x' * (i % 50)}".encode() for i in range(200))
    finally:
        consumer.close()


def test_compression_gzip(java: Java, broker: Broker) -> None:
    check_compression(java, broker, "gzip")


def test_compression_snappy(java: Java, broker: Broker) -> None:
    check_compression(java, broker, "snappy")


def test_compression_lz4(java: Java, broker: Broker) -> None:
    check_compression(java, broker, "lz4")


def test_compression_zstd(java: Java, broker: Broker) -> None:
    check_compression(java, broker, "zstd")


def test_idempotence(java: Java, broker: Broker) -> None:
    """An idempotent producer (acks=all, 5 requests in flight): every record once, in order,
    and the broker's producer state (DescribeProducers) holds its id and last sequence."""
    topic = unique("java-idem")
    create_topic(broker, topic, 2)
    events = round_trip(java, broker, topic, "lz4", idempotent=True, count=2000)
    last_offsets = one(events, event="produced")["last_offsets"]
    states = one(events, event="producers")["partitions"]
    assert states.keys() == last_offsets.keys()
    producer_ids = set()
    for partition, producers in states.items():
        assert len(producers) == 1
        (state,) = producers
        assert state["epoch"] == 0
        # sequences start at 0 per partition: the last is the count of records less one
        assert state["last_sequence"] == last_offsets[partition]
        producer_ids.add(state["producer_id"])
    assert len(producer_ids) == 1 and producer_ids.pop() >= 0


def read_values(broker: Broker, topic: str, partitions: int, count: int) -> dict[int, list[int]]:
    """Every value of ``topic`` (``count`` in all), by partition, in offset order, via librdkafka."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("rd"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    values: dict[int, list[int]] = collections.defaultdict(list)
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + 60
        while sum(map(len, values.values())) < count and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                assert message.error() is None, message.error()
                values[message.partition()].append(int(message.value()))
        # anything more (a duplicate) would be here by now: the high watermarks say
        ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT)[1] for p in range(partitions)]
        assert sum(ends) == count, f"{sum(ends)} records stored for {count} sent"
    finally:
        consumer.close()
    return values


@pytest.mark.tomyum_only(reason="restarts the broker")
def test_idempotence_across_broker_restart(java: Java, own_broker: BrokerProcess, processes: list[JavaProcess]) -> None:
    """The broker killed with -9 and restarted while an idempotent producer sends: the producer
    retries what was not acknowledged, and every value is stored exactly once, in order (the
    producer state is rebuilt from the log, so a retried batch the log already holds is a
    duplicate, not a second copy)."""
    topic, partitions, count = unique("java-idem-restart"), 2, 50000
    create_topic(own_broker, topic, partitions)
    producer = java.start("PacedProducer", own_broker.bootstrap, topic, partitions, count)
    processes.append(producer)
    wait_until(lambda: any(e["event"] == "acked" for e in producer.snapshot()) or producer.proc.poll() is not None,
               timeout=60, interval=0.02, what="the producer's first thousand acknowledgements")
    own_broker.kill()
    own_broker.start()
    wait_until(lambda: any(e["event"] == "done" for e in producer.snapshot()) or producer.proc.poll() not in (None, 0),
               timeout=100, interval=0.1, what="the producer to finish")
    done = one(producer.snapshot(), event="done")
    assert done == {"event": "done", "acked": count, "failed": 0, "error": None}
    assert producer.close() == 0
    values = read_values(own_broker, topic, partitions, count)
    for p in range(partitions):
        assert values[p] == list(range(p, count, partitions)), f"partition {p}"


# --- consumer groups ------------------------------------------------------------------------

def assignment(member: JavaProcess) -> set[int] | None:
    """The member's current assignment (None before its first)."""
    found = [e["partitions"] for e in member.snapshot() if e["event"] == "assignment"]
    return set(found[-1]) if found else None


def wait_split(members: list[JavaProcess], partitions: int, what: str) -> list[set[int]]:
    """Wait until ``members`` own every partition between them, each at least one, none twice."""
    def split() -> list[set[int]] | None:
        for m in members:
            assert m.proc.poll() is None, f"a member exited with {m.proc.returncode}:\n{m.stderr()}"
        owned = [assignment(m) or set() for m in members]
        complete = set().union(*owned) == set(range(partitions)) and sum(map(len, owned)) == partitions
        return owned if complete and all(owned) else None
    return wait_until(split, timeout=60, interval=0.1, what=what)


def consumed(members: list[JavaProcess]) -> list[tuple[int, int, str]]:
    return [tuple(r) for m in members for e in m.snapshot() if e["event"] == "records" for r in e["records"]]


def committed(members: list[JavaProcess]) -> dict[int, int]:
    offsets: dict[int, int] = {}
    for m in members:
        for e in m.snapshot():
            if e["event"] == "committed":
                offsets.update({int(p): o for p, o in e["offsets"].items()})
    return offsets


def produce_to_partitions(broker: Broker, topic: str, partitions: int, per_partition: int, tag: str) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, value=f"{tag}-{p}-{i}".encode(), partition=p)
    assert producer.flush(TIMEOUT) == 0


def described_as(java: Java, broker: Broker, group: str, owned: list[set[int]]) -> Event | None:
    """The group as the Java Admin describes it, if its members own ``owned``."""
    (described,) = java.run("AdminOps", "describe-group", broker.bootstrap, group)
    return described if sorted(m["partitions"] for m in described["members"]) == sorted(map(sorted, owned)) else None


def check_group(java: Java, broker_with: Any, processes: list[JavaProcess], protocol: str) -> None:
    """Two members split four partitions; a third joins and takes its share; one leaves and
    its partitions move to the others; records are consumed once and committed; a member that
    starts after the others closed resumes at the committed offsets."""
    with broker_with(QUICK_GROUPS) as broker:
        topic, group, partitions = unique(f"java-{protocol}"), unique("g"), 4
        create_topic(broker, topic, partitions)

        def member() -> JavaProcess:
            process = java.start("GroupMember", broker.bootstrap, topic, group, protocol)
            processes.append(process)
            return process

        a = member()
        wait_split([a], partitions, "the first member to own every partition")
        b = member()
        wait_split([a, b], partitions, "two members to split the partitions")
        c = member()
        owned = wait_split([a, b, c], partitions, "a third member to take its share")
        # the coordinator's view (DescribeGroups, or ConsumerGroupDescribe for KIP-848) is the members'
        expected_type = {"classic": "Classic", "consumer": "Consumer"}[protocol]
        described = wait_until(lambda: described_as(java, broker, group, owned), timeout=30, interval=0.2,
                               what="the coordinator to describe the members' assignment")
        assert described["type"] == expected_type and described["state"] == "Stable"
        assert a.close() == 0 and a.snapshot()[-1]["event"] == "closed"
        wait_split([b, c], partitions, "the leaver's partitions to move to the others")

        produce_to_partitions(broker, topic, partitions, 10, "first")
        wait_until(lambda: committed([b, c]) == {p: 10 for p in range(partitions)}, timeout=60, interval=0.1,
                   what="the two members to consume and commit 10 records a partition")
        seen = consumed([b, c])
        assert sorted(seen) == sorted((p, i, f"first-{p}-{i}") for p in range(partitions) for i in range(10))
        assert b.close() == 0 and c.close() == 0

        produce_to_partitions(broker, topic, partitions, 5, "second")
        d = member()
        wait_until(lambda: committed([d]) == {p: 15 for p in range(partitions)}, timeout=60, interval=0.1,
                   what="a restarted member to consume what was produced since")
        assert sorted(consumed([d])) == sorted(
            (p, 10 + i, f"second-{p}-{i}") for p in range(partitions) for i in range(5))
        assert d.close() == 0


def test_group_classic(java: Java, broker_with: Any, processes: list[JavaProcess]) -> None:
    check_group(java, broker_with, processes, "classic")


def test_group_consumer_protocol(java: Java, broker_with: Any, processes: list[JavaProcess]) -> None:
    check_group(java, broker_with, processes, "consumer")


# --- admin ----------------------------------------------------------------------------------

def test_admin(java: Java, broker: Broker) -> None:
    topic, group = unique("java-admin"), unique("admin-group")
    steps = {e["step"]: e for e in java.run("AdminOps", broker.bootstrap, topic, group)}
    described = steps["describe_topics"]
    assert described["name"] == topic and described["internal"] is False
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2]
    assert all(p["replicas"] == p["isr"] == 1 for p in described["partitions"])
    assert steps["create_partitions"]["partitions"] == 5
    cluster = steps["describe_cluster"]
    assert [(n["host"], n["port"]) for n in cluster["nodes"]] == [(broker.host, broker.port)]
    assert cluster["controller"] == cluster["nodes"][0]["id"] and cluster["cluster_id"]
    configs = steps["describe_configs"]["configs"]
    assert configs["retention.ms"] == {"value": "7200000", "source": "DYNAMIC_TOPIC_CONFIG"}
    assert configs["max.message.bytes"] == {"value": "200000", "source": "DYNAMIC_TOPIC_CONFIG"}
    assert configs["cleanup.policy"] == {"value": "delete,compact", "source": "DYNAMIC_TOPIC_CONFIG"}
    assert configs["segment.ms"]["source"] == "DEFAULT_CONFIG"
    assert steps["subtract_config"]["cleanup.policy"] == "delete"
    # ten records, timestamps rising to offset 7 and falling after it
    assert steps["list_offsets"]["offsets"] == {"earliest": 0, "latest": 10, "max_timestamp": 7, "for_timestamp": 3}
    assert steps["delete_records"]["offsets"] == {"earliest": 4, "latest": 10, "max_timestamp": 7,
                                                  "for_timestamp": 4}
    groups = [g for g in steps["list_consumer_groups"]["groups"] if g["group_id"] == group]
    assert groups == [{"group_id": group, "type": "Classic", "state": "Empty"}]
    assert steps["describe_consumer_groups"]["state"] == "Empty"
    assert steps["describe_consumer_groups"]["members"] == 0
    assert steps["list_consumer_group_offsets"]["offsets"] == {f"{topic}-0": {"offset": 6, "metadata": "admin-test"}}
    assert steps["deleted"] == {"step": "deleted", "topic_listed": False, "group_listed": False}


# --- transactions ---------------------------------------------------------------------------

def test_transactions(java: Java, broker: Broker) -> None:
    """Commit, abort, commit: read_committed sees exactly the committed records and
    read_uncommitted all of them; then consume-transform-produce with sendOffsetsToTransaction,
    its first transaction aborted: each input once in the output, the group's offsets at the end."""
    topic = unique("java-txn")
    create_topic(broker, topic, 2)
    events = java.run("Transactions", "commit-abort", broker.bootstrap, topic, unique("txn"))
    reads = {e["isolation"]: e["values"] for e in events if e["event"] == "read"}
    assert reads["read_committed"] == ["c1", "c2", "c3", "c4", "c5"]
    assert reads["read_uncommitted"] == ["a1", "a2", "a3", "c1", "c2", "c3", "c4", "c5"]
    ongoing, complete = (e for e in events if e["event"] == "described")
    assert ongoing["state"] == "Ongoing" and ongoing["started"] and ongoing["partitions"]
    assert complete["state"] == "CompleteCommit" and complete["partitions"] == []
    # the same producer; Kafka 4.4 (transaction.version 2, KIP-890) bumps the epoch at each end
    assert ongoing["producer_id"] == complete["producer_id"] and complete["epoch"] >= ongoing["epoch"]
    assert one(events, event="listed")["transactions"] == [
        {"state": "CompleteCommit", "producer_id": complete["producer_id"]}]

    source, sink, group, count = unique("java-ctp-in"), unique("java-ctp-out"), unique("ctp"), 50
    create_topic(broker, source, 2)
    create_topic(broker, sink, 2)
    events = java.run("Transactions", "ctp", broker.bootstrap, source, sink, group, unique("txn"), count)
    run = one(events, event="ctp")
    assert run["aborted"] == 1 and run["processed"] == count and run["transactions"] >= 2
    offsets = one(events, event="committed")["offsets"]
    assert sum(offsets.values()) == count
    assert one(events, event="read")["values"] == sorted(f"V{i}" for i in range(count))


# --- Kafka Streams, exactly once ------------------------------------------------------------

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
         "kilo", "lima", "mike", "november", "oscar", "papa"]


def lines(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(5)) for _ in range(count)]


def feed(broker: Broker, topic: str, chunk: list[str]) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i, line in enumerate(chunk):
        producer.produce(topic, key=str(i).encode(), value=line.encode())
    assert producer.flush(TIMEOUT) == 0


class CountsReader:
    """Reads the word count's output as it grows, with ``isolation.level`` as given: every
    update of each word's count, in order."""

    def __init__(self, broker: Broker, topic: str, isolation: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("counts"),
                                  "isolation.level": isolation, "enable.auto.commit": False,
                                  "auto.offset.reset": "earliest"})
        self.consumer.subscribe([topic])
        self.updates: dict[str, list[int]] = collections.defaultdict(list)
        self.total = 0

    def read(self) -> CountsReader:
        for message in self.consumer.consume(1000, timeout=0.2):
            assert message.error() is None, message.error()
            self.updates[message.key().decode()].append(int(message.value()))
            self.total += 1
        return self

    def close(self) -> None:
        self.consumer.close()


@pytest.mark.timeout(400)
def test_streams_eos(java: Java, broker_with: Any, processes: list[JavaProcess], tmp_path: Path) -> None:
    """Kafka Streams' word count with exactly_once_v2, fed in three chunks and killed with -9
    twice while it works: the committed counts (read_committed) are exact — each word's updates
    1, 2, ..., n, none counted twice, none lost."""
    with broker_with(QUICK_GROUPS) as broker:
        source, sink, app = unique("wc-lines"), unique("wc-counts"), unique("wordcount")
        create_topic(broker, source, 2)
        create_topic(broker, sink, 2)
        chunks = [lines(seed, 1500) for seed in range(3)]
        expected = collections.Counter(word for chunk in chunks for line in chunk for word in line.split())
        uncommitted = CountsReader(broker, sink, "read_uncommitted")
        committed = CountsReader(broker, sink, "read_committed")
        state_dir = tmp_path / "streams-state"

        def start() -> JavaProcess:
            process = java.start("WordCount", broker.bootstrap, app, source, sink, state_dir)
            processes.append(process)
            return process

        try:
            for round_, chunk in enumerate(chunks):
                feed(broker, source, chunk)
                streams = start()
                if round_ == len(chunks) - 1:
                    break
                # kill it mid-stream: once its output has grown by a quarter of this chunk's words
                target = uncommitted.read().total + len(chunk) * 5 // 4
                wait_until(lambda: uncommitted.read().total >= target or streams.proc.poll() is not None,
                           timeout=120, interval=0.05, what="the word count to process part of its input")
                assert streams.proc.poll() is None, streams.stderr()
                streams.kill()

            def done() -> bool:
                assert streams.proc.poll() is None, streams.stderr()
                counts = committed.read().updates
                return all(counts[w] and counts[w][-1] >= n for w, n in expected.items())
            wait_until(done, timeout=240, interval=0.1, what="the committed counts to reach the input's")
            for word, n in expected.items():
                assert committed.updates[word] == list(range(1, n + 1)), word
            assert set(committed.updates) == set(expected)
            # the kills cut transactions short: their updates, aborted, were read uncommitted only
            wait_until(lambda: uncommitted.read().total > committed.total, timeout=30, interval=0.05,
                       what="aborted updates, read uncommitted")
            print(f"updates: {committed.total} committed, {uncommitted.read().total} read uncommitted")
            states = [e["state"] for e in streams.snapshot() if e["event"] == "state"]
            assert "RUNNING" in states and "ERROR" not in states
            assert streams.close() == 0
        finally:
            uncommitted.close()
            committed.close()
