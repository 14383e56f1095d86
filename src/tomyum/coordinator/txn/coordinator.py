"""The transaction coordinator: transactional ids → producer ids and epochs, and each
transaction's life, Kafka's state machine:

    Empty ──AddPartitions/AddOffsets──▶ Ongoing ──EndTxn──▶ PrepareCommit | PrepareAbort
      ▲                                                        │ markers written to every
      └── InitProducerId (epoch + 1) ◀── CompleteCommit | CompleteAbort ◀┘ partition

Every transition is appended to ``__transaction_state`` and durable before it is answered, so
a restart replays that topic and finishes what was in flight: a transaction found in
PrepareCommit or PrepareAbort gets its markers (again — a marker without an open transaction
is harmless) and completes. Completing a prepared transaction is the coordinator's own task,
not the request's: the EndTxn (or InitProducerId, or timeout) that prepared it waits for it, but
the markers and Complete{Commit,Abort} are written whether or not that request's client is still
there, and a completion that failed (a marker refused, a full disk) is tried again on the
timeout timer until it succeeds, as Kafka's marker channel does. An Ongoing transaction older than its ``transaction.timeout.ms``
is aborted with the epoch bumped, which fences the producer that left it (timed on the
monotonic clock, so a wall clock jump changes nothing); InitProducerId on a
transactional id with an Ongoing transaction does the same to the zombie before handing the
new producer its epoch. While a transition of an id is being written, other requests for it
get CONCURRENT_TRANSACTIONS (clients retry), as in Kafka.

Offsets committed in a transaction (TxnOffsetCommit, to the group coordinator) are pending in
``__consumer_offsets`` until the marker reaches the group's partition there; see
coordinator/group/offsets.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from tomyum.clock import SYSTEM_CLOCK, Clock
from tomyum.config import BrokerConfig
from tomyum.coordinator.group.offsets import OffsetStore
from tomyum.coordinator.group.offsets_log import OFFSETS_TOPIC
from tomyum.coordinator.runtime import CoordinatorRuntime
from tomyum.coordinator.timer import CoordinatorTimer
from tomyum.coordinator.topics import TopicDirectory
from tomyum.coordinator.txn.log import TXN_TOPIC, TxnRecord, TxnState, parse_txn_key, parse_txn_value, txn_key, txn_value
from tomyum.errors import ErrorCode, KafkaError
from tomyum.storage.engine import LogStore, TopicPartition

log = logging.getLogger(__name__)

#: the periodic checks' timer keys, by their interval's config key
ABORT_TIMED_OUT = "transaction.abort.timed.out.transaction.cleanup.interval.ms"
EXPIRE_IDS = "transaction.remove.expired.transaction.cleanup.interval.ms"

MAX_EPOCH = 32767
#: a single broker is the only coordinator there has been
COORDINATOR_EPOCH = 0


class TxnError(KafkaError):
    pass


def _fail(code: ErrorCode, message: str) -> TxnError:
    return TxnError(message, code)


@dataclass(frozen=True, slots=True)
class TxnView:
    """A transaction as DescribeTransactions / ListTransactions show it."""

    transactional_id: str
    state: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    start_ms: int
    partitions: dict[str, list[int]]


class TransactionCoordinator:
    def __init__(self, store: LogStore, offsets: OffsetStore, config: BrokerConfig,
                 clock: Clock = SYSTEM_CLOCK, *, topics: TopicDirectory | None = None,
                 timer: CoordinatorTimer | None = None) -> None:
        """``timer``: the coordinator timers that run the periodic timeout and expiry checks
        (the broker's, shared with the group coordinators, or one of its own on ``clock``)."""
        self.store = store
        self.topics: TopicDirectory = topics if topics is not None else store  # type: ignore[assignment]
        self.offsets = offsets
        self.config = config
        self.clock = clock
        self.runtime = CoordinatorRuntime(store, self.topics, TXN_TOPIC,
                                          config["transaction.state.log.num.partitions"],
                                          {"cleanup.policy": ["compact"], "min.insync.replicas": 1}, self, clock)
        self.txns: dict[str, TxnRecord] = {}
        #: ids with a transition being written (others get CONCURRENT_TRANSACTIONS meanwhile)
        self._busy: set[str] = set()
        #: per Ongoing transaction, when it times out on the monotonic clock (a wall clock jump
        #: neither aborts transactions early nor keeps them open longer)
        self._deadlines: dict[str, float] = {}
        self.timer = timer if timer is not None else CoordinatorTimer(clock)
        self._stopping = False
        #: completions of prepared transactions under way (markers, then Complete*), by id
        self._completions: dict[str, asyncio.Task[None]] = {}

    # lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.runtime.load_all()
        if self.txns:
            log.info("restored %d transactional ids from %s", len(self.txns), TXN_TOPIC)
        now_ms, now = self.clock.time_ms(), self.clock.monotonic()
        for tid, rec in self.txns.items():
            if rec.state == TxnState.ONGOING:  # what is left of its timeout, by the wall clock
                left_ms = min(max(rec.timeout_ms - (now_ms - rec.start_ms), 0), rec.timeout_ms)
                self._deadlines[tid] = now + left_ms / 1000
        for tid, rec in list(self.txns.items()):
            if rec.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
                log.info("transaction of %r was %s when the broker stopped: completing it", tid, rec.state.display)
                await self._complete(tid, rec, rec.state == TxnState.PREPARE_COMMIT)
        self._every(ABORT_TIMED_OUT, self.abort_timed_out)
        self._every(EXPIRE_IDS, self.expire_transactional_ids)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the timers; give completions under way ``timeout_s`` to finish (one cut short
        is finished on the next start, from its Prepare* state)."""
        self._stopping = True
        for key in (ABORT_TIMED_OUT, EXPIRE_IDS):
            self.timer.cancel(key)
        if self._completions:
            _, late = await asyncio.wait(list(self._completions.values()), timeout=timeout_s)
            for task in late:
                task.cancel()
        for task in self._completions.values():
            try:
                await task
            except (asyncio.CancelledError, KafkaError):
                pass

    def _every(self, key: str, job: Callable[[], Awaitable[int]]) -> None:
        """Run ``job`` every ``config[key]`` ms on the coordinator timer (Kafka runs these two
        checks periodically on its scheduler)."""
        async def run() -> None:
            try:
                await job()
            except KafkaError as e:
                log.error("%s: %s", key, e)
            finally:
                if not self._stopping:
                    self.timer.schedule(key, self.config[key], run)

        self.timer.schedule(key, self.config[key], run)

    @property
    def num_partitions(self) -> int:
        return self.runtime.num_partitions

    @num_partitions.setter
    def num_partitions(self, n: int) -> None:
        self.runtime.num_partitions = n

    @property
    def failed_partitions(self) -> set[int]:
        """Partitions of ``__transaction_state`` that could not be loaded (their ids are not served)."""
        return self.runtime.failed_partitions

    # replay: the only place ``txns`` changes ---------------------------------------------------

    def replay(self, partition: int, key: bytes | None, value: bytes | None, producer_id: int) -> None:
        tid = parse_txn_key(key) if key else None
        if tid is None:
            return
        if value is None:
            self.txns.pop(tid, None)
        else:
            self.txns[tid] = parse_txn_value(value)

    def complete_txn(self, partition: int, producer_id: int, commit: bool) -> None:
        """``__transaction_state`` holds no transactional batches: nothing to do."""

    def unload(self, partition: int) -> None:
        for tid in [t for t in self.txns if self.runtime.partition_for(t) == partition]:
            del self.txns[tid]
            self._deadlines.pop(tid, None)

    # writing ---------------------------------------------------------------------------------

    def coordinates(self, transactional_id: str) -> bool:
        """False if the id's partition of ``__transaction_state`` could not be loaded."""
        return self.runtime.coordinates(transactional_id)

    def partition_of(self, transactional_id: str) -> TopicPartition:
        return self.runtime.partition_of(transactional_id)

    async def ensure_topic(self) -> None:
        """Create ``__transaction_state`` with the broker's partition count and configs, once."""
        await self.runtime.ensure_topic()

    async def _write(self, tid: str, rec: TxnRecord | None) -> None:
        """Append ``tid``'s new state (None: a tombstone) and wait until it is durable; only
        then does it become the state in memory."""
        await self.runtime.write(tid, [(txn_key(tid), None if rec is None else txn_value(rec))])
        if rec is not None and rec.state == TxnState.ONGOING and tid not in self._deadlines:  # it just opened
            self._deadlines[tid] = self.clock.monotonic() + rec.timeout_ms / 1000
        if rec is None or rec.state != TxnState.ONGOING:
            self._deadlines.pop(tid, None)

    async def _write_markers(self, rec: TxnRecord, commit: bool) -> None:
        ends: list[tuple[TopicPartition, int]] = []
        offsets_partitions: list[int] = []
        topics = self.topics.topics()
        for topic, parts in rec.partitions.items():
            meta = topics.get(topic)
            for p in sorted(parts):
                if meta is None or p >= meta.num_partitions:
                    log.warning("transaction of producer %d: %s-%d no longer exists, no marker written",
                                rec.producer_id, topic, p)
                    continue
                tp = TopicPartition(topic, p)
                try:
                    result = await self.store.append_marker(tp, rec.producer_id, rec.producer_epoch, commit,
                                                            COORDINATOR_EPOCH)
                except KafkaError as e:
                    log.warning("marker for producer %d in %s refused: %s", rec.producer_id, tp, e)
                    continue
                ends.append((tp, result.last_offset + 1))
                if topic == OFFSETS_TOPIC:
                    offsets_partitions.append(p)
        await asyncio.gather(*(self.store.wait_durable(tp, end) for tp, end in ends))
        for p in offsets_partitions:  # the marker is durable there: replayed as the loader would
            self.offsets.complete_txn(p, rec.producer_id, commit)

    async def _complete(self, tid: str, rec: TxnRecord, commit: bool) -> None:
        """Markers to every partition of the transaction, then Complete{Commit,Abort}."""
        await self._write_markers(rec, commit)
        done = TxnRecord(rec.producer_id, rec.producer_epoch, rec.timeout_ms,
                         TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT,
                         {}, self.clock.time_ms(), rec.start_ms)
        await self._write(tid, done)
        log.info("transaction of %r (producer %d, epoch %d) %s", tid, rec.producer_id, rec.producer_epoch,
                 "committed" if commit else "aborted")

    def _completion(self, tid: str, rec: TxnRecord, commit: bool) -> asyncio.Task[None]:
        """The coordinator's task completing ``tid``'s prepared transaction: it runs to its end
        whoever waits for it (a caller cancelled — its client gone — stops only waiting)."""
        task = self._completions.get(tid)
        if task is None:
            task = asyncio.create_task(self._complete(tid, rec, commit), name=f"txn-complete {tid}")
            self._completions[tid] = task
            task.add_done_callback(lambda t: self._completed(tid, t))
        return task

    def _completed(self, tid: str, task: asyncio.Task[None]) -> None:
        if self._completions.get(tid) is task:
            del self._completions[tid]
        if not task.cancelled() and (e := task.exception()) is not None:
            log.warning("cannot complete the transaction of %r yet (tried again later): %s", tid, e)

    async def _end(self, tid: str, rec: TxnRecord, commit: bool) -> None:
        prepared = TxnRecord(rec.producer_id, rec.producer_epoch, rec.timeout_ms,
                             TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT,
                             {t: set(p) for t, p in rec.partitions.items()}, self.clock.time_ms(), rec.start_ms)
        await self._write(tid, prepared)
        await asyncio.shield(self._completion(tid, prepared, commit))

    async def _fence_and_abort(self, tid: str, rec: TxnRecord, why: str) -> TxnRecord:
        """Abort ``tid``'s open transaction with the epoch bumped, so that the producer that
        opened it is fenced everywhere."""
        log.info("aborting the transaction of %r (producer %d, epoch %d): %s", tid, rec.producer_id,
                 rec.producer_epoch, why)
        epoch = rec.producer_epoch + 1 if rec.producer_epoch < MAX_EPOCH - 1 else rec.producer_epoch
        fenced = TxnRecord(rec.producer_id, epoch, rec.timeout_ms, rec.state, rec.partitions,
                           rec.last_update_ms, rec.start_ms)
        await self._end(tid, fenced, commit=False)
        return self.txns[tid]

    def _begin(self, tid: str) -> None:
        if tid in self._busy:
            raise _fail(ErrorCode.concurrent_transactions, f"a transition of {tid!r} is in progress")
        self._busy.add(tid)

    # requests ----------------------------------------------------------------------------------

    async def init_producer_id(self, tid: str, timeout_ms: int, producer_id: int = -1,
                               producer_epoch: int = -1) -> tuple[int, int]:
        """A producer id and a new epoch for ``tid``; fences every older producer of it."""
        if not tid:
            raise _fail(ErrorCode.invalid_request, "transactional.id must not be empty")
        if not 0 < timeout_ms <= self.config["transaction.max.timeout.ms"]:
            raise _fail(ErrorCode.invalid_transaction_timeout,
                        f"transaction.timeout.ms {timeout_ms} is not in (0, transaction.max.timeout.ms "
                        f"{self.config['transaction.max.timeout.ms']}]")
        self._begin(tid)
        try:
            rec = self.txns.get(tid)
            if rec is not None and producer_id >= 0 and (producer_id, producer_epoch) != (
                    rec.producer_id, rec.producer_epoch):
                raise _fail(ErrorCode.producer_fenced,
                            f"producer {producer_id} epoch {producer_epoch} is not the current producer of {tid!r}")
            if rec is not None and rec.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
                raise _fail(ErrorCode.concurrent_transactions, f"the transaction of {tid!r} is completing")
            if rec is not None and rec.state == TxnState.ONGOING:
                rec = await self._fence_and_abort(tid, rec, "a new producer initialised the same transactional.id")
            now = self.clock.time_ms()
            if rec is None or rec.producer_epoch >= MAX_EPOCH - 1:
                pid, epoch = await self.topics.allocate_producer_id(), 0
            else:
                pid, epoch = rec.producer_id, rec.producer_epoch + 1
            await self._write(tid, TxnRecord(pid, epoch, timeout_ms, TxnState.EMPTY, {}, now, -1))
            return pid, epoch
        finally:
            self._busy.discard(tid)

    def _current(self, tid: str, producer_id: int, producer_epoch: int) -> TxnRecord:
        rec = self.txns.get(tid)
        if rec is None or rec.producer_id != producer_id:
            raise _fail(ErrorCode.invalid_producer_id_mapping,
                        f"producer {producer_id} is not the producer of transactional id {tid!r}")
        if rec.producer_epoch != producer_epoch:
            raise _fail(ErrorCode.producer_fenced,
                        f"producer {producer_id} epoch {producer_epoch} was fenced by epoch {rec.producer_epoch}")
        return rec

    async def add_partitions(self, tid: str, producer_id: int, producer_epoch: int,
                             partitions: Iterable[tuple[str, int]]) -> None:
        """Add ``partitions`` to the transaction (opening it if need be). Raises for the whole
        request; unknown partitions are the caller's to check first."""
        self._begin(tid)
        try:
            rec = self._current(tid, producer_id, producer_epoch)
            if rec.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
                raise _fail(ErrorCode.concurrent_transactions, f"the transaction of {tid!r} is completing")
            wanted = list(partitions)
            if rec.state == TxnState.ONGOING and all(p in rec.partitions.get(t, ()) for t, p in wanted):
                return
            now = self.clock.time_ms()
            merged = {t: set(p) for t, p in rec.partitions.items()}
            for t, p in wanted:
                merged.setdefault(t, set()).add(p)
            start = rec.start_ms if rec.state == TxnState.ONGOING else now
            await self._write(tid, TxnRecord(rec.producer_id, rec.producer_epoch, rec.timeout_ms,
                                             TxnState.ONGOING, merged, now, start))
        finally:
            self._busy.discard(tid)

    async def add_offsets(self, tid: str, producer_id: int, producer_epoch: int, group_id: str) -> None:
        await self.offsets.ensure_topic()
        await self.add_partitions(tid, producer_id, producer_epoch, [
            (OFFSETS_TOPIC, self.offsets.partition_of(group_id).partition)])

    async def end_txn(self, tid: str, producer_id: int, producer_epoch: int, commit: bool) -> None:
        self._begin(tid)
        try:
            rec = self._current(tid, producer_id, producer_epoch)
            done = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
            if rec.state == done:
                return  # a retry of an EndTxn that completed
            if rec.state == TxnState.ONGOING:
                await self._end(tid, rec, commit)
                return
            if rec.state == TxnState.EMPTY and not commit:
                return  # nothing was added: nothing to abort
            if rec.state == (TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT):
                raise _fail(ErrorCode.concurrent_transactions,  # a retry: the client asks again
                            f"the transaction of {tid!r} is completing")
            raise _fail(ErrorCode.invalid_txn_state,
                        f"cannot {'commit' if commit else 'abort'} the transaction of {tid!r}: it is "
                        f"{rec.state.display}")
        finally:
            self._busy.discard(tid)

    def check_offset_commit(self, tid: str, producer_id: int, producer_epoch: int,
                            group_id: str | None = None) -> ErrorCode:
        """May this producer commit offsets in its transaction (TxnOffsetCommit)? Only for a group
        whose offsets partition AddOffsetsToTxn added (else INVALID_TXN_STATE, as Kafka's
        verification of the transaction answers)."""
        rec = self.txns.get(tid)
        if rec is None or rec.producer_id != producer_id:
            return ErrorCode.invalid_producer_id_mapping
        if rec.producer_epoch != producer_epoch:
            # Kafka verifies a TxnOffsetCommit against the transaction and answers a fenced
            # producer INVALID_PRODUCER_EPOCH at every version (differential harness, Kafka 4.4)
            return ErrorCode.invalid_producer_epoch
        if group_id is not None and (rec.state != TxnState.ONGOING or self.offsets.partition_of(group_id).partition
                                     not in rec.partitions.get(OFFSETS_TOPIC, ())):
            return ErrorCode.invalid_txn_state
        return ErrorCode.none

    # timers ------------------------------------------------------------------------------------

    async def abort_timed_out(self) -> int:
        """Abort (and fence) every Ongoing transaction older than its timeout, and take up again
        the completion of prepared transactions whose last attempt failed; returns how many
        transactions were aborted."""
        for tid, rec in list(self.txns.items()):
            if (rec.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)
                    and tid not in self._completions and tid not in self._busy):
                log.info("completing the transaction of %r (%s) again", tid, rec.state.display)
                self._completion(tid, rec, rec.state == TxnState.PREPARE_COMMIT)
        now, aborted = self.clock.monotonic(), 0
        for tid, deadline in list(self._deadlines.items()):
            rec = self.txns[tid]
            if now <= deadline or tid in self._busy:
                continue
            self._busy.add(tid)
            try:
                await self._fence_and_abort(tid, rec, f"open longer than its timeout of {rec.timeout_ms} ms")
                aborted += 1
            finally:
                self._busy.discard(tid)
        return aborted

    async def expire_transactional_ids(self) -> int:
        """Forget ids idle for ``transactional.id.expiration.ms`` with no open transaction."""
        now, max_age, expired = self.clock.time_ms(), self.config["transactional.id.expiration.ms"], 0
        for tid, rec in list(self.txns.items()):
            if tid in self._busy or rec.state not in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT,
                                                      TxnState.COMPLETE_ABORT):
                continue
            if now - rec.last_update_ms >= max_age:
                await self._write(tid, None)
                expired += 1
        if expired:
            log.info("expired %d transactional id(s)", expired)
        return expired

    # views -------------------------------------------------------------------------------------

    def view(self, tid: str) -> TxnView | None:
        rec = self.txns.get(tid)
        if rec is None:
            return None
        return TxnView(tid, rec.state.display, rec.producer_id, rec.producer_epoch, rec.timeout_ms,
                       rec.start_ms, {t: sorted(p) for t, p in rec.partitions.items()})

    def views(self) -> list[TxnView]:
        return [v for v in (self.view(t) for t in sorted(self.txns)) if v is not None]
