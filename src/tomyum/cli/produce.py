"""``tomyum produce TOPIC``: one record per input line, from stdin or a file, as
``kafka-console-producer.sh`` and ``kcat -P`` send them (acks=all).

Lines are sent as they are read, so an interactive session sends each line at once. A bad
line (no key separator, not JSON with ``--json``) stops the input there: what came before it
is delivered and counted, and the error names the line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn

from tomyum.cli.common import DEFAULT_BOOTSTRAP, DEFAULT_TIMEOUT, CommandConfig, Bootstrap, CliError, Timeout, say
from tomyum.cli.common import TopicArgument, TopicOption, check_partitions, client_config, new_client, console, describe_error
from tomyum.cli.common import one_topic, topic_metadata
from tomyum.cli.parsing import parse_pairs

if TYPE_CHECKING:
    from confluent_kafka import KafkaError, Message, Producer

PROGRESS_EVERY = 1000  # lines between progress updates
MIN_DELIVERY_TIMEOUT = 30.0  # seconds a record may wait in the local queue behind a large input


class _Deliveries:
    """Counts acknowledged records and keeps the first failure."""

    def __init__(self) -> None:
        self.delivered = 0
        self.error: KafkaError | None = None

    def __call__(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.delivered += 1
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
    with _input(file) as stream, _progress(file) as progress:
        task = progress.add_task("producing", total=file.stat().st_size if file else None) if progress else None
        try:
            for number, line in enumerate(_lines(stream), start=1):
                key, value = _split(line, number, separator, json_values)
                _send(producer, topic, value, key, partition, record_headers, deliveries)
                if progress is not None and task is not None and number % PROGRESS_EVERY == 0:
                    progress.update(task, completed=stream.tell() if file else None,
                                    description=f"{number} lines")
        except CliError as e:
            bad_line = e
        except KeyboardInterrupt:
            pass
        undelivered = producer.flush(delivery_timeout)
    if deliveries.error is not None:
        raise CliError(f"cannot produce to {topic!r}: {describe_error(deliveries.error)} "
                       f"({deliveries.delivered} delivered)")
    if undelivered:
        raise CliError(f"{undelivered} records to {topic!r} were not delivered within {delivery_timeout:g}s "
                       f"({deliveries.delivered} delivered)")
    count = f"{deliveries.delivered} record{'s' if deliveries.delivered != 1 else ''}"
    if bad_line is not None:
        raise CliError(f"{bad_line}; the {count} before it were produced")
    say(f"produced {count} to {topic}")


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    # readline rather than iteration: an interactive stdin then yields each line as it is typed.
    for line in iter(stream.readline, b""):
        yield line[:-1] if line.endswith(b"\n") else line


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
