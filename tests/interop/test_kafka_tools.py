"""Apache Kafka's own command-line tools against a real tomyum broker (issue 20): the main classes
the ``bin/kafka-*.sh`` scripts of Kafka 4.4 run, from the same jars as the Kafka peer
(``kafka_peer.fetch_jars()``, fetched with Maven on first use). Each run has a timeout; each test
asserts on the tool's exit code and output."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.testing import BrokerProcess, wait_until
from tomyum.testing.kafka_peer import fetch_jars

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(shutil.which("java") is None or shutil.which("mvn") is None,
                                 reason="needs java and mvn (Kafka's tools are fetched from Maven Central)")]
TOOL_TIMEOUT = 90
TIMEOUT = 30
TOPICS = "org.apache.kafka.tools.TopicCommand"
PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
CONFIGS = "org.apache.kafka.tools.ConfigCommand"
ACLS = "org.apache.kafka.tools.AclCommand"
TRANSACTIONS = "org.apache.kafka.tools.TransactionsCommand"
DELETE_RECORDS = "org.apache.kafka.tools.DeleteRecordsCommand"
GET_OFFSETS = "org.apache.kafka.tools.GetOffsetShell"
LOG_DIRS = "org.apache.kafka.tools.LogDirsCommand"
VERIFIABLE_PRODUCER = "org.apache.kafka.tools.VerifiableProducer"
VERIFIABLE_CONSUMER = "org.apache.kafka.tools.VerifiableConsumer"
METADATA_QUORUM = "org.apache.kafka.tools.MetadataQuorumCommand"
LEADER_ELECTION = "org.apache.kafka.tools.LeaderElectionCommand"
REASSIGN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
FEATURES = "org.apache.kafka.tools.FeatureCommand"
DUMP_LOG = "org.apache.kafka.tools.DumpLogSegments"
AUTHORIZER = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
              "allow.everyone.if.no.acl.found": "true"}
LOG4J2 = """status = error
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m%n
rootLogger.level = ERROR
rootLogger.appenderRef.err.ref = err
"""


@pytest.fixture(scope="module")
def libs() -> Path:
    return fetch_jars()


@pytest.fixture(scope="module")
def log4j(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tools") / "log4j2.properties"
    path.write_text(LOG4J2)
    return path


class Tools:
    def __init__(self, libs: Path, log4j: Path, bootstrap: str) -> None:
        self.libs, self.log4j, self.bootstrap = libs, log4j, bootstrap

    def run(self, main: str, *args: str, stdin: str | None = None, timeout: float = TOOL_TIMEOUT,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        java = shutil.which("java")
        assert java is not None
        command = [java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
                   f"-Dlog4j2.configurationFile={self.log4j}", "-cp", f"{self.libs}/*", main, *args]
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout,
                              stdin=None if stdin is not None else subprocess.DEVNULL)
        if check:
            assert done.returncode == 0, f"{main} {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done

    def topics(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(TOPICS, "--bootstrap-server", self.bootstrap, *args, check=check)


@pytest.fixture
def tools(libs: Path, log4j: Path, broker: BrokerProcess) -> Tools:
    return Tools(libs, log4j, broker.bootstrap)


def name(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}"


def produce(bootstrap: str, topic: str, values: list[str], partition: int = 0) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for v in values:
        p.produce(topic, v.encode(), key=b"k", partition=partition)
    assert p.flush(TIMEOUT) == 0


def create(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(TIMEOUT)


def test_kafka_topics_create_list_describe_alter_delete(tools: Tools) -> None:
    topic = name("topics")
    created = tools.topics("--create", "--topic", topic, "--partitions", "2", "--replication-factor", "1",
                           "--config", "retention.ms=1000000")
    assert f"Created topic {topic}." in created.stdout
    again = tools.topics("--create", "--topic", topic, "--partitions", "2", check=False)
    assert again.returncode != 0 and "already exists" in again.stdout + again.stderr
    assert topic in tools.topics("--list").stdout.split()
    described = tools.topics("--describe", "--topic", topic).stdout
    assert re.search(rf"Topic: {topic}\s+TopicId: \S+\s+PartitionCount: 2\s+ReplicationFactor: 1", described)
    assert "retention.ms=1000000" in described
    assert len(re.findall(rf"Topic: {topic}\s+Partition: \d\s+Leader: \d+\s+Replicas: \d+\s+Isr: \d+", described)) == 2
    tools.topics("--alter", "--topic", topic, "--partitions", "4")
    assert "PartitionCount: 4" in tools.topics("--describe", "--topic", topic).stdout
    shrink = tools.topics("--alter", "--topic", topic, "--partitions", "1", check=False)
    assert shrink.returncode != 0 and "partitions" in (shrink.stdout + shrink.stderr).lower()
    tools.topics("--delete", "--topic", topic)
    wait_until(lambda: topic not in tools.topics("--list").stdout.split(), timeout=TIMEOUT, what="topic deleted")
    missing = tools.topics("--describe", "--topic", topic, check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stdout + missing.stderr


def test_console_producer_and_consumer_round_trip_with_a_group(tools: Tools, broker: BrokerProcess) -> None:
    topic, group = name("console"), name("group")
    create(broker.bootstrap, topic)
    lines = [f"k{i}\tvalue {i}" for i in range(5)]
    tools.run(PRODUCER, "--bootstrap-server", broker.bootstrap, "--topic", topic,
              "--property", "parse.key=true", "--property", "key.separator=\t",
              stdin="\n".join(lines) + "\n")
    consumed = tools.run(CONSUMER, "--bootstrap-server", broker.bootstrap, "--topic", topic, "--from-beginning",
                         "--group", group, "--max-messages", "5", "--timeout-ms", "30000",
                         "--formatter-property", "print.key=true", "--formatter-property", "key.separator=\t")
    assert consumed.stdout.splitlines() == lines
    assert "Processed a total of 5 messages" in consumed.stderr
    # the group committed where it stopped: a second run from the group's offsets gets nothing
    more = tools.run(CONSUMER, "--bootstrap-server", broker.bootstrap, "--topic", topic, "--group", group,
                     "--max-messages", "1", "--timeout-ms", "3000", check=False)
    assert more.stdout == "" and "Processed a total of 0 messages" in more.stderr


def test_kafka_consumer_groups_list_describe_and_reset_offsets(tools: Tools, broker: BrokerProcess) -> None:
    topic, group = name("groups"), name("group")
    create(broker.bootstrap, topic, partitions=2)
    produce(broker.bootstrap, topic, ["a", "b", "c"], partition=0)
    produce(broker.bootstrap, topic, ["d"], partition=1)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    try:
        c.subscribe([topic])
        got = 0
        def consumed() -> bool:
            nonlocal got
            m = c.poll(0.5)
            got += m is not None and m.error() is None
            return got == 4
        wait_until(consumed, timeout=TIMEOUT, what="four records")
        c.commit(asynchronous=False)
    finally:
        c.close()
    run = lambda *a: tools.run(GROUPS, "--bootstrap-server", broker.bootstrap, *a)  # noqa: E731
    assert group in run("--list").stdout.split()
    described = run("--describe", "--group", group).stdout
    rows = {(m[0], m[1]): (m[2], m[3], m[4]) for m in
            re.findall(rf"{group}\s+{topic}\s+(\d)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)", described)}
    assert rows == {("0", "3"): ("3", "0", "-"), ("1", "1"): ("1", "0", "-")}, described
    dry = run("--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--dry-run").stdout
    assert re.search(rf"{group}\s+{topic}\s+0\s+0", dry) and re.search(rf"{group}\s+{topic}\s+1\s+0", dry)
    assert re.search(rf"{topic}\s+0\s+3\s+3\s+0", run("--describe", "--group", group).stdout)  # unchanged
    run("--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")
    after = run("--describe", "--group", group).stdout
    assert re.search(rf"{topic}\s+0\s+0\s+3\s+3", after) and re.search(rf"{topic}\s+1\s+0\s+1\s+1", after), after
    run("--delete", "--group", group)
    assert group not in run("--list").stdout.split()


def test_kafka_configs_topic_broker_and_scram(tools: Tools, broker: BrokerProcess) -> None:
    topic = name("configs")
    create(broker.bootstrap, topic)
    run = lambda *a: tools.run(CONFIGS, "--bootstrap-server", broker.bootstrap, *a)  # noqa: E731
    run("--alter", "--entity-type", "topics", "--entity-name", topic, "--add-config", "retention.ms=123456,cleanup.policy=compact")
    described = run("--describe", "--entity-type", "topics", "--entity-name", topic).stdout
    assert "retention.ms=123456" in described and "cleanup.policy=compact" in described
    run("--alter", "--entity-type", "topics", "--entity-name", topic, "--delete-config", "retention.ms")
    assert "retention.ms" not in run("--describe", "--entity-type", "topics", "--entity-name", topic).stdout
    run("--alter", "--entity-type", "brokers", "--entity-default", "--add-config", "log.retention.ms=86400000")
    described = run("--describe", "--entity-type", "brokers", "--entity-default").stdout
    assert "log.retention.ms=86400000" in described
    everything = run("--describe", "--entity-type", "brokers", "--entity-name", "1", "--all").stdout
    assert re.search(r"message\.max\.bytes=\d+", everything)
    run("--alter", "--entity-type", "users", "--entity-name", "alice",
        "--add-config", "SCRAM-SHA-256=[iterations=8192,password=alice-secret]")
    users = run("--describe", "--entity-type", "users", "--entity-name", "alice").stdout
    assert "SCRAM-SHA-256=iterations=8192" in users
    bad = tools.run(CONFIGS, "--bootstrap-server", broker.bootstrap, "--alter", "--entity-type", "topics",
                    "--entity-name", topic, "--add-config", "no.such.config=1", check=False)
    assert bad.returncode != 0 and "no.such.config" in bad.stdout + bad.stderr


def test_kafka_acls_add_list_remove(libs: Path, log4j: Path, tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "data", settings=AUTHORIZER) as secured:
        tools = Tools(libs, log4j, secured.bootstrap)
        run = lambda *a: tools.run(ACLS, "--bootstrap-server", secured.bootstrap, *a)  # noqa: E731
        run("--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "orders")
        run("--add", "--allow-principal", "User:bob", "--operation", "Write", "--topic", "logs-",
            "--resource-pattern-type", "prefixed")
        listed = run("--list", "--topic", "orders").stdout
        assert "principal=User:alice" in listed and "operation=READ" in listed and "permissionType=ALLOW" in listed
        assert "principal=User:bob" in run("--list", "--topic", "logs-", "--resource-pattern-type", "prefixed").stdout
        run("--remove", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "orders", "--force")
        assert "User:alice" not in run("--list").stdout


def test_kafka_transactions_list_and_describe(tools: Tools, broker: BrokerProcess) -> None:
    topic, txn = name("txn"), name("tid")
    create(broker.bootstrap, topic)
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": txn})
    p.init_transactions(TIMEOUT)
    p.begin_transaction()
    p.produce(topic, b"open")
    assert p.flush(TIMEOUT) == 0
    run = lambda *a: tools.run(TRANSACTIONS, "--bootstrap-server", broker.bootstrap, *a)  # noqa: E731
    listed = run("list").stdout
    assert re.search(rf"^{txn}\s+\d+\s+\d+\s+Ongoing", listed, re.M), listed
    described = run("describe", "--transactional-id", txn).stdout
    assert re.search(rf"\d+\s+{txn}\s+\d+\s+\d+\s+Ongoing", described) and f"{topic}-0" in described, described
    p.commit_transaction(TIMEOUT)
    wait_until(lambda: re.search(rf"^{txn}\s+\d+\s+\d+\s+CompleteCommit", run("list").stdout, re.M),
               timeout=TIMEOUT, what="the commit listed")


def test_kafka_get_offsets_and_delete_records(tools: Tools, broker: BrokerProcess, tmp_path: Path) -> None:
    topic = name("offsets")
    create(broker.bootstrap, topic, partitions=2)
    produce(broker.bootstrap, topic, ["a", "b", "c", "d"], partition=0)
    offsets = lambda *a: tools.run(GET_OFFSETS, "--bootstrap-server", broker.bootstrap, "--topic", topic,  # noqa: E731
                                   *a).stdout.split()
    assert offsets() == [f"{topic}:0:4", f"{topic}:1:0"]
    assert offsets("--time", "earliest") == [f"{topic}:0:0", f"{topic}:1:0"]
    plan = tmp_path / "delete.json"
    plan.write_text(f'{{"version": 1, "partitions": [{{"topic": "{topic}", "partition": 0, "offset": 3}}]}}')
    deleted = tools.run(DELETE_RECORDS, "--bootstrap-server", broker.bootstrap, "--offset-json-file", str(plan))
    assert re.search(rf"partition: {topic}-0\s+low_watermark: 3", deleted.stdout), deleted.stdout
    assert offsets("--time", "earliest", "--partitions", "0") == [f"{topic}:0:3"]
    assert offsets("--time", "earliest-local", "--partitions", "0") == [f"{topic}:0:3"]  # nothing is tiered
    assert offsets("--time", "latest-tiered", "--partitions", "0") == []  # offset -1: nothing tiered, none printed
    plan.write_text(f'{{"version": 1, "partitions": [{{"topic": "{topic}", "partition": 0, "offset": 99}}]}}')
    past = tools.run(DELETE_RECORDS, "--bootstrap-server", broker.bootstrap, "--offset-json-file", str(plan))
    assert "OffsetOutOfRangeException" in past.stdout + past.stderr


def test_kafka_log_dirs_describes_each_partitions_size_on_disk(tools: Tools, broker: BrokerProcess) -> None:
    topic = name("dirs")
    create(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, ["x" * 500] * 3, partition=1)
    done = tools.run(LOG_DIRS, "--bootstrap-server", broker.bootstrap, "--describe", "--topic-list", topic)
    assert "Received log directory information from brokers" in done.stdout
    (described,) = json.loads(done.stdout.strip().splitlines()[-1])["brokers"]
    (log_dir,) = described["logDirs"]
    assert log_dir["error"] is None and Path(log_dir["logDir"]).is_dir()
    sizes = {p["partition"]: (p["size"], p["offsetLag"], p["isFuture"]) for p in log_dir["partitions"]}
    assert set(sizes) == {f"{topic}-0", f"{topic}-1"}
    assert sizes[f"{topic}-0"] == (0, 0, False)
    assert sizes[f"{topic}-1"][0] > 1500 and sizes[f"{topic}-1"][1:] == (0, False)


def test_verifiable_producer_and_consumer(tools: Tools, broker: BrokerProcess) -> None:
    topic, group = name("verifiable"), name("group")
    create(broker.bootstrap, topic, partitions=2)
    produced = tools.run(VERIFIABLE_PRODUCER, "--bootstrap-server", broker.bootstrap, "--topic", topic,
                         "--max-messages", "200", "--acks", "-1")
    acked = [line for line in produced.stdout.splitlines() if '"name":"producer_send_success"' in line]
    assert len(acked) == 200 and '"acked":200' in produced.stdout
    consumed = tools.run(VERIFIABLE_CONSUMER, "--bootstrap-server", broker.bootstrap, "--topic", topic,
                         "--group-id", group, "--max-messages", "200", "--reset-policy", "earliest")
    counts = [int(n) for n in re.findall(r'"name":"records_consumed","count":(\d+)', consumed.stdout)]
    assert sum(counts) == 200, consumed.stdout[-2000:]
    assert '"name":"offsets_committed"' in consumed.stdout and '"success":true' in consumed.stdout
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=TIMEOUT)
    finally:
        c.close()
    assert sum(max(tp.offset, 0) for tp in committed) == 200  # (a partition it read nothing from: none)


def test_kafka_metadata_quorum_shows_one_voter_that_leads(tools: Tools, broker: BrokerProcess) -> None:
    status = tools.run(METADATA_QUORUM, "--bootstrap-server", broker.bootstrap, "describe", "--status").stdout
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    assert fields["LeaderId"] == "1" and int(fields["LeaderEpoch"]) > 0 and int(fields["HighWatermark"]) > 0
    assert (fields["MaxFollowerLag"], fields["CurrentObservers"]) == ("0", "[]")
    (voter,) = json.loads(fields["CurrentVoters"])
    assert voter["id"] == 1 and voter["endpoints"] == [f"PLAINTEXT://{broker.bootstrap}"]
    replication = tools.run(METADATA_QUORUM, "--bootstrap-server", broker.bootstrap, "describe",
                            "--replication").stdout.splitlines()
    assert replication[0].split()[:2] == ["NodeId", "DirectoryId"]
    row = replication[1].split()
    assert (row[0], row[3], row[-1]) == ("1", "0", "Leader")  # node, lag, status


def test_kafka_dump_log_reads_the_segments_tomyum_writes(tools: Tools, broker: BrokerProcess) -> None:
    """tomyum's partition logs are Kafka's on-disk format: Kafka's own DumpLogSegments reads a
    segment, every batch valid (CRC), every record's offset, key and value where it was put."""
    topic = name("dump")
    create(broker.bootstrap, topic)
    for codec in ("none", "gzip", "zstd"):
        p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 50})
        for i in range(20):
            p.produce(topic, f"{codec}-{i}".encode() * 8, key=codec.encode(), partition=0)
        assert p.flush(TIMEOUT) == 0
    (segment,) = sorted((broker.data_dir / f"{topic}-0").glob("*.log"))
    dumped = tools.run(DUMP_LOG, "--files", str(segment), "--deep-iteration", "--print-data-log").stdout
    batches = [line for line in dumped.splitlines() if line.startswith("baseOffset:")]
    assert batches and all("isvalid: true" in b for b in batches), dumped[-2000:]
    assert {c for b in batches for c in re.findall(r"compresscodec: (\w+)", b)} == {"none", "gzip", "zstd"}
    records = re.findall(r"\| offset: (\d+) .* key: (\S+) payload: (\S+)", dumped)
    assert [(int(o), k, v) for o, k, v in records] == [
        (n * 20 + i, codec, f"{codec}-{i}" * 8) for n, codec in enumerate(("none", "gzip", "zstd")) for i in range(20)]


def test_kafka_features_describes_the_finalized_levels(tools: Tools, broker: BrokerProcess) -> None:
    described = tools.run(FEATURES, "--bootstrap-server", broker.bootstrap, "describe").stdout
    rows = {f["Feature"]: f for f in (dict(re.findall(r"(\w+): (\S+)", line)) for line in described.splitlines())}
    assert set(rows) == {"metadata.version", "group.version"}
    assert rows["metadata.version"]["FinalizedVersionLevel"] == "4.0-IV3"
    assert (rows["group.version"]["SupportedMaxVersion"], rows["group.version"]["FinalizedVersionLevel"]) == ("1", "1")


def test_kafka_leader_election_finds_every_leader_already_elected(tools: Tools, broker: BrokerProcess) -> None:
    topic = name("elect")
    create(broker.bootstrap, topic, partitions=2)
    one = tools.run(LEADER_ELECTION, "--bootstrap-server", broker.bootstrap, "--election-type", "preferred",
                    "--topic", topic, "--partition", "1")
    assert f"Valid replica already elected for partitions {topic}-1" in one.stdout
    every = tools.run(LEADER_ELECTION, "--bootstrap-server", broker.bootstrap, "--election-type", "unclean",
                      "--all-topic-partitions")
    assert "Error" not in every.stdout + every.stderr
    missing = tools.run(LEADER_ELECTION, "--bootstrap-server", broker.bootstrap, "--election-type", "preferred",
                        "--topic", name("missing"), "--partition", "0", check=False)
    assert missing.returncode != 0 and "UnknownTopicOrPartitionException" in missing.stdout + missing.stderr


def test_kafka_reassign_partitions_onto_the_one_broker_completes_at_once(tools: Tools, broker: BrokerProcess,
                                                                         tmp_path: Path) -> None:
    topic = name("reassign")
    create(broker.bootstrap, topic, partitions=2)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": p, "replicas": [1]} for p in (0, 1)]}))
    listed = tools.run(REASSIGN, "--bootstrap-server", broker.bootstrap, "--list")
    assert "No partition reassignments found." in listed.stdout
    executed = tools.run(REASSIGN, "--bootstrap-server", broker.bootstrap, "--execute",
                         "--reassignment-json-file", str(plan), "--throttle", "1000000")
    assert f"Successfully started partition reassignments for {topic}-0,{topic}-1" in executed.stdout
    verified = tools.run(REASSIGN, "--bootstrap-server", broker.bootstrap, "--verify",
                         "--reassignment-json-file", str(plan))
    assert f"Reassignment of partition {topic}-0 is completed." in verified.stdout
    assert "Clearing broker-level throttles on broker 1" in verified.stdout
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [2]}]}))
    elsewhere = tools.run(REASSIGN, "--bootstrap-server", broker.bootstrap, "--execute",
                          "--reassignment-json-file", str(plan), check=False)
    assert elsewhere.returncode != 0 and "Unknown broker id 2" in elsewhere.stdout + elsewhere.stderr


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A tomyum broker whose groups form at once (the tools' consumers would wait 3 s otherwise)."""
    with BrokerProcess(tmp_path / "data", settings={"group.initial.rebalance.delay.ms": "0"}) as b:
        yield b
