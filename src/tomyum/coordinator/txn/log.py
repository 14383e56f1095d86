"""Transaction state as records of the compacted internal topic ``__transaction_state``, in
Kafka's own layout, so restart recovery is a replay of that topic.

key   (version 0): transactional_id string
value (version 0): producer_id int64, producer_epoch int16, transaction_timeout_ms int32,
                   transaction_status int8, transaction_partitions [topic string,
                   partition_ids [int32]] (nullable), transaction_last_update_timestamp_ms int64,
                   transaction_start_timestamp_ms int64
A null value (tombstone) removes the transactional id.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from tomyum.coordinator.group.offsets_log import read_short_string, short_string

TXN_TOPIC = "__transaction_state"


class TxnState(enum.IntEnum):
    """Kafka's transaction states, with their numbers in the log."""

    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def display(self) -> str:
        return "".join(w.capitalize() for w in self.name.split("_"))


@dataclass(slots=True)
class TxnRecord:
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState
    partitions: dict[str, set[int]] = field(default_factory=dict)
    last_update_ms: int = -1
    start_ms: int = -1


def txn_key(transactional_id: str) -> bytes:
    return struct.pack(">h", 0) + short_string(transactional_id)


def parse_txn_key(key: bytes) -> str | None:
    (version,) = struct.unpack_from(">h", key, 0)
    if version != 0:
        return None
    return read_short_string(key, 2)[0]


def txn_value(r: TxnRecord) -> bytes:
    out = bytearray(struct.pack(">hqhib", 0, r.producer_id, r.producer_epoch, r.timeout_ms, int(r.state)))
    out += struct.pack(">i", len(r.partitions))
    for topic, parts in sorted(r.partitions.items()):
        out += short_string(topic) + struct.pack(">i", len(parts))
        for p in sorted(parts):
            out += struct.pack(">i", p)
    out += struct.pack(">qq", r.last_update_ms, r.start_ms)
    return bytes(out)


def parse_txn_value(value: bytes) -> TxnRecord:
    version, pid, epoch, timeout, status = struct.unpack_from(">hqhib", value, 0)
    if version not in (0, 1):
        raise ValueError(f"transaction log value version {version}")
    if version == 1:
        raise ValueError("flexible transaction log values are not read yet")
    pos = 17
    (count,) = struct.unpack_from(">i", value, pos)
    pos += 4
    partitions: dict[str, set[int]] = {}
    for _ in range(max(count, 0)):
        topic, pos = read_short_string(value, pos)
        (n,) = struct.unpack_from(">i", value, pos)
        pos += 4
        partitions[topic] = set(struct.unpack_from(f">{n}i", value, pos))
        pos += 4 * n
    last_update, start = struct.unpack_from(">qq", value, pos)
    return TxnRecord(pid, epoch, timeout, TxnState(status), partitions, last_update, start)
