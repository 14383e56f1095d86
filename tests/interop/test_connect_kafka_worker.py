"""The REST tests of tomyum connect (tests/integration/test_connect_rest.py), unchanged, against
Apache Kafka Connect's own standalone worker (4.3.0: Maven Central has no connect-file 4.4.0), running on a tomyum broker: the oracle for
paths, status codes, bodies and offsets semantics.

Only the ``connect`` fixture differs: it starts ``org.apache.kafka.connect.cli.ConnectStandalone``
from the jars ``tests/peers/connect/pom.xml`` names (fetched with Maven on first use, never
committed) on a free loopback port, and waits for ``/health``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_connect_rest import *  # noqa: F403 - the same tests, run here
from tests.integration.test_connect_rest import Connect
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.kafka_peer import fetch_jars, free_port

CONNECT_POM = Path(__file__).resolve().parents[1] / "peers" / "connect" / "pom.xml"


@pytest.fixture(scope="session")
def connect_jars() -> Path:
    if shutil.which("java") is None or shutil.which("mvn") is None:
        pytest.fail("java and mvn are needed to run Apache Kafka Connect")
    return fetch_jars(pom=CONNECT_POM, timeout=900)


@pytest.fixture
def connect(broker: BrokerProcess | ExternalBroker, tmp_path: Path,  # noqa: F811 - replaces tomyum's worker
            connect_jars: Path) -> Iterator[Connect]:
    port = free_port()
    workdir = tmp_path / "kafka-connect"
    workdir.mkdir()
    props = {"bootstrap.servers": broker.bootstrap, "listeners": f"http://127.0.0.1:{port}",
             "key.converter": "org.apache.kafka.connect.json.JsonConverter",
             "value.converter": "org.apache.kafka.connect.json.JsonConverter",
             "offset.storage.file.filename": str(workdir / "connect.offsets"),
             "offset.flush.interval.ms": "1000", "plugin.discovery": "only_scan"}
    worker_file = workdir / "worker.properties"
    worker_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    log = open(workdir / "connect.log", "wb")
    proc = subprocess.Popen(["java", "-Xmx384m", "-XX:TieredStopAtLevel=1", "-cp", f"{connect_jars}/*",
                             "org.apache.kafka.connect.cli.ConnectStandalone", str(worker_file)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"Kafka Connect exited with {proc.returncode}: "
                                   + (workdir / "connect.log").read_text(errors="replace")[-3000:])
            try:
                return httpx.get(url + "/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(healthy, timeout=120, interval=0.3, what="Kafka Connect's /health")
        client = Connect(url, broker.bootstrap, tmp_path)
        yield client
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
