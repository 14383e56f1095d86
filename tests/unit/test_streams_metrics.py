"""The application's metric families on their own (no broker): what the streams thread writes
comes out of a prometheus-client registry in Prometheus' text format, read back with
prometheus-client's parser; a task that leaves takes its series along. The live side is
tests/integration/test_streams_metrics_live.py."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tomyum.streams._metrics import StreamsCollector, StreamsMetrics

pytestmark = pytest.mark.timeout(30)


def samples(metrics: StreamsMetrics, dropped: dict[str, int] | None = None) -> dict[tuple[str, tuple[str, ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StreamsCollector("app", metrics, lambda: ["CREATED", "RUNNING"], lambda: dropped or {}))
    text = generate_latest(registry).decode()
    return {(s.name, tuple(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "application_id")): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_what_the_streams_thread_counts_is_scraped() -> None:
    m = StreamsMetrics()
    m.state = "RUNNING"
    m.add_processed("0_0", 3)
    m.add_processed("0_0", 2)
    m.add_processed("0_1", 1)
    for seconds in (0.002, 0.002, 0.3):
        m.commit_latency.observe(seconds)
    m.restoring("0_0", "counts", 40)
    m.restoring("0_0", "counts", 15)
    m.lag = {("0_0", "in", 0): 7}
    got = samples(m, {"0_0": 1})
    assert got[("tomyum_streams_state", ("state=RUNNING",))] == 1
    assert got[("tomyum_streams_state", ("state=CREATED",))] == 0
    assert got[("tomyum_streams_processed_records_total", ("task_id=0_0",))] == 5
    assert got[("tomyum_streams_processed_records_total", ("task_id=0_1",))] == 1
    assert got[("tomyum_streams_active_tasks", ())] == 2
    assert got[("tomyum_streams_dropped_records_total", ("task_id=0_0",))] == 1
    assert got[("tomyum_streams_commit_latency_seconds_count", ())] == 3
    assert got[("tomyum_streams_commit_latency_seconds_bucket", ("le=0.0025",))] == 2
    assert got[("tomyum_streams_commit_latency_seconds_bucket", ("le=0.25",))] == 2
    assert got[("tomyum_streams_commit_latency_seconds_bucket", ("le=0.5",))] == 3
    assert got[("tomyum_streams_commit_latency_seconds_sum", ())] == pytest.approx(0.304)
    assert got[("tomyum_streams_commit_latency_max_seconds", ())] == pytest.approx(0.3)
    assert got[("tomyum_streams_restore_remaining_records", ("store=counts", "task_id=0_0"))] == 15
    assert got[("tomyum_streams_records_lag", ("partition=0", "task_id=0_0", "topic=in"))] == 7
    m.restored_store("0_0", "counts", 40)
    got = samples(m)
    assert got[("tomyum_streams_restored_records_total", ("store=counts", "task_id=0_0"))] == 40
    assert got[("tomyum_streams_restore_remaining_records", ("store=counts", "task_id=0_0"))] == 0


def test_a_task_that_leaves_takes_its_series() -> None:
    m = StreamsMetrics()
    m.add_processed("0_0", 3)
    m.add_processed("0_1", 4)
    m.restored_store("0_0", "counts", 9)
    m.lag = {("0_0", "in", 0): 1, ("0_1", "in", 1): 2}
    m.task_closed("0_0")
    got = samples(m)
    assert [labels for name, labels in got if name == "tomyum_streams_processed_records_total"] == [("task_id=0_1",)]
    assert not [name for name, _ in got if name == "tomyum_streams_restored_records_total"]
    assert [labels for name, labels in got if name == "tomyum_streams_records_lag"] == [
        ("partition=1", "task_id=0_1", "topic=in")]


def test_a_bad_metrics_listener_is_refused_at_once() -> None:
    from tomyum.streams._metrics import MetricsListener

    for bad in ("localhost", ":9650", "localhost:http", "localhost:70000"):
        with pytest.raises(ValueError, match="metrics_listener must be HOST:PORT"):
            MetricsListener(bad, CollectorRegistry())
    listener = MetricsListener("http://[::1]:0/", CollectorRegistry())
    assert (listener.host, listener.port, listener.url) == ("::1", 0, None)
