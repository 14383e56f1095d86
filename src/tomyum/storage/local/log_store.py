"""LocalLogStore: Kafka's layout in one data directory, with group-commit durability.

Durability (the broker's contract): ``append`` writes to the segment file on the event
loop; one background task, the group commit, fdatasyncs every partition written since its
last round — through io_uring where the kernel allows it (``uring_fsync.py``), else in a thread
of its own (``sync_thread.py``) — then advances those partitions' high watermarks and resolves
their ``wait_durable`` futures. One fsync round covers every produce waiting at
that moment, across partitions, so acks=-1 costs little more than acks=1.

Flush policy (Kafka's ``flush.messages`` / ``flush.ms``, broker defaults
``log.flush.interval.messages`` / ``log.flush.interval.ms``) governs data nobody waits for
(acks=0 and acks=1). Left at their defaults, such data joins the next group commit at once.
Set, a partition is flushed once ``flush.messages`` records are unflushed or ``flush.ms``
after its first unflushed write, whichever comes first: fewer fsyncs, and consumers — who
never read past the durable offset — see acks=1 data that much later. An acks=-1 produce
always flushes its partition in the next round, whatever the policy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tomyum.clock import SYSTEM_CLOCK, Clock
from tomyum.config import BrokerConfig, TopicConfig
from tomyum.durable import write_files_atomically
from tomyum.errors import ErrorCode, KafkaError, StorageError
from tomyum.storage.engine import AppendResult, DiskUsage, DurableCallback, PartitionSpec, SyncRound, TopicPartition
from tomyum.storage.local.checkpoint import fsync_dir, read_checkpoint, write_atomically, write_checkpoint
from tomyum.storage.local.cleaner import CleanPlan, clean, plan_cleaning, remove_leftovers
from tomyum.storage.local.index import IndexFile
from tomyum.storage.local.partition_log import PartitionLog
from tomyum.storage.local.segment import LogSegment
from tomyum.storage.local.sync_thread import SyncThread
from tomyum.storage.local.uring_fsync import UringFsync
from tomyum.storage.served_partitions import ServedPartitions

log = logging.getLogger(__name__)

RECOVERY_POINT = "recovery-point-offset-checkpoint"
LOG_START = "log-start-offset-checkpoint"
CLEANER_CHECKPOINT = "cleaner-offset-checkpoint"
#: a partition log's directory, ``<topic>-<partition>``
PARTITION_DIR = re.compile(r"^(.+)-(\d+)$")
DELETE_SUFFIX = "-delete"
#: directories in the data dir that are not partition logs of the engine's
NOT_PARTITIONS = frozenset({"__cluster_metadata-0"})
CHECKPOINT_INTERVAL_S = 60.0
#: flush.ms longer than a day (Kafka's default is "never") waits a day at most
MAX_FLUSH_DELAY_MS = 24 * 3600 * 1000

_SyncItem = tuple[PartitionLog, int, list[tuple[LogSegment, int]], bool]


class LocalLogStore(ServedPartitions[PartitionLog]):
    def __init__(self, data_dir: Path, config: BrokerConfig, clock: Clock = SYSTEM_CLOCK, *,
                 io_uring: bool = True) -> None:
        """``io_uring=False``: every fsync through the thread, even where io_uring works."""
        super().__init__()
        self.data_dir = Path(data_dir)
        self.config = config
        self.clock = clock
        self._removals: set[asyncio.Future[None]] = set()
        self._dirty: dict[PartitionLog, None] = {}
        #: partitions with unflushed acks=0/1 data waiting for flush.ms
        self._flush_timers: dict[PartitionLog, asyncio.TimerHandle] = {}
        self._wake = asyncio.Event()
        self._hw_callbacks: list[Callable[[TopicPartition, int], None]] = []
        self._sync_callbacks: list[Callable[[SyncRound], None]] = []
        #: the group commit's fsyncs and the checkpoint writes, in order, off the event loop
        self._io = SyncThread("group-commit")
        #: the group commit's fsyncs (files and directories), from start() on where io_uring works
        self._use_uring = io_uring
        self._uring: UringFsync | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._cleaner_task: asyncio.Task[None] | None = None
        self._expiration_task: asyncio.Task[None] | None = None
        self._cleaner_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-cleaner")
        self._stopping = asyncio.Event()
        #: per partition, the first offset the cleaner has not compacted
        self._first_dirty: dict[TopicPartition, int] = {}
        #: per partition, when a tombstone the cleaner kept may go (a reason to clean again)
        self._tombstones_due: dict[TopicPartition, int] = {}
        self._cleaning: dict[PartitionLog, tuple[CleanPlan, asyncio.Future[None]]] = {}
        self._sync_idle = asyncio.Event()
        self._sync_idle.set()
        self._closed = False

    # lifecycle ---------------------------------------------------------------------------

    async def start(self, partitions: Mapping[TopicPartition, PartitionSpec]) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._remove_strays(partitions)
        except OSError as e:
            raise StorageError(f"cannot use data dir {self.data_dir}: {e.strerror or e}") from e
        recovery = read_checkpoint(self.data_dir / RECOVERY_POINT)
        starts = read_checkpoint(self.data_dir / LOG_START)
        clean = (self.data_dir / ".kafka_cleanshutdown").exists()
        self._first_dirty = read_checkpoint(self.data_dir / CLEANER_CHECKPOINT)
        if self._use_uring and self._uring is None:
            self._uring = UringFsync.open()
        for tp, spec in partitions.items():
            self._logs[tp] = self._open_log(tp, spec, recovery.get(tp) if clean or tp in recovery else None,
                                            starts.get(tp))
        # What recovery kept may not have reached stable storage before the crash: sync it
        # now, so that the high watermark we start with is durable.
        await self._sync_round(self._collect(list(self._logs.values())))
        try:
            (self.data_dir / ".kafka_cleanshutdown").unlink(missing_ok=True)
        except OSError as e:
            raise StorageError(f"cannot write to {self.data_dir}: {e.strerror}") from e
        self._sync_task = asyncio.create_task(self._group_commit_loop(), name="group-commit")
        self._checkpoint_task = asyncio.create_task(self._checkpoint_loop(), name="checkpoints")
        self._retention_task = asyncio.create_task(self._retention_loop(), name="retention")
        self._cleaner_task = asyncio.create_task(self._cleaner_loop(), name="log-cleaner")
        self._expiration_task = asyncio.create_task(self._producer_expiration_loop(), name="producer-expiration")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        for plan, _ in self._cleaning.values():
            plan.stop.set()
        if self._cleaner_task is not None:
            await self._cleaner_task  # a cleaning in its swap finishes it; one before stops
        for task in (self._retention_task, self._checkpoint_task, self._sync_task, self._expiration_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        await self._sync_idle.wait()
        for timer in self._flush_timers.values():
            timer.cancel()
        await self._sync_round(self._collect(list(self._logs.values())))
        for plog in self._prepared.values():
            plog.close_without_seal()
        # every partition's index files together: each still fsynced before it is renamed
        # (write_atomically's guarantee), the fsyncs in parallel, and only the files that changed
        index_files: list[IndexFile] = []
        for plog in self._logs.values():
            plog.close(index_files)
        try:
            write_files_atomically(index_files, sync_dirs=False)
        except OSError as e:
            raise StorageError(f"cannot write index files: {e.strerror}") from e
        if self._removals:
            await asyncio.gather(*self._removals, return_exceptions=True)
        self._write_checkpoints({tp: plog.log_end_offset for tp, plog in self._logs.items()})
        write_atomically(self.data_dir / ".kafka_cleanshutdown", b"")
        self._io.close()
        if self._uring is not None:
            self._uring.close()
        self._cleaner_executor.shutdown(wait=True)

    def _remove_strays(self, partitions: Mapping[TopicPartition, PartitionSpec]) -> None:
        """Remove every partition directory that is not one of ``partitions``' (same topic
        id): ``-delete`` directories, half-created ones, logs of deleted or older topics."""
        for d in sorted(self.data_dir.iterdir()):
            if not d.is_dir() or d.name in NOT_PARTITIONS:
                continue
            if d.name.endswith(DELETE_SUFFIX):
                log.info("removing %s, a deleted partition log", d.name)
                _remove_dirs([d])
                continue
            m = PARTITION_DIR.match(d.name)
            if m is None:
                continue
            spec = partitions.get(TopicPartition(m.group(1), int(m.group(2))))
            topic_id = _stored_topic_id(d)
            if spec is None or (topic_id is not None and topic_id != spec.topic_id):
                log.info("removing %s, a partition log of %s", d.name,
                         f"topic id {topic_id}, which no longer exists" if topic_id else "no known topic")
                _remove_dirs([d])

    def _open_log(self, tp: TopicPartition, spec: PartitionSpec, recovery_point: int | None,
                  log_start: int | None) -> PartitionLog:
        directory = self.data_dir / f"{tp.topic}-{tp.partition}"
        plog = PartitionLog(tp, directory, spec.config, self.clock)
        try:
            if directory.exists():
                remove_leftovers(directory)
            plog.open(recovery_point, log_start)
            self._write_partition_metadata(directory, spec.topic_id)
        except OSError as e:
            plog.close_without_seal()
            raise StorageError(f"cannot open {directory}: {e.strerror}") from e
        return plog

    @staticmethod
    def _write_partition_metadata(directory: Path, topic_id: uuid.UUID) -> None:
        meta = directory / "partition.metadata"
        if not meta.exists():
            write_atomically(meta, f"version: 0\ntopic_id: {_short_uuid(topic_id)}\n".encode())
        epochs = directory / "leader-epoch-checkpoint"
        if not epochs.exists():
            write_atomically(epochs, b"0\n1\n0 0\n")

    # partitions ---------------------------------------------------------------------------

    async def prepare_partitions(self, specs: Mapping[TopicPartition, PartitionSpec]) -> None:
        opened: list[PartitionLog] = []
        try:
            for tp, spec in specs.items():
                if tp in self._logs or tp in self._prepared:
                    raise StorageError(f"partition {tp} exists already")
                directory = self.data_dir / f"{tp.topic}-{tp.partition}"
                if directory.exists():  # a leftover of a failed creation or an older topic
                    log.info("removing %s, left by an earlier topic of that name", directory.name)
                    _remove_dirs([directory])
                try:
                    opened.append(self._open_log(tp, spec, None, None))
                except StorageError:
                    _remove_dirs([directory])  # what the failed open made of it
                    raise
            await self._io.run(fsync_dir, self.data_dir)
        except (StorageError, OSError) as e:
            for plog in opened:
                plog.close_without_seal()
                _remove_dirs([plog.directory])
            raise e if isinstance(e, StorageError) else StorageError(f"cannot create partitions: {e}") from e
        for plog in opened:
            self._prepared[plog.tp] = plog

    async def remove_partitions(self, tps: Iterable[TopicPartition]) -> None:
        doomed: list[Path] = []
        tps = list(tps)
        for plog in [self._prepared.pop(tp) for tp in tps if tp in self._prepared]:
            plog.close_without_seal()  # never served, empty: gone at once
            _remove_dirs([plog.directory])
        plogs = self._take(tps)
        if not plogs:
            return
        await self._sync_idle.wait()  # no fsync in flight may name a file we close
        for plog in plogs:
            if plog in self._cleaning:
                plan, done = self._cleaning[plog]
                plan.stop.set()
                await done
            self._dirty.pop(plog, None)
            timer = self._flush_timers.pop(plog, None)
            if timer is not None:
                timer.cancel()
            plog.fail_waiters(KafkaError(f"topic {plog.tp.topic} was deleted", ErrorCode.unknown_topic_or_partition))
            plog.close_without_seal()
            target = plog.directory.with_name(delete_dir_name(plog.tp))
            try:
                plog.directory.rename(target)
                doomed.append(target)
            except FileNotFoundError:
                pass
            except OSError as e:
                log.error("cannot rename %s for deletion (it goes at the next start): %s", plog.directory, e)
        if doomed:
            try:
                fsync_dir(self.data_dir)
            except OSError as e:
                log.error("cannot sync %s after renaming deleted logs: %s", self.data_dir, e)
            fut = asyncio.get_running_loop().run_in_executor(self._cleaner_executor, _remove_dirs, doomed)
            self._removals.add(fut)
            fut.add_done_callback(self._removals.discard)

    # data --------------------------------------------------------------------------------

    async def append(self, tp: TopicPartition, records: memoryview) -> AppendResult:
        plog = self._log(tp)
        result = plog.append(records, self.clock.time_ms())
        rules = plog.config.derived(_flush_rules)
        if rules.eager or plog.messages_since_flush >= rules.messages or rules.ms == 0:
            self._flush_soon(plog)
        elif plog not in self._flush_timers:
            delay_s = min(rules.ms, MAX_FLUSH_DELAY_MS) / 1000
            self._flush_timers[plog] = asyncio.get_running_loop().call_later(delay_s, self._flush_soon, plog)
        return result

    async def append_marker(self, tp: TopicPartition, producer_id: int, producer_epoch: int, commit: bool,
                            coordinator_epoch: int) -> AppendResult:
        plog = self._log(tp)
        result = plog.append_marker(producer_id, producer_epoch, commit, coordinator_epoch, self.clock.time_ms())
        self._flush_soon(plog)
        return result

    def _flush_soon(self, plog: PartitionLog) -> None:
        """Put ``plog`` in the next group commit round."""
        timer = self._flush_timers.pop(plog, None)
        if timer is not None:
            timer.cancel()
        if plog.unsynced or plog.dir_unsynced:
            self._dirty[plog] = None
            self._wake.set()

    async def wait_durable(self, tp: TopicPartition, offset: int) -> None:
        fut = self.durable_future(tp, offset)
        if fut is not None:
            await fut

    def durable_future(self, tp: TopicPartition, offset: int) -> asyncio.Future[None] | None:
        plog = self._log(tp)
        fut = plog.durable_future(offset)
        if fut is not None:
            self._flush_soon(plog)  # someone waits: whatever the flush policy, sync it now
        return fut

    def call_when_durable(self, tp: TopicPartition, offset: int, callback: DurableCallback) -> bool:
        plog = self._log(tp)
        waiting = plog.call_when_durable(offset, callback)
        if waiting:
            self._flush_soon(plog)  # someone waits: whatever the flush policy, sync it now
        return waiting

    def expire_producers(self) -> None:
        now, max_age = self.clock.time_ms(), self.config["producer.id.expiration.ms"]
        for plog in self._logs.values():
            plog.expire_producers(now, max_age)

    async def _producer_expiration_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config["producer.id.expiration.check.interval.ms"] / 1000)
            self.expire_producers()

    async def delete_records(self, tp: TopicPartition, offset: int) -> int:
        plog = self._log(tp)
        before = plog.log_start_offset
        low = plog.delete_records(offset)
        if low != before:
            if not plog.cleaning:
                plog.delete_segments(plog.expired_segments(self.clock.time_ms()), "records deleted")
            await self._save_log_start_offsets()
        return low

    async def enforce_retention(self) -> int:
        """Delete every segment that retention allows now; returns how many."""
        now, deleted = self.clock.time_ms(), 0
        for plog in list(self._logs.values()):
            if plog.cleaning:
                continue  # the cleaner is rewriting these segments; next round
            doomed = plog.expired_segments(now)
            if doomed:
                plog.delete_segments(doomed, "retention")
                deleted += len(doomed)
        if deleted:
            await self._save_log_start_offsets()
        return deleted

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config["log.retention.check.interval.ms"] / 1000)
            try:
                await self.enforce_retention()
            except (OSError, StorageError) as e:
                log.error("retention failed: %s", e)

    # compaction -----------------------------------------------------------------------------

    async def clean_once(self, *, force: bool = False) -> int:
        """Clean every compacted partition that is due (``force``: whatever its dirty
        ratio); returns how many were cleaned."""
        cleaned = 0
        for tp, plog in list(self._logs.items()):
            if self._stopping.is_set():
                break
            now = self.clock.time_ms()
            due = self._tombstones_due.get(tp)
            plan = plan_cleaning(plog, self._first_dirty.get(tp, 0), now,
                                 force=force or (due is not None and now >= due))
            if plan is not None and await self._clean(tp, plan):
                cleaned += 1
        return cleaned

    async def _clean(self, tp: TopicPartition, plan: CleanPlan) -> bool:
        plog = plan.plog
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._cleaning[plog] = (plan, done)
        plog.cleaning = True
        for seg in plan.segments:
            seg.pin()
        try:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._cleaner_executor, clean, plan)
            for old, new in result.swaps:
                i = next(i for i, s in enumerate(plog.segments) if s is old)
                if new is None:
                    del plog.segments[i]
                else:
                    plog.segments[i] = new
                plog.unsynced.pop(old, None)
                old.retire(unlink=False)  # the cleaner replaced its files
            if plan.stop.is_set() and not result.swaps:
                return False
            self._first_dirty[tp] = plan.end
            if result.tombstones_due_ms is None:
                self._tombstones_due.pop(tp, None)
            else:
                self._tombstones_due[tp] = result.tombstones_due_ms
            await self._io.run(write_checkpoint, self.data_dir / CLEANER_CHECKPOINT, dict(self._first_dirty))
            log.info("%s: cleaned offsets [%d, %d) (dirty ratio %.2f): %d of %d records kept, %d → %d bytes",
                     tp, plog.log_start_offset, plan.end, plan.dirty_ratio, result.records_kept,
                     result.records_read, result.bytes_before, result.bytes_after)
            return True
        except (OSError, KafkaError) as e:
            log.error("%s: cleaning failed, the log is unchanged: %s", tp, e)
            return False
        finally:
            for seg in plan.segments:
                seg.unpin()
            plog.cleaning = False
            del self._cleaning[plog]
            done.set_result(None)

    async def _cleaner_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), self.config["log.cleaner.backoff.ms"] / 1000)
                return
            except TimeoutError:
                pass
            if self.config["log.cleaner.enable"]:
                await self.clean_once()

    async def _save_log_start_offsets(self) -> None:
        starts = {tp: plog.log_start_offset for tp, plog in self._logs.items()}
        try:
            await self._io.run(write_checkpoint, self.data_dir / LOG_START, starts)
        except OSError as e:
            raise StorageError(f"cannot write {LOG_START}: {e.strerror}") from e

    def on_high_watermark(self, callback: Callable[[TopicPartition, int], None]) -> None:
        self._hw_callbacks.append(callback)

    def on_sync(self, callback: Callable[[SyncRound], None]) -> None:
        self._sync_callbacks.append(callback)

    def disk_usage(self) -> dict[TopicPartition, DiskUsage]:
        return {tp: DiskUsage(size_in_bytes=plog.size_in_bytes(), segments=len(plog.segments))
                for tp, plog in self._logs.items()}

    # group commit --------------------------------------------------------------------------

    def _collect(self, logs: list[PartitionLog]) -> list[_SyncItem]:
        items = []
        for plog in logs:
            end, segs, dir_sync = plog.snapshot_unsynced()
            items.append((plog, end, segs, dir_sync))
        return items

    async def _group_commit_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._dirty:
                continue
            logs, self._dirty = list(self._dirty), {}
            try:
                await self._sync_round(self._collect(logs))
            except StorageError as e:
                log.error("group commit failed: %s", e)
                for plog in logs:
                    plog.fail_waiters(e)

    async def _sync_round(self, items: list[_SyncItem]) -> None:
        if not items:
            return
        self._sync_idle.clear()
        try:
            pinned = [seg for _, _, segs, _ in items for seg, _ in segs if not seg.closed]
            for seg in pinned:
                seg.pin()  # retention may retire a segment meanwhile: its fd stays open
            dirs = [plog.directory for plog, _, _, dir_sync in items if dir_sync]
            fds = [s.fd for s in pinned]
            try:
                if self._uring is None:
                    seconds = await self._io.run(_sync_files, fds, dirs)
                else:
                    seconds = await self._uring.sync(fds, dirs)
            except OSError as e:
                raise StorageError(f"fsync failed: {e.strerror}") from e
            finally:
                for seg in pinned:
                    seg.unpin()
        finally:
            self._sync_idle.set()
        records = 0
        for plog, end, segs, _ in items:
            before = plog.high_watermark
            if plog.mark_durable(end, segs):
                records += plog.high_watermark - before
                for cb in self._hw_callbacks:
                    cb(plog.tp, plog.high_watermark)
        done = SyncRound(seconds=seconds, records=records, partitions=len(items))
        for sync_cb in self._sync_callbacks:
            sync_cb(done)

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            recovery = {tp: plog.high_watermark for tp, plog in self._logs.items()}
            try:
                await self._io.run(self._write_checkpoints, recovery)
            except OSError as e:
                log.error("cannot write checkpoints: %s", e)

    def _write_checkpoints(self, recovery: Mapping[TopicPartition, int]) -> None:
        write_checkpoint(self.data_dir / RECOVERY_POINT, recovery)
        write_checkpoint(self.data_dir / LOG_START,
                         {tp: plog.log_start_offset for tp, plog in list(self._logs.items())})


@dataclass(frozen=True, slots=True)
class _FlushRules:
    """When a topic's appends go to the group commit (read on every append)."""

    #: neither flush.ms nor flush.messages is set anywhere: every append, at once
    eager: bool
    messages: int
    ms: int


def _flush_rules(config: TopicConfig) -> _FlushRules:
    return _FlushRules(eager=config.source("flush.ms") == "default" and config.source("flush.messages") == "default",
                       messages=config["flush.messages"], ms=config["flush.ms"])


def _sync_files(fds: list[int], dirs: list[Path]) -> float:
    """fdatasync ``fds`` and fsync ``dirs``; the seconds it took (OSError on the first that fails)."""
    started = time.perf_counter()
    for fd in fds:
        os.fdatasync(fd)
    for d in dirs:
        fsync_dir(d)
    return time.perf_counter() - started


def _remove_dirs(dirs: list[Path]) -> None:
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def _short_uuid(u: uuid.UUID) -> str:
    import base64

    return base64.urlsafe_b64encode(u.bytes).decode().rstrip("=")


def _stored_topic_id(directory: Path) -> uuid.UUID | None:
    """The topic id in a partition directory's ``partition.metadata`` (None: none readable)."""
    import base64

    try:
        for line in (directory / "partition.metadata").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "topic_id":
                text = value.strip()
                return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (OSError, ValueError):
        pass
    return None


def delete_dir_name(tp: TopicPartition) -> str:
    """``<topic>-<partition>.<unique id>-delete``, the topic cut short (as Kafka does) so that
    the name fits in 255 bytes whatever the topic's legal name."""
    suffix = f"-{tp.partition}.{uuid.uuid4().hex}{DELETE_SUFFIX}"
    return tp.topic[: 255 - len(suffix)] + suffix
