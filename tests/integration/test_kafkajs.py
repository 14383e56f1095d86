"""KafkaJS 2.2.4 (npm) end to end: create, produce with headers (plain and gzip), list offsets,
consume in a group, delete. The scenario runs in node and reports JSON; the records are
read back byte for byte by KafkaJS itself and by confluent-kafka."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

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
