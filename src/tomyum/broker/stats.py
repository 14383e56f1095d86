"""The broker's own counters, kept in one place: requests per API, bytes and records in and
bytes out per topic, connections accepted per listener.

Kafka keeps the same figures as JMX meters (``kafka.network:type=RequestMetrics,name=RequestsPerSec,
request=Produce``, ``kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=T``,
``MessagesInPerSec``, ``BytesOutPerSec``); tomyum keeps plain counters that only grow, from the
broker's start, and leaves rates to whoever reads them twice (Prometheus' ``rate()``,
``tomyum top``). They are read over the metrics listener (``broker/metrics.py``, ``/metrics``
in Prometheus' text format) when ``metrics.listener`` is set.

Beside the counters, histograms (:class:`Histogram`: cumulative buckets, sum and count, as
Prometheus reads them): request latency per API, and the log engine's group commits (fsync
seconds, records and partitions per fsync; the engine reports each round through
``LogStore.on_sync``, this module turns it into numbers). Authentication failures per SASL
mechanism and listener, and quota throttling, are counted where they happen.

Counting is a dict increment on the event loop's thread (the connection, the Produce and the
Fetch handlers); nothing here awaits or does I/O. Topics deleted since are still counted: a
counter does not go back (Prometheus treats a drop as a restart).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

from tomyum.storage.engine import SyncRound

__all__ = ["BrokerStats", "Histogram", "request_name", "LATENCY_BUCKETS_S", "FSYNC_BUCKETS_S", "SIZE_BUCKETS"]

#: request latency, seconds: 0.5 ms to 10 s (Prometheus' defaults lack the sub-ms end)
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: one fsync round, seconds (≈1 ms per MiB on these machines)
FSYNC_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: records or partitions per group commit
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


@dataclass(slots=True)
class Histogram:
    """Observations counted into upper-bounded buckets (``le``), with their sum and count; the
    ``+Inf`` bucket is :attr:`count`. An observation is one bisect and two additions."""
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    sum: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        i = bisect_left(self.buckets, value)
        if i < len(self.counts):
            self.counts[i] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` for every bucket and ``+Inf``, as Prometheus exposes them."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(self.buckets, self.counts):
            running += n
            out.append((_le(bound), running))
        out.append(("+Inf", self.count))
        return out


def _le(bound: float) -> str:
    return repr(float(bound))


@dataclass(slots=True)
class BrokerStats:
    #: requests received, by API key (Kafka's RequestsPerSec)
    requests: Counter[int] = field(default_factory=Counter)
    #: record-batch bytes appended by Produce, by topic (BytesInPerSec)
    bytes_in: Counter[str] = field(default_factory=Counter)
    #: records appended by Produce, by topic (MessagesInPerSec)
    records_in: Counter[str] = field(default_factory=Counter)
    #: record-batch bytes answered to Fetch, by topic (BytesOutPerSec)
    bytes_out: Counter[str] = field(default_factory=Counter)
    #: offsets answered to Fetch up to the end of the last whole batch, by topic
    records_out: Counter[str] = field(default_factory=Counter)
    #: connections accepted, by listener name
    connections_accepted: Counter[str] = field(default_factory=Counter)
    #: seconds from a request read to its response, by API key
    request_latency: dict[int, Histogram] = field(default_factory=dict)
    #: failed SASL authentications, by (mechanism, listener)
    authentication_failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: group commits of the log engine: seconds of fsync, records and partitions each made durable
    fsync_seconds: Histogram = field(default_factory=lambda: Histogram(FSYNC_BUCKETS_S))
    commit_records: Histogram = field(default_factory=lambda: Histogram(SIZE_BUCKETS))
    commit_partitions: Histogram = field(default_factory=lambda: Histogram(SIZE_BUCKETS))

    def produced(self, topic: str, size: int, records: int) -> None:
        self.bytes_in[topic] += size
        self.records_in[topic] += records

    def fetched(self, topic: str, size: int, records: int) -> None:
        if size:
            self.bytes_out[topic] += size
            self.records_out[topic] += records

    def answered(self, api_key: int, seconds: float) -> None:
        histogram = self.request_latency.get(api_key)
        if histogram is None:
            histogram = self.request_latency[api_key] = Histogram(LATENCY_BUCKETS_S)
        histogram.observe(seconds)

    def synced(self, round_: SyncRound) -> None:
        """A group commit of the log engine (``LogStore.on_sync``'s callback)."""
        self.fsync_seconds.observe(round_.seconds)
        self.commit_records.observe(round_.records)
        self.commit_partitions.observe(round_.partitions)


def request_name(handler_name: str) -> str:
    """Kafka's name of a request (``Produce``, ``JoinGroup``, ``InitProducerId``) from the name
    of its handler function (``produce``, ``join_group``, ``init_producer_id``)."""
    return "".join(part.capitalize() for part in handler_name.split("_"))
