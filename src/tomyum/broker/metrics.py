"""The metrics listener: ``GET /metrics`` over HTTP in Prometheus' text format, on
``metrics.listener`` (``HOST:PORT``; off when empty).

What it answers, computed at scrape time from the broker's own state (no client round trip):

- ``kafka_brokers`` — kafka_exporter's name: the brokers of the cluster (1).
- ``tomyum_requests_total{request}`` — requests received per API, by Kafka's request name.
- ``tomyum_topic_bytes_in_total{topic}``, ``tomyum_topic_records_in_total{topic}``,
  ``tomyum_topic_bytes_out_total{topic}`` — what Produce appended and Fetch answered.
- ``tomyum_connections{listener}`` — open connections; ``tomyum_connections_accepted_total{listener}``.
- ``tomyum_uptime_seconds``.

The counters are :class:`~tomyum.broker.stats.BrokerStats`. The HTTP side is deliberately
tiny: one request per connection, ``GET /metrics`` (or ``/``) answered, anything else 404, a
request line and headers of at most 8 KiB read within 5 s, then the connection is closed.
"""

from __future__ import annotations

import asyncio
import errno
import os
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tomyum.broker.stats import BrokerStats, request_name
from tomyum.errors import ConfigError

if TYPE_CHECKING:
    from tomyum.broker.server import KafkaConnection

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 5.0
MAX_REQUEST_BYTES = 8192


def parse_metrics_listener(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (an ``http://`` in front is allowed) → (host, port)."""
    address = value.strip().removeprefix("http://").rstrip("/")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError("metrics.listener", f"{value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


class BrokerCollector:
    """The broker's metric families, for a prometheus-client registry."""

    def __init__(self, stats: BrokerStats, connections: Callable[[], Iterable[KafkaConnection]],
                 request_names: dict[int, str], started_at: float) -> None:
        self.stats = stats
        self.connections = connections
        self.request_names = request_names
        self.started_at = started_at

    def collect(self) -> Iterator[Metric]:
        brokers = GaugeMetricFamily("kafka_brokers", "Number of Brokers in the Kafka Cluster.")
        brokers.add_metric([], 1)
        yield brokers
        requests = CounterMetricFamily("tomyum_requests", "Requests received, by Kafka's request name.",
                                       labels=["request"])
        for key, count in sorted(self.stats.requests.items()):
            requests.add_metric([self.request_names.get(key, str(key))], count)
        yield requests
        for name, doc, counter in (
                ("tomyum_topic_bytes_in", "Record-batch bytes appended by Produce.", self.stats.bytes_in),
                ("tomyum_topic_records_in", "Records appended by Produce.", self.stats.records_in),
                ("tomyum_topic_bytes_out", "Record-batch bytes answered to Fetch.", self.stats.bytes_out)):
            family = CounterMetricFamily(name, doc, labels=["topic"])
            for topic, value in sorted(counter.items()):
                family.add_metric([topic], value)
            yield family
        open_now = Counter(c.listener.name for c in self.connections())
        connections = GaugeMetricFamily("tomyum_connections", "Open client connections.", labels=["listener"])
        accepted = CounterMetricFamily("tomyum_connections_accepted", "Client connections accepted.",
                                       labels=["listener"])
        for listener in sorted(set(open_now) | set(self.stats.connections_accepted)):
            connections.add_metric([listener], open_now[listener])
            accepted.add_metric([listener], self.stats.connections_accepted[listener])
        yield connections
        yield accepted
        uptime = GaugeMetricFamily("tomyum_uptime_seconds", "Seconds since the broker started.")
        uptime.add_metric([], round(time.time() - self.started_at, 3))
        yield uptime


class MetricsListener:
    """Serves ``/metrics`` from ``registry`` on ``host:port`` (port 0: a free one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._server: asyncio.Server | None = None
        self.host = ""
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, host, port)
        except OSError as e:  # in use, or not an address of this machine: said as the key's fault
            if e.errno == errno.EADDRINUSE:
                reason = "the address is in use (port 0 picks a free one)"
            else:
                reason = (os.strerror(e.errno) if e.errno else str(e)).lower()
            raise ConfigError("metrics.listener", f"cannot listen on {host}:{port}: {reason}") from None
        self.host = host
        self.port = int(self._server.sockets[0].getsockname()[1])

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            status, body, content_type = self._answer(head)
            writer.write(b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                         % (status.encode(), content_type.encode(), len(body)) + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that says nothing useful gets nothing
        finally:
            writer.close()

    def _answer(self, head: bytes) -> tuple[str, bytes, str]:
        if len(head) > MAX_REQUEST_BYTES:
            return "431 Request Header Fields Too Large", b"", "text/plain"
        method, _, rest = head.partition(b" ")
        path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        if method != b"GET":
            return "405 Method Not Allowed", b"only GET\n", "text/plain"
        if path not in (b"/metrics", b"/"):
            return "404 Not Found", b"try /metrics\n", "text/plain"
        return "200 OK", generate_latest(self.registry), CONTENT_TYPE_LATEST


def new_registry(collector: Any) -> CollectorRegistry:
    """A registry of its own (never prometheus-client's global one: two brokers in one process,
    as in tests, must not share counters)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
