"""What the coordinators need of cluster metadata: their internal topics, producer ids."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tomyum.metadata import TopicImage


class TopicDirectory(Protocol):
    def topics(self) -> Mapping[str, TopicImage]: ...
    async def create_topic(self, name: str, num_partitions: int, configs: Mapping[str, Any]) -> TopicImage: ...
    async def allocate_producer_id(self) -> int:
        """A producer id never handed out before (durably so)."""
        ...
