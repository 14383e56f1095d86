"""MemoryLogStore: the :class:`~tomyum.storage.engine.LogStore` contract with every batch in memory.

The reference engine for tests of what sits above the seam (coordinators, handlers, streams):
the same contract as the local engine, run by the same contract suite
(``tests/unit/test_engine_contract.py``), with no files and no threads.

What it guarantees, as the local engine does:

* offsets are dense from ``log_end_offset``; batches are validated as Kafka's LogValidator
  does (shared with the local engine: :mod:`tomyum.storage.log_rules`) and kept as a log
  holds them, base offset patched;
* idempotent and transactional producers are checked against the same producer state
  (:mod:`tomyum.storage.producer_state`): fencing, sequences, retries answered with their
  original offsets; transaction markers, the last stable offset and aborted transactions for
  read_committed reads;
* "durable" means what the high watermark means to every reader: ``append`` returns with the
  batch written but not yet below the high watermark; one commit round, scheduled on the next
  iteration of the event loop, moves the high watermark of every partition written since the
  last round, resolves their ``wait_durable`` waiters and calls the ``on_high_watermark``
  callbacks. Nothing is ever read at or past the high watermark;
* ``delete_records`` moves the log start offset (and frees the batches below it);
  :meth:`MemoryLogStore.enforce_retention` applies ``retention.ms`` / ``retention.bytes`` with
  each batch counting as a segment, when called.

What it does not do: nothing survives ``close`` or a restart (``start`` opens every partition
empty, and ``data_dir`` is not used); no flush policy (``flush.messages`` / ``flush.ms``), no
log compaction, no zero-copy reads (``zero_copy_min`` is ignored: records come back as bytes),
no background tasks (retention and producer expiry run when :meth:`enforce_retention` and
:meth:`expire_producers` are called).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tomyum.clock import SYSTEM_CLOCK, Clock
from tomyum.config import BrokerConfig
from tomyum.errors import ErrorCode, KafkaError, StorageError
from tomyum.storage.engine import (
    AppendResult,
    DiskUsage,
    DurableCallback,
    LogStore,
    PartitionSpec,
    SyncRound,
    TopicPartition,
)
from tomyum.storage.memory.partition_log import MemoryPartitionLog
from tomyum.storage.served_partitions import ServedPartitions


class MemoryLogStore(ServedPartitions[MemoryPartitionLog]):
    def __init__(self, data_dir: Path, config: BrokerConfig, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__()
        self.data_dir = Path(data_dir)  # unused: nothing is stored on disk
        self.config = config
        self.clock = clock
        #: partitions written since the last commit round
        self._dirty: dict[MemoryPartitionLog, None] = {}
        self._commit_scheduled: asyncio.Handle | None = None
        self._hw_callbacks: list[Callable[[TopicPartition, int], None]] = []

    # lifecycle ---------------------------------------------------------------------------

    async def start(self, partitions: Mapping[TopicPartition, PartitionSpec]) -> None:
        """Open every partition of ``partitions`` empty: nothing survives a restart."""
        self._logs = {tp: MemoryPartitionLog(tp, spec.config) for tp, spec in partitions.items()}

    async def close(self) -> None:
        """Commit what was written (resolving waiters), then stop serving every partition."""
        if self._commit_scheduled is not None:
            self._commit_scheduled.cancel()
        self._commit()
        closed = KafkaError("the log engine is closed", ErrorCode.not_leader_or_follower)
        for plog in [*self._logs.values(), *self._prepared.values()]:
            plog.fail_waiters(closed)
        self._logs.clear()
        self._prepared.clear()

    # partitions ---------------------------------------------------------------------------

    async def prepare_partitions(self, specs: Mapping[TopicPartition, PartitionSpec]) -> None:
        for tp in specs:
            if tp in self._logs or tp in self._prepared:
                raise StorageError(f"partition {tp} exists already")
        for tp, spec in specs.items():
            self._prepared[tp] = MemoryPartitionLog(tp, spec.config)

    async def remove_partitions(self, tps: Iterable[TopicPartition]) -> None:
        for plog in self._take(tps):
            self._dirty.pop(plog, None)
            plog.fail_waiters(KafkaError(f"topic {plog.tp.topic} was deleted", ErrorCode.unknown_topic_or_partition))

    # data --------------------------------------------------------------------------------

    async def append(self, tp: TopicPartition, records: memoryview) -> AppendResult:
        plog = self._log(tp)
        result = plog.append(records, self.clock.time_ms())
        self._commit_soon(plog)
        return result

    async def append_marker(self, tp: TopicPartition, producer_id: int, producer_epoch: int, commit: bool,
                            coordinator_epoch: int) -> AppendResult:
        plog = self._log(tp)
        result = plog.append_marker(producer_id, producer_epoch, commit, coordinator_epoch, self.clock.time_ms())
        self._commit_soon(plog)
        return result

    async def wait_durable(self, tp: TopicPartition, offset: int) -> None:
        fut = self.durable_future(tp, offset)
        if fut is not None:
            await fut

    def durable_future(self, tp: TopicPartition, offset: int) -> asyncio.Future[None] | None:
        return self._log(tp).durable_future(offset)

    def call_when_durable(self, tp: TopicPartition, offset: int, callback: DurableCallback) -> bool:
        return self._log(tp).call_when_durable(offset, callback)

    async def delete_records(self, tp: TopicPartition, offset: int) -> int:
        return self._log(tp).delete_records(offset)

    def on_high_watermark(self, callback: Callable[[TopicPartition, int], None]) -> None:
        self._hw_callbacks.append(callback)

    def on_sync(self, callback: Callable[[SyncRound], None]) -> None:
        """Never called: nothing here is fsynced."""

    def disk_usage(self) -> dict[TopicPartition, DiskUsage]:
        return {}

    # maintenance (run when called: the memory engine has no background tasks) -------------

    async def enforce_retention(self) -> int:
        """Drop every batch that retention allows now; returns how many."""
        now = self.clock.time_ms()
        return sum(plog.enforce_retention(now) for plog in self._logs.values())

    def expire_producers(self) -> None:
        now, max_age = self.clock.time_ms(), self.config["producer.id.expiration.ms"]
        for plog in self._logs.values():
            plog.producer_state.expire(now, max_age)

    # commit rounds -------------------------------------------------------------------------

    def _commit_soon(self, plog: MemoryPartitionLog) -> None:
        self._dirty[plog] = None
        if self._commit_scheduled is None:
            self._commit_scheduled = asyncio.get_running_loop().call_soon(self._commit)

    def _commit(self) -> None:
        """Make everything written "durable": move high watermarks, wake waiters, tell callbacks."""
        self._commit_scheduled = None
        dirty, self._dirty = self._dirty, {}
        for plog in dirty:
            if plog.mark_durable():
                for cb in self._hw_callbacks:
                    cb(plog.tp, plog.high_watermark)


if TYPE_CHECKING:  # mypy proves the engine implements the seam
    _ENGINE: Callable[[Path, BrokerConfig, Clock], LogStore] = MemoryLogStore
