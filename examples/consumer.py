"""A consumer: one member of a consumer group, printing each message it receives.

    python examples/consumer.py GROUP_ID NAME [--topic greetings] [--bootstrap localhost:9092]

Start two with the same GROUP_ID and they share the topic's partitions between them; start
two with different GROUP_IDs and each receives every message. NAME only tells them apart in
your terminals. Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import argparse

from lifecycle import arguments, client_config, consume_until_stopped, describe, run

from tomyum.client import Kafka, Message


async def main(args: argparse.Namespace) -> int:
    kafka = Kafka(client_id=f"consumer-{args.name}", brokers=[args.bootstrap], config=client_config(args))
    consumer = kafka.consumer(group_id=args.group_id)

    # Called once per message, in offset order within a partition. When it returns, the
    # message counts as handled and its offset is committed shortly after.
    async def each_message(message: Message) -> None:
        print(f"{args.name}: {describe(message)}")

    return await consume_until_stopped(consumer, args.name, args.topic, each_message=each_message)


if __name__ == "__main__":
    parser = arguments(__doc__, topic="greetings")
    parser.add_argument("group_id", help="the consumer group to join")
    parser.add_argument("name", help="a name to print in front of each line")
    run(main, parser.parse_args())
