"""KafkaStreams: run a topology against a broker (tomyum or Apache Kafka), with confluent-kafka.

This first runtime runs **one task over every partition of the source topics**, on one
thread: every key meets the same stores, so aggregations after ``group_by`` are correct
without repartition topics, and ``application.id`` is the consumer group whose committed
offsets say where to resume. One instance per application for now — a second instance of the
same ``application.id`` would process the same records (tasks per partition, spread over
instances, come with repartition topics).

* State: every store with logging enabled writes its changes to the compacted topic
  ``<application.id>-<store>-changelog`` (created at start) and is restored from it before
  processing starts.
* ``processing_guarantee="at_least_once"``: every ``commit_interval_ms`` (default 30 s, as
  Kafka) the stores are flushed, the producer flushed, then the input offsets committed.
  ``"exactly_once_v2"``: outputs, changelog records and input offsets go in one transaction
  (``send_offsets_to_transaction``), committed every ``commit_interval_ms`` (default 100 ms);
  the input is read read_committed.
* Wall-clock punctuators follow the system clock; stream time follows the records.
* Interactive queries: :meth:`KafkaStreams.query` runs a read of a local store on the
  streams thread, between records.
* States (Kafka's): CREATED → REBALANCING (restoring) → RUNNING → PENDING_SHUTDOWN →
  NOT_RUNNING, or ERROR after an uncaught exception (given to the uncaught-exception handler).
"""

from __future__ import annotations

import enum
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka import admin as kafka_admin

from tomyum.streams._record import Record
from tomyum.streams._task import StreamTask
from tomyum.streams.processor import StreamsConfig
from tomyum.streams.serdes import Serde
from tomyum.streams.state.base import ChangelogRecord
from tomyum.streams.topology import Topology

log = logging.getLogger(__name__)

AT_LEAST_ONCE, EXACTLY_ONCE_V2 = "at_least_once", "exactly_once_v2"
Q = TypeVar("Q")
TASK_ID = "0_0"


class State(enum.Enum):
    CREATED = "CREATED"
    REBALANCING = "REBALANCING"
    RUNNING = "RUNNING"
    PENDING_SHUTDOWN = "PENDING_SHUTDOWN"
    NOT_RUNNING = "NOT_RUNNING"
    ERROR = "ERROR"


class KafkaStreams:
    def __init__(self, topology: Topology, config: StreamsConfig, *, bootstrap_servers: str,
                 processing_guarantee: str = AT_LEAST_ONCE, commit_interval_ms: int | None = None,
                 client_config: Mapping[str, Any] | None = None) -> None:
        if processing_guarantee not in (AT_LEAST_ONCE, EXACTLY_ONCE_V2):
            raise ValueError(f"processing_guarantee must be {AT_LEAST_ONCE} or {EXACTLY_ONCE_V2}, "
                             f"not {processing_guarantee!r}")
        self.topology = topology
        self.config = config
        self.bootstrap = bootstrap_servers
        self.eos = processing_guarantee == EXACTLY_ONCE_V2
        default_interval = 100 if self.eos else 30_000
        self.commit_interval_s = (commit_interval_ms if commit_interval_ms is not None else default_interval) / 1000
        self.client_config = dict(client_config or {})
        self.state = State.CREATED
        self._listeners: list[Callable[[State, State], None]] = []
        self._on_error: Callable[[BaseException], None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: StreamTask | None = None
        self._positions: dict[tuple[str, int], int] = {}
        self._queries: queue.SimpleQueue[tuple[str, Callable[[Any], Any], Future[Any]]] = queue.SimpleQueue()

    # the application's view ----------------------------------------------------------------

    def set_state_listener(self, listener: Callable[[State, State], None]) -> None:
        """``listener(new_state, old_state)`` on every change, from the streams thread."""
        self._listeners.append(listener)

    def set_uncaught_exception_handler(self, handler: Callable[[BaseException], None]) -> None:
        self._on_error = handler

    def query(self, store: str, read: Callable[[Any], Q], timeout_s: float = 10.0) -> Q:
        """Interactive query: ``read(store)`` run on the streams thread, between records, so
        it sees a consistent store (``lambda s: s.get("hello")``, ``lambda s: s.all()``).
        Only while the application is RUNNING."""
        if self.state is not State.RUNNING:
            raise RuntimeError(f"stores can be queried while RUNNING, not {self.state.value}")
        if store not in self.topology.stores:
            raise KeyError(f"no store named {store}; stores: {sorted(self.topology.stores)}")
        done: Future[Q] = Future()
        self._queries.put((store, read, done))
        return done.result(timeout_s)

    def _answer_queries(self, task: StreamTask) -> None:
        while not self._queries.empty():
            name, read, done = self._queries.get_nowait()
            try:
                done.set_result(read(task.stores[name]))
            except Exception as e:  # noqa: BLE001 - the caller's read failed: tell the caller
                done.set_exception(e)

    def start(self) -> None:
        if self.state is not State.CREATED:
            raise RuntimeError(f"cannot start from state {self.state.value}")
        self._create_changelog_topics()
        self._thread = threading.Thread(target=self._run, name=f"streams-{self.config.application_id}", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 30.0) -> bool:
        """Stop processing, commit, close; True if the thread ended within ``timeout_s``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

    def __enter__(self) -> KafkaStreams:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # set-up ------------------------------------------------------------------------------------

    def changelog_topic(self, store: str) -> str:
        return f"{self.config.application_id}-{self.topology.stores[store].changelog_topic}"

    def _logged_stores(self) -> list[str]:
        return [name for name, spec in self.topology.stores.items() if spec.logging_enabled]

    def _create_changelog_topics(self) -> None:
        topics = [kafka_admin.NewTopic(self.changelog_topic(s), 1, 1,  # type: ignore[attr-defined]
                                       config={"cleanup.policy": "compact"})
                  for s in self._logged_stores()]
        if not topics:
            return
        admin = kafka_admin.AdminClient({"bootstrap.servers": self.bootstrap, **self.client_config})
        for topic, future in admin.create_topics(topics).items():
            try:
                future.result(30)
            except KafkaException as e:
                if "TOPIC_ALREADY_EXISTS" not in str(e):
                    raise

    def _set_state(self, new: State) -> None:
        old, self.state = self.state, new
        log.info("streams %s: %s -> %s", self.config.application_id, old.value, new.value)
        for listener in self._listeners:
            listener(new, old)

    # the streams thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        consumer: Consumer | None = None
        producer: Producer | None = None
        try:
            self._set_state(State.REBALANCING)
            consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.config.application_id,
                                 "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                 "isolation.level": "read_committed" if self.eos else "read_uncommitted",
                                 **self.client_config})
            producer_config: dict[str, Any] = {"bootstrap.servers": self.bootstrap, "linger.ms": 5,
                                               "partitioner": "murmur2_random", **self.client_config}
            if self.eos:
                producer_config["transactional.id"] = f"{self.config.application_id}-{TASK_ID}"
            producer = Producer(producer_config)
            if self.eos:
                producer.init_transactions(60)  # fences an earlier instance, aborting what it left open
            self._assign(consumer)
            task = self._make_task(producer)
            self._restore(task)
            if self.eos:
                producer.begin_transaction()
            self._set_state(State.RUNNING)
            self._loop(consumer, producer, task)
            self._set_state(State.PENDING_SHUTDOWN)
            self._commit(consumer, producer, task, final=True)
            task.close()
            self._set_state(State.NOT_RUNNING)
        except BaseException as e:  # noqa: BLE001 - the handler decides; the thread must not die silently
            log.exception("streams %s failed", self.config.application_id)
            self._set_state(State.ERROR)
            if self._on_error is not None:
                self._on_error(e)
        finally:
            if consumer is not None:
                consumer.close()
            if producer is not None:
                producer.flush(10)

    def _assign(self, consumer: Consumer) -> None:
        metadata = consumer.list_topics(timeout=30)
        parts = []
        for topic in self.topology.sources:
            meta = metadata.topics.get(topic)
            if meta is None or meta.error is not None:
                raise KafkaException(f"source topic {topic} does not exist")
            parts += [TopicPartition(topic, p) for p in meta.partitions]
        committed = consumer.committed(parts, timeout=30)
        consumer.assign([TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                         for tp in committed])

    def _make_task(self, producer: Producer) -> StreamTask:
        def collect(topic: str, record: Record[bytes | None, bytes | None], key_serde: Serde[Any],
                    value_serde: Serde[Any]) -> None:
            producer.produce(topic, key=record.key, value=record.value, timestamp=record.timestamp,
                             headers=list(record.headers) or None)
            producer.poll(0)

        def changelog(change: ChangelogRecord) -> None:
            producer.produce(self.changelog_topic(change.store_name), key=change.key, value=change.value,
                             partition=0)
            producer.poll(0)

        state_dir = Path(self.config.state_dir or tempfile.gettempdir()) / "tomyum-streams"
        task = StreamTask(self.topology, self.config, task_id=TASK_ID, state_dir=state_dir, collector=collect,
                          changelog=changelog, wall_clock_ms=int(time.time() * 1000))
        self._task = task
        return task

    def _restore(self, task: StreamTask) -> None:
        """Each logged store from its changelog, up to the end (committed records only)."""
        stores = self._logged_stores()
        if not stores:
            return
        reader = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"{self.config.application_id}-restore",
                           "enable.auto.commit": False, "isolation.level": "read_committed", **self.client_config})
        try:
            for name in stores:
                tp = TopicPartition(self.changelog_topic(name), 0)
                _, end = reader.get_watermark_offsets(tp, timeout=30)
                if end <= 0:
                    continue
                reader.assign([TopicPartition(tp.topic, 0, OFFSET_BEGINNING)])
                changes: list[tuple[bytes, bytes | None]] = []
                position, deadline = 0, time.monotonic() + 120
                while position < end and time.monotonic() < deadline:
                    for m in reader.consume(num_messages=10_000, timeout=0.5):
                        key, offset = m.key(), m.offset()
                        if m.error() is None and key is not None and offset is not None:
                            changes.append((key, m.value()))
                            position = offset + 1
                    if reader.position([tp])[0].offset >= end:
                        break
                task.stores[name].restore(changes)
                log.info("streams %s: restored %s from %d changelog records", self.config.application_id, name,
                         len(changes))
        finally:
            reader.close()

    def _loop(self, consumer: Consumer, producer: Producer, task: StreamTask) -> None:
        last_commit = time.monotonic()
        while not self._stop.is_set():
            for m in consumer.consume(num_messages=500, timeout=0.05):
                topic, partition, offset = m.topic(), m.partition(), m.offset()
                if m.error() is not None or topic is None or partition is None or offset is None:
                    continue
                _, ts = m.timestamp()
                headers = m.headers() or []
                task.process(Record(key=m.key(), value=m.value(), timestamp=ts,
                                    headers=tuple((k, v if isinstance(v, bytes) or v is None else v.encode())
                                                  for k, v in (headers.items() if isinstance(headers, dict)
                                                               else headers)),
                                    topic=topic, partition=partition, offset=offset))
                self._positions[(topic, partition)] = offset + 1
            self._answer_queries(task)
            now_ms = int(time.time() * 1000)
            if now_ms > task.wall_clock_ms:
                task.advance_wall_clock(now_ms - task.wall_clock_ms)
            if time.monotonic() - last_commit >= self.commit_interval_s:
                self._commit(consumer, producer, task)
                last_commit = time.monotonic()

    def _commit(self, consumer: Consumer, producer: Producer, task: StreamTask, *, final: bool = False) -> None:
        task.commit()
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._positions.items()]
        if self.eos:
            if offsets:
                producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
            if not final:
                producer.begin_transaction()
        else:
            producer.flush(30)
            if offsets:
                consumer.commit(offsets=offsets, asynchronous=False)
