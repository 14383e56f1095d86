"""confluent-kafka, kafka-python and aiokafka end to end against a real broker: create a
3-partition topic, produce keyed messages with headers, consume them back byte-identical and
in order per partition, list offsets (earliest, latest, by time), delete the topic."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import pytest

from tomyum.testing import BrokerProcess, wait_until

TIMEOUT = 20
Message = tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes]], int]  # p, offset, k, v, h, ts


def messages(n: int = 30) -> list[tuple[int, bytes | None, bytes, list[tuple[str, bytes]]]]:
    """(partition, key, value, headers); binary values, a null key and an empty value included."""
    out = []
    for i in range(n):
        key = None if i == 7 else f"key-{i % 5}".encode()
        value = b"" if i == 3 else bytes([i, 0, 255]) * (i + 1)
        out.append((i % 3, key, value, [("seq", str(i).encode()), ("bin", b"\x00\xff")]))
    return out


def check(sent: list, got: list[Message], latest: dict[int, int], by_time: dict[int, int]) -> None:
    want: dict[int, list] = defaultdict(list)
    for p, k, v, h in sent:
        want[p].append((k, v, h))
    have: dict[int, list[Message]] = defaultdict(list)
    for m in got:
        have[m[0]].append(m)
    assert set(have) == set(want)
    for p in want:
        assert [m[1] for m in have[p]] == list(range(len(want[p]))), f"offsets of partition {p}"
        assert [(m[2], m[3] or b"", m[4]) for m in have[p]] == [(k, v, h) for k, v, h in want[p]]
        assert latest[p] == len(want[p])
        first_ts = have[p][0][5]
        # by the timestamp of a partition's first record: that record (or an earlier one with it)
        assert by_time[p] == 0 and first_ts > 0


# confluent-kafka ----------------------------------------------------------------------------

def test_confluent_kafka(broker: BrokerProcess, topic_name: str) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 3, 1)])[topic_name].result(TIMEOUT)
    sent = messages()
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    for p, k, v, h in sent:
        producer.produce(topic_name, key=k, value=v, partition=p, headers=h)
    assert producer.flush(TIMEOUT) == 0

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic_name, p, 0) for p in range(3)])
    got: list[Message] = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < len(sent) and time.monotonic() < deadline:
        for m in consumer.consume(num_messages=100, timeout=1):
            assert m.error() is None, m.error()
            got.append((m.partition(), m.offset(), m.key(), m.value(), m.headers() or [], m.timestamp()[1]))
    latest = {p: consumer.get_watermark_offsets(TopicPartition(topic_name, p), timeout=TIMEOUT)[1] for p in range(3)}
    first_ts = min(m[5] for m in got)
    times = consumer.offsets_for_times([TopicPartition(topic_name, p, first_ts) for p in range(3)], timeout=TIMEOUT)
    consumer.close()
    check(sent, got, latest, {tp.partition: tp.offset for tp in times})

    admin.delete_topics([topic_name])[topic_name].result(TIMEOUT)
    wait_until(lambda: topic_name not in admin.list_topics(timeout=TIMEOUT).topics, TIMEOUT, what="topic gone")


# kafka-python ---------------------------------------------------------------------------------

def test_kafka_python(broker: BrokerProcess, topic_name: str) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT * 1000)
    admin.create_topics([NewTopic(topic_name, 3, 1)])
    sent = messages()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
    for p, k, v, h in sent:
        producer.send(topic_name, key=k, value=v, partition=p, headers=h)
    producer.flush(TIMEOUT)
    producer.close(TIMEOUT)

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=TIMEOUT * 1000,
                             enable_auto_commit=False)
    tps = [TopicPartition(topic_name, p) for p in range(3)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    got: list[Message] = []
    for m in consumer:
        got.append((m.partition, m.offset, m.key, m.value, list(m.headers), m.timestamp))
        if len(got) == len(sent):
            break
    latest = {tp.partition: o for tp, o in consumer.end_offsets(tps).items()}
    first_ts = min(m[5] for m in got)
    times = consumer.offsets_for_times({tp: first_ts for tp in tps})
    consumer.close()
    check(sent, got, latest, {tp.partition: ot.offset for tp, ot in times.items()})

    admin.delete_topics([topic_name])
    wait_until(lambda: topic_name not in admin.list_topics(), TIMEOUT, what="topic gone")
    admin.close()


# aiokafka -------------------------------------------------------------------------------------

def test_aiokafka(broker: BrokerProcess, topic_name: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def scenario() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(topic_name, 3, 1)])
        sent = messages()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        await producer.start()
        for p, k, v, h in sent:
            await producer.send(topic_name, key=k, value=v, partition=p, headers=h)
        await producer.flush()
        await producer.stop()

        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        await consumer.start()
        tps = [TopicPartition(topic_name, p) for p in range(3)]
        consumer.assign(tps)
        await consumer.seek_to_beginning()
        got: list[Message] = []
        while len(got) < len(sent):
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                got += [(m.partition, m.offset, m.key, m.value, list(m.headers), m.timestamp) for m in records]
        latest = {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
        first_ts = min(m[5] for m in got)
        times = await consumer.offsets_for_times({tp: first_ts for tp in tps})
        await consumer.stop()
        check(sent, got, latest, {tp.partition: ot.offset for tp, ot in times.items()})

        await admin.delete_topics([topic_name])
        deadline = time.monotonic() + TIMEOUT
        while topic_name in await admin.list_topics():
            assert time.monotonic() < deadline, "topic still listed after delete"
            await asyncio.sleep(0.05)
        await admin.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))


# the same records through every codec -----------------------------------------------------------

CODECS = ["gzip", "snappy", "lz4", "zstd"]


def compressible(codec: str) -> list[bytes]:
    return [f"{codec}-{i}-".encode() * 20 for i in range(50)]


def read_back(bootstrap: str, topic: str, count: int, client: str) -> list[bytes]:
    """The values of partition 0 of ``topic`` from the start, as ``client`` reads them."""
    if client == "confluent":
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g", "enable.auto.commit": False})
        c.assign([TopicPartition(topic, 0, 0)])
        got = [m.value() for m in c.consume(num_messages=count, timeout=TIMEOUT)]
        c.close()
        return got
    if client == "aiokafka":
        from aiokafka import AIOKafkaConsumer
        from aiokafka import TopicPartition as ATP

        async def consume() -> list[bytes]:
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
            await consumer.start()
            try:
                consumer.assign([ATP(topic, 0)])
                await consumer.seek_to_beginning()
                out: list[bytes] = []
                while len(out) < count:
                    batch = await consumer.getmany(timeout_ms=1000)
                    out += [m.value for ms in batch.values() for m in ms]
                return out
            finally:
                await consumer.stop()
        return asyncio.run(asyncio.wait_for(consume(), TIMEOUT))
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    kc = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=TIMEOUT * 1000)
    kc.assign([KTP(topic, 0)])
    kc.seek_to_beginning()
    got = []
    for m in kc:
        got.append(m.value)
        if len(got) == count:
            break
    kc.close()
    return got


@pytest.mark.parametrize("codec", CODECS)
def test_compressed_batches_read_back(broker: BrokerProcess, topic_name: str, codec: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.codec": codec, "linger.ms": 20})
    values = compressible(codec)
    for v in values:
        producer.produce(topic_name, value=v, key=b"k")
    assert producer.flush(TIMEOUT) == 0
    for client in ("confluent", "kafka-python"):
        assert read_back(broker.bootstrap, topic_name, len(values), client) == values, f"{codec} via {client}"


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_compression(broker: BrokerProcess, topic_name: str, codec: str) -> None:
    """kafka-python's producer compresses with ``codec``; librdkafka and kafka-python read back."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec, linger_ms=20)
    values = compressible(codec)
    for v in values:
        producer.send(topic_name, value=v, key=b"k", partition=0)
    producer.flush(TIMEOUT)
    producer.close(TIMEOUT)
    for client in ("confluent", "kafka-python"):
        assert read_back(broker.bootstrap, topic_name, len(values), client) == values, f"{codec} via {client}"


@pytest.mark.parametrize("codec", CODECS)
def test_aiokafka_compression(broker: BrokerProcess, topic_name: str, codec: str) -> None:
    """aiokafka's producer compresses with ``codec``; librdkafka and aiokafka read back."""
    from aiokafka import AIOKafkaProducer

    values = compressible(codec)

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec, linger_ms=20)
        await producer.start()
        try:
            sent = [await producer.send(topic_name, value=v, key=b"k", partition=0) for v in values]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    asyncio.run(asyncio.wait_for(produce(), TIMEOUT))
    for client in ("confluent", "aiokafka"):
        assert read_back(broker.bootstrap, topic_name, len(values), client) == values, f"{codec} via {client}"
    if isinstance(broker, BrokerProcess):
        # a connection aiokafka closed while its last fetch was being answered held the broker's
        # stop for its whole shutdown.timeout.ms (10 s), in 3 stops out of 4
        started = time.monotonic()
        assert broker.stop() == 0
        assert time.monotonic() - started < 5, "a closed client's connection held up the broker's stop"


def test_large_requests_and_responses(broker: BrokerProcess, topic_name: str) -> None:
    """Produce requests of several MiB (frames far larger than one socket read) and fetches
    returning as much; everything comes back intact."""
    import os

    from confluent_kafka import Consumer, Producer, TopicPartition

    values = [os.urandom(10 * 1024) for _ in range(600)]
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 50,
                         "batch.size": 1_000_000})
    for v in values:
        producer.produce(topic_name, value=v, partition=0)
    assert producer.flush(TIMEOUT) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g", "enable.auto.commit": False,
                  "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760})
    c.assign([TopicPartition(topic_name, 0, 0)])
    got: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < len(values) and time.monotonic() < deadline:
        got += [m.value() for m in c.consume(num_messages=1000, timeout=1) if m.error() is None]
    c.close()
    assert got == values


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_every_acks_level_stores_everything(broker: BrokerProcess, topic_name: str, acks: str) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": acks, "linger.ms": 5})
    values = [f"{acks}-{i}".encode() for i in range(100)]
    for v in values:
        producer.produce(topic_name, value=v, partition=0)
    assert producer.flush(TIMEOUT) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g", "enable.auto.commit": False})
    got: list[bytes] = []
    c.assign([TopicPartition(topic_name, 0, 0)])
    deadline = time.monotonic() + TIMEOUT
    while len(got) < len(values) and time.monotonic() < deadline:
        got += [m.value() for m in c.consume(num_messages=100, timeout=1) if m.error() is None]
    c.close()
    assert got == values


def test_log_append_time_and_message_max_bytes(broker: BrokerProcess, topic_name: str) -> None:
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaError, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1, config={
        "message.timestamp.type": "LogAppendTime", "max.message.bytes": "20000"})])[topic_name].result(TIMEOUT)
    errors: list[KafkaError] = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 1_000_000,
                         "linger.ms": 0})
    before = int(time.time() * 1000)
    producer.produce(topic_name, value=b"small", timestamp=1000)
    producer.flush(TIMEOUT)
    producer.produce(topic_name, value=b"x" * 50_000,
                     on_delivery=lambda err, msg: errors.append(err))
    producer.flush(TIMEOUT)
    assert errors and errors[0] is not None and errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g", "enable.auto.commit": False})
    c.assign([TopicPartition(topic_name, 0, 0)])
    msgs = c.consume(num_messages=1, timeout=TIMEOUT)
    low_high = c.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=TIMEOUT)
    c.close()
    assert [m.value() for m in msgs] == [b"small"]
    ts_type, ts = msgs[0].timestamp()
    assert ts_type == TIMESTAMP_LOG_APPEND_TIME and ts >= before  # the broker's time, not 1000
    assert low_high == (0, 1)  # the rejected batch left nothing behind
