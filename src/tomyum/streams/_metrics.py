"""A running application's metrics, in Prometheus' terms (Kafka Streams' thread, task and
state-updater metrics, mapped as docs/streams.md's table says).

:class:`StreamsMetrics` is written by the streams thread (the task manager counts what it
processes, commits and restores; the lifecycle sets the state and the lag) and read by a scrape
on another thread: every write replaces one value in a dict or one int, so a scrape sees each
value whole; :class:`StreamsCollector` turns it into metric families at scrape time.

Per-task series exist while the task runs on this instance and start at 0 when the task comes
(Kafka Streams adds and removes its task-level sensors the same way); a counter of a task that
moves away and back starts again, which Prometheus' ``rate()`` reads as a reset.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

__all__ = ["COMMIT_BUCKETS_S", "MetricsListener", "StreamsCollector", "StreamsMetrics"]

COMMIT_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds of the commit-latency histogram: a flush and a commit (a transaction under
exactly-once) take from about a millisecond to seconds."""


@dataclass(slots=True)
class LatencyHistogram:
    """Cumulative-bucket histogram of seconds, written by one thread."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(COMMIT_BUCKETS_S) + 1))
    total_s: float = 0.0
    maximum_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(COMMIT_BUCKETS_S, seconds)] += 1
        self.total_s += seconds
        self.maximum_s = max(self.maximum_s, seconds)

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*(repr(b) for b in COMMIT_BUCKETS_S), "+Inf"), list(self.counts), strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class StreamsMetrics:
    def __init__(self) -> None:
        self.processed: dict[str, int] = {}
        """Task id -> records processed (Kafka's task ``process-total``)."""
        self.commit_latency = LatencyHistogram()
        """Seconds of each commit: flushing the stores, then committing outputs and offsets
        (Kafka's thread ``commit-latency-avg``/``-max``, ``commit-total``)."""
        self.restored: dict[tuple[str, str], int] = {}
        """(task id, store) -> changelog records restored (Kafka's ``restore-total``)."""
        self.restore_remaining: dict[tuple[str, str], int] = {}
        """(task id, store) -> changelog records still to restore (KIP-869's
        ``restore-remaining-records-total``); 0 once restored."""
        self.lag: dict[tuple[str, str, int], int] = {}
        """(task id, topic, partition) -> records not processed yet: the partition's high
        watermark minus the next offset the task will process (the consumer's ``records-lag``)."""
        self.state = "CREATED"

    def add_processed(self, task_id: str, records: int) -> None:
        self.processed[task_id] = self.processed.get(task_id, 0) + records

    def restoring(self, task_id: str, store: str, remaining: int) -> None:
        self.restore_remaining[(task_id, store)] = max(remaining, 0)

    def restored_store(self, task_id: str, store: str, records: int) -> None:
        self.restored[(task_id, store)] = self.restored.get((task_id, store), 0) + records
        self.restore_remaining[(task_id, store)] = 0

    def task_closed(self, task_id: str) -> None:
        """Forget a task's series (it has left this instance)."""
        self.processed.pop(task_id, None)
        for per_store in (self.restored, self.restore_remaining):
            for key in [k for k in per_store if k[0] == task_id]:
                per_store.pop(key, None)
        self.lag = {k: v for k, v in self.lag.items() if k[0] != task_id}


class StreamsCollector:
    """The application's metric families, for a prometheus-client registry."""

    def __init__(self, application_id: str, metrics: StreamsMetrics, states: Callable[[], list[str]],
                 dropped: Callable[[], dict[str, int]]) -> None:
        self.application_id = application_id
        self.metrics = metrics
        self.states = states
        self.dropped = dropped

    def collect(self) -> Iterator[Metric]:
        app, m = self.application_id, self.metrics
        state = GaugeMetricFamily("tomyum_streams_state", "1 for the application's current state (Kafka Streams' "
                                  "client state), 0 for the others.", labels=["application_id", "state"])
        for name in self.states():
            state.add_metric([app, name], 1.0 if name == m.state else 0.0)
        yield state
        tasks = GaugeMetricFamily("tomyum_streams_active_tasks", "Active tasks this instance runs.",
                                  labels=["application_id"])
        processed = dict(m.processed)
        tasks.add_metric([app], len(processed))
        yield tasks
        for name, doc, values in (
                ("tomyum_streams_processed_records", "Records processed by the task (Kafka's process-total; "
                 "process-rate is rate() of it).", processed),
                ("tomyum_streams_dropped_records", "Records the task skipped: no key where one is needed, "
                 "unreadable, late (Kafka's dropped-records-total).", self.dropped())):
            family = CounterMetricFamily(name, doc, labels=["application_id", "task_id"])
            for task_id, count in sorted(values.items()):
                family.add_metric([app, task_id], count)
            yield family
        h = m.commit_latency
        latency = HistogramMetricFamily("tomyum_streams_commit_latency_seconds", "Seconds of each commit: flush "
                                        "the stores, then commit outputs and input offsets (Kafka's commit-latency-avg "
                                        "and -max; commit-total is its count).", labels=["application_id"])
        latency.add_metric([app], h.buckets(), sum_value=h.total_s)
        yield latency
        maximum = GaugeMetricFamily("tomyum_streams_commit_latency_max_seconds", "The longest commit so far "
                                    "(Kafka's commit-latency-max).", labels=["application_id"])
        maximum.add_metric([app], h.maximum_s)
        yield maximum
        restored = CounterMetricFamily("tomyum_streams_restored_records", "Changelog records restored into the "
                                       "task's store (Kafka's restore-total).", labels=["application_id", "task_id",
                                                                                         "store"])
        for (task_id, store), count in sorted(dict(m.restored).items()):
            restored.add_metric([app, task_id, store], count)
        yield restored
        remaining = GaugeMetricFamily("tomyum_streams_restore_remaining_records", "Changelog records the task's "
                                      "store has still to restore (KIP-869's restore-remaining-records-total).",
                                      labels=["application_id", "task_id", "store"])
        for (task_id, store), count in sorted(dict(m.restore_remaining).items()):
            remaining.add_metric([app, task_id, store], count)
        yield remaining
        lag = GaugeMetricFamily("tomyum_streams_records_lag", "Records of the input partition the task has not "
                                "processed yet: high watermark minus the next offset to process (the consumer's "
                                "records-lag).", labels=["application_id", "task_id", "topic", "partition"])
        for (task_id, topic, partition), count in sorted(m.lag.items()):
            lag.add_metric([app, task_id, topic, str(partition)], count)
        yield lag


class MetricsListener:
    """``GET /metrics`` of one registry on ``HOST:PORT`` (port 0: a free one), with
    prometheus-client's own HTTP server (a thread), from :meth:`start` to :meth:`close`."""

    def __init__(self, address: str, registry: CollectorRegistry) -> None:
        host, sep, port = address.strip().removeprefix("http://").rstrip("/").rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"metrics_listener must be HOST:PORT, not {address!r}")
        self.host, self.port = host.strip("[]"), int(port)
        self.registry = registry
        self._server: Any = None
        self.url: str | None = None

    def start(self) -> None:
        self._server, _ = start_http_server(self.port, self.host, registry=self.registry)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self._server.server_port}/metrics"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self.url = None
