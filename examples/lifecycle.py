"""What the programs in these examples share: their command line, and for consumers what
they do around their handler — report the consumer's events, stop on Ctrl-C (SIGINT) or
SIGTERM, and disconnect cleanly.

The lines printed here are also what `tomyum demo` reads to tell what each consumer did, so
keep their shape if you change them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from tomyum.client import ClientError, Consumer, ConsumerEvent, EachBatch, EachMessage, Message, client_properties


def arguments(doc: str | None, *, topic: str | None = None, sends: bool = False) -> argparse.ArgumentParser:
    """A parser with the program's docstring as help, --bootstrap and --command-config; --topic
    if the program has a ``topic`` (its default); --count and --interval if it ``sends`` messages."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default="localhost:9092", help="a broker's host:port")
    parser.add_argument("--command-config", metavar="FILE",
                        help="Kafka's client properties file, for a secured broker (security.protocol, sasl.*, ssl.*)")
    if topic:
        parser.add_argument("--topic", default=topic)
    if sends:
        parser.add_argument("--count", type=int, default=20, help="how many messages to send")
        parser.add_argument("--interval", type=float, default=0.2, help="seconds between messages")
    return parser


def client_config(args: argparse.Namespace) -> dict[str, str]:
    """The client settings of --command-config (Kafka's client properties, as librdkafka names
    them), or none: what a program gives ``Kafka(config=...)`` to talk to a secured broker."""
    return client_properties(args.command_config) if args.command_config else {}


def run(main: Callable[[argparse.Namespace], Coroutine[Any, Any, int]], args: argparse.Namespace) -> NoReturn:
    """Run ``main(args)`` and exit with its status (130 after a Ctrl-C it did not handle)."""
    try:
        sys.exit(asyncio.run(main(args)))
    except KeyboardInterrupt:  # main's `finally` blocks have run: clients are disconnected
        sys.exit(130)


def describe(message: Message, text: str | None = None) -> str:
    """One line for a message: its value (or ``text``), key, partition and offset."""
    value = message.value.decode(errors="replace") if message.value is not None else "(null)"
    key = message.key.decode(errors="replace") if message.key is not None else "(none)"
    return f"{text or value} (key {key}, partition {message.partition}, offset {message.offset})"


async def consume_until_stopped(consumer: Consumer, name: str, topic: str, *,
                                each_message: EachMessage | None = None,
                                each_batch: EachBatch | None = None) -> int:
    """Consume ``topic`` from the beginning until SIGINT, SIGTERM or a crash; returns the exit
    status (0 after a signal, 1 after a crash, 2 if no broker answered)."""
    stop = asyncio.Event()
    crashes: list[ConsumerEvent] = []

    # Events say what the client is doing. The group decides which partitions each member
    # reads; `consumer.group_join` comes after every such decision (a rebalance).
    def on_join(event: ConsumerEvent) -> None:
        assignment = event.payload["member_assignment"]
        partitions = ", ".join(f"{t}{ps}" for t, ps in assignment.items()) or "none"
        print(f"{name}: joined group {event.payload['group_id']}, partitions {partitions}")

    def on_crash(event: ConsumerEvent) -> None:
        # A handler raised (or the client hit a fatal error). The consumer has stopped and left
        # the group; the message that failed was not committed, so the group will read it again.
        crashes.append(event)
        print(f"{name}: crashed: {event.payload['error']!r}")
        stop.set()

    consumer.on(consumer.events.CONNECT, lambda event: print(f"{name}: connected"))
    consumer.on(consumer.events.GROUP_JOIN, on_join)
    consumer.on(consumer.events.CRASH, on_crash)
    consumer.on(consumer.events.DISCONNECT, lambda event: print(f"{name}: disconnected"))

    # Graceful shutdown: a signal only sets `stop`; we then disconnect, which commits the
    # offsets handled so far and leaves the group at once (the others take over our partitions
    # without waiting for our session to time out). That needs the broker: if it is gone,
    # disconnect waits for it up to the session timeout, and a second Ctrl-C quits at once.
    interrupts = 0

    def on_interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            print(f"{name}: quitting without waiting")
            os._exit(130)
        stop.set()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    try:
        await consumer.connect()
    except ClientError as e:
        print(f"{name}: {e}")
        return 2
    await consumer.subscribe(topic, from_beginning=True)
    await consumer.run(each_message=each_message, each_batch=each_batch)
    await stop.wait()
    await consumer.disconnect()
    return 1 if crashes else 0
