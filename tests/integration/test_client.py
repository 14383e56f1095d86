"""tomyum.client against a real broker: send, subscribe, run with each_message and each_batch,
the consumer's events (a handler that raises crashes it), commits on disconnect, and
from_beginning only where the group has no committed offset."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tomyum.client import Batch, ClientError, Consumer, ConsumerEvent, Kafka, Message
from tomyum.testing import BrokerProcess

T = TypeVar("T")
TIMEOUT = 30


@pytest.fixture
def bootstrap(tmp_path: Path) -> Iterator[str]:
    external = os.environ.get("TOMYUM_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    with BrokerProcess(tmp_path / "data", settings={"group.initial.rebalance.delay.ms": "0"}) as b:
        yield b.bootstrap


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def create(kafka: Kafka, topic: str, partitions: int = 1) -> None:
    admin = kafka.admin()
    await admin.connect()
    assert await admin.create_topics([{"topic": topic, "num_partitions": partitions}]) is True
    assert await admin.create_topics([{"topic": topic, "num_partitions": partitions}]) is False
    assert topic in await admin.list_topics()
    await admin.disconnect()


async def send_values(kafka: Kafka, topic: str, values: list[str]) -> None:
    producer = kafka.producer()
    await producer.connect()
    await producer.send(topic, messages=[{"value": v} for v in values])
    await producer.disconnect()


class Recorder:
    """Collects a consumer's events and the messages its handler took; ``until`` waits for a
    condition on them. The handler raises ``boom`` at value ``fail_on``, and disconnects
    after value ``stop_after``."""

    def __init__(self, consumer: Consumer, *, fail_on: bytes | None = None, stop_after: bytes | None = None) -> None:
        self.consumer = consumer
        self.events: list[ConsumerEvent] = []
        self.messages: list[Message] = []
        self.batches: list[Batch] = []
        self.boom = RuntimeError(f"cannot handle {fail_on!r}")
        self._fail_on, self._stop_after = fail_on, stop_after
        self._changed = asyncio.Event()
        for name in consumer.events.ALL:
            consumer.on(name, self._event)

    def _event(self, event: ConsumerEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def each_message(self, message: Message) -> None:
        if self._fail_on is not None and message.value == self._fail_on:
            raise self.boom
        self.messages.append(message)
        self._changed.set()
        if self._stop_after is not None and message.value == self._stop_after:
            await self.consumer.disconnect()  # returns at once; the loop stops after this message

    def each_batch(self, batch: Batch) -> None:  # a plain function works as well
        self.batches.append(batch)
        self.messages.extend(batch.messages)
        self._changed.set()

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    async def until(self, done: Any) -> None:
        async def wait() -> None:
            while not done():
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(wait(), TIMEOUT)


async def started(kafka: Kafka, group: str, topic: str, *, from_beginning: bool = True, batches: bool = False,
                  fail_on: bytes | None = None, stop_after: bytes | None = None) -> Recorder:
    """A consumer of ``group`` running on ``topic``, recorded."""
    rec = Recorder(kafka.consumer(group_id=group), fail_on=fail_on, stop_after=stop_after)
    await rec.consumer.connect()
    await rec.consumer.subscribe(topic, from_beginning=from_beginning)
    if batches:
        await rec.consumer.run(each_batch=rec.each_batch)
    else:
        await rec.consumer.run(each_message=rec.each_message)
    return rec


def test_send_and_each_message(bootstrap: str, topic_name: str) -> None:
    async def scenario() -> None:
        kafka = Kafka(client_id="test-client", brokers=[bootstrap])
        await create(kafka, topic_name, partitions=2)
        producer = kafka.producer()
        await producer.connect()
        before = int(time.time() * 1000)
        sent = await producer.send(topic_name, messages=[
            {"key": f"k{i}", "value": f"v{i}".encode(), "headers": {"h": f"x{i}", "bin": b"\x00\x01"},
             "partition": i % 2} for i in range(8)
        ] + [{"value": None, "partition": 0}])
        await producer.disconnect()
        assert [(s.partition, s.offset) for s in sent] == [(i % 2, i // 2) for i in range(8)] + [(0, 4)]

        group = f"g-{uuid.uuid4().hex[:8]}"
        rec = await started(kafka, group, topic_name)
        await rec.until(lambda: len(rec.messages) == 9)
        await rec.consumer.disconnect()

        assert rec.types() == ["consumer.connect", "consumer.group_join", "consumer.disconnect"]
        join = rec.events[1].payload
        assert join["group_id"] == group and join["member_id"]
        assert join["member_assignment"] == {topic_name: [0, 1]}
        by_partition = {p: [m for m in rec.messages if m.partition == p] for p in (0, 1)}
        assert [m.offset for m in by_partition[0]] == [0, 1, 2, 3, 4]
        assert [m.offset for m in by_partition[1]] == [0, 1, 2, 3]
        m = by_partition[1][2]
        assert (m.topic, m.key, m.value, dict(m.headers)) == (topic_name, b"k5", b"v5", {"h": b"x5", "bin": b"\x00\x01"})
        assert before - 1000 <= m.timestamp <= int(time.time() * 1000)
        tombstone = by_partition[0][4]
        assert (tombstone.key, tombstone.value, dict(tombstone.headers)) == (None, None, {})

    run(scenario())


def test_each_batch_commits_and_from_beginning(bootstrap: str, topic_name: str) -> None:
    async def scenario() -> None:
        kafka = Kafka(brokers=[bootstrap])
        group = f"g-{uuid.uuid4().hex[:8]}"
        await send_values(kafka, topic_name, [f"m{i}" for i in range(6)])  # the topic is auto-created

        rec = await started(kafka, group, topic_name, batches=True)
        await rec.until(lambda: len(rec.messages) == 6)
        await rec.consumer.disconnect()  # commits offset 6
        assert all(b.topic == topic_name and b.partition == 0 for b in rec.batches)
        assert [m.offset for b in rec.batches for m in b.messages] == list(range(6))
        assert all(b.last_offset() - b.first_offset() + 1 == len(b.messages) for b in rec.batches)
        assert rec.batches[-1].high_watermark == 6

        # The same group resumes after its commit: from_beginning only applies without one.
        await send_values(kafka, topic_name, ["m6", "m7"])
        rec2 = await started(kafka, group, topic_name)
        await rec2.until(lambda: len(rec2.messages) == 2)
        await rec2.consumer.disconnect()
        assert [(m.offset, m.value) for m in rec2.messages] == [(6, b"m6"), (7, b"m7")]

        # A new group without from_beginning starts at the end: it sees only what comes after.
        # (Its end is looked up just after the join, so send until one message arrives.)
        rec3 = await started(kafka, f"{group}-latest", topic_name, from_beginning=False)
        await rec3.until(lambda: "consumer.group_join" in rec3.types())
        deadline = time.monotonic() + TIMEOUT
        while not rec3.messages and time.monotonic() < deadline:
            await send_values(kafka, topic_name, ["late"])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rec3.until(lambda: bool(rec3.messages)), 0.5)
        await rec3.consumer.disconnect()
        assert rec3.messages and all(m.value == b"late" and m.offset >= 8 for m in rec3.messages)

    run(scenario())


def test_a_handler_that_raises_crashes_the_consumer(bootstrap: str, topic_name: str) -> None:
    async def scenario() -> None:
        kafka = Kafka(brokers=[bootstrap])
        group = f"g-{uuid.uuid4().hex[:8]}"
        await send_values(kafka, topic_name, [f"m{i}" for i in range(5)])
        rec = await started(kafka, group, topic_name, fail_on=b"m2")
        await rec.until(lambda: "consumer.disconnect" in rec.types())
        assert rec.types() == ["consumer.connect", "consumer.group_join", "consumer.crash", "consumer.disconnect"]
        crash = rec.events[2].payload
        assert crash["error"] is rec.boom and crash["restart"] is False and crash["group_id"] == group
        assert [m.value for m in rec.messages] == [b"m0", b"m1"]
        await rec.consumer.disconnect()  # already closed by the crash: nothing to do
        assert rec.types().count("consumer.disconnect") == 1

        # m0 and m1 were committed when the crashed consumer closed; m2 was not.
        rec2 = await started(kafka, group, topic_name)
        await rec2.until(lambda: len(rec2.messages) == 3)
        await rec2.consumer.disconnect()
        assert [m.value for m in rec2.messages] == [b"m2", b"m3", b"m4"]

    run(scenario())


def test_disconnect_from_a_handler_then_connect_again(bootstrap: str, topic_name: str) -> None:
    async def scenario() -> None:
        kafka = Kafka(brokers=[bootstrap])
        await send_values(kafka, topic_name, [f"m{i}" for i in range(5)])
        rec = await started(kafka, f"g-{uuid.uuid4().hex[:8]}", topic_name, stop_after=b"m1")
        await rec.until(lambda: "consumer.disconnect" in rec.types())
        assert [m.value for m in rec.messages] == [b"m0", b"m1"]

        # The same consumer connects and runs again, from the offset committed on disconnect.
        await rec.consumer.connect()
        await rec.consumer.run(each_message=rec.each_message)
        await rec.until(lambda: len(rec.messages) == 5)
        await rec.consumer.disconnect()
        assert [m.value for m in rec.messages] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
        assert rec.types() == ["consumer.connect", "consumer.group_join", "consumer.disconnect"] * 2

    run(scenario())


def test_connect_fails_when_no_broker_answers() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def scenario() -> None:
        kafka = Kafka(brokers=[f"127.0.0.1:{port}"], connection_timeout_ms=500)
        consumer = kafka.consumer(group_id="nobody")
        rec = Recorder(consumer)
        with pytest.raises(ClientError) as e:
            await consumer.connect()
        assert "could not connect" in str(e.value)
        assert rec.events == []
        with pytest.raises(ClientError):
            await kafka.producer().connect()
        with pytest.raises(RuntimeError, match="not connected"):
            await consumer.run(each_message=rec.each_message)

    run(scenario())
