"""Internal: the topology under construction and Kafka-style generated names
(``KSTREAM-FILTER-0000000003``), shared by every DSL object of one builder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tomyum.streams.processor import Processor
from tomyum.streams.serdes import RecordTimestampExtractor, Serde
from tomyum.streams.topology import Materialized, SinkProcessor, SourceProcessor, SourceSpec, StoreSpec, Topology


class InternalBuilder:
    def __init__(self) -> None:
        self.topology = Topology()
        self._index = 0

    def new_name(self, prefix: str) -> str:
        name = f"{prefix}-{self._index:010d}"
        self._index += 1
        return name

    def add(self, prefix: str, supplier: Callable[[], Processor], parents: Sequence[str],
            stores: tuple[str, ...] = (), sink_topic: str | None = None, *, name: str | None = None) -> str:
        """Add a node named ``name`` (Kafka's ``Named``), else a generated name from ``prefix``."""
        return self.topology.add_node(name or self.new_name(prefix), supplier, parents, stores, sink_topic)

    def sink(self, parent: str, topic: str, key_serde: Serde[Any] | None, value_serde: Serde[Any] | None,
             partition_of: Callable[[Any], int | None] | None = None, *, name: str | None = None) -> str:
        node = self.add("KSTREAM-SINK", lambda: SinkProcessor(topic, key_serde, value_serde, partition_of), [parent],
                        sink_topic=topic, name=name)
        self.topology.sink_topics.add(topic)
        return node

    def source(self, topics: Sequence[str], key_serde: Serde[Any] | None, value_serde: Serde[Any] | None,
               timestamp_extractor: Any = None) -> str:
        name = self.new_name("KSTREAM-SOURCE")
        specs = [SourceSpec(topic=t, node=name, key_serde=key_serde, value_serde=value_serde,
                            timestamp_extractor=timestamp_extractor) for t in topics]
        self.topology.add_node(name, lambda: SourceProcessor(specs[0]), [])
        for spec in specs:
            self.topology.add_source(spec)
        return name

    def repartition(self, parent: str, key_serde: Serde[Any] | None, value_serde: Serde[Any] | None,
                    name: str | None = None, num_partitions: int | None = None) -> str:
        """Route the records of ``parent`` through the internal topic ``<name>-repartition``
        (partitioned by key, as any keyed record), so that each key lands in one task;
        returns the node that reads it back. The records keep their timestamps."""
        if num_partitions is not None and num_partitions < 1:
            raise ValueError(f"num_partitions must be at least 1, got {num_partitions}")
        topic = f"{name or self.new_name('KSTREAM-REPARTITION')}-repartition"
        if topic in self.topology.repartition_topics:
            raise ValueError(f"a repartition topic named {topic} already exists; give another name")
        self.topology.repartition_topics[topic] = num_partitions
        self.sink(parent, topic, key_serde, value_serde)
        return self.source([topic], key_serde, value_serde, RecordTimestampExtractor)

    def add_store(self, materialized: Materialized | None, kind: str, key_serde: Serde[Any] | None,
                  value_serde: Serde[Any] | None, *, window_size_ms: int = 0, retention_ms: int = 0,
                  timestamped: bool = False, cacheable: bool = False) -> str:
        """Register the store an operator materializes into; returns its name. Serdes given
        in ``materialized`` win over the ones the operator infers."""
        m = materialized or Materialized()
        if m.retention_ms is not None:
            if m.retention_ms < retention_ms:
                raise ValueError(f"retention_ms ({m.retention_ms}) must cover window size plus grace ({retention_ms})")
            retention_ms = m.retention_ms
        name = m.store_name or self.new_name("KSTREAM-AGGREGATE-STATE-STORE")
        self.topology.add_store(StoreSpec(
            name=name, kind=kind,  # type: ignore[arg-type]
            key_serde=m.key_serde or key_serde, value_serde=m.value_serde or value_serde,
            store_type=m.store_type, logging_enabled=m.logging_enabled,
            window_size_ms=window_size_ms, retention_ms=retention_ms, timestamped=timestamped,
            history_retention_ms=m.history_retention_ms if kind == "key_value" else None,
            cacheable=cacheable and m.history_retention_ms is None,
        ))
        return name
