"""KafkaStreams: run a topology against a broker (tomyum or Apache Kafka), with confluent-kafka.

The topology is split into sub-topologies (see :mod:`tomyum.streams.topology`), and each runs
as **one task per input partition** (``<sub-topology>_<partition>``). The application's
instances share the tasks through the consumer group ``application.id``: every instance
subscribes to every source topic with the *range* assignor, which gives partition *n* of
topics with the same partition count to one member, so a task's co-partitioned inputs
arrive at one instance. When instances come and go the group rebalances: before partitions
are taken away the instance commits; a task it keeps carries on with its stores, a task it
gains is restored from its changelog partitions first.

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
  next instance to open that directory restores only what came after. The checkpoint is
  deleted when the task opens, so after a crash the state is rebuilt from the start of the
  changelog (under exactly-once a store may hold uncommitted writes).
* Wall-clock punctuators follow the system clock; stream time follows each task's records.
* Interactive queries: :meth:`KafkaStreams.query` runs a read of a store across the tasks of
  this instance, on the streams thread, between records.
* States (Kafka's): CREATED → REBALANCING (restoring) → RUNNING ⇄ REBALANCING →
  PENDING_SHUTDOWN → NOT_RUNNING, or ERROR after an uncaught exception (given to the
  uncaught-exception handler).
* ``client_config`` goes to every client; keys prefixed ``consumer.``, ``producer.`` or
  ``admin.`` only to that client (Kafka's prefixes).
"""

from __future__ import annotations

import enum
import heapq
import json
import logging
import queue
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka import admin as kafka_admin

from tomyum.streams._plan import Plan, TopologyError, plan
from tomyum.streams._record import Record
from tomyum.streams._task import StreamTask
from tomyum.streams.processor import StreamsConfig
from tomyum.streams.serdes import Serde
from tomyum.streams.state.base import ChangelogRecord
from tomyum.streams.topology import Topology

__all__ = ["AT_LEAST_ONCE", "EXACTLY_ONCE_V2", "KafkaStreams", "State", "TopologyError"]

log = logging.getLogger(__name__)

AT_LEAST_ONCE, EXACTLY_ONCE_V2 = "at_least_once", "exactly_once_v2"
Q = TypeVar("Q")
RESTORE_TIMEOUT_S = 300.0
EOS_TRANSACTION_TIMEOUT_MS = 10_000  # Kafka Streams' default under exactly-once


class State(enum.Enum):
    CREATED = "CREATED"
    REBALANCING = "REBALANCING"
    RUNNING = "RUNNING"
    PENDING_SHUTDOWN = "PENDING_SHUTDOWN"
    NOT_RUNNING = "NOT_RUNNING"
    ERROR = "ERROR"


class LocalStores:
    """What an interactive query reads: one store name across this instance's tasks. Keys
    are partitioned over tasks, so ``get`` asks each task's store until one knows the key;
    the methods returning lists (``all``, ``range``, ``fetch``, ...) put the tasks' answers
    one after another (each task's in its store's order), those returning counts add them up."""

    def __init__(self, stores: list[Any]) -> None:
        self.stores = stores

    def get(self, key: Any) -> Any:
        for store in self.stores:
            value = store.get(key)
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
                 client_config: Mapping[str, Any] | None = None, repartition_purge_interval_ms: int = 30_000) -> None:
        if processing_guarantee not in (AT_LEAST_ONCE, EXACTLY_ONCE_V2):
            raise ValueError(f"processing_guarantee must be {AT_LEAST_ONCE} or {EXACTLY_ONCE_V2}, "
                             f"not {processing_guarantee!r}")
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
        self._listeners: list[Callable[[State, State], None]] = []
        self._restore_listeners: list[Callable[[str, str, int], None]] = []
        self._on_error: Callable[[BaseException], None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.tasks: dict[str, StreamTask] = {}
        """The active tasks of this instance by id (read them from the streams thread only)."""
        self._global: StreamTask | None = None
        self._positions: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self._purged: dict[tuple[str, int], int] = {}
        self._dirty = False
        self._in_txn = False
        self._consumer: Consumer | None = None
        self._global_consumer: Consumer | None = None
        self._sources: dict[str, tuple[str, int]] = {}
        """Source topic as on the broker -> (as in the topology, sub-topology)."""
        self._producer: Producer | None = None
        self._admin: Any = None
        self._lock: Any = None
        self._queries: queue.SimpleQueue[tuple[str, Callable[[Any], Any], Future[Any]]] = queue.SimpleQueue()

    # the application's view ----------------------------------------------------------------

    def set_state_listener(self, listener: Callable[[State, State], None]) -> None:
        """``listener(new_state, old_state)`` on every change, from the streams thread."""
        self._listeners.append(listener)

    def set_restore_listener(self, listener: Callable[[str, str, int], None]) -> None:
        """``listener(task_id, store, records)`` after each store of a task is restored from its
        changelog (``records`` read: 0 when a checkpoint left nothing to replay)."""
        self._restore_listeners.append(listener)

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

    def _answer_queries(self) -> None:
        while not self._queries.empty():
            name, read, done = self._queries.get_nowait()
            tasks = [*self.tasks.values(), *([self._global] if self._global is not None else [])]
            try:
                done.set_result(read(LocalStores([t.stores[name] for t in tasks if name in t.stores])))
            except Exception as e:  # noqa: BLE001 - the caller's read failed: tell the caller
                done.set_exception(e)

    def start(self) -> None:
        if self.state is not State.CREATED:
            raise RuntimeError(f"cannot start from state {self.state.value}")
        self._thread = threading.Thread(target=self._run, name=f"streams-{self.config.application_id}", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 30.0) -> bool:
        """Stop processing, commit, close; True if the thread ended within ``timeout_s``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

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

    # names -----------------------------------------------------------------------------------

    def changelog_topic(self, store: str) -> str:
        return f"{self.config.application_id}-{self.topology.stores[store].changelog_topic}"

    def _topic(self, name: str) -> str:
        """A topology's topic name as it is on the broker (internal topics get the prefix)."""
        return f"{self.config.application_id}-{name}" if name in self.topology.repartition_topics else name

    def _client(self, kind: str, **settings: Any) -> dict[str, Any]:
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap, **settings}
        for key, value in self.client_config.items():
            prefix, _, rest = key.partition(".")
            if prefix in ("consumer", "producer", "admin") and rest:
                if prefix == kind:
                    config[rest] = value
            else:
                config[key] = value
        return config

    def _set_state(self, new: State) -> None:
        old, self.state = self.state, new
        if old is new:
            return
        log.info("streams %s: %s -> %s", self.config.application_id, old.value, new.value)
        for listener in self._listeners:
            listener(new, old)

    # set-up ------------------------------------------------------------------------------------

    def _prepare(self) -> Plan:
        """Work out the partitions, check co-partitioning, create the internal topics."""
        self._admin = kafka_admin.AdminClient(self._client("admin"))
        metadata = self._admin.list_topics(timeout=30)
        counts = {name: len(meta.partitions) for name, meta in metadata.topics.items() if meta.error is None}
        the_plan = plan(self.topology, counts)
        wanted: dict[str, tuple[int, dict[str, str]]] = {}
        for name in self.topology.repartition_topics:  # kept until purged (below what every task committed)
            wanted[self._topic(name)] = (the_plan.partitions[name], {"cleanup.policy": "delete", "retention.ms": "-1"})
        for store, sub in the_plan.subtopology_of_store.items():
            spec = self.topology.stores[store]
            if spec.logging_enabled:
                config = {"cleanup.policy": "compact"}
                if spec.kind in ("window", "session"):  # old windows leave the changelog too (Kafka's configs)
                    config = {"cleanup.policy": "compact,delete", "retention.ms": str(spec.retention_ms + 86_400_000)}
                wanted[self.changelog_topic(store)] = (the_plan.tasks[sub], config)
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
        self._sources = {self._topic(t): (t, sub) for t, sub in the_plan.subtopology_of_topic.items()}
        return the_plan

    def _lock_state_dir(self) -> None:
        """Hold ``<state_dir>/tomyum-streams/<application.id>/.lock`` while running: two
        instances of one application must not share a state directory (their tasks' files,
        and the process id that names the exactly-once producer, would collide)."""
        import fcntl

        path = self.state_root / self.config.application_id / ".lock"
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
        path = self.state_root / self.config.application_id / "process-id"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(str(uuid.uuid4()))
        return path.read_text().strip()

    # the streams thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._set_state(State.REBALANCING)
            self._lock_state_dir()
            self.plan = self._prepare()
            while True:
                try:
                    self._run_clients()
                    break
                except _Stopping:  # asked to stop while restoring: nothing to commit
                    self._set_state(State.PENDING_SHUTDOWN)
                    break
                except _Fenced as e:
                    # another instance owns our tasks now (we were paused or cut off past the
                    # session timeout): drop what we did since our last commit and rejoin, as
                    # Kafka Streams does on a TaskMigratedException
                    log.warning("streams %s: fenced (%s); rejoining with new clients", self.config.application_id, e)
                    self._set_state(State.REBALANCING)
                    self._close_clients()
            self._set_state(State.NOT_RUNNING)
        except BaseException as e:  # noqa: BLE001 - the handler decides; the thread must not die silently
            log.exception("streams %s failed", self.config.application_id)
            self._set_state(State.ERROR)
            if self._on_error is not None:
                self._on_error(e)
        finally:
            self._close_clients()
            if self._lock is not None:
                self._lock.close()

    def _run_clients(self) -> None:
        """One life of this instance's clients: join, process until asked to stop, commit."""
        assert self.plan is not None
        producer_config = self._client("producer", **{"linger.ms": 5, "partitioner": "murmur2_random"})
        if self.eos:
            producer_config["transactional.id"] = f"{self.config.application_id}-{self._process_id()}"
            producer_config.setdefault("transaction.timeout.ms", EOS_TRANSACTION_TIMEOUT_MS)
        self._producer = Producer(producer_config)
        if self.eos:
            self._producer.init_transactions(60)  # fences an earlier run of this instance
        self._global_consumer = self._start_global()
        self._consumer = Consumer(self._client(
            "consumer", **{"group.id": self.config.application_id, "enable.auto.commit": False,
                           "auto.offset.reset": "earliest", "partition.assignment.strategy": "range",
                           "isolation.level": "read_committed" if self.eos else "read_uncommitted"}))
        topics = [self._topic(t) for t in self.plan.subtopology_of_topic]
        self._consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        self._loop(self._global_consumer)
        self._set_state(State.PENDING_SHUTDOWN)
        self._commit(final=True)
        for task_id in list(self.tasks):
            self._close_task(task_id)

    def _close_clients(self) -> None:
        """Close the clients and whatever tasks are still open (without checkpoints: they were
        not committed)."""
        consumer, global_consumer, producer = self._consumer, self._global_consumer, self._producer
        steps: list[Callable[[], object]] = [
            lambda: consumer.close() if consumer else None,
            lambda: global_consumer.close() if global_consumer else None,
            self._abort_if_open,
            lambda: producer.flush(10) if producer else None,
            *[task.close for task in self.tasks.values()],
            *([self._global.close] if self._global else []),
        ]
        for step in steps:
            try:
                step()
            except Exception:  # noqa: BLE001 - closing after an error: log and go on closing
                log.warning("streams %s: error while closing", self.config.application_id, exc_info=True)
        self.tasks.clear()
        self._consumer = self._global_consumer = None
        self._producer = None
        self._global = None
        self._in_txn = self._dirty = False
        self._positions.clear()
        self._committed.clear()

    def _abort_if_open(self) -> None:
        if self.eos and self._in_txn and self._producer is not None:
            self._in_txn = False
            self._producer.abort_transaction(10)

    def _new_task(self, task_id: str, nodes: tuple[str, ...] | None, stores: tuple[str, ...],
                  partition: int) -> StreamTask:
        producer = self._producer
        assert producer is not None

        topics: dict[str, str] = {}  # a topology's topic name -> the broker's

        def collect(topic: str, record: Record[bytes | None, bytes | None], key_serde: Serde[Any],
                    value_serde: Serde[Any]) -> None:
            name = topics.get(topic)
            if name is None:
                name = topics[topic] = self._topic(topic)
            self._produce(name, record.key, record.value, -1 if record.partition is None else record.partition,
                          record.timestamp, list(record.headers) or None)

        def changelog(change: ChangelogRecord) -> None:
            self._produce(self.changelog_topic(change.store_name), change.key, change.value, partition, 0, None)

        return StreamTask(self.topology, self.config, task_id=task_id, state_dir=self.state_root, collector=collect,
                          changelog=changelog, wall_clock_ms=int(time.time() * 1000), nodes=nodes, stores=stores,
                          global_stores=self._global.stores if self._global is not None else None)

    def _produce(self, topic: str, key: bytes | None, value: bytes | None, partition: int, timestamp: int,
                 headers: list[tuple[str, str | bytes | None]] | None) -> None:
        """Hand a record to the producer (delivery is checked at commit: flush, or the
        transaction's commit); while its queue is full, let it send."""
        producer = self._producer
        assert producer is not None
        self._begin()
        while True:
            try:
                producer.produce(topic, key=key, value=value, partition=partition, timestamp=timestamp, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
            except KafkaException as e:
                if _fenced(e):
                    raise _Fenced(str(e)) from e
                raise
        self._dirty = True

    def _begin(self) -> None:
        if self.eos and not self._in_txn:
            assert self._producer is not None
            try:
                self._producer.begin_transaction()
            except KafkaException as e:
                if _fenced(e):
                    raise _Fenced(str(e)) from e
                raise
            self._in_txn = True

    # global tables --------------------------------------------------------------------------------

    def _start_global(self) -> Consumer | None:
        """Read every partition of the global tables' topics to their end into the global
        task, before any other task starts."""
        if not self.topology.global_topics:
            return None
        stores = tuple(sorted(self.topology.global_stores))
        shutil.rmtree(self._task_dir("global"), ignore_errors=True)
        self._global = self._new_task("global", self.topology.global_nodes(), stores, 0)
        consumer = Consumer(self._client("consumer", **{
            "group.id": f"{self.config.application_id}-global", "enable.auto.commit": False,
            "isolation.level": "read_committed" if self.eos else "read_uncommitted"}))
        parts = []
        for topic in sorted(self.topology.global_topics):
            metadata = consumer.list_topics(topic, timeout=30).topics[topic]
            parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
        consumer.assign(parts)
        watermarks = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=30) for tp in parts}
        ends = {tp: high for tp, (low, high) in watermarks.items() if high > low}  # the partitions with records
        deadline = time.monotonic() + RESTORE_TIMEOUT_S
        while any(p.offset < ends[(p.topic, p.partition)] for p in consumer.position(parts)
                  if (p.topic, p.partition) in ends):
            if self._stop.is_set():
                raise _Stopping
            if time.monotonic() > deadline:
                raise TimeoutError(f"global tables not restored within {RESTORE_TIMEOUT_S:.0f} s")
            self._process_global(consumer, 0.2)
        log.info("streams %s: global tables %s read", self.config.application_id, sorted(self.topology.global_topics))
        return consumer

    def _process_global(self, consumer: Consumer, timeout: float) -> None:
        assert self._global is not None
        for m in consumer.consume(num_messages=1000, timeout=timeout):
            record = _record(m)
            if record is not None:
                self._global.process(record)
        self._global.commit()

    # rebalancing ------------------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assert self.plan is not None
        wanted: dict[str, tuple[int, int]] = {}
        for tp in partitions:
            sub = self._sources[tp.topic][1]
            wanted[f"{sub}_{tp.partition}"] = (sub, tp.partition)
        for task_id in [t for t in self.tasks if t not in wanted]:
            self._close_task(task_id)
        for task_id, (sub, partition) in sorted(wanted.items()):
            if task_id not in self.tasks:
                spec = self.plan.subtopologies[sub]
                checkpoint = self._take_checkpoint(task_id, spec.stores, partition)
                if checkpoint is None:
                    shutil.rmtree(self._task_dir(task_id), ignore_errors=True)
                task = self._new_task(task_id, spec.nodes, spec.stores, partition)
                self.tasks[task_id] = task
                self._restore(task, partition, checkpoint or {})
        log.info("streams %s: tasks %s", self.config.application_id, sorted(self.tasks))
        self._set_state(State.RUNNING)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Commit before the partitions go; the tasks wait (suspended) for the new assignment."""
        if self.state is State.RUNNING:
            self._set_state(State.REBALANCING)
        if not self._commit():
            self._on_lost(consumer, partitions)
        for tp in partitions:
            self._positions.pop((tp.topic, tp.partition), None)
            self._committed.pop((tp.topic, tp.partition), None)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions lost (the session ran out): no commit is possible; drop the tasks and
        what they did since the last commit — they are rebuilt from their changelogs."""
        log.warning("streams %s: partitions lost; closing tasks %s without committing", self.config.application_id,
                    sorted(self.tasks))
        self._abort_if_open()
        for task_id in list(self.tasks):
            self._close_task(task_id, clean=False)
        self._positions.clear()
        self._committed.clear()
        if self.state is State.RUNNING:
            self._set_state(State.REBALANCING)

    def _rebuild_tasks(self, consumer: Consumer) -> None:
        """After a failed exactly-once commit: what the tasks did since their last commit is
        aborted, so rebuild them from their changelogs and go back to the committed offsets."""
        assignment = consumer.assignment()
        self._on_lost(consumer, assignment)
        for tp in consumer.committed(assignment, timeout=30):
            consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
        self._on_assign(consumer, assignment)

    def _close_task(self, task_id: str, *, clean: bool = True) -> None:
        """Close a task; a clean close (after a commit) leaves a checkpoint of its persistent
        stores' changelog offsets."""
        task = self.tasks.pop(task_id)
        task.close()
        stores = self._checkpointed(task.stores)
        if not clean or not stores or self._consumer is None:
            return
        offsets = {}
        for name in stores:
            tp = TopicPartition(self.changelog_topic(name), int(task_id.rsplit("_", 1)[1]))
            offsets[tp.topic] = self._consumer.get_watermark_offsets(tp, timeout=30, cached=False)[1]
        path = self._task_dir(task_id) / ".checkpoint"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(offsets))
        temporary.replace(path)

    def _task_dir(self, task_id: str) -> Path:
        return self.state_root / self.config.application_id / task_id

    def _checkpointed(self, stores: Iterable[str]) -> list[str]:
        """The stores a checkpoint covers: logged and on disk."""
        return [name for name in stores if self.topology.stores[name].logging_enabled
                and self.topology.stores[name].store_type == "persistent"]

    def _take_checkpoint(self, task_id: str, stores: Iterable[str], partition: int) -> dict[str, int] | None:
        """The task's checkpoint, if it covers every persistent store with offsets the
        changelogs still hold; the file is removed either way (see the module docstring)."""
        path = self._task_dir(task_id) / ".checkpoint"
        try:
            offsets = json.loads(path.read_text())
            path.unlink()
        except (OSError, ValueError):
            return None
        if not isinstance(offsets, dict) or self._consumer is None:
            return None
        for name in self._checkpointed(stores):
            topic = self.changelog_topic(name)
            low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            if not isinstance(offsets.get(topic), int) or not low <= offsets[topic] <= high:
                log.info("streams %s: checkpoint of task %s does not fit %s; restoring from the start",
                         self.config.application_id, task_id, topic)
                return None
        return offsets

    def _restore(self, task: StreamTask, partition: int, checkpoint: Mapping[str, int]) -> None:
        """Each logged store of ``task`` from its changelog partition — from the checkpoint's
        offset for a persistent store that has one — up to the end (committed records only
        under exactly-once)."""
        stores = [name for name in task.stores if self.topology.stores[name].logging_enabled]
        if not stores:
            return
        reader = Consumer(self._client("consumer", **{
            "group.id": f"{self.config.application_id}-restore", "enable.auto.commit": False,
            "isolation.level": "read_committed" if self.eos else "read_uncommitted"}))
        try:
            for name in stores:
                tp = TopicPartition(self.changelog_topic(name), partition)
                low, end = reader.get_watermark_offsets(tp, timeout=30)
                start = checkpoint.get(tp.topic) if name in self._checkpointed([name]) else None
                changes: list[tuple[bytes, bytes | None]] = []
                if end <= max(low, start or 0):
                    self._restored(task.task_id, name, 0)
                    continue
                reader.assign([TopicPartition(tp.topic, partition, OFFSET_BEGINNING if start is None else start)])
                deadline = time.monotonic() + RESTORE_TIMEOUT_S
                while reader.position([tp])[0].offset < end:
                    if self._stop.is_set():
                        raise _Stopping
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{tp.topic}[{partition}] not restored within {RESTORE_TIMEOUT_S:.0f} s")
                    for m in reader.consume(num_messages=10_000, timeout=0.5):
                        key = m.key()
                        if m.error() is None and key is not None:
                            changes.append((key, m.value()))
                task.stores[name].restore(changes)
                self._restored(task.task_id, name, len(changes))
        finally:
            reader.close()

    def _restored(self, task_id: str, store: str, records: int) -> None:
        log.info("streams %s: task %s restored %s from %d changelog records", self.config.application_id, task_id,
                 store, records)
        for listener in self._restore_listeners:
            listener(task_id, store, records)

    # processing -------------------------------------------------------------------------------------

    def _loop(self, global_consumer: Consumer | None) -> None:
        consumer = self._consumer
        assert consumer is not None and self.plan is not None
        last_commit = last_purge = time.monotonic()
        while not self._stop.is_set():
            if global_consumer is not None:
                self._process_global(global_consumer, 0)
            batch: dict[str, dict[tuple[str, int], list[Record[bytes | None, bytes | None]]]] = {}
            for m in consumer.consume(num_messages=500, timeout=0.05):
                topic, partition = m.topic(), m.partition()
                if m.error() is not None or topic is None or partition is None:
                    continue
                name, sub = self._sources[topic]
                record = _record(m, name)
                if record is not None:
                    task_id = f"{sub}_{partition}"
                    batch.setdefault(task_id, {}).setdefault((topic, partition), []).append(record)
            for task_id, by_partition in batch.items():
                self._process(task_id, by_partition)
            if self._producer is not None:
                self._producer.poll(0)  # delivery reports and errors
            if self.state is not State.RUNNING:
                continue
            self._answer_queries()
            now_ms = int(time.time() * 1000)
            for task in list(self.tasks.values()):
                if now_ms > task.wall_clock_ms:
                    task.advance_wall_clock(now_ms - task.wall_clock_ms)
            if time.monotonic() - last_commit >= self.commit_interval_s:
                if not self._commit():
                    self._rebuild_tasks(consumer)
                last_commit = time.monotonic()
            if time.monotonic() - last_purge >= self.purge_interval_s:
                self._purge_repartition_topics()
                last_purge = time.monotonic()

    def _process(self, task_id: str, by_partition: dict[tuple[str, int], list[Record[bytes | None, bytes | None]]]
                 ) -> None:
        """Run a task's share of a consumed batch. Records of several partitions are taken
        lowest timestamp first, each partition in its order (Kafka's choice of the next record
        among a task's partitions, within what has been fetched), so that joins and windows see
        their inputs interleaved in time."""
        task = self.tasks.get(task_id)
        if task is None:  # revoked within this batch
            return
        lists = list(by_partition.values())
        records = lists[0] if len(lists) == 1 else heapq.merge(*lists, key=lambda r: r.timestamp)
        for record in records:
            task.process(record)
        for (topic, partition), processed in by_partition.items():
            self._positions[(topic, partition)] = (processed[-1].offset or 0) + 1
        self._dirty = True

    def _commit(self, *, final: bool = False) -> bool:
        """Flush the stores, then commit outputs and input offsets (one transaction under
        exactly-once). False if the group moved on (the tasks must then be rebuilt)."""
        producer, consumer = self._producer, self._consumer
        if producer is None or consumer is None or not (self._dirty or final):
            return True
        for task in self.tasks.values():
            task.commit()
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._positions.items()]
        try:
            if self.eos:
                if offsets:
                    self._begin()
                    producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
                if self._in_txn:
                    producer.commit_transaction(30)
                    self._in_txn = False
            else:
                producer.flush(30)
                if offsets:
                    consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            if _fenced(e):
                raise _Fenced(str(e)) from e
            error = e.args[0] if e.args else None
            if error is not None and hasattr(error, "fatal") and error.fatal():
                raise
            log.warning("streams %s: commit failed (%s)", self.config.application_id, e)
            if self.eos:
                return False
        self._dirty = False
        self._committed = dict(self._positions)
        return True

    def _purge_repartition_topics(self) -> None:
        """Delete the records of repartition topics that every task has committed past."""
        done = [TopicPartition(t, p, o) for (t, p), o in self._committed.items()
                if self._sources[t][0] in self.topology.repartition_topics and self._purged.get((t, p)) != o]
        if not done or self._admin is None:
            return
        try:
            for future in self._admin.delete_records(done).values():
                future.result(10)
            self._purged.update({(tp.topic, tp.partition): tp.offset for tp in done})
        except KafkaException as e:
            log.info("streams %s: purging repartition topics failed (%s); will try again", self.config.application_id, e)


class _Stopping(Exception):
    """``close()`` was called while a restore was under way."""


class _Fenced(Exception):
    """This instance's producer was fenced: its tasks belong to another instance now."""


_FENCING_CODES = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


def _fenced(e: KafkaException) -> bool:
    error = e.args[0] if e.args else None
    return isinstance(error, KafkaError) and error.code() in _FENCING_CODES


def _record(m: Message, topic: str | None = None) -> Record[bytes | None, bytes | None] | None:
    """The consumed message as a record of ``topic`` (its own topic by default)."""
    partition, offset = m.partition(), m.offset()
    if m.error() is not None or partition is None or offset is None:
        return None
    _, timestamp = m.timestamp()
    headers = m.headers()
    return Record(key=m.key(), value=m.value(), timestamp=timestamp, headers=tuple(_headers(headers)) if headers else (),
                  topic=topic or m.topic(), partition=partition, offset=offset)


def _headers(headers: Any) -> Iterator[tuple[str, bytes | None]]:
    for k, v in (headers.items() if isinstance(headers, dict) else headers):
        yield k, v if isinstance(v, bytes) or v is None else str(v).encode()
