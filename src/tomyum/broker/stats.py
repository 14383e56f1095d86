"""The broker's own counters, kept in one place: requests per API, bytes and records in and
bytes out per topic, connections accepted per listener.

Kafka keeps the same figures as JMX meters (``kafka.network:type=RequestMetrics,name=RequestsPerSec,
request=Produce``, ``kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=T``,
``MessagesInPerSec``, ``BytesOutPerSec``); tomyum keeps plain counters that only grow, from the
broker's start, and leaves rates to whoever reads them twice (Prometheus' ``rate()``,
``tomyum top``). They are read over the metrics listener (``broker/metrics.py``, ``/metrics``
in Prometheus' text format) when ``metrics.listener`` is set.

Counting is a dict increment on the event loop's thread (the connection, the Produce and the
Fetch handlers); nothing here awaits or does I/O. Topics deleted since are still counted: a
counter does not go back (Prometheus treats a drop as a restart).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["BrokerStats", "request_name"]


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
    #: connections accepted, by listener name
    connections_accepted: Counter[str] = field(default_factory=Counter)

    def produced(self, topic: str, size: int, records: int) -> None:
        self.bytes_in[topic] += size
        self.records_in[topic] += records

    def fetched(self, topic: str, size: int) -> None:
        if size:
            self.bytes_out[topic] += size


def request_name(handler_name: str) -> str:
    """Kafka's name of a request (``Produce``, ``JoinGroup``, ``InitProducerId``) from the name
    of its handler function (``produce``, ``join_group``, ``init_producer_id``)."""
    return "".join(part.capitalize() for part in handler_name.split("_"))
