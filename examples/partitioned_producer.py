"""A partition-aware producer: makes sure the topic has N partitions, then sends message i to
partition i % N, so each partition gets its share.

    python examples/partitioned_producer.py [--topic orders] [--partitions 2] [--count 20]

A partition is an ordered, append-only log; a topic is a set of them. Without an explicit
partition, the key decides (the same key, the same partition).
"""

from __future__ import annotations

import argparse
import asyncio

from lifecycle import arguments, client_config, run

from tomyum.client import Kafka


async def main(args: argparse.Namespace) -> int:
    kafka = Kafka(client_id="partitioned-producer", brokers=[args.bootstrap], config=client_config(args))

    # An admin client creates the topic with the partitions we want (False: it existed).
    admin = kafka.admin()
    await admin.connect()
    created = await admin.create_topics([{"topic": args.topic, "num_partitions": args.partitions}])
    print(f"topic {args.topic} {'created' if created else 'exists'} ({args.partitions} partitions asked)")
    await admin.disconnect()

    producer = kafka.producer()
    await producer.connect()
    try:
        for i in range(args.count):
            partition = i % args.partitions
            [sent] = await producer.send(args.topic, messages=[
                {"key": f"order-{i}", "value": f"order #{i}", "partition": partition},
            ])
            print(f"sent 'order #{i}' to partition {sent.partition} at offset {sent.offset}")
            await asyncio.sleep(args.interval)
    finally:
        await producer.disconnect()
    return 0


if __name__ == "__main__":
    parser = arguments(__doc__, topic="orders", sends=True)
    parser.add_argument("--partitions", type=int, default=2)
    run(main, parser.parse_args())
