"""Server-side assignors of KIP-848: ``uniform`` (the default) and ``range``.

An assignor maps each member, by the topic ids it subscribes to, to partitions, given the
partition counts, the previous target assignment and the static members' instance ids. Both
are deterministic (members in a fixed order), so replaying the same inputs gives the same
assignment.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Protocol

from tomyum.coordinator.group.consumer.group import assignment_of, partitions_of
from tomyum.coordinator.group.consumer.records import Assignment

Subscriptions = Mapping[str, frozenset[uuid.UUID]]


class Assignor(Protocol):
    def __call__(self, members: Subscriptions, partitions: Mapping[uuid.UUID, int],
                 previous: Mapping[str, Assignment], instance_ids: Mapping[str, str] | None = ..., /
                 ) -> dict[str, Assignment]: ...


def uniform(members: Subscriptions, partitions: Mapping[uuid.UUID, int],
            previous: Mapping[str, Assignment], instance_ids: Mapping[str, str] | None = None, /
            ) -> dict[str, Assignment]:
    """Balanced and sticky: a member keeps what it had, up to its share; the rest goes to the
    subscribed member with the fewest partitions (Kafka's UniformAssignor, simplified)."""
    order = sorted(members)
    every = sorted({(t, p) for t in set().union(*members.values()) if t in partitions
                    for p in range(partitions[t])}, key=lambda tp: (str(tp[0]), tp[1]))
    if not order:
        return {}
    share, extra = divmod(len(every), len(order))
    owned: dict[str, list[tuple[uuid.UUID, int]]] = {m: [] for m in order}
    taken: set[tuple[uuid.UUID, int]] = set()
    valid = set(every)
    for m in order:
        for tp in sorted(partitions_of(previous.get(m, {})), key=lambda tp: (str(tp[0]), tp[1])):
            if tp in valid and tp[0] in members[m] and tp not in taken:
                owned[m].append(tp)
                taken.add(tp)
    for m in sorted(order, key=lambda m: (-len(owned[m]), m)):  # trim to the share
        cap = share + 1 if extra > 0 and len(owned[m]) > share else share
        extra -= cap > share
        while len(owned[m]) > cap:
            taken.discard(owned[m].pop())
    for tp in every:
        if tp not in taken:
            eligible = [m for m in order if tp[0] in members[m]]
            if eligible:
                owned[min(eligible, key=lambda m: (len(owned[m]), m))].append(tp)
    return {m: assignment_of(set(owned[m])) for m in order}


def range_(members: Subscriptions, partitions: Mapping[uuid.UUID, int],
           previous: Mapping[str, Assignment], instance_ids: Mapping[str, str] | None = None, /
           ) -> dict[str, Assignment]:
    """Per topic, contiguous ranges to the subscribed members, the first ones one partition
    more when it does not divide (Kafka's RangeAssignor). The members in Kafka's order: static
    members first, by instance id, then the others by member id — so that when every member
    subscribes to the same topics, partition *n* of topics with equal partition counts goes to
    one member (co-partitioning, which Kafka Streams' tasks rely on), and static members keep
    their ranges across restarts. Not sticky otherwise: a member joining or leaving moves the
    ranges after its place in that order (as in Kafka)."""
    static = instance_ids or {}
    order = sorted(members, key=lambda m: (0, static[m], m) if m in static else (1, "", m))
    owned: dict[str, set[tuple[uuid.UUID, int]]] = {m: set() for m in members}
    for topic_id, count in partitions.items():
        subscribed = [m for m in order if topic_id in members[m]]
        if not subscribed:
            continue
        share, extra = divmod(count, len(subscribed))
        start = 0
        for i, m in enumerate(subscribed):
            n = share + (1 if i < extra else 0)
            owned[m] |= {(topic_id, p) for p in range(start, start + n)}
            start += n
    return {m: assignment_of(tps) for m, tps in owned.items()}


ASSIGNORS: dict[str, Assignor] = {"uniform": uniform, "range": range_}
DEFAULT_ASSIGNOR = "uniform"
