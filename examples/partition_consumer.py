"""A partition-aware consumer: reads in batches, one partition at a time, and says which
partitions the group gave it.

    python examples/partition_consumer.py NAME [--group orders-workers] [--topic orders]

Run two with the same group on a 2-partition topic: the group gives each one partition, and
each message is read by exactly one of them. Stop one (Ctrl-C) and the other is given both.
A third would get nothing: a partition is read by one member of a group at a time.
"""

from __future__ import annotations

import argparse

from lifecycle import arguments, client_config, consume_until_stopped, describe, run

from tomyum.client import Batch, Kafka


async def main(args: argparse.Namespace) -> int:
    kafka = Kafka(client_id=f"partition-consumer-{args.name}", brokers=[args.bootstrap], config=client_config(args))

    # Create the topic with its partitions if it is not there yet (a consumer subscribing to a
    # missing topic would otherwise create it with the broker's default, one partition).
    admin = kafka.admin()
    await admin.connect()
    await admin.create_topics([{"topic": args.topic, "num_partitions": args.partitions}])
    await admin.disconnect()

    # each_batch receives the messages fetched from one partition together, in order.
    async def each_batch(batch: Batch) -> None:
        lag = batch.high_watermark - batch.last_offset() - 1 if batch.high_watermark >= 0 else "?"
        print(f"{args.name}: batch of {len(batch.messages)} from partition {batch.partition} "
              f"(offsets {batch.first_offset()}..{batch.last_offset()}, lag {lag})")
        for message in batch.messages:
            print(f"{args.name}: {describe(message)}")

    consumer = kafka.consumer(group_id=args.group)
    return await consume_until_stopped(consumer, args.name, args.topic, each_batch=each_batch)


if __name__ == "__main__":
    parser = arguments(__doc__, topic="orders")
    parser.add_argument("name", help="a name to print in front of each line")
    parser.add_argument("--group", default="orders-workers")
    parser.add_argument("--partitions", type=int, default=2, help="partitions to create the topic with")
    run(main, parser.parse_args())
