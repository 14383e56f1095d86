"""A producer: sends events to a topic, one at a time, and says where each one was stored.

    python examples/producer.py [--topic greetings] [--count 20] [--bootstrap localhost:9092]

An event is a key, a value and optional headers. The topic is created on first use if the
broker allows it (auto.create.topics.enable, on by default).
"""

from __future__ import annotations

import argparse
import asyncio

from lifecycle import arguments, client_config, run

from tomyum.client import Kafka


async def main(args: argparse.Namespace) -> int:
    kafka = Kafka(client_id="producer", brokers=[args.bootstrap], config=client_config(args))
    producer = kafka.producer()
    await producer.connect()
    try:
        for i in range(args.count):
            value = f"hello tomyum #{i}"
            # Messages with the same key always go to the same partition, so they keep their order.
            [sent] = await producer.send(args.topic, messages=[
                {"key": f"user-{i % 4}", "value": value, "headers": {"source": "examples/producer.py"}},
            ])
            # send() returns once the broker has the message on disk (acks=all).
            print(f"sent {value!r} to partition {sent.partition} at offset {sent.offset}")
            await asyncio.sleep(args.interval)  # only to make the stream visible
    finally:
        await producer.disconnect()
    return 0


if __name__ == "__main__":
    parser = arguments(__doc__, topic="greetings", sends=True)
    run(main, parser.parse_args())
