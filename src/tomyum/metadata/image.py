"""The metadata image: what exists, built only by replaying metadata records.

:class:`MetadataImage` changes in exactly one way, :meth:`MetadataImage.replay`, and can
describe itself as the records that rebuild it (:meth:`MetadataImage.records`, what a
snapshot holds). Pure: no I/O, no clock. Not thread-safe: it lives on the broker's event loop.

Topic configs are kept parsed (``retention.ms`` as an int); a stored key this build does not
know, or a value it cannot parse, is left out of the parsed view (and logged by the caller
that applies it), never fatal: the records stay as written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tomyum.metadata.records import (
    BROKER_RESOURCE,
    GROUP_RESOURCE,
    TOPIC_RESOURCE,
    ConfigRecord,
    FeatureLevelRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    AccessControlEntryRecord,
    ClientQuotaRecord,
    ProducerIdsRecord,
    RemoveAccessControlEntryRecord,
    RemoveTopicRecord,
    RemoveUserScramCredentialRecord,
    EntityData,
    TopicRecord,
    UserScramCredentialRecord,
)

#: topics that belong to the broker (Kafka's Topic.INTERNAL_TOPICS): only the broker creates,
#: writes, deletes, grows or reconfigures them
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})
#: names no topic may have: the metadata log's directory is ``__cluster_metadata-0``
RESERVED_TOPICS = frozenset({"__cluster_metadata"})


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicImage:
    name: str
    topic_id: uuid.UUID
    num_partitions: int
    #: the topic's own overrides, raw as stored (ConfigRecord values)
    raw_configs: Mapping[str, str] = field(default_factory=dict)

    @property
    def internal(self) -> bool:
        return self.name in INTERNAL_TOPICS


class MetadataImage:
    def __init__(self) -> None:
        self.topics: dict[str, TopicImage] = {}
        self.topics_by_id: dict[uuid.UUID, TopicImage] = {}
        #: partitions per topic id, as replayed (a topic's count is their number)
        self._partitions: dict[uuid.UUID, dict[int, PartitionRecord]] = {}
        #: dynamic broker configs by resource name ("" the cluster default, else a node id)
        self.broker_configs: dict[str, dict[str, str]] = {}
        #: group configs (KIP-848's GroupConfig) by group id
        self.group_configs: dict[str, dict[str, str]] = {}
        #: configs of topics not (yet) known, kept until the topic appears (a snapshot
        #: writes a topic's configs after its TopicRecord, so this stays empty in practice)
        self._pending_configs: dict[str, dict[str, str]] = {}
        self.next_producer_id = 0
        self.features: dict[str, int] = {}
        #: SCRAM credentials by (user, mechanism)
        self.scram: dict[tuple[str, int], UserScramCredentialRecord] = {}
        #: ACL bindings by id, and a counter that moves with every change to them
        self.acls: dict[uuid.UUID, AccessControlEntryRecord] = {}
        self.acls_version = 0
        #: client quotas: entity ((type, name or None for the default), ...) → {key: value}
        self.quotas: dict[tuple[tuple[str, str | None], ...], dict[str, float]] = {}
        #: moves with every change to the quotas (the quota managers cache their resolutions by it)
        self.quotas_version = 0
        #: offset of the last record replayed (-1: none)
        self.last_offset = -1
        #: per topic id, what readers derived from the topic (see :meth:`derived`)
        self._derived: dict[uuid.UUID, dict[Any, Any]] = {}

    # replay -------------------------------------------------------------------------------

    def replay(self, record: MetadataRecord, offset: int) -> None:
        """Apply one record. Records that name what does not exist change nothing."""
        self.last_offset = offset
        if isinstance(record, (TopicRecord, PartitionRecord, PartitionChangeRecord, RemoveTopicRecord)):
            self._derived.pop(record.topic_id, None)
        if isinstance(record, TopicRecord):
            topic = TopicImage(name=record.name, topic_id=record.topic_id, num_partitions=0,
                               raw_configs=self._pending_configs.pop(record.name, {}))
            self.topics[record.name] = topic
            self.topics_by_id[record.topic_id] = topic
            self._partitions[record.topic_id] = {}
        elif isinstance(record, PartitionRecord):
            parts = self._partitions.get(record.topic_id)
            if parts is not None:
                parts[record.partition_id] = record
                self._put(replace(self.topics_by_id[record.topic_id], num_partitions=len(parts)))
        elif isinstance(record, PartitionChangeRecord):
            parts = self._partitions.get(record.topic_id)
            old = parts.get(record.partition_id) if parts is not None else None
            if parts is not None and old is not None:
                parts[record.partition_id] = replace(
                    old, isr=old.isr if record.isr is None else record.isr,
                    replicas=old.replicas if record.replicas is None else record.replicas,
                    leader=old.leader if record.leader == -2 else record.leader,
                    leader_epoch=old.leader_epoch + (record.leader != -2),
                    partition_epoch=old.partition_epoch + 1)
        elif isinstance(record, RemoveTopicRecord):
            gone = self.topics_by_id.pop(record.topic_id, None)
            self._partitions.pop(record.topic_id, None)
            if gone is not None:
                del self.topics[gone.name]
        elif isinstance(record, ConfigRecord):
            self._replay_config(record)
        elif isinstance(record, ProducerIdsRecord):
            self.next_producer_id = max(self.next_producer_id, record.next_producer_id)
        elif isinstance(record, FeatureLevelRecord):
            self.features[record.name] = record.feature_level
        elif isinstance(record, UserScramCredentialRecord):
            self.scram[(record.name, record.mechanism)] = record
        elif isinstance(record, RemoveUserScramCredentialRecord):
            self.scram.pop((record.name, record.mechanism), None)
        elif isinstance(record, AccessControlEntryRecord):
            self.acls[record.id] = record
            self.acls_version += 1
        elif isinstance(record, RemoveAccessControlEntryRecord):
            self.acls.pop(record.id, None)
            self.acls_version += 1
        elif isinstance(record, ClientQuotaRecord):
            entity = tuple(sorted((e.entity_type, e.entity_name) for e in record.entity))
            self.quotas_version += 1
            values = self.quotas.setdefault(entity, {})
            if record.remove:
                values.pop(record.key, None)
                if not values:
                    del self.quotas[entity]
            else:
                values[record.key] = record.value

    def _put(self, topic: TopicImage) -> None:
        self.topics[topic.name] = topic
        self.topics_by_id[topic.topic_id] = topic

    def _replay_config(self, r: ConfigRecord) -> None:
        if r.resource_type == TOPIC_RESOURCE:
            topic = self.topics.get(r.resource_name)
            configs = dict(topic.raw_configs) if topic else self._pending_configs.setdefault(r.resource_name, {})
            if r.value is None:
                configs.pop(r.name, None)
            else:
                configs[r.name] = r.value
            if topic is not None:
                self._derived.pop(topic.topic_id, None)
                self._put(replace(topic, raw_configs=configs))
        elif r.resource_type in (BROKER_RESOURCE, GROUP_RESOURCE):
            layers = self.broker_configs if r.resource_type == BROKER_RESOURCE else self.group_configs
            layer = layers.setdefault(r.resource_name, {})
            if r.value is None:
                layer.pop(r.name, None)
            else:
                layer[r.name] = r.value

    # reading ------------------------------------------------------------------------------

    def partitions(self, topic: TopicImage) -> Mapping[int, PartitionRecord]:
        return self._partitions.get(topic.topic_id, {})

    def derived(self, topic: TopicImage) -> dict[Any, Any]:
        """A cache for what a reader computes from ``topic`` and its partitions alone (the
        encoded Metadata entry): :meth:`replay` empties it whenever a record changes the topic
        (TopicRecord, PartitionRecord, PartitionChangeRecord, RemoveTopicRecord, or a
        ConfigRecord of the topic). A reader keys its entries so that they cannot collide with
        another reader's, and puts nothing there that depends on anything but the topic. A
        ``topic`` that is not the image's current one gets a fresh dict that is not kept."""
        if self.topics_by_id.get(topic.topic_id) is not topic:
            return {}  # not (or no longer) this image's topic: nothing to keep
        cache = self._derived.get(topic.topic_id)
        if cache is None:
            cache = self._derived[topic.topic_id] = {}
        return cache

    def records(self) -> Iterator[MetadataRecord]:
        """Records that rebuild this image from nothing (what a snapshot holds)."""
        for name, level in sorted(self.features.items()):
            yield FeatureLevelRecord(name=name, feature_level=level)
        if self.next_producer_id:
            yield ProducerIdsRecord(broker_id=-1, broker_epoch=-1, next_producer_id=self.next_producer_id)
        for kind, layers in ((BROKER_RESOURCE, self.broker_configs), (GROUP_RESOURCE, self.group_configs)):
            for resource, layer in sorted(layers.items()):
                for key, value in sorted(layer.items()):
                    yield ConfigRecord(resource_type=kind, resource_name=resource, name=key, value=value)
        yield from (self.scram[k] for k in sorted(self.scram))
        yield from self.acls.values()
        for entity, values in sorted(self.quotas.items(), key=lambda kv: repr(kv[0])):
            for quota, amount in sorted(values.items()):
                yield ClientQuotaRecord(entity=tuple(EntityData(entity_type=t, entity_name=n) for t, n in entity),
                                        key=quota, value=amount)
        for topic in self.topics.values():
            yield TopicRecord(name=topic.name, topic_id=topic.topic_id)
            for _, p in sorted(self.partitions(topic).items()):
                yield p
            for key, value in sorted(topic.raw_configs.items()):
                yield ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name=topic.name, name=key, value=value)

    def summary(self) -> dict[str, Any]:
        """A comparable view of the whole image (for tests and recovery checks)."""
        return {
            "topics": {t.name: (t.topic_id, t.num_partitions, dict(t.raw_configs)) for t in self.topics.values()},
            "broker_configs": {k: dict(v) for k, v in self.broker_configs.items() if v},
            "group_configs": {k: dict(v) for k, v in self.group_configs.items() if v},
            "next_producer_id": self.next_producer_id,
            "features": dict(self.features),
            "scram": dict(self.scram),
            "acls": dict(self.acls),
            "quotas": {k: dict(v) for k, v in self.quotas.items()},
        }
