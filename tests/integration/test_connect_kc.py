"""kc (PyPI ``kafka-connect-py``, a command-line client of Kafka Connect's REST API) drives a
real ``tomyum connect standalone`` worker on a real tomyum broker: every command kc has —
info, list (expand, pattern, state), create, get, config, status, update, list-tasks,
task-status, restart-task, list-topics, reset-topics, pause, resume, restart (with tasks, only
failed, --all), list-plugins, delete (one, --all) — and, through kc's Python API, the two
operations its CLI lacks or mangles: stop, and config validation (``kc validate-config`` sends
its JSON as a JSON *string*, refused with 400 — Kafka Connect's worker refuses it with 500).

kc prints an HTTP error on stdout and still exits 0, so every check reads what it printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka_connect import KafkaConnect

from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess

SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"
KC = shutil.which("kc", path=os.path.dirname(sys.executable)) or shutil.which("kc")

pytestmark = pytest.mark.timeout(120)


class Kc:
    def __init__(self, url: str) -> None:
        self.url = url

    def text(self, *args: str) -> str:
        assert KC is not None, "kc (kafka-connect-py) is not installed"
        done = subprocess.run([KC, *args], capture_output=True, text=True, timeout=30,
                              env=dict(os.environ, KAFKA_CONNECT_URL=self.url), stdin=subprocess.DEVNULL)
        assert done.returncode == 0 and not done.stderr, (args, done.returncode, done.stderr)
        return done.stdout.strip()

    def __call__(self, *args: str) -> Any:
        out = self.text(*args)
        try:
            return json.loads(out) if out else None
        except ValueError as e:
            raise AssertionError(f"kc {' '.join(args)} printed {out!r}") from e

    def wait_state(self, name: str, state: str, tasks: int = 1) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            s: dict[str, Any] = self("status", name)
            ok = s["connector"]["state"] == state and len(s["tasks"]) == tasks \
                and all(t["state"] == state for t in s["tasks"])
            return s if ok else None
        return wait_until(reached, timeout=30, interval=0.2, what=f"kc status {name}: {state}")


@pytest.fixture
def kc(broker: BrokerProcess | ExternalBroker, tmp_path: Path) -> Iterator[Kc]:
    with ConnectProcess(tmp_path / "worker", broker.bootstrap) as worker:
        yield Kc(worker.url)


def _source(tmp_path: Path, topic: str, lines: list[str]) -> dict[str, str]:
    path = tmp_path / f"{uuid.uuid4().hex[:6]}.txt"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return {"connector.class": SOURCE, "file": str(path), "topic": topic, "tasks.max": "1"}


@pytest.mark.slow  # ~50 kc processes: 15-25 s on 2 busy cores
def test_kc_drives_every_rest_operation(kc: Kc, tmp_path: Path, topic_name: str) -> None:
    info = kc("info")
    assert set(info) >= {"version", "commit", "kafka_cluster_id"}
    plugins = {p["class"]: p["type"] for p in kc("list-plugins")}
    assert plugins[SOURCE] == "source" and plugins[SINK] == "sink"

    name = f"kc-{uuid.uuid4().hex[:6]}"
    config = _source(tmp_path, topic_name, ["a", "b"])
    created = kc("create", "-d", json.dumps({"name": name, "config": config}))
    assert created["name"] == name and created["type"] == "source" and created["config"] == dict(config, name=name)
    config_file = tmp_path / "other.json"
    other = f"kc-other-{uuid.uuid4().hex[:6]}"
    config_file.write_text(json.dumps({"name": other, "config": _source(tmp_path, topic_name + "-o", [])}))
    assert kc("create", "-f", str(config_file))["name"] == other

    assert sorted(kc("list")) == sorted([name, other])
    assert kc("list", "-p", "^kc-other-") == [other]
    kc.wait_state(name, "RUNNING")
    kc.wait_state(other, "RUNNING")
    assert kc("list", "-e", "status")[name]["status"]["connector"]["state"] == "RUNNING"
    assert kc("list", "-e", "info")[name]["info"]["config"]["topic"] == topic_name
    assert set(kc("list", "-e", "status", "-s", "RUNNING")) == {name, other}
    assert kc("get", name)["tasks"] == [{"connector": name, "task": 0}]
    assert kc("config", name) == dict(config, name=name)
    tasks = kc("list-tasks", name)
    assert [t["id"] for t in tasks] == [{"connector": name, "task": 0}] and tasks[0]["config"]["topic"] == topic_name
    assert kc("task-status", name, "0")["state"] == "RUNNING"
    assert kc("restart-task", name, "0") is None
    kc.wait_state(name, "RUNNING")

    wait_until(lambda: kc("list-topics", name)[name]["topics"] == [topic_name], timeout=30, what="the active topic")
    assert kc("reset-topics", name) is None
    assert kc("list-topics", name)[name]["topics"] == []

    updated = kc("update", name, "-d", json.dumps(dict(config, **{"batch.size": "10"})))
    assert updated["config"]["batch.size"] == "10" and kc("config", name)["batch.size"] == "10"
    kc.wait_state(name, "RUNNING")

    assert kc("pause", name) is None
    kc.wait_state(name, "PAUSED")
    assert set(kc("list", "-e", "status", "-s", "PAUSED")) == {name}
    assert kc("resume", name) is None
    kc.wait_state(name, "RUNNING")
    assert kc("pause", "--all", "-p", "^kc-other-") is None
    kc.wait_state(other, "PAUSED")
    assert kc("resume", "--all", "-s", "PAUSED") is None
    kc.wait_state(other, "RUNNING")

    # restart prints the status after it; kc sends includeTasks/onlyFailed as True/False
    assert kc("restart", name)["name"] == name
    kc.wait_state(name, "RUNNING")
    restarted = kc("restart", name, "--include-tasks", "--only-failed")
    assert restarted["name"] == name and restarted["connector"]["state"] == "RUNNING"
    assert set(kc("restart", "--all", "--include-tasks")) == {name, other}
    kc.wait_state(name, "RUNNING")

    # stop and validate through kc's Python API (its CLI has no stop; see validate below)
    api = KafkaConnect(kc.url)
    assert api.stop_connector(name) is None
    kc.wait_state(name, "STOPPED", tasks=0)
    assert api.resume_connector(name) is None
    kc.wait_state(name, "RUNNING")
    valid = api.validate_connector_config("FileStreamSourceConnector", dict(config, name="x"))
    assert valid["name"] == SOURCE and valid["error_count"] == 0
    invalid = api.validate_connector_config(SOURCE, {"connector.class": SOURCE, "name": "x", "file": "f"})
    assert invalid["error_count"] == 1
    assert [c["value"]["errors"] for c in invalid["configs"] if c["value"]["name"] == "topic"] == [
        ["Missing required configuration \"topic\" which has no default value."]]

    assert kc("delete", name) is None
    assert kc("list") == [other]
    assert kc("delete", "--all", "-p", "^kc-") is None
    assert kc("list") == []


def test_kc_shows_the_workers_errors(kc: Kc, tmp_path: Path, topic_name: str) -> None:
    """kc prints the HTTP error of a refused request (and exits 0): the worker's status codes
    are what Kafka Connect answers."""
    assert kc.text("get", "missing").startswith("404 Client Error")
    assert kc.text("status", "missing").startswith("404 Client Error")
    assert kc.text("create", "-d", json.dumps({"name": "x", "config": {"connector.class": SOURCE, "file": "f"}})) \
        .startswith("400 Client Error")
    name = f"kc-{uuid.uuid4().hex[:6]}"
    kc("create", "-d", json.dumps({"name": name, "config": _source(tmp_path, topic_name, [])}))
    assert kc.text("create", "-d", json.dumps({"name": name, "config": _source(tmp_path, topic_name, [])})) \
        .startswith("409 Client Error")
    # kc validate-config sends its JSON as a JSON string: a bad body, 400 here (Kafka Connect 4.3's
    # worker refuses it too, with 500: checked by hand with the interop tests' KafkaConnectProcess)
    body = json.dumps({"connector.class": SOURCE, "name": "x", "file": "f", "topic": "t"})
    assert kc.text("validate-config", SOURCE, "-d", body).startswith("400 Client Error")
