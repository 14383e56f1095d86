"""The REST tests of tomyum connect (tests/integration/test_connect_rest.py), unchanged, against
Apache Kafka Connect's own standalone worker (4.3.0: Maven Central has no connect-file 4.4.0), running on a tomyum broker: the oracle for
paths, status codes, bodies and offsets semantics.

Only the ``connect`` fixture differs: it starts ``org.apache.kafka.connect.cli.ConnectStandalone``
(``tomyum.testing.connect.KafkaConnectProcess``) from the jars ``tests/peers/connect/pom.xml``
names (fetched with Maven on first use, never committed) on a free loopback port, and waits for
``/health``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_connect_rest import *  # noqa: F403 - the same tests, run here
from tests.integration.test_connect_rest import Connect
from tomyum.testing import BrokerProcess, ExternalBroker
from tomyum.testing.connect import KafkaConnectProcess
from tomyum.testing.kafka_peer import fetch_jars

CONNECT_POM = Path(__file__).resolve().parents[1] / "peers" / "connect" / "pom.xml"


@pytest.fixture(scope="session")
def connect_jars() -> Path:
    if shutil.which("java") is None or shutil.which("mvn") is None:
        pytest.fail("java and mvn are needed to run Apache Kafka Connect")
    return fetch_jars(pom=CONNECT_POM, timeout=900)


@pytest.fixture
def connect(broker: BrokerProcess | ExternalBroker, tmp_path: Path,  # noqa: F811 - replaces tomyum's worker
            connect_jars: Path) -> Iterator[Connect]:
    with KafkaConnectProcess(connect_jars, tmp_path / "kafka-connect", {"bootstrap.servers": broker.bootstrap},
                             heap="384m") as worker:
        client = Connect(worker.url, broker.bootstrap, tmp_path)
        yield client
        client.close()


CORPUS = ["plain", "ünïcödé ✓ \u00e9", "", '{"json": ["inside", 1]}', "tab\there", "x" * 3000, "last"]
TRANSFORMS = {
    "transforms": "hoist,static,key,cast",
    "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
    "transforms.hoist.field": "line",
    "transforms.static.type": "org.apache.kafka.connect.transforms.InsertField$Value",
    "transforms.static.static.field": "origin",
    "transforms.static.static.value": "file",
    "transforms.static.topic.field": "topic!",
    "transforms.key.type": "org.apache.kafka.connect.transforms.ValueToKey",
    "transforms.key.fields": "line",
    "transforms.cast.type": "org.apache.kafka.connect.transforms.SetSchemaMetadata$Value",
    "transforms.cast.schema.name": "com.example.Line",
    "transforms.cast.schema.version": "3",
}


def test_filestream_bytes_equal_kafka_connects(connect: Connect, broker: BrokerProcess | ExternalBroker,  # noqa: F811
                                               tmp_path: Path) -> None:
    """The same file through Kafka's worker and tomyum's, plain and through a chain of
    transforms (HoistField, InsertField, ValueToKey, SetSchemaMetadata): the same keys and values,
    byte for byte (JsonConverter with schemas)."""
    from tests.integration.test_connect_rest import SOURCE, _consume
    from tomyum.testing.connect import ConnectProcess

    source = tmp_path / "corpus.txt"
    source.write_text("".join(line + "\n" for line in CORPUS), encoding="utf-8")
    tag = uuid.uuid4().hex[:6]
    topics = {(who, kind): f"{who}-{kind}-{tag}" for who in ("kafka", "tomyum") for kind in ("plain", "transformed")}

    def config(who: str, kind: str) -> dict[str, str]:
        base = {"connector.class": SOURCE, "file": str(source), "topic": topics[(who, kind)], "tasks.max": "1"}
        return dict(base, **TRANSFORMS) if kind == "transformed" else base

    for kind in ("plain", "transformed"):
        assert connect.create(f"kafka-{kind}", config("kafka", kind)).status_code == 201
    with ConnectProcess(tmp_path / "tomyum-worker", broker.bootstrap,
                        connectors=[dict(config("tomyum", k), name=f"tomyum-{k}") for k in ("plain", "transformed")]):
        got = {key: [(m.key(), m.value()) for m in _consume(broker.bootstrap, topic, len(CORPUS))]
               for key, topic in topics.items()}
    for kind in ("plain", "transformed"):
        assert got[("tomyum", kind)] == [
            (k, v.replace(topics[("kafka", kind)].encode(), topics[("tomyum", kind)].encode()) if v else v)
            for k, v in got[("kafka", kind)]], kind
    assert len(got[("kafka", "plain")]) == len(CORPUS)
    assert got[("kafka", "transformed")][0][1].startswith(b'{"schema":{"type":"struct","fields":[{"type":"string"')
