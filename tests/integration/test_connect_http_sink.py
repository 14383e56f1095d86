"""tomyum connect's HTTP sink (``io.confluent.connect.http.HttpSinkConnector``) against a real
HTTP server the test starts (the standard library's, in a thread, on a free loopback port):
batching, BASIC auth and configured headers, retries with backoff on the statuses configured,
and failures as Kafka's sinks have them — ``errors.tolerance=all`` sends the record to the DLQ
with the ``__connect.errors.*`` headers and goes on, ``none`` fails the task."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess

pytestmark = pytest.mark.timeout(90)
HTTP_SINK = "io.confluent.connect.http.HttpSinkConnector"


@dataclass
class Request:
    at: float
    method: str
    headers: dict[str, str]
    body: bytes
    status: int


class Endpoint:
    """An HTTP server that answers every request with ``respond(body)`` and keeps what it got."""

    def __init__(self, respond: Callable[[bytes, int], int]) -> None:
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with endpoint.lock:
                    status = respond(body, len(endpoint.requests))
                    endpoint.requests.append(Request(time.monotonic(), self.command, dict(self.headers.items()),
                                                     body, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_PUT = do_PATCH = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ingest"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Endpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def got(self) -> list[Request]:
        with self.lock:
            return list(self.requests)


@pytest.fixture(scope="module")
def broker(module_broker: BrokerProcess | ExternalBroker) -> BrokerProcess | ExternalBroker:
    """One broker and one worker for the module (each test its own topic and connector)."""
    return module_broker


@pytest.fixture(scope="module")
def worker(broker: BrokerProcess | ExternalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with ConnectProcess(tmp_path_factory.mktemp("http-sink-worker"), broker.bootstrap) as w, \
            httpx.Client(base_url=w.url, timeout=30) as http:
        yield http


@pytest.fixture
def name() -> str:
    return f"http-{uuid.uuid4().hex[:8]}"


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for key, value, headers in records:
        p.produce(topic, key=key, value=value, headers=headers or None)
    assert p.flush(30) == 0


def _create(http: httpx.Client, name: str, config: dict[str, str]) -> None:
    r = http.post("/connectors", json={"name": name, "config": config})
    assert r.status_code == 201, r.text


def _state(http: httpx.Client, name: str) -> dict[str, Any]:
    body: dict[str, Any] = http.get(f"/connectors/{name}/status").json()
    return body


STRINGS = {"key.converter": "org.apache.kafka.connect.storage.StringConverter",
           "value.converter": "org.apache.kafka.connect.storage.StringConverter"}


def first_record(bootstrap: str, topic: str) -> Any:
    """The first record of ``topic``'s partition 0, waited for (30 s at most)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    try:
        def one() -> Any:
            for m in consumer.consume(1, 0.5):
                if m.error() is None:
                    return m
            return None
        return wait_until(one, timeout=30, what=f"a record in {topic}")
    finally:
        consumer.close()


def test_batches_with_auth_and_headers(worker: httpx.Client, broker: BrokerProcess | ExternalBroker,
                                       topic_name: str, name: str) -> None:
    _produce(broker.bootstrap, topic_name, [(None, json.dumps({"n": i}).encode(), []) for i in range(5)])
    with Endpoint(lambda body, i: 200) as endpoint:
        _create(worker, name, {
            "connector.class": HTTP_SINK, "topics": topic_name, "http.api.url": endpoint.url, "request.method": "PUT",
            "request.body.format": "json", "batch.max.size": "2", "batch.json.as.array": "true",
            "auth.type": "BASIC", "connection.user": "ann", "connection.password": "s3cr:et",
            "headers": "X-Tenant:acme|X-Trace: on", "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false"})
        wait_until(lambda: sum(len(json.loads(r.body)) for r in endpoint.got()) >= 5, timeout=30,
                   what="5 records at the endpoint")
        got = endpoint.got()
    assert [item for r in got for item in json.loads(r.body)] == [{"n": i} for i in range(5)]
    assert all(1 <= len(json.loads(r.body)) <= 2 for r in got) and len(got) >= 3
    assert got[0].body.startswith(b'[{"n":0}')
    for r in got:
        assert r.method == "PUT" and r.headers["Content-Type"] == "application/json"
        assert r.headers["Authorization"] == "Basic " + base64.b64encode(b"ann:s3cr:et").decode()
        assert r.headers["X-Tenant"] == "acme" and r.headers["X-Trace"] == "on"
    assert _state(worker, name)["tasks"][0]["state"] == "RUNNING"


def test_retries_with_backoff(worker: httpx.Client, broker: BrokerProcess | ExternalBroker, topic_name: str,
                              name: str) -> None:
    _produce(broker.bootstrap, topic_name, [(None, b"a", []), (None, b"b", [])])
    with Endpoint(lambda body, i: 503 if i < 2 else 200) as endpoint:
        _create(worker, name, dict(STRINGS, **{
            "connector.class": HTTP_SINK, "topics": topic_name, "http.api.url": endpoint.url,
            "batch.max.size": "10", "batch.prefix": "<", "batch.suffix": ">", "batch.separator": ";",
            "retry.backoff.ms": "300", "retry.backoff.policy": "CONSTANT_VALUE", "retry.on.status.codes": "500-599"}))
        wait_until(lambda: b"".join(r.body for r in endpoint.got() if r.status == 200).count(b"b") == 1,
                   timeout=30, what="the records delivered after two 503s")
        got = endpoint.got()
    assert [r.status for r in got[:3]] == [503, 503, 200]
    assert got[0].body == got[1].body == got[2].body and got[0].body.startswith(b"<a")
    assert got[1].at - got[0].at >= 0.29 and got[2].at - got[1].at >= 0.29
    assert got[0].headers["Content-Type"] == "text/plain" and got[0].method == "POST"
    assert b"".join(r.body for r in got if r.status == 200) in (b"<a;b>", b"<a><b>")


def test_errors_tolerance_all_sends_to_the_dlq(worker: httpx.Client, broker: BrokerProcess | ExternalBroker,
                                               topic_name: str, name: str) -> None:
    dlq = f"dlq-{uuid.uuid4().hex[:8]}"
    _produce(broker.bootstrap, topic_name, [(b"k0", b"good0", []), (b"k1", b"bad", [("h", b"1")]), (b"k2", b"good2", [])])
    with Endpoint(lambda body, i: 400 if b"bad" in body else 200) as endpoint:
        _create(worker, name, dict(STRINGS, **{
            "connector.class": HTTP_SINK, "topics": topic_name, "http.api.url": endpoint.url,
            "retry.on.status.codes": "500-", "errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq,
            "errors.deadletterqueue.topic.replication.factor": "1",
            "errors.deadletterqueue.context.headers.enable": "true"}))
        wait_until(lambda: [r.body for r in endpoint.got() if r.status == 200] == [b"good0", b"good2"],
                   timeout=30, what="the good records at the endpoint")
        assert [r.body for r in endpoint.got()] == [b"good0", b"bad", b"good2"]  # a 400 is not retried here
    dead = first_record(broker.bootstrap, dlq)
    assert (dead.key(), dead.value()) == (b"k1", b"bad")
    headers = dict(dead.headers())
    assert headers["h"] == b"1"
    assert headers["__connect.errors.topic"] == topic_name.encode() and headers["__connect.errors.offset"] == b"1"
    assert headers["__connect.errors.stage"] == b"TASK_PUT"
    assert headers["__connect.errors.exception.class.name"] == b"org.apache.kafka.connect.errors.ConnectException"
    assert headers["__connect.errors.exception.message"].startswith(b"HTTP 400 from POST " + endpoint.url.encode())
    assert _state(worker, name)["tasks"][0]["state"] == "RUNNING"


def test_errors_tolerance_none_fails_the_task(worker: httpx.Client, broker: BrokerProcess | ExternalBroker,
                                              topic_name: str, name: str) -> None:
    missing = worker.post("/connectors", json={"name": "x", "config": {"connector.class": HTTP_SINK, "topics": "t"}})
    assert missing.status_code == 400 and "http.api.url" in missing.json()["message"]
    _produce(broker.bootstrap, topic_name, [(None, b"refused", [])])
    with Endpoint(lambda body, i: 400) as endpoint:
        _create(worker, name, dict(STRINGS, **{"connector.class": HTTP_SINK, "topics": topic_name,
                                                 "http.api.url": endpoint.url, "retry.on.status.codes": "500-"}))
        task = wait_until(lambda: next((t for t in _state(worker, name)["tasks"] if t["state"] == "FAILED"), None),
                          timeout=30, what="the task FAILED")
        assert len(endpoint.got()) == 1
    assert "HTTP 400 from POST" in task["trace"]


def test_the_guides_http_sink(worker: httpx.Client, broker: BrokerProcess | ExternalBroker, topic_name: str) -> None:
    """docs/connect.md's http-sink.properties, as written (the endpoint's URL and the topic changed)."""
    import re
    guide = (Path(__file__).resolve().parents[2] / "docs" / "connect.md").read_text(encoding="utf-8")
    [block] = re.findall(r"^```properties http-sink\.properties\n(.*?)^```", guide, re.DOTALL | re.MULTILINE)
    config = dict(line.split("=", 1) for line in block.splitlines() if line.strip())
    _produce(broker.bootstrap, topic_name, [(None, json.dumps({"order": i}).encode(), []) for i in range(3)])
    with Endpoint(lambda body, i: 200) as endpoint:
        assert config.pop("name") == "orders-to-http"
        _create(worker, "orders-to-http", dict(config, topics=topic_name, **{"http.api.url": endpoint.url}))
        wait_until(lambda: sum(len(json.loads(r.body)) for r in endpoint.got()) >= 3, timeout=30,
                   what="3 records at the endpoint")
        got = endpoint.got()
    assert [item for r in got for item in json.loads(r.body)] == [{"order": i} for i in range(3)]
    assert got[0].headers["Authorization"] == "Basic " + base64.b64encode(b"ingest:s3cret").decode()
    assert got[0].headers["X-Tenant"] == "acme" and got[0].headers["X-Source"] == "tomyum"


def test_unreachable_endpoint_is_retried_then_fails(worker: httpx.Client, broker: BrokerProcess | ExternalBroker,
                                                    topic_name: str, name: str) -> None:
    """A transport error (nothing listens) is retried like a retriable status; after
    ``max.retries`` the record fails: to the DLQ under ``errors.tolerance=all``. A null value is
    skipped (``behavior.on.null.values=ignore``, the default)."""
    with Endpoint(lambda body, i: 200) as gone:
        url = gone.url  # a port nothing listens on once the server is closed
    dlq = f"dlq-{uuid.uuid4().hex[:8]}"
    _produce(broker.bootstrap, topic_name, [(b"t", None, []), (b"k", b"lost", [])])  # a tombstone, then a record
    started = time.monotonic()
    _create(worker, name, dict(STRINGS, **{
        "connector.class": HTTP_SINK, "topics": topic_name, "http.api.url": url, "max.retries": "2",
        "retry.backoff.ms": "200", "retry.backoff.policy": "CONSTANT_VALUE", "errors.tolerance": "all",
        "errors.deadletterqueue.topic.name": dlq, "errors.deadletterqueue.topic.replication.factor": "1",
        "errors.deadletterqueue.context.headers.enable": "true"}))
    dead = first_record(broker.bootstrap, dlq)
    assert time.monotonic() - started >= 0.4  # two waits of 200 ms before it gave up
    assert dead.value() == b"lost"  # the first: the tombstone was skipped, not failed
    assert dict(dead.headers())["__connect.errors.exception.message"].startswith(b"POST " + url.encode() + b" failed")
    assert _state(worker, name)["tasks"][0]["state"] == "RUNNING"


def test_validate_and_put_config_refuse_what_the_start_would(worker: httpx.Client, name: str) -> None:
    bad = {"connector.class": HTTP_SINK, "topics": "t", "http.api.url": "http://127.0.0.1:9/",
           "auth.type": "BASIC", "connection.user": "ann"}
    body = worker.put(f"/connector-plugins/{HTTP_SINK}/config/validate", json={**bad, "name": name}).json()
    errors = {c["value"]["name"]: c["value"]["errors"] for c in body["configs"] if c["value"]["errors"]}
    assert body["error_count"] == 1
    assert errors == {"connection.user": ["BASIC auth needs connection.user and connection.password"]}
    refused = worker.put(f"/connectors/{name}/config", json=bad)
    assert refused.status_code == 400
    assert "BASIC auth needs connection.user and connection.password" in refused.json()["message"]
    assert worker.get(f"/connectors/{name}").status_code == 404  # nothing half-created
