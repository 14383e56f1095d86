"""Interactive queries across instances: which instance holds which tasks (Kafka Streams'
``HostInfo``, ``StreamsMetadata``, ``KeyQueryMetadata`` and ``StreamsMetadataState``).

Each instance names its endpoint with ``application.server`` (``host:port``, where the
application answers queries: its own HTTP or RPC server). Kafka Streams puts that endpoint in
the subscription *user data* of the group protocol and every instance learns the map from the
assignment. librdkafka's built-in assignors (range, roundrobin, cooperative-sticky) give the
application no way to set user data, and confluent-kafka does not expose librdkafka's
custom-assignor interface, so tomyum.streams takes another channel that is still **the group
itself**: the endpoint goes at the end of the main consumer's ``client.id``
(``<application.id>-<process id>-StreamThread-1-consumer@host:port``). The group coordinator
keeps every member's client id with its current assignment, and DescribeGroups answers both
(Kafka's ``ConsumerGroupDescription``). So the map is the group's current generation — no extra
topic to write, read, compact or clean after a crash; an instance that dies leaves the map when
the group drops it; and it works the same on Apache Kafka.

The pure part, here, turns (client id, assigned partitions) pairs into :class:`StreamsMetadata`
and finds a key's partition as Kafka's default partitioner does (murmur2 of the serialized key).
:class:`InstanceMap` caches a DescribeGroups answer until the next rebalance (the standby placement,
which follows a moment later, is read at every call); any thread may use it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tomyum.streams._plan import Plan
from tomyum.streams.serdes import Serde
from tomyum.streams.topology import Topology

__all__ = ["HostInfo", "InstanceMap", "KeyQueryMetadata", "StreamsMetadata", "consumer_client_id", "murmur2",
           "server_of"]

ENDPOINT_MARK = "@"
"""What separates the client id from ``application.server`` in the main consumer's client id."""


@dataclass(frozen=True, slots=True, order=True)
class HostInfo:
    """An instance's ``application.server``: where it answers queries."""

    host: str
    port: int

    @classmethod
    def parse(cls, value: str) -> HostInfo:
        """``host:port`` (``[::1]:8080`` for IPv6); ValueError naming what is wrong."""
        host, sep, port = value.strip().rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            raise ValueError(f"application.server must be HOST:PORT, not {value!r}")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


UNAVAILABLE = HostInfo("unavailable", -1)
"""Kafka's ``HostInfo.unavailable()``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamsMetadata:
    """One instance of the application: its endpoint, the stores of the tasks it runs, and the
    source partitions assigned to it (Kafka's ``StreamsMetadata``); with standby replicas, the
    stores and source partitions of the tasks it holds standbys of."""

    host_info: HostInfo
    state_store_names: frozenset[str]
    topic_partitions: frozenset[tuple[str, int]]
    standby_state_store_names: frozenset[str] = frozenset()
    standby_topic_partitions: frozenset[tuple[str, int]] = frozenset()

    @property
    def host(self) -> str:
        return self.host_info.host

    @property
    def port(self) -> int:
        return self.host_info.port


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyQueryMetadata:
    """Where a key of a store lives: the instance running its active task, those holding a
    standby of it, and its partition (Kafka's ``KeyQueryMetadata``)."""

    active_host: HostInfo
    standby_hosts: frozenset[HostInfo] = field(default_factory=frozenset)
    partition: int


NOT_AVAILABLE = KeyQueryMetadata(active_host=UNAVAILABLE, partition=-1)
"""Kafka's ``KeyQueryMetadata.NOT_AVAILABLE``: no instance holds the key's task right now
(a rebalance is under way, or the owner has no ``application.server``)."""


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` (seed 0x9747b28c), as a signed 32-bit int."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = data[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def default_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def consumer_client_id(base: str, server: HostInfo | None) -> str:
    return base if server is None else f"{base}{ENDPOINT_MARK}{server}"


def server_of(client_id: str) -> HostInfo | None:
    """The ``application.server`` a member's client id carries, if any."""
    _, sep, endpoint = client_id.rpartition(ENDPOINT_MARK)
    if not sep:
        return None
    try:
        return HostInfo.parse(endpoint)
    except ValueError:
        return None


def streams_metadata(topology: Topology, the_plan: Plan, broker_topics: Mapping[str, str],
                     members: Iterable[tuple[str, Iterable[tuple[str, int]]]],
                     standbys: Mapping[str, Iterable[str]] | None = None) -> list[StreamsMetadata]:
    """The instances among ``members`` — (client id, assigned topic partitions) — that declare
    an ``application.server``, sorted by endpoint. ``broker_topics``: a source topic's name on
    the broker -> its name in the topology; ``standbys``: client id -> the standby tasks it
    holds (``<sub-topology>_<partition>``)."""
    partitions: dict[HostInfo, set[tuple[str, int]]] = {}
    standby_tasks: dict[HostInfo, set[str]] = {}
    for client_id, assigned in members:
        server = server_of(client_id)
        if server is not None:
            partitions.setdefault(server, set()).update(assigned)
            standby_tasks.setdefault(server, set()).update((standbys or {}).get(client_id, ()))
    on_broker = {name: topic for topic, name in broker_topics.items()}
    out = []
    for server, tps in sorted(partitions.items()):
        subs = {the_plan.subtopology_of_topic[broker_topics[t]] for t, _ in tps if t in broker_topics}
        stores = {s for s, sub in the_plan.subtopology_of_store.items() if sub in subs} | set(topology.global_stores)
        held = {(int(sub), int(p)) for sub, _, p in (task.partition("_") for task in standby_tasks[server])}
        standby_tps = {(on_broker.get(t, t), p) for sub, p in held
                       for t, of in the_plan.subtopology_of_topic.items() if of == sub}
        standby_stores = {s for s, sub in the_plan.subtopology_of_store.items() if sub in {sub for sub, _ in held}}
        out.append(StreamsMetadata(host_info=server, state_store_names=frozenset(stores),
                                   topic_partitions=frozenset(tps), standby_state_store_names=frozenset(standby_stores),
                                   standby_topic_partitions=frozenset(standby_tps)))
    return out


KeySerializer = Serde[Any] | Callable[[Any], bytes]


class InstanceMap:
    """The application's instances as its group describes them, kept until the next rebalance
    (:meth:`invalidate`, called by the rebalance callbacks). ``describe()`` returns the group's
    members as (client id, assigned partitions), or None while the group is not stable;
    ``standbys()`` the standby tasks of each client id, as last placed (see
    :mod:`tomyum.streams._standby`)."""

    def __init__(self, topology: Topology, broker_topics: Callable[[], Mapping[str, str]],
                 the_plan: Callable[[], Plan | None],
                 describe: Callable[[], list[tuple[str, list[tuple[str, int]]]] | None],
                 local: HostInfo | None, standbys: Callable[[], Mapping[str, Iterable[str]]] = dict) -> None:
        self.topology = topology
        self._standbys = standbys
        self._broker_topics = broker_topics
        self._plan = the_plan
        self._describe = describe
        self.local = local
        self._lock = threading.Lock()
        self._generation = 0
        self._cached: list[tuple[str, list[tuple[str, int]]]] | None = None
        """The group's members as the last DescribeGroups of this generation answered."""

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._cached = None

    def all_metadata(self) -> list[StreamsMetadata]:
        the_plan = self._plan()
        if the_plan is None:
            return []
        with self._lock:
            members = self._cached
            generation = self._generation
        if members is None:
            members = self._describe()
            if members is None:
                return []
            with self._lock:
                if generation == self._generation:  # no rebalance began while we asked
                    self._cached = list(members)
        # the standbys are placed a moment after each rebalance: read them at every call
        return streams_metadata(self.topology, the_plan, self._broker_topics(), members, self._standbys())

    def all_metadata_for_store(self, store: str) -> list[StreamsMetadata]:
        self._known(store)
        return [m for m in self.all_metadata() if store in m.state_store_names]

    def for_key(self, store: str, key: Any, serializer: KeySerializer | None = None) -> KeyQueryMetadata:
        self._known(store)
        if store in self.topology.global_stores:  # every instance holds all of it
            return KeyQueryMetadata(active_host=self.local or UNAVAILABLE, partition=-1)
        the_plan = self._plan()
        if the_plan is None:
            return NOT_AVAILABLE
        sub = the_plan.subtopology_of_store[store]
        key_bytes = self._serialize(store, key, serializer)
        partition = default_partition(key_bytes, the_plan.tasks[sub])
        sources = {t for t, s in the_plan.subtopology_of_topic.items() if s == sub}
        def holds(tps: frozenset[tuple[str, int]]) -> bool:
            return any(tp[1] == partition and self._broker_topics().get(tp[0]) in sources for tp in tps)

        instances = self.all_metadata()
        standby_hosts = frozenset(i.host_info for i in instances if holds(i.standby_topic_partitions))
        for instance in instances:
            if holds(instance.topic_partitions):
                return KeyQueryMetadata(active_host=instance.host_info, standby_hosts=standby_hosts,
                                        partition=partition)
        return NOT_AVAILABLE

    def _known(self, store: str) -> None:
        if store not in self.topology.stores:
            raise KeyError(f"no store named {store}; stores: {sorted(self.topology.stores)}")

    def _serialize(self, store: str, key: Any, serializer: KeySerializer | None) -> bytes:
        if serializer is None:
            serializer = self.topology.stores[store].key_serde
        if serializer is None:
            raise ValueError(f"store {store} has no key serde of its own: pass the serializer of its keys")
        data = serializer.serialize(key) if isinstance(serializer, Serde) else serializer(key)
        if data is None:
            raise ValueError("a None key has no partition")
        return data
