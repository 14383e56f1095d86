"""Cluster metadata as a broker user sees it: one broker per data dir, every legal topic name
deletable, and a data dir from before the metadata log carried over whole."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from tomyum.protocol.records import iter_batches
from tomyum.testing import BrokerProcess, wait_until

TIMEOUT = 30
LEGACY = Path(__file__).parent.parent / "data" / "legacy-topics-json-data-dir.tar.gz"
pytestmark = pytest.mark.timeout(120)


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tomyum", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_a_second_broker_on_the_same_data_dir_is_refused_every_way(own_broker: BrokerProcess) -> None:
    assert own_broker.proc is not None
    pid = own_broker.proc.pid
    data = str(own_broker.data_dir)
    serve = run_cli("serve", "--listen", "127.0.0.1:0", "--data-dir", data)
    assert serve.returncode != 0
    lines = [line for line in serve.stderr.splitlines() if line.strip()]
    assert lines[-1] == (f"error: data dir {own_broker.data_dir.resolve()} is in use by another broker (pid {pid}); "
                         "stop it first or choose another --data-dir"), serve.stderr
    start = run_cli("start", "--listen", "127.0.0.1:0", "--data-dir", data, timeout=60)
    assert start.returncode != 0 and f"in use by another broker (pid {pid})" in start.stdout + start.stderr
    assert "Traceback" not in start.stdout + start.stderr
    with pytest.raises(RuntimeError, match=f"in use by another broker \\(pid {pid}\\)"):
        BrokerProcess(own_broker.data_dir).start()
    # the first broker was not disturbed, and after it stops the dir can be used again
    admin = AdminClient({"bootstrap.servers": own_broker.bootstrap})
    admin.create_topics([NewTopic("still-here", 1, 1)])["still-here"].result(TIMEOUT)
    own_broker.stop()
    own_broker.start()
    assert "still-here" in AdminClient({"bootstrap.servers": own_broker.bootstrap}).list_topics(timeout=TIMEOUT).topics


def test_a_data_dir_of_another_node_is_refused(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "data"):
        pass
    other = run_cli("serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"), "--set", "node.id=7")
    assert other.returncode != 0
    assert "belongs to node 1, not 7 (node.id): this data dir is another broker's" in other.stderr


def test_a_topic_with_a_249_character_name_is_created_used_deleted_and_stays_deleted(own_broker: BrokerProcess) -> None:
    name = "x" * 240 + "-long.name"[:9]
    assert len(name) == 249
    admin = AdminClient({"bootstrap.servers": own_broker.bootstrap})
    admin.create_topics([NewTopic(name, 2, 1)])[name].result(TIMEOUT)
    p = Producer({"bootstrap.servers": own_broker.bootstrap, "acks": "all"})
    p.produce(name, value=b"long", partition=1)
    assert p.flush(TIMEOUT) == 0
    c = Consumer({"bootstrap.servers": own_broker.bootstrap, "group.id": "g", "enable.auto.commit": False})
    c.assign([TopicPartition(name, 1, 0)])
    msg = wait_until(lambda: (m := c.poll(0.5)) is not None and m.error() is None and m, TIMEOUT, what="record")
    assert msg.value() == b"long"
    c.close()
    admin.delete_topics([name], operation_timeout=TIMEOUT)[name].result(TIMEOUT)
    assert name not in admin.list_topics(timeout=TIMEOUT).topics
    wait_until(lambda: not any(d.name.startswith("xxxx") for d in own_broker.data_dir.iterdir()), TIMEOUT,
               what="the deleted directories to go")
    own_broker.stop()
    own_broker.start()
    admin = AdminClient({"bootstrap.servers": own_broker.bootstrap})
    assert name not in admin.list_topics(timeout=TIMEOUT).topics
    assert not any(d.name.startswith("xxxx") for d in own_broker.data_dir.iterdir())


def extract_legacy(data_dir: Path) -> None:
    with tarfile.open(LEGACY) as tar:
        tar.extractall(data_dir.parent, filter="data")
    assert (data_dir / "topics.json").exists()


def test_a_topics_json_data_dir_is_migrated_whole(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    extract_legacy(data_dir)
    partition_metadata = (data_dir / "orders-0" / "partition.metadata").read_text()
    with BrokerProcess(data_dir) as broker:
        assert not (data_dir / "topics.json").exists() and (data_dir / "topics.json.migrated").exists()
        assert "migrated" in broker.output()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        topics = admin.list_topics(timeout=TIMEOUT).topics
        assert {n: len(t.partitions) for n, t in topics.items() if not n.startswith("__")} == {"orders": 3,
                                                                                              "payments": 1}
        orders = ConfigResource(ConfigResource.Type.TOPIC, "orders")
        assert admin.describe_configs([orders])[orders].result(TIMEOUT)["retention.ms"].value == "123456789"
        node = ConfigResource(ConfigResource.Type.BROKER, "1")
        assert admin.describe_configs([node])[node].result(TIMEOUT)["message.max.bytes"].value == "2000000"
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "billing", "enable.auto.commit": False})
        committed = c.committed([TopicPartition("orders", 0), TopicPartition("orders", 1)], timeout=TIMEOUT)
        assert [tp.offset for tp in committed] == [2, 3]
        c.assign([TopicPartition("orders", p, 0) for p in range(3)])
        values: set[bytes] = set()
        deadline = time.monotonic() + TIMEOUT
        while len(values) < 9 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                values.add(m.value())
        c.close()
        assert values == {b"order-%d" % i for i in range(9)}
        # producer ids continue above the block the old broker had reserved
        p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "acks": "all"})
        p.produce("orders", value=b"after", partition=0)
        assert p.flush(TIMEOUT) == 0
        segment = (data_dir / "orders-0" / "00000000000000000000.log").read_bytes()
        assert [h.producer_id for h in iter_batches(segment)][-1] >= 1000
        broker.stop()
        broker.start()  # and a second start reads the metadata log alone
        assert "migrated" not in broker.output()
        assert set(AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=TIMEOUT).topics) >= {
            "orders", "payments"}
    # the topic kept its id (a new id would have made its old directories leftovers)
    assert (data_dir / "orders-0" / "partition.metadata").read_text() == partition_metadata

