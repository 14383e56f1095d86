"""The metrics listener's families (broker/exporter.py, broker/metrics.py) read from a broker
in this process after requests its handlers served: kafka_exporter's offsets and lag, tomyum's
histograms and state gauges; and the listener's HTTP basic authentication."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tomyum.broker.exporter import StateCollector
from tomyum.broker.fetch_sessions import FetchSessionCache
from tomyum.broker.exposition import text_exposition
from tomyum.broker.metrics import BrokerCollector, MetricsListener, new_registry, parse_basic_auth_users
from tomyum.broker.stats import BrokerStats, Histogram
from tomyum.errors import ConfigError
from tomyum.storage.local import LocalLogStore
from tomyum.testing.handlers import BlockingHarness
from tests.unit.test_handlers_fetch import produce
from tests.unit.test_handlers_offset_commits import commit

Samples = dict[tuple[str, tuple[str, ...]], float]
#: the parser hands labels back sorted by name; keys here keep kafka_exporter's order
LABEL_ORDER = ["id", "address", "consumergroup", "topic", "partition", "type", "state", "mechanism", "listener",
               "request", "quota", "le"]

NO_SESSIONS = FetchSessionCache(0, lambda: 0)


def keyed(text: str) -> Samples:
    return {(s.name, tuple(v for _, v in sorted(s.labels.items(), key=lambda kv: LABEL_ORDER.index(kv[0])))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(kafka: BlockingHarness) -> Samples:
    broker = kafka.broker
    counters = BrokerCollector(broker.stats, lambda: (), {0: "Produce"}, 0.0, broker.fetch_sessions)
    return keyed(generate_latest(new_registry(StateCollector(broker, lambda: "127.0.0.1:9092"), counters)).decode())


def test_kafka_exporter_offsets_and_lag_are_the_brokers_own(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 2)
    kafka.call(0, 9, produce("t", b"a", b"b", b"c"))
    commit(kafka, 8, {("t", 0): 1})
    samples = scrape(kafka)
    assert samples[("kafka_brokers", ())] == 1
    assert samples[("kafka_broker_info", (str(kafka.broker.node_id), "127.0.0.1:9092"))] == 1
    assert samples[("kafka_topic_partitions", ("t",))] == 2
    assert samples[("kafka_topic_partition_current_offset", ("t", "0"))] == 3
    assert samples[("kafka_topic_partition_oldest_offset", ("t", "0"))] == 0
    assert samples[("kafka_topic_partition_current_offset", ("t", "1"))] == 0
    assert samples[("kafka_topic_partition_leader", ("t", "0"))] == kafka.broker.node_id
    assert samples[("kafka_topic_partition_in_sync_replica", ("t", "0"))] == 1
    assert samples[("kafka_topic_partition_under_replicated_partition", ("t", "0"))] == 0
    assert samples[("kafka_consumergroup_current_offset", ("g", "t", "0"))] == 1
    assert samples[("kafka_consumergroup_lag", ("g", "t", "0"))] == 2
    assert samples[("kafka_consumergroup_lag", ("g", "t", "1"))] == -1  # no commit there, as kafka_exporter
    assert samples[("kafka_consumergroup_lag_sum", ("g", "t"))] == 2
    assert samples[("kafka_consumergroup_current_offset_sum", ("g", "t"))] == 1
    assert samples[("kafka_consumergroup_members", ("g",))] == 0
    assert samples[("tomyum_groups", ("classic", "Empty"))] == 0  # known by its offsets only: no group yet
    assert samples[("tomyum_transactions", ("Ongoing",))] == 0


def test_delete_records_moves_the_oldest_offset_and_the_lag_follows_produce(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    kafka.call(0, 9, produce("t", b"a", b"b", b"c", b"d"))
    commit(kafka, 8, {("t", 0): 4})
    kafka.call(21, 2, {"topics": [{"name": "t", "partitions": [{"partition_index": 0, "offset": 3}]}],
                       "timeout_ms": 5000})
    kafka.call(0, 9, produce("t", b"e"))
    samples = scrape(kafka)
    assert samples[("kafka_topic_partition_oldest_offset", ("t", "0"))] == 3
    assert samples[("kafka_topic_partition_current_offset", ("t", "0"))] == 5
    assert samples[("kafka_consumergroup_lag", ("g", "t", "0"))] == 1


def test_request_latency_and_group_commit_histograms_have_buckets_sum_and_count(tmp_path: Path) -> None:
    with BlockingHarness(tmp_path / "data", engine=LocalLogStore) as kafka:
        kafka.create_topic("t")
        kafka.call(0, 9, produce("t", b"a", b"b"))
        samples = scrape(kafka)
    # the handler harness calls handlers directly: request latency is the connection's (see the
    # integration test); the log engine's group commit is here
    assert samples[("tomyum_fsync_seconds_count", ())] >= 1
    assert samples[("tomyum_fsync_seconds_bucket", ("+Inf",))] == samples[("tomyum_fsync_seconds_count", ())]
    assert samples[("tomyum_group_commit_records_sum", ())] >= 2
    assert samples[("tomyum_partition_segments", ("t", "0"))] == 1
    assert samples[("tomyum_partition_size_bytes", ("t", "0"))] > 0


def test_a_histogram_is_cumulative_with_inf_equal_to_its_count() -> None:
    h = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 7.0):
        h.observe(value)
    assert h.cumulative() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert h.sum == pytest.approx(7.65) and h.count == 4


def test_authentication_failures_and_latency_are_exported_per_label() -> None:
    stats = BrokerStats()
    stats.authentication_failures[("SCRAM-SHA-256", "SASL_PLAINTEXT")] += 2
    stats.answered(0, 0.003)
    samples = keyed(generate_latest(new_registry(BrokerCollector(stats, lambda: (), {0: "Produce"}, 0.0, NO_SESSIONS))).decode())
    assert samples[("tomyum_authentication_failures_total", ("SCRAM-SHA-256", "SASL_PLAINTEXT"))] == 2
    assert samples[("tomyum_request_latency_seconds_bucket", ("Produce", "0.0025"))] == 0
    assert samples[("tomyum_request_latency_seconds_bucket", ("Produce", "0.005"))] == 1
    assert samples[("tomyum_request_latency_seconds_count", ("Produce",))] == 1


def _get(listener: MetricsListener, authorization: bytes | None) -> str:
    head = b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
    if authorization is not None:
        head += b"Authorization: " + authorization + b"\r\n"
    return listener._answer(head + b"\r\n")[0]


def test_basic_auth_answers_401_without_the_right_password() -> None:
    listener = MetricsListener(new_registry(), users={"prom": "s3cret"})
    good = b"Basic " + base64.b64encode(b"prom:s3cret")
    assert _get(listener, good) == "200 OK"
    assert _get(listener, None).startswith("401 ")
    assert _get(listener, b"Basic " + base64.b64encode(b"prom:wrong")).startswith("401 ")
    assert _get(listener, b"Basic !!!not-base64").startswith("401 ")
    assert _get(listener, b"Bearer abc").startswith("401 ")


@pytest.mark.parametrize("value", ["prom", "prom:", ":pw"])
def test_basic_auth_users_that_are_not_user_password_pairs_are_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="metrics.basic.auth.users"):
        parse_basic_auth_users(value)


def test_the_fast_exposition_writes_what_prometheus_client_writes(kafka: BlockingHarness) -> None:
    """broker/exposition.py against prometheus-client's generate_latest, on every family the
    broker makes, with label values that need escaping."""
    kafka.create_topic("t", 3)
    kafka.call(0, 9, produce("t", b"a"))
    commit(kafka, 8, {("t", 1): 0}, group='odd"group\\name\n')
    stats = kafka.broker.stats
    stats.answered(0, 0.01)
    stats.authentication_failures[("PLAIN", "SASL\nPLAINTEXT")] += 1
    registry = new_registry(StateCollector(kafka.broker, lambda: "127.0.0.1:9092"),
                            BrokerCollector(stats, lambda: (), {0: "Produce"}, 0.0, NO_SESSIONS))

    def lines(text: bytes) -> list[str]:  # the uptime moves between two scrapes
        return [line for line in text.decode().splitlines() if not line.startswith("tomyum_uptime_seconds ")]
    assert lines(text_exposition(registry)) == lines(generate_latest(registry))
