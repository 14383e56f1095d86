"""A running application's metrics and states on a real broker: KafkaStreams with a
``metrics_listener`` serves /metrics (read with prometheus-client's own parser) counting the
records each task processed, the commits and their latency, the lag of each input partition, and,
after a restart on an empty state directory, the changelog records each store restored; the state
listener hears Kafka's transitions."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig
from tomyum.streams.runtime import KafkaStreams, State
from tomyum.testing import BrokerProcess, wait_until

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 60


def scrape_text(app: KafkaStreams) -> str:
    assert app.metrics_url is not None
    with urllib.request.urlopen(app.metrics_url, timeout=10) as response:
        return response.read().decode()


def scrape(app: KafkaStreams) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = scrape_text(app)
    return {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "application_id"))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def counts(topic: str) -> StreamsBuilder:
    builder = StreamsBuilder()
    builder.stream(topic, key_serde=Serdes.string()).group_by_key().count(Materialized(store_name="counts"))
    return builder


def test_metrics_count_processing_commits_lag_and_restores(broker: BrokerProcess, topic_name: str,
                                                           tmp_path: Path) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(TIMEOUT)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(100):
        producer.produce(topic_name, key=f"k{i % 10}".encode(), value=b"x", partition=i % 2)
    assert producer.flush(TIMEOUT) == 0
    config = StreamsConfig(application_id=f"metrics-{topic_name}", state_dir=str(tmp_path / "first"))
    states: list[tuple[State, State]] = []
    app = KafkaStreams(counts(topic_name).build(), config, bootstrap_servers=broker.bootstrap, commit_interval_ms=200,
                       metrics_listener="127.0.0.1:0")
    app.set_state_listener(lambda new, old: states.append((new, old)))
    app.start()
    try:
        def processed_and_committed() -> bool:
            samples = scrape(app)
            return (total(samples, "tomyum_streams_processed_records_total") == 100
                    and samples.get(("tomyum_streams_state", (("state", "RUNNING"),))) == 1
                    and total(samples, "tomyum_streams_commit_latency_seconds_count") >= 1
                    and len([n for n, _ in samples if n == "tomyum_streams_records_lag"]) == 2)

        wait_until(processed_and_committed, TIMEOUT, interval=0.2, what="100 records processed and committed")
        samples = scrape(app)
        assert samples[("tomyum_streams_processed_records_total", (("task_id", "0_0"),))] == 50
        assert samples[("tomyum_streams_processed_records_total", (("task_id", "0_1"),))] == 50
        assert samples[("tomyum_streams_active_tasks", ())] == 2
        assert samples[("tomyum_streams_state", (("state", "ERROR"),))] == 0
        wait_until(lambda: total(scrape(app), "tomyum_streams_records_lag") == 0, TIMEOUT, interval=0.2,
                   what="no lag")
        lags = {labels: v for (n, labels), v in scrape(app).items() if n == "tomyum_streams_records_lag"}
        assert set(lags) == {(("partition", "0"), ("task_id", "0_0"), ("topic", topic_name)),
                             (("partition", "1"), ("task_id", "0_1"), ("topic", topic_name))}
        commits = samples[("tomyum_streams_commit_latency_seconds_count", ())]
        assert samples[("tomyum_streams_commit_latency_seconds_bucket", (("le", "+Inf"),))] == commits
        assert 0 < samples[("tomyum_streams_commit_latency_max_seconds", ())] < 10
        # more input is counted as it comes; the output lints clean with promtool
        for _ in range(20):
            producer.produce(topic_name, key=b"k0", value=b"x", partition=0)
        assert producer.flush(TIMEOUT) == 0
        wait_until(lambda: total(scrape(app), "tomyum_streams_processed_records_total") == 120, TIMEOUT,
                   interval=0.2, what="the next 20 records")
        promtool = shutil.which("promtool")
        assert promtool, "promtool is missing: `make install-test` installs Debian's prometheus package"
        checked = subprocess.run([promtool, "check", "metrics"], input=scrape_text(app), capture_output=True,
                                 text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr  # parses, and nothing for the lint
    finally:
        assert app.close(TIMEOUT)
    assert states == [(State.REBALANCING, State.CREATED), (State.RUNNING, State.REBALANCING),
                      (State.PENDING_SHUTDOWN, State.RUNNING), (State.NOT_RUNNING, State.PENDING_SHUTDOWN)]

    # a second instance on an empty state directory restores every changelog record, and says so
    again = KafkaStreams(counts(topic_name).build(),
                         StreamsConfig(application_id=f"metrics-{topic_name}", state_dir=str(tmp_path / "second")),
                         bootstrap_servers=broker.bootstrap, metrics_listener="127.0.0.1:0")
    restored: list[int] = []
    again.set_restore_listener(lambda task, store, n: restored.append(n))
    again.start()
    try:
        wait_until(lambda: again.state is State.RUNNING, TIMEOUT, what="the second instance to run")
        samples = scrape(again)
        assert total(samples, "tomyum_streams_restored_records_total") == sum(restored) > 0
        assert {labels: v for (n, labels), v in samples.items() if n == "tomyum_streams_restore_remaining_records"} \
            == {(("store", "counts"), ("task_id", "0_0")): 0, (("store", "counts"), ("task_id", "0_1")): 0}
    finally:
        assert again.close(TIMEOUT)
