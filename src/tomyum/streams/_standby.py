"""Standby replicas (Kafka's ``num.standby.replicas``): where they go, and the standby tasks
that keep them warm.

**Where.** Kafka Streams' assignor decides standbys on the group leader and sends each member
its share in the assignment's user data. tomyum.streams runs on librdkafka, whose assignors
(range here) carry no user data, so the placement is instead *computed by every instance, the
same way, from what the group coordinator already knows*: after each rebalance an instance
asks DescribeGroups for the members of ``application.id`` — each member's client id (which
carries the instance's process id) and its assigned partitions, i.e. its active tasks — and
:func:`assign_standbys`, a pure function of that answer, the stateful tasks and
``num_standby_replicas``, says which standby tasks each member holds — the first standby of a
task on the member the range assignor will give the task to if its owner dies. Every instance reads the
same generation's answer (an answer from a group that is not Stable, or in which this
instance's own assignment is not the one it holds, is asked for again), so they agree without
a side channel; nothing is written anywhere, and nothing is left behind when an instance goes.

**What.** A standby task holds its task's logged stores — persistent ones in the task's own
state directory (where an active task of it would open them), in-memory ones in memory, as
Kafka does — and keeps them up to date by reading the task's changelog partitions
(``read_committed`` under exactly-once, so a standby store never holds an aborted write);
every so often it flushes the persistent stores and writes the task's ``.checkpoint`` (see
:mod:`tomyum.streams._checkpoint`; in-memory stores are not in it: they do not outlive the
process). When the task becomes active here, the standby is closed (flushed, checkpointed),
its in-memory engines are handed to the active task with the offsets they stand at
(:meth:`StandbyTasks.promote`), and the active task restores only the changelog's tail after
those — instead of the whole changelog.

Kafka's ``StandbyUpdateListener`` (KIP-988) hears of each standby store's changelog partition:
when reading starts, after each batch applied, and when it stops (``PROMOTED``: before the
active task restores; ``MIGRATED``: the standby leaves this instance, after its stores close).
Closing the application tells it nothing.

Not thread-safe: the streams thread owns a :class:`StandbyTasks`.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from tomyum.streams._checkpoint import read_checkpoint, write_checkpoint
from tomyum.streams._runtime_config import RuntimeConfig
from tomyum.streams._task import StreamTask
from tomyum.streams.processor import StandbyUpdateListener, SuspendReason
from tomyum.streams.state.base import BytesStore, ChangelogRecord
from tomyum.streams.state.memory import InMemoryBytesStore

__all__ = ["GroupMember", "StandbyTasks", "assign_standbys", "describe_members", "range_owner", "task_order"]

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 1.0
"""How often a standby flushes its stores and writes its checkpoint (when it has read more)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMember:
    """One member of the application's group as DescribeGroups tells it."""

    member_id: str
    client_id: str
    active_tasks: frozenset[str]


def task_order(task_id: str) -> tuple[int, int]:
    """``"<sub-topology>_<partition>"`` as numbers, so that ``10_0`` comes after ``2_0``."""
    sub, _, partition = task_id.partition("_")
    return int(sub), int(partition)


def range_owner(partition: int, partitions: int, members: Sequence[str]) -> str:
    """The member that Kafka's range assignor (librdkafka's, and the broker's KIP-848 one for
    members without an instance id) gives ``partition`` of a topic of ``partitions``
    partitions, all ``members`` subscribed: members in member-id order, each a run of
    ``partitions // len(members)`` partitions, the first ones one more."""
    order = sorted(members)
    each, extra = divmod(partitions, len(order))
    index = 0
    while (index + 1) * each + min(index + 1, extra) <= partition:
        index += 1
    return order[index]


def assign_standbys(members: Sequence[GroupMember], stateful_tasks: Mapping[str, int],
                    num_standby_replicas: int) -> dict[str, frozenset[str]]:
    """member id -> the standby tasks it holds. ``stateful_tasks``: task id -> the partition
    count of its sub-topology's topics.

    Each stateful task with an active owner gets up to ``num_standby_replicas`` standbys on
    members other than its owner (fewer when there are not enough members, as in Kafka). The
    first goes where the task will go if its owner dies: the member the range assignor gives
    the task's partition among the other members — so that a single failure always finds the
    task's store warm, though the assignor knows nothing of standbys. Any further ones go to the
    members with the fewest standbys so far, ties broken by their distance after the owner in
    the members' order (client id, then member id). Deterministic: every instance computes the
    same answer from the same input."""
    order = sorted(members, key=lambda m: (m.client_id, m.member_id))
    load = {m.member_id: 0 for m in order}
    standbys: dict[str, set[str]] = {m.member_id: set() for m in order}
    for task in sorted(stateful_tasks, key=task_order):
        owners = [i for i, m in enumerate(order) if task in m.active_tasks]
        if not owners or num_standby_replicas <= 0 or len(order) < 2:
            continue
        heir = range_owner(task_order(task)[1], stateful_tasks[task],
                           [m.member_id for i, m in enumerate(order) if i != owners[0]])
        ring = [order[(owners[0] + k) % len(order)] for k in range(1, len(order))]
        others = sorted((m for m in ring if m.member_id != heir), key=lambda m: load[m.member_id])
        for member in [next(m for m in ring if m.member_id == heir), *others][:num_standby_replicas]:
            if task not in member.active_tasks:
                standbys[member.member_id].add(task)
                load[member.member_id] += 1
    return {member: frozenset(tasks) for member, tasks in standbys.items()}


def describe_members(admin: Any, group_id: str, task_of: Callable[[str, int], str | None],
                     timeout_s: float = 10.0) -> list[GroupMember] | None:
    """The members of ``group_id`` with their active tasks (``task_of(topic, partition)``),
    or None while the group is not Stable (a rebalance under way: ask again later)."""
    from confluent_kafka import ConsumerGroupState

    description = admin.describe_consumer_groups([group_id], request_timeout=timeout_s)[group_id].result(timeout_s)
    if description.state != ConsumerGroupState.STABLE:
        return None
    members = []
    for m in description.members:
        parts = m.assignment.topic_partitions if m.assignment is not None else []
        tasks = {task_of(tp.topic, tp.partition) for tp in parts}
        members.append(GroupMember(member_id=m.member_id, client_id=m.client_id or "",
                                   active_tasks=frozenset(t for t in tasks if t is not None)))
    return members


class StandbyTasks:
    """This instance's standby tasks, their changelog consumer and their checkpoints.

    :meth:`update` makes the standby set exactly the given tasks; :meth:`poll` applies what
    the changelogs have to the stores (without waiting); :meth:`maybe_checkpoint` flushes and
    checkpoints now and then; :meth:`promote` closes one (checkpointed) before its task opens
    as active here; :meth:`close` closes them all (checkpointed)."""

    def __init__(self, config: RuntimeConfig, watermarks: Callable[[Any, TopicPartition], tuple[int, int]]) -> None:
        self.config = config
        self._watermarks = watermarks
        """``(consumer, partition) -> (low, high)``, asked again while a partition is not led yet."""
        self.tasks: dict[str, StreamTask] = {}
        self.positions: dict[tuple[str, int], int] = {}
        """Next changelog offset per standby changelog partition (what the stores hold)."""
        self._partitions: dict[tuple[str, int], tuple[str, str]] = {}
        """Changelog partition -> (task id, store)."""
        self._checkpointed: dict[str, dict[str, int]] = {}
        self._memory: dict[str, dict[str, InMemoryBytesStore]] = {}
        """Task id -> its in-memory stores' engines (handed over on promotion)."""
        self._consumer: Consumer | None = None
        self._last_checkpoint = time.monotonic()
        self.listeners: list[StandbyUpdateListener] = []

    def update(self, wanted: Mapping[str, tuple[Sequence[str], int]]) -> None:
        """Hold exactly the standby tasks ``wanted`` (task id -> (its stores, its partition));
        a new one starts from its directory's checkpoint, or empty from the changelog's start."""
        for task_id in [t for t in self.tasks if t not in wanted]:
            self._close(task_id, SuspendReason.MIGRATED)
        for task_id, (stores, partition) in sorted(wanted.items()):
            if task_id not in self.tasks:
                self._open(task_id, [s for s in stores if self._standby_store(s)], partition)
        self._assign()
        if wanted or self.tasks:
            log.info("streams %s: standby tasks %s", self.config.application_id, sorted(self.tasks))

    def _standby_store(self, store: str) -> bool:
        return self.config.topology.stores[store].logging_enabled

    def _persistent(self, store: str) -> bool:
        return self.config.topology.stores[store].store_type == "persistent"

    def _open(self, task_id: str, stores: list[str], partition: int) -> None:
        task_dir = self.config.task_dir(task_id)
        offsets = read_checkpoint(task_dir) or {}
        topics = {name: self.config.changelog_topic(name) for name in stores}
        on_disk = [topic for name, topic in topics.items() if self._persistent(name)]
        if not all(topic in offsets and self._fits(topic, partition, offsets[topic]) for topic in on_disk):
            shutil.rmtree(task_dir, ignore_errors=True)  # nothing to trust: start empty
            offsets = {}
        offsets = {topic: offsets[topic] for topic in on_disk if topic in offsets}  # in memory: from the start
        memory = {name: InMemoryBytesStore(name) for name in stores if not self._persistent(name)}
        self._memory[task_id] = memory

        def no_writes(change: ChangelogRecord) -> None:
            raise AssertionError(f"standby task {task_id} wrote to its store {change.store_name}")

        self.tasks[task_id] = StreamTask(self.config.topology, self.config.config, task_id=task_id,
                                         state_dir=self.config.state_root, collector=lambda *_: None,
                                         changelog=no_writes, nodes=(), stores=tuple(stores),
                                         inner_stores=memory)
        for name, topic in topics.items():
            tp = TopicPartition(topic, partition)
            self._partitions[(topic, partition)] = (task_id, name)
            self.positions[(topic, partition)] = offsets.get(topic, OFFSET_BEGINNING)
            if self.listeners:
                start = offsets[topic] if topic in offsets else self._watermarks(self._reader(), tp)[0]
                for listener in self.listeners:
                    listener.on_update_start(tp, name, start)
        self._checkpointed[task_id] = offsets

    def _fits(self, topic: str, partition: int, offset: int) -> bool:
        """Whether the changelog still holds ``offset`` (a topic deleted and made again does not)."""
        low, high = self._watermarks(self._reader(), TopicPartition(topic, partition))
        return low <= offset <= high

    def _reader(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(self.config.client("consumer", **{
                "group.id": f"{self.config.application_id}-standby", "enable.auto.commit": False,
                "isolation.level": self.config.isolation_level, "auto.offset.reset": "earliest"}))
        return self._consumer

    def _assign(self) -> None:
        if not self._partitions:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
            return
        self._reader().assign([TopicPartition(t, p, self.positions[(t, p)]) for t, p in sorted(self._partitions)])

    def poll(self, max_records: int = 5_000) -> int:
        """Apply what the standby changelogs have now to the stores (no waiting); the number of
        records applied."""
        if self._consumer is None:
            return 0
        messages = self._consumer.consume(num_messages=max_records, timeout=0)
        batches: dict[tuple[str, int], list[Message]] = {}
        for m in messages:
            topic, partition = m.topic(), m.partition()
            if m.error() is None and topic is not None and partition is not None and m.key() is not None:
                batches.setdefault((topic, partition), []).append(m)
        for tp, batch in batches.items():
            owner = self._partitions.get(tp)
            if owner is None:  # no longer a standby here (consumed before the re-assignment)
                continue
            task_id, store = owner
            self.tasks[task_id].stores[store].restore([(m.key(), m.value()) for m in batch])
            for listener in self.listeners:
                listener.on_batch_loaded(TopicPartition(*tp), store, task_id, int(batch[-1].offset() or 0), len(batch),
                                         self._end_offset(tp))
        # what was handed over is applied: the consumer's positions are the stores' (also past
        # transaction markers and empty partitions, which no message shows)
        for position in self._consumer.position([TopicPartition(t, p) for t, p in self._partitions]):
            if position.offset >= 0:
                self.positions[(position.topic, position.partition)] = position.offset
        return sum(len(b) for b in batches.values())

    def _end_offset(self, tp: tuple[str, int]) -> int:
        """The partition's end as the consumer last fetched it (no request); -1 if unknown."""
        if self._consumer is None:
            return -1
        ends = self._consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)
        return int(ends[1]) if ends and ends[1] >= 0 else -1

    def maybe_checkpoint(self, force: bool = False) -> None:
        """Every ``CHECKPOINT_INTERVAL_S`` (or now, with ``force``): flush the stores of the
        standbys that read something since their last checkpoint, then write it."""
        if not force and time.monotonic() - self._last_checkpoint < CHECKPOINT_INTERVAL_S:
            return
        self._last_checkpoint = time.monotonic()
        for task_id in self.tasks:
            self._checkpoint(task_id)

    def _checkpoint(self, task_id: str) -> None:
        parts = [tp for tp, (owner, store) in self._partitions.items()
                 if owner == task_id and self._persistent(store)]
        if not parts or any(self.positions[tp] < 0 for tp in parts):
            return  # a changelog not read yet: where its store stands is not known
        offsets = {topic: self.positions[(topic, partition)] for topic, partition in parts}
        if offsets == self._checkpointed.get(task_id):
            return
        self.tasks[task_id].commit()  # flush first: the checkpoint never runs ahead of the stores
        write_checkpoint(self.config.task_dir(task_id), offsets)
        self._checkpointed[task_id] = offsets

    def promote(self, task_id: str) -> tuple[dict[str, BytesStore], dict[str, int]]:
        """The task becomes active here: close its standby, checkpointed, for the active task
        to restore only what came after; its in-memory stores that read something are handed
        over: their engines by store, and by changelog topic the offset to go on from."""
        if task_id not in self.tasks:
            return {}, {}
        memory = self._memory.get(task_id, {})
        engines: dict[str, BytesStore] = {}
        offsets: dict[str, int] = {}
        for (topic, partition), (owner, store) in self._partitions.items():
            if owner == task_id and store in memory and self.positions[(topic, partition)] >= 0:
                engines[store], offsets[topic] = memory[store], self.positions[(topic, partition)]
        self._close(task_id, SuspendReason.PROMOTED)
        self._assign()
        return engines, offsets

    def _close(self, task_id: str, reason: SuspendReason | None) -> None:
        """Close the standby (``reason`` for the listeners; ``None``: the application closes)."""
        parts = [(tp, store) for tp, (owner, store) in self._partitions.items() if owner == task_id]
        if reason is SuspendReason.PROMOTED:  # (Kafka: before the active task's restore starts)
            self._suspended(parts, reason)
        self._checkpoint(task_id)
        self.tasks.pop(task_id).close()
        self._checkpointed.pop(task_id, None)
        self._memory.pop(task_id, None)
        if reason is SuspendReason.MIGRATED:  # (Kafka: after the stores are closed)
            self._suspended(parts, reason)
        for tp, _ in parts:
            del self._partitions[tp]
            del self.positions[tp]

    def _suspended(self, parts: list[tuple[tuple[str, int], str]], reason: SuspendReason) -> None:
        for tp, store in parts:
            for listener in self.listeners:
                listener.on_update_suspended(TopicPartition(*tp), store, max(-1, self.positions[tp] - 1),
                                             self._end_offset(tp), reason)

    def close(self) -> None:
        """Close every standby (checkpointed) and the changelog consumer."""
        for task_id in list(self.tasks):
            self._close(task_id, None)
        self._assign()
