"""A stream task: one instance of a sub-topology's processors and stores, fed one record at
a time. The test driver runs one task (``0_0``) holding the whole topology; a runtime runs
one per sub-topology and input partition, and one "global" task for the global tables, whose
stores every other task of the instance reads.

Not thread-safe: a task runs on one thread. Stores are created in ``__init__`` (the cacheable
ones behind the instance's record cache, when it has one; over the engines ``inner_stores``
hands over, when a promoted standby's in-memory stores carry on); ``commit`` flushes the cache and
the stores (the point where a runtime also commits offsets); ``close`` closes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tomyum.streams._record import Record
from tomyum.streams.processor import Processor, ProcessorContext, StreamsConfig
from tomyum.streams.punctuation import Cancellable, PunctuationQueue, PunctuationType, Punctuator
from tomyum.streams.serdes import Serde
from tomyum.streams.state.base import BytesStore, ChangelogSink, KeyValueStore
from tomyum.streams.state.caching import CachingKeyValueStore, CachingRetainedKeyValue, ThreadCache
from tomyum.streams.state.memory import InMemoryBytesStore
from tomyum.streams.state.sqlite import SqliteBytesStore
from tomyum.streams.state.versioned import VersionedKeyValueStore
from tomyum.streams.state.window import SessionStore, WindowStore
from tomyum.streams.topology import StoreSpec, Topology

RecordCollector = Callable[[str, Record[bytes | None, bytes | None], Serde[Any], Serde[Any]], None]


class StreamTask:
    def __init__(
        self,
        topology: Topology,
        config: StreamsConfig,
        *,
        task_id: str,
        state_dir: Path,
        collector: RecordCollector,
        changelog: ChangelogSink,
        wall_clock_ms: int = 0,
        nodes: Sequence[str] | None = None,
        stores: Sequence[str] | None = None,
        global_stores: Mapping[str, Any] | None = None,
        cache: ThreadCache | None = None,
        inner_stores: Mapping[str, BytesStore] | None = None,
    ) -> None:
        self.topology = topology
        self.config = config
        self.task_id = task_id
        self.state_dir = state_dir
        self.stream_time_ms = -1
        self.wall_clock_ms = wall_clock_ms
        self.dropped_records = 0
        self._collector = collector
        self._punctuations = {kind: PunctuationQueue() for kind in PunctuationType}
        self._cache = cache
        self.inner_stores = inner_stores or {}
        """Engines to take over instead of new ones: a promoted standby's in-memory stores."""
        self.stores: dict[str, Any] = {
            name: self._make_store(topology.stores[name], changelog)
            for name in (topology.stores if stores is None else stores)
        }
        self.global_stores: Mapping[str, Any] = global_stores or {}
        self.processors: dict[str, Processor] = {
            name: topology.nodes[name].supplier() for name in (topology.nodes if nodes is None else nodes)
        }
        self._children: dict[str, list[Processor]] = {
            name: [self.processors[c] for c in topology.nodes[name].children if c in self.processors]
            for name in self.processors
        }
        for name, processor in self.processors.items():
            processor.init(ProcessorContext(self, name))

    def _make_store(self, spec: StoreSpec, changelog: ChangelogSink) -> Any:
        inner: BytesStore
        if spec.name in self.inner_stores:
            inner = self.inner_stores[spec.name]
        elif spec.store_type == "in_memory":
            inner = InMemoryBytesStore(spec.name)
        else:
            path = self.state_dir / self.config.application_id / self.task_id / "sqlite" / f"{spec.name}.db"
            inner = SqliteBytesStore(spec.name, path)
        key_serde = spec.key_serde or self.config.default_key_serde
        value_serde = spec.value_serde or self.config.default_value_serde
        sink = changelog if spec.logging_enabled else None
        cache = self._cache if spec.cacheable and self._cache is not None and self._cache.max_bytes > 0 \
            and spec.name not in self.topology.global_stores else None
        if spec.kind in ("window", "session"):
            windowed: WindowStore[Any, Any] | SessionStore[Any, Any] = WindowStore(
                inner, key_serde, value_serde, window_size_ms=spec.window_size_ms, retention_ms=spec.retention_ms,
                changelog=sink) if spec.kind == "window" else SessionStore(inner, key_serde, value_serde,
                                                                          spec.retention_ms, sink)
            if cache is not None:
                windowed.enable_cache(cache)
            return windowed
        if spec.history_retention_ms is not None:
            return VersionedKeyValueStore(inner, key_serde, value_serde, spec.history_retention_ms, sink)
        store = KeyValueStore(inner, key_serde, value_serde, sink, timestamped=spec.timestamped)
        return store if cache is None else CachingKeyValueStore(store, cache)

    def process(self, record: Record[bytes | None, bytes | None]) -> None:
        """Run one consumed record (raw bytes, with topic, partition and offset) through."""
        assert record.topic is not None
        source = self.topology.sources[record.topic]
        self.processors[source.node].process(record)
        self._punctuations[PunctuationType.STREAM_TIME].maybe_punctuate(self.stream_time_ms)

    def schedule(self, node: str, interval_ms: int, kind: PunctuationType, punctuator: Punctuator) -> Cancellable:
        # Kafka aligns stream-time schedules to 0 and wall-clock ones to now.
        first = 0 if kind is PunctuationType.STREAM_TIME else self.wall_clock_ms + interval_ms
        return self._punctuations[kind].schedule(node, first, interval_ms, punctuator)

    def advance_wall_clock(self, ms: int) -> None:
        """Move wall-clock time forward and fire the wall-clock punctuators that are due."""
        self.wall_clock_ms += ms
        self._punctuations[PunctuationType.WALL_CLOCK_TIME].maybe_punctuate(self.wall_clock_ms)

    def forward(self, parent: str, record: Record[Any, Any], child: str | None) -> None:
        if child is not None:
            self.processors[child].process(record)
            return
        for processor in self._children[parent]:
            processor.process(record)

    def send(self, topic: str, record: Record[bytes | None, bytes | None], key_serde: Serde[Any],
             value_serde: Serde[Any]) -> None:
        self._collector(topic, record, key_serde, value_serde)

    def _cached(self) -> list[CachingKeyValueStore[Any, Any] | CachingRetainedKeyValue[Any]]:
        """The record cache's layers of this task's stores."""
        layers: list[CachingKeyValueStore[Any, Any] | CachingRetainedKeyValue[Any]] = []
        for store in self.stores.values():
            if isinstance(store, CachingKeyValueStore):
                layers.append(store)
            elif isinstance(store, WindowStore | SessionStore) and store.cached is not None:
                layers.append(store.cached)
        return layers

    @property
    def cache_dirty(self) -> bool:
        """Whether the record cache holds writes of this task's stores not yet flushed."""
        return any(layer.dirty for layer in self._cached())

    def commit(self) -> None:
        """Flush the record cache (what it forwards may fill another store's, so until every
        one is clean), then the stores."""
        cached = self._cached()
        while any(store.dirty for store in cached):
            for store in cached:
                store.flush_cache()
        for store in self.stores.values():
            store.flush()

    def close(self) -> None:
        for processor in self.processors.values():
            processor.close()
        for store in self.stores.values():
            store.close()
