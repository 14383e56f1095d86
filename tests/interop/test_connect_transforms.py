"""Kafka's single message transforms and predicates in tomyum connect, with Apache Kafka Connect's
own worker as the oracle (issue 24: "the transforms' outputs equal Kafka's on a shared corpus of
records, one test per transform").

One source connector per (transform, corpus) runs in each worker, both on one tomyum broker:
``CorpusSource`` (connect/CorpusSource.java, compiled here against Kafka Connect's jars) in Kafka's
worker, its twin ``corpus_source.CorpusSource`` in tomyum's. Both read the same corpus file
(JsonConverter envelopes: structs nested two deep, optional fields null, a record without key,
a tombstone, repeated headers; and a schemaless corpus of maps, lists, nulls, a bare string),
apply the same transform config (``errors.tolerance=all``, so a record a transform refuses is
skipped in both) and write with JsonConverter. Each worker runs once for the whole corpus (a
module fixture); a test then compares, for its transform, every topic the two wrote — records
in order, key, value, headers and timestamp byte for byte (topic names differ only in the
``k-``/``t-`` prefix, which is mapped). The sink side likewise: the schemaless corpus in one topic,
read by a FileStream sink through a transform in each worker, gives the same file. Needs java,
javac and mvn.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess, KafkaConnectProcess
from tomyum.testing.kafka_peer import fetch_jars

HERE = Path(__file__).resolve().parent
CONNECT_POM = HERE.parent / "peers" / "connect" / "pom.xml"
T = "org.apache.kafka.connect.transforms."
DAY = 86_400_000
T0 = 1_709_164_800_000  # 2024-02-29T00:00:00Z


def _env(schema: dict[str, Any] | None, payload: Any) -> dict[str, Any]:
    return {"schema": schema, "payload": payload}


def _opt(type_: str, **more: Any) -> dict[str, Any]:
    return {"type": type_, "optional": True, **more}


GEO = {"type": "struct", "optional": True, "fields": [
    {"field": "lat", "type": "double", "optional": False}, {"field": "lon", "type": "double", "optional": False}]}
ADDRESS = {"type": "struct", "optional": True, "fields": [
    {"field": "street", **_opt("string")}, {"field": "city", "type": "string", "optional": False},
    {"field": "geo", **GEO}]}
VALUE_SCHEMA = {"type": "struct", "name": "com.example.Order", "optional": False, "fields": [
    {"field": "id", "type": "int32", "optional": False},
    {"field": "name", **_opt("string")},
    {"field": "price", **_opt("double")},
    {"field": "qty", "type": "int64", "optional": False},
    {"field": "active", **_opt("boolean")},
    {"field": "secret", **_opt("string")},
    {"field": "created", **_opt("int64", name="org.apache.kafka.connect.data.Timestamp", version=1)},
    {"field": "epoch", **_opt("int64")},
    {"field": "tags", **_opt("array", items={"type": "string", "optional": False})},
    {"field": "address", **ADDRESS},
    {"field": "born", **_opt("int32", name="org.apache.kafka.connect.data.Date", version=1)},
    {"field": "amount", **_opt("bytes", name="org.apache.kafka.connect.data.Decimal", version=1,
                               parameters={"scale": "2"})},
    {"field": "blob", **_opt("bytes")},
    {"field": "attrs", **_opt("map", keys={"type": "string", "optional": False},
                              values={"type": "int32", "optional": True})}]}
KEY_SCHEMA = {"type": "struct", "name": "com.example.OrderKey", "optional": False,
              "fields": [{"field": "id", "type": "int32", "optional": False}]}
STRING = {"type": "string", "optional": False}
INT32 = {"type": "int32", "optional": False}


def _rec(key: Any, value: Any, ts: int, headers: list[list[Any]] | None = None) -> dict[str, Any]:
    return {"key": key, "value": value, "timestamp": ts, "headers": headers or []}


FULL = {"id": 1, "name": "Ada", "price": 12.5, "qty": 3, "active": True, "secret": "s3cr3t",
        "created": T0 + 123, "epoch": T0 // 1000 + 7, "tags": ["a", "b"],
        "address": {"street": "1 Main", "city": "Oslo", "geo": {"lat": 59.9, "lon": 10.75}},
        "born": 19_782, "amount": "AJw=", "blob": "AAE=", "attrs": {"zeta": 1, "alpha": 2, "mid": None}}
NULLS = {"id": 2, "name": None, "price": None, "qty": 1, "active": None, "secret": None, "created": None,
         "epoch": None, "tags": None, "address": {"street": None, "city": "Bergen", "geo": None},
         "born": None, "amount": None, "blob": None, "attrs": None}
ODD = {"id": 4, "name": "ünïcödé ✓", "price": -0.5, "qty": 9007199254740993, "active": False, "secret": "",
       "created": 0, "epoch": -1, "tags": [], "address": None, "born": 0, "amount": "/w==", "blob": "",
       "attrs": {}}
CORPUS = {
    "s": [  # JSON with schemas
        _rec(_env(KEY_SCHEMA, {"id": 1}), _env(VALUE_SCHEMA, FULL), T0,
             [["source", _env(STRING, "web")], ["attempt", _env(INT32, 2)]]),
        _rec(_env(KEY_SCHEMA, {"id": 2}), _env(VALUE_SCHEMA, NULLS), T0 + DAY, [["drop-me", _env(STRING, "x")]]),
        _rec(_env(KEY_SCHEMA, {"id": 1}), None, T0 + 2 * DAY),
        _rec(None, _env(VALUE_SCHEMA, ODD), T0 + 2 * DAY + 5 * 3_600_000,
             [["source", _env(STRING, "batch")], ["source", _env(STRING, "again")]]),
    ],
    "n": [  # schemaless JSON
        _rec(_env(None, "k1"), _env(None, {k: v for k, v in FULL.items() if k != "qty"}), T0,
             [["source", _env(None, "web")]]),
        _rec(None, _env(None, {"id": 2, "name": None, "epoch": T0 // 1000, "address": {"city": "Bergen", "geo": None},
                               "secret": "p4ss", "zeta": 1, "alpha": 2, "mid": 3}), T0 + DAY,
             [["drop-me", _env(None, "x")]]),
        _rec(_env(None, "k1"), None, T0 + 2 * DAY),
        _rec(_env(None, "k4"), _env(None, {"id": 4, "name": "ünïcödé ✓", "price": -0.5, "active": False, "secret": "",
                                           "tags": [], "extra": {"nested": {"deep": [1, 2, {"x": None}]}}}),
             T0 + 2 * DAY + 1),
        _rec(_env(None, "k5"), _env(None, "a bare string"), T0 + 3 * DAY),
        _rec(_env(None, "k6"), _env(None, {f"field{i}": i for i in range(14)} | {"id": 6, "name": "many", "ключ": 1.0e-5}),
             T0 + 3 * DAY + 1),
    ],
}

CASES: dict[str, dict[str, str]] = {
    "cast": {"transforms": "c", "transforms.c.type": T + "Cast$Value",
             "transforms.c.spec": "id:string,price:int32,active:int8,epoch:float64,qty:int16"},
    "cast_whole_key": {"transforms": "c", "transforms.c.type": T + "Cast$Key", "transforms.c.spec": "string"},
    "drop_headers": {"transforms": "d", "transforms.d.type": T + "DropHeaders", "transforms.d.headers": "drop-me,source"},
    "extract_field": {"transforms": "e", "transforms.e.type": T + "ExtractField$Value", "transforms.e.field": "address"},
    "filter": {"transforms": "f", "transforms.f.type": T + "Filter", "transforms.f.predicate": "p",
               "predicates": "p", "predicates.p.type": T + "predicates.HasHeaderKey", "predicates.p.name": "drop-me"},
    "flatten": {"transforms": "f", "transforms.f.type": T + "Flatten$Value", "transforms.f.delimiter": "_"},
    # Kafka's Flatten refuses a map field in a schema: without it, the structs flatten
    "flatten_structs": {"transforms": "r,f", "transforms.r.type": T + "ReplaceField$Value", "transforms.r.exclude": "attrs",
                        "transforms.f.type": T + "Flatten$Value"},
    "header_from": {"transforms": "h", "transforms.h.type": T + "HeaderFrom$Value", "transforms.h.fields": "name,address,id",
                    "transforms.h.headers": "h_name,h_address,h_id", "transforms.h.operation": "move"},
    "hoist_field": {"transforms": "h", "transforms.h.type": T + "HoistField$Key", "transforms.h.field": "k"},
    "insert_field": {"transforms": "i", "transforms.i.type": T + "InsertField$Value", "transforms.i.topic.field": "topic",
                     "transforms.i.partition.field": "part", "transforms.i.timestamp.field": "ts!",
                     "transforms.i.static.field": "origin", "transforms.i.static.value": "corpus"},
    "insert_header": {"transforms": "i,j", "transforms.i.type": T + "InsertHeader", "transforms.i.header": "version",
                      "transforms.i.value.literal": "42", "transforms.j.type": T + "InsertHeader",
                      "transforms.j.header": "who", "transforms.j.value.literal": "tomyum connect"},
    "mask_field": {"transforms": "m,r", "transforms.m.type": T + "MaskField$Value",
                   "transforms.m.fields": "secret,price,tags,active,created,qty",
                   "transforms.r.type": T + "MaskField$Value", "transforms.r.fields": "name",
                   "transforms.r.replacement": "***"},
    "regex_router": {"transforms": "r", "transforms.r.type": T + "RegexRouter",
                     "transforms.r.regex": "(.*)-regex_router-(s|n)", "transforms.r.replacement": "$1-routed-$2"},
    "replace_field": {"transforms": "x", "transforms.x.type": T + "ReplaceField$Value", "transforms.x.exclude": "secret",
                      "transforms.x.renames": "name:full_name,id:order_id"},
    "replace_field_key": {"transforms": "y", "transforms.y.type": T + "ReplaceField$Key", "transforms.y.include": "id"},
    "set_schema_metadata": {"transforms": "s", "transforms.s.type": T + "SetSchemaMetadata$Value",
                            "transforms.s.schema.name": "com.example.Renamed", "transforms.s.schema.version": "7"},
    "timestamp_converter": {"transforms": "a,b", "transforms.a.type": T + "TimestampConverter$Value",
                            "transforms.a.field": "created", "transforms.a.target.type": "string",
                            "transforms.a.format": "yyyy-MM-dd'T'HH:mm:ss.SSS",
                            "transforms.b.type": T + "TimestampConverter$Value", "transforms.b.field": "epoch",
                            "transforms.b.target.type": "Timestamp", "transforms.b.unix.precision": "seconds"},
    "timestamp_converter_unix": {"transforms": "a,b", "transforms.a.type": T + "TimestampConverter$Value",
                                 "transforms.a.field": "created", "transforms.a.target.type": "unix",
                                 "transforms.a.unix.precision": "seconds",
                                 "transforms.b.type": T + "TimestampConverter$Value", "transforms.b.field": "epoch",
                                 "transforms.b.target.type": "Date", "transforms.b.unix.precision": "seconds"},
    "extract_field_key": {"transforms": "e", "transforms.e.type": T + "ExtractField$Key", "transforms.e.field": "id"},
    "timestamp_router": {"transforms": "r", "transforms.r.type": T + "TimestampRouter",
                         "transforms.r.topic.format": "${topic}-${timestamp}", "transforms.r.timestamp.format": "yyyyMMdd"},
    "value_to_key": {"transforms": "v", "transforms.v.type": T + "ValueToKey", "transforms.v.fields": "id,name"},
    "topic_name_matches_negate": {"transforms": "m", "transforms.m.type": T + "MaskField$Value",
                                  "transforms.m.fields": "secret", "transforms.m.predicate": "p",
                                  "transforms.m.negate": "true", "predicates": "p",
                                  "predicates.p.type": T + "predicates.TopicNameMatches", "predicates.p.pattern": ".*-n"},
    "record_is_tombstone": {"transforms": "f", "transforms.f.type": T + "Filter", "transforms.f.predicate": "p",
                            "predicates": "p", "predicates.p.type": T + "predicates.RecordIsTombstone"},
}


# The sink side: the schemaless corpus, produced as it is to one topic, read back by a FileStream
# sink in each worker through these transforms; Kafka's sink writes each value's toString(), so
# the two files are equal only if the maps come in Java's order and the values print as Java's.
SINK_CASES: dict[str, dict[str, str]] = {
    "plain": {},
    "insert_field": {"transforms": "i", "transforms.i.type": T + "InsertField$Value", "transforms.i.topic.field": "topic",
                     "transforms.i.partition.field": "part", "transforms.i.offset.field": "off",
                     "transforms.i.timestamp.field": "ts", "transforms.i.static.field": "origin",
                     "transforms.i.static.value": "corpus"},
    "mask_field": {"transforms": "m", "transforms.m.type": T + "MaskField$Value", "transforms.m.fields": "secret,price,tags"},
    "replace_field": {"transforms": "r", "transforms.r.type": T + "ReplaceField$Value", "transforms.r.exclude": "secret",
                      "transforms.r.renames": "name:full_name"},
    "cast": {"transforms": "c", "transforms.c.type": T + "Cast$Value", "transforms.c.spec": "id:string,price:int32,epoch:float64"},
    "flatten": {"transforms": "r,f", "transforms.r.type": T + "ReplaceField$Value", "transforms.r.exclude": "attrs",
                "transforms.f.type": T + "Flatten$Value"},  # Kafka's Flatten refuses a map field in a schema
    "hoist_field": {"transforms": "h", "transforms.h.type": T + "HoistField$Value", "transforms.h.field": "v"},
    "timestamp_converter": {"transforms": "t", "transforms.t.type": T + "TimestampConverter$Value",
                            "transforms.t.field": "epoch", "transforms.t.target.type": "string",
                            "transforms.t.format": "yyyy-MM-dd HH:mm", "transforms.t.unix.precision": "seconds"},
}


# the struct's field whose toString() is not the data's: a byte[] (an identity hash)
UNPRINTABLE = {"transforms.unprintable.type": T + "ReplaceField$Value", "transforms.unprintable.exclude": "blob"}


def _sink(who: str, tag: str, case: str, corpus: str, work: Path) -> dict[str, str]:
    config = {"name": f"{who}-sink-{case}-{corpus}", "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
              "tasks.max": "1", "topics": f"src-{tag}-{corpus}", "file": str(work / f"{who}-sink-{case}-{corpus}.txt"),
              "errors.tolerance": "all", **SINK_CASES[case]}
    if corpus == "s":
        config.update(UNPRINTABLE, transforms=",".join(["unprintable", *filter(None, [config.get("transforms")])]))
    return config


def _produce_corpus(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> int:
    producer = Producer({"bootstrap.servers": bootstrap})
    for r in records:
        producer.produce(topic, key=None if r["key"] is None else json.dumps(r["key"]).encode(),
                         value=None if r["value"] is None else json.dumps(r["value"], ensure_ascii=False).encode(),
                         headers=[(n, json.dumps(v["payload"]).encode()) for n, v in r["headers"]] or None,
                         timestamp=r["timestamp"])
    assert producer.flush(30) == 0
    return len(records)


def _wait_sinks_done(bootstrap: str, topic: str, end: int, names: list[str]) -> None:
    """Until each sink's consumer group has committed the topic's end offset: everything was
    put and flushed to its file."""
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def done() -> bool:
        for name in names:
            [future] = admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(f"connect-{name}", [TopicPartition(topic, 0)])]).values()
            if future.result(10).topic_partitions[0].offset < end:
                return False
        return True
    wait_until(done, timeout=150, interval=0.5, what="the FileStream sinks to commit the corpus")


@dataclass
class Run:
    tag: str
    bootstrap: str
    workdir: Path

    def topics(self, who: str, case: str) -> list[str]:
        prefix = f"{who}-{self.tag}-"
        meta = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=10)
        names = {n for n in meta.topics if n.startswith(prefix)}
        if case == "regex_router":
            return sorted(n for n in names if "-routed-" in n)
        return sorted(n for n in names if n[len(prefix):].startswith(case + "-"))


def _connector(who: str, tag: str, case: str, corpus: str, work: Path) -> dict[str, str]:
    cls = "CorpusSource" if who == "k" else "corpus_source.CorpusSource"
    return {"name": f"{case}-{corpus}", "connector.class": cls, "tasks.max": "1",
            "file": str(work / f"corpus-{corpus}.jsonl"), "done.file": str(work / f"{who}-{case}-{corpus}.done"),
            "topic": f"{who}-{tag}-{case}-{corpus}", "errors.tolerance": "all", **CASES[case]}


def _wait_done(url: str, connectors: list[dict[str, str]], what: str) -> None:
    """Until every connector's task has created its ``done.file``: the worker called
    commitRecord for every record of the corpus (acknowledged by Kafka or dropped). A failed task
    fails the wait at once."""
    with httpx.Client(base_url=url, timeout=5) as http:
        def done() -> bool:
            pending = [c["name"] for c in connectors if not Path(c["done.file"]).exists()]
            for name in pending:
                status = http.get(f"/connectors/{name}/status").json()
                failed = [t for t in status.get("tasks", []) if t.get("state") == "FAILED"]
                assert not failed, f"{what}: {name} failed: {failed[0].get('trace', '')[:2000]}"
            return not pending
        wait_until(done, timeout=150, interval=0.5, what=f"{what} to finish the corpus")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, module_broker: BrokerProcess | ExternalBroker) -> Iterator[Run]:
    broker = module_broker
    for tool in ("java", "javac", "mvn"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed to run Apache Kafka Connect's worker")
    jars = fetch_jars(pom=CONNECT_POM, timeout=900)
    work = tmp_path_factory.mktemp("transforms-oracle")
    classes = work / "classes"
    subprocess.run(["javac", "-Werror", "-nowarn", "-cp", f"{jars}/*", "-d", str(classes),
                    str(HERE / "connect" / "CorpusSource.java")], check=True, timeout=180, capture_output=True)
    for corpus, records in CORPUS.items():
        (work / f"corpus-{corpus}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    tag = uuid.uuid4().hex[:6]
    conns = {who: [_connector(who, tag, case, corpus, work) for case in CASES for corpus in CORPUS]
             for who in ("k", "t")}
    sinks = {who: [_sink(who, tag, case, corpus, work) for case in SINK_CASES for corpus in CORPUS]
             for who in ("k", "t")}
    ends = {corpus: _produce_corpus(broker.bootstrap, f"src-{tag}-{corpus}", CORPUS[corpus]) for corpus in CORPUS}

    kafka = KafkaConnectProcess(jars, work / "kafka", {"bootstrap.servers": broker.bootstrap,
                                                       "offset.flush.interval.ms": "500"},
                                connectors=conns["k"] + sinks["k"], classpath=[classes])
    tomyum = ConnectProcess(work / "tomyum", broker.bootstrap, connectors=conns["t"] + sinks["t"],
                            worker={"offset.flush.interval.ms": "500", "plugin.path": str(HERE / "connect")})
    with kafka, tomyum:
        _wait_done(kafka.url, conns["k"], "Kafka's worker")
        _wait_done(tomyum.url, conns["t"], "tomyum's worker")
        for corpus, end in ends.items():
            _wait_sinks_done(broker.bootstrap, f"src-{tag}-{corpus}", end,
                             [c["name"] for c in sinks["k"] + sinks["t"] if c["name"].endswith("-" + corpus)])
    yield Run(tag, broker.bootstrap, work)


def _read_all(bootstrap: str, topic: str) -> list[tuple[Any, ...]]:
    """Every record of ``topic`` (all partitions, up to the high watermark), in offset order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        consumer.assign([TopicPartition(topic, p, 0) for p in parts if ends[p] > 0])
        got: list[tuple[Any, ...]] = []
        positions = {p: 0 for p in parts}

        def complete() -> bool:
            for m in consumer.consume(100, 0.2):
                assert m.error() is None, m.error()
                got.append((m.partition(), m.offset(), m.key(), m.value(), m.headers(), m.timestamp()))
                positions[m.partition()] = m.offset() + 1
            return all(positions[p] >= ends[p] for p in parts)
        wait_until(complete, timeout=30, interval=0, what=f"the records of {topic}")
        return [g[2:] for g in sorted(got, key=lambda g: (g[0], g[1]))]
    finally:
        consumer.close()


def _compare(run: Run, case: str) -> None:
    kafka_topics = run.topics("k", case)
    tomyum_topics = run.topics("t", case)
    assert [t[1:] for t in tomyum_topics] == [t[1:] for t in kafka_topics]
    assert kafka_topics, f"Kafka's worker wrote nothing for {case}"
    k_prefix, t_prefix = f"k-{run.tag}".encode(), f"t-{run.tag}".encode()
    for k_topic, t_topic in zip(kafka_topics, tomyum_topics):
        expected = [tuple(x.replace(k_prefix, t_prefix) if isinstance(x, bytes) else x for x in r[:2])
                    + (r[2] and [(n, v and v.replace(k_prefix, t_prefix)) for n, v in r[2]], r[3])
                    for r in _read_all(run.bootstrap, k_topic)]
        got = _read_all(run.bootstrap, t_topic)
        for i, (mine, kafkas) in enumerate(zip(got, expected)):
            assert mine == kafkas, f"{t_topic}, record {i}:\n tomyum {mine}\n kafka  {kafkas}"
        assert len(got) == len(expected), f"{t_topic}: {len(got)} records, Kafka's worker wrote {len(expected)}"


@pytest.mark.timeout(400)
@pytest.mark.parametrize("case", sorted(CASES))
def test_transform_output_equals_kafka_connects(run: Run, case: str) -> None:
    _compare(run, case)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("case", sorted(SINK_CASES))
def test_sink_transform_output_equals_kafka_connects(run: Run, case: str) -> None:
    """The FileStream sink's file after the transform, Kafka's worker's and tomyum's: equal."""
    for corpus in CORPUS:
        kafka = (run.workdir / f"k-sink-{case}-{corpus}.txt").read_text(encoding="utf-8")
        assert kafka.count("\n") >= 2, kafka
        assert (run.workdir / f"t-sink-{case}-{corpus}.txt").read_text(encoding="utf-8") == kafka, corpus
