"""The S3 sink: a topic's records as objects in an S3 (or S3-compatible) bucket, exactly once.

Configured with the keys of Confluent's S3 sink (``io.confluent.connect.s3.S3SinkConnector``):
``s3.bucket.name``, ``s3.region``, ``store.url`` (the endpoint of an S3-compatible store),
``s3.path.style.access.enabled``, ``aws.access.key.id``/``aws.secret.access.key`` (else boto3's
usual credential chain), ``s3.part.size``, ``s3.part.retries``, ``topics.dir``, ``flush.size``,
``rotate.interval.ms``, ``rotate.schedule.interval.ms``, ``format.class`` (with
``parquet.codec``), ``partitioner.class`` (with ``partition.field.name``, ``path.format``,
``partition.duration.ms``, ``locale``, ``timezone``, ``timestamp.extractor``,
``timestamp.field``), ``filename.offset.zero.pad.width``, ``directory.delim``, ``file.delim``,
``behavior.on.null.values`` (``fail``/``ignore``).

Objects are uploaded only when committed (``topic_partition_writer``), and ``pre_commit`` hands
the worker, per partition, the offset after the last record in an uploaded object: the consumer
offsets never run ahead of S3, and a restart rewrites the same object names. An upload that
fails (after boto3's ``s3.part.retries``) raises :class:`RetriableError`: the worker hands the
batch over again and the commit is retried. A record the partitioner or the format cannot take
fails through the errant record reporter (``errors.tolerance=all``: logged, to the DLQ, skipped).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from typing import Any

from tomyum.clock import SYSTEM_CLOCK, Clock
from tomyum.connect.config import ConfigDef, ConfigError, ConfigType, Importance, in_range, valid_string
from tomyum.connect.connector import ConnectError, RetriableError, SinkConnector, SinkTask, Task
from tomyum.connect.data import SinkRecord
from tomyum.connect.s3.formats import writer_factory
from tomyum.connect.s3.partitioner import EXTRACTORS, object_key, partitioner_from
from tomyum.connect.s3.topic_partition_writer import TopicPartitionWriter

VERSION = "1.0"
MIB = 1024 * 1024
log = logging.getLogger(__name__)


def s3_sink_config() -> ConfigDef:
    H, M, L = Importance.HIGH, Importance.MEDIUM, Importance.LOW
    S, I, LG = ConfigType.STRING, ConfigType.INT, ConfigType.LONG
    return (ConfigDef()
            .define("s3.bucket.name", S, importance=H, documentation="The bucket objects are written to")
            .define("s3.region", S, "us-west-2", M, "The bucket's region")
            .define("store.url", S, None, M, "The endpoint of an S3-compatible store (none: AWS)")
            .define("s3.path.style.access.enabled", ConfigType.BOOLEAN, True, L,
                    "Path-style requests (bucket in the path, not the host)")
            .define("aws.access.key.id", S, "", H, "The access key (empty: boto3's credential chain)")
            .define("aws.secret.access.key", ConfigType.PASSWORD, "", H, "The secret key")
            .define("s3.part.size", I, 25 * MIB, L, "The part size of multipart uploads",
                    validator=in_range(5 * MIB, 2**31 - 1))
            .define("s3.part.retries", I, 3, L, "Retries of a failed request (boto3's)", validator=in_range(0))
            .define("topics.dir", S, "topics", H, "The top directory of the objects")
            .define("flush.size", I, importance=H, documentation="Records per object at most",
                    validator=in_range(1))
            .define("rotate.interval.ms", LG, -1, H,
                    "Commit when the record times of an object span this (time-based partitioners)")
            .define("rotate.schedule.interval.ms", LG, -1, M, "Commit at every multiple of this, wall clock")
            .define("format.class", S, importance=H, documentation="JsonFormat, AvroFormat or ParquetFormat")
            .define("parquet.codec", S, "snappy", L, "none, snappy, gzip, zstd, lz4 or brotli")
            .define("partitioner.class", S, "io.confluent.connect.storage.partitioner.DefaultPartitioner", H,
                    "Default, Field, TimeBased, Daily or Hourly partitioner")
            .define("partition.field.name", ConfigType.LIST, "", M, "The fields of FieldPartitioner")
            .define("path.format", S, "", M, "The Joda pattern of TimeBasedPartitioner's directories")
            .define("partition.duration.ms", LG, -1, M, "The time span of one TimeBasedPartitioner directory")
            .define("locale", S, "", L, "The locale of path.format (names are English)")
            .define("timezone", S, "", M, "The timezone of path.format, e.g. UTC")
            .define("timestamp.extractor", S, "Wallclock", M, "Record, RecordField or Wallclock",
                    validator=valid_string(*EXTRACTORS))
            .define("timestamp.field", S, "timestamp", M, "The value's field of timestamp.extractor=RecordField")
            .define("filename.offset.zero.pad.width", I, 10, L, "Digits of the start offset in object names",
                    validator=in_range(0))
            .define("directory.delim", S, "/", L, "The directory delimiter of object names")
            .define("file.delim", S, "+", L, "The delimiter of topic, partition and offset in object names")
            .define("behavior.on.null.values", S, "fail", L, "fail or ignore a record with a null value",
                    validator=valid_string("fail", "ignore", case_insensitive=True)))


def parse(props: Mapping[str, str]) -> dict[str, Any]:
    """The parsed config, with the partitioner and format checked (raises ConfigError)."""
    c = s3_sink_config().parse(props)
    partitioner_from(c)
    writer_factory(str(c["format.class"]), str(c["parquet.codec"]).lower())
    if c["rotate.schedule.interval.ms"] > 0 and not c["timezone"]:
        raise ConfigError("timezone", "", "rotate.schedule.interval.ms needs a timezone")
    return c


class S3SinkConnector(SinkConnector):
    version = VERSION

    def __init__(self) -> None:
        self._props: dict[str, str] = {}

    def config(self) -> ConfigDef:
        return s3_sink_config()

    def check_config(self, props: Mapping[str, str]) -> None:
        parse(props)

    def start(self, props: Mapping[str, str]) -> None:
        self.check_config(props)
        self._props = dict(props)

    def task_class(self) -> type[Task]:
        return S3SinkTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self._props) for _ in range(max_tasks)]

    def stop(self) -> None:
        pass

    def alter_offsets(self, connector_config: Mapping[str, str], offsets: Mapping[tuple[str, int], int | None]) -> bool:
        return True  # the offsets are the consumer group's only


class S3SinkTask(SinkTask):
    version = VERSION

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.writers: dict[tuple[str, int], TopicPartitionWriter] = {}
        self._client: Any = None

    def start(self, props: Mapping[str, str]) -> None:
        try:
            import boto3
            import botocore.config
            import botocore.exceptions
            from boto3.s3.transfer import TransferConfig
        except ImportError:
            raise ConnectError("the S3 sink needs boto3: pip install 'tomyum[connect-s3]'") from None
        c = parse(props)
        self.config = c
        self.partitioner = partitioner_from(c)
        self.new_writer = writer_factory(str(c["format.class"]), str(c["parquet.codec"]).lower())
        self.bucket = str(c["s3.bucket.name"])
        self.ignore_nulls = str(c["behavior.on.null.values"]).lower() == "ignore"
        credentials = {}
        if c["aws.access.key.id"]:
            credentials = {"aws_access_key_id": c["aws.access.key.id"],
                           "aws_secret_access_key": c["aws.secret.access.key"] or ""}
        retries = int(c["s3.part.retries"])
        self._client = boto3.session.Session().client(
            "s3", region_name=c["s3.region"], endpoint_url=c["store.url"] or None, **credentials,
            config=botocore.config.Config(
                s3={"addressing_style": "path" if c["s3.path.style.access.enabled"] else "auto"},
                retries={"max_attempts": retries + 1, "mode": "standard"}, connect_timeout=10, read_timeout=60))
        part = int(c["s3.part.size"])
        self._transfer = TransferConfig(multipart_threshold=part, multipart_chunksize=part, use_threads=False)
        self._errors: tuple[type[Exception], ...] = (botocore.exceptions.BotoCoreError,
                                                     botocore.exceptions.ClientError)
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except self._errors as e:
            raise ConnectError(f"S3 bucket {self.bucket!r} is not there or not reachable: {e}") from e

    def _name_of(self, topic: str, partition: int) -> Any:
        c = self.config

        def name(encoded: str, start_offset: int, extension: str) -> str:
            return object_key(topics_dir=str(c["topics.dir"]), topic=topic, encoded_partition=encoded,
                              kafka_partition=partition, start_offset=start_offset, extension=extension,
                              zero_pad_width=int(c["filename.offset.zero.pad.width"]),
                              directory_delim=str(c["directory.delim"]), file_delim=str(c["file.delim"]))
        return name

    def _upload(self, key: str, data: bytes) -> None:
        try:
            self._client.upload_fileobj(io.BytesIO(data), self.bucket, key, Config=self._transfer)
        except self._errors as e:
            raise RetriableError(f"upload of s3://{self.bucket}/{key} failed: {e}") from e
        log.info("S3 sink: wrote s3://%s/%s (%d bytes)", self.bucket, key, len(data))

    def open(self, partitions: list[tuple[str, int]]) -> None:
        for tp in partitions:
            self._writer(tp)

    def _writer(self, tp: tuple[str, int]) -> TopicPartitionWriter:
        if tp not in self.writers:
            c = self.config
            self.writers[tp] = TopicPartitionWriter(
                partitioner=self.partitioner, new_writer=self.new_writer, name_of=self._name_of(*tp),
                upload=self._upload, flush_size=int(c["flush.size"]), rotate_interval_ms=int(c["rotate.interval.ms"]),
                rotate_schedule_interval_ms=int(c["rotate.schedule.interval.ms"]))
        return self.writers[tp]

    def close(self, partitions: list[tuple[str, int]]) -> None:
        for tp in partitions:
            self.writers.pop(tp, None)  # what was not committed is read again by the next owner

    def put(self, records: list[SinkRecord]) -> None:
        now = self.clock.time_ms()
        for r in records:
            writer = self._writer((r.topic, int(r.kafka_partition or 0)))
            if writer.is_redelivery(r):
                continue
            if r.value is None and self.ignore_nulls:
                writer.skip(r)
                continue
            try:
                if r.value is None:
                    raise ConnectError(f"{r.topic}-{r.kafka_partition}@{r.kafka_offset}: null value and "
                                       "behavior.on.null.values=fail")
                writer.write(r, now)
            except RetriableError:
                raise
            except ConnectError as e:
                report = self.context.errant_record_reporter()
                if report is None:
                    raise
                report(r, e)
                writer.skip(r)
        for writer in self.writers.values():
            writer.on_time(now)

    def pre_commit(self, current_offsets: Mapping[tuple[str, int], int]) -> Mapping[tuple[str, int], int]:
        now = self.clock.time_ms()
        committable = {}
        for tp, writer in self.writers.items():
            try:
                writer.on_time(now)
            except RetriableError as e:
                log.warning("S3 sink %s-%d: %s; retried later", tp[0], tp[1], e)
            if writer.offset_to_commit is not None:
                committable[tp] = writer.offset_to_commit
        return committable

    def stop(self) -> None:
        self.writers.clear()
        if self._client is not None:
            self._client.close()
            self._client = None


__all__ = ["S3SinkConnector", "S3SinkTask", "s3_sink_config"]
