"""Kafka Connect's REST API, driven over HTTP against a real ``tomyum connect standalone``
worker on a real tomyum broker.

Written against Kafka Connect's documented behaviour only (paths, status codes, bodies), so the
same tests run unchanged against Apache Kafka Connect's worker: the ``connect`` fixture is the
only thing that knows which worker it starts (tests/interop/test_connect_kafka_worker.py
overrides it with Kafka's own).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer

from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess

pytestmark = pytest.mark.timeout(120)

SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"


class Connect:
    """A REST client of one worker (``url``), on a broker (``bootstrap``)."""

    def __init__(self, url: str, bootstrap: str, workdir: Path) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.bootstrap = bootstrap
        self.workdir = workdir

    def close(self) -> None:
        self.http.close()

    def status(self, name: str) -> dict[str, Any]:
        r = self.http.get(f"/connectors/{name}/status")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def wait_state(self, name: str, state: str, tasks: int | None = 1, timeout: float = 30) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            s = self.status(name)
            ok = s["connector"]["state"] == state and (
                tasks is None or (len(s["tasks"]) == tasks and all(t["state"] == state for t in s["tasks"])))
            return s if ok else None
        return wait_until(reached, timeout=timeout, interval=0.1, what=f"{name} {state}")

    def create(self, name: str, config: dict[str, str]) -> httpx.Response:
        return self.http.post("/connectors", json={"name": name, "config": config})


@pytest.fixture
def connect(broker: BrokerProcess | ExternalBroker, tmp_path: Path) -> Iterator[Connect]:
    with ConnectProcess(tmp_path / "worker", broker.bootstrap) as worker:
        client = Connect(worker.url, broker.bootstrap, tmp_path)
        yield client
        client.http.close()


def _name() -> str:
    return f"c-{uuid.uuid4().hex[:8]}"


def _source_config(c: Connect, topic: str, lines: list[str] | None = None) -> dict[str, str]:
    path = c.workdir / f"{uuid.uuid4().hex[:6]}.txt"
    path.write_text("".join(line + "\n" for line in (lines or [])), encoding="utf-8")
    return {"connector.class": SOURCE, "file": str(path), "topic": topic, "tasks.max": "1"}


def _consume(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list[Any]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list[Any] = []
    try:
        def enough() -> bool:
            for m in consumer.consume(100, 0.5):
                if m.error() is None:
                    got.append(m)
            return len(got) >= count
        wait_until(enough, timeout=timeout, interval=0, what=f"{count} records on {topic}")
    finally:
        consumer.close()
    return got


def test_root_health_and_plugins(connect: Connect) -> None:
    root = connect.http.get("/")
    assert root.status_code == 200
    assert set(root.json()) >= {"version", "commit", "kafka_cluster_id"}
    health = connect.http.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    plugins = connect.http.get("/connector-plugins").json()
    by_class = {p["class"]: p["type"] for p in plugins}
    assert by_class[SOURCE] == "source" and by_class[SINK] == "sink"
    loggers = connect.http.get("/admin/loggers")
    assert loggers.status_code == 200 and isinstance(loggers.json(), dict)  # its loggers depend on the logging set-up


def test_create_list_status_tasks_delete(connect: Connect, topic_name: str) -> None:
    name = _name()
    config = _source_config(connect, topic_name, ["a"])
    created = connect.create(name, config)
    assert created.status_code == 201, created.text
    assert created.headers["location"].endswith(f"/connectors/{name}")
    info = created.json()
    assert info["name"] == name and info["type"] == "source"
    assert info["config"] == dict(config, name=name)

    assert connect.create(name, config).status_code == 409
    assert connect.create(name, config).json() == {"error_code": 409, "message": f"Connector {name} already exists"}

    assert name in connect.http.get("/connectors").json()
    status = connect.wait_state(name, "RUNNING")
    assert status["type"] == "source" and status["tasks"][0]["id"] == 0 and status["connector"]["worker_id"]
    expanded = connect.http.get("/connectors", params=[("expand", "status"), ("expand", "info")]).json()
    assert expanded[name]["status"]["connector"]["state"] == "RUNNING"
    assert expanded[name]["info"]["config"]["connector.class"] == SOURCE
    assert connect.http.get(f"/connectors/{name}").json()["tasks"] == [{"connector": name, "task": 0}]
    assert connect.http.get(f"/connectors/{name}/config").json() == dict(config, name=name)
    tasks = connect.http.get(f"/connectors/{name}/tasks").json()
    assert [t["id"] for t in tasks] == [{"connector": name, "task": 0}]
    assert tasks[0]["config"]["topic"] == topic_name
    task_status = connect.http.get(f"/connectors/{name}/tasks/0/status")
    assert task_status.status_code == 200 and task_status.json()["id"] == 0
    assert task_status.json()["state"] == "RUNNING"
    wait_until(lambda: connect.http.get(f"/connectors/{name}/topics").json()[name]["topics"] == [topic_name],
               timeout=30, what="the active topic")
    assert connect.http.put(f"/connectors/{name}/topics/reset").status_code == 202
    assert connect.http.get(f"/connectors/{name}/topics").json()[name]["topics"] == []

    deleted = connect.http.delete(f"/connectors/{name}")
    assert deleted.status_code == 204
    assert name not in connect.http.get("/connectors").json()
    missing = connect.http.get(f"/connectors/{name}")
    assert missing.status_code == 404
    assert missing.json() == {"error_code": 404, "message": f"Connector {name} not found"}
    for method, path in (("GET", "/status"), ("GET", "/config"), ("PUT", "/pause"), ("DELETE", "")):
        r = connect.http.request(method, f"/connectors/{name}{path}")
        assert r.status_code == 404 and r.json()["error_code"] == 404


def test_put_and_patch_config(connect: Connect, topic_name: str) -> None:
    name = _name()
    config = _source_config(connect, topic_name)
    first = connect.http.put(f"/connectors/{name}/config", json=config)
    assert first.status_code == 201 and first.json()["name"] == name
    connect.wait_state(name, "RUNNING")
    again = connect.http.put(f"/connectors/{name}/config", json=dict(config, **{"batch.size": "10"}))
    assert again.status_code == 200 and again.json()["config"]["batch.size"] == "10"
    patched = connect.http.patch(f"/connectors/{name}/config", json={"batch.size": None, "tasks.max": "2"})
    assert patched.status_code == 200
    assert "batch.size" not in patched.json()["config"] and patched.json()["config"]["tasks.max"] == "2"
    assert connect.http.get(f"/connectors/{name}/config").json() == patched.json()["config"]

    mismatch = connect.http.put(f"/connectors/{name}/config", json=dict(config, name="other"))
    assert mismatch.status_code == 400
    assert mismatch.json()["message"] == f"Connector name configuration (other) doesn't match connector name in the URL ({name})"
    invalid = connect.create(_name(), {"connector.class": SOURCE, "file": "x"})  # no topic
    assert invalid.status_code == 400
    assert invalid.json()["message"].startswith("Connector configuration is invalid and contains the following 1 error(s):")
    assert connect.http.patch(f"/connectors/{_name()}/config", json={"a": "b"}).status_code == 404


def test_pause_resume_stop(connect: Connect, topic_name: str) -> None:
    name = _name()
    assert connect.create(name, _source_config(connect, topic_name)).status_code == 201
    connect.wait_state(name, "RUNNING")
    assert connect.http.put(f"/connectors/{name}/pause").status_code == 202
    connect.wait_state(name, "PAUSED")
    assert connect.http.put(f"/connectors/{name}/resume").status_code == 202
    connect.wait_state(name, "RUNNING")
    assert connect.http.put(f"/connectors/{name}/stop").status_code == 204
    stopped = connect.wait_state(name, "STOPPED", tasks=0)
    assert stopped["tasks"] == []
    assert connect.http.get(f"/connectors/{name}/tasks").json() == []
    assert connect.http.put(f"/connectors/{name}/resume").status_code == 202
    connect.wait_state(name, "RUNNING")


def test_restart_variants(connect: Connect, topic_name: str) -> None:
    name = _name()
    assert connect.create(name, _source_config(connect, topic_name)).status_code == 201
    connect.wait_state(name, "RUNNING")
    plain = connect.http.post(f"/connectors/{name}/restart")
    assert plain.status_code == 204
    connect.wait_state(name, "RUNNING")

    only_failed = connect.http.post(f"/connectors/{name}/restart", params={"includeTasks": "true", "onlyFailed": "true"})
    assert only_failed.status_code == 202
    body = only_failed.json()
    assert body["name"] == name and body["connector"]["state"] == "RUNNING"
    assert [t["state"] for t in body["tasks"]] == ["RUNNING"]

    everything = connect.http.post(f"/connectors/{name}/restart", params={"includeTasks": "true"})
    assert everything.status_code == 202
    assert everything.json()["connector"]["state"] == "RESTARTING"
    assert [t["state"] for t in everything.json()["tasks"]] == ["RESTARTING"]
    connect.wait_state(name, "RUNNING")

    assert connect.http.post(f"/connectors/{name}/tasks/0/restart").status_code == 204
    connect.wait_state(name, "RUNNING")
    assert connect.http.post(f"/connectors/{name}/tasks/7/restart").status_code == 404
    # (restarting an unknown connector: tomyum answers 404; Kafka Connect 4.3's standalone worker 500)


def test_validate(connect: Connect) -> None:
    bad = connect.http.put(f"/connector-plugins/FileStreamSourceConnector/config/validate",
                           json={"connector.class": SOURCE, "file": "/tmp/x", "name": "n"})
    assert bad.status_code == 200
    body = bad.json()
    assert body["name"] == SOURCE and body["error_count"] == 1
    assert "Common" in body["groups"]
    by_name = {c["value"]["name"]: c for c in body["configs"]}
    assert by_name["topic"]["value"]["errors"] and by_name["topic"]["definition"]["required"] is True
    assert by_name["file"]["value"]["errors"] == [] and by_name["file"]["value"]["value"] == "/tmp/x"

    good = connect.http.put(f"/connector-plugins/FileStreamSourceConnector/config/validate",
                            json={"connector.class": SOURCE, "topic": "t", "name": "n"})
    assert good.status_code == 200 and good.json()["error_count"] == 0

    sink = connect.http.put(f"/connector-plugins/{SINK}/config/validate", json={"connector.class": SINK, "name": "n"})
    sink_errors = {c["value"]["name"]: c["value"]["errors"] for c in sink.json()["configs"]}
    assert sink_errors["topics"] and sink_errors["topics.regex"]

    mismatch = connect.http.put(f"/connector-plugins/FileStreamSinkConnector/config/validate",
                                json={"connector.class": SOURCE, "topic": "t"})
    assert mismatch.status_code == 400
    assert mismatch.json() == {"error_code": 400, "message":
                               f"Included connector type {SOURCE} does not match request type FileStreamSinkConnector"}


@pytest.mark.slow
def test_source_offsets_alter_and_reset(connect: Connect, topic_name: str) -> None:
    name = _name()
    config = _source_config(connect, topic_name, ["one", "two", "three"])
    assert connect.create(name, config).status_code == 201
    _consume(connect.bootstrap, topic_name, 3)
    partition = {"filename": config["file"]}
    wait_until(lambda: connect.http.get(f"/connectors/{name}/offsets").json()["offsets"] ==
               [{"partition": partition, "offset": {"position": 14}}], timeout=30, what="the source offset")

    running = connect.http.patch(f"/connectors/{name}/offsets",
                                 json={"offsets": [{"partition": partition, "offset": {"position": 4}}]})
    assert running.status_code == 400
    assert running.json()["message"].startswith("Connectors must be in the STOPPED state before their offsets can be modified.")
    assert connect.http.delete(f"/connectors/{name}/offsets").status_code == 400

    assert connect.http.put(f"/connectors/{name}/stop").status_code == 204
    connect.wait_state(name, "STOPPED", tasks=0)
    altered = connect.http.patch(f"/connectors/{name}/offsets",
                                 json={"offsets": [{"partition": partition, "offset": {"position": 4}}]})
    assert altered.status_code == 200, altered.text
    assert altered.json() == {"message": "The offsets for this connector have been altered successfully"}
    assert connect.http.get(f"/connectors/{name}/offsets").json() == {
        "offsets": [{"partition": partition, "offset": {"position": 4}}]}
    # resumed from position 4: "two" and "three" again
    assert connect.http.put(f"/connectors/{name}/resume").status_code == 202
    values = [m.value() for m in _consume(connect.bootstrap, topic_name, 5)]
    assert values[3:] == [b'{"schema":{"type":"string","optional":false},"payload":"two"}',
                          b'{"schema":{"type":"string","optional":false},"payload":"three"}']

    assert connect.http.put(f"/connectors/{name}/stop").status_code == 204
    connect.wait_state(name, "STOPPED", tasks=0)
    reset = connect.http.delete(f"/connectors/{name}/offsets")
    assert reset.status_code == 200
    assert reset.json() == {"message": "The offsets for this connector have been reset successfully"}
    assert connect.http.get(f"/connectors/{name}/offsets").json() == {"offsets": []}
    bad = connect.http.patch(f"/connectors/{name}/offsets", json={"offsets": []})
    assert bad.status_code == 400


def test_sink_offsets_alter_and_reset(connect: Connect, topic_name: str) -> None:
    producer = Producer({"bootstrap.servers": connect.bootstrap})
    for i in range(4):
        producer.produce(topic_name, value=f'{{"schema":{{"type":"int32","optional":false}},"payload":{i}}}'.encode())
    assert producer.flush(30) == 0
    name = _name()
    out = connect.workdir / "sink.txt"
    assert connect.create(name, {"connector.class": SINK, "topics": topic_name, "file": str(out)}).status_code == 201
    wait_until(lambda: out.exists() and out.read_text() == "0\n1\n2\n3\n", timeout=30, what="the sink file")
    expected = [{"partition": {"kafka_topic": topic_name, "kafka_partition": 0}, "offset": {"kafka_offset": 4}}]
    wait_until(lambda: connect.http.get(f"/connectors/{name}/offsets").json()["offsets"] == expected,
               timeout=30, what="the sink's committed offset")
    assert connect.http.put(f"/connectors/{name}/stop").status_code == 204
    connect.wait_state(name, "STOPPED", tasks=0)
    altered = connect.http.patch(f"/connectors/{name}/offsets", json={"offsets": [
        {"partition": {"kafka_topic": topic_name, "kafka_partition": 0}, "offset": {"kafka_offset": 2}}]})
    assert altered.status_code == 200, altered.text
    assert "altered successfully" in altered.json()["message"]
    assert connect.http.get(f"/connectors/{name}/offsets").json()["offsets"] == [
        {"partition": {"kafka_topic": topic_name, "kafka_partition": 0}, "offset": {"kafka_offset": 2}}]
    reset = connect.http.delete(f"/connectors/{name}/offsets")
    assert reset.status_code == 200 and "reset successfully" in reset.json()["message"]
    assert connect.http.get(f"/connectors/{name}/offsets").json() == {"offsets": []}
