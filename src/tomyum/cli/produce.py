"""``tomyum produce TOPIC``: one record per input line, from stdin or a file, as
``kafka-console-producer.sh`` and ``kcat -P`` send them (acks=all).

Lines are sent as they are read, so an interactive session sends each line at once. A bad
line (no key separator, not JSON with ``--json``) stops the input there: what came before it
is delivered and counted, and the error names the line.

Typed at a terminal, it says how to use it in one line, shows a prompt (``orders> ``) on stderr,
and says at once, in one line, when the broker goes away (and when it is back): records typed
meanwhile wait for it. Ctrl-D finishes; Ctrl-C stops, giving undelivered records
``INTERRUPT_FLUSH_S`` more to leave, and says how many did not.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn

from tomyum.cli.common import DEFAULT_BOOTSTRAP, DEFAULT_TIMEOUT, CommandConfig, Bootstrap, CliError, Timeout, say
from tomyum.cli.common import TopicArgument, TopicOption, check_partitions, client_config, new_client, console, describe_error
from tomyum.cli.common import clear_failure, last_failure, one_topic, refused, topic_metadata
from tomyum.cli.parsing import parse_pairs

if TYPE_CHECKING:
    from confluent_kafka import KafkaError, Message, Producer

PROGRESS_EVERY = 1000  # lines between progress updates
MIN_DELIVERY_TIMEOUT = 30.0  # seconds a record may wait in the local queue behind a large input
INTERRUPT_FLUSH_S = 1.5  # after Ctrl-C, how long records still queued may take to leave
WATCH_EVERY_S = 0.2  # how often an interactive session looks whether the broker is still there


class _Deliveries:
    """Counts acknowledged records and keeps the first failure."""

    def __init__(self) -> None:
        self.delivered = 0
        self.error: KafkaError | None = None

    def __call__(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.delivered += 1
            clear_failure()  # the broker answered
        elif self.error is None:
            self.error = error


def produce(
    topic_argument: TopicArgument = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", exists=True, dir_okay=False,
                                              help="read lines from FILE instead of stdin")] = None,
    key_separator: Annotated[str | None, typer.Option(
        "--key-separator", "-K", metavar="SEP", help="each line is KEY<SEP>VALUE")] = None,
    headers: Annotated[list[str], typer.Option("--header", "-H", metavar="KEY=VALUE",
                                               help="a header on every record (repeatable)")] = [],  # noqa: B006
    partition: Annotated[int | None, typer.Option("--partition", "-p", min=0,
                                                  help="send to this partition (default: by key)")] = None,
    json_values: Annotated[bool, typer.Option("--json", help="each value must be a JSON document")] = False,
    topic_option: TopicOption = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Send lines from stdin or a file as records."""
    from confluent_kafka import Producer

    topic = one_topic(topic_argument, topic_option)
    record_headers = [(k, v.encode()) for k, v in parse_pairs(headers, "--header").items()]
    separator = key_separator.encode() if key_separator else None
    delivery_timeout = max(timeout, MIN_DELIVERY_TIMEOUT)
    producer = new_client(Producer, client_config(bootstrap, timeout, command_config, **{
        "acks": "all", "linger.ms": 5, "message.timeout.ms": int(delivery_timeout * 1000)}))
    known = topic_metadata(producer, bootstrap, timeout, topic, create=True).partitions  # as Kafka's producers do
    if partition is not None and known:
        check_partitions(topic, known, [partition])
    deliveries = _Deliveries()
    bad_line: CliError | None = None
    interrupted = False
    typed = file is None and sys.stdin.isatty()
    watch = _BrokerWatch(producer, bootstrap, f"{topic}> ") if typed else None
    with _input(file) as stream, _progress(file) as progress, watch or nullcontext():
        task = progress.add_task("producing", total=file.stat().st_size if file else None) if progress else None
        try:
            for number, line in enumerate(_lines(stream, watch.prompt if watch else None), start=1):
                key, value = _split(line, number, separator, json_values)
                _send(producer, topic, value, key, partition, record_headers, deliveries)
                if progress is not None and task is not None and number % PROGRESS_EVERY == 0:
                    progress.update(task, completed=stream.tell() if file else None,
                                    description=f"{number} lines")
        except CliError as e:
            bad_line = e
        except KeyboardInterrupt:
            interrupted = True
        if watch is not None:
            watch.finish()
        undelivered = producer.flush(INTERRUPT_FLUSH_S if interrupted else delivery_timeout)
    if deliveries.error is not None:
        raise CliError(f"cannot produce to {topic!r}: {describe_error(deliveries.error)} "
                       f"({deliveries.delivered} delivered)")
    if undelivered:
        within = INTERRUPT_FLUSH_S if interrupted else delivery_timeout
        was = "record was" if undelivered == 1 else "records were"
        raise CliError(f"{undelivered} {was} not delivered to {topic!r} within {within:g}s "
                       f"({deliveries.delivered} delivered)")
    count = f"{deliveries.delivered} record{'s' if deliveries.delivered != 1 else ''}"
    if bad_line is not None:
        raise CliError(f"{bad_line}; the {count} before it were produced")
    say(f"produced {count} to {topic}")


def _lines(stream: IO[bytes], prompt: Callable[[], None] | None = None) -> Iterator[bytes]:
    # readline rather than iteration: an interactive stdin then yields each line as it is typed.
    while True:
        if prompt is not None:
            prompt()
        line = stream.readline()
        if not line:
            return
        yield line[:-1] if line.endswith(b"\n") else line


class _BrokerWatch:
    """For records typed at a terminal: a one-line hint, a prompt, and a thread that serves the
    producer (deliveries, librdkafka's log) while the person types, saying at once, in one line,
    when the broker goes away and when it is back."""

    def __init__(self, producer: Producer, bootstrap: str, prompt: str) -> None:
        self.producer = producer
        self.bootstrap = bootstrap
        self._prompt = prompt
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="broker-watch", daemon=True)
        self.gone = False

    def __enter__(self) -> _BrokerWatch:
        self._write("type records, one per line; Ctrl-D to finish, Ctrl-C to stop\n")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def finish(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self._write("\n")  # after Ctrl-D or Ctrl-C at the prompt: what follows starts a line

    def prompt(self) -> None:
        self._write(self._prompt)

    def _write(self, text: str) -> None:
        with self._lock:
            sys.stderr.write(text)
            sys.stderr.flush()

    def _run(self) -> None:
        # Ctrl-C is the main thread's: a signal the kernel handed to this thread would leave the
        # main thread blocked in its read of the terminal.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        while not self._stop.wait(WATCH_EVERY_S):
            self.producer.poll(0)
            gone = refused(last_failure())
            if gone == self.gone:
                continue
            self.gone = gone
            news = (f"the broker at {self.bootstrap} is gone (connection refused); what you type waits for it "
                    "to come back" if gone else f"the broker at {self.bootstrap} is back")
            self._write(f"\n{news}\n{self._prompt}")


def _split(line: bytes, number: int, separator: bytes | None, json_values: bool) -> tuple[bytes | None, bytes]:
    line = line.removesuffix(b"\r")
    key: bytes | None = None
    value = line
    if separator is not None:
        key, sep, value = line.partition(separator)
        if not sep:
            raise CliError(f"line {number} has no key separator {separator.decode()!r}")
    if json_values:
        try:
            json.loads(value)
        except ValueError as e:
            raise CliError(f"line {number} is not JSON: {e}") from None
    return key, value


def _send(producer: Producer, topic: str, value: bytes, key: bytes | None, partition: int | None,
          headers: list[tuple[str, bytes]], on_delivery: _Deliveries) -> None:
    options: dict[str, Any] = {"key": key, "headers": headers or None, "on_delivery": on_delivery}
    if partition is not None:
        options["partition"] = partition
    while True:
        try:
            producer.produce(topic, value, **options)
            break
        except BufferError:  # the local queue is full: let deliveries drain it
            producer.poll(0.1)
    producer.poll(0)


def _input(file: Path | None) -> AbstractContextManager[IO[bytes]]:
    return open(file, "rb") if file is not None else nullcontext(sys.stdin.buffer)


def _progress(file: Path | None) -> AbstractContextManager[Progress | None]:
    """A progress bar on stderr when it is a terminal and the input is not typed in by hand."""
    err = console(stderr=True)
    if not err.is_terminal or (file is None and sys.stdin.isatty()):
        return nullcontext(None)
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if file is not None:
        columns += [BarColumn(), DownloadColumn()]
    return Progress(*columns, console=err, transient=True)
