"""A stream processor: reads each event from one topic, transforms it, and writes the result
to another — consume, transform, produce.

    python examples/stream_processor.py [--source greetings] [--sink greetings-upper]

Run examples/producer.py into the source topic and examples/consumer.py on the sink topic to
see the pipeline. A source message is committed only after its result was written (acks=all),
so a crash never loses one: after a restart it is processed again (at-least-once).
"""

from __future__ import annotations

import argparse

from lifecycle import arguments, consume_until_stopped, describe, run

from tomyum.client import Kafka, Message


async def main(args: argparse.Namespace) -> int:
    kafka = Kafka(client_id="stream-processor", brokers=[args.bootstrap])
    producer = kafka.producer()
    await producer.connect()
    consumer = kafka.consumer(group_id=args.group)

    async def each_message(message: Message) -> None:
        # The transformation: upper-case the text, keep the key (and so the partitioning) and
        # the headers, and say who processed it.
        text = (message.value or b"").decode(errors="replace")
        result = text.upper()
        await producer.send(args.sink, messages=[{
            "key": message.key, "value": result,
            "headers": {**message.headers, "processed-by": "stream_processor.py"},
        }])
        print(f"processor: {describe(message, f'{text!r} -> {result!r}')}")

    try:
        return await consume_until_stopped(consumer, "processor", args.source, each_message=each_message)
    finally:
        await producer.disconnect()


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("--source", default="greetings", help="the topic to read")
    parser.add_argument("--sink", default="greetings-upper", help="the topic to write")
    parser.add_argument("--group", default="greetings-upper-processor")
    run(main, parser.parse_args())
