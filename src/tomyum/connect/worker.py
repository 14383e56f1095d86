"""The Worker: runs connectors and tasks for a herder (Kafka's Worker / WorkerSourceTask /
WorkerSinkTask), knowing nothing of how configurations are stored or agreed on.

A herder (standalone today, distributed later) decides *what* runs; the worker runs it: it
instantiates plugins, starts each task in a thread of its own, converts and transforms records,
produces and consumes with confluent-kafka, stores source offsets, commits sink offsets and
reports every state change to a :class:`StatusListener`. Tasks are paused and resumed through
their target state; stopping a task waits (bounded) for its thread.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from tomyum.connect import plugins
from tomyum.connect.connector import (
    Connector, ConnectError, RetriableError, SinkConnector, SinkTask, SourceConnector, SourceTask,
    TransactionContext,
)
from tomyum.connect.converters import Converter, dumps
from tomyum.connect.data import Headers, SinkRecord, SourceRecord, TimestampType
from tomyum.connect.error_handling import (
    SKIPPED, DeadLetterQueueReporter, ErrorConfig, ErrorReporter, LogReporter, ProcessingContext,
    RetryWithToleranceOperator, Stage,
)
from tomyum.connect.headers import SimpleHeaderConverter
from tomyum.connect.offsets import ConnectorOffsets, OffsetBackingStore, offset_key
from tomyum.connect.transforms import TransformationChain

log = logging.getLogger("tomyum.connect.worker")

DEFAULT_KEY_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"


class TargetState(enum.Enum):
    STARTED = "STARTED"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"


class State(enum.Enum):
    UNASSIGNED = "UNASSIGNED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    FAILED = "FAILED"
    RESTARTING = "RESTARTING"
    STOPPED = "STOPPED"
    DESTROYED = "DESTROYED"


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class TaskId:
    connector: str
    task: int

    def __str__(self) -> str:
        return f"{self.connector}-{self.task}"


class StatusListener(Protocol):
    def on_connector_state(self, connector: str, state: State, trace: str | None) -> None: ...

    def on_task_state(self, task: TaskId, state: State, trace: str | None) -> None: ...

    def on_topic_used(self, connector: str, topic: str, task: int = 0) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    """The worker's own keys (Kafka's WorkerConfig); ``originals`` keeps every key for prefixes."""

    bootstrap_servers: str
    key_converter: str
    value_converter: str
    header_converter: str
    offset_flush_interval_ms: int
    worker_id: str
    originals: Mapping[str, str]

    @classmethod
    def from_props(cls, props: Mapping[str, str], worker_id: str) -> WorkerConfig:
        for required in ("key.converter", "value.converter"):
            if not props.get(required):
                raise ConnectError(f'Missing required configuration "{required}" which has no default value.')
        return cls(bootstrap_servers=props.get("bootstrap.servers", "localhost:9092"),
                   key_converter=props["key.converter"], value_converter=props["value.converter"],
                   header_converter=props.get("header.converter",
                                              "org.apache.kafka.connect.storage.SimpleHeaderConverter"),
                   offset_flush_interval_ms=int(props.get("offset.flush.interval.ms", "10000")),
                   worker_id=worker_id, originals=dict(props))

    def with_prefix(self, prefix: str) -> dict[str, str]:
        return {k[len(prefix):]: v for k, v in self.originals.items() if k.startswith(prefix)}


def _trace(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def make_converter(worker: WorkerConfig, conn: Mapping[str, str], key: str, is_key: bool) -> Converter:
    """The ``key.converter``/``value.converter`` of a connector (its own, else the worker's),
    configured with the keys under that prefix."""
    source = conn if conn.get(key) else worker.originals
    name = conn.get(key) or (worker.key_converter if is_key else worker.value_converter)
    cls = plugins.resolve(plugins.CONVERTER, name)
    converter: Converter = cls()
    prefix = key + "."
    converter.configure({k[len(prefix):]: v for k, v in source.items() if k.startswith(prefix)}, is_key)
    return converter


def _client_config(base: Mapping[str, str], worker_prefix: Mapping[str, str],
                   conn: Mapping[str, str], override_prefix: str) -> dict[str, str]:
    out = dict(base)
    out.update(worker_prefix)
    out.update({k[len(override_prefix):]: v for k, v in conn.items() if k.startswith(override_prefix)})
    return out


class _ConnectorContext:
    def __init__(self, worker: Worker, name: str) -> None:
        self._worker, self._name = worker, name

    def request_task_reconfiguration(self) -> None:
        self._worker.on_reconfiguration_request(self._name)

    def raise_error(self, error: BaseException) -> None:
        self._worker.listener.on_connector_state(self._name, State.FAILED, _trace(error))


class WorkerConnector:
    """One running connector instance (Kafka's WorkerConnector)."""

    def __init__(self, name: str, connector: Connector, props: Mapping[str, str]) -> None:
        self.name = name
        self.connector = connector
        self.props = dict(props)
        self.started = False


class Worker:
    """Runs connector instances and task threads; thread-safe."""

    def __init__(self, config: WorkerConfig, offset_store: OffsetBackingStore, listener: StatusListener,
                 on_reconfiguration_request: Callable[[str], None] = lambda name: None) -> None:
        self.config = config
        self.offset_store = offset_store
        self.listener = listener
        self.on_reconfiguration_request = on_reconfiguration_request
        self._lock = threading.RLock()
        self._connectors: dict[str, WorkerConnector] = {}
        self._tasks: dict[TaskId, WorkerTask] = {}
        #: makes the worker task of each source task (the distributed herder swaps in
        #: exactly-once source tasks, KIP-618, when ``exactly.once.source.support=enabled``)
        self.source_task_factory: Callable[..., WorkerSourceTask] = WorkerSourceTask
        #: the offset store of a source connector, given its name and config (the distributed
        #: herder gives a connector with its own ``offsets.storage.topic`` a store of its own)
        self.connector_offset_store: Callable[[str, Mapping[str, str]], OffsetBackingStore] = (
            lambda name, conn_props: self.offset_store)

    # --- connectors ---------------------------------------------------------------------------
    def start_connector(self, name: str, props: Mapping[str, str], target: TargetState) -> bool:
        """Instantiate and (unless STOPPED) start the connector; False and FAILED status on error."""
        try:
            cls = plugins.connector_class(props["connector.class"])
            connector = cls()
            connector.initialize(_ConnectorContext(self, name))
            wc = WorkerConnector(name, connector, props)
            with self._lock:
                self._connectors[name] = wc
            if target is TargetState.STOPPED:
                self.listener.on_connector_state(name, State.STOPPED, None)
                return True
            connector.start(dict(props))
            wc.started = True
        except Exception as e:  # the connector's own failure: reported, not raised
            log.error("Failed to start connector %s", name, exc_info=e)
            self.listener.on_connector_state(name, State.FAILED, _trace(e))
            return False
        self.listener.on_connector_state(name, State.PAUSED if target is TargetState.PAUSED else State.RUNNING, None)
        return True

    def is_running(self, name: str) -> bool:
        with self._lock:
            wc = self._connectors.get(name)
            return wc is not None and wc.started

    def connector_task_configs(self, name: str, max_tasks: int) -> list[dict[str, str]]:
        with self._lock:
            wc = self._connectors[name]
        configs = wc.connector.task_configs(max_tasks)
        out = []
        for c in configs[:max_tasks]:
            task_props = dict(c)
            task_cls = wc.connector.task_class()
            task_props["task.class"] = task_cls.kafka_class or f"{task_cls.__module__}.{task_cls.__qualname__}"
            if isinstance(wc.connector, SinkConnector):
                for k in ("topics", "topics.regex"):
                    if k in wc.props:
                        task_props[k] = wc.props[k]
            out.append(task_props)
        return out

    def stop_connector(self, name: str, state: State = State.UNASSIGNED) -> None:
        with self._lock:
            wc = self._connectors.pop(name, None)
        if wc is None:
            return
        if wc.started:
            try:
                wc.connector.stop()
            except Exception as e:
                log.error("Error while stopping connector %s", name, exc_info=e)
        self.listener.on_connector_state(name, state, None)

    def connectors(self) -> list[str]:
        with self._lock:
            return list(self._connectors)

    # --- tasks --------------------------------------------------------------------------------
    def start_task(self, task_id: TaskId, conn_props: Mapping[str, str], task_props: Mapping[str, str],
                   target: TargetState) -> bool:
        try:
            conn_cls = plugins.connector_class(conn_props["connector.class"])
            task_cls = conn_cls().task_class()
            task = task_cls()
            key_conv = make_converter(self.config, conn_props, "key.converter", True)
            value_conv = make_converter(self.config, conn_props, "value.converter", False)
            chain = TransformationChain.from_props(conn_props)
            errors = ErrorConfig.from_props(conn_props)
            wt: WorkerTask
            if isinstance(task, SourceTask):
                wt = self.source_task_factory(self, task_id, task, conn_props, task_props, key_conv, value_conv, chain, errors)
            elif isinstance(task, SinkTask):
                wt = WorkerSinkTask(self, task_id, task, conn_props, task_props, key_conv, value_conv, chain, errors)
            else:
                raise ConnectError(f"{task_cls.__name__} is neither a SourceTask nor a SinkTask")
        except Exception as e:
            log.error("Failed to start task %s", task_id, exc_info=e)
            self.listener.on_task_state(task_id, State.FAILED, _trace(e))
            return False
        with self._lock:
            if task_id in self._tasks:
                raise ConnectError(f"Task already exists in this worker: {task_id}")
            self._tasks[task_id] = wt
        wt.set_target_state(target)
        wt.start()
        return True

    def stop_tasks(self, ids: list[TaskId], timeout_s: float = 5.0) -> None:
        with self._lock:
            tasks = [self._tasks.pop(i) for i in ids if i in self._tasks]
        for t in tasks:
            t.request_stop()
        deadline = time.monotonic() + timeout_s
        for t in tasks:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.error("Graceful stop of task %s failed.", t.task_id)

    def is_current(self, task: WorkerTask) -> bool:
        """Whether ``task`` may report its state: it is the running instance of its id, or no
        instance is (a task stopped late must not overwrite the state of its replacement)."""
        with self._lock:
            current = self._tasks.get(task.task_id)
            return current is None or current is task

    def task_ids(self, connector: str | None = None) -> list[TaskId]:
        with self._lock:
            return sorted(i for i in self._tasks if connector is None or i.connector == connector)

    def set_target_state(self, connector: str, target: TargetState) -> None:
        with self._lock:
            tasks = [t for i, t in self._tasks.items() if i.connector == connector]
        for t in tasks:
            t.set_target_state(target)
        if target in (TargetState.STARTED, TargetState.PAUSED) and self.is_running(connector):
            self.listener.on_connector_state(
                connector, State.RUNNING if target is TargetState.STARTED else State.PAUSED, None)

    def stop(self) -> None:
        self.stop_tasks(self.task_ids())
        for name in self.connectors():
            self.stop_connector(name)

    # --- clients ------------------------------------------------------------------------------
    def producer_config(self, conn_props: Mapping[str, str]) -> dict[str, str]:
        base = {"bootstrap.servers": self.config.bootstrap_servers, "acks": "all"}
        return _client_config(base, self.config.with_prefix("producer."), conn_props, "producer.override.")

    def consumer_config(self, connector: str, conn_props: Mapping[str, str]) -> dict[str, str]:
        base = {"bootstrap.servers": self.config.bootstrap_servers, "group.id": f"connect-{connector}",
                "enable.auto.commit": "false", "auto.offset.reset": "earliest"}
        return _client_config(base, self.config.with_prefix("consumer."), conn_props, "consumer.override.")

    def admin(self, conn_props: Mapping[str, str] | None = None) -> AdminClient:
        base = {"bootstrap.servers": self.config.bootstrap_servers}
        config: dict[str, str | int | float | bool] = {}
        config.update(_client_config(base, self.config.with_prefix("admin."), conn_props or {}, "admin.override."))
        return AdminClient(config)

    # --- offsets (KIP-875) --------------------------------------------------------------------
    def source_offsets(self, connector: str, conn_props: Mapping[str, str]) -> list[dict[str, Any]]:
        store = self.connector_offset_store(connector, conn_props)
        return [{"partition": p, "offset": o} for p, o in ConnectorOffsets(store, connector).all()]

    def sink_offsets(self, connector: str, conn_props: Mapping[str, str]) -> list[dict[str, Any]]:
        group = conn_props.get("consumer.override.group.id", f"connect-{connector}")
        admin = self.admin(conn_props)
        from confluent_kafka import ConsumerGroupTopicPartitions
        futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=10)
        result = futures[group].result(timeout=15)
        return [{"partition": {"kafka_topic": tp.topic, "kafka_partition": tp.partition},
                 "offset": {"kafka_offset": tp.offset}}
                for tp in sorted(result.topic_partitions, key=lambda t: (t.topic, t.partition)) if tp.offset >= 0]

    def alter_source_offsets(self, connector: str, conn_props: Mapping[str, str],
                             offsets: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> bool:
        cls = plugins.connector_class(conn_props["connector.class"])
        inst = cls()
        assert isinstance(inst, SourceConnector)
        managed = inst.alter_offsets(conn_props, {_FrozenDict(p): o for p, o in offsets})
        self.connector_offset_store(connector, conn_props).set(
            {offset_key(connector, p): None if o is None else dumps(o) for p, o in offsets})
        return managed

    def reset_source_offsets(self, connector: str, conn_props: Mapping[str, str]) -> bool:
        current = ConnectorOffsets(self.connector_offset_store(connector, conn_props), connector).all()
        return self.alter_source_offsets(connector, conn_props, [(p, None) for p, _ in current])

    def alter_sink_offsets(self, connector: str, conn_props: Mapping[str, str],
                           offsets: list[tuple[str, int, int | None]]) -> bool:
        from confluent_kafka import ConsumerGroupTopicPartitions
        cls = plugins.connector_class(conn_props["connector.class"])
        inst = cls()
        assert isinstance(inst, SinkConnector)
        managed = inst.alter_offsets(conn_props, {(t, p): o for t, p, o in offsets})
        group = conn_props.get("consumer.override.group.id", f"connect-{connector}")
        admin = self.admin(conn_props)
        to_alter = [TopicPartition(t, p, o) for t, p, o in offsets if o is not None]
        to_delete = [TopicPartition(t, p) for t, p, o in offsets if o is None]
        if to_alter:
            fs = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, to_alter)], request_timeout=10)
            for f in fs.values():
                f.result(timeout=15)
        if to_delete:
            self._delete_group_offsets(admin, group, to_delete)
        return managed

    def reset_sink_offsets(self, connector: str, conn_props: Mapping[str, str]) -> bool:
        cls = plugins.connector_class(conn_props["connector.class"])
        inst = cls()
        assert isinstance(inst, SinkConnector)
        current = self.sink_offsets(connector, conn_props)
        managed = inst.alter_offsets(conn_props, {(o["partition"]["kafka_topic"], o["partition"]["kafka_partition"]): None
                                                  for o in current})
        group = conn_props.get("consumer.override.group.id", f"connect-{connector}")
        admin = self.admin(conn_props)
        fs = admin.delete_consumer_groups([group], request_timeout=10)
        for f in fs.values():
            try:
                f.result(timeout=15)
            except KafkaException as e:
                if e.args[0].code() != KafkaError.GROUP_ID_NOT_FOUND:
                    raise ConnectError(f"Failed to reset offsets of the sink connector {connector}: {e}") from e
        return managed

    @staticmethod
    def _delete_group_offsets(admin: AdminClient, group: str, partitions: list[TopicPartition]) -> None:
        from confluent_kafka import ConsumerGroupTopicPartitions
        delete = getattr(admin, "delete_consumer_group_offsets", None)
        if delete is None:
            raise ConnectError("this confluent-kafka cannot delete committed offsets")
        for f in delete([ConsumerGroupTopicPartitions(group, partitions)], request_timeout=10).values():
            f.result(timeout=15)


class _FrozenDict(dict[str, Any]):
    def __hash__(self) -> int:  # type: ignore[override]
        return hash(json.dumps(self, sort_keys=True))


class WorkerTask(threading.Thread):
    """A task's thread: initialize, start, then loop ``iteration()`` until stopped; any
    unrecovered exception makes it FAILED with its trace."""

    def __init__(self, worker: Worker, task_id: TaskId, conn_props: Mapping[str, str],
                 task_props: Mapping[str, str], key_conv: Converter, value_conv: Converter,
                 chain: TransformationChain, errors: ErrorConfig) -> None:
        super().__init__(name=f"task-thread-{task_id}", daemon=True)
        self.worker = worker
        self.task_id = task_id
        self.conn_props = dict(conn_props)
        self.task_props = dict(task_props)
        self.key_conv = key_conv
        self.value_conv = value_conv
        self.header_conv = SimpleHeaderConverter()
        self.chain = chain
        self.errors = errors
        self.stopping = threading.Event()
        self._target = TargetState.STARTED
        self._target_changed = threading.Event()
        self.reporters: list[ErrorReporter] = []
        if errors.log_enable:
            self.reporters.append(LogReporter(str(task_id), errors.log_include_messages))
        self.operator = RetryWithToleranceOperator(errors, self.reporters, self.stopping)
        self.last_commit = time.monotonic()

    def set_target_state(self, target: TargetState) -> None:
        self._target = target
        self._target_changed.set()

    def request_stop(self) -> None:
        self.stopping.set()
        self._target_changed.set()

    def run(self) -> None:
        worker = self.worker
        this = self

        class _Guarded:
            def on_task_state(self, task: TaskId, state: State, trace: str | None) -> None:
                with worker._lock:  # checked and reported at once: no replacement can start between
                    if worker.is_current(this):
                        worker.listener.on_task_state(task, state, trace)
        listener = _Guarded()
        try:
            self.initialize_and_start()
            paused_reported = running_reported = False
            while not self.stopping.is_set():
                if self._target is not TargetState.STARTED:
                    if not paused_reported:
                        self.on_pause()
                        listener.on_task_state(self.task_id, State.PAUSED, None)
                        paused_reported = True
                    self._target_changed.wait(0.5)
                    self._target_changed.clear()
                    continue
                if paused_reported or not running_reported:
                    if paused_reported:
                        self.on_resume()
                    paused_reported, running_reported = False, True
                    listener.on_task_state(self.task_id, State.RUNNING, None)
                self.iteration()
                if (time.monotonic() - self.last_commit) * 1000 >= self.worker.config.offset_flush_interval_ms:
                    self.commit()
                    self.last_commit = time.monotonic()
            self.commit()
        except Exception as e:
            log.error("%s Task threw an uncaught and unrecoverable exception. Task is being killed and will "
                      "not recover until manually restarted", self.task_id, exc_info=e)
            listener.on_task_state(self.task_id, State.FAILED, _trace(e))
            self.close()
            return
        self.close()
        listener.on_task_state(self.task_id, State.UNASSIGNED, None)

    def initialize_and_start(self) -> None:
        raise NotImplementedError

    def iteration(self) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def on_pause(self) -> None:
        pass

    def on_resume(self) -> None:
        pass

    def converted_headers(self, topic: str, headers: Headers) -> list[tuple[str, bytes | None]]:
        return [(h.key, self.header_conv.from_connect_header(topic, h.key, h.schema, h.value)) for h in headers]


class _SourceTaskContext:
    def __init__(self, offsets: ConnectorOffsets, props: Mapping[str, str],
                 transactions: TransactionContext | None = None) -> None:
        self._offsets = offsets
        self._props = props
        self._transactions = transactions

    @property
    def transaction_context(self) -> TransactionContext | None:
        return self._transactions

    @property
    def offset_storage_reader(self) -> ConnectorOffsets:
        return self._offsets

    def configs(self) -> Mapping[str, str]:
        return self._props


class WorkerSourceTask(WorkerTask):
    """poll → transform → convert → produce; offsets of acknowledged records flushed every
    ``offset.flush.interval.ms`` (after ``producer.flush()``, so only what Kafka has)."""

    def __init__(self, worker: Worker, task_id: TaskId, task: SourceTask, *args: Any) -> None:
        super().__init__(worker, task_id, *args)
        self.task = task
        self.producer: Producer | None = None
        self.pending_offsets: dict[bytes, bytes | None] = {}
        self.pending_records: list[SourceRecord] = []
        self.send_error: BaseException | None = None
        self.topics_seen: set[str] = set()
        self.offset_store: OffsetBackingStore = worker.offset_store  # the connector's, once started

    def initialize_and_start(self) -> None:
        self.producer = Producer(self.worker.producer_config(self.conn_props))
        self.offset_store = self.worker.connector_offset_store(self.task_id.connector, self.conn_props)
        offsets = ConnectorOffsets(self.offset_store, self.task_id.connector)
        self.task.initialize(_SourceTaskContext(offsets, self.task_props))
        self.task.start(self.task_props)

    def iteration(self) -> None:
        assert self.producer is not None
        try:
            records = self.task.poll()
        except RetriableError as e:
            log.warning("%s failed to poll records from SourceTask. Will retry operation.", self.task_id, exc_info=e)
            return
        self.producer.poll(0)
        if self.send_error is not None:
            raise ConnectError(f"Unrecoverable exception from producer send callback: {self.send_error}")
        for record in records or []:
            self.send(record)

    def send(self, record: SourceRecord) -> None:
        assert self.producer is not None
        ctx = ProcessingContext(stage=Stage.TRANSFORMATION)
        transformed = self.operator.execute(lambda: self.chain.apply(record), ctx)
        if transformed is not SKIPPED and transformed is not None:
            topic = transformed.topic
            ctx = ProcessingContext(stage=Stage.KEY_CONVERTER, executing_class=type(self.key_conv).__name__)
            key = self.operator.execute(
                lambda: self.key_conv.from_connect_data(topic, transformed.key_schema, transformed.key, transformed.headers), ctx)
            value: Any = SKIPPED
            if key is not SKIPPED:
                ctx = ProcessingContext(stage=Stage.VALUE_CONVERTER, executing_class=type(self.value_conv).__name__)
                value = self.operator.execute(
                    lambda: self.value_conv.from_connect_data(topic, transformed.value_schema, transformed.value,
                                                              transformed.headers), ctx)
            if value is not SKIPPED:
                kwargs: dict[str, Any] = {"key": key, "value": value,
                                          "headers": self.converted_headers(topic, transformed.headers) or None}
                if transformed.kafka_partition is not None:
                    kwargs["partition"] = transformed.kafka_partition
                if transformed.timestamp is not None:
                    kwargs["timestamp"] = transformed.timestamp
                while True:
                    try:
                        self.producer.produce(topic, on_delivery=self._on_delivery, **kwargs)
                        break
                    except BufferError:
                        self.producer.poll(0.1)
                if topic not in self.topics_seen:
                    self.topics_seen.add(topic)
                    self.worker.listener.on_topic_used(self.task_id.connector, topic, self.task_id.task)
        if record.source_partition is not None:
            self.pending_offsets[offset_key(self.task_id.connector, record.source_partition)] = (
                None if record.source_offset is None else dumps(dict(record.source_offset)))
        self.pending_records.append(record)

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None and self.send_error is None:
            self.send_error = KafkaException(err)

    def commit(self) -> None:
        if self.producer is None:
            return
        remaining = self.producer.flush(30)
        if remaining or self.send_error is not None:
            raise ConnectError(f"Failed to flush, timed out or failed while waiting for the producer: {self.send_error}")
        if self.pending_offsets:
            self.offset_store.set(self.pending_offsets)
            self.pending_offsets = {}
        records, self.pending_records = self.pending_records, []
        for r in records:
            self.task.commit_record(r, None)
        self.task.commit()

    def close(self) -> None:
        try:
            self.task.stop()
        except Exception as e:
            log.error("Error stopping task %s", self.task_id, exc_info=e)
        if self.producer is not None:
            self.producer.flush(5)
            self.producer = None


class _SinkTaskContext:
    def __init__(self, task: WorkerSinkTask) -> None:
        self._task = task

    def configs(self) -> Mapping[str, str]:
        return self._task.task_props

    def assignment(self) -> set[tuple[str, int]]:
        return set(self._task.assigned)

    def offset(self, offsets: Mapping[tuple[str, int], int]) -> None:
        self._task.rewinds.update(offsets)

    def request_commit(self) -> None:
        self._task.last_commit = 0.0

    def pause(self, *partitions: tuple[str, int]) -> None:
        if self._task.consumer is not None:
            self._task.consumer.pause([TopicPartition(t, p) for t, p in partitions])

    def resume(self, *partitions: tuple[str, int]) -> None:
        if self._task.consumer is not None:
            self._task.consumer.resume([TopicPartition(t, p) for t, p in partitions])

    def errant_record_reporter(self) -> Callable[[SinkRecord, BaseException], None]:
        return self._task.report_errant


class WorkerSinkTask(WorkerTask):
    """consume → convert → transform → ``put``; ``pre_commit`` then a synchronous offset commit
    every ``offset.flush.interval.ms``; failures of conversion/transforms go through the
    tolerance operator and, with a DLQ configured, to the DLQ topic."""

    BATCH = 500

    def __init__(self, worker: Worker, task_id: TaskId, task: SinkTask, *args: Any) -> None:
        super().__init__(worker, task_id, *args)
        self.task = task
        self.consumer: Consumer | None = None
        self.dlq_producer: Producer | None = None
        self.assigned: set[tuple[str, int]] = set()
        self.current: dict[tuple[str, int], int] = {}
        self.rewinds: dict[tuple[str, int], int] = {}
        self.topics_seen: set[str] = set()
        self.retry_batch: list[SinkRecord] | None = None
        self.key_conv_name = plugins.kafka_name(plugins.CONVERTER, type(self.key_conv))
        self.value_conv_name = plugins.kafka_name(plugins.CONVERTER, type(self.value_conv))

    def initialize_and_start(self) -> None:
        if self.errors.dlq_topic:
            self._create_dlq_topic()
            self.dlq_producer = Producer(self.worker.producer_config(self.conn_props))
            self.reporters.append(DeadLetterQueueReporter(self._produce_dlq, self.errors.dlq_topic,
                                                          self.task_id.connector, self.task_id.task,
                                                          self.errors.dlq_context_headers))
        self.consumer = Consumer(self.worker.consumer_config(self.task_id.connector, self.conn_props))
        self.task.initialize(_SinkTaskContext(self))
        self.task.start(self.task_props)
        topics = [t.strip() for t in self.conn_props.get("topics", "").split(",") if t.strip()]
        regex = self.conn_props.get("topics.regex", "").strip()
        subscription = topics if topics else ["^" + regex.lstrip("^")]
        self.consumer.subscribe(subscription, on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _create_dlq_topic(self) -> None:
        admin = self.worker.admin(self.conn_props)
        fs = admin.create_topics([NewTopic(self.errors.dlq_topic, 1, self.errors.dlq_replication_factor)],
                                 request_timeout=15)
        for f in fs.values():
            try:
                f.result(timeout=20)
            except KafkaException as e:
                if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise ConnectError(f"Could not initialize dead letter queue with topic={self.errors.dlq_topic}: {e}") from e

    def _produce_dlq(self, topic: str, key: bytes | None, value: bytes | None,
                     headers: list[tuple[str, bytes | None]]) -> None:
        assert self.dlq_producer is not None
        self.dlq_producer.produce(topic, key=key, value=value, headers=list(headers) or None)
        self.dlq_producer.poll(0)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        new = [(tp.topic, tp.partition) for tp in partitions]
        self.assigned.update(new)
        self.task.open(new)
        self._start_at_rewinds(consumer, partitions)

    def _start_at_rewinds(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Offsets the task gave ``context.offset()`` in ``open`` are where the new partitions
        start, before anything of theirs is fetched (Kafka's WorkerSinkTask rewinds inside
        onPartitionsAssigned). confluent-kafka cannot seek a partition not yet assigned, so the
        callback assigns them itself with those offsets (incrementally under a cooperative protocol)."""
        starts = {(tp.topic, tp.partition): self.rewinds.pop((tp.topic, tp.partition))
                  for tp in partitions if (tp.topic, tp.partition) in self.rewinds}
        if not starts:
            return
        at = [TopicPartition(tp.topic, tp.partition, starts.get((tp.topic, tp.partition), tp.offset))
              for tp in partitions]
        consumer_config = self.worker.consumer_config(self.task_id.connector, self.conn_props)
        if ("cooperative" in consumer_config.get("partition.assignment.strategy", "")
                or consumer_config.get("group.protocol", "classic") == "consumer"):
            consumer.incremental_assign(at)
        else:
            consumer.assign(at)
        self.current.update(starts)
        log.info("%s starts %s where the task asked", self.task_id,
                 ", ".join(f"{t}-{p} at {o}" for (t, p), o in sorted(starts.items())))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = [(tp.topic, tp.partition) for tp in partitions]
        self.commit()
        self.task.close(gone)
        self.assigned.difference_update(gone)
        for g in gone:
            self.current.pop(g, None)

    def on_pause(self) -> None:
        if self.consumer is not None and self.assigned:
            self.consumer.pause([TopicPartition(t, p) for t, p in self.assigned])

    def on_resume(self) -> None:
        if self.consumer is not None and self.assigned:
            self.consumer.resume([TopicPartition(t, p) for t, p in self.assigned])

    def iteration(self) -> None:
        assert self.consumer is not None
        if self.retry_batch is not None:
            retry, self.retry_batch = self.retry_batch, None
            self.consumer.consume(0, 0)  # keep the group membership alive
            self.deliver(retry)
            return
        messages = self.consumer.consume(self.BATCH, 0.5)
        batch: list[SinkRecord] = []
        for m in messages:
            error = m.error()
            if error is not None:
                if error.fatal():
                    raise ConnectError(f"Consumer error: {error}")
                log.warning("%s consumer: %s", self.task_id, error)  # librdkafka recovers from the others
                continue
            record = self.convert(m)
            topic, partition, offset = str(m.topic()), int(m.partition() or 0), int(m.offset() or 0)
            self.current[(topic, partition)] = offset + 1
            if topic not in self.topics_seen:
                self.topics_seen.add(topic)
                self.worker.listener.on_topic_used(self.task_id.connector, topic, self.task_id.task)
            if record is not None:
                batch.append(record)
        if batch or messages:
            self.deliver(batch)
        if self.rewinds:
            for (t, p), off in self.rewinds.items():
                self.consumer.seek(TopicPartition(t, p, off))
                self.current[(t, p)] = off
            self.rewinds = {}

    def convert(self, m: Any) -> SinkRecord | None:
        raw_headers: list[tuple[str, bytes | None]] = list(m.headers() or [])
        def ctx(stage: Stage, cls: str) -> ProcessingContext:
            return ProcessingContext(topic=m.topic(), partition=m.partition(), offset=m.offset(), key=m.key(),
                                     value=m.value(), headers=raw_headers, stage=stage, executing_class=cls)
        key = self.operator.execute(lambda: self.key_conv.to_connect_data(m.topic(), m.key()),
                                    ctx(Stage.KEY_CONVERTER, self.key_conv_name))
        if key is SKIPPED:
            return None
        value = self.operator.execute(lambda: self.value_conv.to_connect_data(m.topic(), m.value()),
                                      ctx(Stage.VALUE_CONVERTER, self.value_conv_name))
        if value is SKIPPED:
            return None
        headers = Headers()
        for k, v in raw_headers:
            schema, hv = self.header_conv.to_connect_header(m.topic(), k, v)
            headers.add(k, hv, schema)
        ts_type, ts = m.timestamp()
        record = SinkRecord(topic=m.topic(), kafka_partition=m.partition(), key_schema=key[0], key=key[1],
                            value_schema=value[0], value=value[1], timestamp=ts if ts_type else None,
                            headers=headers, kafka_offset=m.offset(), timestamp_type=TimestampType(ts_type),
                            original_topic=m.topic(), original_kafka_partition=m.partition(),
                            original_kafka_offset=m.offset())
        transformed = self.operator.execute(lambda: self.chain.apply(record),
                                            ctx(Stage.TRANSFORMATION, "transformation chain"))
        if transformed is SKIPPED or transformed is None:
            return None
        assert isinstance(transformed, SinkRecord)
        return transformed

    def report_errant(self, record: SinkRecord, error: BaseException) -> None:
        """Kafka's ErrantRecordReporter: a record the task could not write, converted back with
        the task's converters, goes through the tolerance operator at stage TASK_PUT — logged,
        to the DLQ with its context headers, skipped; with ``errors.tolerance=none`` the task fails."""
        topic = record.original_topic or record.topic
        key = self.key_conv.from_connect_data(topic, record.key_schema, record.key)
        value = self.value_conv.from_connect_data(topic, record.value_schema, record.value)
        partition = record.original_kafka_partition if record.original_kafka_partition is not None \
            else record.kafka_partition
        offset = record.original_kafka_offset if record.original_kafka_offset is not None else record.kafka_offset
        ctx = ProcessingContext(topic=topic, partition=partition, offset=offset, key=key, value=value,
                                headers=self.converted_headers(topic, record.headers), stage=Stage.TASK_PUT,
                                executing_class=f"{type(self.task).__module__}.{type(self.task).__qualname__}")
        self.operator.execute_failed(error, ctx)
        if self.dlq_producer is not None:
            self.dlq_producer.flush(10)

    def deliver(self, batch: list[SinkRecord]) -> None:
        try:
            self.task.put(batch)
        except RetriableError as e:
            log.warning("%s RetriableException from SinkTask: will redeliver the batch", self.task_id, exc_info=e)
            self.retry_batch = batch
            self.stopping.wait(0.3)

    def commit(self) -> None:
        if self.consumer is None or not self.current:
            return
        committable = self.task.pre_commit(dict(self.current))
        offsets = [TopicPartition(t, p, o) for (t, p), o in committable.items() if (t, p) in self.assigned]
        if offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as e:
                log.warning("%s Commit of offsets failed: %s", self.task_id, e)

    def close(self) -> None:
        try:
            self.task.stop()
        except Exception as e:
            log.error("Error stopping task %s", self.task_id, exc_info=e)
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None
        if self.dlq_producer is not None:
            self.dlq_producer.flush(5)
            self.dlq_producer = None
