"""Internal: the topology under construction and Kafka-style generated names
(``KSTREAM-FILTER-0000000003``), shared by every DSL object of one builder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tomyum.streams.processor import Processor
from tomyum.streams.serdes import Serde
from tomyum.streams.topology import Materialized, StoreSpec, Topology


class InternalBuilder:
    def __init__(self) -> None:
        self.topology = Topology()
        self._index = 0

    def new_name(self, prefix: str) -> str:
        name = f"{prefix}-{self._index:010d}"
        self._index += 1
        return name

    def add(self, prefix: str, supplier: Callable[[], Processor], parents: Sequence[str],
            stores: tuple[str, ...] = ()) -> str:
        return self.topology.add_node(self.new_name(prefix), supplier, parents, stores)

    def add_store(self, materialized: Materialized | None, kind: str, key_serde: Serde[Any] | None,
                  value_serde: Serde[Any] | None, *, window_size_ms: int = 0, retention_ms: int = 0) -> str:
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
            window_size_ms=window_size_ms, retention_ms=retention_ms,
        ))
        return name
