"""The broker's own counters on its metrics listener (``GET /metrics``, Prometheus' text format)
and ``tomyum top``, which shows them with groups and lag: against a real broker with traffic
from confluent-kafka, the figures equal what the clients did."""

from __future__ import annotations

import io
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from confluent_kafka import Consumer, Producer
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import against_kafka
from tests.integration.test_cli import _env, free_port, ok, tomyum_cmd
from tests.integration.test_interrupts import interrupt
from tomyum.testing import BrokerProcess

METRICS = re.compile(r"metrics on (http://[\d.]+:\d+/metrics)")


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[tuple[BrokerProcess, str]]:
    """A broker with a metrics listener on a free port, and its /metrics URL."""
    if os.environ.get("TOMYUM_TEST_BOOTSTRAP"):
        pytest.skip("reads a tomyum broker's metrics listener")
    settings = {"group.initial.rebalance.delay.ms": "0", "metrics.listener": "127.0.0.1:0"}
    with BrokerProcess(tmp_path / "data", settings=settings) as broker:
        found = METRICS.search(broker.output())
        assert found, broker.output()
        yield broker, found[1]


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def produce(bootstrap: str, topic: str, count: int, size: int = 100) -> int:
    """``count`` records of ``size`` bytes, acks=all; the record-batch bytes are the broker's to count."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, b"x" * size, key=str(i).encode())
    assert producer.flush(30) == 0
    return count


def consume(bootstrap: str, topic: str, group: str, count: int) -> None:
    """Read ``count`` records in ``group`` and commit them."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 30
    try:
        while got < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got += 1
        assert got == count
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()


def test_metrics_count_what_clients_did(metered: tuple[BrokerProcess, str], topic_name: str) -> None:
    broker, url = metered
    produce(broker.bootstrap, topic_name, 300)
    consume(broker.bootstrap, topic_name, f"g-{uuid.uuid4().hex[:8]}", 300)
    values = samples(url)
    topic = (("topic", topic_name),)
    assert values[("tomyum_topic_records_in_total", topic)] == 300
    assert values[("tomyum_topic_bytes_in_total", topic)] > 300 * 100  # the values and the batch framing
    assert values[("tomyum_topic_bytes_out_total", topic)] >= values[("tomyum_topic_bytes_in_total", topic)]
    assert values[("tomyum_topic_records_out_total", topic)] >= 300
    for request in ("Produce", "Fetch", "JoinGroup", "SyncGroup", "OffsetCommit", "ApiVersions", "Metadata"):
        assert values[("tomyum_requests_total", (("request", request),))] >= 1, request
    assert values[("tomyum_connections_accepted_total", (("listener", "PLAINTEXT"),))] >= 2
    assert ("tomyum_connections", (("listener", "PLAINTEXT"),)) in values
    assert values[("kafka_brokers", ())] == 1


def test_metrics_listener_answers_nothing_else(metered: tuple[BrokerProcess, str]) -> None:
    _, url = metered
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url.replace("/metrics", "/admin"), timeout=10)
    assert e.value.code == 404
    e.value.close()


def test_top_once_shows_throughput_requests_and_lag(metered: tuple[BrokerProcess, str], topic_name: str) -> None:
    """One frame while a producer sends: the topic's rate, Produce among the requests, the
    connection, and a group's lag = produced - committed."""
    broker, url = metered
    group = f"g-{uuid.uuid4().hex[:8]}"
    produce(broker.bootstrap, topic_name, 50)
    consume(broker.bootstrap, topic_name, group, 50)
    produce(broker.bootstrap, topic_name, 70)  # not consumed: the group's lag
    top = pexpect.spawn(sys.executable, ["-m", "tomyum", "top", "--once", "--interval", "2", "-b", broker.bootstrap,
                                         "--metrics", url.removeprefix("http://").removesuffix("/metrics")],
                        env=_env({"COLUMNS": "100"}), encoding="utf-8", timeout=30)
    top.logfile_read = io.StringIO()
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    busy = f"{topic_name}-busy"
    while top.isalive():  # traffic for the interval top measures over (bounded by its --once)
        for _ in range(100):
            producer.produce(busy, b"y" * 100)
        producer.poll(0.05)
    assert producer.flush(30) == 0
    top.expect(pexpect.EOF)
    top.close()
    out = top.logfile_read.getvalue()
    assert top.exitstatus == 0, out
    lines = [line.split() for line in out.splitlines()]
    row = next(r for r in lines if r and r[0] == busy)
    assert float(row[3]) > 0, out  # records/s in (TOPIC, IN/S value, unit, RECORDS/S, OUT/S ...)
    produce_row = next(r for r in lines if r and r[0] == "Produce")
    assert float(produce_row[1]) > 0, out
    assert re.search(r"connections [1-9]\d* \(PLAINTEXT [1-9]", out), out
    assert [group, "empty", "classic", "0", "70"] in lines, out
    assert "Traceback" not in out


@pytest.mark.skipif(against_kafka(), reason="the shared Kafka broker holds the groups of earlier tests, and top "
                    "shows the 12 with the most lag")
def test_top_without_a_metrics_listener_shows_groups_and_says_why_not_more(
        broker: BrokerProcess, topic_name: str) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    produce(broker.bootstrap, topic_name, 5)
    consume(broker.bootstrap, topic_name, group, 5)
    out = ok("top", "--once", "--interval", "0.2", "-b", broker.bootstrap)
    assert "no metrics listener" in out and "metrics.listener" in out
    assert [group, "empty", "classic", "0", "0"] in [line.split() for line in out.splitlines()], out


def test_top_live_refreshes_says_when_the_broker_goes_and_stops_on_ctrl_c(metered: tuple[BrokerProcess, str]) -> None:
    broker, url = metered
    child = pexpect.spawn(sys.executable, ["-m", "tomyum", "top", "-b", broker.bootstrap, "--metrics",
                                           url.removeprefix("http://")],
                          env=_env({"COLUMNS": "160"}), encoding="utf-8", timeout=30, dimensions=(40, 160))
    child.logfile_read = io.StringIO()
    child.expect_exact("REQUEST")  # the first measured frame
    uptimes: set[str] = set()
    while len(uptimes) < 2:  # and refreshed: the uptime moves on
        child.expect(r"up (\dh\d\dm\d\ds)")
        uptimes.add(child.match.group(1))
    broker.stop()  # said in the frame, and looked for again, until Ctrl-C
    child.expect_exact(f"cannot read metrics from {url}: connection refused (looking again every 1s;")
    interrupt(child)


def test_top_with_an_unreachable_metrics_listener_says_so_in_one_line(broker: BrokerProcess) -> None:
    proc = tomyum_cmd("top", "--once", "-b", broker.bootstrap, "--metrics", "127.0.0.1:1")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: cannot read metrics from http://127.0.0.1:1/metrics: connection refused", \
        proc.stderr


def test_top_help_fits_80_columns() -> None:
    proc = tomyum_cmd("top", "--help", env={"COLUMNS": "80"})
    assert proc.returncode == 0
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80, proc.stdout


def test_top_finds_the_metrics_listener_the_broker_names(tmp_path: Path) -> None:
    """As with ``make serve``: metrics.listener on a set port, found through DescribeConfigs."""
    if os.environ.get("TOMYUM_TEST_BOOTSTRAP"):
        pytest.skip("reads a tomyum broker's metrics listener")
    settings = {"metrics.listener": f"127.0.0.1:{free_port()}"}
    with BrokerProcess(tmp_path / "data", settings=settings) as broker:
        out = ok("top", "--once", "--interval", "0.2", "-b", broker.bootstrap)
    assert "no metrics listener" not in out
    assert "REQUEST" in out and "DescribeConfigs" in out, out


def test_a_metrics_listener_on_a_taken_port_is_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = tomyum_cmd("serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
                          "--set", f"metrics.listener=127.0.0.1:{port}")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == (f"error: metrics.listener: cannot listen on 127.0.0.1:{port}: "
                                            "the address is in use (port 0 picks a free one)"), proc.stderr
    assert "Traceback" not in proc.stderr
