"""/metrics as Prometheus sees it: ``promtool check metrics`` on the broker's output, and a real
Prometheus server (Debian's ``prometheus`` package, started here on a free port with a
temporary config, scrape interval 1 s, stopped at the end) scraping a broker with basic
authentication, whose query API answers kafka_exporter's ``kafka_consumergroup_lag`` =
produced − committed for a classic group and a KIP-848 group (confluent-kafka, both
protocols), offsets that follow produce and DeleteRecords, and histograms with buckets, sum
and count. The metrics listener's mTLS, and the Grafana dashboard's queries (every metric it
names is exported)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_cli import free_port
from tests.integration.test_cli_errors import one_error_line
from tests.integration.test_client_quotas import alter_quotas
from tests.integration.test_quota_enforcement import produce_for
from tests.integration.test_security import PLAIN_JAAS, listeners, ports
from tomyum.security.certs import LocalCA
from tomyum.testing import BrokerProcess, wait_until

DOCS = Path(__file__).resolve().parents[2] / "docs"
METRICS = re.compile(r"metrics on (https?://[\d.]+:\d+/metrics)")
USER, PASSWORD = "prometheus", "scrape-me"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
TIMEOUT = 30.0
#: kafka_exporter's gauges whose names end in _sum, exported untyped so promtool's lint passes
KAFKA_EXPORTER_SUMS = ("kafka_consumergroup_current_offset_sum", "kafka_consumergroup_lag_sum")

pytestmark = pytest.mark.skipif(bool(os.environ.get("TOMYUM_TEST_BOOTSTRAP")),
                                reason="reads a tomyum broker's metrics listener")


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: `make install-test` installs Debian's prometheus package"
    return found


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[tuple[BrokerProcess, str]]:
    """A broker whose metrics listener asks for basic auth, and its /metrics URL."""
    settings = {"group.initial.rebalance.delay.ms": "0", "metrics.listener": "127.0.0.1:0",
                "metrics.basic.auth.users": f"{USER}:{PASSWORD}", "group.consumer.heartbeat.interval.ms": "500"}
    with BrokerProcess(tmp_path / "data", settings=settings) as broker:
        found = METRICS.search(broker.output())
        assert found, broker.output()
        yield broker, found[1]


def scrape(url: str, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None) -> str:
    request = urllib.request.Request(url, headers=AUTH if headers is None else headers)
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        return str(response.read().decode())


@contextmanager
def prometheus(tmp_path: Path, target: str) -> Iterator[str]:
    """A Prometheus server scraping ``target`` (host:port) every second with basic auth; its URL."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: tomyum
    basic_auth:
      username: {USER}
      password: {PASSWORD}
    static_configs:
      - targets: ["{target}"]
""")
    log = (tmp_path / "prometheus.log").open("wb")
    server = subprocess.Popen([tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                               f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert server.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as r:
                    return bool(r.status == 200)
            except (urllib.error.URLError, ConnectionError):
                return False
        wait_until(ready, timeout=TIMEOUT, interval=0.1, what="prometheus ready")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()


def query(url: str, promql: str) -> dict[tuple[tuple[str, str], ...], float]:
    """An instant query: {labels (without job and instance): value}."""
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}", timeout=10) as r:
        answer = json.load(r)
    assert answer["status"] == "success", answer
    return {tuple(sorted((k, v) for k, v in item["metric"].items() if k not in ("job", "instance", "__name__"))):
            float(item["value"][1]) for item in answer["data"]["result"]}


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, b"v%d" % i)
    assert producer.flush(TIMEOUT) == 0


def consume_and_commit(bootstrap: str, topic: str, group: str, count: int, commit_at: int,
                       protocol: str) -> Consumer:
    """A member of ``group`` (``protocol``: classic or consumer, KIP-848) that reads ``count``
    records and commits ``commit_at``; left open, so that the group has a member."""
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                            "enable.auto.commit": False, "group.protocol": protocol}
    consumer = Consumer(conf)
    consumer.subscribe([topic])
    got = 0
    deadline = time.monotonic() + TIMEOUT
    while got < count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            got += 1
    assert got == count
    consumer.commit(offsets=[TopicPartition(topic, 0, commit_at)], asynchronous=False)
    return consumer


def family_names(text: str) -> set[str]:
    """Every sample name the text's families may carry (a histogram's _bucket, _sum, _count;
    a counter's _total), present or not."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(family.type, ())
        names.update(family.name + s for s in suffixes)
        names.update(s.name for s in family.samples)
    return names


def test_promtool_checks_the_output_and_the_dashboard_queries_only_exported_metrics(
        metered: tuple[BrokerProcess, str], topic_name: str) -> None:
    broker, url = metered
    produce(broker.bootstrap, topic_name, 20)
    consume_and_commit(broker.bootstrap, topic_name, f"g-{uuid.uuid4().hex[:8]}", 20, 20, "classic").close()
    text = scrape(url)
    checked = subprocess.run([tool("promtool"), "check", "metrics"], input=text, capture_output=True, text=True,
                             timeout=60)
    # the text parses and promtool's lint finds nothing (kafka_exporter's own output fails it on
    # the two names ending in _sum; tomyum keeps the names and declares them untyped)
    findings = sorted(line for line in (checked.stdout + checked.stderr).splitlines() if line.strip())
    assert checked.returncode == 0, (checked.returncode, findings)
    assert findings == [], findings
    for name in KAFKA_EXPORTER_SUMS:
        assert f"# TYPE {name} untyped\n" in text
        assert re.search(rf"^{name}{{consumergroup=\"[^\"]+\",topic=\"{topic_name}\"}} \d", text, re.M), name
    exported = family_names(text)
    dashboard = json.loads((DOCS / "grafana" / "tomyum.json").read_text())
    queried = {name for expr in _exprs(dashboard) for name in re.findall(r"\b((?:kafka|tomyum)_[a-z_]+)\b", expr)}
    assert len(queried) >= 10
    assert queried <= exported, queried - exported
    documented = set(re.findall(r"`((?:kafka|tomyum)_[a-z_]+)", (DOCS / "monitoring.md").read_text()))
    assert {f.name for f in text_string_to_metric_families(text)} <= {n.removesuffix("_total") for n in documented}


def _exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _exprs(item)


def test_the_metrics_listener_asks_for_its_password(metered: tuple[BrokerProcess, str]) -> None:
    _, url = metered
    for headers in ({}, {"Authorization": "Basic " + base64.b64encode(b"prometheus:wrong").decode()}):
        with pytest.raises(urllib.error.HTTPError) as e:
            scrape(url, headers)
        assert e.value.code == 401 and e.value.headers["WWW-Authenticate"].startswith("Basic")
        e.value.close()
    assert "kafka_brokers 1.0" in scrape(url)


def test_prometheus_reads_lag_offsets_and_histograms_for_classic_and_kip848_groups(
        metered: tuple[BrokerProcess, str], tmp_path: Path) -> None:
    broker, url = metered
    run = uuid.uuid4().hex[:8]
    classic_topic, consumer_topic = f"classic-{run}", f"kip848-{run}"
    classic_group, consumer_group = f"gc-{run}", f"g848-{run}"
    target = url.removeprefix("http://").removesuffix("/metrics")
    with prometheus(tmp_path, target) as prom:
        produce(broker.bootstrap, classic_topic, 30)
        produce(broker.bootstrap, consumer_topic, 30)
        members = [consume_and_commit(broker.bootstrap, classic_topic, classic_group, 30, 12, "classic"),
                   consume_and_commit(broker.bootstrap, consumer_topic, consumer_group, 30, 20, "consumer")]
        try:
            def lags() -> bool:
                lag = query(prom, "kafka_consumergroup_lag")
                count = query(prom, "kafka_consumergroup_members")
                return (lag.get((("consumergroup", classic_group), ("partition", "0"), ("topic", classic_topic)))
                        == 30 - 12
                        and lag.get((("consumergroup", consumer_group), ("partition", "0"), ("topic", consumer_topic)))
                        == 30 - 20
                        and count.get((("consumergroup", classic_group),)) == 1
                        and count.get((("consumergroup", consumer_group),)) == 1)
            wait_until(lags, timeout=TIMEOUT, interval=0.5, what="the lag of both groups in prometheus")
            groups = query(prom, "tomyum_groups")
            assert groups[(("state", "Stable"), ("type", "classic"))] >= 1
            assert groups[(("state", "Stable"), ("type", "consumer"))] >= 1
        finally:
            for member in members:
                member.close()
        # offsets follow produce, and retention: DeleteRecords moves the oldest offset
        produce(broker.bootstrap, classic_topic, 5)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        deleted = admin.delete_records([TopicPartition(classic_topic, 0, 10)], request_timeout=TIMEOUT)
        for future in deleted.values():
            future.result(TIMEOUT)
        partition = (("partition", "0"), ("topic", classic_topic))

        def moved() -> bool:
            return (query(prom, "kafka_topic_partition_current_offset").get(partition) == 35
                    and query(prom, "kafka_topic_partition_oldest_offset").get(partition) == 10
                    and query(prom, f'kafka_consumergroup_lag{{consumergroup="{classic_group}"}}').get(
                        (("consumergroup", classic_group), *partition)) == 35 - 12
                    and query(prom, f'kafka_consumergroup_lag_sum{{consumergroup="{classic_group}"}}').get(
                        (("consumergroup", classic_group), ("topic", classic_topic))) == 35 - 12)
        wait_until(moved, timeout=TIMEOUT, interval=0.5, what="offsets after produce and DeleteRecords")
        # histograms: buckets (cumulative, +Inf = count), sum and count
        for name, labels in (("tomyum_request_latency_seconds", '{request="Produce"}'),
                             ("tomyum_fsync_seconds", ""), ("tomyum_group_commit_records", "")):
            buckets = query(prom, f"{name}_bucket{labels}")
            count = query(prom, f"{name}_count{labels}")
            total = query(prom, f"{name}_sum{labels}")
            assert len(buckets) > 5, name
            (counted,) = count.values()
            assert counted >= 1 and list(total.values())[0] > 0, name
            assert max(buckets.values()) == counted, name
            inf = next(v for k, v in buckets.items() if ("le", "+Inf") in k)
            assert inf == counted, name
        rate = query(prom, 'sum(rate(tomyum_requests_total{request="Produce"}[5s]))')
        assert rate, "Prometheus computes rates from the counters"


def test_the_metrics_listener_over_mtls(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path / "ca")
    server = ca.broker()
    client = ca.issue("prometheus", "prometheus")
    settings = {"metrics.listener": "https://127.0.0.1:0",
                "listener.name.metrics.ssl.keystore.location": str(server.keystore),
                "listener.name.metrics.ssl.truststore.location": str(ca.cert_path),
                "listener.name.metrics.ssl.client.auth": "required"}
    with BrokerProcess(tmp_path / "data", settings=settings) as broker:
        found = METRICS.search(broker.output())
        assert found and found[1].startswith("https://"), broker.output()
        url = found[1]
        trusting = ssl.create_default_context(cafile=str(ca.cert_path))
        with_cert = ssl.create_default_context(cafile=str(ca.cert_path))
        with_cert.load_cert_chain(str(client.cert), str(client.key))
        assert "kafka_brokers 1.0" in scrape(url, {}, with_cert)
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            scrape(url, {}, trusting)  # no client certificate: the handshake fails
        stranger = LocalCA(tmp_path / "other").issue("mallory", "mallory")
        foreign = ssl.create_default_context(cafile=str(ca.cert_path))
        foreign.load_cert_chain(str(stranger.cert), str(stranger.key))
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            scrape(url, {}, foreign)
        assert "kafka_brokers 1.0" in scrape(url, {}, with_cert)  # still served after the refusals


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.slow
def test_authentication_failures_and_quota_throttling_are_counted(tmp_path: Path) -> None:
    """A SASL login with a wrong password (confluent-kafka) counts per mechanism and listener; a
    producer over its producer_byte_rate counts its throttled responses and their time."""
    settings = {**listeners(PLAIN="PLAINTEXT", SASL="SASL_PLAINTEXT"), "sasl.enabled.mechanisms": "PLAIN",
                "listener.name.sasl.plain.sasl.jaas.config": PLAIN_JAAS, "metrics.listener": "127.0.0.1:0"}
    with BrokerProcess(tmp_path / "data", settings=settings) as broker:
        found = METRICS.search(broker.output())
        assert found, broker.output()
        url = found[1]
        sasl = ports(broker)["SASL"]
        intruder = Producer({"bootstrap.servers": f"127.0.0.1:{sasl}", "security.protocol": "SASL_PLAINTEXT",
                             "sasl.mechanism": "PLAIN", "sasl.username": "alice", "sasl.password": "wrong",
                             "error_cb": lambda _: None, "reconnect.backoff.ms": 1000})
        failed = ("tomyum_authentication_failures_total", (("listener", "SASL"), ("mechanism", "PLAIN")))
        try:
            wait_until(lambda: (intruder.poll(0.1), values(scrape(url, {})).get(failed, 0) >= 1)[1], timeout=TIMEOUT,
                       what="a failed SASL login counted")
        finally:
            intruder.purge()
            intruder.flush(0)
        assert [r.error_code for r in alter_quotas(broker, ({"client-id": "slow"}, {"producer_byte_rate": 50_000.0}))] \
            == [0]
        produce_for(broker, "slow", "quotas", 2)
        counted = values(scrape(url, {}))
    quota = (("quota", "producer_byte_rate"),)
    assert counted[("tomyum_quota_throttled_responses_total", quota)] >= 1
    assert counted[("tomyum_quota_throttle_time_seconds_total", quota)] > 0
    assert counted[("tomyum_quota_throttled_responses_total", (("quota", "consumer_byte_rate"),))] == 0


def test_metrics_listener_settings_that_cannot_work_are_one_error_line(tmp_path: Path) -> None:
    serve = ["serve", "--listen", "127.0.0.1:0"]
    cases = {
        ("metrics.listener=https://127.0.0.1:0",):
            "error: listener.name.metrics.ssl.keystore.location: metrics.listener is https: an SSL listener needs "
            "a key store: ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key",
        ("metrics.listener=127.0.0.1:0", "metrics.basic.auth.users=prometheus"):
            "error: metrics.basic.auth.users: expected USER:PASSWORD pairs, comma-separated",
    }
    for i, (settings, expected) in enumerate(cases.items()):
        args = [*serve, "--data-dir", str(tmp_path / f"d{i}")] + [a for s in settings for a in ("--set", s)]
        assert one_error_line(args) == expected


def test_transaction_states_rebalances_and_disk_follow_what_clients_did(
        metered: tuple[BrokerProcess, str], topic_name: str) -> None:
    broker, url = metered
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": f"tx-{topic_name}"})
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    producer.produce(topic_name, b"in a transaction")
    producer.commit_transaction(TIMEOUT)
    consume_and_commit(broker.bootstrap, topic_name, f"g-{topic_name}", 1, 1, "classic").close()

    def settled() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        now = values(scrape(url))  # the coordinator completes the commit after answering EndTxn
        return now if now[("tomyum_transactions", (("state", "CompleteCommit"),))] == 1 else None
    now = wait_until(settled, timeout=TIMEOUT, what="the transaction complete")
    assert now[("tomyum_transactions", (("state", "Ongoing"),))] == 0
    assert now[("tomyum_group_rebalances_total", (("type", "classic"),))] >= 1
    assert now[("tomyum_request_latency_seconds_count", (("request", "EndTxn"),))] == 1
    partition = (("partition", "0"), ("topic", topic_name))
    assert now[("tomyum_partition_segments", partition)] == 1
    assert now[("tomyum_partition_size_bytes", partition)] > 0
    assert now[("kafka_topic_partition_current_offset", partition)] == 2  # the record and its commit marker
    assert now[("kafka_consumergroup_lag", ((("consumergroup", f"g-{topic_name}"),) + partition))] == 1
