"""Cluster metadata: what exists (topics, partitions, configs, producer id blocks), kept as a
durable log of KRaft-shaped records and the image replayed from it. See ``FORMAT.md``."""

from tomyum.metadata.controller import MetadataController, PartitionLogs, check_topic_name
from tomyum.metadata.image import INTERNAL_TOPICS, RESERVED_TOPICS, MetadataImage, TopicImage
from tomyum.metadata.properties import DataDirLock, check_meta_properties

__all__ = ["INTERNAL_TOPICS", "RESERVED_TOPICS", "DataDirLock", "MetadataController", "MetadataImage", "PartitionLogs",
           "TopicImage", "check_meta_properties", "check_topic_name"]
