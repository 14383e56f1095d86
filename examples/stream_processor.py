"""A stream processor built with tomyum.streams: it reads each event from one topic,
transforms it, and writes the result to another — a topology run by KafkaStreams.

    python examples/stream_processor.py [--source greetings] [--sink greetings-upper]

Run examples/producer.py into the source topic and examples/consumer.py on the sink topic to
see the pipeline. The application id is the consumer group: its committed offsets say where a
restarted processor resumes (at-least-once; pass --exactly-once for transactions).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

from confluent_kafka.admin import AdminClient

from lifecycle import arguments, client_config
from tomyum.streams import Processor, Record, Serdes, StreamsBuilder, StreamsConfig
from tomyum.streams.runtime import KafkaStreams, State

#: the longest a stop waits for the broker to take the last commit (a gone broker would hold it)
CLOSE_TIMEOUT_S = 1.0


class UpperCase(Processor):
    """The transformation: upper-case the text, keep the key (and so the partitioning) and
    the headers, say who processed it, and pass the result on."""

    def process(self, record: Record[Any, Any]) -> None:
        text = record.value or ""
        result = text.upper()
        key = record.key.decode(errors="replace") if record.key is not None else "(none)"
        print(f"processor: {text!r} -> {result!r} (key {key}, partition {record.partition}, "
              f"offset {record.offset})", flush=True)
        headers = record.headers + (("processed-by", b"stream_processor.py"),)
        self.context.forward(Record(key=record.key, value=result, timestamp=record.timestamp, headers=headers))


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--source", default="greetings", help="the topic to read")
    parser.add_argument("--sink", default="greetings-upper", help="the topic to write")
    parser.add_argument("--group", default="greetings-upper-processor", help="the application id")
    parser.add_argument("--exactly-once", action="store_true", help="processing_guarantee=exactly_once_v2")
    args = parser.parse_args()

    builder = StreamsBuilder()
    (builder.stream(args.source, value_serde=Serdes.string())
        .process(UpperCase)
        .to(args.sink, value_serde=Serdes.string()))
    app = KafkaStreams(builder.build(), StreamsConfig(application_id=args.group), bootstrap_servers=args.bootstrap,
                       processing_guarantee="exactly_once_v2" if args.exactly_once else "at_least_once",
                       commit_interval_ms=100 if args.exactly_once else 1000, client_config=client_config(args))

    def on_state(new: State, old: State) -> None:
        if new is State.RUNNING:  # the line the demo waits for (see examples/lifecycle.py)
            topic = AdminClient({"bootstrap.servers": args.bootstrap, **client_config(args)}).list_topics(args.source, timeout=10)
            partitions = sorted(topic.topics[args.source].partitions)
            print(f"processor: joined group {args.group}, partitions {args.source}{partitions}", flush=True)
        else:
            print(f"processor: {new.value.lower().replace('_', ' ')}", flush=True)

    # A clean shutdown on Ctrl-C or SIGTERM: commit, then close. That needs the broker: if it
    # is gone, the close is given up after CLOSE_TIMEOUT_S (nothing is lost: the records not
    # committed are processed again after a restart), and a second Ctrl-C quits at once.
    stop = threading.Event()
    interrupts = 0

    def on_interrupt(*_: object) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            print("processor: quitting without waiting", flush=True)
            os._exit(130)
        stop.set()

    signal.signal(signal.SIGINT, on_interrupt)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    app.set_state_listener(on_state)
    def on_crash(error: BaseException) -> None:
        print(f"processor: crashed: {error}", flush=True)
        stop.set()

    app.set_uncaught_exception_handler(on_crash)
    app.start()
    # In slices: Python runs a signal handler in the main thread only, and a signal the kernel
    # hands to another thread would not wake a main thread blocked in one long wait.
    while not stop.wait(0.2):
        pass
    crashed = app.state is State.ERROR
    if not app.close(CLOSE_TIMEOUT_S):
        print(f"processor: the broker did not take the last commit within {CLOSE_TIMEOUT_S:g}s; "
              "stopped without it", flush=True)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
