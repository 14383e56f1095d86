"""Processors, the nodes of a topology, and the context they run in.

A processor receives records one at a time through :meth:`Processor.process` and passes
records on with ``self.context.forward``; forwarding is a synchronous, depth-first call into
the children, as in Kafka Streams. The DSL builds every operator from these; the public
Processor API (``KStream.process`` with punctuators) will add to the same classes.

Dependencies go one way: a task (:mod:`tomyum.streams._task`) imports this module and hands
each context itself; this module knows the task only as :class:`ProcessorTask`, the few things
a context reads and calls, so it imports neither the task nor the topology.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Protocol

from tomyum.streams._deprecation import warn_deprecated
from tomyum.streams._record import Record
from tomyum.streams.punctuation import Cancellable, PunctuationType, Punctuator
from tomyum.streams.serdes import RecordTimestampExtractor, Serde, Serdes, TimestampExtractor

log = logging.getLogger(__name__)

__all__ = ["Processor", "ProcessorContext", "StandbyUpdateListener", "StateRestoreListener", "StreamsConfig",
           "SuspendReason"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamsConfig:
    """The settings a task needs, with Kafka Streams' names and defaults
    (``application.id``, ``default.key.serde``, ``default.value.serde``,
    ``default.timestamp.extractor``, ``state.dir``). ``state_dir=None`` lets the test
    driver use a temporary directory."""

    application_id: str = "tomyum-streams"
    default_key_serde: Serde[Any] = Serdes.bytes()
    default_value_serde: Serde[Any] = Serdes.bytes()
    default_timestamp_extractor: TimestampExtractor = RecordTimestampExtractor
    state_dir: str | None = None
    statestore_cache_max_bytes: int = 0
    """Kafka's ``statestore.cache.max.bytes``: the record cache's size per instance (see
    :mod:`tomyum.streams.state.caching`). 0 (no cache, every update forwarded) by default
    here; Kafka's default is 10 MiB."""
    cache_max_bytes_buffering: int | None = None
    """Kafka's older name of ``statestore.cache.max.bytes`` (deprecated there since 3.4):
    used when given and ``statestore_cache_max_bytes`` is not."""
    max_task_idle_ms: int = 0
    """Kafka's ``max.task.idle.ms``: how long (wall clock) a task with several input
    partitions waits for one that has nothing buffered before it processes the others
    (-1: never waits; see :mod:`tomyum.streams._partition_group`, and how 0 differs from
    Kafka there). The test driver processes each record as it is piped, so it never waits."""
    deserialization_exception_handler: Literal["log_and_fail", "log_and_continue"] = "log_and_fail"
    """What a source does with a record its serdes cannot read (Kafka's
    ``default.deserialization.exception.handler``): fail the application (the default, so that
    nothing is skipped unnoticed), or log it, count it in ``dropped-records-total`` and go on."""

    @property
    def cache_max_bytes(self) -> int:
        """The record cache's size: ``statestore_cache_max_bytes``, else the old name's."""
        if self.statestore_cache_max_bytes == 0 and self.cache_max_bytes_buffering is not None:
            return self.cache_max_bytes_buffering
        return self.statestore_cache_max_bytes

    def __post_init__(self) -> None:
        if self.cache_max_bytes_buffering is not None:
            warn_deprecated("StreamsConfig(cache_max_bytes_buffering=)", "StreamsConfig(statestore_cache_max_bytes=)")
        if self.max_task_idle_ms < -1:
            raise ValueError(f"max_task_idle_ms must be -1 or more, got {self.max_task_idle_ms}")
        if self.cache_max_bytes < 0:
            raise ValueError(f"statestore_cache_max_bytes must be at least 0, got {self.cache_max_bytes}")
        if self.deserialization_exception_handler not in ("log_and_fail", "log_and_continue"):
            raise ValueError("deserialization_exception_handler must be log_and_fail or log_and_continue, not "
                             f"{self.deserialization_exception_handler!r}")


class StateRestoreListener:
    """Kafka's ``StateRestoreListener``: told about each changelog partition a task's store is
    restored from (``KafkaStreams.set_global_state_restore_listener``), on the streams thread.
    ``topic_partition`` is confluent-kafka's ``TopicPartition`` of the changelog. Subclass it
    and override what you need; the methods here do nothing. Not called when a checkpoint
    leaves nothing to read (as in Kafka)."""

    def on_restore_start(self, topic_partition: Any, store_name: str, starting_offset: int,
                         ending_offset: int) -> None:
        """Restoring ``store_name`` begins: records from ``starting_offset`` up to (not
        including) ``ending_offset`` are to be read."""

    def on_batch_restored(self, topic_partition: Any, store_name: str, batch_end_offset: int,
                          num_restored: int) -> None:
        """A batch of ``num_restored`` records, the last at ``batch_end_offset``, was applied."""

    def on_restore_end(self, topic_partition: Any, store_name: str, total_restored: int) -> None:
        """Restoring ``store_name`` from this partition is done: ``total_restored`` records."""


class SuspendReason(Enum):
    """Why a standby task stopped updating (Kafka's ``StandbyUpdateListener.SuspendReason``)."""

    MIGRATED = "MIGRATED"
    """The standby went to another instance (or is no longer wanted here); its stores are closed."""
    PROMOTED = "PROMOTED"
    """The task became active on this instance, which carries on from the standby's stores."""


class StandbyUpdateListener:
    """Kafka's ``StandbyUpdateListener`` (KIP-988): told how this instance's standby tasks
    keep their stores up to date from the changelogs
    (``KafkaStreams.set_standby_update_listener``), on the streams thread. ``topic_partition``
    is confluent-kafka's ``TopicPartition`` of the changelog. Subclass it and override what you
    need; the methods here do nothing. (Kafka's nested ``SuspendReason`` is
    :class:`SuspendReason` here.)"""

    def on_update_start(self, topic_partition: Any, store_name: str, starting_offset: int) -> None:
        """A standby store starts reading its changelog partition at ``starting_offset`` (its
        checkpoint's offset, or the partition's first), before any record is loaded."""

    def on_batch_loaded(self, topic_partition: Any, store_name: str, task_id: str, batch_end_offset: int,
                        batch_size: int, current_end_offset: int) -> None:
        """A batch of ``batch_size`` changelog records, the last at ``batch_end_offset``, was
        applied to the standby store; ``current_end_offset`` is the partition's end as last
        fetched (-1 when not known yet)."""

    def on_update_suspended(self, topic_partition: Any, store_name: str, store_offset: int, current_end_offset: int,
                            reason: SuspendReason) -> None:
        """The standby store stopped updating: ``store_offset`` is the offset before the next
        one it would have read (-1 if it read nothing). ``MIGRATED``: after its stores are
        closed; ``PROMOTED``: before the active task's restore starts (Kafka's order)."""


class ProcessorTask(Protocol):
    """What a :class:`ProcessorContext` needs from the task it runs in (the task is
    :class:`tomyum.streams._task.StreamTask`): its identity and config, its stores and the
    global ones, its clocks and dropped-records count, and forwarding, sending, scheduling."""

    stream_time_ms: int
    dropped_records: int

    @property
    def config(self) -> StreamsConfig: ...
    @property
    def task_id(self) -> str: ...
    @property
    def stores(self) -> Mapping[str, Any]: ...
    @property
    def global_stores(self) -> Mapping[str, Any]: ...
    @property
    def wall_clock_ms(self) -> int: ...

    def forward(self, parent: str, record: Record[Any, Any], child: str | None) -> None: ...

    def send(self, topic: str, record: Record[bytes | None, bytes | None], key_serde: Serde[Any],
             value_serde: Serde[Any]) -> None: ...

    def schedule(self, node: str, interval_ms: int, kind: PunctuationType, punctuator: Punctuator) -> Cancellable: ...


class ProcessorContext:
    """What a processor may use: forwarding to its children, the task's stores, stream
    time and wall-clock time, and the dropped-records metric."""

    def __init__(self, task: ProcessorTask, node_name: str) -> None:
        self._task = task
        self.node_name = node_name
        self.config = task.config
        self.application_id = task.config.application_id
        self.task_id = task.task_id

    def forward(self, record: Record[Any, Any], child: str | None = None) -> None:
        """Pass ``record`` to every child, or only to the child named ``child``."""
        self._task.forward(self.node_name, record, child)

    def send(self, topic: str, record: Record[bytes | None, bytes | None], key_serde: Serde[Any],
             value_serde: Serde[Any]) -> None:
        """Hand a serialized record to the task's record collector (what sinks do); the
        serdes travel along so that a test driver can read the record back."""
        self._task.send(topic, record, key_serde, value_serde)

    def get_state_store(self, name: str) -> Any:
        """One of this task's stores, or a global table's store."""
        store = self._task.stores.get(name)
        return store if store is not None else self._task.global_stores[name]

    @property
    def stream_time_ms(self) -> int:
        """The largest timestamp the task has read from its input topics (-1 before any)."""
        return self._task.stream_time_ms

    def advance_stream_time(self, timestamp: int) -> None:
        """Sources call this with each record's extracted timestamp."""
        self._task.stream_time_ms = max(self._task.stream_time_ms, timestamp)

    @property
    def current_system_time_ms(self) -> int:
        return self._task.wall_clock_ms

    def schedule(self, interval_ms: int, punctuation_type: PunctuationType, punctuator: Punctuator) -> Cancellable:
        """Call ``punctuator`` every ``interval_ms`` of stream time or wall-clock time (see
        :mod:`tomyum.streams.punctuation`); what it forwards goes to this node's children."""
        return self._task.schedule(self.node_name, interval_ms, punctuation_type, punctuator)

    def record_dropped(self, reason: str, record: Record[Any, Any]) -> None:
        """Count a record skipped on purpose (Kafka's ``dropped-records-total``)."""
        self._task.dropped_records += 1
        log.debug(
            "task %s node %s dropped a record (%s) from %s-%s offset %s",
            self.task_id, self.node_name, reason, record.topic, record.partition, record.offset,
        )


class Processor:
    """A node's behaviour. ``init`` runs once before the first record; ``close`` once at the
    end. Subclasses implement ``process``."""

    context: ProcessorContext

    def init(self, context: ProcessorContext) -> None:
        self.context = context

    def process(self, record: Record[Any, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        return None
