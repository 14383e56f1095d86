"""StreamsBuilder: where a topology starts (Kafka Streams' ``StreamsBuilder``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tomyum.streams._builder import InternalBuilder
from tomyum.streams._processors import TableSourceProcessor
from tomyum.streams.kstream import KStream
from tomyum.streams.ktable import KTable
from tomyum.streams.serdes import Serde, TimestampExtractor
from tomyum.streams.topology import Materialized, Topology

__all__ = ["StreamsBuilder"]


class StreamsBuilder:
    """Declare sources with :meth:`stream` and :meth:`table`, chain operators, then
    :meth:`build`. Serdes left as ``None`` fall back to the config's defaults."""

    def __init__(self) -> None:
        self._builder = InternalBuilder()

    def _source(self, topics: Sequence[str], key_serde: Serde[Any] | None, value_serde: Serde[Any] | None,
                timestamp_extractor: TimestampExtractor | None) -> str:
        return self._builder.source(topics, key_serde, value_serde, timestamp_extractor)

    def stream(self, topics: str | Sequence[str], *, key_serde: Serde[Any] | None = None,
               value_serde: Serde[Any] | None = None,
               timestamp_extractor: TimestampExtractor | None = None) -> KStream[Any, Any]:
        """A stream of the records of one topic or several (read as one stream)."""
        names = [topics] if isinstance(topics, str) else list(topics)
        node = self._source(names, key_serde, value_serde, timestamp_extractor)
        return KStream(self._builder, node, key_serde, value_serde)

    def table(self, topic: str, *, key_serde: Serde[Any] | None = None, value_serde: Serde[Any] | None = None,
              timestamp_extractor: TimestampExtractor | None = None,
              materialized: Materialized | None = None) -> KTable[Any, Any]:
        """The topic read as a changelog: the latest value per key, ``None`` deleting. The
        table is materialized in a store (Kafka may skip that for source tables whose
        topic can serve as the changelog; here the store also logs, for now)."""
        source = self._source([topic], key_serde, value_serde, timestamp_extractor)
        store = self._builder.add_store(materialized, "key_value", key_serde, value_serde, timestamped=True,
                                        cacheable=True)
        node = self._builder.add("KTABLE-SOURCE", lambda: TableSourceProcessor(store), [source], (store,))
        return KTable(self._builder, node, key_serde, value_serde, store_name=store)

    def global_table(self, topic: str, *, key_serde: Serde[Any] | None = None,
                     value_serde: Serde[Any] | None = None,
                     materialized: Materialized | None = None) -> KTable[Any, Any]:
        """A table of every partition of ``topic``, for joins that look it up by any key
        (Kafka's GlobalKTable: ``stream.join(table, joiner, key_selector=...)``). Every
        instance of an application reads the whole topic into its own copy, outside the
        consumer group, before it starts processing, and keeps it up to date; the topic is the
        table's changelog, so the store logs nothing."""
        m = materialized or Materialized()
        table = self.table(topic, key_serde=key_serde, value_serde=value_serde,
                           materialized=Materialized(store_name=m.store_name, key_serde=m.key_serde,
                                                     value_serde=m.value_serde, store_type=m.store_type,
                                                     logging_enabled=False))
        assert table.store_name is not None
        self._builder.topology.global_topics.add(topic)
        self._builder.topology.global_stores.add(table.store_name)
        return table

    def add_state_store(self, materialized: Materialized) -> str:
        """A key-value store for processors added with ``KStream.process``; it needs a
        ``store_name``, which this returns."""
        if materialized.store_name is None:
            raise ValueError("add_state_store needs Materialized(store_name=...)")
        return self._builder.add_store(materialized, "key_value", None, None)

    def build(self) -> Topology:
        return self._builder.topology
