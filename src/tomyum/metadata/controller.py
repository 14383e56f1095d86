"""The metadata controller: every change to what exists goes through here, durably first.

A change is made in Kafka's KRaft order: validate against the image, build the records,
append them to the metadata log and fsync (:class:`tomyum.metadata.log.MetadataLog`), then
replay them into the image and tell the log engine. A request therefore happens entirely or
not at all, across crashes and full disks: if the append fails, the image is untouched and
the caller gets the error; if the process dies before the append is durable, the change is
absent after restart, and it was never answered.

Partition logs are prepared *before* the records that create them are appended (their
directories made and fsynced, not yet served), so that a disk that cannot hold the logs
fails the request before anything is promised; they are dropped again if the append fails,
and a leftover of any kind is removed at the next start. Deletion is the other way round:
the RemoveTopicRecord is made durable first, the directories go afterwards.

One change at a time (an asyncio lock): validation sees every earlier change. Methods must
be awaited on the broker's event loop; the file work runs in one worker thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from tomyum.config import (
    DYNAMIC_BROKER,
    DYNAMIC_DEFAULT,
    TOPIC_CONFIGS,
    BrokerConfig,
    TopicConfig,
    format_value,
    parse_value,
    validate_dynamic_broker_configs,
)
from tomyum.errors import ConfigError, ErrorCode, KafkaError, StorageError
from tomyum.metadata.image import INTERNAL_TOPICS, RESERVED_TOPICS, MetadataImage, TopicImage
from tomyum.metadata.log import MetadataLog
from tomyum.metadata.records import (
    BROKER_RESOURCE,
    GROUP_RESOURCE,
    TOPIC_RESOURCE,
    ConfigRecord,
    FeatureLevelRecord,
    MetadataRecord,
    PartitionRecord,
    AccessControlEntryRecord,
    ClientQuotaRecord,
    ProducerIdsRecord,
    RemoveAccessControlEntryRecord,
    RemoveTopicRecord,
    RemoveUserScramCredentialRecord,
    TopicRecord,
    UserScramCredentialRecord,
)

log = logging.getLogger(__name__)

LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_TOPIC_NAME = 249
#: producer ids are handed out in blocks of this many, one ProducerIdsRecord each (as Kafka)
PRODUCER_ID_BLOCK = 1000
#: metadata.version written to a new metadata log (Kafka 4.0's IBP_4_0_IV3 level)
METADATA_VERSION = 25
LEGACY_TOPICS_FILE = "topics.json"


def check_topic_name(name: str | None) -> str:
    """Kafka's topic name rules; raises INVALID_TOPIC_EXCEPTION."""
    if not name or name in (".", "..") or len(name) > MAX_TOPIC_NAME or not LEGAL_TOPIC.match(name):
        raise KafkaError(f"invalid topic name {name!r}: use up to {MAX_TOPIC_NAME} of a-z A-Z 0-9 . _ -",
                         ErrorCode.invalid_topic_exception)
    return name


def _collision_key(name: str) -> str:
    return name.replace(".", "_")


class PartitionLogs(Protocol):
    """What the controller tells the log engine (the broker adapts its LogStore to this)."""

    async def prepare(self, topic: TopicImage, partitions: Sequence[int]) -> None:
        """Create empty logs durably, not yet served; all or nothing (raises StorageError)."""
        ...

    def publish(self, topic: TopicImage, partitions: Sequence[int]) -> None:
        """Serve the prepared logs (their records are durable now)."""
        ...

    async def remove(self, topic: TopicImage, partitions: Sequence[int]) -> None:
        """Stop serving and delete these logs (prepared or published); never raises."""
        ...

    def configs_changed(self, topic: TopicImage) -> None: ...


class MetadataController:
    def __init__(self, data_dir: Path, config: BrokerConfig) -> None:
        self.data_dir = Path(data_dir)
        self.config = config
        self.image = MetadataImage()
        self.log = MetadataLog(self.data_dir)
        self.logs: PartitionLogs | None = None
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metadata-log")
        self._next_producer_id = 0
        self._closed = False
        #: take a snapshot once this many bytes were appended since the last one
        self.snapshot_bytes = 4 << 20
        self._snapshotting: asyncio.Task[None] | None = None
        #: parsed configs per topic, valid while the topic's image is the one cached
        self._configs: dict[str, tuple[TopicImage, TopicConfig]] = {}

    # lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover the log (or migrate ``topics.json``) and replay it into the image."""
        legacy = self.data_dir / LEGACY_TOPICS_FILE
        recovered = await self._run(self.log.recover)
        for offset, record in recovered.records:
            self.image.replay(record, offset)
        if recovered.next_offset == 0 and recovered.snapshot_offset < 0:  # a new log
            if not legacy.exists() and _holds_partitions(self.data_dir):
                raise StorageError(f"{self.data_dir} holds partition logs but no metadata log (nor "
                                   f"{LEGACY_TOPICS_FILE}) saying what they belong to; refusing to start "
                                   "rather than guess. Restore the metadata log or move the data dir away.")
            bootstrap: list[MetadataRecord] = [FeatureLevelRecord(name="metadata.version",
                                                                  feature_level=METADATA_VERSION)]
            if legacy.exists():
                bootstrap += _records_from_legacy(legacy, self.config.node_id)
            await self._append(bootstrap)
        if legacy.exists():
            migrated = legacy.with_name(LEGACY_TOPICS_FILE + ".migrated")
            legacy.replace(migrated)
            log.info("migrated %s into the metadata log; the old file is kept as %s", legacy, migrated.name)
        self._next_producer_id = self.image.next_producer_id
        self._apply_broker_configs(warn=True)
        log.info("metadata log replayed: %d topics, %d records after snapshot at offset %d",
                 len(self.image.topics), sum(1 for o, _ in recovered.records if o >= 0), recovered.snapshot_offset)

    async def close(self) -> None:
        """Write a snapshot (start-up then replays nothing) and close the log."""
        if self._closed:
            return
        self._closed = True
        if self._snapshotting is not None:
            await self._snapshotting
        try:
            if self.log.bytes_since_snapshot:
                records = list(self.image.records())
                await self._run(self.log.write_snapshot, records)
        except StorageError as e:
            log.error("no metadata snapshot at shutdown (start-up will replay the log): %s", e)
        self.log.close()
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # reading ------------------------------------------------------------------------------

    def topics(self) -> Mapping[str, TopicImage]:
        return self.image.topics

    def topic_config(self, topic: str | TopicImage) -> TopicConfig:
        """A topic's configs: its own overrides (parsed; a stored key this build does not know,
        or a value it no longer accepts, is left out with one warning), then the broker's.
        Cheap: parsed once per change of the topic."""
        image = self.image.topics.get(topic) if isinstance(topic, str) else topic
        if image is None:
            return TopicConfig(self.config, {})
        cached = self._configs.get(image.name)
        if cached is not None and cached[0] is image:
            return cached[1]
        overrides: dict[str, Any] = {}
        for key, raw in image.raw_configs.items():
            d = TOPIC_CONFIGS.get(key)
            try:
                if d is None:
                    raise ConfigError(key, "unknown topic config")
                overrides[key] = parse_value(d, raw)
            except ConfigError as e:
                log.warning("topic %s: ignoring stored config %s", image.name, e)
        config = TopicConfig(self.config, overrides)
        if image is self.image.topics.get(image.name):
            self._configs[image.name] = (image, config)
        return config

    def leader_epoch(self, topic: str, partition: int) -> int:
        """The partition's leader epoch (-1: no such partition)."""
        image = self.image.topics.get(topic)
        record = self.image.partitions(image).get(partition) if image else None
        return record.leader_epoch if record else -1

    # changes ------------------------------------------------------------------------------

    async def create_topic(self, name: str, num_partitions: int, configs: Mapping[str, Any]) -> TopicImage:
        """Create ``name`` with ``configs`` (parsed values, already validated)."""
        async with self._lock:
            check_topic_name(name)
            if name in RESERVED_TOPICS:
                raise KafkaError(f"Creation of internal topic {name} is prohibited.", ErrorCode.invalid_request)
            if name in self.image.topics:
                raise KafkaError(f"Topic '{name}' already exists.", ErrorCode.topic_already_exists)
            key = _collision_key(name)
            clash = next((t for t in self.image.topics if _collision_key(t) == key), None)
            if clash is not None:
                raise KafkaError(f"Topic '{name}' collides with existing topic: {clash}",
                                 ErrorCode.invalid_topic_exception)
            self._check_partition_limit(num_partitions)
            raw = {k: v for k, v in ((k, format_value(v)) for k, v in configs.items()) if v is not None}
            topic = TopicImage(name=name, topic_id=uuid.uuid4(), num_partitions=num_partitions, raw_configs=raw)
            node = self.config.node_id
            records: list[MetadataRecord] = [TopicRecord(name=name, topic_id=topic.topic_id)]
            records += [PartitionRecord(partition_id=p, topic_id=topic.topic_id, replicas=(node,), isr=(node,),
                                        leader=node) for p in range(num_partitions)]
            records += [ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name=name, name=k, value=v)
                        for k, v in sorted(raw.items())]
            await self._with_new_logs(topic, range(num_partitions), records)
        log.info("created topic %s with %d partitions%s", name, num_partitions,
                 f" and configs {dict(configs)}" if configs else "")
        return self.image.topics[name]

    async def create_partitions(self, name: str, total: int) -> None:
        async with self._lock:
            topic = self._topic(name)
            if total <= topic.num_partitions:
                raise KafkaError(f"Topic currently has {topic.num_partitions} partitions, {total} would not be "
                                 "an increase.", ErrorCode.invalid_partitions)
            self._check_partition_limit(total - topic.num_partitions)
            node = self.config.node_id
            new = range(topic.num_partitions, total)
            records: list[MetadataRecord] = [
                PartitionRecord(partition_id=p, topic_id=topic.topic_id, replicas=(node,), isr=(node,), leader=node)
                for p in new]
            await self._with_new_logs(topic, new, records)
        log.info("topic %s now has %d partitions", name, total)

    def _check_partition_limit(self, more: int) -> None:
        held = sum(t.num_partitions for t in self.image.topics.values())
        limit = self.config["max.broker.partitions"]
        if held + more > limit:
            raise KafkaError(f"{more} more partitions would exceed max.broker.partitions ({limit}): this broker "
                             f"holds {held}", ErrorCode.policy_violation)

    async def _with_new_logs(self, topic: TopicImage, partitions: range, records: list[MetadataRecord]) -> None:
        assert self.logs is not None
        await self.logs.prepare(topic, partitions)
        try:
            await self._append(records)
        except BaseException:
            await self.logs.remove(topic, partitions)
            raise
        self.logs.publish(self.image.topics[topic.name], partitions)

    async def delete_topic(self, name: str) -> None:
        async with self._lock:
            topic = self._topic(name)
            await self._append([RemoveTopicRecord(topic_id=topic.topic_id)])
            self._configs.pop(name, None)
            assert self.logs is not None
            await self.logs.remove(topic, range(topic.num_partitions))
        log.info("deleted topic %s (id %s)", name, topic.topic_id)

    async def alter_topic_configs(self, name: str, configs: Mapping[str, Any]) -> None:
        """Replace the topic's overrides with ``configs`` (parsed, validated values)."""
        async with self._lock:
            topic = self._topic(name)
            raw = {k: v for k, v in ((k, format_value(v)) for k, v in configs.items()) if v is not None}
            records = _config_diff(TOPIC_RESOURCE, name, topic.raw_configs, raw)
            if records:
                await self._append(records)
                assert self.logs is not None
                self.logs.configs_changed(self.image.topics[name])
        if records:
            log.info("topic %s configs now %s", name, raw)

    async def alter_broker_configs(self, layer: str, configs: Mapping[str, Any]) -> None:
        """Replace a dynamic broker config layer (parsed values); takes effect at once."""
        resource = str(self.config.node_id) if layer == DYNAMIC_BROKER else ""
        async with self._lock:
            raw = {k: v for k, v in ((k, format_value(v)) for k, v in configs.items()) if v is not None}
            records = _config_diff(BROKER_RESOURCE, resource, self.image.broker_configs.get(resource, {}), raw)
            if records:
                await self._append(records)
                self._apply_broker_configs()
        log.info("dynamic broker configs (%s) now %s", layer, dict(configs))

    async def alter_group_configs(self, group: str, configs: Mapping[str, Any]) -> None:
        """Replace a group's config overrides (parsed, validated values)."""
        async with self._lock:
            raw = {k: v for k, v in ((k, format_value(v)) for k, v in configs.items()) if v is not None}
            records = _config_diff(GROUP_RESOURCE, group, self.image.group_configs.get(group, {}), raw)
            if records:
                await self._append(records)

    async def allocate_producer_id(self) -> int:
        """A producer id never handed out before by this data directory."""
        async with self._lock:
            if self._next_producer_id >= self.image.next_producer_id:
                await self._append([ProducerIdsRecord(broker_id=self.config.node_id, broker_epoch=-1,
                                                       next_producer_id=self._next_producer_id + PRODUCER_ID_BLOCK)])
            pid = self._next_producer_id
            self._next_producer_id += 1
            return pid

    # security: ACLs and SCRAM credentials (validated by the caller; stored here) ------------

    async def add_acls(self, entries: list[AccessControlEntryRecord]) -> None:
        """Store ACL bindings, all in one batch (all or none)."""
        if entries:
            async with self._lock:
                await self._append(list(entries))

    async def remove_acls(self, ids: list[uuid.UUID]) -> None:
        async with self._lock:
            gone = [RemoveAccessControlEntryRecord(id=i) for i in ids if i in self.image.acls]
            if gone:
                await self._append(list(gone))

    async def alter_client_quotas(self, changes: list[ClientQuotaRecord]) -> None:
        """Set and remove client quotas, all in one batch."""
        if changes:
            async with self._lock:
                await self._append(list(changes))

    async def alter_scram_credentials(
            self, changes: list[UserScramCredentialRecord | RemoveUserScramCredentialRecord]) -> None:
        """Upsert and delete SCRAM credentials, all in one batch."""
        if changes:
            async with self._lock:
                await self._append(list(changes))

    # the write path -----------------------------------------------------------------------

    def _topic(self, name: str) -> TopicImage:
        topic = self.image.topics.get(name)
        if topic is None:
            raise KafkaError(f"unknown topic {name!r}", ErrorCode.unknown_topic_or_partition)
        return topic

    async def _append(self, records: list[MetadataRecord]) -> None:
        """Make ``records`` durable, then replay them. The only way the image changes."""
        if self._closed:
            raise KafkaError("the broker is shutting down", ErrorCode.not_controller)
        base = await self._run(self.log.append, records)
        for i, r in enumerate(records):
            self.image.replay(r, base + i)
        if self.log.bytes_since_snapshot >= self.snapshot_bytes and self._snapshotting is None:
            self._snapshotting = asyncio.create_task(self._snapshot(), name="metadata-snapshot")

    async def _snapshot(self) -> None:
        try:
            await self._run(self.log.write_snapshot, list(self.image.records()))
        except StorageError as e:
            log.error("metadata snapshot failed (the log is intact): %s", e)
        finally:
            self._snapshotting = None

    def _apply_broker_configs(self, *, warn: bool = False) -> None:
        for layer, resource in ((DYNAMIC_DEFAULT, ""), (DYNAMIC_BROKER, str(self.config.node_id))):
            valid: dict[str, Any] = {}
            for key, value in self.image.broker_configs.get(resource, {}).items():
                try:  # one bad key (say, no longer dynamic) costs only itself
                    valid |= validate_dynamic_broker_configs({key: value}, per_broker=layer == DYNAMIC_BROKER)
                except ConfigError as e:
                    if warn:
                        log.warning("ignoring a stored dynamic broker config: %s", e)
            self.config.set_dynamic(layer, valid)


def _config_diff(resource_type: int, resource_name: str, old: Mapping[str, str],
                 new: Mapping[str, str]) -> list[MetadataRecord]:
    records: list[MetadataRecord] = [
        ConfigRecord(resource_type=resource_type, resource_name=resource_name, name=k, value=v)
        for k, v in sorted(new.items()) if old.get(k) != v]
    records += [ConfigRecord(resource_type=resource_type, resource_name=resource_name, name=k, value=None)
                for k in sorted(old) if k not in new]
    return records


def _holds_partitions(data_dir: Path) -> bool:
    return any((d / "partition.metadata").exists() for d in data_dir.iterdir() if d.is_dir())


def _records_from_legacy(path: Path, node_id: int) -> list[MetadataRecord]:
    """The records equal to an old ``topics.json`` (tomyum before the metadata log)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise StorageError(f"cannot read {path} to migrate it: {e}") from e
    records: list[MetadataRecord] = []
    if int(doc.get("producer_id_limit", 0)):
        records.append(ProducerIdsRecord(broker_id=node_id, broker_epoch=-1,
                                         next_producer_id=int(doc["producer_id_limit"])))
    for layer, values in doc.get("broker_configs", {}).items():
        resource = {DYNAMIC_BROKER: str(node_id), DYNAMIC_DEFAULT: ""}.get(layer)
        if resource is not None:
            records += [ConfigRecord(resource_type=BROKER_RESOURCE, resource_name=resource, name=k, value=str(v))
                        for k, v in values.items() if v is not None]
    for name, t in doc.get("topics", {}).items():
        topic_id = uuid.UUID(t["topic_id"])
        records.append(TopicRecord(name=name, topic_id=topic_id))
        records += [PartitionRecord(partition_id=p, topic_id=topic_id, replicas=(node_id,), isr=(node_id,),
                                    leader=node_id) for p in range(int(t["partitions"]))]
        records += [ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name=name, name=k, value=str(v))
                    for k, v in t.get("configs", {}).items() if v is not None]
    return records


__all__ = ["INTERNAL_TOPICS", "MetadataController", "PartitionLogs", "check_topic_name"]
