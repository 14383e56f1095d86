"""A source connector with its own offsets topic (KIP-618's ``offsets.storage.topic``) on a real
distributed worker: the topic is created compacted with the worker's offset-topic settings;
the task starts from the worker's global topic when its own has nothing (Kafka's fallback), its
offsets then go to its own topic and are copied to the global one; the REST offsets endpoints
read, alter and reset that same topic, and a restarted task resumes from what was altered there."""

from __future__ import annotations

import json
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

from tests.integration.test_connect_distributed import Cluster, _records, _values
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until

pytestmark = pytest.mark.timeout(120)


def _stored(cluster: Cluster, topic: str, partitions: int) -> dict[str, Any]:
    """The latest value of each key of an offsets topic (None: a tombstone)."""
    return dict(_records(cluster.bootstrap, topic, partitions))


def _next(cluster: Cluster, topic: str, key: str) -> int:
    """The ``next`` of ``key``'s latest offset in ``topic`` (0 if none)."""
    return int((_stored(cluster, topic, 3).get(key) or {"next": 0})["next"])


@pytest.mark.slow  # about 11 s: a distributed worker's start and join, then a stop and a resume
def test_own_offsets_topic_falls_back_to_the_global_one_and_is_what_rest_alters(
        broker: BrokerProcess | ExternalBroker, tmp_path: Path) -> None:
    with ExitStack() as stack:
        cluster = Cluster(broker.bootstrap, tmp_path, stack, {"offset.storage.partitions": "3"}, size=1)
        tag = uuid.uuid4().hex[:6]
        counted, own = f"counts-{tag}", f"own-offsets-{tag}"
        key = json.dumps(["own", {"counter": counted}], separators=(",", ":")).encode()
        producer = Producer({"bootstrap.servers": cluster.bootstrap})
        producer.produce(cluster.topics["offset"], key=key, value=b'{"next":1000}', partition=0)
        assert producer.flush(30) == 0
        http = cluster.http[0]
        config = {"connector.class": "counting.CountingSourceConnector", "topic": counted, "tasks.max": "1",
                  "offsets.storage.topic": own}
        assert http.post("/connectors", json={"name": "own", "config": config}).status_code == 201

        assert min(_values(cluster.bootstrap, counted, 1020)) == 1001  # the global topic's offset, as fallback
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        assert len(admin.list_topics(own, timeout=10).topics[own].partitions) == 3
        described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, own)], request_timeout=10)
        assert next(iter(described.values())).result(timeout=15)["cleanup.policy"].value == "compact"
        wait_until(lambda: _next(cluster, own, key.decode()) > 1000, timeout=30, interval=0.2,
                   what="an offset in the connector's own topic")
        wait_until(lambda: _next(cluster, cluster.topics["offset"], key.decode()) > 1000, timeout=30, interval=0.2,
                   what="the offset copied to the global topic")

        assert http.put("/connectors/own/stop").status_code == 204
        wait_until(lambda: (cluster.states(http, "own") or ("",))[0] == "STOPPED", timeout=30, interval=0.2,
                   what="own STOPPED")
        listed = http.get("/connectors/own/offsets").json()["offsets"]
        assert [o["partition"] for o in listed] == [{"counter": counted}] and listed[0]["offset"]["next"] > 1000
        patched = http.patch("/connectors/own/offsets", json={"offsets": [
            {"partition": {"counter": counted}, "offset": {"next": 5000}}]})
        assert patched.status_code == 200, patched.text
        assert _stored(cluster, own, 3)[key.decode()] == {"next": 5000}
        assert http.put("/connectors/own/resume").status_code == 202
        resumed = _values(cluster.bootstrap, counted, 5010)
        assert 5001 in resumed and not [v for v in resumed if 2000 < v <= 5000]

        assert http.put("/connectors/own/stop").status_code == 204
        wait_until(lambda: (cluster.states(http, "own") or ("",))[0] == "STOPPED", timeout=30, interval=0.2,
                   what="own STOPPED again")
        assert http.delete("/connectors/own/offsets").status_code == 200
        assert http.get("/connectors/own/offsets").json() == {"offsets": []}  # no revival from the global topic
        assert _stored(cluster, own, 3)[key.decode()] is None
        assert _stored(cluster, cluster.topics["offset"], 3)[key.decode()] is None
