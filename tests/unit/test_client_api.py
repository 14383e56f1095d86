"""tomyum.client's public surface, and what it checks before any I/O."""

from __future__ import annotations

import asyncio

import pytest

import tomyum.client
from tomyum.client import ConsumerEvent, Kafka


def test_exports() -> None:
    assert tomyum.client.__all__ == [
        "Admin", "Batch", "ClientError", "Consumer", "ConsumerEvent", "ConsumerEvents", "EachBatch",
        "EachMessage", "Kafka", "Message", "OutgoingMessage", "Producer", "PropertiesError", "RecordMetadata",
        "TopicSpec", "client_properties",
    ]
    for name in tomyum.client.__all__:
        assert getattr(tomyum.client, name) is not None


def test_brokers_is_a_list() -> None:
    with pytest.raises(ValueError, match="list of host:port"):
        Kafka(brokers="localhost:9092")  # type: ignore[arg-type]


def test_listeners() -> None:
    consumer = Kafka(brokers=["127.0.0.1:1"]).consumer(group_id="g")
    with pytest.raises(ValueError, match="unknown event 'consumer.joined'"):
        consumer.on("consumer.joined", print)
    seen: list[str] = []

    async def async_listener(event: ConsumerEvent) -> None:
        seen.append("async " + event.type)

    def failing(event: ConsumerEvent) -> None:
        raise RuntimeError("a listener that fails does not stop the others")

    remove = consumer.on(consumer.events.CONNECT, lambda e: seen.append(e.type))
    consumer.on(consumer.events.CONNECT, failing)
    consumer.on(consumer.events.CONNECT, async_listener)
    asyncio.run(consumer._emitter.emit(consumer.events.CONNECT, {}))
    assert seen == ["consumer.connect", "async consumer.connect"]
    remove()
    asyncio.run(consumer._emitter.emit(consumer.events.CONNECT, {}))
    assert seen[2:] == ["async consumer.connect"]


def test_calls_before_connect_and_bad_arguments() -> None:
    kafka = Kafka(brokers=["127.0.0.1:1"])

    async def scenario() -> None:
        with pytest.raises(RuntimeError, match="not connected"):
            await kafka.producer().send("t", messages=[{"value": "x"}])
        with pytest.raises(TypeError, match="value must be str, bytes or None"):
            await kafka.producer().send("t", messages=[{"value": 3}])  # type: ignore[typeddict-item]
        consumer = kafka.consumer(group_id="g")
        await consumer.subscribe("t")
        with pytest.raises(RuntimeError, match="not connected"):
            await consumer.run(each_message=print)
        await consumer.disconnect()  # nothing to do

    asyncio.run(scenario())
