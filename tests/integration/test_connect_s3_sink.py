"""tomyum connect's S3 sink (``io.confluent.connect.s3.S3SinkConnector``) against a real
S3-compatible server — moto's (``moto_server``, started by the module on a free loopback port) —
with records produced to a real broker: Confluent's object names, JSON lines, Avro read back
with fastavro, Parquet with pyarrow, the field and time-based partitioners, consumer offsets
committed only past uploaded objects, and a kill -9 of the worker mid-stream leaving every
record in S3 exactly once (the same object names rewritten)."""

from __future__ import annotations

import datetime
import io
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import fastavro
import httpx
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess, write_properties
from tomyum.testing.kafka_peer import free_port

pytestmark = pytest.mark.timeout(90)
S3_SINK = "io.confluent.connect.s3.S3SinkConnector"
#: midnight (UTC) two days ago: recent enough for Apache Kafka's 7-day retention (make test-kafka
#: shares one broker for the whole run, whose retention check would delete older records), and
#: T0 + 90 minutes is still in the past (Kafka refuses records more than an hour ahead)
_DAY = datetime.datetime.now(datetime.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - datetime.timedelta(days=2)
T0 = int(_DAY.timestamp() * 1000)
SCHEMA = {"type": "struct", "name": "shop.Order", "optional": False,
          "fields": [{"field": "id", "type": "int64", "optional": False},
                     {"field": "region", "type": "string", "optional": False}]}


class MotoServer:
    """``moto_server`` in a child process on a free loopback port; stopped on exit."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        moto = Path(sys.executable).with_name("moto_server")
        self.process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self) -> MotoServer:
        def up() -> bool:
            assert self.process.poll() is None, "moto_server exited"
            try:
                return httpx.get(self.url + "/moto-api/", timeout=1).status_code < 500
            except httpx.HTTPError:
                return False
        try:
            wait_until(up, timeout=30, interval=0.1, what="moto_server")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    with MotoServer() as server:
        client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="test",
                              aws_secret_access_key="test")
        yield server.url, client
        client.close()


@pytest.fixture(scope="module")
def worker(module_broker: BrokerProcess | ExternalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with ConnectProcess(tmp_path_factory.mktemp("s3-sink-worker"), module_broker.bootstrap) as w, \
            httpx.Client(base_url=w.url, timeout=30) as http:
        yield http


def sink_config(s3: tuple[str, Any], topic: str, **extra: str) -> dict[str, str]:
    url, client = s3
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    return {"connector.class": S3_SINK, "topics": topic, "s3.bucket.name": bucket, "store.url": url,
            "s3.region": "us-east-1", "aws.access.key.id": "test", "aws.secret.access.key": "test",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false", "format.class": "JsonFormat", **extra}


def produce(bootstrap: str, topic: str, values: list[Any], timestamps: list[int] | None = None) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for i, value in enumerate(values):
        p.produce(topic, value=json.dumps(value).encode(), timestamp=timestamps[i] if timestamps else 0)
    assert p.flush(30) == 0


def objects(client: Any, bucket: str) -> dict[str, bytes]:
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}


def wait_for_keys(client: Any, bucket: str, keys: set[str]) -> dict[str, bytes]:
    def found() -> dict[str, bytes] | None:
        got = objects(client, bucket)
        return got if set(got) >= keys else None
    return wait_until(found, timeout=30, interval=0.2, what=f"{sorted(keys)} in {bucket}")


def committed(bootstrap: str, group: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return int(c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset)
    finally:
        c.close()


def first_record(bootstrap: str, topic: str) -> Any:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    try:
        def one() -> Any:
            return next((m for m in consumer.consume(1, 0.5) if m.error() is None), None)
        return wait_until(one, timeout=30, what=f"a record in {topic}")
    finally:
        consumer.close()


def create(http: httpx.Client, name: str, config: dict[str, str]) -> None:
    r = http.post("/connectors", json={"name": name, "config": config})
    assert r.status_code == 201, r.text


def test_json_objects_and_offsets_only_past_what_is_in_s3(
        worker: httpx.Client, module_broker: BrokerProcess | ExternalBroker, s3: tuple[str, Any], topic_name: str) -> None:
    produce(module_broker.bootstrap, topic_name, [{"n": i} for i in range(5)])
    config = sink_config(s3, topic_name, **{"flush.size": "2"})
    name = f"s3-{uuid.uuid4().hex[:8]}"
    create(worker, name, config)
    prefix = f"topics/{topic_name}/partition=0/{topic_name}+0+"
    got = wait_for_keys(s3[1], config["s3.bucket.name"], {prefix + "0000000000.json", prefix + "0000000002.json"})
    assert got == {prefix + "0000000000.json": b'{"n":0}\n{"n":1}\n', prefix + "0000000002.json": b'{"n":2}\n{"n":3}\n'}
    # offset 4 waits for a fifth record in memory: the group's offset stops at 4, not 5
    wait_until(lambda: committed(module_broker.bootstrap, f"connect-{name}", topic_name) == 4, timeout=30,
               interval=0.3, what="offset 4 committed")
    missing = worker.post("/connectors", json={"name": "x", "config": {"connector.class": S3_SINK, "topics": "t",
                                                                        "format.class": "JsonFormat"}})
    assert missing.status_code == 400 and "s3.bucket.name" in missing.json()["message"]


def test_a_missing_bucket_fails_the_task(worker: httpx.Client, s3: tuple[str, Any], topic_name: str) -> None:
    name = f"s3-{uuid.uuid4().hex[:8]}"
    create(worker, name, dict(sink_config(s3, topic_name, **{"flush.size": "1"}), **{"s3.bucket.name": "not-there"}))

    def failed() -> dict[str, Any] | None:
        tasks = worker.get(f"/connectors/{name}/status").json().get("tasks", [])
        return next((t for t in tasks if t["state"] == "FAILED"), None)
    task = wait_until(failed, timeout=30, interval=0.2, what="the task FAILED")
    assert "S3 bucket 'not-there' is not there or not reachable" in task["trace"]


def test_avro_and_parquet_read_back(worker: httpx.Client, module_broker: BrokerProcess | ExternalBroker,
                                    s3: tuple[str, Any], topic_name: str) -> None:
    rows = [{"id": i, "region": r} for i, r in enumerate(["eu", "us", "eu"])]
    produce(module_broker.bootstrap, topic_name, [{"schema": SCHEMA, "payload": row} for row in rows])
    with_schemas = {"value.converter.schemas.enable": "true", "flush.size": "3"}
    avro = sink_config(s3, topic_name, **with_schemas, **{"format.class": "io.confluent.connect.s3.format.avro.AvroFormat"})
    parquet = sink_config(s3, topic_name, **with_schemas, **{"format.class": "ParquetFormat", "topics.dir": "lake"})
    create(worker, f"s3-avro-{uuid.uuid4().hex[:8]}", avro)
    create(worker, f"s3-parquet-{uuid.uuid4().hex[:8]}", parquet)
    avro_key = f"topics/{topic_name}/partition=0/{topic_name}+0+0000000000.avro"
    parquet_key = f"lake/{topic_name}/partition=0/{topic_name}+0+0000000000.snappy.parquet"
    avro_file = wait_for_keys(s3[1], avro["s3.bucket.name"], {avro_key})[avro_key]
    parquet_file = wait_for_keys(s3[1], parquet["s3.bucket.name"], {parquet_key})[parquet_key]
    reader = fastavro.reader(io.BytesIO(avro_file))
    assert reader.writer_schema is not None and reader.writer_schema["name"] == "shop.Order"
    assert list(reader) == rows
    assert pq.read_table(io.BytesIO(parquet_file)).to_pylist() == rows


def test_field_and_time_based_partitioners(worker: httpx.Client, module_broker: BrokerProcess | ExternalBroker,
                                           s3: tuple[str, Any], topic_name: str) -> None:
    """A record without the field goes to the dead letter queue (``errors.tolerance=all``)."""
    minutes = [0, 20, 70, 80]
    produce(module_broker.bootstrap, topic_name, [{"id": i, "region": ["eu", "us"][i % 2]} for i in range(4)],
            timestamps=[T0 + m * 60_000 for m in minutes])
    produce(module_broker.bootstrap, topic_name, [{"id": 4}], timestamps=[T0 + 90 * 60_000])
    dlq = f"dlq-{uuid.uuid4().hex[:8]}"
    by_field = sink_config(s3, topic_name, **{"flush.size": "4", "partitioner.class":
                                              "io.confluent.connect.storage.partitioner.FieldPartitioner",
                                              "partition.field.name": "region", "errors.tolerance": "all",
                                              "errors.deadletterqueue.topic.name": dlq,
                                              "errors.deadletterqueue.topic.replication.factor": "1"})
    by_time = sink_config(s3, topic_name, **{
        "flush.size": "4", "partitioner.class": "io.confluent.connect.storage.partitioner.TimeBasedPartitioner",
        "path.format": "'dt'=YYYY-MM-dd/'hour'=HH", "partition.duration.ms": "3600000", "locale": "en-US",
        "timezone": "UTC", "timestamp.extractor": "Record"})
    create(worker, f"s3-field-{uuid.uuid4().hex[:8]}", by_field)
    create(worker, f"s3-time-{uuid.uuid4().hex[:8]}", by_time)
    base = f"topics/{topic_name}"
    fields = wait_for_keys(s3[1], by_field["s3.bucket.name"], {f"{base}/region=eu/{topic_name}+0+0000000000.json",
                                                               f"{base}/region=us/{topic_name}+0+0000000001.json"})
    assert sorted(fields.values()) == [b'{"id":0,"region":"eu"}\n{"id":2,"region":"eu"}\n',
                                       b'{"id":1,"region":"us"}\n{"id":3,"region":"us"}\n']
    assert first_record(module_broker.bootstrap, dlq).value() == b'{"id":4}'
    hours = wait_for_keys(s3[1], by_time["s3.bucket.name"], {f"{base}/dt={_DAY:%Y-%m-%d}/hour=00/{topic_name}+0+0000000000.json",
                                                             f"{base}/dt={_DAY:%Y-%m-%d}/hour=01/{topic_name}+0+0000000002.json"})
    assert len(hours) == 2 and all(body.count(b"\n") == 2 for body in hours.values())


def test_the_guides_s3_sink(worker: httpx.Client, module_broker: BrokerProcess | ExternalBroker,
                            s3: tuple[str, Any], topic_name: str) -> None:
    """docs/connect.md's s3-sink.properties, as written (the store, bucket and topic changed): a
    record of the next hour commits the hour before, since ``rotate.interval.ms`` is set."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "connect.md").read_text(encoding="utf-8")
    [block] = re.findall(r"^```properties s3-sink\.properties\n(.*?)^```", guide, re.DOTALL | re.MULTILINE)
    config = dict(line.split("=", 1) for line in block.splitlines() if line.strip())
    assert config.pop("name") == "orders-to-s3"
    ours = sink_config(s3, topic_name)
    config.update({k: ours[k] for k in ("topics", "s3.bucket.name", "store.url", "aws.access.key.id",
                                        "aws.secret.access.key")})
    produce(module_broker.bootstrap, topic_name, [{"order": i} for i in range(3)],
            timestamps=[T0, T0 + 5 * 60_000, T0 + 70 * 60_000])
    create(worker, f"s3-guide-{uuid.uuid4().hex[:8]}", config)
    key = f"topics/{topic_name}/year={_DAY:%Y}/month={_DAY:%m}/day={_DAY:%d}/hour=00/{topic_name}+0+0000000000.json"
    assert wait_for_keys(s3[1], ours["s3.bucket.name"], {key}) == {key: b'{"order":0}\n{"order":1}\n'}


@pytest.mark.slow
def test_kill_9_mid_stream_leaves_each_record_once(module_broker: BrokerProcess | ExternalBroker,
                                                   s3: tuple[str, Any], topic_name: str, tmp_path: Path) -> None:
    """No offset is committed before the kill (offset.flush.interval.ms is long): the restarted
    worker reads from the start and writes the same objects again — new versions of the same
    names in a versioned bucket, never a second name for a record."""
    client = s3[1]
    config = dict(sink_config(s3, topic_name, **{"flush.size": "3"}), name=f"s3-crash-{uuid.uuid4().hex[:8]}")
    bucket = config["s3.bucket.name"]
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    worker_props = {"bootstrap.servers": module_broker.bootstrap, "listeners": "http://127.0.0.1:0",
                    "key.converter": "org.apache.kafka.connect.storage.StringConverter",
                    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
                    "offset.storage.file.filename": str(tmp_path / "connect.offsets"),
                    "offset.flush.interval.ms": "600000",
                    # the killed worker's consumer leaves the group only when its session ends
                    "consumer.session.timeout.ms": "6000", "consumer.heartbeat.interval.ms": "500"}
    files = [write_properties(tmp_path / "worker.properties", worker_props),
             write_properties(tmp_path / "s3.properties", config)]
    prefix = f"topics/{topic_name}/partition=0/{topic_name}+0+"
    produce(module_broker.bootstrap, topic_name, [{"n": i} for i in range(7)])
    first = ConnectProcess.for_files(tmp_path, files[0], files[1:]).start()
    try:
        wait_for_keys(client, bucket, {prefix + "0000000000.json", prefix + "0000000003.json"})
    finally:
        first.kill()
    produce(module_broker.bootstrap, topic_name, [{"n": i} for i in range(7, 12)])
    with ConnectProcess.for_files(tmp_path, files[0], files[1:]):
        expected = {prefix + f"{start:010d}.json" for start in (0, 3, 6, 9)}
        got = wait_for_keys(client, bucket, expected)
    assert set(got) == expected
    lines = [json.loads(line) for body in got.values() for line in body.splitlines()]
    assert sorted(v["n"] for v in lines) == list(range(12))
    versions = client.list_object_versions(Bucket=bucket)["Versions"]
    assert {v["Key"] for v in versions} == expected
    assert sum(v["Key"] == prefix + "0000000000.json" for v in versions) == 2  # rewritten, same name
