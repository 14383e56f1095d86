"""A log engine with its metadata, in one object, for tests of storage and coordinators.

:class:`TopicStore` starts a :class:`~tomyum.metadata.MetadataController` and a log engine
(the local one unless another is given: :data:`ENGINES` names every engine, for tests
parametrized over them) on one data dir, joined as the broker joins them, and
answers both the engine's methods (``append``, ``read``, ...) and the metadata ones
(``create_topic``, ``topics``, ``allocate_producer_id``, ...).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tomyum.broker.log_publisher import LogPublisher
from tomyum.clock import SYSTEM_CLOCK, Clock
from tomyum.config import BrokerConfig, TopicConfig
from tomyum.metadata import MetadataController, TopicImage
from tomyum.storage.engine import LogStore
from tomyum.storage.local import LocalLogStore
from tomyum.storage.memory import MemoryLogStore

#: every log engine by name, as the broker's ``engine`` factory takes them
ENGINES: dict[str, Callable[[Path, BrokerConfig, Clock], LogStore]] = {
    "local": LocalLogStore,
    #: the local engine where io_uring is missing: its group commit fsyncs through a thread
    "local-thread": functools.partial(LocalLogStore, io_uring=False),
    "memory": MemoryLogStore,
}


class TopicStore:
    def __init__(self, data_dir: Path, config: BrokerConfig | None = None, clock: Clock = SYSTEM_CLOCK,
                 *, engine: LogStore | None = None) -> None:
        self.config = config if config is not None else BrokerConfig()
        self.clock = clock
        self.data_dir = Path(data_dir)
        self.engine: Any = engine if engine is not None else LocalLogStore(self.data_dir, self.config, clock)
        self.metadata = MetadataController(self.data_dir, self.config)
        self.publisher = LogPublisher(self.engine, self.metadata)
        self.metadata.logs = self.publisher

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self.metadata.start()
        await self.engine.start(self.publisher.all_specs())

    async def close(self) -> None:
        await self.engine.close()
        await self.metadata.close()

    def topics(self) -> Mapping[str, TopicImage]:
        return self.metadata.topics()

    def topic_config(self, name: str) -> TopicConfig:
        return self.metadata.topic_config(name)

    async def create_topic(self, name: str, num_partitions: int, configs: Mapping[str, Any],
                           **_: Any) -> TopicImage:
        return await self.metadata.create_topic(name, num_partitions, configs)

    async def delete_topic(self, name: str) -> None:
        await self.metadata.delete_topic(name)

    async def create_partitions(self, name: str, total: int) -> None:
        await self.metadata.create_partitions(name, total)

    async def alter_topic_configs(self, name: str, configs: Mapping[str, Any]) -> None:
        await self.metadata.alter_topic_configs(name, configs)

    async def alter_broker_configs(self, layer: str, configs: Mapping[str, Any]) -> None:
        await self.metadata.alter_broker_configs(layer, configs)

    async def allocate_producer_id(self) -> int:
        return await self.metadata.allocate_producer_id()
