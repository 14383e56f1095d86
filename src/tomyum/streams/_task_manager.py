"""The task manager: which tasks this instance runs, and their state (Kafka Streams'
``TaskManager``, with its ``StateManager`` / ``StoreChangelogReader`` duties).

* Rebalances: :meth:`assign` (eager, the classic protocol) closes the tasks whose partitions
  went and creates those that came (``<sub-topology>_<partition>``), each restored from its
  changelog partitions before it processes anything (see :meth:`set_restore_listener`);
  :meth:`revoke` commits before partitions go. Cooperative (KIP-848, ``group_protocol=
  "consumer"``): :meth:`add` creates the tasks of the partitions added and leaves the running
  ones alone, :meth:`revoke_incrementally` commits, then closes only the tasks whose
  partitions went; :meth:`lose` drops every task without a commit (the session ran out, or an
  exactly-once commit failed: the stale generation's work is aborted), and :meth:`rewind` puts
  the consumer back at the committed offsets so that rebuilt tasks read again what was lost.
* Restoring (Kafka's task states CREATED -> RESTORING -> RUNNING): a task created by
  :meth:`add` is RESTORING; :meth:`restore`, called by the streams loop between batches,
  restores a bounded turn of it (:mod:`tomyum.streams._changelog_reader`), and its input
  partitions stay paused on the consumer until its stores are caught up, when it becomes
  RUNNING and they are resumed. A restoring task processes, punctuates and commits nothing
  and is not queried; closed while restoring (revoked, lost), it leaves no checkpoint.
  :meth:`assign` (eager) restores its new tasks at once, inside the callback.
* Checkpoints: a task closed cleanly leaves ``.checkpoint`` in its directory (the changelog
  offsets its persistent stores hold), and so does every commit that wrote to its changelogs
  (the offsets after the records delivered); the next task to open that directory restores
  only what came after. Under exactly-once the file is deleted as the task opens and before
  the stores flush writes of a transaction, and written again only after the transaction
  committed; a task closed without a commit leaves none (its stores flush as they close), so
  its state is rebuilt from the start.
* Standby tasks (:mod:`tomyum.streams._standby`): placed after each rebalance once the group
  is stable, kept up to date between batches; one becomes the starting point of its task when
  the task is assigned here.
* Processing: :meth:`process_messages` hands each task its share of a consumed batch and keeps
  the consumed positions; :meth:`commit` flushes the stores, then has the record collector
  commit outputs and offsets; :meth:`purge_repartition_topics` deletes what every task
  committed past.
* The global task (global tables): read whole before any task starts, then between batches.

May call the consumer and the record collector it is given (``consumer``, ``collector``, set
for each life of the clients), its own restore consumers, and the admin client it is handed. It
raises :class:`Stopping` when the stop event is set during a restore, and lets the collector's
``Fenced`` through. Not thread-safe: everything runs on the streams thread, the consumer's
rebalance callbacks included.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from tomyum.client._watermarks import watermark_offsets
from tomyum.streams._changelog_reader import RESTORE_TIMEOUT_S, ChangelogReader, Stopping
from tomyum.streams._checkpoint import read_checkpoint, remove_checkpoint, write_checkpoint
from tomyum.streams._metrics import StreamsMetrics
from tomyum.streams._partition_group import PartitionGroup
from tomyum.streams._plan import Plan
from tomyum.streams._record import Record
from tomyum.streams._record_collector import RecordCollector
from tomyum.streams._runtime_config import RuntimeConfig
from tomyum.streams._standby import StandbyTasks, assign_standbys, describe_members, task_order
from tomyum.streams._task import StreamTask
from tomyum.streams.processor import StateRestoreListener
from tomyum.streams.serdes import Serde
from tomyum.streams.state.base import BytesStore, ChangelogRecord
from tomyum.streams.state.caching import ThreadCache

__all__ = ["RESTORE_TIMEOUT_S", "Stopping", "TaskManager"]

log = logging.getLogger(__name__)

STANDBY_PLACEMENT_BACKOFF_S = (0.5, 8.0)
"""First and longest wait before asking DescribeGroups again for the standby placement."""
RESTORE_BUDGET_S = 0.05
"""How long :meth:`TaskManager.restore` waits at most for a batch, per turn of the streams loop."""
RawRecord = Record[bytes | None, bytes | None]
RestoreListener = Callable[[str, str, int], None]



class TaskManager:
    def __init__(self, config: RuntimeConfig, stop: threading.Event) -> None:
        self.config = config
        self.topology = config.topology
        self.application_id = config.application_id
        self._stop = stop
        self.tasks: dict[str, StreamTask] = {}
        """The active tasks of this instance by id."""
        self.global_task: StreamTask | None = None
        self.partition_groups: dict[str, PartitionGroup] = {}
        """Each active task's buffered input records (``max.task.idle.ms``)."""
        self.clock_ms: Callable[[], int] = lambda: int(time.monotonic() * 1000)
        """Wall-clock milliseconds for ``max.task.idle.ms`` (a test may replace it)."""
        self.cache = ThreadCache(config.config.cache_max_bytes)
        """The record cache this instance's tasks share (``statestore.cache.max.bytes``)."""
        self.positions: dict[tuple[str, int], int] = {}
        """Next offset to consume per input partition, as processed."""
        self.committed: dict[tuple[str, int], int] = {}
        self._purged: dict[tuple[str, int], int] = {}
        self._dirty = False
        self._restore_listeners: list[RestoreListener] = []
        self._state_restore_listeners: list[StateRestoreListener] = []
        self.standbys = StandbyTasks(config, watermark_offsets)
        self.standby_placement: Mapping[str, frozenset[str]] = {}
        """Every member's standby tasks by client id, as last placed (replaced whole: any thread
        may read it)."""
        """This instance's standby tasks (``num_standby_replicas``, see :mod:`tomyum.streams._standby`)."""
        self._standbys_due: float | None = None
        self._logged: set[str] = set()
        """Tasks that wrote to their changelogs since their last checkpoint."""
        self._checkpointed_tasks: set[str] = set()
        """Tasks whose ``.checkpoint`` is on disk (written by a commit)."""
        self._standbys_backoff_s = STANDBY_PLACEMENT_BACKOFF_S[0]
        self.sources: dict[str, tuple[str, int]] = {}
        """Source topic as on the broker -> (as in the topology, sub-topology)."""
        self.plan: Plan | None = None
        self._changelogs: Consumer | None = None
        """The restore consumer (see :meth:`changelog_consumer`)."""
        self.consumer: Consumer | None = None
        self.collector: RecordCollector | None = None
        self.metrics = StreamsMetrics()
        """What the tasks processed, committed and restored (read by a metrics scrape)."""
        self.changelog_reader = ChangelogReader(self.changelog_consumer, config.changelog_topic,
                                                self._state_restore_listeners, self.metrics, stop, self._restored)
        """Restores the tasks in RESTORING (see :mod:`tomyum.streams._changelog_reader`)."""
        self._to_pause: set[tuple[str, int]] = set()
        """Input partitions of restoring tasks not paused on the consumer yet."""
        self._paused: set[tuple[str, int]] = set()

    def use_plan(self, the_plan: Plan) -> None:
        self.plan = the_plan
        self.sources = {self.config.topic(t): (t, sub) for t, sub in the_plan.subtopology_of_topic.items()}

    def set_restore_listener(self, listener: RestoreListener) -> None:
        """``listener(task_id, store, records)`` after each store of a task is restored from its
        changelog (``records`` read: 0 when a checkpoint left nothing to replay)."""
        self._restore_listeners.append(listener)

    def add_state_restore_listener(self, listener: StateRestoreListener) -> None:
        """Kafka's ``StateRestoreListener``: told when each changelog partition's restore
        starts, after each batch, and when it ends."""
        self._state_restore_listeners.append(listener)

    def open_tasks(self, *, running: bool = False) -> list[StreamTask]:
        """The active tasks (``running``: only those in RUNNING, not RESTORING), then the
        global task if there is one."""
        tasks = self.running_tasks() if running else self.tasks
        return [*tasks.values(), *([self.global_task] if self.global_task is not None else [])]

    # rebalancing ------------------------------------------------------------------------------------

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Eager rebalancing (the classic protocol): run exactly the tasks of ``partitions``
        — close the others, create and restore the new."""
        wanted = self._tasks_of(partitions)
        for task_id in [t for t in self.tasks if t not in wanted]:
            self._close_task(task_id)
        self._open(wanted, at_once=True)

    def add(self, partitions: list[TopicPartition]) -> None:
        """Cooperative rebalancing (KIP-848): ``partitions`` join what this instance has. The
        running tasks go on untouched; a task whose first partition came is created in
        RESTORING (restored between batches by :meth:`restore`, its inputs paused until it is
        caught up); a task takes in a partition that came later (a task's co-partitioned
        inputs may arrive in separate assignments while another member still gives some up)."""
        wanted = self._tasks_of(partitions)
        for task_id, inputs in wanted.items():
            if task_id in self.tasks:
                self.partition_groups[task_id].add_partitions(inputs)
                if task_id in self.changelog_reader.restoring:
                    self._to_pause.update(inputs)
        self._open({t: inputs for t, inputs in wanted.items() if t not in self.tasks}, at_once=False)

    def _tasks_of(self, partitions: Iterable[TopicPartition]) -> dict[str, list[tuple[str, int]]]:
        """Task id -> its input partitions among ``partitions``."""
        inputs: dict[str, list[tuple[str, int]]] = {}
        for tp in partitions:
            inputs.setdefault(f"{self.sources[tp.topic][1]}_{tp.partition}", []).append((tp.topic, tp.partition))
        return inputs

    def _open(self, wanted: Mapping[str, list[tuple[str, int]]], *, at_once: bool) -> None:
        """Create the tasks of ``wanted`` not running yet (task id -> inputs) in RESTORING;
        ``at_once``: restore them here (eager rebalancing), else between batches (:meth:`restore`)."""
        assert self.plan is not None
        for task_id, inputs in sorted(wanted.items()):
            if task_id in self.tasks:
                continue
            sub, partition = (int(n) for n in task_id.split("_"))
            spec = self.plan.subtopologies[sub]
            engines, offsets = self.standbys.promote(task_id)  # its warm stores (on disk: checkpointed)
            checkpoint = self._take_checkpoint(task_id, spec.stores, partition)
            if checkpoint is None:
                shutil.rmtree(self.config.task_dir(task_id), ignore_errors=True)
            task = self._new_task(task_id, spec.nodes, spec.stores, partition, engines)
            self.tasks[task_id] = task
            self.partition_groups[task_id] = PartitionGroup(inputs, self.config.config.max_task_idle_ms)
            starts = {**(checkpoint or {}), **offsets}  # changelog topic -> where its store stands
            logged = [name for name in task.stores if self.topology.stores[name].logging_enabled]
            warm = {name: starts.get(self.config.changelog_topic(name)) for name in logged
                    if name in self._checkpointed([name]) or name in task.inner_stores}
            if not self.changelog_reader.register(task, partition, logged, warm):
                self._to_pause.update(inputs)
        if at_once:
            self.changelog_reader.restore_all()
            self._to_pause.clear()
        log.info("streams %s: tasks %s", self.application_id, sorted(self.tasks))
        if self.config.num_standby_replicas > 0:
            self._standbys_due = time.monotonic()  # the placement follows the new assignment
            self._standbys_backoff_s = STANDBY_PLACEMENT_BACKOFF_S[0]

    def restore(self, budget_s: float = RESTORE_BUDGET_S) -> None:
        """Between batches (Kafka's stream thread before the state updater): pause the inputs
        of tasks in RESTORING, restore for at most about ``budget_s`` seconds, and move the
        tasks now caught up to RUNNING, their inputs resumed. The running tasks process in
        between; nothing is processed against a store that is not caught up."""
        consumer = self.consumer
        if self._to_pause and consumer is not None:
            consumer.pause([TopicPartition(t, p) for t, p in sorted(self._to_pause)])
            self._paused |= self._to_pause
            self._to_pause.clear()
        if not self.changelog_reader.restoring:
            return
        for task in self.changelog_reader.restore(budget_s):
            inputs = sorted(tp for tp in self.partition_groups[task.task_id].queues if tp in self._paused)
            if inputs and consumer is not None:
                consumer.resume([TopicPartition(t, p) for t, p in inputs])
            self._paused.difference_update(inputs)
            log.info("streams %s: task %s restored, now RUNNING", self.application_id, task.task_id)

    @property
    def restoring(self) -> frozenset[str]:
        """The tasks in RESTORING (created, their stores not caught up with their changelogs)."""
        return frozenset(self.changelog_reader.restoring)

    def running_tasks(self) -> dict[str, StreamTask]:
        """The active tasks in RUNNING (processing, committing, queryable)."""
        restoring = self.changelog_reader.restoring
        return {task_id: task for task_id, task in self.tasks.items() if task_id not in restoring}

    def revoke(self, partitions: list[TopicPartition]) -> None:
        """Eager rebalancing: commit before the partitions go (the tasks wait, suspended, for
        the new assignment); if the commit fails, the tasks are lost."""
        if not self.commit():
            self.lose()
        self._forget(partitions)

    def revoke_incrementally(self, partitions: list[TopicPartition]) -> bool:
        """Cooperative rebalancing (KIP-848): commit every task (as Kafka Streams does), then
        close cleanly — with checkpoints, so that a task coming back restores only the tail —
        the tasks left with no input partition; the others go on. False if the commit failed:
        every task is then lost (see :meth:`lose`), and the caller rebuilds those it keeps."""
        committed = self.commit()
        if not committed:
            self.lose()
        self._forget(partitions)
        gone = [(tp.topic, tp.partition) for tp in partitions]
        for task_id, group in list(self.partition_groups.items()):
            group.remove_partitions(gone)
            if not group.queues:
                self._close_task(task_id)
        if gone:
            log.info("streams %s: tasks %s", self.application_id, sorted(self.tasks))
        return committed

    def _forget(self, partitions: Iterable[TopicPartition]) -> None:
        """The positions and buffered records of partitions that go (the next owner reads them again)."""
        for tp in partitions:
            self.positions.pop((tp.topic, tp.partition), None)
            self.committed.pop((tp.topic, tp.partition), None)
            self._to_pause.discard((tp.topic, tp.partition))
            self._paused.discard((tp.topic, tp.partition))
        for group in self.partition_groups.values():
            group.clear([(tp.topic, tp.partition) for tp in partitions])

    def lose(self) -> None:
        """No commit is possible: drop the tasks and what they did since the last commit (the
        open transaction aborted) — they are rebuilt from their changelogs."""
        log.warning("streams %s: partitions lost; closing tasks %s without committing", self.application_id,
                    sorted(self.tasks))
        if self.collector is not None:
            self.collector.abort_if_open()
        for task_id in list(self.tasks):
            self._close_task(task_id, clean=False)
        self.positions.clear()
        self.committed.clear()
        self._to_pause.clear()
        self._paused.clear()

    def rewind(self, partitions: list[TopicPartition]) -> None:
        """Seek the consumer back to the committed offsets of ``partitions`` (the beginning
        where none is committed)."""
        assert self.consumer is not None
        for group in self.partition_groups.values():
            group.clear()
        for tp in self.consumer.committed(partitions, timeout=30):
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))

    def close_all(self) -> None:
        """After a commit: close every task cleanly (with checkpoints)."""
        for task_id in list(self.tasks):
            self._close_task(task_id)

    # standby tasks ----------------------------------------------------------------------------------

    def maintain_standbys(self, admin: Any) -> None:
        """Between batches: place the standbys once the group is stable after a rebalance
        (see :mod:`tomyum.streams._standby`), then bring them up to date and checkpoint."""
        if self._standbys_due is not None and time.monotonic() >= self._standbys_due:
            if self._place_standbys(admin):
                self._standbys_due, self._standbys_backoff_s = None, STANDBY_PLACEMENT_BACKOFF_S[0]
            else:  # the group is not settled yet: ask again, less and less often
                self._standbys_due = time.monotonic() + self._standbys_backoff_s
                self._standbys_backoff_s = min(self._standbys_backoff_s * 2, STANDBY_PLACEMENT_BACKOFF_S[1])
        self.standbys.poll()
        self.standbys.maybe_checkpoint()

    def _place_standbys(self, admin: Any) -> bool:
        """This instance's standby tasks from the group's members; False if the group is not
        settled yet (a rebalance under way, or an answer older than our assignment)."""
        assert self.plan is not None and self.consumer is not None
        try:
            members = describe_members(admin, self.application_id, self._task_of)
        except (KafkaException, TimeoutError) as e:
            log.info("streams %s: cannot describe the group for standby placement (%s); will ask again",
                     self.application_id, e)
            return False
        me = self.consumer.memberid()
        mine = next((m for m in members or [] if m.member_id == me), None)
        if members is None or mine is None or mine.active_tasks != frozenset(self.tasks):
            return False
        stateful = {task_id: (spec.stores, int(task_id.rsplit("_", 1)[1]))
                    for sub, spec in enumerate(self.plan.subtopologies)
                    if any(self.topology.stores[name].logging_enabled for name in spec.stores)
                    for task_id in (f"{sub}_{p}" for p in range(self.plan.tasks[sub]))}
        placement = assign_standbys(members, {t: self.plan.tasks[task_order(t)[0]] for t in stateful},
                                    self.config.num_standby_replicas)
        by_client: dict[str, frozenset[str]] = {}
        for m in members:
            by_client[m.client_id] = by_client.get(m.client_id, frozenset()) | placement[m.member_id]
        self.standby_placement = by_client
        self.standbys.update({task_id: stateful[task_id] for task_id in placement[me]})
        return True

    def _task_of(self, topic: str, partition: int) -> str | None:
        source = self.sources.get(topic)
        return None if source is None else f"{source[1]}_{partition}"

    def close_standbys(self) -> None:
        """Close the standby tasks (checkpointed) and their consumer."""
        self._standbys_due = None
        self.standbys.close()

    def reset(self) -> None:
        """Forget the tasks and positions once the clients are closed (the tasks closed by the
        caller, without checkpoints: they were not committed)."""
        for task_id in self.tasks:
            self.metrics.task_closed(task_id)
        self.tasks.clear()
        self.changelog_reader.restoring.clear()
        self._to_pause.clear()
        self._paused.clear()
        self.global_task = None
        self._dirty = False
        self.positions.clear()
        self.committed.clear()
        self.consumer = None
        self.collector = None

    # tasks and their state --------------------------------------------------------------------------

    def changelog_consumer(self) -> Consumer:
        """Kafka's restore consumer, made when first needed and kept for the life of the clients:
        it reads the changelogs to restore, and asks their watermarks for the checkpoints. Never
        the main consumer: asked for other partitions' offsets inside a rebalance callback,
        librdkafka stops fetching the partitions it keeps for about a second (measured under
        KIP-848), which would stall the tasks a cooperative rebalance keeps running."""
        if self._changelogs is None:
            self._changelogs = Consumer(self.config.client("consumer", **{
                "group.id": f"{self.application_id}-restore", "enable.auto.commit": False,
                "isolation.level": self.config.isolation_level}))
        return self._changelogs

    def close_changelog_consumer(self) -> None:
        consumer, self._changelogs = self._changelogs, None
        if consumer is not None:
            consumer.close()

    def _new_task(self, task_id: str, nodes: tuple[str, ...] | None, stores: tuple[str, ...],
                  partition: int, inner_stores: Mapping[str, BytesStore] | None = None) -> StreamTask:
        collector = self.collector
        assert collector is not None
        topics: dict[str, str] = {}  # a topology's topic name -> the broker's

        def collect(topic: str, record: RawRecord, key_serde: Serde[Any], value_serde: Serde[Any]) -> None:
            name = topics.get(topic)
            if name is None:
                name = topics[topic] = self.config.topic(topic)
            collector.send(name, record.key, record.value, -1 if record.partition is None else record.partition,
                           record.timestamp, list(record.headers) or None)

        def changelog(change: ChangelogRecord) -> None:
            self._logged.add(task_id)
            collector.send(self.config.changelog_topic(change.store_name), change.key, change.value, partition, 0,
                           None)

        return StreamTask(self.topology, self.config.config, task_id=task_id, state_dir=self.config.state_root,
                          collector=collect, changelog=changelog, wall_clock_ms=int(time.time() * 1000), nodes=nodes,
                          stores=stores, global_stores=None if self.global_task is None else self.global_task.stores,
                          cache=self.cache, inner_stores=inner_stores)

    def _close_task(self, task_id: str, *, clean: bool = True) -> None:
        """Close a task; a clean close (after a commit) of a running task leaves a checkpoint of
        its persistent stores' changelog offsets. A task closed in RESTORING leaves none (its
        stores are not caught up): the next owner restores it from the start."""
        task = self.tasks.pop(task_id)
        if task_id in self.changelog_reader.restoring:
            self.changelog_reader.remove(task_id)
            remove_checkpoint(self.config.task_dir(task_id))
            clean = False
        self.partition_groups.pop(task_id, None)
        self.metrics.task_closed(task_id)
        self._logged.discard(task_id)
        self._checkpointed_tasks.discard(task_id)
        if not clean:
            self.discard_checkpoint(task_id)
        task.close()
        if clean:
            self._write_checkpoint(task)

    def discard_checkpoints(self) -> None:
        """:meth:`discard_checkpoint` for every open task (before closing them after an error)."""
        for task_id in self.tasks:
            self.discard_checkpoint(task_id)

    def discard_checkpoint(self, task_id: str) -> None:
        """Before a task closes without a commit: under exactly-once its stores are about to
        flush writes of a transaction that is aborted, so no checkpoint may vouch for them."""
        if self.config.exactly_once:
            remove_checkpoint(self.config.task_dir(task_id))

    def _write_checkpoint(self, task: StreamTask) -> None:
        """After the task's stores were flushed and its changelog records acknowledged (a
        commit): the changelog ends, which is where its persistent stores stand (the task is
        the only writer of its changelog partitions)."""
        stores = self._checkpointed(task.stores)
        if not stores:
            return
        partition = int(task.task_id.rsplit("_", 1)[1])
        offsets = {}
        for name in stores:
            tp = TopicPartition(self.config.changelog_topic(name), partition)
            offsets[tp.topic] = watermark_offsets(self.changelog_consumer(), tp)[1]
        write_checkpoint(self.config.task_dir(task.task_id), offsets)

    def _checkpointed(self, stores: Iterable[str]) -> list[str]:
        """The stores a checkpoint covers: logged and on disk."""
        return [name for name in stores if self.topology.stores[name].logging_enabled
                and self.topology.stores[name].store_type == "persistent"]

    def _take_checkpoint(self, task_id: str, stores: Iterable[str], partition: int) -> dict[str, int] | None:
        """The task's checkpoint, if it covers every persistent store with offsets the
        changelogs still hold. Under exactly-once the file is removed (see the module
        docstring); under at-least-once it stays, as in Kafka."""
        task_dir = self.config.task_dir(task_id)
        offsets = read_checkpoint(task_dir)
        if self.config.exactly_once or offsets is None:
            remove_checkpoint(task_dir)
        if offsets is None:
            return None
        for name in self._checkpointed(stores):
            topic = self.config.changelog_topic(name)
            low, high = watermark_offsets(self.changelog_consumer(), TopicPartition(topic, partition))
            if not isinstance(offsets.get(topic), int) or not low <= offsets[topic] <= high:
                log.info("streams %s: checkpoint of task %s does not fit %s; restoring from the start",
                         self.application_id, task_id, topic)
                remove_checkpoint(task_dir)
                return None
        return offsets

    def _restored(self, task_id: str, store: str, records: int) -> None:
        self.metrics.restored_store(task_id, store, records)
        log.info("streams %s: task %s restored %s from %d changelog records", self.application_id, task_id, store,
                 records)
        for listener in self._restore_listeners:
            listener(task_id, store, records)

    # global tables ------------------------------------------------------------------------------------

    def start_global(self) -> Consumer | None:
        """Read every partition of the global tables' topics to their end into the global
        task, before any other task starts; the consumer that goes on reading them (the
        caller's to close), or None without global tables."""
        if not self.topology.global_topics:
            return None
        stores = tuple(sorted(self.topology.global_stores))
        shutil.rmtree(self.config.task_dir("global"), ignore_errors=True)
        self.global_task = self._new_task("global", self.topology.global_nodes(), stores, 0)
        consumer = Consumer(self.config.client("consumer", **{
            "group.id": f"{self.application_id}-global", "enable.auto.commit": False,
            "isolation.level": self.config.isolation_level}))
        parts = []
        for topic in sorted(self.topology.global_topics):
            metadata = consumer.list_topics(topic, timeout=30).topics[topic]
            parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
        consumer.assign(parts)
        watermarks = {(tp.topic, tp.partition): watermark_offsets(consumer, tp) for tp in parts}
        ends = {tp: high for tp, (low, high) in watermarks.items() if high > low}  # the partitions with records
        deadline = time.monotonic() + RESTORE_TIMEOUT_S
        while any(p.offset < ends[(p.topic, p.partition)] for p in consumer.position(parts)
                  if (p.topic, p.partition) in ends):
            if self._stop.is_set():
                raise Stopping
            if time.monotonic() > deadline:
                raise TimeoutError(f"global tables not restored within {RESTORE_TIMEOUT_S:.0f} s")
            self.process_global(consumer, 0.2)
        log.info("streams %s: global tables %s read", self.application_id, sorted(self.topology.global_topics))
        return consumer

    def process_global(self, consumer: Consumer, timeout: float) -> None:
        """Read what the global tables' topics have (waiting up to ``timeout`` s) into the
        global task."""
        assert self.global_task is not None
        for m in consumer.consume(num_messages=1000, timeout=timeout):
            record = consumed_record(m)
            if record is not None:
                self.global_task.process(record)
        self.global_task.commit()

    # processing -------------------------------------------------------------------------------------

    def process_messages(self, messages: Iterable[Message]) -> None:
        """Buffer a consumed batch in each task's partition group, then run every task that
        is ready (see :meth:`process_ready`)."""
        for m in messages:
            topic, partition = m.topic(), m.partition()
            if m.error() is not None or topic is None or partition is None:
                continue
            name, sub = self.sources[topic]
            record = consumed_record(m, name)
            group = self.partition_groups.get(f"{sub}_{partition}")
            if record is not None and group is not None:  # None: revoked within this batch
                group.add((topic, partition), (record,))
        self.process_ready()

    def process_ready(self) -> None:
        """Run each task while its partition group is ready: records of several partitions
        are taken lowest timestamp first, each partition in its order (Kafka's choice of the
        next record among a task's partitions), so that joins and windows see their inputs
        interleaved in time; a task with an empty input partition waits up to
        ``max.task.idle.ms`` for it (see :mod:`tomyum.streams._partition_group`). Called after
        each poll, also an empty one, so that waiting tasks go on when their time is up."""
        now_ms = self.clock_ms()
        restoring = self.changelog_reader.restoring
        for task_id, group in list(self.partition_groups.items()):
            if task_id in restoring:  # (records fetched before its inputs were paused wait)
                continue
            task = self.tasks[task_id]
            processed = 0
            while group.ready(now_ms):
                tp, record = group.next_record()
                task.process(record)
                self.positions[tp] = (record.offset or 0) + 1
                self._dirty = True
                processed += 1
            if processed:
                self.metrics.add_processed(task_id, processed)

    def punctuate(self, now_ms: int) -> None:
        """Move the tasks' wall clocks to ``now_ms``, firing the punctuators that are due."""
        for task in list(self.running_tasks().values()):
            if now_ms > task.wall_clock_ms:
                task.advance_wall_clock(now_ms - task.wall_clock_ms)

    def commit(self, *, final: bool = False) -> bool:
        """Flush the stores, then commit outputs and input offsets (one transaction under
        exactly-once). False if the group moved on (the tasks must then be rebuilt)."""
        collector, consumer = self.collector, self.consumer
        running = self.running_tasks()  # (a task in RESTORING has nothing to commit)
        if collector is None or consumer is None or not (
                self._dirty or collector.dirty or final or any(task.cache_dirty for task in running.values())):
            return True  # (a punctuator may have written to a cached store without producing)
        if self.config.exactly_once:  # the stores are about to take in writes not committed yet
            for task_id, task in running.items():
                if task_id in self._checkpointed_tasks and (task_id in self._logged or task.cache_dirty):
                    remove_checkpoint(self.config.task_dir(task_id))
                    self._checkpointed_tasks.discard(task_id)
        started = time.monotonic()
        for task in running.values():
            task.commit()
        offsets = [TopicPartition(t, p, o) for (t, p), o in self.positions.items()]
        if not collector.commit(offsets, consumer):
            return False
        self.metrics.commit_latency.observe(time.monotonic() - started)
        self._dirty = False
        self.committed = dict(self.positions)
        self._checkpoint_committed(collector)
        return True

    def _checkpoint_committed(self, collector: RecordCollector) -> None:
        """After a commit, a checkpoint for each task that wrote to its changelogs since its
        last one (or has none): the stores were flushed and every changelog record delivered
        (and, under exactly-once, committed), so the offsets after the last records this
        instance delivered — or, for a store not written since, restored — are where the stores
        stand. A crash from here on restores only what comes after."""
        for task_id, task in self.running_tasks().items():
            stores = self._checkpointed(task.stores)
            if not stores or (task_id in self._checkpointed_tasks and task_id not in self._logged):
                continue
            partition = int(task_id.rsplit("_", 1)[1])
            offsets: dict[str, int] = {}
            for name in stores:
                tp = (self.config.changelog_topic(name), partition)
                restored = self.changelog_reader.restored_ends.get(tp)
                known = [o for o in (collector.delivered.get(tp), restored) if o is not None]
                if known:  # (an older delivery, from before the task last came back, is behind the restore)
                    offsets[tp[0]] = max(known)
            if len(offsets) == len(stores):
                write_checkpoint(self.config.task_dir(task_id), offsets)
                self._checkpointed_tasks.add(task_id)
        self._logged.clear()

    def update_lag(self) -> None:
        """Each task's input partitions' lag (see :class:`StreamsMetrics`), from the high
        watermarks of the consumer's last fetches (no request)."""
        consumer = self.consumer
        if consumer is None:
            return
        lag: dict[tuple[str, str, int], int] = {}
        for task_id, group in self.partition_groups.items():
            for (topic, partition), buffered in group.queues.items():
                tp = TopicPartition(topic, partition)
                try:
                    watermarks = consumer.get_watermark_offsets(tp, cached=True)
                    high = -1 if watermarks is None else watermarks[1]
                    position = self.positions.get((topic, partition))
                    if position is None:
                        position = consumer.position([tp])[0].offset - len(buffered)
                except KafkaException:
                    continue
                if high >= 0 and position >= 0:
                    lag[(task_id, topic, partition)] = max(high - position, 0)
        self.metrics.lag = lag

    def purge_repartition_topics(self, admin: Any) -> None:
        """Delete the records of repartition topics that every task has committed past."""
        done = [TopicPartition(t, p, o) for (t, p), o in self.committed.items()
                if self.sources[t][0] in self.topology.repartition_topics and self._purged.get((t, p)) != o]
        if not done or admin is None:
            return
        try:
            for future in admin.delete_records(done).values():
                future.result(10)
            self._purged.update({(tp.topic, tp.partition): tp.offset for tp in done})
        except KafkaException as e:
            log.info("streams %s: purging repartition topics failed (%s); will try again", self.application_id, e)


def consumed_record(m: Message, topic: str | None = None) -> RawRecord | None:
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
