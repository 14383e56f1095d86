"""Exactly-once source (KIP-618): a distributed ``tomyum connect`` worker with
``exactly.once.source.support=enabled``, killed with SIGKILL mid-stream again and again and
restarted, writes every number of a counting source exactly once, in order, per partition, as a
``read_committed`` consumer sees it. Kafka's documented behaviour is the oracle: records are
written in transactions (commit markers take offsets), the killed worker's open transaction is
aborted when the next generation's tasks fence it, and the config topic holds Kafka's task count
record ``tasks-fencing-<connector>`` → ``{"task-count": n}``. Reconfigured to its own
``offsets.storage.topic``, the connector goes on from the worker's topic (the fallback), then,
killed again, from its own topic, whose offsets its transactions wrote.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from tomyum.connect.exactly_once import fence_producers
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess
from tests.integration.test_connect_distributed import COUNTER, _records

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

PARTITIONED = '''
import dataclasses

from counting import CountingSourceConnector, CountingTask
from tomyum.connect.connector import ConnectorTransactionBoundaries


class PartitionCounterConnector(CountingSourceConnector):
    """Task n counts 1, 2, 3, ... into partition n of ``topic``, from its own stored offset."""

    def task_class(self):
        return PartitionCounterTask

    def can_define_transaction_boundaries(self, config):
        return ConnectorTransactionBoundaries.SUPPORTED

    def task_configs(self, max_tasks):
        return [dict(self.props, task=str(n)) for n in range(max_tasks)]


class PartitionCounterTask(CountingTask):
    def start(self, props):
        self.topic, self.task = props["topic"], int(props["task"])
        stored = self.context.offset_storage_reader.offset({"task": self.task})
        self.next = stored["next"] if stored else 0

    def poll(self):
        records = [dataclasses.replace(r, source_partition={"task": self.task}, kafka_partition=self.task)
                   for r in super().poll()]
        transactions = self.context.transaction_context  # with transaction.boundary=connector
        for r in records:
            if transactions is not None and r.value % 25 == 0:
                transactions.commit_transaction(r)
        return records
'''

TASKS = 2


def _read(bootstrap: str, topic: str, isolation: str, at_least: int, timeout: float = 60) -> dict[int, list[tuple[int, int]]]:
    """(offset, value) per partition, read from the start until each partition has reached
    ``at_least`` or, with ``at_least=0``, its end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "enable.auto.commit": False,
                         "isolation.level": isolation, "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(TASKS)])
    got: dict[int, list[tuple[int, int]]] = {p: [] for p in range(TASKS)}
    ended: set[int] = set()
    try:
        def done() -> bool:
            for m in consumer.consume(500, 0.2):
                if m.error() is None:
                    got[m.partition()].append((m.offset(), json.loads(m.value())))
                elif m.error().code() == -191:  # _PARTITION_EOF
                    ended.add(m.partition())
            if at_least:
                return all(got[p] and max(v for _, v in got[p]) >= at_least for p in got)
            return len(ended) == TASKS
        wait_until(done, timeout=timeout, interval=0, what=f"{topic} read {isolation}")
    finally:
        consumer.close()
    return got


class Cluster:
    """One distributed worker (restartable) of its own group, with its topics."""

    def __init__(self, bootstrap: str, workdir: Path, support: str) -> None:
        plugins = workdir / "plugins"
        plugins.mkdir()
        (plugins / "counting.py").write_text(COUNTER, encoding="utf-8")
        (plugins / "partition_counter.py").write_text(PARTITIONED, encoding="utf-8")
        tag = uuid.uuid4().hex[:6]
        self.bootstrap, self.topic, self.config_topic = bootstrap, f"eos-counts-{tag}", f"cfg-{tag}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic(self.topic, TASKS, 1)], request_timeout=15).values():
            future.result(timeout=20)
        self.group_id = f"eos-cluster-{tag}"
        props = {"group.id": self.group_id, "plugin.path": str(plugins), "exactly.once.source.support": support,
                 "config.storage.topic": self.config_topic, "offset.storage.topic": f"off-{tag}",
                 "status.storage.topic": f"sts-{tag}", "config.storage.replication.factor": "1",
                 "offset.storage.replication.factor": "1", "status.storage.replication.factor": "1",
                 "offset.storage.partitions": "5", "status.storage.partitions": "1",
                 "session.timeout.ms": "6000", "heartbeat.interval.ms": "1000", "rebalance.timeout.ms": "10000",
                 "value.converter.schemas.enable": "false"}
        self.worker = ConnectProcess(workdir / "worker", bootstrap, worker=props, mode="distributed")
        self.connector = {"connector.class": "partition_counter.PartitionCounterConnector", "topic": self.topic,
                          "tasks.max": str(TASKS), "transaction.boundary": "interval",
                          "transaction.boundary.interval.ms": "300"}

    def put_config(self, **extra: str) -> None:
        r = httpx.put(f"{self.worker.url}/connectors/counter/config", json={**self.connector, **extra}, timeout=60)
        assert r.status_code in (200, 201), r.text

    def diagnosis(self) -> str:
        """The connector's status and the worker's last log lines, for a failure's message."""
        try:
            status = httpx.get(f"{self.worker.url}/connectors/counter/status", timeout=10).text
        except httpx.HTTPError as e:
            status = str(e)
        lines = [line for line in self.worker.output().splitlines() if not line.startswith("%")]
        return "\n".join([status, *lines[-40:]])

    def count_and_kill(self, at_least: int) -> None:
        """Let the count reach ``at_least`` (committed), then kill -9 the worker and start it again."""
        _read(self.bootstrap, self.topic, "read_committed", at_least)
        self.worker.kill()
        self.worker.start()


def test_kill_9_and_restart_writes_every_number_exactly_once(broker: BrokerProcess | ExternalBroker,
                                                             tmp_path: Path) -> None:
    cluster = Cluster(broker.bootstrap, tmp_path, "enabled")
    own_offsets = f"own-{cluster.topic}"
    try:
        cluster.worker.start()
        cluster.put_config(**{"exactly.once.support": "requested"})
        for reached in (60, 120, 180):
            cluster.count_and_kill(reached)  # each time mid-transaction, most likely: one is open ~always
        # new task configs, with connector-defined boundaries and the connector's own offsets topic
        # (KIP-618: read first, the worker's topic the fallback): the leader fences both old producers
        cluster.put_config(**{"transaction.boundary": "connector", "offsets.storage.topic": own_offsets})
        wait_until(lambda: "Fencing out 2 task producers of connector counter" in cluster.worker.output(),
                   timeout=60, interval=0.1, what="the leader's round of zombie fencing")
        switched = max(v for r in _read(broker.bootstrap, cluster.topic, "read_committed", 0).values() for _, v in r)
        cluster.count_and_kill(switched + 50)  # resumed from the connector's own topic, in its transactions
        _read(broker.bootstrap, cluster.topic, "read_committed", max(switched + 100, 300))
        fence = httpx.put(f"{cluster.worker.url}/connectors/counter/fence", timeout=60)
        assert fence.status_code == 204, fence.text
        # a zombie's fate: another producer takes task 0's transactional id, task 0 fails
        fence_producers({"bootstrap.servers": broker.bootstrap}, [f"{cluster.group_id}-counter-0"])
        status = wait_until(lambda: (s := httpx.get(f"{cluster.worker.url}/connectors/counter/tasks/0/status",
                                                    timeout=30).json())["state"] == "FAILED" and s,
                            timeout=30, interval=0.1, what="task 0 FAILED once fenced")
        assert "ConnectError: Failed to flush offsets and/or records for task counter-0" in status["trace"], (
            status["trace"])
        cluster.worker.stop()
    except TimeoutError as e:
        raise AssertionError(f"{e}\n{cluster.diagnosis()}") from e
    finally:
        cluster.worker.kill()

    committed = _read(broker.bootstrap, cluster.topic, "read_committed", 0)
    uncommitted = _read(broker.bootstrap, cluster.topic, "read_uncommitted", 0)
    for p, records in committed.items():
        values = [v for _, v in records]
        assert values == list(range(1, len(values) + 1)), f"partition {p}: not exactly once, in order"
        assert len(values) >= 300
        offsets = [o for o, _ in records]
        assert offsets[-1] - offsets[0] + 1 > len(offsets), "no transaction markers between the records"
        after = [(o, v) for o, v in records if v > switched]  # the connector's transactions: 25 each
        ends = [v for (o, v), (o2, _) in zip(after, after[1:]) if o2 > o + 1]
        assert ends and all(v % 25 == 0 for v in ends), f"partition {p}: transactions ended after {ends}"
    aborted = sum(len(uncommitted[p]) - len(committed[p]) for p in committed)
    assert aborted > 0, "no open transaction was aborted after three kills"
    records = dict(_records(broker.bootstrap, cluster.config_topic, 1))
    assert records["tasks-fencing-counter"] == {"task-count": TASKS}
    own = dict(_records(broker.bootstrap, own_offsets, 5))  # the worker's offset.storage.partitions
    assert {k: v["next"] > switched for k, v in own.items()} == {
        json.dumps(["counter", {"task": n}], separators=(",", ":")): True for n in range(TASKS)}


def test_without_exactly_once_a_kill_9_duplicates_records(broker: BrokerProcess | ExternalBroker,
                                                         tmp_path: Path) -> None:
    """The contrast: at least once, offsets flushed every second, so a kill re-sends what came after."""
    cluster = Cluster(broker.bootstrap, tmp_path, "disabled")
    try:
        cluster.worker.start()
        cluster.put_config()
        cluster.count_and_kill(150)
        _read(broker.bootstrap, cluster.topic, "read_committed", 300)
    finally:
        cluster.worker.kill()
    values = [v for records in _read(broker.bootstrap, cluster.topic, "read_committed", 0).values() for _, v in records]
    assert len(values) > len(set(values)), "no record was written twice"
