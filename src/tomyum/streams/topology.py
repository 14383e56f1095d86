"""The topology: a graph of named processor nodes from source topics to sink topics, and
the state stores its nodes use. A :class:`Topology` is a description; tasks (the test
driver's, a runtime's) instantiate fresh processors and stores from it, so one topology
can run many times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tomyum.streams._record import Record
from tomyum.streams.processor import Processor, ProcessorContext
from tomyum.streams.serdes import Serde, TimestampExtractor

__all__ = ["Materialized", "NodeSpec", "SourceSpec", "StoreSpec", "Topology"]

StoreType = Literal["persistent", "in_memory"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Materialized:
    """How an aggregation or table is stored (Kafka's ``Materialized``): a name (generated
    when ``None``), serdes (the stream's or the config's defaults when ``None``), the engine
    (``persistent`` is SQLite, Kafka's default being persistent too), whether writes go to a
    changelog, and for window stores the retention (default: window size plus grace)."""

    store_name: str | None = None
    key_serde: Serde[Any] | None = None
    value_serde: Serde[Any] | None = None
    store_type: StoreType = "persistent"
    logging_enabled: bool = True
    retention_ms: int | None = None


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
        decoded = record.with_key(self.key_serde.deserialize(record.key)).with_value(
            self.value_serde.deserialize(record.value)
        )
        partition = record.partition or 0
        timestamp = self.extractor(decoded, self.partition_time.get(partition, -1))
        if timestamp < 0:
            self.context.record_dropped("negative timestamp", record)
            return
        self.partition_time[partition] = max(self.partition_time.get(partition, -1), timestamp)
        self.context.advance_stream_time(timestamp)
        self.context.forward(decoded.with_timestamp(timestamp))


class SinkProcessor(Processor):
    """Serializes records and hands them to the task's record collector."""

    def __init__(self, topic: str, key_serde: Serde[Any] | None, value_serde: Serde[Any] | None) -> None:
        self.topic = topic
        self._key_serde = key_serde
        self._value_serde = value_serde

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.key_serde = self._key_serde or context.config.default_key_serde
        self.value_serde = self._value_serde or context.config.default_value_serde

    def process(self, record: Record[Any, Any]) -> None:
        raw = record.with_key(self.key_serde.serialize(record.key)).with_value(
            self.value_serde.serialize(record.value)
        )
        self.context.send(self.topic, raw, self.key_serde, self.value_serde)


@dataclass(slots=True)
class Topology:
    """Nodes by name, sources by topic, stores by name. Built by
    :class:`~tomyum.streams.StreamsBuilder`; read by tasks."""

    nodes: dict[str, NodeSpec] = field(default_factory=dict)
    sources: dict[str, SourceSpec] = field(default_factory=dict)
    stores: dict[str, StoreSpec] = field(default_factory=dict)
    sink_topics: set[str] = field(default_factory=set)

    def add_node(self, name: str, supplier: Callable[[], Processor], parents: Sequence[str],
                 stores: tuple[str, ...] = ()) -> str:
        if name in self.nodes:
            raise ValueError(f"a node named {name} already exists")
        self.nodes[name] = NodeSpec(name=name, supplier=supplier, stores=stores)
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

    def describe(self) -> str:
        """One line per node: ``name -> children [stores]``, sources first."""
        lines = [f"source {topic} -> {spec.node}" for topic, spec in sorted(self.sources.items())]
        for node in self.nodes.values():
            stores = f" [{', '.join(node.stores)}]" if node.stores else ""
            lines.append(f"{node.name} -> {', '.join(node.children) or '(none)'}{stores}")
        return "\n".join(lines)
