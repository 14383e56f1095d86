"""The metrics listener: ``GET /metrics`` over HTTP in Prometheus' text format, on
``metrics.listener`` (``HOST:PORT``; off when empty).

What it answers, computed at scrape time from the broker's own state (no client round trip):
kafka_exporter's families, unchanged, and tomyum's state gauges (``broker/exporter.py``), and
here the broker's counters and histograms (``broker/stats.py``):

- ``tomyum_requests_total{request}`` and ``tomyum_request_latency_seconds{request}`` (a
  histogram) per API, by Kafka's request name.
- ``tomyum_topic_bytes_in_total{topic}``, ``tomyum_topic_records_in_total{topic}``,
  ``tomyum_topic_bytes_out_total{topic}``, ``tomyum_topic_records_out_total{topic}`` — what
  Produce appended and Fetch answered.
- ``tomyum_connections{listener}`` — open connections; ``tomyum_connections_accepted_total{listener}``.
- ``tomyum_fsync_seconds``, ``tomyum_group_commit_records``, ``tomyum_group_commit_partitions``
  — the log engine's group commits (histograms).
- ``tomyum_authentication_failures_total{mechanism,listener}``.
- ``tomyum_fetch_sessions``, ``tomyum_fetch_session_partitions``,
  ``tomyum_fetch_session_evictions_total`` — incremental fetch sessions (KIP-227).
- ``tomyum_uptime_seconds``.

The whole list, with meanings, is docs/monitoring.md. The HTTP side is deliberately tiny: one
request per connection, ``GET /metrics`` (or ``/``) answered, anything else 404, a request line
and headers of at most 8 KiB read within 5 s, then the connection is closed. It may require
HTTP basic authentication (``metrics.basic.auth.users``; a wrong or missing password is 401) and
serve TLS, with client certificates required for mTLS (``https://`` in ``metrics.listener``, the
``ssl.*`` keys of the listener named ``metrics``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import hmac
import os
import logging
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tomyum.broker.exposition import text_exposition
from tomyum.broker.stats import BrokerStats, Histogram, request_name
from tomyum.errors import ConfigError

if TYPE_CHECKING:
    from tomyum.broker.fetch_sessions import FetchSessionCache
    from tomyum.broker.server import KafkaConnection

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 5.0
MAX_REQUEST_BYTES = 8192


def parse_metrics_listener(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (an ``http://`` or ``https://`` in front is allowed) → (host, port)."""
    address = value.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError("metrics.listener", f"{value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def metrics_uses_tls(value: str) -> bool:
    return value.strip().startswith("https://")


def parse_basic_auth_users(value: str | None) -> dict[str, str]:
    """``metrics.basic.auth.users``: ``USER:PASSWORD`` pairs, comma-separated → {user: password}."""
    users: dict[str, str] = {}
    for pair in (value or "").split(","):
        if not pair.strip():
            continue
        user, sep, password = pair.strip().partition(":")
        if not sep or not user or not password:
            raise ConfigError("metrics.basic.auth.users", "expected USER:PASSWORD pairs, comma-separated")
        users[user] = password
    return users


def _histogram(family: HistogramMetricFamily, labels: list[str], h: Histogram) -> None:
    family.add_metric(labels, h.cumulative(), sum_value=h.sum)


class BrokerCollector:
    """The broker's metric families, for a prometheus-client registry."""

    def __init__(self, stats: BrokerStats, connections: Callable[[], Iterable[KafkaConnection]],
                 request_names: dict[int, str], started_at: float, fetch_sessions: FetchSessionCache) -> None:
        self.stats = stats
        self.fetch_sessions = fetch_sessions
        self.connections = connections
        self.request_names = request_names
        self.started_at = started_at

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("tomyum_requests", "Requests received, by Kafka's request name.",
                                       labels=["request"])
        for key, count in sorted(self.stats.requests.items()):
            requests.add_metric([self.request_names.get(key, str(key))], count)
        yield requests
        latency = HistogramMetricFamily("tomyum_request_latency_seconds", "Seconds from a request read to its "
                                        "response written, by Kafka's request name.", labels=["request"])
        for key, histogram in sorted(self.stats.request_latency.items()):
            _histogram(latency, [self.request_names.get(key, str(key))], histogram)
        yield latency
        for hname, hdoc, histogram in (
                ("tomyum_fsync_seconds", "Seconds of one group commit's fsyncs (the local log engine).",
                 self.stats.fsync_seconds),
                ("tomyum_group_commit_records", "Records made durable by one group commit (fsync).",
                 self.stats.commit_records),
                ("tomyum_group_commit_partitions", "Partitions synced by one group commit (fsync).",
                 self.stats.commit_partitions)):
            commits = HistogramMetricFamily(hname, hdoc)
            _histogram(commits, [], histogram)
            yield commits
        failures = CounterMetricFamily("tomyum_authentication_failures", "Failed SASL authentications, by "
                                       "mechanism and listener.", labels=["mechanism", "listener"])
        for (mechanism, listener), count in sorted(self.stats.authentication_failures.items()):
            failures.add_metric([mechanism, listener], count)
        yield failures
        for name, doc, counter in (
                ("tomyum_topic_bytes_in", "Record-batch bytes appended by Produce.", self.stats.bytes_in),
                ("tomyum_topic_records_in", "Records appended by Produce.", self.stats.records_in),
                ("tomyum_topic_bytes_out", "Record-batch bytes answered to Fetch.", self.stats.bytes_out),
                ("tomyum_topic_records_out", "Records (offsets) answered to Fetch, to the end of the last whole "
                 "batch.", self.stats.records_out)):
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
        sessions = self.fetch_sessions
        for fname, fdoc, value in (
                ("tomyum_fetch_sessions", "Incremental fetch sessions held (Kafka's NumIncrementalFetchSessions).",
                 len(sessions)),
                ("tomyum_fetch_session_partitions", "Partitions held by the incremental fetch sessions (Kafka's "
                 "NumIncrementalFetchPartitionsCached).", sessions.partitions)):
            gauge = GaugeMetricFamily(fname, fdoc)
            gauge.add_metric([], value)
            yield gauge
        evictions = CounterMetricFamily("tomyum_fetch_session_evictions", "Fetch sessions evicted to make room "
                                        "for new ones.")
        evictions.add_metric([], sessions.evictions)
        yield evictions
        uptime = GaugeMetricFamily("tomyum_uptime_seconds", "Seconds since the broker started.")
        uptime.add_metric([], round(time.time() - self.started_at, 3))
        yield uptime


class MetricsListener:
    """Serves ``/metrics`` from ``registry`` on ``host:port`` (port 0: a free one)."""

    def __init__(self, registry: CollectorRegistry, *, users: dict[str, str] | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        """``users``: basic-auth users and passwords (none: no password asked); ``tls``: serve
        HTTPS with this server context (its ``verify_mode`` says whether a client certificate
        is required)."""
        self.registry = registry
        self._server: asyncio.Server | None = None
        self.host = ""
        self.port = 0
        self._credentials = {f"{u}:{p}".encode() for u, p in (users or {}).items()}
        self._tls = tls

    async def start(self, host: str, port: int) -> None:
        try:
            tls: dict[str, Any] = {} if self._tls is None else {"ssl": self._tls,
                                                                  "ssl_handshake_timeout": READ_TIMEOUT_S}
            self._server = await asyncio.start_server(self._serve, host, port, **tls)
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
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{host}:{self.port}/metrics"

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
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
            pass  # a client that says nothing useful (or fails the TLS handshake) gets nothing
        finally:
            writer.close()

    def _answer(self, head: bytes) -> tuple[str, bytes, str]:
        if len(head) > MAX_REQUEST_BYTES:
            return "431 Request Header Fields Too Large", b"", "text/plain"
        method, _, rest = head.partition(b" ")
        path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        if method != b"GET":
            return "405 Method Not Allowed", b"only GET\n", "text/plain"
        if self._credentials and not self._authorized(head):
            return "401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"tomyum metrics\"", b"", "text/plain"
        if path not in (b"/metrics", b"/"):
            return "404 Not Found", b"try /metrics\n", "text/plain"
        return "200 OK", text_exposition(self.registry), CONTENT_TYPE_LATEST


    def _authorized(self, head: bytes) -> bool:
        """RFC 7617: ``Authorization: Basic base64(user:password)``, compared in constant time."""
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() != b"authorization":
                continue
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() != b"basic":
                return False
            try:
                given = base64.b64decode(token.strip(), validate=True)
            except (binascii.Error, ValueError):
                return False
            return any(hmac.compare_digest(given, known) for known in self._credentials)
        return False


def new_registry(*collectors: Any) -> CollectorRegistry:
    """A registry of its own (never prometheus-client's global one: two brokers in one process,
    as in tests, must not share counters)."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return registry
