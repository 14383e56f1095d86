"""The topology: a graph of named processor nodes from source topics to sink topics, and
the state stores its nodes use. A :class:`Topology` is a description; tasks (the test
driver's, a runtime's) instantiate fresh processors and stores from it, so one topology
can run many times.

As in Kafka Streams, a topology falls apart into **sub-topologies**: the groups of nodes
joined by parent-child edges or by a shared store. A repartition topic is written by a sink
of one sub-topology and read by a source of another, so it is where they split. A runtime
runs each sub-topology as one task per partition of its source topics. Global tables (read
whole by every instance) are not part of any sub-topology.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tomyum.streams._record import Record
from tomyum.streams.processor import Processor, ProcessorContext
from tomyum.streams.serdes import Serde, TimestampExtractor

log = logging.getLogger(__name__)

__all__ = ["Materialized", "NodeSpec", "SourceSpec", "StoreSpec", "SubTopology", "Topology"]

StoreType = Literal["persistent", "in_memory"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Materialized:
    """How an aggregation or table is stored (Kafka's ``Materialized``): a name (generated
    when ``None``), serdes (the stream's or the config's defaults when ``None``), the engine
    (``persistent`` is SQLite, Kafka's default being persistent too), whether writes go to a
    changelog, and for window stores the retention (default: window size plus grace).

    ``history_retention_ms`` makes a table's store a versioned one (KIP-889, Kafka's
    ``Stores.persistentVersionedKeyValueStore(name, historyRetention)``): every value a key
    had, readable as of a time within the history (see
    :class:`~tomyum.streams.state.versioned.VersionedKeyValueStore`)."""

    store_name: str | None = None
    key_serde: Serde[Any] | None = None
    value_serde: Serde[Any] | None = None
    store_type: StoreType = "persistent"
    logging_enabled: bool = True
    retention_ms: int | None = None
    history_retention_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSpec:
    name: str
    kind: Literal["key_value", "window", "session"]
    key_serde: Serde[Any] | None
    value_serde: Serde[Any] | None
    store_type: StoreType
    logging_enabled: bool
    window_size_ms: int = 0
    retention_ms: int = 0
    timestamped: bool = False
    """A key-value store that keeps each value's timestamp (tables and aggregations)."""
    history_retention_ms: int | None = None
    """A versioned key-value store's history retention; ``None`` for any other store."""
    cacheable: bool = False
    """A store of an aggregation (key-value, window or session) or a source table: behind the
    record cache when ``statestore.cache.max.bytes`` is above 0 (Kafka's caching-enabled stores)."""

    @property
    def changelog_topic(self) -> str:
        """Without the application id prefix: ``<store>-changelog``."""
        return f"{self.name}-changelog"


@dataclass(slots=True, kw_only=True)
class NodeSpec:
    name: str
    supplier: Callable[[], Processor]
    children: list[str] = field(default_factory=list)
    stores: tuple[str, ...] = ()
    sink_topic: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSpec:
    topic: str
    node: str
    key_serde: Serde[Any] | None
    value_serde: Serde[Any] | None
    timestamp_extractor: TimestampExtractor | None


class SourceProcessor(Processor):
    """Deserializes a consumed record, sets its event time and forwards it."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.partition_time: dict[int, int] = {}

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        config = context.config
        self.key_serde = self.spec.key_serde or config.default_key_serde
        self.value_serde = self.spec.value_serde or config.default_value_serde
        self.extractor = self.spec.timestamp_extractor or config.default_timestamp_extractor

    def process(self, record: Record[Any, Any]) -> None:
        try:
            decoded = Record(key=self.key_serde.deserialize(record.key), value=self.value_serde.deserialize(record.value),
                             timestamp=record.timestamp, headers=record.headers, topic=record.topic,
                             partition=record.partition, offset=record.offset)
        except Exception as e:
            where = f"{record.topic}[{record.partition}] offset {record.offset}"
            if self.context.config.deserialization_exception_handler == "log_and_continue":
                log.warning("skipping a record that cannot be deserialized at %s: %s", where, e)
                self.context.record_dropped("cannot be deserialized", record)
                return
            raise ValueError(f"cannot deserialize the record at {where}: {e} (give the source the right serdes, or "
                             "StreamsConfig(deserialization_exception_handler='log_and_continue') to skip such "
                             "records)") from e
        partition = record.partition or 0
        timestamp = self.extractor(decoded, self.partition_time.get(partition, -1))
        if timestamp < 0:
            self.context.record_dropped("negative timestamp", record)
            return
        self.partition_time[partition] = max(self.partition_time.get(partition, -1), timestamp)
        self.context.advance_stream_time(timestamp)
        self.context.forward(decoded if timestamp == decoded.timestamp else decoded.with_timestamp(timestamp))


class SinkProcessor(Processor):
    """Serializes records and hands them to the task's record collector, which partitions
    them by key unless ``partition_of(record)`` names a partition."""

    def __init__(self, topic: str, key_serde: Serde[Any] | None, value_serde: Serde[Any] | None,
                 partition_of: Callable[[Record[Any, Any]], int | None] | None = None) -> None:
        self.topic = topic
        self._key_serde = key_serde
        self._value_serde = value_serde
        self.partition_of = partition_of

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.key_serde = self._key_serde or context.config.default_key_serde
        self.value_serde = self._value_serde or context.config.default_value_serde

    def process(self, record: Record[Any, Any]) -> None:
        try:
            key = self.key_serde.serialize(record.key)
        except (TypeError, ValueError) as e:
            raise TypeError(f"cannot serialize a key for topic {self.topic}: {e}{self._hint('key')}") from e
        try:
            value = self.value_serde.serialize(record.value)
        except (TypeError, ValueError) as e:
            raise TypeError(f"cannot serialize a value for topic {self.topic}: {e}{self._hint('value')}") from e
        partition = None if self.partition_of is None else self.partition_of(record)
        raw = Record(key=key, value=value, timestamp=record.timestamp, headers=record.headers, partition=partition)
        self.context.send(self.topic, raw, self.key_serde, self.value_serde)

    def _hint(self, part: str) -> str:
        if self.topic.endswith("-repartition"):
            return (f" (an internal repartition topic: give the {part} serde to the operator that repartitions, "
                    f"e.g. group_by(..., {part}_serde=Serdes.string()), or set default_{part}_serde)")
        return f" (give to(..., {part}_serde=...))"


@dataclass(frozen=True, slots=True)
class SubTopology:
    """Nodes that must run together: ``id`` numbers them in the order their first node was
    added (Kafka's numbering); tasks of it are ``<id>_<partition>``."""

    id: int
    nodes: tuple[str, ...]
    source_topics: tuple[str, ...]
    sink_topics: tuple[str, ...]
    stores: tuple[str, ...]


@dataclass(slots=True)
class Topology:
    """Nodes by name, sources by topic, stores by name. Built by
    :class:`~tomyum.streams.StreamsBuilder`; read by tasks.

    ``repartition_topics`` maps each internal repartition topic (named without the
    application id, which a runtime puts in front) to its partition count, ``None`` when it
    follows the topics upstream. ``global_topics`` and ``global_stores`` belong to global
    tables."""

    nodes: dict[str, NodeSpec] = field(default_factory=dict)
    sources: dict[str, SourceSpec] = field(default_factory=dict)
    stores: dict[str, StoreSpec] = field(default_factory=dict)
    sink_topics: set[str] = field(default_factory=set)
    repartition_topics: dict[str, int | None] = field(default_factory=dict)
    global_topics: set[str] = field(default_factory=set)
    global_stores: set[str] = field(default_factory=set)

    def add_node(self, name: str, supplier: Callable[[], Processor], parents: Sequence[str],
                 stores: tuple[str, ...] = (), sink_topic: str | None = None) -> str:
        if name in self.nodes:
            raise ValueError(f"a node named {name} already exists")
        self.nodes[name] = NodeSpec(name=name, supplier=supplier, stores=stores, sink_topic=sink_topic)
        for parent in parents:
            self.nodes[parent].children.append(name)
        return name

    def add_source(self, spec: SourceSpec) -> None:
        if spec.topic in self.sources:
            raise ValueError(f"topic {spec.topic} is already a source of this topology")
        self.sources[spec.topic] = spec

    def add_store(self, spec: StoreSpec) -> None:
        if spec.name in self.stores:
            raise ValueError(f"a store named {spec.name} already exists")
        self.stores[spec.name] = spec

    def global_nodes(self) -> tuple[str, ...]:
        """The nodes of global tables: their sources and everything below them."""
        found: list[str] = []
        todo = [spec.node for topic, spec in self.sources.items() if topic in self.global_topics]
        while todo:
            name = todo.pop()
            if name not in found:
                found.append(name)
                todo += self.nodes[name].children
        return tuple(n for n in self.nodes if n in found)

    def subtopologies(self) -> list[SubTopology]:
        """The topology's sub-topologies (global tables left out), numbered from 0."""
        skip = set(self.global_nodes())
        parent = {name: name for name in self.nodes if name not in skip}

        def root(name: str) -> str:
            while parent[name] != name:
                parent[name] = parent[parent[name]]
                name = parent[name]
            return name

        def join(a: str, b: str) -> None:
            parent[root(a)] = root(b)

        by_store: dict[str, str] = {}
        for name, node in self.nodes.items():
            if name in skip:
                continue
            for child in node.children:
                join(child, name)
            for store in node.stores:
                if store in self.global_stores:
                    continue
                if store in by_store:
                    join(name, by_store[store])
                else:
                    by_store[store] = name
        groups: dict[str, list[str]] = {}
        for name in parent:
            groups.setdefault(root(name), []).append(name)
        result = []
        for index, names in enumerate(groups.values()):
            members = set(names)
            result.append(SubTopology(
                id=index, nodes=tuple(names),
                source_topics=tuple(t for t, spec in self.sources.items() if spec.node in members),
                sink_topics=tuple(dict.fromkeys(t for n in names if (t := self.nodes[n].sink_topic) is not None)),
                stores=tuple(dict.fromkeys(s for n in names for s in self.nodes[n].stores
                                           if s not in self.global_stores)),
            ))
        return result

    def describe(self) -> str:
        """One line per node: ``name -> children [stores]``, sources first."""
        lines = [f"source {topic} -> {spec.node}" for topic, spec in sorted(self.sources.items())]
        for node in self.nodes.values():
            stores = f" [{', '.join(node.stores)}]" if node.stores else ""
            lines.append(f"{node.name} -> {', '.join(node.children) or '(none)'}{stores}")
        return "\n".join(lines)
