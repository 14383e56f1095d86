"""KafkaJS 2.2.4 (npm) end to end: create, produce with headers (plain and gzip), list offsets,
consume in a group, delete. The scenario runs in node and reports JSON; the records are
read back byte for byte by KafkaJS itself and by confluent-kafka."""

from __future__ import annotations

import base64
import time
import json
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from tests.conftest import BrokerWith
from tomyum.testing import BrokerProcess

HERE = Path(__file__).parent / "kafkajs"


def run_scenario(*args: str) -> dict:
    node = shutil.which("node")
    assert node, "node is not installed: run `make test`, which needs node/npm"
    assert (HERE / "node_modules" / "kafkajs").is_dir(), (
        "KafkaJS is not installed: run `make test` (it runs `npm ci` in tests/integration/kafkajs)")
    proc = subprocess.run([node, "scenario.js", *args], cwd=HERE, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, f"scenario {args} failed ({proc.returncode}):\n{proc.stderr}"
    return json.loads(proc.stdout)


def read_all(bootstrap: str, topic: str, counts: dict[int, int]) -> dict[int, list]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "verify", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in counts])
    out: dict[int, list] = defaultdict(list)
    try:
        msgs = c.consume(num_messages=sum(counts.values()), timeout=20)
        while sum(len(v) for v in out.values()) + len(msgs) < sum(counts.values()):
            more = c.consume(num_messages=100, timeout=5)
            assert more, "ran out of messages"
            msgs += more
        for m in msgs:
            assert m.error() is None, m.error()
            out[m.partition()].append(m)
    finally:
        c.close()
    return out


def b64(b: bytes | None) -> str | None:
    return None if b is None else base64.b64encode(b).decode()


def test_kafkajs_end_to_end(broker: BrokerProcess, topic_name: str) -> None:
    result = run_scenario(broker.bootstrap, topic_name, "produce")
    assert result["created"] is True
    sent = result["sent"]
    expected: dict[int, list[dict]] = defaultdict(list)
    for m in sent:
        expected[m["partition"]].append(m)
    latest = {o["partition"]: int(o["offset"]) for o in result["latest"]}
    assert latest == {p: len(v) for p, v in expected.items()}
    # every record is after timestamp 0: the first offset of every partition
    assert {o["partition"]: int(o["offset"]) for o in result["earliestTs"]} == {0: 0, 1: 0, 2: 0}
    # after every record: Kafka answers -1, which KafkaJS turns into the latest offset
    assert {o["partition"]: int(o["offset"]) for o in result["future"]} == latest

    got = read_all(broker.bootstrap, topic_name, latest)
    for p, msgs in got.items():
        assert [m.offset() for m in msgs] == list(range(len(expected[p])))
        assert [(b64(m.key()), b64(m.value()), {k: b64(v) for k, v in m.headers()}) for m in msgs] == [
            (m["key"], m["value"], m["headers"]) for m in expected[p]]

    consumed = run_scenario(broker.bootstrap, topic_name, "consume", str(len(sent)))["received"]
    for p, want in expected.items():
        mine = [m for m in consumed if m["partition"] == p]
        assert [m["offset"] for m in mine] == list(range(len(want)))
        assert [(m["key"], m["value"], m["headers"]) for m in mine] == [
            (m["key"], m["value"], m["headers"]) for m in want]

    after = run_scenario(broker.bootstrap, topic_name, "delete")
    assert topic_name not in after["topicsAfterDelete"]


def test_kafkajs_consumer_groups(broker: BrokerProcess, topic_name: str) -> None:
    """Two groups each receive every message; two members of one group on a 2-partition topic
    get one partition each and together every message exactly once. The broker's default
    initial rebalance delay lets both members join the first generation."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(20)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    values = [f"m{i}".encode() for i in range(20)]
    for i, v in enumerate(values):
        producer.produce(topic_name, value=v, partition=i % 2)
    assert producer.flush(20) == 0

    result = run_scenario(broker.bootstrap, topic_name, "groups", str(len(values)))
    want = sorted(b64(v) for v in values)
    a, b = result["separate"]
    assert sorted(m["value"] for m in a) == want and sorted(m["value"] for m in b) == want
    first, second = result["shared"]
    assert len({m["partition"] for m in first}) == 1 and len({m["partition"] for m in second}) == 1
    assert {m["partition"] for m in first} != {m["partition"] for m in second}
    assert sorted(m["value"] for m in first + second) == want


class Member:
    """A KafkaJS group member in its own node process (``scenario.js member``), whose JSON-line
    reports a reader thread collects: assignments, messages, commits."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        import threading

        node = shutil.which("node")
        assert node and (HERE / "node_modules" / "kafkajs").is_dir(), "node and KafkaJS are needed: run `make test`"
        self.proc = subprocess.Popen([node, "scenario.js", bootstrap, topic, "member", group], cwd=HERE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:  # closed at the end of the child's output
            for line in self.proc.stdout:
                self.events.append(json.loads(line))

    def assigned(self) -> list[int] | None:
        """The partitions of the latest assignment (None before the first)."""
        latest = [e["partitions"] for e in self.events if e["event"] == "assigned"]
        return sorted(latest[-1]) if latest else None

    def committed(self) -> dict[int, int]:
        return {e["partition"]: e["offset"] for e in list(self.events) if e["event"] == "committed"}

    def messages(self, partition: int) -> list[tuple[int, str]]:
        return [(e["offset"], e["value"]) for e in list(self.events)
                if e["event"] == "message" and e["partition"] == partition]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait(20)
        self._reader.join(20)


def test_kafkajs_killed_member_is_replaced_and_resumes_from_the_commit(broker_with: BrokerWith, topic_name: str) -> None:
    """Two KafkaJS members split a 2-partition topic, each committing every message. One is
    killed (SIGKILL: no LeaveGroup); within its session timeout (6 s) the other gets its
    partition and resumes exactly after the victim's last commit."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from tomyum.testing import wait_until

    def send(bootstrap: str, start: int, end: int) -> None:
        p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for i in range(start, end):
            p.produce(topic_name, value=f"m{i}".encode(), partition=i % 2)
        assert p.flush(20) == 0

    with broker_with({"group.initial.rebalance.delay.ms": "0"}) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(20)
        members = [Member(broker.bootstrap, topic_name, "kjs-crash") for _ in range(2)]
        try:
            def split() -> bool:
                return sorted(m.assigned() or [9, 9] for m in members) == [[0], [1]]

            wait_until(split, 40, interval=0.05, what="one partition for each KafkaJS member")
            survivor, victim = members
            (mine,), (theirs,) = survivor.assigned(), victim.assigned()
            send(broker.bootstrap, 0, 20)  # 10 for each member
            wait_until(lambda: victim.committed().get(theirs) == 10 and survivor.committed().get(mine) == 10, 20,
                       interval=0.05, what="each member committing its 10")
            victim.proc.kill()  # no LeaveGroup: only the session timeout can tell
            victim.proc.wait(10)
            killed_at = time.monotonic()
            send(broker.bootstrap, 20, 40)
            wait_until(lambda: survivor.assigned() == [0, 1], 20, interval=0.05,
                       what="the survivor owning both partitions")
            assert time.monotonic() - killed_at < 6 + 10  # session timeout + the rejoin
            wait_until(lambda: survivor.committed().get(theirs) == 20 and survivor.committed().get(mine) == 20, 20,
                       interval=0.05, what="the survivor reading the rest")
            # exactly after the victim's commit: nothing it had read is read again
            assert [o for o, _ in victim.messages(theirs)] == list(range(10))
            assert [o for o, _ in survivor.messages(theirs)] == list(range(10, 20))
            assert [o for o, _ in survivor.messages(mine)] == list(range(20))
            if isinstance(broker, BrokerProcess):  # tomyum's log line
                assert "missed its session timeout" in broker.output()
        finally:
            for m in members:
                m.stop()


def test_kafkajs_transactional_producer_commits_and_aborts(broker: BrokerProcess, topic_name: str) -> None:
    result = run_scenario(broker.bootstrap, topic_name, "transactions")
    committed_offset = {p["partition"]: int(p["offset"]) for p in result["offsets"][0]["partitions"]}
    assert committed_offset[0] == 2  # the offsets sent in the committed transaction
    seen = {}
    for isolation in ("read_committed", "read_uncommitted"):
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"verify-{isolation}",
                      "enable.auto.commit": False, "isolation.level": isolation})
        c.assign([TopicPartition(topic_name, p, 0) for p in (0, 1)])
        values: list[bytes] = []
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline and len(values) < (3 if isolation == "read_committed" else 5):
                values += [m.value() for m in c.consume(num_messages=10, timeout=0.5) if m.error() is None]
            # nothing more arrives: read_committed never sees the aborted records
            values += [m.value() for m in c.consume(num_messages=10, timeout=1) if m.error() is None]
        finally:
            c.close()
        seen[isolation] = sorted(values)
    assert seen["read_committed"] == [b"committed-0", b"committed-1", b"committed-2"]
    assert seen["read_uncommitted"] == sorted([b"committed-0", b"committed-1", b"committed-2",
                                               b"aborted-0", b"aborted-1"])
