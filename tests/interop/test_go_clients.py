"""Go's Kafka clients against a real tomyum broker: franz-go (with kadm), IBM/sarama and
segmentio/kafka-go, each driven by the one program in ``go/`` (built once per session, its
modules fetched from the Go module proxy on first use) that reports what it did as JSON lines.

Per client: a keyed round trip with headers, read back by the client itself and by
confluent-kafka; every compression codec (checked in the stored batches too); a group of two
members splitting the partitions, rebalancing when one leaves, and a new member resuming from
the committed offsets; idempotent produce through connections cut under it (franz-go by default,
sarama with ``Idempotent``); transactions committed and aborted, seen by read_committed and
read_uncommitted consumers (franz-go, sarama) and franz-go's GroupTransactSession
consume-transform-produce; franz-go's KIP-848 group (``ServerSideBalancer``); admin through
kadm, sarama's ClusterAdmin and kafka-go's Client. segmentio/kafka-go has neither an
idempotent nor a transactional producer; sarama and kafka-go have no KIP-848 consumer.

Test names are ``test_<client>_<capability>``: ``python -m tests.interop.matrix`` reads them from
the junit results into docs/compatibility.md.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupType, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import BrokerWith
from tomyum.protocol.records import Compression, iter_batches
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.proxy import CuttingProxy

GO_DIR = Path(__file__).parent / "go"
BUILD_DIR = Path(__file__).parents[2] / "build" / "interop-go"
TIMEOUT = 60  # seconds, for one run of the Go program
BUILD_TIMEOUT = 420  # the first build downloads the modules and compiles them: ~70 s cold here
# the first test also waits for the build; no test runs near this
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT + 180)
CLIENTS = ("franz", "sarama", "kafkago")
CODECS = ("gzip", "snappy", "lz4", "zstd")
Broker = BrokerProcess | ExternalBroker
Events = list[dict]


@pytest.fixture(scope="session")
def interop() -> Path:
    """The Go program, built once per session (``go build``; modules from the proxy)."""
    go = shutil.which("go")
    assert go, "Go is not installed: the Go interop tests need the go command (1.26)"
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    exe = BUILD_DIR / "interop"
    env = dict(os.environ, GOFLAGS="-mod=mod")
    proc = subprocess.run([go, "build", "-o", str(exe), "."], cwd=GO_DIR, env=env, capture_output=True,
                          text=True, timeout=BUILD_TIMEOUT)
    assert proc.returncode == 0, f"go build failed:\n{proc.stderr}"
    return exe


def flags(broker: Broker, topic: str, args: dict[str, object]) -> list[str]:
    out = ["-brokers", broker.bootstrap, "-topic", topic]
    for key, value in args.items():
        out += [f"-{key.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    return out


def run(exe: Path, client: str, command: str, broker: Broker, topic: str, **args: object) -> Events:
    """Run one command to its end; its events, the last of which is ``done``."""
    args.setdefault("timeout", f"{TIMEOUT}s")
    proc = subprocess.run([str(exe), client, command, *flags(broker, topic, args)], capture_output=True,
                          text=True, timeout=TIMEOUT + 15)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == 0 and events[-1]["event"] == "done", (
        f"{client} {command} failed ({proc.returncode}): {events[-3:]}\n{proc.stderr[-3000:]}")
    return events


def of(events: Events, kind: str) -> Events:
    return [e for e in events if e["event"] == kind]


def create(broker: Broker, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def expected(client: str, count: int, partitions: int, prefix: str = "v", start: int = 0) -> dict[int, list]:
    """Per partition, the (key, value, headers) the Go program sends for records start..start+count."""
    out: dict[int, list] = defaultdict(list)
    for i in range(start, start + count):
        out[i % partitions].append((f"k-{i % 5}", f"{prefix}-{i}", {"seq": str(i), "client": client}))
    return out


def by_partition(records: Events) -> dict[int, list]:
    out: dict[int, list] = defaultdict(list)
    for r in records:
        out[r["partition"]].append(r)
    return out


def read_confluent(broker: Broker, topic: str, partitions: int, count: int, isolation: str) -> list:
    """Every record of ``topic`` as confluent-kafka reads it: until ``count``, then 1 s more."""
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"verify-{time.monotonic_ns()}",
                  "enable.auto.commit": False, "isolation.level": isolation})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list = []
    deadline = time.monotonic() + 30
    try:
        while len(out) < count and time.monotonic() < deadline:
            out += [m for m in c.consume(num_messages=500, timeout=0.5) if m.error() is None]
        out += [m for m in c.consume(num_messages=500, timeout=1) if m.error() is None]
    finally:
        c.close()
    return out


def stored_batches(broker: Broker, topic: str, partition: int) -> list:
    """The batch headers of a partition's first segment, as stored (tomyum brokers only)."""
    assert isinstance(broker, BrokerProcess)
    return list(iter_batches((broker.data_dir / f"{topic}-{partition}" / "00000000000000000000.log").read_bytes()))


# round trip ---------------------------------------------------------------------------------

def roundtrip(exe: Path, client: str, broker: Broker, topic: str) -> None:
    """30 keyed records with headers over 3 partitions: read back in order, byte for byte, by
    the client itself and by confluent-kafka."""
    create(broker, topic, 3)
    produced = of(run(exe, client, "produce", broker, topic, count=30, partitions=3), "produced")
    want = expected(client, 30, 3)
    if client != "kafkago":  # kafka-go's Writer does not report offsets
        assert {p: [e["offset"] for e in es] for p, es in by_partition(produced).items()} == {
            p: list(range(10)) for p in range(3)}
    got = by_partition(of(run(exe, client, "consume", broker, topic, count=30, partitions=3), "record"))
    assert sorted(got) == [0, 1, 2]
    for p, records in got.items():
        assert [r["offset"] for r in records] == list(range(10)), f"offsets of partition {p}"
        assert [(r["key"], r["value"], r["headers"]) for r in records] == want[p]
    theirs = by_partition([{"partition": m.partition(), "offset": m.offset(), "key": m.key().decode(),
                            "value": m.value().decode(), "headers": {k: v.decode() for k, v in m.headers()}}
                           for m in read_confluent(broker, topic, 3, 30, "read_uncommitted")])
    assert {p: [(r["key"], r["value"], r["headers"]) for r in rs] for p, rs in theirs.items()} == want


def test_franz_roundtrip(interop: Path, broker: Broker, topic_name: str) -> None:
    roundtrip(interop, "franz", broker, topic_name)


def test_sarama_roundtrip(interop: Path, broker: Broker, topic_name: str) -> None:
    roundtrip(interop, "sarama", broker, topic_name)


def test_kafkago_roundtrip(interop: Path, broker: Broker, topic_name: str) -> None:
    roundtrip(interop, "kafkago", broker, topic_name)


# compression --------------------------------------------------------------------------------

def compression(exe: Path, client: str, codec: str, broker: Broker, topic: str) -> None:
    """Records the client compressed with ``codec`` are stored so (as received) and read back
    by the client and by confluent-kafka."""
    create(broker, topic, 1)
    run(exe, client, "produce", broker, topic, count=50, compression=codec, prefix=f"{codec}-value" * 8)
    values = [v for _, v, _ in expected(client, 50, 1, prefix=f"{codec}-value" * 8)[0]]
    got = of(run(exe, client, "consume", broker, topic, count=50), "record")
    assert [r["value"] for r in got] == values
    assert [m.value().decode() for m in read_confluent(broker, topic, 1, 50, "read_uncommitted")] == values
    if isinstance(broker, BrokerProcess):
        codecs = {Compression.NAMES[b.compression] for b in stored_batches(broker, topic, 0)}
        assert codecs == {codec}, f"{client} asked for {codec}; the broker stored {codecs}"


def compression_test(client: str, codec: str) -> Callable[[Path, Broker, str], None]:
    def test(interop: Path, broker: Broker, topic_name: str) -> None:
        compression(interop, client, codec, broker, topic_name)
    test.__name__ = test.__qualname__ = f"test_{client}_compression_{codec}"
    test.__doc__ = f"{client} produces {codec}-compressed batches; they are stored and read back as sent."
    return test


for _client in CLIENTS:  # test_franz_compression_gzip, ..., test_kafkago_compression_zstd
    for _codec in CODECS:
        globals()[f"test_{_client}_compression_{_codec}"] = compression_test(_client, _codec)


# groups -------------------------------------------------------------------------------------

class Member:
    """A group member in a process of its own (``interop <client> member``), its JSON-line
    events collected by a reader thread: assignments, records, commits."""

    def __init__(self, exe: Path, client: str, broker: Broker, topic: str, group: str, protocol: str) -> None:
        args = flags(broker, topic, {"group": group, "protocol": protocol, "timeout": "120s"})
        self.proc = subprocess.Popen([str(exe), client, "member", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.events: Events = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.events.append(json.loads(line))

    def assigned(self) -> list[int] | None:
        latest = [e["partitions"] for e in list(self.events) if e["event"] == "assigned"]
        return latest[-1] if latest else None

    def committed(self, partition: int) -> int:
        return max((e["offset"] for e in list(self.events)
                    if e["event"] == "committed" and e["partition"] == partition), default=-1)

    def offsets(self, partition: int) -> list[int]:
        return [e["offset"] for e in list(self.events) if e["event"] == "record" and e["partition"] == partition]

    def stop(self) -> None:
        """SIGTERM: the member leaves the group and exits; killed if it does not within 20 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait(20)
        self._reader.join(20)


@pytest.fixture
def members() -> Iterator[list[Member]]:
    """Every member a test starts, stopped at its end."""
    started: list[Member] = []
    yield started
    for m in started:
        m.stop()


def group(exe: Path, client: str, broker: Broker, topic: str, members: list[Member], protocol: str) -> None:
    """Two members split a 2-partition topic and each commits its 10 records; one leaves and
    the other takes its partition over right after the leaver's commit; once both are gone a
    new member resumes both partitions from the committed offsets."""
    create(broker, topic, 2)
    group_id = f"g-{topic}"

    def member() -> Member:
        members.append(Member(exe, client, broker, topic, group_id, protocol))
        return members[-1]

    def send(start: int, count: int) -> None:
        run(exe, client, "produce", broker, topic, partitions=2, count=count, **{"from": start})

    first, second = member(), member()
    wait_until(lambda: sorted(m.assigned() or [9] for m in (first, second)) == [[0], [1]], 60, interval=0.05,
               what="one partition for each member")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    described = admin.describe_consumer_groups([group_id])[group_id].result(30)
    kind = ConsumerGroupType.CONSUMER if protocol == "consumer" else ConsumerGroupType.CLASSIC
    assert described.type == kind and len(described.members) == 2, "the group does not use the protocol asked for"
    send(0, 20)
    wait_until(lambda: all(m.committed(m.assigned()[0]) == 10 for m in (first, second)), 30, interval=0.05,
               what="each member committing its 10 records")
    (kept,), (handed,) = first.assigned(), second.assigned()
    left_at = time.monotonic()
    second.stop()  # a clean leave: the rebalance starts at once, not after a session timeout
    wait_until(lambda: first.assigned() == [0, 1], 30, interval=0.05, what="the remaining member owning both")
    assert time.monotonic() - left_at < 6, "the rebalance waited for the session timeout"
    send(20, 20)
    wait_until(lambda: first.committed(0) == 20 and first.committed(1) == 20, 30, interval=0.05,
               what="the remaining member reading the rest")
    assert second.offsets(handed) == list(range(10))
    assert first.offsets(handed) == list(range(10, 20)), "not resumed right after the leaver's commit"
    assert first.offsets(kept) == list(range(20))
    first.stop()

    send(40, 10)
    third = member()
    wait_until(lambda: third.committed(0) == 25 and third.committed(1) == 25, 60, interval=0.05,
               what="a new member reading what came after the commits")
    assert third.offsets(0) == list(range(20, 25)) and third.offsets(1) == list(range(20, 25))


@pytest.fixture
def gbroker(broker_with: BrokerWith) -> Iterator[Broker]:
    """No initial rebalance delay (the members are awaited by polling); 500 ms KIP-848 heartbeats."""
    with broker_with({"group.initial.rebalance.delay.ms": "0",
                      "group.consumer.heartbeat.interval.ms": "500"}) as b:
        yield b


def test_franz_group_classic(interop: Path, gbroker: Broker, topic_name: str, members: list[Member]) -> None:
    group(interop, "franz", gbroker, topic_name, members, "classic")


def test_franz_group_consumer_protocol(interop: Path, gbroker: Broker, topic_name: str,
                                       members: list[Member]) -> None:
    """franz-go 1.22's ServerSideBalancer: KIP-848's ConsumerGroupHeartbeat, the broker assigns."""
    group(interop, "franz", gbroker, topic_name, members, "consumer")


def test_sarama_group_classic(interop: Path, gbroker: Broker, topic_name: str, members: list[Member]) -> None:
    group(interop, "sarama", gbroker, topic_name, members, "classic")


def test_kafkago_group_classic(interop: Path, gbroker: Broker, topic_name: str, members: list[Member]) -> None:
    group(interop, "kafkago", gbroker, topic_name, members, "classic")


# idempotence --------------------------------------------------------------------------------

def idempotence(exe: Path, client: str, tmp_path: Path, topic: str) -> None:
    """600 records in runs of 10 through a proxy that cuts every 4th Produce after the broker
    got it: each record is stored once, in order, and the broker knows one producer per
    partition whose last sequence is its last record."""
    n, partitions = 600, 3
    with CuttingProxy(cut_every=4) as proxy:
        broker = BrokerProcess(tmp_path / "data", settings={
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}"})
        with broker:
            proxy.start(broker.port)
            create(broker, topic, partitions)
            through = ExternalBroker(f"127.0.0.1:{proxy.port}")
            run(exe, client, "produce", through, topic, count=n, partitions=partitions, batch=10, idempotent=True)
            assert proxy.cuts > 5
            proxy.cut_every = 0
            values = Counter(m.value() for m in read_confluent(broker, topic, partitions, n, "read_uncommitted"))
            producers = of(run(exe, "franz", "describe-producers", broker, topic, partitions=partitions), "producer")
            batches = [b for p in range(partitions) for b in stored_batches(broker, topic, p)]
    assert len(values) == n and set(values.values()) == {1}, "a record is missing or stored twice"
    assert sorted((p["partition"], p["last_sequence"]) for p in producers) == [(p, n // partitions - 1)
                                                                              for p in range(partitions)]
    assert len({p["producer_id"] for p in producers}) == 1 and all(b.producer_id >= 0 for b in batches)


def test_franz_idempotence(interop: Path, tmp_path: Path, topic_name: str) -> None:
    """franz-go is idempotent by default."""
    idempotence(interop, "franz", tmp_path, topic_name)


def test_sarama_idempotence(interop: Path, tmp_path: Path, topic_name: str) -> None:
    """sarama with Producer.Idempotent (acks=all, one request in flight)."""
    idempotence(interop, "sarama", tmp_path, topic_name)


# transactions -------------------------------------------------------------------------------

def transactions(exe: Path, client: str, broker: Broker, topic: str) -> None:
    """A committed transaction of 6 records and an aborted one of 6 over 2 partitions:
    read_committed consumers (the client's own and confluent-kafka) see the committed 6 only,
    read_uncommitted ones all 12."""
    create(broker, topic, 2)
    events = run(exe, client, "txn", broker, topic, count=6, partitions=2, txn_id=f"tx-{topic}")
    assert [e["outcome"] for e in of(events, "transaction")] == ["committed", "aborted"]
    committed = sorted(f"committed-{i}" for i in range(6))
    everything = sorted(committed + [f"aborted-{i}" for i in range(6)])
    for isolation, want in (("read_committed", committed), ("read_uncommitted", everything)):
        mine = of(run(exe, client, "consume", broker, topic, count=len(want), partitions=2, isolation=isolation,
                      linger="1s"), "record")
        assert sorted(r["value"] for r in mine) == want, f"{client} {isolation}"
        theirs = read_confluent(broker, topic, 2, len(want), isolation)
        assert sorted(m.value().decode() for m in theirs) == want, f"confluent-kafka {isolation}"


def test_franz_transactions(interop: Path, broker: Broker, topic_name: str) -> None:
    transactions(interop, "franz", broker, topic_name)


def test_sarama_transactions(interop: Path, broker: Broker, topic_name: str) -> None:
    transactions(interop, "sarama", broker, topic_name)


def test_franz_transactions_group_session(interop: Path, broker: Broker, topic_name: str) -> None:
    """GroupTransactSession: 40 input records become 40 output records, each exactly once for
    read_committed, with the group's offsets committed in the same transactions."""
    out = f"{topic_name}-out"
    create(broker, topic_name, 2)
    create(broker, out, 2)
    run(interop, "franz", "produce", broker, topic_name, count=40, partitions=2)
    group_id = f"eos-{topic_name}"
    events = run(interop, "franz", "eos", broker, topic_name, out=out, group=group_id, count=40,
                 txn_id=f"tx-{topic_name}")
    assert sum(e["records"] for e in of(events, "transaction") if e["committed"]) == 40
    got = Counter(m.value().decode() for m in read_confluent(broker, out, 2, 40, "read_committed"))
    assert got == Counter(f"out-v-{i}" for i in range(40))
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group_id})
    try:
        committed = c.committed([TopicPartition(topic_name, p) for p in (0, 1)], timeout=30)
    finally:
        c.close()
    assert [tp.offset for tp in committed] == [20, 20]


# admin --------------------------------------------------------------------------------------

def admin(exe: Path, client: str, broker: Broker, topic: str) -> None:
    """Create a 3-partition topic, list it and its offsets after 5 records to partition 0,
    describe a group with one live member and its commits, delete the group and the topic."""
    events = run(exe, client, "admin", broker, topic, group=f"adm-{topic}")
    assert of(events, "topic") == [{"event": "topic", "partitions": 3}]
    offsets = {e["which"]: e["offsets"] for e in of(events, "offsets")}
    assert offsets == {"start": {"0": 0, "1": 0, "2": 0}, "end": {"0": 5, "1": 0, "2": 0}}
    (described,) = of(events, "group")
    assert described["state"] == "Stable" and described["members"] == 1
    assert described.get("protocol_type", "consumer") == "consumer"  # kafka-go's does not say
    assert sorted(described["assigned"]) == [0, 1, 2]
    (group_offsets,) = of(events, "group_offsets")  # -1: no commit (sarama lists those too)
    assert {p: offset for p, offset in group_offsets["offsets"].items() if offset != -1} == {"0": 5}
    assert of(events, "topic_deleted") == [{"event": "topic_deleted", "still_listed": False}]
    admin_client = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert topic not in admin_client.list_topics(timeout=30).topics


def test_franz_admin(interop: Path, broker: Broker, topic_name: str) -> None:
    """kadm."""
    admin(interop, "franz", broker, topic_name)


def test_sarama_admin(interop: Path, broker: Broker, topic_name: str) -> None:
    """sarama's ClusterAdmin."""
    admin(interop, "sarama", broker, topic_name)


def test_kafkago_admin(interop: Path, broker: Broker, topic_name: str) -> None:
    """kafka-go's kafka.Client (CreateTopics, Metadata, ListOffsets, DescribeGroups, OffsetFetch,
    DeleteGroups, DeleteTopics)."""
    admin(interop, "kafkago", broker, topic_name)
