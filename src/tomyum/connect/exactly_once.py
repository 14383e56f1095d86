"""Exactly-once source (KIP-618) for distributed workers, as Kafka's ExactlyOnceWorkerSourceTask
and DistributedHerder do it.

With the worker key ``exactly.once.source.support=enabled`` every source task gets a
transactional producer, ``transactional.id=${group.id}-${connector}-${task}`` with
``enable.idempotence=true``. The records of a transaction and the source offsets they reached
(written to the worker's ``offset.storage.topic`` by that same producer) commit together, at
the boundary the connector key ``transaction.boundary`` names: ``poll`` (each non-empty batch,
the default), ``interval`` (``transaction.boundary.interval.ms``, else the worker's
``offset.flush.interval.ms``) or ``connector`` (the task asks through its TransactionContext).
Offsets are read with ``read_committed``, so a restarted task resumes exactly after the last
committed transaction; what a killed worker left open is aborted when its successor fences it.

Zombie fencing: before a new generation of a connector's tasks starts, the leader fences the
producers of the previous generation (the task count in the config topic's latest
``tasks-fencing-<connector>`` record, Kafka's ``{"task-count": n}``) and then writes a task
count record for the new generation. Python's AdminClient has no ``fenceProducers``, so a
producer is fenced as Kafka's Admin does it underneath: InitProducerId for its transactional id
(a throwaway producer's ``init_transactions``), which bumps the epoch and aborts its open
transaction. Tasks ask for the fencing through ``PUT /connectors/{name}/fence``, forwarded to
the leader, as Kafka's workers do.

A connector with its own ``offsets.storage.topic`` has its task's offsets written to that topic
inside the transaction; once committed they are copied to the worker's topic (not in the
transaction), as Kafka's ConnectorOffsetBackingStore does.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from confluent_kafka import KafkaException, Producer

from tomyum.connect.config import ConfigDef, ConfigError, ConfigType, ConfigValue, Importance
from tomyum.connect.connector import (
    ConnectError, ConnectorTransactionBoundaries, ExactlyOnceSupport, SourceConnector, SourceTask,
)
from tomyum.connect.data import SourceRecord
from tomyum.connect.offsets import ConnectorOffsets
from tomyum.connect.worker import TaskId, Worker, WorkerSourceTask, _SourceTaskContext

log = logging.getLogger("tomyum.connect.exactly_once")

WORKER_SUPPORT_CONFIG = "exactly.once.source.support"
SUPPORT_CONFIG = "exactly.once.support"
BOUNDARY_CONFIG = "transaction.boundary"
BOUNDARY_INTERVAL_CONFIG = "transaction.boundary.interval.ms"
TASK_COUNT_RECORD_PREFIX = "tasks-fencing-"


OFFSETS_TOPIC_CONFIG = "offsets.storage.topic"

#: where an exactly-once task's offsets go inside its transaction, and who is told after the
#: commit: (topic, called with the offsets once committed)
OffsetsTarget = tuple[str, Callable[[Mapping[bytes, bytes | None]], None]]


class ExactlyOnceSourceSupport(enum.Enum):
    DISABLED = "disabled"
    PREPARING = "preparing"
    ENABLED = "enabled"


class TransactionBoundary(enum.Enum):
    POLL = "poll"
    INTERVAL = "interval"
    CONNECTOR = "connector"


def _one_of(name: str, value: Any, allowed: list[str]) -> None:
    """Kafka's CaseInsensitiveValidString."""
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ConfigError(name, value, "String must be one of (case insensitive): " + ", ".join(allowed))


def worker_support(props: Mapping[str, str]) -> ExactlyOnceSourceSupport:
    """The worker's ``exactly.once.source.support``; a ConnectError worded as Kafka's
    ConfigException for any other value."""
    raw = props.get(WORKER_SUPPORT_CONFIG, ExactlyOnceSourceSupport.DISABLED.value).strip()
    try:
        _one_of(WORKER_SUPPORT_CONFIG, raw, [s.value for s in ExactlyOnceSourceSupport])
    except ConfigError as e:
        raise ConnectError(str(e)) from None
    return ExactlyOnceSourceSupport(raw.lower())


def source_config_def() -> ConfigDef:
    """SourceConnectorConfig's exactly-once keys, grouped as Kafka groups them."""
    group = "Exactly Once Support"
    d = ConfigDef()
    d.define(SUPPORT_CONFIG, ConfigType.STRING, "requested", Importance.MEDIUM,
             'Permitted values are requested, required. If set to "required", forces a preflight check for the '
             "connector to ensure that it can provide exactly-once semantics with the given configuration.",
             group=group, order=1, display_name="Exactly once support",
             validator=lambda n, v: _one_of(n, v, ["requested", "required"]))
    d.define(BOUNDARY_CONFIG, ConfigType.STRING, "poll", Importance.MEDIUM,
             "Permitted values are: poll, interval, connector. When to commit a source task's transaction.",
             group=group, order=2, display_name="Transaction Boundary",
             validator=lambda n, v: _one_of(n, v, [b.value for b in TransactionBoundary]))
    d.define(BOUNDARY_INTERVAL_CONFIG, ConfigType.LONG, None, Importance.LOW,
             "If 'transaction.boundary' is set to 'interval', the time in milliseconds between two commits; "
             "the worker's offset.flush.interval.ms if unset.", group=group, order=3,
             display_name="Transaction boundary interval", validator=_at_least_zero)
    d.define(OFFSETS_TOPIC_CONFIG, ConfigType.STRING, None, Importance.LOW,
             "The name of a separate offsets topic to use for this connector. If empty or not specified, the "
             "worker's global offsets topic name will be used. If specified, the offsets topic will be created if "
             "it does not already exist. Only applicable in distributed mode; in standalone mode, setting this "
             "property will have no effect.", group="offsets.topic", order=1, display_name="Offsets topic",
             validator=_non_empty_or_unset)
    return d


def _non_empty_or_unset(name: str, value: Any) -> None:
    if value is not None and not str(value).strip():
        raise ConfigError(name, value, "String may not be empty")


def _at_least_zero(name: str, value: Any) -> None:
    if value is not None and value < 0:
        raise ConfigError(name, value, "Value must be at least 0")


def _unexpected(e: Exception) -> str:
    message = str(e).strip()
    return ("An unexpected error occurred during validation" + (": " + message if message else
            "; please see the worker logs for more details."))


def validate_source(connector: SourceConnector, config: Mapping[str, str], values: Mapping[str, ConfigValue],
                    worker_enabled: bool) -> None:
    """DistributedHerder's preflight checks: ``exactly.once.support=required`` needs the worker
    enabled and the connector to answer SUPPORTED; ``transaction.boundary=connector`` needs the
    connector to say it defines boundaries. Errors are added to ``values``, Kafka's words."""
    support = values[SUPPORT_CONFIG]
    if not support.errors and str(support.value).lower() == "required":
        if not worker_enabled:
            support.errors.append("This worker does not have exactly-once source support enabled.")
        try:
            answer = connector.exactly_once_support(config)
            if answer is None:
                support.errors.append(
                    "The connector does not implement the API required for preflight validation of exactly-once "
                    "source support. Please consult the documentation for the connector to determine whether it "
                    'supports exactly-once semantics, and then consider reconfiguring the connector to use the value '
                    '"requested" for this property (which will disable this preflight check and allow the connector '
                    "to be created).")
            elif answer is not ExactlyOnceSupport.SUPPORTED:
                support.errors.append("The connector does not support exactly-once semantics with the provided "
                                      "configuration.")
        except Exception as e:  # noqa: BLE001 - the connector's failure is a validation error, as Kafka's
            log.error("Failed while validating connector support for exactly-once semantics", exc_info=e)
            support.errors.append(_unexpected(e))
    boundary = values[BOUNDARY_CONFIG]
    if not boundary.errors and str(boundary.value).lower() == TransactionBoundary.CONNECTOR.value:
        try:
            if connector.can_define_transaction_boundaries(config) is not ConnectorTransactionBoundaries.SUPPORTED:
                boundary.errors.append("The connector does not support connector-defined transaction boundaries "
                                       "with the given configuration. Please reconfigure it to use a different "
                                       "transaction boundary definition.")
        except Exception as e:  # noqa: BLE001
            log.error("Failed while validating connector support for defining its own transaction boundaries",
                      exc_info=e)
            boundary.errors.append(_unexpected(e))


def transactional_id(group_id: str, connector: str, task: int) -> str:
    """Kafka's ``Worker.taskTransactionalId``."""
    return f"{group_id}-{connector}-{task}"


def fence_producers(client_config: Mapping[str, str], transactional_ids: list[str], timeout_s: float = 30.0) -> None:
    """Fence every producer using these transactional ids (Kafka's Admin.fenceProducers):
    InitProducerId bumps each id's epoch, so its old producer can no longer write or commit,
    and its open transaction is aborted. Raises ConnectError if one could not be fenced."""
    for tid in transactional_ids:
        producer = Producer({**client_config, "transactional.id": tid})
        try:
            producer.init_transactions(timeout_s)
        except KafkaException as e:
            raise ConnectError(f"Failed to fence out the producers with transactional id {tid}: {e}") from e
        finally:
            producer.flush(0)


class FencingState:
    """What the config topic says about fencing (Kafka's ``connectorsPendingFencing`` and task
    count records): task configs committed after a connector's latest task count record leave
    it pending. Fed every config record by the reader thread; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.task_count_records: dict[str, int] = {}
        self.pending: set[str] = set()

    def apply(self, key: str, value: Any) -> None:
        with self._lock:
            if key.startswith(TASK_COUNT_RECORD_PREFIX):
                name = key[len(TASK_COUNT_RECORD_PREFIX):]
                if value is not None:
                    self.task_count_records[name] = int(value["task-count"])
                    self.pending.discard(name)
            elif key.startswith("commit-") and value is not None:
                self.pending.add(key[len("commit-"):])
            elif key.startswith("connector-") and value is None:
                name = key[len("connector-"):]
                self.pending.discard(name)
                self.task_count_records.pop(name, None)

    def plan(self, connector: str) -> tuple[bool, int]:
        """(whether a task count record must be written, how many old tasks' producers to fence)."""
        with self._lock:
            if connector not in self.pending:
                return False, 0
            return True, self.task_count_records.get(connector, 0)


def task_count_record(connector: str, task_count: int) -> tuple[str, dict[str, int]]:
    """Kafka's TASK_COUNT_RECORD_V0, as its JsonConverter writes it without schemas."""
    return TASK_COUNT_RECORD_PREFIX + connector, {"task-count": task_count}


class WorkerTransactionContext:
    """Kafka's WorkerTransactionContext: what the task asked for, each request taken once by the
    worker thread; a record is known by identity, as Kafka's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: ("commit" or "abort", id of the record or None for the batch)
        self._asked: set[tuple[str, int | None]] = set()

    def commit_transaction(self, record: SourceRecord | None = None) -> None:
        self._ask("commit", record)

    def abort_transaction(self, record: SourceRecord | None = None) -> None:
        self._ask("abort", record)

    def should_commit_batch(self) -> bool:
        return self._take(("commit", None))

    def should_abort_batch(self) -> bool:
        return self._take(("abort", None))

    def should_commit_on(self, record: SourceRecord) -> bool:
        return self._take(("commit", id(record)))

    def should_abort_on(self, record: SourceRecord) -> bool:
        return self._take(("abort", id(record)))

    def _ask(self, what: str, record: SourceRecord | None) -> None:
        with self._lock:
            self._asked.add((what, None if record is None else id(record)))

    def _take(self, request: tuple[str, int | None]) -> bool:
        with self._lock:
            if request in self._asked:
                self._asked.discard(request)
                return True
            return False


class BoundaryDecision(enum.Enum):
    NONE = "none"
    COMMIT = "commit"
    ABORT_THEN_COMMIT = "abort"  # drop the records, still commit the offsets (Kafka's behaviour)


class TransactionBoundaryManager:
    """When a transaction ends (Kafka's TransactionBoundaryManager), pure: times are passed in
    (monotonic milliseconds); ``now_ms`` of construction starts the first interval."""

    def __init__(self, boundary: TransactionBoundary, interval_ms: int, now_ms: float,
                 context: WorkerTransactionContext | None = None) -> None:
        if boundary is TransactionBoundary.CONNECTOR and context is None:
            raise ValueError("Transaction context must be provided when using connector-defined transaction boundaries")
        self.boundary = boundary
        self.interval_ms = interval_ms
        self.last_commit_ms = now_ms
        self.context = context

    def after_record(self, record: SourceRecord) -> BoundaryDecision:
        if self.boundary is not TransactionBoundary.CONNECTOR:
            return BoundaryDecision.NONE
        assert self.context is not None
        if self.context.should_abort_on(record):
            return BoundaryDecision.ABORT_THEN_COMMIT
        return BoundaryDecision.COMMIT if self.context.should_commit_on(record) else BoundaryDecision.NONE

    def after_batch(self, now_ms: float) -> BoundaryDecision:
        if self.boundary is TransactionBoundary.POLL:
            return BoundaryDecision.COMMIT
        if self.boundary is TransactionBoundary.INTERVAL:
            if now_ms >= self.last_commit_ms + self.interval_ms:
                self.last_commit_ms = now_ms
                return BoundaryDecision.COMMIT
            return BoundaryDecision.NONE
        assert self.context is not None
        if self.context.should_abort_batch():
            return BoundaryDecision.ABORT_THEN_COMMIT
        return BoundaryDecision.COMMIT if self.context.should_commit_batch() else BoundaryDecision.NONE

    def at_stop(self, now_ms: float) -> BoundaryDecision:
        """When the task stops or pauses: poll and interval commit what is open; a connector
        that defines its boundaries commits only if it asked to."""
        if self.boundary is TransactionBoundary.CONNECTOR:
            return self.after_batch(now_ms)
        return BoundaryDecision.COMMIT


def boundary_manager(conn_props: Mapping[str, str], offset_flush_interval_ms: int, now_ms: float,
                     context: WorkerTransactionContext | None) -> TransactionBoundaryManager:
    parsed = source_config_def().parse(conn_props)
    boundary = TransactionBoundary(str(parsed[BOUNDARY_CONFIG]).lower())
    interval = parsed[BOUNDARY_INTERVAL_CONFIG]
    return TransactionBoundaryManager(boundary, offset_flush_interval_ms if interval is None else int(interval),
                                      now_ms, context)


class ExactlyOnceSource:
    """A distributed worker's exactly-once part: the factory of its source tasks (set as the
    worker's ``source_task_factory`` when enabled) and the leader's zombie fencing."""

    def __init__(self, *, group_id: str, client_config: Mapping[str, str], offset_topic: str, rest_url: str,
                 read_offsets_to_end: Callable[[], None],
                 offsets_committed: Callable[[Mapping[bytes, bytes | None]], None]) -> None:
        self.group_id = group_id
        self.client_config = dict(client_config)
        self.offset_topic = offset_topic
        self.rest_url = rest_url
        self.read_offsets_to_end = read_offsets_to_end
        self.offsets_committed = offsets_committed
        self.fencing = FencingState()
        #: a connector's own offsets topic (KIP-618's ``offsets.storage.topic``), if it has one
        self.connector_offsets: Callable[[str, Mapping[str, str]], OffsetsTarget | None] = lambda name, props: None

    def offsets_target(self, connector: str, conn_props: Mapping[str, str]) -> OffsetsTarget:
        return self.connector_offsets(connector, conn_props) or (self.offset_topic, self.offsets_committed)

    def task(self, worker: Worker, task_id: TaskId, task: SourceTask, *args: Any) -> WorkerSourceTask:
        return ExactlyOnceWorkerSourceTask(worker, task_id, task, *args, eos=self)

    def fence_zombies(self, connector: str, task_count: int,
                      write: Callable[[tuple[str, Any]], None]) -> None:
        """The leader's round of fencing (Kafka's doFenceZombieSourceTasks), the config topic
        read to its end by the caller: fence the previous generation's producers unless both
        it and this one have a single task (the new task's own InitProducerId fences the old),
        then record this generation's task count. Nothing to do if no task configs came since
        the last task count record."""
        pending, previous = self.fencing.plan(connector)
        if not pending:
            log.debug("Skipping zombie fencing round for connector %s: old task generations are fenced", connector)
            return
        if previous and not (previous == 1 and task_count == 1):
            ids = [transactional_id(self.group_id, connector, i) for i in range(previous)]
            log.info("Fencing out %d task producers of connector %s", len(ids), connector)
            fence_producers(self.client_config, ids)
        write(task_count_record(connector, task_count))

    def request_fencing(self, connector: str, stopping: threading.Event, timeout_s: float = 60.0) -> None:
        """A task's preflight: ``PUT /connectors/{name}/fence`` through this worker's REST API,
        which forwards it to the leader; asked again during a rebalance (409)."""
        import httpx

        url = self.rest_url.rstrip("/") + f"/connectors/{quote(connector, safe='')}/fence"
        deadline = time.monotonic() + timeout_s
        while True:
            why: str
            try:
                r = httpx.put(url, timeout=timeout_s)
                if r.status_code < 300:
                    return
                why = f"{r.status_code} {r.text}"
                if r.status_code != 409:
                    raise ConnectError(f"Failed to perform round of zombie fencing: {why}")
            except httpx.HTTPError as e:
                why = str(e)
            if time.monotonic() > deadline or stopping.wait(0.5):
                raise ConnectError(f"Failed to perform round of zombie fencing: {why}")


class ExactlyOnceWorkerSourceTask(WorkerSourceTask):
    """Kafka's ExactlyOnceWorkerSourceTask: records and their offsets in one transaction of the
    task's transactional producer, ended at the connector's ``transaction.boundary``. A failed
    commit (a fenced producer, an expired transaction) fails the task; what it did not commit
    is aborted by the broker, never written twice."""

    def __init__(self, worker: Worker, task_id: TaskId, task: SourceTask, *args: Any, eos: ExactlyOnceSource) -> None:
        super().__init__(worker, task_id, task, *args)
        self.eos = eos
        self.transaction_open = False
        self.transaction_context: WorkerTransactionContext | None = None
        self.boundaries: TransactionBoundaryManager | None = None
        self.offsets_topic, self.offsets_committed = eos.offset_topic, eos.offsets_committed

    def initialize_and_start(self) -> None:
        self.eos.request_fencing(self.task_id.connector, self.stopping)
        if self.stopping.is_set():
            # stopped (a rebalance) while the leader fenced: a task of an old generation must not
            # take its transactional id back from its successor; the worker loop ends at once
            log.info("%s stopped before it started: not initializing its transactional producer", self.task_id)
            return
        config: dict[str, Any] = {"partitioner": "murmur2_random",  # offsets keyed as Kafka's workers write them
                                  **self.worker.producer_config(self.conn_props),
                                  "transactional.id": transactional_id(self.eos.group_id, *_id(self.task_id)),
                                  "enable.idempotence": "true"}
        self.producer = Producer(config)
        try:
            self.producer.init_transactions(30)
        except KafkaException as e:
            raise ConnectError(f"Failed to initialize the transactional producer of task {self.task_id}: {e}") from e
        self.eos.read_offsets_to_end()
        boundary = str(self.conn_props.get(BOUNDARY_CONFIG, "poll")).lower()
        if boundary == TransactionBoundary.CONNECTOR.value:
            self.transaction_context = WorkerTransactionContext()
        self.boundaries = boundary_manager(self.conn_props, self.worker.config.offset_flush_interval_ms,
                                           time.monotonic() * 1000, self.transaction_context)
        self.offset_store = self.worker.connector_offset_store(self.task_id.connector, self.conn_props)
        self.offsets_topic, self.offsets_committed = self.eos.offsets_target(self.task_id.connector, self.conn_props)
        offsets = ConnectorOffsets(self.offset_store, self.task_id.connector)
        self.task.initialize(_SourceTaskContext(offsets, self.task_props, self.transaction_context))
        self.task.start(self.task_props)

    def iteration(self) -> None:
        assert self.producer is not None and self.boundaries is not None
        try:
            super().iteration()
            if self.transaction_open or self.pending_records or self.pending_offsets:
                # also after an empty poll: an interval's transaction ends on time, as Kafka's
                self._end(self.boundaries.after_batch(time.monotonic() * 1000))
        except KafkaException as e:  # a fenced or failed producer: its transaction cannot commit
            raise ConnectError(f"Failed to flush offsets and/or records for task {self.task_id}: {e}") from e
        except ConnectError as e:
            if self.send_error is None:
                raise
            raise ConnectError(f"Failed to flush offsets and/or records for task {self.task_id}: "
                               f"{self.send_error}") from e

    def send(self, record: SourceRecord) -> None:
        assert self.producer is not None and self.boundaries is not None
        if record.topic == self.offsets_topic:
            raise ConnectError("Source tasks may not produce to their own offsets topics when exactly-once "
                               "support is enabled")
        if not self.transaction_open:
            self.producer.begin_transaction()
            self.transaction_open = True
        super().send(record)
        self._end(self.boundaries.after_record(record))

    def _end(self, decision: BoundaryDecision) -> None:
        if decision is BoundaryDecision.ABORT_THEN_COMMIT and self.producer is not None:
            if self.transaction_open:
                log.info("%s Aborting transaction as requested by connector", self.task_id)
                self.producer.abort_transaction(30)
                self.transaction_open = False
            self.commit_transaction()
        elif decision is BoundaryDecision.COMMIT:
            self.commit_transaction()

    def commit(self) -> None:
        """The worker loop's periodic flush: offsets only move with transactions, so nothing to
        do but at the end (stopping), where the open transaction ends as its boundary says."""
        if self.stopping.is_set() and self.boundaries is not None:
            self._end(self.boundaries.at_stop(time.monotonic() * 1000))

    def on_pause(self) -> None:
        if self.boundaries is not None:
            self._end(self.boundaries.at_stop(time.monotonic() * 1000))

    def commit_transaction(self) -> None:
        """The records sent and their offsets, in one transaction (Kafka's commitTransaction)."""
        producer = self.producer
        assert producer is not None
        if not self.transaction_open and not self.pending_offsets:
            self._committed()
            return
        try:
            if not self.transaction_open:
                producer.begin_transaction()
                self.transaction_open = True
            for key, value in self.pending_offsets.items():
                producer.produce(self.offsets_topic, key=key, value=value, on_delivery=self._on_delivery)
            producer.commit_transaction(30)
            if self.send_error is not None:
                raise self.send_error
        except Exception as e:
            raise ConnectError(f"Failed to flush offsets and/or records for task {self.task_id}: {e}") from e
        finally:
            self.transaction_open = False
        if self.pending_offsets:
            self.offsets_committed(self.pending_offsets)
            self.pending_offsets = {}
        self._committed()

    def _committed(self) -> None:
        records, self.pending_records = self.pending_records, []
        for r in records:
            self.task.commit_record(r, None)
        self.task.commit()

    def close(self) -> None:
        if self.boundaries is None:
            return  # never started
        producer = self.producer
        if producer is not None and self.transaction_open:
            try:
                producer.abort_transaction(5)  # a task that failed: nothing of it is committed
            except KafkaException as e:
                log.warning("%s Could not abort the open transaction: %s", self.task_id, e)
            self.transaction_open = False
        super().close()


def _id(task_id: TaskId) -> tuple[str, int]:
    return task_id.connector, task_id.task
