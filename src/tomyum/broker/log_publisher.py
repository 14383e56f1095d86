"""The metadata controller's hands on the log engine: topic images in, partition logs out.

The composition root (``broker.py``) joins a :class:`~tomyum.metadata.MetadataController` and
a :class:`~tomyum.storage.engine.LogStore` with this adapter, so that neither imports the
other: the controller decides what exists, the engine holds the files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tomyum.metadata import MetadataController, TopicImage
from tomyum.storage.engine import LogStore, PartitionSpec, TopicPartition


class LogPublisher:
    def __init__(self, store: LogStore, metadata: MetadataController) -> None:
        self.store = store
        self.metadata = metadata

    def specs(self, topic: TopicImage, partitions: Sequence[int]) -> dict[TopicPartition, PartitionSpec]:
        spec = PartitionSpec(topic_id=topic.topic_id, config=self.metadata.topic_config(topic))
        return {TopicPartition(topic.name, p): spec for p in partitions}

    def all_specs(self) -> Mapping[TopicPartition, PartitionSpec]:
        """Every partition the image holds (what the engine opens at start)."""
        out: dict[TopicPartition, PartitionSpec] = {}
        for topic in self.metadata.topics().values():
            out |= self.specs(topic, range(topic.num_partitions))
        return out

    async def prepare(self, topic: TopicImage, partitions: Sequence[int]) -> None:
        await self.store.prepare_partitions(self.specs(topic, partitions))

    def publish(self, topic: TopicImage, partitions: Sequence[int]) -> None:
        self.store.publish_partitions(TopicPartition(topic.name, p) for p in partitions)

    async def remove(self, topic: TopicImage, partitions: Sequence[int]) -> None:
        await self.store.remove_partitions([TopicPartition(topic.name, p) for p in partitions])

    def configs_changed(self, topic: TopicImage) -> None:
        config = self.metadata.topic_config(topic)
        for p in range(topic.num_partitions):
            self.store.set_partition_config(TopicPartition(topic.name, p), config)
