"""The changelog reader: restores the stores of tasks in RESTORING a bounded batch at a time
(Kafka Streams' ``StoreChangelogReader`` as the stream thread drove it before the state
updater thread: ``restore()`` once per loop, the running tasks processing in between, and
``TaskManager.tryToCompleteRestoration`` moving a task to RUNNING once its changelogs are
caught up).

* :meth:`ChangelogReader.register` takes a task's logged stores and where each starts (a
  checkpoint's or a promoted standby's offset, else the log start) and reads the changelog
  ends; a store with nothing to read is restored at once (its listeners see no start/end, as
  in Kafka).
* :meth:`ChangelogReader.restore` is one turn: one consume of the restore consumer (up to
  :data:`RESTORE_BATCH` records, waiting at most ``budget_s``), the batch applied to its
  store; it returns the tasks whose stores are now all caught up. The restoring tasks are
  restored one after another, each store to the end it had when the task was registered (a
  task in RESTORING writes nothing to its own changelogs).
* :meth:`ChangelogReader.remove` forgets a task (closed while restoring); the restore consumer
  is unassigned when nothing is left to read.

``StateRestoreListener`` callbacks come in Kafka's order for each changelog partition: start,
batches, end. Not thread-safe: the streams thread only. :meth:`ChangelogReader.restore_all`
raises :class:`Stopping` when the stop event is set (a turn of :meth:`ChangelogReader.restore`
never does: the streams loop that calls it stops, and commits, on its own); a store not caught
up within ``RESTORE_TIMEOUT_S`` raises ``TimeoutError``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from tomyum.client._watermarks import watermark_offsets
from tomyum.streams._metrics import StreamsMetrics
from tomyum.streams._task import StreamTask
from tomyum.streams.processor import StateRestoreListener

__all__ = ["RESTORE_BATCH", "RESTORE_TIMEOUT_S", "ChangelogReader", "Stopping"]

RESTORE_TIMEOUT_S = 300.0
RESTORE_BATCH = 1000
"""Records asked for per consume of the restore consumer (Kafka's ``max.poll.records``)."""
StoreRestored = Callable[[str, str, int], None]


class Stopping(Exception):
    """``close()`` was called while a restore was under way."""


@dataclass(slots=True)
class _StoreRestore:
    """One store of a restoring task: its changelog partition, from ``start`` (None: the log
    start) to ``end``."""

    name: str
    tp: TopicPartition
    start: int | None
    first: int
    end: int
    total: int = 0
    started: bool = False
    deadline: float = 0.0


@dataclass(slots=True)
class _Restoring:
    task: StreamTask
    stores: list[_StoreRestore] = field(default_factory=list)


class ChangelogReader:
    def __init__(self, restore_consumer: Callable[[], Consumer], changelog_topic: Callable[[str], str],
                 listeners: Sequence[StateRestoreListener], metrics: StreamsMetrics, stop: threading.Event,
                 on_store_restored: StoreRestored) -> None:
        self._consumer = restore_consumer
        self._changelog_topic = changelog_topic
        self._listeners = listeners
        self._metrics = metrics
        self._stop = stop
        self._on_store_restored = on_store_restored
        self.restoring: dict[str, _Restoring] = {}
        """The tasks in RESTORING, in the order they are restored."""
        self.restored_ends: dict[tuple[str, int], int] = {}
        """Changelog partition -> the offset its store was restored up to (set when caught up)."""
        self._assigned: TopicPartition | None = None
        self.batch_records = RESTORE_BATCH
        """Records asked for per turn (a test may lower it)."""

    def register(self, task: StreamTask, partition: int, stores: Sequence[str], starts: Mapping[str, int | None]
                 ) -> bool:
        """Take ``task`` in RESTORING for its logged ``stores`` (``starts``: store -> offset to
        read from, None or missing for the log start). True if nothing is left to read (the
        task may run at once)."""
        reader = self._consumer()
        pending = _Restoring(task)
        for name in stores:
            tp = TopicPartition(self._changelog_topic(name), partition)
            low, end = watermark_offsets(reader, tp)
            start = starts.get(name)
            first = low if start is None else max(low, start)
            if end <= first:
                self.restored_ends[(tp.topic, partition)] = end
                self._on_store_restored(task.task_id, name, 0)
                continue
            self._metrics.restoring(task.task_id, name, end - first)
            pending.stores.append(_StoreRestore(name, tp, start, first, end))
        if not pending.stores:
            return True
        self.restoring[task.task_id] = pending
        return False

    def remove(self, task_id: str) -> None:
        """Forget a task that closes while restoring (its stores are left where they are)."""
        gone = self.restoring.pop(task_id, None)
        if gone is not None and gone.stores and self._assigned is gone.stores[0].tp:
            self._unassign()

    def restore(self, budget_s: float) -> list[StreamTask]:
        """One turn: one batch (up to :attr:`batch_records` records, waiting at most ``budget_s``
        for them) of the first restoring task's current store; the tasks now caught up (no
        longer in :attr:`restoring`)."""
        done: list[StreamTask] = []
        if self.restoring:
            task_id, pending = next(iter(self.restoring.items()))
            store = pending.stores[0]
            self._step(pending.task, store, budget_s)
            if self._caught_up(store):
                self._finish(pending.task, pending.stores.pop(0))
            if not pending.stores:
                del self.restoring[task_id]
                done.append(pending.task)
        if not self.restoring:
            self._unassign()
        return done

    def restore_all(self) -> None:
        """Restore every task in RESTORING to its ends now (eager rebalancing restores inside
        the callback, before anything is processed)."""
        while self.restoring:
            if self._stop.is_set():
                raise Stopping
            self.restore(0.5)

    def _step(self, task: StreamTask, store: _StoreRestore, wait_s: float) -> None:
        """Read one batch of ``store``'s changelog into its store (starting it first)."""
        reader = self._consumer()
        if not store.started:
            reader.assign([TopicPartition(store.tp.topic, store.tp.partition,
                                          OFFSET_BEGINNING if store.start is None else store.start)])
            self._assigned = store.tp
            store.started, store.deadline = True, time.monotonic() + RESTORE_TIMEOUT_S
            for listener in self._listeners:
                listener.on_restore_start(store.tp, store.name, store.first, store.end)
        elif time.monotonic() > store.deadline:
            raise TimeoutError(f"{store.tp.topic}[{store.tp.partition}] not restored within {RESTORE_TIMEOUT_S:.0f} s")
        batch: list[tuple[bytes, bytes | None]] = []
        last = -1
        for m in reader.consume(num_messages=self.batch_records, timeout=wait_s):
            key = m.key()
            if m.error() is None and key is not None:
                batch.append((key, m.value()))
                last = int(m.offset() or 0)
        if batch:
            self._metrics.restoring(task.task_id, store.name, store.end - last - 1)
            task.stores[store.name].restore(batch)
            store.total += len(batch)
            for listener in self._listeners:
                listener.on_batch_restored(store.tp, store.name, last, len(batch))

    def _caught_up(self, store: _StoreRestore) -> bool:
        return bool(self._consumer().position([store.tp])[0].offset >= store.end)

    def _finish(self, task: StreamTask, store: _StoreRestore) -> None:
        for listener in self._listeners:
            listener.on_restore_end(store.tp, store.name, store.total)
        self.restored_ends[(store.tp.topic, store.tp.partition)] = store.end
        self._on_store_restored(task.task_id, store.name, store.total)

    def _unassign(self) -> None:
        if self._assigned is not None:
            self._consumer().unassign()  # (nothing fetched in the background until the next restore)
            self._assigned = None
