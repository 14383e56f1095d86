"""KafkaStreams: run a topology against a broker (tomyum or Apache Kafka), with confluent-kafka.

The topology is split into sub-topologies (see :mod:`tomyum.streams.topology`), and each runs
as **one task per input partition** (``<sub-topology>_<partition>``). The application's
instances share the tasks through the consumer group ``application.id``: every instance
subscribes to every source topic with the *range* assignor, which gives partition *n* of
topics with the same partition count to one member, so a task's co-partitioned inputs
arrive at one instance. When instances come and go the group rebalances: before partitions
are taken away the instance commits; a task it keeps carries on with its stores, a task it
gains is restored from its changelog partitions first. ``group_protocol="classic"`` (the
default) rebalances eagerly: every partition is revoked and nothing is processed (REBALANCING)
until the new assignment is in. ``"consumer"`` joins with KIP-848 and the broker's range
assignor (co-partitioning as above): the callbacks carry only what is added or revoked, only the
tasks of revoked partitions close, and the kept ones go on processing (the state stays RUNNING);
a task gained is RESTORING — restored a batch per turn of the poll loop, between the running
tasks' batches, its input partitions paused until its stores are caught up (see
:mod:`tomyum.streams._changelog_reader`).

* Internal topics, created at start with their partition counts (see
  :mod:`tomyum.streams._plan`, which also checks co-partitioning): repartition topics
  ``<application.id>-<name>-repartition`` (delete policy; records below the committed
  offsets are deleted every ``repartition_purge_interval_ms``) and changelogs
  ``<application.id>-<store>-changelog`` (compacted, one partition per task).
* Global tables: every instance reads all partitions of their topics (outside the group)
  into a "global" task before processing starts, and keeps reading them.
* ``processing_guarantee="at_least_once"``: every ``commit_interval_ms`` (default 30 s, as
  Kafka) the stores are flushed, the producer flushed, then the input offsets committed.
  ``"exactly_once_v2"``: outputs, changelog records and input offsets go in one transaction
  of the instance's producer (``transactional.id`` = ``<application.id>-<process id>``, the
  process id kept in the state directory, so that a restarted instance fences the one it
  replaces), committed every ``commit_interval_ms`` (default 100 ms); inputs and changelogs
  are read read_committed; a zombie's offsets are refused by the group's generation (KIP-447).
* A task's local state comes from its changelog whenever the task is created on an
  instance (the changelog, not the file, is the truth). A task closed cleanly leaves a
  ``.checkpoint`` in its directory (the changelog offsets its persistent stores hold); the
  next instance to open that directory restores only what came after. Every commit writes
  one too (under exactly-once after the transaction committed, the old one deleted before the
  stores flush), so a restart after a crash restores only the tail.
* ``num_standby_replicas``: standby tasks on other instances keep warm copies of each
  stateful task's persistent stores from its changelog, with checkpoints, so that the
  instance that takes a task over restores only the tail (see :mod:`tomyum.streams._standby`
  for where they go — computed by every instance from DescribeGroups — and why).
* Wall-clock punctuators follow the system clock; stream time follows each task's records.
* Interactive queries: :meth:`KafkaStreams.query` runs a read of a store across the tasks of
  this instance, on the streams thread, between records. Across instances: each names its
  ``application_server``, which rides in its main consumer's client id; the group's
  DescribeGroups answer (client ids and assignments) is the instance map that
  :meth:`KafkaStreams.query_metadata_for_key` and :meth:`KafkaStreams.all_metadata` read (see
  :mod:`tomyum.streams._metadata` for why that channel).
* States (Kafka's, with Kafka's transitions): CREATED → REBALANCING (restoring) → RUNNING ⇄
  REBALANCING → PENDING_SHUTDOWN → NOT_RUNNING, or PENDING_ERROR → ERROR after an uncaught
  exception (given to the uncaught-exception handler).
* Metrics (:mod:`tomyum.streams._metrics`): ``metrics_registry``, served on ``metrics_listener``.
* ``client_config`` goes to every client; keys prefixed ``consumer.``, ``producer.`` or
  ``admin.`` only to that client (Kafka's prefixes).

The parts, as in Kafka Streams: :class:`KafkaStreams` here is the lifecycle (start, run, close,
state, the poll loop on the streams thread, the consumer's rebalance callbacks and the recovery
from a fenced producer); it delegates the tasks — rebalancing, restoring, checkpoints,
processing, commits — to :class:`tomyum.streams._task_manager.TaskManager`, and every write to
:class:`tomyum.streams._record_collector.RecordCollector`, the producer and its transaction. All
three read :class:`tomyum.streams._runtime_config.RuntimeConfig`. The lifecycle calls the two
parts, its consumers and its admin client; the parts never call back into it (the state changes
around a rebalance are made here, after the task manager has done its part). Thread-safety:
``start``, ``close``, ``query`` and reading ``state`` are for any thread (set the listeners before
``start``); everything else runs on the streams thread (``query`` hands its read over to it).
"""

from __future__ import annotations

import enum
import logging
import queue
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any, TypeVar

from confluent_kafka import Consumer, ConsumerGroupState, KafkaException, TopicPartition
from confluent_kafka import admin as kafka_admin
from prometheus_client import CollectorRegistry

from tomyum.streams._metadata import (
    NOT_AVAILABLE,
    HostInfo,
    InstanceMap,
    KeyQueryMetadata,
    KeySerializer,
    StreamsMetadata,
    consumer_client_id,
)
from tomyum.streams._metrics import MetricsListener, StreamsCollector
from tomyum.streams._plan import Plan, TopologyError, plan
from tomyum.streams._record_collector import Fenced, RecordCollector
from tomyum.streams._runtime_config import RuntimeConfig
from tomyum.streams._task import StreamTask
from tomyum.streams._task_manager import Stopping, TaskManager
from tomyum.streams.processor import StandbyUpdateListener, StateRestoreListener, StreamsConfig, SuspendReason
from tomyum.streams.topology import Topology

__all__ = ["AT_LEAST_ONCE", "CLASSIC", "CONSUMER", "EXACTLY_ONCE_V2", "NOT_AVAILABLE", "HostInfo", "KafkaStreams",
           "KeyQueryMetadata", "State", "StandbyUpdateListener", "StateRestoreListener", "StreamsMetadata",
           "SuspendReason", "TopologyError"]

log = logging.getLogger(__name__)

AT_LEAST_ONCE, EXACTLY_ONCE_V2 = "at_least_once", "exactly_once_v2"
CLASSIC, CONSUMER = "classic", "consumer"
"""``group_protocol``: the classic group protocol (eager rebalancing), or KIP-848's (cooperative)."""
CLASSIC_ONLY = frozenset({"partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms",
                          "group.protocol.type"})
"""Consumer settings of the classic protocol that librdkafka refuses under ``group.protocol=consumer``."""
LAG_INTERVAL_S = 1.0
"""How often the lag metrics are worked out (from the consumer's cached watermarks)."""
Q = TypeVar("Q")


class State(enum.Enum):
    """Kafka Streams' client states. The changes an application goes through::

        CREATED -> REBALANCING -> RUNNING <-> REBALANCING
        CREATED, REBALANCING or RUNNING -> PENDING_SHUTDOWN -> NOT_RUNNING   (close)
        REBALANCING or RUNNING -> PENDING_ERROR -> ERROR                     (an uncaught exception)
    """

    CREATED = "CREATED"
    REBALANCING = "REBALANCING"
    RUNNING = "RUNNING"
    PENDING_SHUTDOWN = "PENDING_SHUTDOWN"
    NOT_RUNNING = "NOT_RUNNING"
    PENDING_ERROR = "PENDING_ERROR"
    ERROR = "ERROR"

    def is_valid_transition(self, new: State) -> bool:
        """Kafka's ``State.isValidTransition``."""
        return new in _TRANSITIONS[self]

    def is_shutting_down(self) -> bool:
        return self in (State.PENDING_SHUTDOWN, State.PENDING_ERROR)

    def has_completed_shutdown(self) -> bool:
        return self in (State.NOT_RUNNING, State.ERROR)


_TRANSITIONS: dict[State, frozenset[State]] = {
    State.CREATED: frozenset({State.REBALANCING, State.PENDING_SHUTDOWN}),
    State.REBALANCING: frozenset({State.RUNNING, State.PENDING_SHUTDOWN, State.PENDING_ERROR}),
    State.RUNNING: frozenset({State.REBALANCING, State.RUNNING, State.PENDING_SHUTDOWN, State.PENDING_ERROR}),
    State.PENDING_SHUTDOWN: frozenset({State.NOT_RUNNING}),
    State.NOT_RUNNING: frozenset(),
    State.PENDING_ERROR: frozenset({State.ERROR}),
    State.ERROR: frozenset(),
}


class LocalStores:
    """What an interactive query reads: one store name across this instance's tasks. Keys
    are partitioned over tasks, so ``get`` asks each task's store until one knows the key;
    the methods returning lists (``all``, ``range``, ``fetch``, ...) put the tasks' answers
    one after another (each task's in its store's order), those returning counts add them up."""

    def __init__(self, stores: list[Any]) -> None:
        self.stores = stores

    def get(self, key: Any, *args: Any) -> Any:
        """``get(key)``; a versioned store's ``get(key, as_of_timestamp)`` too."""
        for store in self.stores:
            value = store.get(key, *args)
            if value is not None:
                return value
        return None

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def joined(*args: Any, **kwargs: Any) -> Any:
            answers = [getattr(store, name)(*args, **kwargs) for store in self.stores]
            if all(isinstance(a, list) for a in answers):
                return [item for a in answers for item in a]
            if all(isinstance(a, int) for a in answers):
                return sum(answers)
            return next((a for a in answers if a is not None), None)
        return joined


class KafkaStreams:
    def __init__(self, topology: Topology, config: StreamsConfig, *, bootstrap_servers: str,
                 processing_guarantee: str = AT_LEAST_ONCE, commit_interval_ms: int | None = None,
                 client_config: Mapping[str, Any] | None = None, repartition_purge_interval_ms: int = 30_000,
                 application_server: str | None = None, metrics_listener: str | None = None,
                 num_standby_replicas: int = 0, group_protocol: str = CLASSIC) -> None:
        if num_standby_replicas < 0:
            raise ValueError(f"num_standby_replicas must be at least 0, got {num_standby_replicas}")
        if processing_guarantee not in (AT_LEAST_ONCE, EXACTLY_ONCE_V2):
            raise ValueError(f"processing_guarantee must be {AT_LEAST_ONCE} or {EXACTLY_ONCE_V2}, "
                             f"not {processing_guarantee!r}")
        if group_protocol not in (CLASSIC, CONSUMER):
            raise ValueError(f"group_protocol must be {CLASSIC} or {CONSUMER}, not {group_protocol!r}")
        self.topology = topology
        self.config = config
        self.bootstrap = bootstrap_servers
        self.eos = processing_guarantee == EXACTLY_ONCE_V2
        default_interval = 100 if self.eos else 30_000
        self.commit_interval_s = (commit_interval_ms if commit_interval_ms is not None else default_interval) / 1000
        self.purge_interval_s = repartition_purge_interval_ms / 1000
        self.client_config = dict(client_config or {})
        self.state = State.CREATED
        self.state_root = Path(config.state_dir or tempfile.gettempdir()) / "tomyum-streams"
        self.plan: Plan | None = None
        self._config = RuntimeConfig(topology=topology, config=config, bootstrap_servers=bootstrap_servers,
                                     exactly_once=self.eos, client_config=dict(self.client_config),
                                     state_root=self.state_root, num_standby_replicas=num_standby_replicas,
                                     group_protocol=group_protocol)
        if self._config.cooperative:
            refused = sorted(set(self._config.client("consumer")) & CLASSIC_ONLY)
            if refused:
                raise ValueError(f"client_config sets {', '.join(refused)}, which the consumer group protocol "
                                 "(group_protocol='consumer') does not take: the session and heartbeat are the "
                                 "broker's (group.consumer.*) and the assignor is range")
        self._listeners: list[Callable[[State, State], None]] = []
        self._on_error: Callable[[BaseException], None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task_manager = TaskManager(self._config, self._stop)
        self._consumer: Consumer | None = None
        self._global_consumer: Consumer | None = None
        self._collector: RecordCollector | None = None
        self._admin: Any = None
        self._lock: IO[str] | None = None
        self._queries: queue.SimpleQueue[tuple[str, Callable[[Any], Any], Future[Any]]] = queue.SimpleQueue()
        self.application_server = None if application_server is None else HostInfo.parse(application_server)
        """``application.server``: where this instance answers queries (see :meth:`all_metadata`)."""
        self.metrics_registry = CollectorRegistry(auto_describe=False)
        """The application's metrics (docs/streams.md), for ``metrics_listener`` or a web server of
        the application's own (prometheus-client's ``make_asgi_app(registry)``, ``generate_latest``)."""
        self.metrics_registry.register(StreamsCollector(
            config.application_id, self._task_manager.metrics, lambda: [s.value for s in State],
            lambda: {task_id: task.dropped_records for task_id, task in dict(self._task_manager.tasks).items()}))
        self._metrics_listener = None if metrics_listener is None else MetricsListener(metrics_listener,
                                                                                        self.metrics_registry)
        self._instances = InstanceMap(
            topology, lambda: {t: name for t, (name, _) in self._task_manager.sources.items()},
            lambda: self.plan, self._describe_group, self.application_server,
            lambda: self._task_manager.standby_placement)

    @property
    def tasks(self) -> dict[str, StreamTask]:
        """The active tasks of this instance by id (read them from the streams thread only)."""
        return self._task_manager.tasks

    # the application's view ----------------------------------------------------------------

    def set_state_listener(self, listener: Callable[[State, State], None]) -> None:
        """``listener(new_state, old_state)`` on every change, from the streams thread."""
        self._listeners.append(listener)

    def set_restore_listener(self, listener: Callable[[str, str, int], None]) -> None:
        """``listener(task_id, store, records)`` after each store of a task is restored from its
        changelog (``records`` read: 0 when a checkpoint left nothing to replay)."""
        self._task_manager.set_restore_listener(listener)

    def set_global_state_restore_listener(self, listener: StateRestoreListener) -> None:
        """Kafka's ``setGlobalStateRestoreListener``: ``listener`` hears of every changelog
        partition restored, batch by batch (see :class:`~tomyum.streams.processor.StateRestoreListener`)."""
        self._task_manager.add_state_restore_listener(listener)

    def set_standby_update_listener(self, listener: StandbyUpdateListener) -> None:
        """Kafka's ``setStandbyUpdateListener`` (KIP-988): ``listener`` hears how this instance's
        standby tasks read their changelogs (see :class:`~tomyum.streams.processor.StandbyUpdateListener`)."""
        self._task_manager.standbys.listeners.append(listener)

    @property
    def standby_tasks(self) -> list[str]:
        """The ids of this instance's standby tasks (read them from the streams thread only)."""
        return sorted(self._task_manager.standbys.tasks)

    def set_uncaught_exception_handler(self, handler: Callable[[BaseException], None]) -> None:
        self._on_error = handler

    def query(self, store: str, read: Callable[[Any], Q], timeout_s: float = 10.0) -> Q:
        """Interactive query: ``read(stores)`` run on the streams thread, between records, so
        it sees consistent stores; ``stores`` is a :class:`LocalStores` over the tasks of this
        instance (``lambda s: s.get("hello")``, ``lambda s: s.all()``). Only while RUNNING;
        keys held by tasks of other instances are not here."""
        if self.state is not State.RUNNING:
            raise RuntimeError(f"stores can be queried while RUNNING, not {self.state.value}")
        if store not in self.topology.stores:
            raise KeyError(f"no store named {store}; stores: {sorted(self.topology.stores)}")
        done: Future[Q] = Future()
        self._queries.put((store, read, done))
        return done.result(timeout_s)

    def all_metadata(self) -> list[StreamsMetadata]:
        """Every instance of the application that has an ``application.server``: its endpoint,
        the stores of the tasks it runs and its source partitions (Kafka's ``allMetadata``), as
        the group's current generation has them. Asks the group coordinator once per rebalance."""
        self._running_or_rebalancing()
        return self._instances.all_metadata()

    def all_metadata_for_store(self, store: str) -> list[StreamsMetadata]:
        """The instances holding a task with ``store`` (Kafka's ``streamsMetadataForStore``)."""
        self._running_or_rebalancing()
        return self._instances.all_metadata_for_store(store)

    def query_metadata_for_key(self, store: str, key: Any, serializer: KeySerializer | None = None) -> KeyQueryMetadata:
        """Which instance holds ``key`` of ``store``: the key serialized with ``serializer`` (a
        Serde or a function to bytes; the store's own key serde by default) and partitioned as
        Kafka's default partitioner does. :data:`NOT_AVAILABLE` while no instance runs that
        partition's task (a rebalance). A global store's keys are on every instance: this one."""
        self._running_or_rebalancing()
        return self._instances.for_key(store, key, serializer)

    def _running_or_rebalancing(self) -> None:
        if self.state not in (State.RUNNING, State.REBALANCING):
            raise RuntimeError(f"instances can be looked up while RUNNING or REBALANCING, not {self.state.value}")

    def _describe_group(self) -> list[tuple[str, list[tuple[str, int]]]] | None:
        """The group's members as (client id, assigned partitions); None unless it is stable."""
        admin, group = self._admin, self.config.application_id
        if admin is None:
            return None
        try:
            description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(10)
        except KafkaException as e:
            log.info("streams %s: describing the group failed (%s)", group, e)
            return None
        if description.state != ConsumerGroupState.STABLE:
            return None
        return [(m.client_id, [(tp.topic, tp.partition) for tp in m.assignment.topic_partitions])
                for m in description.members if m.assignment is not None]

    def _answer_queries(self) -> None:
        while not self._queries.empty():
            name, read, done = self._queries.get_nowait()
            tasks = self._task_manager.open_tasks(running=True)
            try:
                done.set_result(read(LocalStores([t.stores[name] for t in tasks if name in t.stores])))
            except Exception as e:  # noqa: BLE001 - the caller's read failed: tell the caller
                done.set_exception(e)

    def start(self) -> None:
        if self.state is not State.CREATED:
            raise RuntimeError(f"cannot start from state {self.state.value}")
        if self._metrics_listener is not None:
            self._metrics_listener.start()
        self._thread = threading.Thread(target=self._run, name=f"streams-{self.config.application_id}", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 30.0) -> bool:
        """Stop processing, commit, close; True if the thread ended within ``timeout_s``. An
        application never started goes to NOT_RUNNING at once (through PENDING_SHUTDOWN)."""
        self._stop.set()
        if self._thread is None and self.state is State.CREATED:
            self._set_state(State.PENDING_SHUTDOWN)
            self._set_state(State.NOT_RUNNING)
        stopped = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            stopped = not self._thread.is_alive()
        if self._metrics_listener is not None:
            self._metrics_listener.close()
        return stopped

    @property
    def metrics_url(self) -> str | None:
        """``http://host:port/metrics`` while serving on ``metrics_listener``."""
        return None if self._metrics_listener is None else self._metrics_listener.url

    def run(self) -> int:
        """Start, run until SIGINT or SIGTERM (then close cleanly: commit, close the stores)
        or an uncaught exception; 0 after a clean stop, 1 after an error. For a program's
        main thread."""
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not stop.wait(0.1) and self.state not in (State.ERROR, State.NOT_RUNNING):
                pass
            ok = self.close(60)
            return 0 if ok and self.state is State.NOT_RUNNING else 1
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self) -> KafkaStreams:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def changelog_topic(self, store: str) -> str:
        return self._config.changelog_topic(store)

    def _set_state(self, new: State) -> bool:
        """Move to ``new`` if Kafka allows the change from the current state (False if not:
        e.g. a late rebalance callback after shutdown began); the listeners hear of each change."""
        old = self.state
        if old is new:
            return True
        if not old.is_valid_transition(new):
            log.debug("streams %s: no transition %s -> %s", self.config.application_id, old.value, new.value)
            return False
        self.state = new
        self._task_manager.metrics.state = new.value
        log.info("streams %s: %s -> %s", self.config.application_id, old.value, new.value)
        for listener in self._listeners:
            listener(new, old)
        return True

    # set-up ------------------------------------------------------------------------------------

    def _prepare(self) -> Plan:
        """Work out the partitions, check co-partitioning, create the internal topics."""
        self._admin = kafka_admin.AdminClient(self._config.client("admin"))
        metadata = self._admin.list_topics(timeout=30)
        counts = {name: len(meta.partitions) for name, meta in metadata.topics.items() if meta.error is None}
        the_plan = plan(self.topology, counts)
        wanted = self._internal_topics(the_plan)
        existing = {t: n for t, n in counts.items() if t in wanted}
        for topic, have in existing.items():
            if have != wanted[topic][0]:
                raise TopologyError(f"internal topic {topic} has {have} partitions, the topology needs "
                                    f"{wanted[topic][0]}; delete it (the application's state goes with it) or "
                                    "keep the input topics' partition counts")
        new = [kafka_admin.NewTopic(t, n, 1, config=c)  # type: ignore[attr-defined]
               for t, (n, c) in wanted.items() if t not in existing]
        if new:
            for topic, future in self._admin.create_topics(new).items():
                try:
                    future.result(30)
                except KafkaException as e:
                    if "TOPIC_ALREADY_EXISTS" not in str(e):
                        raise
        return the_plan

    def _internal_topics(self, the_plan: Plan) -> dict[str, tuple[int, dict[str, str]]]:
        """The repartition and changelog topics the plan needs: name -> (partitions, configs)."""
        wanted: dict[str, tuple[int, dict[str, str]]] = {}
        for name in self.topology.repartition_topics:  # kept until purged (below what every task committed)
            wanted[self._config.topic(name)] = (the_plan.partitions[name],
                                                {"cleanup.policy": "delete", "retention.ms": "-1"})
        for store, sub in the_plan.subtopology_of_store.items():
            spec = self.topology.stores[store]
            if spec.logging_enabled:
                config = {"cleanup.policy": "compact"}
                if spec.kind in ("window", "session"):  # old windows leave the changelog too (Kafka's configs)
                    config = {"cleanup.policy": "compact,delete", "retention.ms": str(spec.retention_ms + 86_400_000)}
                elif spec.history_retention_ms is not None:  # versions within the history outlive compaction
                    config["min.compaction.lag.ms"] = str(spec.history_retention_ms + 86_400_000)
                wanted[self.changelog_topic(store)] = (the_plan.tasks[sub], config)
        return wanted

    def _lock_state_dir(self) -> None:
        """Hold ``<state_dir>/tomyum-streams/<application.id>/.lock`` while running: two
        instances of one application must not share a state directory (their tasks' files,
        and the process id that names the exactly-once producer, would collide)."""
        import fcntl

        path = self._config.app_dir() / ".lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise TopologyError(
                f"the state directory {path.parent} is in use by another instance of {self.config.application_id}; "
                "give each instance on this machine its own StreamsConfig(state_dir=...)") from None
        self._lock = handle

    def _process_id(self) -> str:
        """A stable id for this instance, kept in its state directory (as Kafka Streams does)."""
        path = self._config.app_dir() / "process-id"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(str(uuid.uuid4()))
        return path.read_text().strip()

    # the streams thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        failed = False
        try:
            self._set_state(State.REBALANCING)
            self._lock_state_dir()
            self.plan = self._prepare()
            self._task_manager.use_plan(self.plan)
            while True:
                try:
                    self._run_clients()
                    break
                except Stopping:  # asked to stop while restoring: nothing to commit
                    self._set_state(State.PENDING_SHUTDOWN)
                    break
                except Fenced as e:
                    # another instance owns our tasks now (we were paused or cut off past the
                    # session timeout): drop what we did since our last commit and rejoin, as
                    # Kafka Streams does on a TaskMigratedException
                    log.warning("streams %s: fenced (%s); rejoining with new clients", self.config.application_id, e)
                    self._set_state(State.REBALANCING)
                    self._close_clients()
        except BaseException as e:  # noqa: BLE001 - the handler decides; the thread must not die silently
            log.exception("streams %s failed", self.config.application_id)
            failed = self._set_state(State.PENDING_ERROR)  # (an error while shutting down ends NOT_RUNNING)
            if self._on_error is not None:
                self._on_error(e)
        finally:
            self._close_clients()
            if self._lock is not None:
                self._lock.close()
        if failed:
            self._set_state(State.ERROR)
        else:  # closed: NOT_RUNNING once the clients and stores are
            self._set_state(State.PENDING_SHUTDOWN)
            self._set_state(State.NOT_RUNNING)

    def _run_clients(self) -> None:
        """One life of this instance's clients: join, process until asked to stop, commit."""
        assert self.plan is not None
        tasks = self._task_manager
        self._collector = tasks.collector = RecordCollector.connect(self._config, self._process_id())
        self._global_consumer = tasks.start_global()
        # range either way: partition n of every input topic of a sub-topology to one member
        # (co-partitioning); under KIP-848 the broker's range assignor, which does the same
        assignor = ({"group.protocol": CONSUMER, "group.remote.assignor": "range"} if self._config.cooperative
                    else {"partition.assignment.strategy": "range"})
        settings = self._config.client(
            "consumer", **{"group.id": self.config.application_id, "enable.auto.commit": False,
                           "auto.offset.reset": "earliest", "isolation.level": self._config.isolation_level,
                           **assignor})
        # the group carries application.server to the other instances in the member's client id
        # (see tomyum.streams._metadata): Kafka Streams' client id, then "@host:port"; the
        # process id in it also orders the members for standby placement (tomyum.streams._standby)
        base = settings.get("client.id") or f"{self.config.application_id}-{self._process_id()}-StreamThread-1-consumer"
        settings["client.id"] = consumer_client_id(base, self.application_server)
        self._consumer = tasks.consumer = Consumer(settings)
        topics = [self._config.topic(t) for t in self.plan.subtopology_of_topic]
        self._consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        self._loop(self._consumer, self._collector, self._global_consumer)
        self._set_state(State.PENDING_SHUTDOWN)
        tasks.commit(final=True)
        tasks.close_all()

    def _close_clients(self) -> None:
        """Close the clients and whatever tasks are still open (without checkpoints: they were
        not committed)."""
        consumer, global_consumer, collector = self._consumer, self._global_consumer, self._collector
        steps: list[Callable[[], object]] = [
            lambda: consumer.close() if consumer else None,
            lambda: global_consumer.close() if global_consumer else None,
            self._task_manager.close_standbys,
            self._task_manager.close_changelog_consumer,
            lambda: collector.abort_if_open() if collector else None,
            lambda: collector.flush(10) if collector else None,
            self._task_manager.discard_checkpoints,
            *[task.close for task in self._task_manager.open_tasks()],
        ]
        for step in steps:
            try:
                step()
            except Exception:  # noqa: BLE001 - closing after an error: log and go on closing
                log.warning("streams %s: error while closing", self.config.application_id, exc_info=True)
        self._task_manager.reset()
        self._consumer = self._global_consumer = None
        self._collector = None

    # the consumer's rebalance callbacks (on the streams thread, inside consume) ---------------------

    # Eager (classic protocol): ``partitions`` is the whole assignment, every partition is
    # revoked before each rebalance, and the tasks wait (state REBALANCING) until the next one.
    # Cooperative (KIP-848, group_protocol="consumer"): the callbacks carry only what is added or
    # revoked; the tasks kept go on processing, and the state stays RUNNING.

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._instances.invalidate()
        if self._stop.is_set():  # (closing: the consumer's close may still hand partitions over)
            return
        if self._config.cooperative:
            self._task_manager.add(partitions)
        else:
            self._task_manager.assign(partitions)
        self._set_state(State.RUNNING)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Commit before the partitions go; eager: the tasks wait (suspended) for the new
        assignment; cooperative: only the tasks of the revoked partitions close."""
        self._instances.invalidate()
        if not self._config.cooperative:
            if self.state is State.RUNNING:
                self._set_state(State.REBALANCING)
            self._task_manager.revoke(partitions)
        elif not self._task_manager.revoke_incrementally(partitions):
            self._rebuild_kept(consumer, partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions lost (the session ran out): no commit is possible; the tasks are dropped
        and rebuilt from their changelogs (cooperative: those of partitions kept, at once)."""
        self._instances.invalidate()
        self._task_manager.lose()
        if self._config.cooperative:
            self._rebuild_kept(consumer, partitions)
        if self.state is State.RUNNING and not (self._config.cooperative and self._task_manager.tasks):
            self._set_state(State.REBALANCING)  # (cooperative: unless tasks are kept)

    def _rebuild_kept(self, consumer: Consumer, gone: list[TopicPartition]) -> None:
        """Cooperative: every task was dropped without a commit (all of them share the aborted
        transaction) but only ``gone`` leaves the assignment; the tasks of the rest are built
        again from their changelogs and read from the committed offsets."""
        left = {(tp.topic, tp.partition) for tp in gone}
        kept = [tp for tp in consumer.assignment() if (tp.topic, tp.partition) not in left]
        if kept:
            self._task_manager.rewind(kept)
            self._task_manager.add(kept)

    def _rebuild_tasks(self, consumer: Consumer) -> None:
        """After a failed exactly-once commit (a stale generation): what the tasks did since
        their last commit is aborted, so rebuild them from their changelogs and go back to the
        committed offsets."""
        assignment = consumer.assignment()
        if self._config.cooperative:  # (the whole assignment stays: rebuilt without a rebalance)
            self._instances.invalidate()
            self._task_manager.lose()
            self._task_manager.rewind(assignment)
            self._task_manager.add(assignment)
            return
        self._on_lost(consumer, assignment)
        self._task_manager.rewind(assignment)
        self._on_assign(consumer, assignment)

    # processing -------------------------------------------------------------------------------------

    def _loop(self, consumer: Consumer, collector: RecordCollector, global_consumer: Consumer | None) -> None:
        """Poll, process, punctuate, commit and purge until asked to stop."""
        tasks = self._task_manager
        last_commit = last_purge = last_lag = time.monotonic()
        while not self._stop.is_set():
            if global_consumer is not None:
                tasks.process_global(global_consumer, 0)
            tasks.restore()  # (a bounded turn: gained tasks restore while the running ones process)
            wait_s = 0 if tasks.restoring else 0.05
            tasks.process_messages(consumer.consume(num_messages=500, timeout=wait_s))
            collector.poll()
            if self.state is not State.RUNNING:
                continue
            self._answer_queries()
            tasks.maintain_standbys(self._admin)
            if time.monotonic() - last_lag >= LAG_INTERVAL_S:
                tasks.update_lag()
                last_lag = time.monotonic()
            tasks.punctuate(int(time.time() * 1000))
            if time.monotonic() - last_commit >= self.commit_interval_s:
                if not tasks.commit():
                    self._rebuild_tasks(consumer)
                last_commit = time.monotonic()
            if time.monotonic() - last_purge >= self.purge_interval_s:
                tasks.purge_repartition_topics(self._admin)
                last_purge = time.monotonic()
