"""``tomyum connect distributed``: two real worker processes in one group on a real tomyum
broker, driven over Kafka Connect's REST API.

Kafka's documented behaviour is the oracle: the three internal topics are created compacted with
Kafka's partition counts, the config topic holds Kafka's records (``connector-<name>``,
``task-<name>-<n>``, ``commit-<name>``, ``target-state-<name>``) and the offsets topic Kafka's
keys; a write sent to a worker that is not the leader is forwarded to it, and answered 409 when
the leader cannot be reached; when a worker is killed (kill -9) its connectors and tasks move to
the survivor after the session timeout and go on from the stored offsets, losing no record.
Rebalances are incremental and cooperative (KIP-415): a worker joining takes a share without the
others' kept tasks ever restarting, and a dead follower's tasks are held for
``scheduled.rebalance.max.delay.ms`` before they move.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess

pytestmark = pytest.mark.timeout(180)

COUNTER = '''
import time

from tomyum.connect import SourceConnector, SourceTask
from tomyum.connect.data import INT64_SCHEMA, SourceRecord


class CountingSourceConnector(SourceConnector):
    """Counts 1, 2, 3, ... into ``topic``, about 200 a second, from its stored offset."""
    version = "1.0"

    def start(self, props):
        self.props = dict(props)

    def task_class(self):
        return CountingTask

    def task_configs(self, max_tasks):
        return [self.props]

    def stop(self):
        pass


class CountingTask(SourceTask):
    def start(self, props):
        self.topic = props["topic"]
        stored = self.context.offset_storage_reader.offset({"counter": self.topic})
        self.next = stored["next"] if stored else 0

    def poll(self):
        time.sleep(0.05)
        records = []
        for _ in range(10):
            self.next += 1
            records.append(SourceRecord(source_partition={"counter": self.topic}, source_offset={"next": self.next},
                                        topic=self.topic, value_schema=INT64_SCHEMA, value=self.next))
        return records

    def stop(self):
        pass
'''

SPREAD = '''
import time
import uuid

from tomyum.connect import SourceConnector, SourceTask
from tomyum.connect.data import SourceRecord


class SpreadSourceConnector(SourceConnector):
    """``tasks.max`` tasks, each writing {"task", "incarnation", "seq"} about 20 times a second;
    ``incarnation`` is new at every start of a task, so a restart shows in the records."""
    version = "1.0"

    def start(self, props):
        self.props = dict(props)

    def task_class(self):
        return SpreadTask

    def task_configs(self, max_tasks):
        return [dict(self.props, task=str(i)) for i in range(max_tasks)]

    def stop(self):
        pass


class SpreadTask(SourceTask):
    def start(self, props):
        self.topic, self.task, self.seq = props["topic"], int(props["task"]), 0
        self.incarnation = uuid.uuid4().hex

    def poll(self):
        time.sleep(0.05)
        self.seq += 1
        return [SourceRecord(source_partition={"task": self.task}, source_offset={"seq": self.seq}, topic=self.topic,
                             value={"task": self.task, "incarnation": self.incarnation, "seq": self.seq})]

    def stop(self):
        pass
'''

JOINED = re.compile(r"Joined group at generation (\d+) as \S+ \(leader \S+ at (\S+)\)")


class Cluster:
    """``size`` workers of one group (two unless told), their REST clients, and the names of their topics."""

    def __init__(self, bootstrap: str, workdir: Path, stack: ExitStack, more: dict[str, str] | None = None,
                 size: int = 2) -> None:
        plugins = workdir / "plugins"
        plugins.mkdir(parents=True)
        (plugins / "counting.py").write_text(COUNTER, encoding="utf-8")
        (plugins / "spread.py").write_text(SPREAD, encoding="utf-8")
        self.workdir, self.stack = workdir, stack
        tag = uuid.uuid4().hex[:6]
        self.bootstrap = bootstrap
        self.topics = {"config": f"cfg-{tag}", "offset": f"off-{tag}", "status": f"sts-{tag}"}
        props = {"group.id": f"connect-cluster-{tag}", "plugin.path": str(plugins),
                 "config.storage.topic": self.topics["config"], "offset.storage.topic": self.topics["offset"],
                 "status.storage.topic": self.topics["status"], "config.storage.replication.factor": "1",
                 "offset.storage.replication.factor": "1", "status.storage.replication.factor": "1",
                 "session.timeout.ms": "6000", "heartbeat.interval.ms": "1000", "offset.flush.interval.ms": "500",
                 "value.converter.schemas.enable": "false", **(more or {})}
        self.props = props
        self.workers: list[ConnectProcess] = []
        self.http: list[httpx.Client] = []
        for _ in range(size):
            self.add_worker()
        wait_until(lambda: all(self.leader_url(w) for w in self.workers), timeout=60, interval=0.1,
                   what="every worker to join the group")

    def add_worker(self) -> ConnectProcess:
        worker = self.stack.enter_context(ConnectProcess(self.workdir / f"worker-{len(self.workers)}", self.bootstrap,
                                                         worker=self.props, mode="distributed"))
        self.workers.append(worker)
        self.http.append(httpx.Client(base_url=worker.url, timeout=30))
        self.stack.callback(self.http[-1].close)
        return worker

    def leader_url(self, worker: ConnectProcess) -> str | None:
        """The leader's URL in ``worker``'s latest generation, once both workers are in it."""
        joins = JOINED.findall(worker.output())
        return joins[-1][1] if joins else None

    def states(self, http: httpx.Client, name: str) -> tuple[str, list[tuple[str, str]]] | None:
        r = http.get(f"/connectors/{name}/status")
        if r.status_code != 200:
            return None
        body = r.json()
        return body["connector"]["state"], [(t["state"], t["worker_id"]) for t in body["tasks"]]


@pytest.fixture
def cluster(broker: BrokerProcess | ExternalBroker, tmp_path: Path) -> Iterator[Cluster]:
    with ExitStack() as stack:
        yield Cluster(broker.bootstrap, tmp_path, stack)


def _values(bootstrap: str, topic: str, at_least: int, timeout: float = 60) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got: list[int] = []
    try:
        def enough() -> bool:
            for m in consumer.consume(500, 0.2):
                if m.error() is None:
                    got.append(json.loads(m.value()))
            return bool(got) and max(got) >= at_least
        wait_until(enough, timeout=timeout, interval=0, what=f"{at_least} counted on {topic}")
    finally:
        consumer.close()
    return got


def _records(bootstrap: str, topic: str, partitions: int) -> list[tuple[str, Any]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                         "enable.partition.eof": True, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[tuple[str, Any]] = []
    eof: set[int] = set()
    try:
        def done() -> bool:
            for m in consumer.consume(500, 0.2):
                if m.error() is None:
                    key = "" if m.key() is None else m.key().decode()
                    out.append((key, None if m.value() is None else json.loads(m.value())))
                elif m.error().code() == -191:  # _PARTITION_EOF
                    eof.add(m.partition())
            return len(eof) == partitions
        wait_until(done, timeout=30, interval=0, what=f"the end of {topic}")
    finally:
        consumer.close()
    return out


def test_internal_topics_config_records_and_forwarding(cluster: Cluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    metadata = admin.list_topics(timeout=10)
    counts = {kind: len(metadata.topics[t].partitions) for kind, t in cluster.topics.items()}
    assert counts == {"config": 1, "offset": 25, "status": 5}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in cluster.topics.values()]
    for future in admin.describe_configs(resources, request_timeout=10).values():
        assert future.result(timeout=15)["cleanup.policy"].value == "compact"

    leader = cluster.leader_url(cluster.workers[0])
    follower = next(i for i, w in enumerate(cluster.workers) if w.url.rstrip("/") + "/" != leader)
    topic = f"counts-{uuid.uuid4().hex[:6]}"
    config = {"connector.class": "counting.CountingSourceConnector", "topic": topic, "tasks.max": "1"}
    created = cluster.http[follower].post("/connectors", json={"name": "counter", "config": config})
    assert created.status_code == 201, created.text  # forwarded to the leader
    assert created.headers["location"].endswith("/connectors/counter")
    for http in cluster.http:
        wait_until(lambda: cluster.states(http, "counter") == ("RUNNING", [("RUNNING", _only_worker(http))]),
                   timeout=60, interval=0.2, what="counter RUNNING as seen by each worker")
    assert cluster.http[1 - follower].post("/connectors", json={"name": "counter", "config": config}).json() == {
        "error_code": 409, "message": "Connector counter already exists"}
    _values(cluster.bootstrap, topic, 20)
    for http in cluster.http:  # the active topic (KIP-558), kept in the status topic: every worker knows it
        wait_until(lambda: http.get("/connectors/counter/topics").json() == {
            "counter": {"connector": "counter", "topics": [topic]}}, timeout=30, interval=0.1, what="the topic")
    wait_until(lambda: cluster.http[follower].get("/connectors/counter/offsets").json()["offsets"], timeout=30,
               interval=0.1, what="a stored source offset")  # flushed every 500 ms while running
    assert cluster.http[follower].put("/connectors/counter/pause").status_code == 202
    wait_until(lambda: (cluster.states(cluster.http[0], "counter") or ("",))[0] == "PAUSED", timeout=30,
               interval=0.2, what="counter PAUSED")

    records = dict(_records(cluster.bootstrap, cluster.topics["config"], 1))
    assert records["connector-counter"] == {"properties": dict(config, name="counter")}
    assert records["task-counter-0"]["properties"]["topic"] == topic
    assert records["commit-counter"] == {"tasks": 1}
    assert records["target-state-counter"] == {"state": "PAUSED", "state.v2": "PAUSED"}
    offsets = [(k, v) for k, v in _records(cluster.bootstrap, cluster.topics["offset"], 25) if v is not None]
    assert offsets and all(json.loads(k) == ["counter", {"counter": topic}] for k, _ in offsets)
    assert offsets[-1][1]["next"] >= 10
    statuses = dict(_records(cluster.bootstrap, cluster.topics["status"], 5))
    assert statuses["status-connector-counter"]["state"] == "PAUSED"
    used = statuses[f"status-topic-{topic}:connector-counter"]["topic"]
    assert (used["name"], used["connector"], used["task"]) == (topic, "counter", 0)
    assert cluster.http[1 - follower].put("/connectors/counter/topics/reset").status_code == 202
    for http in cluster.http:
        wait_until(lambda: http.get("/connectors/counter/topics").json()["counter"]["topics"] == [], timeout=30,
                   interval=0.1, what="the topics reset, as each worker sees it")

    assert cluster.http[follower].delete("/connectors/counter").status_code == 204
    for http in cluster.http:
        wait_until(lambda: http.get("/connectors").json() == [], timeout=30, interval=0.1, what="the deletion")


def _only_worker(http: httpx.Client) -> str:
    """The worker id every status of the single-task connector ``counter`` names."""
    body = http.get("/connectors/counter/status").json()
    return str(body["tasks"][0]["worker_id"]) if body["tasks"] else ""


@pytest.mark.slow  # about 20 s: six rebalances, then the 6 s session timeout of the dead worker
def test_kill_9_moves_connectors_and_tasks_without_losing_records(cluster: Cluster) -> None:
    names = {f"counter-{i}": f"counts-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)}
    for i, (name, topic) in enumerate(names.items()):
        config = {"connector.class": "counting.CountingSourceConnector", "topic": topic, "tasks.max": "1"}
        r = cluster.http[i % 2].post("/connectors", json={"name": name, "config": config})
        assert r.status_code == 201, r.text

    def all_running(http: httpx.Client) -> dict[str, tuple[str, list[tuple[str, str]]]] | None:
        states = {name: cluster.states(http, name) for name in names}
        ok = all(s is not None and s[0] == "RUNNING" and len(s[1]) == 1 and s[1][0][0] == "RUNNING"
                 for s in states.values())
        return states if ok else None  # type: ignore[return-value]
    before = wait_until(lambda: all_running(cluster.http[0]), timeout=90, interval=0.2, what="three counters")
    worker_ids = {tasks[0][1] for _, tasks in before.values()}
    assert len(worker_ids) == 2, before  # three connectors and three tasks spread over both workers
    counted = {name: max(_values(cluster.bootstrap, topic, 50)) for name, topic in names.items()}

    leader = cluster.leader_url(cluster.workers[0])
    victim = next(i for i, w in enumerate(cluster.workers) if w.url.rstrip("/") + "/" == leader)
    survivor = 1 - victim
    cluster.workers[victim].kill()
    # the survivor still has the dead leader in its generation: writes cannot reach a leader
    refused = cluster.http[survivor].put("/connectors/counter-0/pause")
    assert refused.status_code == 409, refused.text
    assert refused.json()["message"].startswith("Cannot complete request because of a conflicting operation")

    survivor_id = cluster.workers[survivor].url.split("://")[1].rstrip("/")
    after = wait_until(lambda: (s := all_running(cluster.http[survivor])) and all(
        tasks[0][1] == survivor_id and state == "RUNNING" for state, tasks in s.values()) and s,
        timeout=60, interval=0.2, what="every task RUNNING on the survivor")
    assert len(after) == 3
    for name, topic in names.items():
        values = _values(cluster.bootstrap, topic, counted[name] + 100)
        top = max(values)
        assert set(values) == set(range(1, top + 1)), f"{name}: records lost"


def _incarnations(bootstrap: str, topic: str) -> dict[int, tuple[list[str], int]]:
    """Per task of ``spread``: the incarnations that wrote to ``topic`` (up to its end now), in
    order, and the highest sequence number written."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "enable.auto.commit": False})
    seen: dict[int, tuple[list[str], int]] = {}
    try:
        try:
            _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        except KafkaException:  # the topic is not there yet: no task has written
            return seen
        consumer.assign([TopicPartition(topic, 0, 0)])
        position = [0]

        def done() -> bool:
            for m in consumer.consume(500, 0.2):
                if m.error() is None:
                    value = json.loads(m.value())
                    runs, top = seen.setdefault(value["task"], ([], 0))
                    if not runs or runs[-1] != value["incarnation"]:
                        runs.append(value["incarnation"])
                    seen[value["task"]] = (runs, max(top, value["seq"]))
                    position[0] = m.offset() + 1
            return position[0] >= end
        wait_until(done, timeout=30, interval=0, what=f"offset {end} of {topic}")
    finally:
        consumer.close()
    return seen


def _placement(http: httpx.Client) -> dict[int, str] | None:
    """Task → worker id, once the connector and its six tasks are all RUNNING."""
    r = http.get("/connectors/spread/status")
    body = r.json() if r.status_code == 200 else {}
    tasks = body.get("tasks", [])
    if body.get("connector", {}).get("state") != "RUNNING" or len(tasks) != 6:
        return None
    if any(t["state"] != "RUNNING" for t in tasks):
        return None
    return {int(t["id"]): str(t["worker_id"]) for t in tasks}


@pytest.mark.slow  # about 30 s: three workers, a revoking rebalance, a 6 s session timeout and a 3 s delay
def test_cooperative_rebalance_keeps_tasks_running_and_holds_a_dead_workers_tasks(
        broker: BrokerProcess | ExternalBroker, tmp_path: Path) -> None:
    with ExitStack() as stack:
        cluster = Cluster(broker.bootstrap, tmp_path, stack, {"scheduled.rebalance.max.delay.ms": "3000"})
        topic = f"spread-{uuid.uuid4().hex[:6]}"
        config = {"connector.class": "spread.SpreadSourceConnector", "topic": topic, "tasks.max": "6"}
        assert cluster.http[0].post("/connectors", json={"name": "spread", "config": config}).status_code == 201
        two = wait_until(lambda: (p := _placement(cluster.http[0])) and len(set(p.values())) == 2 and p,
                         timeout=60, interval=0.2, what="six tasks RUNNING over two workers")
        assert sorted(list(two.values()).count(w) for w in set(two.values())) == [3, 3]
        before = wait_until(lambda: len(i := _incarnations(cluster.bootstrap, topic)) == 6 and i, timeout=30,
                            interval=0.2, what="a record from each task")

        third = cluster.add_worker()
        third_id = third.url.split("://")[1]
        three = wait_until(lambda: (p := _placement(cluster.http[0])) and len(set(p.values())) == 3 and p,
                           timeout=60, interval=0.2, what="six tasks RUNNING over three workers")
        moved = {t for t in three if three[t] != two[t]}
        assert sorted(list(three.values()).count(w) for w in set(three.values())) == [2, 2, 2]
        assert len(moved) == 2 and all(three[t] == third_id for t in moved)
        joined = _incarnations(cluster.bootstrap, topic)
        for t in set(three) - moved:  # kept: never restarted, and still producing
            assert joined[t][0] == before[t][0], f"task {t} was restarted although it was not revoked"
            assert joined[t][1] > before[t][1]
        for t in moved:
            assert len(joined[t][0]) == 2, f"task {t} should have stopped once and started once on the new worker"

        # kill -9 a follower that runs tasks: its tasks are held for the delay, then move
        leader = cluster.leader_url(cluster.workers[0])
        victim = next(i for i, w in enumerate(cluster.workers) if w.url.rstrip("/") + "/" != leader)
        victim_id = cluster.workers[victim].url.split("://")[1]
        survivors = [i for i in range(3) if i != victim]
        cluster.workers[victim].kill()
        after = wait_until(lambda: (p := _placement(cluster.http[survivors[0]])) and victim_id not in p.values() and p,
                           timeout=90, interval=0.2, what="the dead worker's tasks RUNNING on the survivors")
        assert sorted(list(after.values()).count(w) for w in set(after.values())) == [3, 3]
        held = [int(d) for i in survivors for d in re.findall(r"rebalance delay (\d+) ms", cluster.workers[i].output())]
        assert any(0 < d <= 3000 for d in held), "the lost tasks were not held for scheduled.rebalance.max.delay.ms"
        final = _incarnations(cluster.bootstrap, topic)
        for t, w in three.items():
            if w != victim_id:
                assert final[t][0] == joined[t][0], f"task {t} on a survivor was restarted"
