"""Exactly-once with real clients: an idempotent confluent-kafka producer whose connections
are cut under it (and whose broker is killed) writes each message once; a transactional
consume-transform-produce loop with aborts, a producer killed mid-transaction and a broker
restart yields exactly the committed results to read_committed consumers; an abandoned
transaction stops blocking them once it times out; the admin APIs describe it all."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.testing import BrokerProcess, wait_until
from tomyum.testing.proxy import CuttingProxy

HERE = Path(__file__).parent
TIMEOUT = 30


def create(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(TIMEOUT)


def read(bootstrap: str, topic: str, partitions: int, isolation: str, expect_at_least: int,
         settle_s: float = 2.0) -> list:
    """Every message of ``topic`` a consumer with ``isolation`` gets, reading until it has
    ``expect_at_least`` and then nothing more arrives for ``settle_s``."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"verify-{isolation}-{time.time()}",
                  "enable.auto.commit": False, "isolation.level": isolation})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list = []
    deadline = time.monotonic() + TIMEOUT
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msgs = c.consume(num_messages=500, timeout=0.5)
            got = [m for m in msgs if m.error() is None]
            out += got
            if got:
                quiet_since = time.monotonic()
            elif len(out) >= expect_at_least and time.monotonic() - quiet_since >= settle_s:
                break
    finally:
        c.close()
    return out


def test_idempotent_producer_writes_each_message_once_through_cut_connections_and_a_crash(
        tmp_path: Path, topic_name: str) -> None:
    n, partitions = 3000, 3
    with CuttingProxy(cut_every=7) as proxy:
        broker = BrokerProcess(tmp_path / "data", settings={
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}"})
        with broker:
            proxy.start(broker.port)
            create(broker.bootstrap, topic_name, partitions)
            p = Producer({"bootstrap.servers": f"127.0.0.1:{proxy.port}", "enable.idempotence": True,
                          "linger.ms": 2, "batch.num.messages": 50, "message.timeout.ms": 60000,
                          "retry.backoff.ms": 50, "reconnect.backoff.ms": 20})
            failed: list = []

            def report(err: object, msg: object) -> None:
                if err is not None:
                    failed.append(err)

            for i in range(n):
                p.produce(topic_name, key=b"%d" % (i % 10), value=b"m%06d" % i, on_delivery=report)
                p.poll(0)
                if i == n // 2:
                    p.flush(TIMEOUT)
                    broker.kill()  # kill -9 in the middle, then the producer carries on
                    broker.start()
            assert p.flush(60) == 0, "messages still undelivered"
            assert failed == []
            assert proxy.cuts > 5
            assert "resent sequences" in broker.output() or "resent sequences" in broker.log_path.read_text()
            proxy.cut_every = 0
            msgs = read(broker.bootstrap, topic_name, partitions, "read_uncommitted", n)
    assert_each_once_in_order(msgs, n, partitions)


def assert_each_once_in_order(msgs: list, n: int, partitions: int) -> None:
    """``msgs`` (values ``m%06d``) are the ``n`` sent, each once, without offset gaps, in the
    order of sending per key."""
    values = Counter(m.value() for m in msgs)
    assert len(values) == n and set(values.values()) == {1}, "a message is missing or duplicated"
    for part in range(partitions):
        offsets = [m.offset() for m in msgs if m.partition() == part]
        assert offsets == list(range(len(offsets))), f"partition {part} has a gap"
    keys_in_order: dict[bytes, list[bytes]] = {}
    for m in msgs:  # per key (one partition each) the order of sending is kept
        keys_in_order.setdefault(m.key(), []).append(m.value())
    for seq in keys_in_order.values():
        assert seq == sorted(seq)


def idempotent_through_cuts(tmp_path: Path, topic: str, send: Callable[[str, list[tuple[bytes, bytes]]], None]) -> None:
    """``send(bootstrap, records)`` with an idempotent producer of another client, whose
    connections a proxy cuts after every 7th Produce it forwards: each record lands once."""
    n, partitions = 600, 3
    records = [(b"%d" % (i % 10), b"m%06d" % i) for i in range(n)]
    with CuttingProxy(cut_every=7) as proxy, BrokerProcess(tmp_path / "data", settings={
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}"}) as broker:
        proxy.start(broker.port)
        create(broker.bootstrap, topic, partitions)
        send(f"127.0.0.1:{proxy.port}", records)
        assert proxy.cuts > 5
        proxy.cut_every = 0
        msgs = read(broker.bootstrap, topic, partitions, "read_uncommitted", n)
        assert "resent sequences" in broker.output()
    assert_each_once_in_order(msgs, n, partitions)


def test_kafka_python_idempotent_producer_writes_each_message_once_through_cut_connections(
        tmp_path: Path, topic_name: str) -> None:
    from kafka import KafkaProducer

    def send(bootstrap: str, records: list[tuple[bytes, bytes]]) -> None:
        p = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=2,
                          retry_backoff_ms=50, reconnect_backoff_ms=20, request_timeout_ms=10_000)
        try:
            futures = []
            for i, (key, value) in enumerate(records):
                futures.append(p.send(topic_name, key=key, value=value))
                if i % 10 == 9:  # a Produce request every 10 records, so that the proxy cuts often
                    p.flush(TIMEOUT)
            p.flush(TIMEOUT)
            assert [f.exception for f in futures if f.failed()] == []
        finally:
            p.close(TIMEOUT)

    idempotent_through_cuts(tmp_path, topic_name, send)


def test_aiokafka_idempotent_producer_writes_each_message_once_through_cut_connections(
        tmp_path: Path, topic_name: str) -> None:
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def produce(bootstrap: str, records: list[tuple[bytes, bytes]]) -> None:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=2,
                             retry_backoff_ms=50, request_timeout_ms=10_000)
        await p.start()
        try:
            for start in range(0, len(records), 10):  # a Produce request every 10 records
                sent = [await p.send(topic_name, key=k, value=v) for k, v in records[start:start + 10]]
                await asyncio.gather(*sent)
        finally:
            await p.stop()

    idempotent_through_cuts(tmp_path, topic_name,
                            lambda bootstrap, records: asyncio.run(asyncio.wait_for(produce(bootstrap, records), 90)))


def worker(bootstrap: str, inp: str, out: str, tid: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(HERE / "eos_worker.py"), bootstrap, inp, out, "eos-group",
                             tid, "100", *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_line(proc: subprocess.Popen[str], word: str, lines: list[str]) -> None:
    assert proc.stdout is not None

    def seen() -> bool:
        line = proc.stdout.readline()  # the worker prints a line per transaction
        if line:
            lines.append(line)
        if proc.poll() is not None and not line:
            raise AssertionError(f"worker exited {proc.returncode} before {word}:\n{''.join(lines)}")
        return word in line

    wait_until(seen, timeout=60, what=word)


@pytest.mark.slow  # over 9 s: make test-slow
def test_transactional_consume_transform_produce_is_exactly_once(own_broker: BrokerProcess, topic_name: str) -> None:
    inp, out = f"{topic_name}-in", f"{topic_name}-out"
    bs = own_broker.bootstrap
    create(bs, inp, 2)
    create(bs, out, 2)
    p = Producer({"bootstrap.servers": bs})
    for i in range(100):
        p.produce(inp, value=b"event-%03d" % i, partition=i % 2)
    assert p.flush(TIMEOUT) == 0

    # A: commits, aborts its second transaction, then dies in the middle of its fourth
    lines: list[str] = []
    a = worker(bs, inp, out, "eos-tid", "--abort", "2", "--hang-in", "4")
    try:
        wait_for_line(a, "HANGING", lines)
    finally:
        a.kill()
        a.wait(timeout=10)
        a.stdout.close()  # type: ignore[union-attr]
    assert any("ABORTED 2" in line for line in lines), lines
    committed_before = sum(int(line.split()[2]) for line in lines if line.startswith("COMMITTED"))
    assert committed_before > 0
    # its open transaction holds read_committed consumers back, and survives a broker restart
    own_broker.restart()
    assert len(read(bs, out, 2, "read_committed", committed_before, settle_s=1.0)) == committed_before
    assert len(read(bs, out, 2, "read_uncommitted", committed_before + 1, settle_s=1.0)) > committed_before

    # B, with the same transactional.id, fences A, aborts what A left open and finishes the job
    b = worker(bs, inp, out, "eos-tid")
    try:
        output, _ = b.communicate(timeout=90)
    finally:
        b.kill()
    assert b.returncode == 0 and "DONE" in output, output

    committed = read(bs, out, 2, "read_committed", 100)
    assert sorted(m.key() for m in committed) == sorted(b"%d:%d" % (i % 2, i // 2) for i in range(100))
    for m in committed:
        part, offset = map(int, m.key().split(b":"))
        assert m.value() == b"EVENT-%03d" % (offset * 2 + part)
    everything = read(bs, out, 2, "read_uncommitted", 101)
    assert len(everything) > 100  # the aborted and the fenced transactions' records are there too
    assert "aborting the transaction of 'eos-tid'" in own_broker.output()


def test_an_abandoned_transaction_stops_blocking_once_it_times_out(tmp_path: Path, topic_name: str) -> None:
    settings = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "200"}
    with BrokerProcess(tmp_path / "data", settings=settings) as broker:
        bs = broker.bootstrap
        create(bs, topic_name, 1)
        zombie = Producer({"bootstrap.servers": bs, "transactional.id": "zombie", "transaction.timeout.ms": 2000})
        zombie.init_transactions(TIMEOUT)
        zombie.begin_transaction()
        zombie.produce(topic_name, value=b"never committed")
        assert zombie.flush(TIMEOUT) == 0
        # the zombie goes quiet; another producer commits after it
        other = Producer({"bootstrap.servers": bs, "transactional.id": "other"})
        other.init_transactions(TIMEOUT)
        other.begin_transaction()
        other.produce(topic_name, value=b"committed")
        other.commit_transaction(TIMEOUT)
        got = read(bs, topic_name, 1, "read_committed", 1, settle_s=0.5)
        assert [m.value() for m in got] == [b"committed"]
        assert "open longer than its timeout of 2000 ms" in broker.output()
        # the zombie is fenced: its commit fails
        try:
            zombie.commit_transaction(TIMEOUT)
        except Exception as e:  # noqa: BLE001 - librdkafka reports the fencing as a KafkaException
            assert "fenced" in str(e).lower() or "epoch" in str(e).lower(), e
        else:
            raise AssertionError("the zombie's commit succeeded after its transaction timed out")
        del zombie, other


def test_admin_apis_describe_producers_and_transactions(broker: BrokerProcess, topic_name: str) -> None:
    from tests.integration.test_bad_input import connect, decode_response, kio_request, read_frame
    from kio.schema.describe_producers.v0 import request as dp
    from kio.schema.describe_transactions.v0 import request as dt
    from kio.schema.list_transactions.v1 import request as lt

    create(broker.bootstrap, topic_name, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "described"})
    p.init_transactions(TIMEOUT)
    p.begin_transaction()
    p.produce(topic_name, value=b"x")
    assert p.flush(TIMEOUT) == 0
    s = connect(broker)
    try:
        s.sendall(kio_request(61, 0, 1, dp.DescribeProducersRequest(
            topics=(dp.TopicRequest(name=topic_name, partition_indexes=(0,)),))))
        producers = decode_response(61, 0, read_frame(s)).topics[0].partitions[0].active_producers
        assert len(producers) == 1 and producers[0].current_txn_start_offset == 0
        s.sendall(kio_request(65, 0, 2, dt.DescribeTransactionsRequest(transactional_ids=("described",))))
        states = decode_response(65, 0, read_frame(s)).transaction_states
        assert states[0].transaction_state == "Ongoing" and states[0].producer_id == producers[0].producer_id
        assert [t.topic for t in states[0].topics] == [topic_name]
        s.sendall(kio_request(65, 0, 4, dt.DescribeTransactionsRequest(transactional_ids=("nope",))))
        # Kafka answers an unknown id with start time -1, which kio will not decode: read the
        # error code where it sits (correlation id, tags, throttle time, array length)
        assert struct.unpack_from(">h", read_frame(s), 4 + 1 + 4 + 1)[0] == 105  # TRANSACTIONAL_ID_NOT_FOUND
        s.sendall(kio_request(66, 1, 3, lt.ListTransactionsRequest(state_filters=("Ongoing",),
                                                                    producer_id_filters=())))
        listed = decode_response(66, 1, read_frame(s)).transaction_states
        assert [t.transactional_id for t in listed] == ["described"]
    finally:
        s.close()
    p.abort_transaction(TIMEOUT)


def test_aiokafka_and_kafka_python_transactions(broker: BrokerProcess, topic_name: str) -> None:
    """The other Python clients speak the oldest versions of the transaction APIs (v0):
    aiokafka commits and aborts with offsets in the transaction, kafka-python commits and aborts,
    and both read_committed consumers see exactly the committed records."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka import TopicPartition as ATP
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTP

    create(broker.bootstrap, topic_name, 1)

    async def with_aiokafka() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="aio-tid")
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send_and_wait(topic_name, b"aio-committed")
                await producer.send_offsets_to_transaction({ATP(topic_name, 0): 1}, "aio-group")
            await producer.begin_transaction()
            await producer.send_and_wait(topic_name, b"aio-aborted")
            await producer.abort_transaction()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, isolation_level="read_committed",
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([ATP(topic_name, 0)])
            await consumer.seek_to_beginning()
            got: list[bytes] = []
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                got += [m.value for ms in batch.values() for m in ms]
                if len(got) >= 1 and not batch:
                    break
            return got
        finally:
            await consumer.stop()

    assert asyncio.run(asyncio.wait_for(with_aiokafka(), 60)) == [b"aio-committed"]

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="kp-tid")
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic_name, b"kp-committed")
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send(topic_name, b"kp-aborted")
        producer.flush()
        producer.abort_transaction()
    finally:
        producer.close(timeout=TIMEOUT)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, isolation_level="read_committed",
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=3000)
    try:
        consumer.assign([KTP(topic_name, 0)])
        consumer.seek_to_beginning()
        assert [m.value for m in consumer] == [b"aio-committed", b"kp-committed"]
    finally:
        consumer.close()
