"""FileStream source → topic → FileStream sink through a real ``tomyum connect standalone``
worker and a real broker, with JsonConverter; and a sink's dead letter queue."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess
from tests.integration.test_connect_rest import SINK, SOURCE, Connect, _consume

pytestmark = pytest.mark.timeout(120)

LINES = ["first line", "ünïcödé ✓", "", "{\"json\": \"inside\"}", "last"]


@pytest.mark.parametrize("schemas", [True, False], ids=["schemas", "no-schemas"])
def test_filestream_round_trip_with_json_converter(broker: BrokerProcess | ExternalBroker, tmp_path: Path,
                                                   topic_name: str, schemas: bool) -> None:
    source_file, sink_file = tmp_path / "in.txt", tmp_path / "out.txt"
    source_file.write_text("".join(line + "\n" for line in LINES), encoding="utf-8")
    connectors = [
        {"name": "file-source", "connector.class": SOURCE, "file": str(source_file), "topic": topic_name},
        {"name": "file-sink", "connector.class": "FileStreamSink", "file": str(sink_file), "topics": topic_name},
    ]
    worker = {"value.converter.schemas.enable": str(schemas).lower(), "key.converter.schemas.enable": "false"}
    with ConnectProcess(tmp_path / "w", broker.bootstrap, worker=worker, connectors=connectors):
        wait_until(lambda: sink_file.exists() and sink_file.read_text("utf-8").count("\n") == len(LINES),
                   timeout=60, what="every line in the sink file")
        assert sink_file.read_text("utf-8").splitlines() == LINES
        records = _consume(broker.bootstrap, topic_name, len(LINES))
        with open(source_file, "a", encoding="utf-8") as f:  # tailing: a line appended later flows too
            f.write("appended\n")
        wait_until(lambda: sink_file.read_text("utf-8").splitlines()[-1:] == ["appended"], timeout=30,
                   what="the appended line")
    # Kafka's JsonConverter bytes: compact, the schema envelope's keys in Kafka's order, UTF-8
    expected = [('{"schema":{"type":"string","optional":false},"payload":%s}' % _json_string(line) if schemas
                 else _json_string(line)).encode("utf-8") for line in LINES]
    assert [m.value() for m in records] == expected
    assert [m.key() for m in records] == [None] * len(LINES)


def _json_string(text: str) -> str:
    import json
    return json.dumps(text, ensure_ascii=False)


def test_malformed_record_goes_to_the_dead_letter_queue(broker: BrokerProcess | ExternalBroker, tmp_path: Path,
                                                        topic_name: str) -> None:
    dlq = topic_name + "-dlq"
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    values = [b'{"n": 1}', b"this is not json", b'"two"', b"[3]"]
    for v in values:
        producer.produce(topic_name, value=v, headers=[("origin", b"test")])
    assert producer.flush(30) == 0
    sink_file = tmp_path / "out.txt"
    connector = {"name": "dlq-sink", "connector.class": SINK, "topics": topic_name, "file": str(sink_file),
                 "value.converter": "org.apache.kafka.connect.json.JsonConverter",
                 "value.converter.schemas.enable": "false",
                 "errors.tolerance": "all", "errors.log.enable": "true",
                 "errors.deadletterqueue.topic.name": dlq,
                 "errors.deadletterqueue.topic.replication.factor": "1",
                 "errors.deadletterqueue.context.headers.enable": "true"}
    with ConnectProcess(tmp_path / "w", broker.bootstrap, connectors=[connector]) as worker:
        wait_until(lambda: sink_file.exists() and sink_file.read_text().count("\n") == 3, timeout=60,
                   what="the three good records in the sink file")
        assert sink_file.read_text().splitlines() == ["{n=1}", "two", "[3]"]
        [dead] = _consume(broker.bootstrap, dlq, 1)
        with closing(Connect(worker.url, broker.bootstrap, tmp_path)) as client:
            assert client.status("dlq-sink")["tasks"][0]["state"] == "RUNNING"
    assert dead.value() == b"this is not json"
    headers = dict(dead.headers())
    assert headers["origin"] == b"test"
    assert headers["__connect.errors.topic"] == topic_name.encode()
    assert headers["__connect.errors.partition"] == b"0"
    assert headers["__connect.errors.offset"] == b"1"
    assert headers["__connect.errors.connector.name"] == b"dlq-sink"
    assert headers["__connect.errors.task.id"] == b"0"
    assert headers["__connect.errors.stage"] == b"VALUE_CONVERTER"
    assert headers["__connect.errors.class.name"] == b"org.apache.kafka.connect.json.JsonConverter"
    assert headers["__connect.errors.exception.class.name"] == b"org.apache.kafka.connect.errors.DataException"
    assert headers["__connect.errors.exception.message"].startswith(b"Converting byte[] to Kafka Connect data failed")
    assert headers["__connect.errors.exception.stacktrace"]


def test_without_tolerance_a_malformed_record_fails_the_task(broker: BrokerProcess | ExternalBroker, tmp_path: Path,
                                                             topic_name: str) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce(topic_name, value=b"not json either")
    assert producer.flush(30) == 0
    connector = {"name": "strict-sink", "connector.class": SINK, "topics": topic_name,
                 "file": str(tmp_path / "out.txt"), "value.converter.schemas.enable": "false"}
    with ConnectProcess(tmp_path / "w", broker.bootstrap, connectors=[connector]) as worker, \
            closing(Connect(worker.url, broker.bootstrap, tmp_path)) as client:
        wait_until(lambda: client.status("strict-sink")["tasks"][0]["state"] == "FAILED", timeout=60,
                   what="the task to fail")
        task = client.status("strict-sink")["tasks"][0]
        assert "Tolerance exceeded in error handler" in task["trace"]
        # the failed task restarts on request, and fails again on the same record
        assert client.http.post("/connectors/strict-sink/restart", params={"includeTasks": "true",
                                                                            "onlyFailed": "true"}).status_code == 202
        wait_until(lambda: client.status("strict-sink")["tasks"][0]["state"] == "FAILED", timeout=60,
                   what="the task to fail again")


def test_sigterm_stops_the_tasks_so_the_sink_commits_and_leaves_its_group(
        broker: BrokerProcess | ExternalBroker, tmp_path: Path, topic_name: str) -> None:
    """SIGTERM ends the worker as Kafka's does: its tasks stop first, so the sink commits what it
    wrote and leaves its group (a member left behind would hold the group's next rebalance, a
    restarted worker's included, for its whole session timeout)."""
    from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions
    from confluent_kafka.admin import AdminClient

    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for v in (b'"a"', b'"b"', b'"c"'):
        producer.produce(topic_name, value=v)
    assert producer.flush(30) == 0
    sink_file, name = tmp_path / "out.txt", f"sink-{topic_name}"
    connector = {"name": name, "connector.class": SINK, "topics": topic_name, "file": str(sink_file),
                 "value.converter": "org.apache.kafka.connect.json.JsonConverter",
                 "value.converter.schemas.enable": "false"}
    with ConnectProcess(tmp_path / "w", broker.bootstrap, connectors=[connector],
                        worker={"consumer.auto.offset.reset": "earliest"}) as worker:
        wait_until(lambda: sink_file.exists() and sink_file.read_text().count("\n") == 3, timeout=60,
                   what="the three records in the sink file")
    assert worker.process is not None and worker.process.returncode == 143, worker.output()[-2000:]
    admin, group = AdminClient({"bootstrap.servers": broker.bootstrap}), f"connect-{name}"
    described = admin.describe_consumer_groups([group])[group].result(30)
    assert (described.state, described.members) == (ConsumerGroupState.EMPTY, [])
    committed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(30)
    assert [(tp.topic, tp.partition, tp.offset) for tp in committed.topic_partitions] == [(topic_name, 0, 3)]
