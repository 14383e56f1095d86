"""kill -9 in the middle of metadata changes, 20 rounds: in each, CreateTopics, CreatePartitions,
DeleteTopics (30 partitions, 3,000 records) and AlterConfigs or IncrementalAlterConfigs run at
once under acks=all produce load, and the broker is killed a random few milliseconds after
they start. After each restart: every answered change is there; every unanswered one is
either fully there or fully absent (a topic with all its partitions and records, or none of
it); no partition directory remains that the metadata does not name; and no acknowledged
record of the surviving topic is lost."""

from __future__ import annotations

import random
import re
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from tomyum.testing import BrokerProcess, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROUNDS = 20
TIMEOUT = 30
DOOMED_PARTITIONS, DOOMED_RECORDS = 30, 3000
PARTITION_DIR = re.compile(r"^(.+)-(\d+)$")


class Load(threading.Thread):
    """acks=all produce to ``survivor`` until stopped; keeps the values acknowledged."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        self.acked: set[bytes] = set()
        self.stop = threading.Event()
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1,
                                  "message.timeout.ms": 3000, "reconnect.backoff.max.ms": 100})

    def on_delivery(self, err: object, msg: Any) -> None:
        if err is None:
            self.acked.add(msg.value())

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                self.producer.produce("survivor", value=b"v%d" % i, on_delivery=self.on_delivery)
                i += 1
            except BufferError:
                pass
            self.producer.poll(0.002)
        self.producer.flush(5)


def consume_all(bootstrap: str, topic: str, partitions: int) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "check", "enable.auto.commit": False})
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT)[1] for p in range(partitions)}
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        got: list[bytes] = []
        positions = dict.fromkeys(ends, 0)
        deadline = time.monotonic() + TIMEOUT
        while any(positions[p] < ends[p] for p in ends):
            assert time.monotonic() < deadline, f"cannot read {topic} to its end"
            msg = c.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
                positions[msg.partition()] = msg.offset() + 1
        return got
    finally:
        c.close()


def set_up_round(bootstrap: str, r: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(f"doomed-{r}", DOOMED_PARTITIONS, 1), NewTopic(f"grow-{r}", 2, 1),
              NewTopic(f"conf-{r}", 1, 1, config={"retention.ms": "100000"})]
    for f in admin.create_topics(topics, operation_timeout=TIMEOUT).values():
        f.result(TIMEOUT)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(DOOMED_RECORDS):
        p.produce(f"doomed-{r}", value=b"d%d" % i, partition=i % DOOMED_PARTITIONS)
    assert p.flush(TIMEOUT) == 0


def answered(f: Future[Any]) -> bool:
    return f.done() and not f.cancelled() and f.exception() is None


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")  # AlterConfigs is what we test
def test_metadata_changes_are_all_or_nothing_across_kill_9(tmp_path: Path) -> None:
    rng = random.Random(20261206)
    with BrokerProcess(tmp_path / "data", settings={"group.initial.rebalance.delay.ms": "0"}) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("survivor", 3, 1)])["survivor"].result(TIMEOUT)
        load = Load(broker.bootstrap)
        load.start()
        outcomes = {"create": [0, 0], "partitions": [0, 0], "delete": [0, 0], "configs": [0, 0]}
        try:
            for r in range(ROUNDS):
                set_up_round(broker.bootstrap, r)
                admin = AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": 2000})
                create = admin.create_topics([NewTopic(f"new-{r}", 10, 1)], operation_timeout=TIMEOUT)[f"new-{r}"]
                grow = admin.create_partitions([NewPartitions(f"grow-{r}", 4)])[f"grow-{r}"]
                delete = admin.delete_topics([f"doomed-{r}"], operation_timeout=TIMEOUT)[f"doomed-{r}"]
                resource = ConfigResource(ConfigResource.Type.TOPIC, f"conf-{r}")
                if r % 2:
                    entry = ConfigEntry("retention.ms", "200000",
                                        incremental_operation=AlterConfigOpType.SET)
                    configs = admin.incremental_alter_configs(
                        [ConfigResource(ConfigResource.Type.TOPIC, f"conf-{r}", incremental_configs=[entry])])
                else:
                    resource.set_config("retention.ms", "200000")
                    configs = admin.alter_configs([resource])
                alter = next(iter(configs.values()))
                time.sleep(rng.uniform(0, 0.06))  # the moment to kill at, not a wait for a condition
                broker.kill()
                done = {"create": answered(create), "partitions": answered(grow), "delete": answered(delete),
                        "configs": answered(alter)}
                for k, v in done.items():
                    outcomes[k][v] += 1
                del admin
                broker.start()
                check_round(broker, r, done)
        finally:
            load.stop.set()
            load.join(TIMEOUT)
        check_no_orphans(broker)
        survivors = set(consume_all(broker.bootstrap, "survivor", 3))
        lost = load.acked - survivors
        assert not lost, f"{len(lost)} acknowledged records lost, e.g. {sorted(lost)[:5]}"
        assert len(load.acked) > 0
    # the random moments must have hit both sides of the commit for each kind, or the test proves little
    print("outcomes (unanswered, answered):", outcomes)
    assert sum(v[0] for v in outcomes.values()) > 0 and sum(v[1] for v in outcomes.values()) > 0


def describe(broker: BrokerProcess) -> dict[str, int]:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    md = admin.list_topics(timeout=TIMEOUT)
    return {name: len(t.partitions) for name, t in md.topics.items()}


def check_round(broker: BrokerProcess, r: int, done: dict[str, bool]) -> None:
    topics = describe(broker)
    # CreateTopics: all ten partitions or no topic
    assert topics.get(f"new-{r}") in ((10,) if done["create"] else (None, 10)), topics.get(f"new-{r}")
    # CreatePartitions: 2 or 4, never 3
    assert topics[f"grow-{r}"] in ((4,) if done["partitions"] else (2, 4)), topics[f"grow-{r}"]
    # DeleteTopics: gone, or there with every record
    if done["delete"]:
        assert f"doomed-{r}" not in topics
    elif f"doomed-{r}" in topics:
        assert topics[f"doomed-{r}"] == DOOMED_PARTITIONS
        assert len(consume_all(broker.bootstrap, f"doomed-{r}", DOOMED_PARTITIONS)) == DOOMED_RECORDS
    # AlterConfigs: the old value or the new one
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, f"conf-{r}")
    value = admin.describe_configs([resource])[resource].result(TIMEOUT)["retention.ms"].value
    assert value in (("200000",) if done["configs"] else ("100000", "200000")), value
    check_no_orphans(broker, topics)


def check_no_orphans(broker: BrokerProcess, topics: dict[str, int] | None = None) -> None:
    topics = describe(broker) if topics is None else topics
    for d in broker.data_dir.iterdir():
        if not d.is_dir() or d.name == "__cluster_metadata-0":
            continue
        m = PARTITION_DIR.match(d.name)
        assert m is not None and not d.name.endswith("-delete"), f"leftover directory {d.name}"
        assert int(m.group(2)) < topics.get(m.group(1), 0), f"orphan partition directory {d.name}"


def test_a_crash_leaves_no_half_created_directory_behind(tmp_path: Path) -> None:
    """Directories of a topic whose creation never reached the metadata log, and ``-delete``
    directories still holding data, are removed at start, one log line each."""
    with BrokerProcess(tmp_path / "data") as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("real", 1, 1)])["real"].result(TIMEOUT)
        broker.kill()
        ghost = broker.data_dir / "ghost-0"
        ghost.mkdir()
        (ghost / "partition.metadata").write_text("version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n")
        (ghost / "00000000000000000000.log").write_bytes(b"\0" * 100)
        deleted = broker.data_dir / "real-0.0123456789abcdef0123456789abcdef-delete"
        deleted.mkdir()
        (deleted / "00000000000000000000.log").write_bytes(b"\0" * 100)
        broker.start()
        assert not ghost.exists() and not deleted.exists()
        assert "removing ghost-0" in broker.output() and "removing real-0.0123" in broker.output()
        assert describe(broker) == {"real": 1}
        # a later topic of the ghost's name starts empty, with an id of its own
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("ghost", 1, 1)])["ghost"].result(TIMEOUT)
        assert "AAAAAAAAAAAAAAAAAAAAAA" not in (broker.data_dir / "ghost-0" / "partition.metadata").read_text()
        wait_until(lambda: describe(broker).get("ghost") == 1, TIMEOUT, what="ghost listed")
