"""One Kafka partition's open objects (Confluent's ``TopicPartitionWriter``), and when they are
committed — the exactly-once rule of the S3 sink.

Pure: no I/O and no clock; the caller passes ``now_ms`` and an ``upload(key, data)``.

Records are kept in memory, one open object per encoded partition, and nothing is uploaded
until the objects are *committed*: all of them at once, when the partition has ``flush.size``
records open, when ``rotate.interval.ms`` is up (the partitioner's timestamps: the first open
record's and the new one's, or the encoded partition changed — time-based partitioners only, as
Confluent's), when ``rotate.schedule.interval.ms`` of wall clock has passed (at multiples of it
since the epoch), or when a record's schema differs from its object's (Avro, Parquet). Only
after every upload of a commit succeeded does :attr:`offset_to_commit` move past its records, so
the consumer offsets committed never cover a record that is not in S3; after a crash the
partition is read again from there, and — the records, the partitioner and a rotation by
``flush.size`` or record time being deterministic — the same object names are written again.

A record at or below the last offset written or skipped is a redelivery (the worker retries a batch after
:class:`RetriableError`) and is skipped; a commit that failed is retried first on the next write.
"""

from __future__ import annotations

from collections.abc import Callable

from tomyum.connect.data import SinkRecord
from tomyum.connect.s3.formats import RecordWriter
from tomyum.connect.s3.partitioner import Partitioner, TimeBasedPartitioner


class TopicPartitionWriter:
    """Not thread-safe: a sink task's thread owns it."""

    def __init__(self, *, partitioner: Partitioner, new_writer: Callable[[], RecordWriter],
                 name_of: Callable[[str, int, str], str], upload: Callable[[str, bytes], None],
                 flush_size: int, rotate_interval_ms: int = -1, rotate_schedule_interval_ms: int = -1) -> None:
        self.partitioner = partitioner
        self.new_writer = new_writer
        self.name_of = name_of
        self.upload = upload
        self.flush_size = flush_size
        self.rotate_interval_ms = rotate_interval_ms if isinstance(partitioner, TimeBasedPartitioner) else -1
        self.rotate_schedule_interval_ms = rotate_schedule_interval_ms
        self.files: dict[str, tuple[int, RecordWriter]] = {}
        self.record_count = 0
        self.last_offset: int | None = None
        self.offset_to_commit: int | None = None
        self.base_timestamp: int | None = None
        self.current_encoded: str | None = None
        self.next_scheduled_rotation: int | None = None
        self.commit_due = False

    def _rotate_on_time(self, encoded: str, timestamp: int | None, now_ms: int) -> bool:
        if self.record_count <= 0:
            return False
        periodic = (self.rotate_interval_ms > 0 and timestamp is not None and self.base_timestamp is not None
                    and (timestamp - self.base_timestamp >= self.rotate_interval_ms
                         or encoded != self.current_encoded))
        scheduled = self.next_scheduled_rotation is not None and now_ms >= self.next_scheduled_rotation
        return periodic or scheduled

    def is_redelivery(self, record: SinkRecord) -> bool:
        """True for a record at or below the last offset written or skipped."""
        return self.last_offset is not None and record.kafka_offset <= self.last_offset

    def skip(self, record: SinkRecord) -> None:
        """``record`` is not to be written (a null value ignored, or reported as errant): a
        redelivery skips it too, and the offsets committed go past it with the next commit."""
        self.last_offset = max(record.kafka_offset, self.last_offset if self.last_offset is not None else -1)

    def write(self, record: SinkRecord, now_ms: int) -> None:
        """Adds ``record`` (or skips it, a redelivery), committing before or after as the rules say.
        Raises what ``upload`` or the partitioner raises; nothing is lost then: a retry goes on."""
        if self.commit_due:
            self.commit()
        if self.is_redelivery(record):
            return
        encoded = self.partitioner.encode_partition(record, now_ms)
        timestamp = self.partitioner.timestamp(record, now_ms)
        open_file = self.files.get(encoded)
        if self._rotate_on_time(encoded, timestamp, now_ms) or (
                open_file is not None and not open_file[1].accepts(record)):
            self.commit()
            open_file = None
        if open_file is None:
            open_file = self.files[encoded] = (record.kafka_offset, self.new_writer())
        open_file[1].add(record)
        self.last_offset = record.kafka_offset
        self.record_count += 1
        self.current_encoded = encoded
        if self.base_timestamp is None:
            self.base_timestamp = timestamp
        if self.next_scheduled_rotation is None and self.rotate_schedule_interval_ms > 0:
            interval = self.rotate_schedule_interval_ms
            self.next_scheduled_rotation = now_ms - now_ms % interval + interval
        if self.record_count >= self.flush_size:
            self.commit()

    def on_time(self, now_ms: int) -> None:
        """Commits what is open if ``rotate.schedule.interval.ms`` is up (or a commit failed)."""
        if self.commit_due or (self.record_count > 0 and self.next_scheduled_rotation is not None
                               and now_ms >= self.next_scheduled_rotation):
            self.commit()

    def commit(self) -> None:
        """Uploads every open object, then moves :attr:`offset_to_commit` past them."""
        self.commit_due = True
        for encoded, (start_offset, writer) in self.files.items():
            self.upload(self.name_of(encoded, start_offset, writer.extension), writer.data())
        if self.last_offset is not None and self.record_count:
            self.offset_to_commit = self.last_offset + 1
        self.files.clear()
        self.record_count = 0
        self.base_timestamp = None
        self.current_encoded = None
        self.next_scheduled_rotation = None
        self.commit_due = False


__all__ = ["TopicPartitionWriter"]
