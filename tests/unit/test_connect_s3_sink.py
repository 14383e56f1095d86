"""The S3 sink's pure parts: partitioners, object names, formats and when objects are committed
(the connector against a real S3 server, moto's, is in tests/integration/test_connect_s3_sink.py)."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pyarrow.parquet as pq
import pytest

from tomyum.connect.config import ConfigError
from tomyum.connect.connector import ConnectError, RetriableError
from tomyum.connect.data import INT32_SCHEMA, INT64_SCHEMA, OPTIONAL_STRING_SCHEMA, STRING_SCHEMA, SchemaBuilder, \
    SinkRecord, Struct, Type
from tomyum.connect.s3.formats import JsonRecordWriter, format_name, writer_factory
from tomyum.connect.s3.partitioner import (DefaultPartitioner, FieldPartitioner, TimeBasedPartitioner, format_joda,
                                           object_key, partitioner_from)
from tomyum.connect.s3.sink import parse
from tomyum.connect.s3.topic_partition_writer import TopicPartitionWriter

pytestmark = pytest.mark.timeout(10)
ORDER = SchemaBuilder(Type.STRUCT).name("shop.Order").field("id", INT64_SCHEMA).field("region", STRING_SCHEMA) \
    .field("note", OPTIONAL_STRING_SCHEMA).build()
HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def order(offset: int, region: str = "eu", *, partition: int = 0, timestamp: int | None = T0) -> SinkRecord:
    value = Struct(ORDER).put("id", offset).put("region", region)
    return SinkRecord(topic="orders", kafka_partition=partition, kafka_offset=offset, value_schema=ORDER,
                      value=value, timestamp=timestamp)


def test_object_names_are_confluents() -> None:
    assert object_key(topics_dir="topics", topic="orders", encoded_partition="partition=3", kafka_partition=3,
                      start_offset=42, extension=".json") == "topics/orders/partition=3/orders+3+0000000042.json"
    assert object_key(topics_dir="/out/", topic="t", encoded_partition="a=1/b=x", kafka_partition=0, start_offset=7,
                      extension=".avro", zero_pad_width=3, file_delim="-") == "out/t/a=1/b=x/t-0-007.avro"


def test_default_and_field_partitioners() -> None:
    assert DefaultPartitioner().encode_partition(order(1, partition=5), 0) == "partition=5"
    fields = FieldPartitioner(field_names=("region", "id"))
    assert fields.encode_partition(order(9, "us"), 0) == "region=us/id=9"
    schemaless = SinkRecord(topic="t", kafka_partition=0, kafka_offset=0, value={"region": "apac", "id": 1})
    assert fields.encode_partition(schemaless, 0) == "region=apac/id=1"
    with pytest.raises(ConnectError, match="no field 'missing'"):
        FieldPartitioner(field_names=("missing",)).encode_partition(order(1), 0)
    with pytest.raises(ConnectError, match="int, a string or a boolean"):
        FieldPartitioner(field_names=("note",)).encode_partition(order(1), 0)


def test_joda_patterns() -> None:
    import datetime
    t = datetime.datetime(2026, 3, 7, 5, 9, 1, 123000)
    assert format_joda("'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH", t) == "year=2026/month=03/day=07/hour=05"
    assert format_joda("yy-M-d H:mm:ss.SSS 'o''k' MMM EEE", t) == "26-3-7 5:09:01.123 o'k Mar Sat"
    with pytest.raises(ValueError):
        format_joda("'open", t)


def test_time_based_partitioner_rounds_down_in_its_timezone() -> None:
    hourly = TimeBasedPartitioner(path_format="'dt'=YYYY-MM-dd/'hour'=HH", partition_duration_ms=HOUR,
                                  timezone="UTC", extractor="Record")
    assert hourly.encode_partition(order(0, timestamp=T0 + 90 * 60_000), 0) == "dt=2026-01-01/hour=01"
    kolkata = TimeBasedPartitioner(path_format="YYYY-MM-dd-HH-mm", partition_duration_ms=HOUR,
                                   timezone="Asia/Kolkata", extractor="Record")  # UTC+5:30
    assert kolkata.encode_partition(order(0, timestamp=T0 + 40 * 60_000), 0) == "2026-01-01-06-00"
    wall = TimeBasedPartitioner(path_format="YYYY", partition_duration_ms=HOUR, timezone="UTC")
    assert wall.encode_partition(order(0, timestamp=None), T0) == "2026"
    by_field = partitioner_from({"partitioner.class": "io.confluent.connect.storage.partitioner.TimeBasedPartitioner",
                                 "path.format": "YYYY-MM-dd", "partition.duration.ms": 86_400_000, "timezone": "UTC",
                                 "timestamp.extractor": "RecordField", "timestamp.field": "at"})
    record = SinkRecord(topic="t", kafka_partition=0, kafka_offset=0, value={"at": "2026-02-03T23:59:00Z"})
    assert by_field.encode_partition(record, 0) == "2026-02-03"
    daily = partitioner_from({"partitioner.class": "DailyPartitioner", "timezone": "UTC",
                              "timestamp.extractor": "Record"})
    assert daily.encode_partition(order(0), 0) == "year=2026/month=01/day=01"
    with pytest.raises(ConnectError, match="no timestamp"):
        hourly.encode_partition(order(0, timestamp=None), 0)


def test_time_based_partitioner_refusals() -> None:
    for change, key in [({"path_format": ""}, "path.format"), ({"partition_duration_ms": -1}, "partition.duration.ms"),
                        ({"timezone": ""}, "timezone"), ({"timezone": "Mars/Olympus"}, "timezone"),
                        ({"path_format": "YYYY-qq"}, "path.format")]:
        args: dict[str, Any] = {"path_format": "YYYY", "partition_duration_ms": HOUR, "timezone": "UTC", **change}
        with pytest.raises(ConfigError, match=key):
            TimeBasedPartitioner(**args)
    with pytest.raises(ConfigError, match="partition.field.name"):
        partitioner_from({"partitioner.class": "FieldPartitioner", "partition.field.name": []})
    with pytest.raises(ConfigError, match="Unknown partitioner"):
        partitioner_from({"partitioner.class": "RandomPartitioner"})


def test_config_defaults_and_refusals() -> None:
    c = parse({"s3.bucket.name": "b", "flush.size": "3", "format.class": "io.confluent.connect.s3.format.json.JsonFormat"})
    assert (c["topics.dir"], c["s3.region"], c["filename.offset.zero.pad.width"], c["rotate.interval.ms"],
            c["partitioner.class"]) == ("topics", "us-west-2", 10, -1,
                                        "io.confluent.connect.storage.partitioner.DefaultPartitioner")
    assert [format_name(n) for n in ("JsonFormat", "io.confluent.connect.s3.format.avro.AvroFormat",
                                     "ParquetFormat")] == ["JsonFormat", "AvroFormat", "ParquetFormat"]
    with pytest.raises(ConfigError, match="flush.size"):
        parse({"s3.bucket.name": "b", "format.class": "JsonFormat"})
    with pytest.raises(ConfigError, match="Unknown format"):
        parse({"s3.bucket.name": "b", "flush.size": "1", "format.class": "CsvFormat"})
    with pytest.raises(ConfigError, match="timezone"):
        parse({"s3.bucket.name": "b", "flush.size": "1", "format.class": "JsonFormat",
               "rotate.schedule.interval.ms": "60000"})
    with pytest.raises(ConfigError, match="parquet.codec"):
        parse({"s3.bucket.name": "b", "flush.size": "1", "format.class": "ParquetFormat", "parquet.codec": "lzo"})
    with pytest.raises(ConfigError, match="s3.part.size"):
        parse({"s3.bucket.name": "b", "flush.size": "1", "format.class": "JsonFormat", "s3.part.size": "1024"})


def test_formats_write_what_their_readers_read() -> None:
    records = [order(0, "eu"), order(1, "us")]
    json_writer = JsonRecordWriter()
    for r in records:
        json_writer.add(r)
    assert json_writer.data() == b'{"id":0,"region":"eu","note":null}\n{"id":1,"region":"us","note":null}\n'
    avro = writer_factory("AvroFormat")()
    parquet = writer_factory("ParquetFormat")()
    for r in records:
        avro.add(r)
        parquet.add(r)
    assert (avro.extension, parquet.extension) == (".avro", ".snappy.parquet")
    reader = fastavro.reader(io.BytesIO(avro.data()))
    assert reader.writer_schema is not None and reader.writer_schema["name"] == "shop.Order"
    assert list(reader) == [{"id": 0, "region": "eu", "note": None}, {"id": 1, "region": "us", "note": None}]
    assert pq.read_table(io.BytesIO(parquet.data())).to_pylist() == [{"id": 0, "region": "eu", "note": None},
                                                                     {"id": 1, "region": "us", "note": None}]
    other = SchemaBuilder(Type.STRUCT).field("id", INT32_SCHEMA).build()
    assert not avro.accepts(SinkRecord(topic="orders", kafka_partition=0, kafka_offset=2, value_schema=other,
                                       value=Struct(other).put("id", 1)))
    with pytest.raises(ConnectError, match="needs a value schema"):
        writer_factory("AvroFormat")().add(SinkRecord(topic="t", kafka_partition=0, kafka_offset=0, value={"a": 1}))


class Bucket:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.fail_next = 0

    def upload(self, key: str, data: bytes) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RetriableError("S3 is down")
        self.objects[key] = data


def writer(bucket: Bucket, partitioner: Any = None, **kw: Any) -> TopicPartitionWriter:
    return TopicPartitionWriter(
        partitioner=partitioner or DefaultPartitioner(), new_writer=JsonRecordWriter, upload=bucket.upload,
        name_of=lambda encoded, start, ext: object_key(topics_dir="topics", topic="orders", encoded_partition=encoded,
                                                       kafka_partition=0, start_offset=start, extension=ext), **kw)


def test_objects_are_written_only_when_committed_and_offsets_follow_them() -> None:
    bucket = Bucket()
    w = writer(bucket, flush_size=3)
    for offset in range(4):
        w.write(order(offset), T0)
    assert list(bucket.objects) == ["topics/orders/partition=0/orders+0+0000000000.json"]
    assert bucket.objects["topics/orders/partition=0/orders+0+0000000000.json"].count(b"\n") == 3
    assert w.offset_to_commit == 3  # offset 3 is open, not in S3: not committable


def test_a_failed_upload_is_retried_and_a_redelivered_batch_is_not_written_twice() -> None:
    bucket = Bucket()
    w = writer(bucket, flush_size=2)
    w.write(order(0), T0)
    bucket.fail_next = 1
    with pytest.raises(RetriableError):
        w.write(order(1), T0)
    assert bucket.objects == {} and w.offset_to_commit is None
    for offset in (0, 1, 2):  # the worker hands the batch over again, then the next record
        w.write(order(offset), T0)
    assert bucket.objects == {"topics/orders/partition=0/orders+0+0000000000.json":
                              b'{"id":0,"region":"eu","note":null}\n{"id":1,"region":"eu","note":null}\n'}
    assert w.offset_to_commit == 2


def test_skipped_records_are_not_written_and_not_handed_over_twice() -> None:
    bucket = Bucket()
    w = writer(bucket, flush_size=2)
    w.write(order(0), T0)
    w.skip(order(1))  # a null value ignored, or a record reported as errant
    assert w.is_redelivery(order(1)) and not w.is_redelivery(order(2))
    w.write(order(2), T0)
    assert list(bucket.objects) == ["topics/orders/partition=0/orders+0+0000000000.json"]
    assert bucket.objects["topics/orders/partition=0/orders+0+0000000000.json"].count(b"\n") == 2
    assert w.offset_to_commit == 3


def test_field_partitioned_objects_commit_together() -> None:
    bucket = Bucket()
    w = writer(bucket, FieldPartitioner(field_names=("region",)), flush_size=3)
    for offset, region in enumerate(["eu", "us", "eu"]):
        w.write(order(offset, region), T0)
    assert sorted(bucket.objects) == ["topics/orders/region=eu/orders+0+0000000000.json",
                                      "topics/orders/region=us/orders+0+0000000001.json"]
    assert w.offset_to_commit == 3


def test_rotation_by_record_time_and_by_schedule() -> None:
    bucket = Bucket()
    hourly = TimeBasedPartitioner(path_format="'h'=HH", partition_duration_ms=HOUR, timezone="UTC", extractor="Record")
    w = writer(bucket, hourly, flush_size=100, rotate_interval_ms=10 * 60_000)
    for offset, minute in enumerate([0, 5, 12, 59, 61]):
        w.write(order(offset, timestamp=T0 + minute * 60_000), T0)
    # 12 - 0 >= 10: rotate before offset 2; 59 - 12 >= 10: before 3; hour 01 is another directory: before 4
    assert sorted(bucket.objects) == ["topics/orders/h=00/orders+0+0000000000.json",
                                      "topics/orders/h=00/orders+0+0000000002.json",
                                      "topics/orders/h=00/orders+0+0000000003.json"]
    scheduled = writer(bucket := Bucket(), flush_size=100, rotate_schedule_interval_ms=60_000)
    scheduled.write(order(0), T0 + 1_000)
    scheduled.on_time(T0 + 59_999)
    assert bucket.objects == {}
    scheduled.on_time(T0 + 60_000)
    assert list(bucket.objects) == ["topics/orders/partition=0/orders+0+0000000000.json"]
    assert scheduled.offset_to_commit == 1
