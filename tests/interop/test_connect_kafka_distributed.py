"""A mixed Connect cluster: Apache Kafka Connect's own distributed worker (``ConnectDistributed``,
``connect.protocol`` eager, compatible or its default, sessioned) and a ``tomyum connect
distributed`` worker configured the same, in one group, sharing one config, offset and status
topic, on a tomyum broker.

That they agree is the proof that tomyum's worker speaks Kafka's group protocol (ConnectProtocol
v0 metadata and assignments with eager; v1 — current assignment in the metadata, revocations and
a scheduled delay in the assignment — with compatible, which is also what a sessioned Kafka
worker and tomyum's, which cannot sign requests, agree on; either one leading) and reads and
writes the three topics in
Kafka's formats: a connector created through tomyum's REST API runs on whichever worker the
leader chose, both workers report it, and when Kafka's worker is killed with -9 tomyum's takes
its work over and goes on from the offsets Kafka's wrote, losing no line.
"""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.interop.test_connect_kafka_worker import connect_jars  # noqa: F401 - the fixture, shared
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess
from tomyum.testing.kafka_peer import free_port

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"


class KafkaWorker:
    """``org.apache.kafka.connect.cli.ConnectDistributed`` in a child process."""

    def __init__(self, jars: Path, workdir: Path, props: dict[str, str]) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True)
        settings = dict(props, **{"listeners": f"http://127.0.0.1:{self.port}", "rest.advertised.host.name": "127.0.0.1",
                                  "rest.advertised.port": str(self.port), "plugin.discovery": "only_scan"})
        worker_file = workdir / "worker.properties"
        worker_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()), encoding="utf-8")
        self.log_path = workdir / "connect.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(["java", "-Xmx384m", "-XX:TieredStopAtLevel=1", "-cp", f"{jars}/*",
                                          "org.apache.kafka.connect.cli.ConnectDistributed", str(worker_file)],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_healthy(self) -> None:
        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Kafka Connect exited with {self.proc.returncode}: "
                                   + self.log_path.read_text(errors="replace")[-3000:])
            try:
                return httpx.get(self.url + "/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(healthy, timeout=120, interval=0.3, what="Kafka Connect's /health")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(params=["eager", "compatible", "sessioned"])
def kafka_worker_props(request: pytest.FixtureRequest, broker: BrokerProcess | ExternalBroker) -> dict[str, str]:
    """Both workers with ``connect.protocol`` eager, compatible, and Kafka's default (sessioned),
    which falls back to compatible as tomyum's worker offers no more. A dead worker's tasks are
    held for ``scheduled.rebalance.max.delay.ms`` under the cooperative protocols: 3 s here."""
    tag = uuid.uuid4().hex[:6]
    return {"bootstrap.servers": broker.bootstrap, "group.id": f"mixed-{tag}", "connect.protocol": request.param,
            "config.storage.topic": f"cfg-{tag}", "offset.storage.topic": f"off-{tag}",
            "status.storage.topic": f"sts-{tag}", "config.storage.replication.factor": "1",
            "offset.storage.replication.factor": "1", "status.storage.replication.factor": "1",
            "session.timeout.ms": "6000", "heartbeat.interval.ms": "1000", "offset.flush.interval.ms": "500",
            "scheduled.rebalance.max.delay.ms": "3000",
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter"}


@pytest.fixture
def kafka_worker(connect_jars: Path, tmp_path: Path,  # noqa: F811 - the shared fixture
                 kafka_worker_props: dict[str, str]) -> Iterator[KafkaWorker]:
    worker = KafkaWorker(connect_jars, tmp_path / "kafka-worker", kafka_worker_props)
    try:
        worker.wait_healthy()
        yield worker
    finally:
        worker.stop()


def _payloads(bootstrap: str, topic: str, want: set[str], timeout: float = 60) -> list[str]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got: list[str] = []
    try:
        def complete() -> bool:
            got.extend(json.loads(m.value())["payload"] for m in consumer.consume(500, 0.2) if m.error() is None)
            return want <= set(got)
        wait_until(complete, timeout=timeout, interval=0, what=f"{len(want)} lines on {topic}")
    finally:
        consumer.close()
    return got


def test_mixed_cluster_with_kafkas_worker(kafka_worker: KafkaWorker, kafka_worker_props: dict[str, str],
                                          broker: BrokerProcess | ExternalBroker, tmp_path: Path) -> None:
    with ConnectProcess(tmp_path / "tomyum-worker", broker.bootstrap, worker=kafka_worker_props,
                        mode="distributed") as ours, \
            httpx.Client(base_url=ours.url, timeout=60) as tomyum, httpx.Client(base_url=kafka_worker.url,
                                                                                 timeout=60) as kafka:
        # two connectors of one task each: either assignor gives each worker one task
        names = ("mixed-a", "mixed-b")
        files = {n: tmp_path / f"{n}.txt" for n in names}
        topics = {n: f"{n}-{uuid.uuid4().hex[:6]}" for n in names}
        first = {n: [f"{n}-line-{i}" for i in range(20)] for n in names}
        for n in names:
            files[n].write_text("".join(f"{line}\n" for line in first[n]), encoding="utf-8")
            config = {"connector.class": SOURCE, "file": str(files[n]), "topic": topics[n], "tasks.max": "1"}

            def created() -> bool:  # 409 while a rebalance settles, as with Kafka's workers alone
                r = tomyum.post("/connectors", json={"name": n, "config": config})  # noqa: B023 - called now
                assert r.status_code in (201, 409), r.text
                return r.status_code == 201
            wait_until(created, timeout=60, interval=0.5, what=f"{n} created through tomyum's worker")
            wait_until(lambda: kafka.get(f"/connectors/{n}/config").json() == dict(config, name=n),  # noqa: B023
                       timeout=30, interval=0.3, what=f"{n}'s config, read by Kafka's worker")

        def placement(http: httpx.Client) -> dict[str, str] | None:
            """Task → worker id, once every connector and task is RUNNING in ``http``'s view."""
            out = {}
            for n in names:
                r = http.get(f"/connectors/{n}/status")
                if r.status_code != 200:
                    return None
                body = r.json()
                if body["connector"]["state"] != "RUNNING" or [t["state"] for t in body["tasks"]] != ["RUNNING"]:
                    return None
                out[n] = body["tasks"][0]["worker_id"]
            return out
        ours_id = ours.url.split("://")[1].rstrip("/")
        kafka_id = f"127.0.0.1:{kafka_worker.port}"
        placed = wait_until(lambda: (p := placement(kafka)) and set(p.values()) == {ours_id, kafka_id} and p,
                            timeout=90, interval=0.3, what="one task on each worker, as Kafka's worker sees it")
        wait_until(lambda: placement(tomyum) == placed, timeout=30, interval=0.3, what="the same, as tomyum's sees it")
        for n in names:
            _payloads(broker.bootstrap, topics[n], set(first[n]))
        on_kafka = next(n for n, w in placed.items() if w == kafka_id)
        # the protocol the group chose (JoinGroup's answer, one for the whole group), as tomyum's logged it
        chosen = "default" if kafka_worker_props["connect.protocol"] == "eager" else "compatible"
        assert f"with protocol {chosen};" in ours.output()
        wait_until(lambda: kafka.get(f"/connectors/{on_kafka}/offsets").json()["offsets"], timeout=30, interval=0.3,
                   what="the source offset Kafka's worker stored")

        kafka_worker.proc.kill()
        kafka_worker.proc.wait(10)
        wait_until(lambda: placement(tomyum) == {n: ours_id for n in names}, timeout=90, interval=0.3,
                   what="every task on tomyum's worker")
        for n in names:
            more = [f"{n}-after-{i}" for i in range(20)]
            with open(files[n], "a", encoding="utf-8") as f:
                f.write("".join(f"{line}\n" for line in more))
            got = _payloads(broker.bootstrap, topics[n], set(first[n]) | set(more))
            if n == on_kafka:  # resumed from Kafka's offset: nothing read twice from the start
                assert got.count(first[n][0]) == 1, got
