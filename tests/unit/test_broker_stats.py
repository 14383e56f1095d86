"""The broker's own counters (broker/stats.py) as Produce and Fetch keep them, and what the
metrics listener (broker/metrics.py) makes of them: Kafka's request names, Prometheus' text."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tomyum.broker.dispatch import HANDLERS
from tomyum.broker.handlers import registry
from tomyum.broker.fetch_sessions import FetchSessionCache
from tomyum.broker.metrics import BrokerCollector, new_registry, parse_metrics_listener
from tomyum.broker.stats import BrokerStats, request_name
from tomyum.errors import ConfigError
from tomyum.protocol.records import build_batch
from tomyum.testing.handlers import BlockingHarness, request_class
from tests.unit.test_handlers_fetch import fetch, produce


def test_produce_and_fetch_count_bytes_and_records_per_topic(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    kafka.call(0, 9, produce("t", b"a", b"b", b"c"))
    kafka.call(0, 9, produce("t", b"d"))
    stats = kafka.broker.stats
    batches = len(build_batch([(None, b"a"), (None, b"b"), (None, b"c")])) + len(build_batch([(None, b"d")]))
    assert stats.records_in["t"] == 4
    assert stats.bytes_in["t"] == batches
    kafka.call(1, 12, fetch("t"))
    assert stats.bytes_out["t"] == batches
    assert stats.records_out["t"] == 4


def test_a_refused_produce_counts_nothing(kafka: BlockingHarness) -> None:
    kafka.call(0, 9, produce("absent", b"a"))
    assert kafka.broker.stats.records_in == {} and kafka.broker.stats.bytes_in == {}


def test_request_names_are_kafkas() -> None:
    """``Produce``, ``InitProducerId``, ``OffsetForLeaderEpoch``: the names of Kafka's request
    schemas (kio's request classes), for every registered API."""
    for key, handler in registry().items():
        kafka_name = request_class(key, handler.max_version).__name__.removesuffix("Request")
        assert request_name(handler.name) == kafka_name, key


@pytest.mark.parametrize("value, address", [("127.0.0.1:9644", ("127.0.0.1", 9644)),
                                            ("http://localhost:0/", ("localhost", 0)),
                                            ("[::1]:9644", ("::1", 9644))])
def test_metrics_listener_is_host_and_port(value: str, address: tuple[str, int]) -> None:
    assert parse_metrics_listener(value) == address


@pytest.mark.parametrize("value", ["9644", "localhost", ":9644", "host:port", "host:70000"])
def test_a_metrics_listener_that_is_not_host_and_port_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="metrics.listener"):
        parse_metrics_listener(value)


def test_the_collector_answers_counters_and_open_connections_per_listener() -> None:
    stats = BrokerStats()
    stats.requests[0] += 3
    stats.produced("orders", 120, 2)
    stats.fetched("orders", 240, 5)
    stats.connections_accepted["PLAINTEXT"] += 2
    connections: list[Any] = [SimpleNamespace(listener=SimpleNamespace(name="PLAINTEXT"))]
    names = {key: request_name(h.name) for key, h in HANDLERS.items()}
    text = generate_latest(new_registry(BrokerCollector(stats, lambda: connections, names, 0.0,
                                                              FetchSessionCache(0, lambda: 0)))).decode()
    samples = {(s.name, tuple(s.labels.values())): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("tomyum_requests_total", ("Produce",))] == 3
    assert samples[("tomyum_topic_records_in_total", ("orders",))] == 2
    assert samples[("tomyum_topic_bytes_in_total", ("orders",))] == 120
    assert samples[("tomyum_topic_bytes_out_total", ("orders",))] == 240
    assert samples[("tomyum_topic_records_out_total", ("orders",))] == 5
    assert samples[("tomyum_connections", ("PLAINTEXT",))] == 1
    assert samples[("tomyum_connections_accepted_total", ("PLAINTEXT",))] == 2
