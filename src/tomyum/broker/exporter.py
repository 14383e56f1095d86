"""kafka_exporter's metric families, and tomyum's own state gauges, computed at scrape time
from the broker's own state: the metadata image, the log engine's offsets and disk usage, the
group coordinators' committed offsets and members, the transaction coordinator, the quota
managers. No client round trip, no I/O: one pass over dicts that the event loop owns, run on
the event loop's thread (the metrics listener calls it there), so every figure of a scrape is
of one moment.

kafka_exporter (danielqsj/kafka_exporter) is what Grafana dashboards and alerts are written
against, so its names, help texts and labels are kept unchanged:

- ``kafka_brokers``, ``kafka_broker_info{id,address}``;
- per topic ``kafka_topic_partitions{topic}``, per partition
  ``kafka_topic_partition_current_offset`` (the high watermark: what ListOffsets' LATEST
  answers), ``_oldest_offset`` (the log start offset), ``_leader``, ``_replicas``,
  ``_in_sync_replica``, ``_leader_is_preferred``, ``_under_replicated_partition``
  (``{topic,partition}``);
- per group ``kafka_consumergroup_members{consumergroup}`` and, for every topic in which the
  group has a committed offset, every partition's ``kafka_consumergroup_current_offset`` and
  ``kafka_consumergroup_lag`` (-1 where the partition has no committed offset, as
  kafka_exporter's ``offset.show-all`` default) and the topic's ``_current_offset_sum`` and
  ``_lag_sum`` (``{consumergroup,topic[,partition]}``). Classic and KIP-848 groups alike, and
  groups known only by their committed offsets (0 members), as ListGroups lists them.

Where tomyum differs: ``kafka_consumergroup_current_offset_sum`` sums committed offsets only
(kafka_exporter adds the -1 of partitions without one); it and ``kafka_consumergroup_lag_sum``
are declared untyped rather than gauges (same names, labels and values), because their names end
in ``_sum``, which Prometheus keeps for summaries and histograms: so ``promtool check metrics``
passes, where kafka_exporter's own output fails its lint.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, UnknownMetricFamily
from prometheus_client.samples import Sample

from tomyum.broker.client_quotas import QuotaManagers
from tomyum.coordinator.group import GroupCoordinator
from tomyum.coordinator.group.consumer import ConsumerGroupRuntime
from tomyum.coordinator.group.classic_group import GroupState
from tomyum.coordinator.group.offsets import OffsetStore
from tomyum.coordinator.txn import TransactionCoordinator
from tomyum.coordinator.txn.log import TxnState
from tomyum.errors import KafkaError
from tomyum.metadata import MetadataController
from tomyum.storage.engine import LogStore, TopicPartition

__all__ = ["ExportedState", "StateCollector"]

#: KIP-848 consumer group states (ConsumerGroup.state())
CONSUMER_GROUP_STATES = ("Empty", "Assigning", "Reconciling", "Stable")
_TP = ("topic", "partition")
_GROUP_TP = ("consumergroup", "topic", "partition")


class ExportedState(Protocol):
    """What the collector reads of the broker (``Broker`` has these parts)."""

    node_id: int
    metadata: MetadataController
    store: LogStore
    offsets: OffsetStore
    groups: GroupCoordinator
    consumer_groups: ConsumerGroupRuntime
    transactions: TransactionCoordinator
    quotas: QuotaManagers


class StateCollector:
    """kafka_exporter's families and tomyum's state gauges, for a prometheus-client registry.
    ``address`` gives the broker's advertised ``host:port`` (``kafka_broker_info``)."""

    def __init__(self, broker: ExportedState, address: Callable[[], str]) -> None:
        self.broker = broker
        self.address = address

    def collect(self) -> Iterator[Metric]:
        b = self.broker
        brokers = GaugeMetricFamily("kafka_brokers", "Number of Brokers in the Kafka Cluster.")
        brokers.add_metric([], 1)
        yield brokers
        info = GaugeMetricFamily("kafka_broker_info", "Information about the Kafka Broker.", labels=["id", "address"])
        info.add_metric([str(b.node_id), self.address()], 1)
        yield info
        high_watermarks: dict[tuple[str, int], int] = {}
        yield from self._topics(high_watermarks)
        yield from self._consumer_groups(high_watermarks)
        yield from self._disk()
        yield from self._group_states()
        yield from self._transactions()
        yield from self._quotas()

    def _topics(self, high_watermarks: dict[tuple[str, int], int]) -> Iterator[Metric]:
        node = float(self.broker.node_id)
        partitions = GaugeMetricFamily("kafka_topic_partitions", "Number of partitions for this Topic",
                                       labels=["topic"])
        current = GaugeMetricFamily("kafka_topic_partition_current_offset",
                                    "Current Offset of a Broker at Topic/Partition", labels=_TP)
        oldest = GaugeMetricFamily("kafka_topic_partition_oldest_offset",
                                   "Oldest Offset of a Broker at Topic/Partition", labels=_TP)
        leader = GaugeMetricFamily("kafka_topic_partition_leader", "Leader Broker ID of this Topic/Partition",
                                   labels=_TP)
        replicas = GaugeMetricFamily("kafka_topic_partition_replicas", "Number of Replicas for this Topic/Partition",
                                     labels=_TP)
        in_sync = GaugeMetricFamily("kafka_topic_partition_in_sync_replica",
                                    "Number of In-Sync Replicas for this Topic/Partition", labels=_TP)
        preferred = GaugeMetricFamily("kafka_topic_partition_leader_is_preferred",
                                      "1 if Topic/Partition is using the Preferred Broker", labels=_TP)
        under = GaugeMetricFamily("kafka_topic_partition_under_replicated_partition",
                                  "1 if Topic/Partition is under Replicated", labels=_TP)
        store = self.broker.store
        for name, topic in sorted(self.broker.metadata.topics().items()):
            partitions.add_metric([name], topic.num_partitions)
            for p in range(topic.num_partitions):
                try:
                    offsets = store.offsets(TopicPartition(name, p))
                except KafkaError:  # created in the image, not yet served by the engine
                    continue
                labels = {"topic": name, "partition": str(p)}  # one dict for the partition's samples
                high_watermarks[(name, p)] = offsets.high_watermark
                for family, value in ((current, offsets.high_watermark), (oldest, offsets.log_start_offset),
                                      (leader, node), (replicas, 1), (in_sync, 1), (preferred, 1), (under, 0)):
                    family.samples.append(Sample(family.name, labels, value, None))
        yield from (partitions, current, oldest, leader, replicas, in_sync, preferred, under)

    def _consumer_groups(self, high_watermarks: Mapping[tuple[str, int], int]) -> Iterator[Metric]:
        b = self.broker
        members = GaugeMetricFamily("kafka_consumergroup_members", "Amount of members in a consumer group",
                                    labels=["consumergroup"])
        counts: dict[str, int] = {name: 0 for name in b.offsets.groups()}
        counts.update({g.group_id: len(g.members) for g in b.groups.groups.values() if g.state != GroupState.DEAD})
        counts.update({gid: len(g.members) for gid, g in b.consumer_groups.state.groups.items()})
        for name, count in sorted(counts.items()):
            members.add_metric([name], count)
        yield members
        committed: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
        for (group, topic, partition), stored in b.offsets.offsets.items():
            committed[(group, topic)][partition] = stored.offset
        topics = b.metadata.topics()
        current = GaugeMetricFamily("kafka_consumergroup_current_offset",
                                    "Current Offset of a ConsumerGroup at Topic/Partition", labels=_GROUP_TP)
        # the two _sum families are untyped, not gauges: their names (kafka_exporter's, which
        # dashboards query) end in _sum, and promtool's lint keeps that suffix for summaries
        current_sum = UnknownMetricFamily("kafka_consumergroup_current_offset_sum",
                                          "Current Offset of a ConsumerGroup at Topic for all partitions",
                                          labels=["consumergroup", "topic"])
        lag = GaugeMetricFamily("kafka_consumergroup_lag", "Current Approximate Lag of a ConsumerGroup at Topic/Partition",
                                labels=_GROUP_TP)
        lag_sum = UnknownMetricFamily("kafka_consumergroup_lag_sum",
                                      "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
                                      labels=["consumergroup", "topic"])
        for (group, topic), by_partition in sorted(committed.items()):
            meta = topics.get(topic)
            if meta is None:  # offsets of a deleted topic: no end to measure against
                continue
            offsets_total = lags_total = 0
            for p in range(meta.num_partitions):
                end = high_watermarks.get((topic, p))
                if end is None:
                    continue
                labels = {"consumergroup": group, "topic": topic, "partition": str(p)}
                offset = by_partition.get(p, -1)
                behind = -1 if offset < 0 else max(end - offset, 0)
                current.samples.append(Sample(current.name, labels, max(offset, -1), None))
                lag.samples.append(Sample(lag.name, labels, behind, None))
                if offset >= 0:
                    offsets_total += offset
                    lags_total += behind
            current_sum.add_metric([group, topic], offsets_total)
            lag_sum.add_metric([group, topic], lags_total)
        yield from (current, current_sum, lag, lag_sum)

    def _disk(self) -> Iterator[Metric]:
        size = GaugeMetricFamily("tomyum_partition_size_bytes", "Bytes of a partition's log segments on disk.",
                                 labels=_TP)
        segments = GaugeMetricFamily("tomyum_partition_segments", "Log segments of a partition on disk.",
                                     labels=_TP)
        for tp, usage in sorted(self.broker.store.disk_usage().items(), key=lambda x: (x[0].topic, x[0].partition)):
            labels = [tp.topic, str(tp.partition)]
            size.add_metric(labels, usage.size_in_bytes)
            segments.add_metric(labels, usage.segments)
        yield size
        yield segments

    def _group_states(self) -> Iterator[Metric]:
        b = self.broker
        groups = GaugeMetricFamily("tomyum_groups", "Groups by type (classic, consumer) and state.",
                                   labels=["type", "state"])
        classic = Counter(g.state.value for g in b.groups.groups.values())
        for state in GroupState:
            if state != GroupState.DEAD:
                groups.add_metric(["classic", state.value], classic[state.value])
        consumer = Counter(g.state() for g in b.consumer_groups.state.groups.values())
        for name in CONSUMER_GROUP_STATES:
            groups.add_metric(["consumer", name], consumer[name])
        yield groups
        rebalances = CounterMetricFamily("tomyum_group_rebalances", "Rebalances since the broker started: classic "
                                         "generations completed with members, KIP-848 group epoch bumps.",
                                         labels=["type"])
        rebalances.add_metric(["classic"], b.groups.rebalances)
        rebalances.add_metric(["consumer"], b.consumer_groups.state.rebalances)
        yield rebalances

    def _transactions(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("tomyum_transactions", "Transactional ids by Kafka's transaction state.",
                                   labels=["state"])
        states = Counter(txn.state for txn in self.broker.transactions.txns.values())
        for state in TxnState:
            family.add_metric([state.display], states[state])
        yield family

    def _quotas(self) -> Iterator[Metric]:
        quotas = self.broker.quotas
        throttled = CounterMetricFamily("tomyum_quota_throttled_responses",
                                        "Responses throttled for exceeding a client quota.", labels=["quota"])
        seconds = CounterMetricFamily("tomyum_quota_throttle_time_seconds",
                                      "Throttle time given to clients over a quota.", labels=["quota"])
        for manager in (quotas.produce, quotas.fetch, quotas.request):
            throttled.add_metric([manager.key], manager.throttled)
            seconds.add_metric([manager.key], manager.throttle_time_ms / 1000)
        yield throttled
        yield seconds
