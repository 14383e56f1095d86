"""How a topology maps onto topics and tasks (Kafka Streams' ``InternalTopicManager`` and
co-partitioning rules), as a pure function of the topology and the partition counts of its
user topics, so that a runtime can check everything before it creates a topic.

* A repartition topic has the partition count it was given (``repartition(num_partitions=)``),
  else the count of the user topics of the sub-topology that reads it when that
  sub-topology has state (so that it is co-partitioned with them), else the largest count of
  the source topics of the sub-topologies that write into it.
* A sub-topology with state must read topics of one partition count (co-partitioning:
  partition *n* of each holds the same keys); otherwise :class:`TopologyError` names them.
* A sub-topology has one task per partition of its widest source topic; its stores'
  changelog topics have one partition per task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tomyum.streams.topology import SubTopology, Topology

__all__ = ["Plan", "TopologyError", "plan"]


class TopologyError(Exception):
    """The topology cannot run against these topics; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Plan:
    subtopologies: tuple[SubTopology, ...]
    partitions: Mapping[str, int]
    """Partition count of every source topic, repartition topics included (unprefixed)."""
    tasks: Mapping[int, int]
    """Number of tasks of each sub-topology."""
    subtopology_of_topic: Mapping[str, int]
    subtopology_of_store: Mapping[str, int]

    def task_ids(self, subtopology: int) -> list[str]:
        return [f"{subtopology}_{p}" for p in range(self.tasks[subtopology])]


def plan(topology: Topology, counts: Mapping[str, int]) -> Plan:
    """``counts``: the partition count of each existing user topic (missing topics are
    absent). Raises :class:`TopologyError`."""
    subs = topology.subtopologies()
    internal = topology.repartition_topics
    user_topics = [t for sub in subs for t in sub.source_topics if t not in internal]
    missing = sorted(t for t in [*user_topics, *topology.global_topics] if t not in counts)
    if missing:
        raise TopologyError(f"source topic(s) {', '.join(missing)} do not exist; create them before starting the "
                            "application")
    n: dict[str, int] = {t: counts[t] for t in [*user_topics, *topology.global_topics]}
    n.update({t: fixed for t, fixed in internal.items() if fixed is not None})
    for sub in subs:  # co-partition repartition topics with the user topics they are joined to
        outside = {t: n[t] for t in sub.source_topics if t not in internal}
        if sub.stores and outside:
            _same(sub, outside)
            for t in sub.source_topics:
                if t in internal and internal[t] is None:
                    n[t] = next(iter(outside.values()))
    writers = {t: [sub for sub in subs if t in sub.sink_topics] for t in internal}
    while True:
        resolved = False
        for t in internal:
            upstream = [s for sub in writers[t] for s in sub.source_topics]
            if t not in n and upstream and all(s in n for s in upstream):
                n[t] = max(n[s] for s in upstream)
                resolved = True
        if not resolved:
            break
    unresolved = sorted(t for t in internal if t not in n)
    if unresolved:
        raise TopologyError(f"cannot work out the partition count of {', '.join(unresolved)}; "
                            "give it with repartition(num_partitions=...)")
    for sub in subs:
        if sub.stores:
            _same(sub, {t: n[t] for t in sub.source_topics})
    return Plan(
        subtopologies=tuple(subs),
        partitions=n,
        tasks={sub.id: max(n[t] for t in sub.source_topics) for sub in subs},
        subtopology_of_topic={t: sub.id for sub in subs for t in sub.source_topics},
        subtopology_of_store={s: sub.id for sub in subs for s in sub.stores},
    )


def _same(sub: SubTopology, counts: Mapping[str, int]) -> None:
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{t} ({c} partitions)" for t, c in sorted(counts.items()))
        raise TopologyError(
            f"topics not co-partitioned: sub-topology {sub.id} keeps state and reads {listed}; topics that are "
            "joined or aggregated together need the same number of partitions (repartition one of them with "
            "repartition(num_partitions=...) or recreate it)")
