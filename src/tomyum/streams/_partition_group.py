"""A task's input buffers and when it may process (Kafka's ``PartitionGroup``, KIP-353 /
KIP-695 ``max.task.idle.ms``).

A task with several input partitions (a join of two topics, a merge) takes its next record
from the partition whose buffered head has the lowest timestamp, so that its inputs are
interleaved in time. If a partition has nothing buffered, the task cannot know whether that
partition's next record is earlier than the others' heads; it then **waits** (processes
nothing) until every partition has data, or until ``max_task_idle_ms`` of wall-clock time
have passed since it began waiting, and from then on processes what it has (*enforced
processing*) until every partition has data again. ``max_task_idle_ms = -1`` never waits.

Where tomyum differs: with ``0`` (Kafka's default) Kafka still waits while the consumer knows
the broker has more records for the empty partition (fetch lag); tomyum does not wait at
all with ``0`` — give a positive ``max_task_idle_ms`` for a join that must wait for its
slower side.

Pure: no I/O; the caller passes the time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from tomyum.streams._record import Record

__all__ = ["PartitionGroup"]

RawRecord = Record[bytes | None, bytes | None]
TopicPartitionKey = tuple[str, int]


class PartitionGroup:
    def __init__(self, partitions: Iterable[TopicPartitionKey], max_task_idle_ms: int) -> None:
        self.queues: dict[TopicPartitionKey, deque[RawRecord]] = {tp: deque() for tp in partitions}
        self.max_task_idle_ms = max_task_idle_ms
        self.waiting_since_ms: int | None = None
        """When the task began waiting for an empty partition (``None``: not waiting)."""
        self.enforced_processing = 0
        """How many times the task went on without a partition after waiting (Kafka's
        ``enforced-processing-total``): each such readiness check, one record."""

    def add(self, partition: TopicPartitionKey, records: Iterable[RawRecord]) -> None:
        self.queues.setdefault(partition, deque()).extend(records)

    def add_partitions(self, partitions: Iterable[TopicPartitionKey]) -> None:
        """Input partitions the task gained (cooperative rebalancing), with nothing buffered yet."""
        for tp in partitions:
            self.queues.setdefault(tp, deque())

    def remove_partitions(self, partitions: Iterable[TopicPartitionKey]) -> None:
        """Input partitions the task gave up, with what they had buffered (cooperative
        rebalancing); the task no longer waits for them."""
        for tp in partitions:
            self.queues.pop(tp, None)

    def clear(self, partitions: Iterable[TopicPartitionKey] | None = None) -> None:
        """Drop what is buffered (for ``partitions``, or all): it will be consumed again."""
        for tp in self.queues if partitions is None else partitions:
            if tp in self.queues:
                self.queues[tp].clear()

    @property
    def buffered(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def ready(self, now_ms: int) -> bool:
        """Whether the task may process its next record now (see the module docstring)."""
        filled = [bool(q) for q in self.queues.values()]
        if all(filled):
            self.waiting_since_ms = None
            return True
        if not any(filled):
            return False
        if self.max_task_idle_ms < 0:
            return True
        if self.waiting_since_ms is None:
            self.waiting_since_ms = now_ms
        if now_ms - self.waiting_since_ms < self.max_task_idle_ms:
            return False
        self.enforced_processing += 1
        return True

    def next_record(self) -> tuple[TopicPartitionKey, RawRecord]:
        """The buffered head with the lowest timestamp (the first such partition on ties)."""
        tp = min((tp for tp, q in self.queues.items() if q), key=lambda tp: self._head_time(tp))
        return tp, self.queues[tp].popleft()

    def _head_time(self, tp: TopicPartitionKey) -> int:
        return self.queues[tp][0].timestamp
