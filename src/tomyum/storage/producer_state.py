"""Per-partition producer state: idempotence, open transactions and aborted transactions.

For every producer id that wrote to the partition the state keeps its epoch, the metadata of
its last five batches (sequences and offsets) and the first offset of its open transaction.
On append a client batch is checked against it, Kafka's rules:

* an epoch older than the producer's is fenced (INVALID_PRODUCER_EPOCH);
* a batch without a sequence (-1) comes from a coordinator — the offsets of a transaction
  in ``__consumer_offsets`` — and is checked for its epoch only;
* a batch whose sequences match one of the last five is a retry: it is answered with the
  original offsets and not written again;
* otherwise the first sequence must follow the last one (``last + 1``, wrapping after
  2**31-1), or be 0 for a new epoch; a gap is OUT_OF_ORDER_SEQUENCE_NUMBER. A producer the
  partition does not know (its state expired, or was removed with the log) may start anywhere.

A transactional batch opens a transaction at its base offset; a transaction marker (a
control batch written by the transaction coordinator) closes it. The last stable offset
(LSO) is the first offset of the earliest transaction not yet decided durably: read_committed
consumers never read past it. Aborted transactions are kept, sorted by marker offset, for the
aborted-transactions list of read_committed fetches.

Pure: no file is read or written here, so that every engine shares these rules. The local
engine keeps the state in Kafka's files (:mod:`tomyum.storage.local.producer_files`).
"""

from __future__ import annotations

import bisect
import logging
import struct
from collections import deque
from dataclasses import dataclass, field

import crc32c

from tomyum.errors import ErrorCode, KafkaError
from tomyum.protocol.records import BatchHeader

log = logging.getLogger(__name__)

#: how many batches per producer are remembered for duplicate detection (Kafka's constant)
NUM_BATCHES_TO_RETAIN = 5
MAX_SEQUENCE = 2**31 - 1

_SNAPSHOT_HEAD = struct.Struct(">hIi")  # version, crc, entry count
_SNAPSHOT_ENTRY = struct.Struct(">qhiqiqiq")


@dataclass(frozen=True, slots=True)
class BatchMeta:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True)
class ProducerEntry:
    producer_id: int
    epoch: int = -1
    batches: deque[BatchMeta] = field(default_factory=lambda: deque(maxlen=NUM_BATCHES_TO_RETAIN))
    coordinator_epoch: int = -1
    #: first offset of the open transaction, -1 if none
    txn_first_offset: int = -1
    last_timestamp: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1

    @property
    def last_offset(self) -> int:
        return self.batches[-1].last_offset if self.batches else -1

    def duplicate_of(self, h: BatchHeader) -> BatchMeta | None:
        if h.producer_epoch != self.epoch:
            return None
        last_seq = _last_seq(h)
        for b in self.batches:
            if b.first_seq == h.base_sequence and b.last_seq == last_seq:
                return b
        return None


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    #: the offset of the abort marker
    last_offset: int
    last_stable_offset: int


def _last_seq(h: BatchHeader) -> int:
    last = h.base_sequence + h.last_offset_delta
    return last - MAX_SEQUENCE - 1 if last > MAX_SEQUENCE else last


def _in_sequence(last_seq: int, first_seq: int) -> bool:
    return first_seq == last_seq + 1 or (first_seq == 0 and last_seq == MAX_SEQUENCE)


class ProducerStateManager:
    """The producer state of one partition (pure: files are read and written by the caller
    through :meth:`snapshot_bytes`, :meth:`load_snapshot` and the txnindex helpers)."""

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        #: producer id → first offset of its open transaction
        self.ongoing: dict[int, int] = {}
        #: transactions decided by a marker the high watermark has not passed: (first, marker)
        self.undecided: list[tuple[int, int]] = []
        self.aborted: list[AbortedTxn] = []

    # client appends --------------------------------------------------------------------------

    def check(self, h: BatchHeader) -> BatchMeta | None:
        """Validate a client batch of an idempotent or transactional producer before it is
        written; returns the original batch if this one is a retry of it."""
        entry = self.producers.get(h.producer_id)
        if entry is None:
            return None
        if h.producer_epoch < entry.epoch:
            raise KafkaError(f"producer {h.producer_id} epoch {h.producer_epoch} is older than its current "
                             f"epoch {entry.epoch}: fenced", ErrorCode.invalid_producer_epoch)
        if h.base_sequence < 0:
            return None  # written by a coordinator (transactional offsets): no sequence to check
        dup = entry.duplicate_of(h)
        if dup is not None:
            return dup
        if h.producer_epoch != entry.epoch:
            if h.base_sequence != 0 and entry.epoch != -1:
                raise KafkaError(f"producer {h.producer_id}: the first sequence of epoch {h.producer_epoch} "
                                 f"must be 0, not {h.base_sequence}", ErrorCode.out_of_order_sequence_number)
        elif entry.batches and not _in_sequence(entry.last_seq, h.base_sequence):
            raise KafkaError(f"producer {h.producer_id} sent sequence {h.base_sequence} after {entry.last_seq}",
                             ErrorCode.out_of_order_sequence_number)
        if not h.is_transactional and entry.txn_first_offset >= 0 and h.producer_epoch == entry.epoch:
            raise KafkaError(f"producer {h.producer_id} has a transaction open: it cannot write "
                             "outside it", ErrorCode.invalid_txn_state)
        return None

    def update(self, h: BatchHeader, base_offset: int, timestamp: int) -> None:
        """Record a data batch written at ``base_offset`` (live or replayed)."""
        entry = self.producers.get(h.producer_id)
        if entry is None:
            entry = self.producers[h.producer_id] = ProducerEntry(h.producer_id)
        if h.producer_epoch != entry.epoch:
            entry.batches.clear()
            entry.epoch = h.producer_epoch
        last_offset = base_offset + h.last_offset_delta
        if h.base_sequence >= 0:
            entry.batches.append(BatchMeta(h.base_sequence, _last_seq(h), base_offset, last_offset, timestamp))
        entry.last_timestamp = max(entry.last_timestamp, timestamp)
        if h.is_transactional and entry.txn_first_offset < 0:
            entry.txn_first_offset = base_offset
            self.ongoing[h.producer_id] = base_offset

    # transaction markers ---------------------------------------------------------------------

    def check_marker(self, producer_id: int, epoch: int, coordinator_epoch: int) -> None:
        entry = self.producers.get(producer_id)
        if entry is None:
            return
        if epoch < entry.epoch:
            raise KafkaError(f"marker for producer {producer_id} has epoch {epoch}, older than {entry.epoch}",
                             ErrorCode.invalid_producer_epoch)
        if coordinator_epoch < entry.coordinator_epoch:
            raise KafkaError(f"marker for producer {producer_id} from coordinator epoch {coordinator_epoch}, "
                             f"older than {entry.coordinator_epoch}", ErrorCode.transaction_coordinator_fenced)

    def complete(self, producer_id: int, epoch: int, commit: bool, marker_offset: int,
                 coordinator_epoch: int, timestamp: int, high_watermark: int) -> AbortedTxn | None:
        """Close ``producer_id``'s transaction with the marker written at ``marker_offset``;
        returns the aborted transaction to index, if it was an abort of one."""
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = self.producers[producer_id] = ProducerEntry(producer_id)
        if epoch != entry.epoch:
            entry.batches.clear()
        entry.epoch = epoch
        entry.coordinator_epoch = max(entry.coordinator_epoch, coordinator_epoch)
        entry.last_timestamp = max(entry.last_timestamp, timestamp)
        first = entry.txn_first_offset
        entry.txn_first_offset = -1
        self.ongoing.pop(producer_id, None)
        if first < 0:
            return None
        if marker_offset >= high_watermark:
            self.undecided.append((first, marker_offset))
        if commit:
            return None
        aborted = AbortedTxn(producer_id, first, marker_offset, self.last_stable_offset(marker_offset))
        self.aborted.append(aborted)
        return aborted

    # reads -----------------------------------------------------------------------------------

    def last_stable_offset(self, high_watermark: int) -> int:
        """The first offset not yet decided: below the high watermark and every open transaction."""
        if not self.ongoing and not self.undecided:  # most partitions, on every fetch
            return high_watermark
        if self.undecided:
            self.undecided = [(f, m) for f, m in self.undecided if m >= high_watermark]
        lso = high_watermark
        for first in self.ongoing.values():
            lso = min(lso, first)
        for first, _ in self.undecided:
            lso = min(lso, first)
        return lso

    def aborted_between(self, start: int, end: int) -> list[AbortedTxn]:
        """Aborted transactions with records in ``[start, end)``."""
        i = bisect.bisect_left([a.last_offset for a in self.aborted], start)
        return [a for a in self.aborted[i:] if a.first_offset < end]

    def first_open_offset(self) -> int | None:
        return min(self.ongoing.values(), default=None)

    # maintenance -------------------------------------------------------------------------------

    def expire(self, now_ms: int, max_age_ms: int) -> list[int]:
        """Forget producers idle for ``max_age_ms`` with no open transaction."""
        gone = [pid for pid, e in self.producers.items()
                if e.txn_first_offset < 0 and now_ms - e.last_timestamp >= max_age_ms]
        for pid in gone:
            del self.producers[pid]
        return gone

    def truncate_head(self, log_start_offset: int) -> None:
        """Drop aborted transactions wholly below the log start offset."""
        self.aborted = [a for a in self.aborted if a.last_offset >= log_start_offset]

    # snapshots (Kafka's producer snapshot format, version 1) -----------------------------------

    def snapshot_bytes(self) -> bytes:
        body = bytearray()
        entries = [e for e in self.producers.values() if e.batches or e.txn_first_offset >= 0 or e.epoch >= 0]
        body += struct.pack(">i", len(entries))
        for e in entries:
            last = e.batches[-1] if e.batches else None
            body += _SNAPSHOT_ENTRY.pack(
                e.producer_id, e.epoch, last.last_seq if last else -1, last.last_offset if last else -1,
                last.last_offset - last.first_offset if last else 0, e.last_timestamp,
                e.coordinator_epoch, e.txn_first_offset)
        crc = crc32c.crc32c(bytes(body))
        return struct.pack(">hI", 1, crc) + bytes(body)

    def load_snapshot(self, data: bytes) -> None:
        """Replace the state by a snapshot's; raises ValueError if it is damaged."""
        if len(data) < _SNAPSHOT_HEAD.size:
            raise ValueError("snapshot too short")
        version, crc, count = _SNAPSHOT_HEAD.unpack_from(data)
        if version != 1:
            raise ValueError(f"snapshot version {version}")
        if crc32c.crc32c(data[6:]) != crc or len(data) != _SNAPSHOT_HEAD.size + count * _SNAPSHOT_ENTRY.size:
            raise ValueError("snapshot checksum or size mismatch")
        self.producers.clear()
        self.ongoing.clear()
        for i in range(count):
            pid, epoch, last_seq, last_offset, delta, ts, coord, txn_first = _SNAPSHOT_ENTRY.unpack_from(
                data, _SNAPSHOT_HEAD.size + i * _SNAPSHOT_ENTRY.size)
            entry = ProducerEntry(pid, epoch, coordinator_epoch=coord, txn_first_offset=txn_first,
                                  last_timestamp=ts)
            if last_seq >= 0:
                first_seq = last_seq - delta if last_seq >= delta else last_seq - delta + MAX_SEQUENCE + 1
                entry.batches.append(BatchMeta(first_seq, last_seq, last_offset - delta, last_offset, ts))
            self.producers[pid] = entry
            if txn_first >= 0:
                self.ongoing[pid] = txn_first
