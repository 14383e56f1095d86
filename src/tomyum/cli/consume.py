"""``tomyum consume TOPIC``: records to stdout, as ``kafka-console-consumer.sh`` and ``kcat -C``
print them, until ``-n`` records, the end (``--no-follow``), Ctrl-C or SIGTERM.

Without ``--group`` the consumer reads the partitions directly (assign) and commits nothing;
``--from`` says where, the end by default. With ``--group`` it joins the group and commits what
it has printed; it starts where the group's committed offsets are, and where it has none at
``--from beginning|end`` (auto.offset.reset; the beginning by default, so that a new group reads
what is there), while an offset, ``-N`` or a time overrides the committed offsets of the
partitions it is assigned. With ``-n`` it stops after that many records or at the end of the
log, whichever comes first, unless ``--follow`` says to wait for more.
"""

from __future__ import annotations

import base64
import enum
import json
import os
import signal
import sys
import threading
import uuid
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from tomyum.cli.common import DEFAULT_BOOTSTRAP, DEFAULT_TIMEOUT, CommandConfig, Bootstrap, CliError, Timeout, check_partitions
from tomyum.cli.common import TopicArgument, TopicOption, client_config, console, describe_error, kafka_error, new_client
from tomyum.cli.common import clear_failure, last_failure, one_topic, refused, topic_metadata
from tomyum.cli.parsing import POSITION_HELP, Position, parse_position

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, TopicPartition

BATCH = 500  # records taken from the consumer at a time
CLOSE_GRACE_S = 1.0  # after Ctrl-C, how long committing and leaving the group may take (the broker may be
# gone): with the loop's half-second poll, an exit within 2 s of Ctrl-C


class Format(str, enum.Enum):
    value = "value"
    kv = "kv"
    json = "json"


def consume(
    topic_argument: TopicArgument = None,
    start: Annotated[str | None, typer.Option("--from", "-o", metavar="POSITION",
                                              help=f"where to start: {POSITION_HELP} [default: the end; in a new group, "
                                                   "the beginning]",
                                              show_default=False)] = None,
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="the same as --from beginning",
                                                 show_default=False)] = False,
    topic_option: TopicOption = None,
    group: Annotated[str | None, typer.Option("--group", "-g", help="consume as a member of GROUP and commit")]
    = None,
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="stop after N records")] = None,
    output: Annotated[Format, typer.Option("--format", help="value, kv (key SEP value; null for none) or json "
                                                            "(with metadata; JSON values as JSON)")]
    = Format.value,
    key_separator: Annotated[str, typer.Option("--key-separator", "-K", metavar="SEP",
                                               help="between key and value with --format kv",
                                               show_default="tab")] = "\t",
    partitions: Annotated[list[int], typer.Option("--partition", "-p", min=0,
                                                  help="only this partition (repeatable; not with --group)")]
    = [],  # noqa: B006
    follow: Annotated[bool | None, typer.Option("--follow/--no-follow", show_default=False,
                                                help="wait for new records, or stop at the end "
                                                     "[default: follow, but with -n stop at the end]")]
    = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Print records of a topic, one per line."""
    from confluent_kafka import Consumer

    topic = one_topic(topic_argument, topic_option)
    if from_beginning and start is not None:
        raise CliError("--from-beginning and --from: give one", 2)
    start = "beginning" if from_beginning else start
    if follow is None:
        follow = count is None
    default = Position(kind="earliest" if group is not None else "latest")
    position = parse_position(start, "--from") if start is not None else default
    if group is not None and partitions:
        raise CliError("--partition reads partitions directly and cannot be used with --group", 2)
    consumer = new_client(Consumer, client_config(bootstrap, timeout, command_config, **{
        "group.id": group or f"tomyum-cli-{uuid.uuid4()}",
        "enable.auto.commit": group is not None,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest" if position.kind == "earliest" else "latest",
        "enable.partition.eof": not follow,
        # The end is known from an empty fetch; without --follow, do not long-poll for it.
        "fetch.wait.max.ms": 500 if follow else 50,
    }))
    session = _Session(consumer, topic, position, bootstrap, timeout)
    # Ctrl-C and SIGTERM only ask the loop to stop (at its next poll, within half a second): an
    # exception raised inside librdkafka's callbacks would surface as a SystemError.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, session.interrupt)
    try:
        known = session.partitions()
        if group is not None:
            consumer.subscribe([topic], on_assign=session.on_assign, on_revoke=session.on_revoke)
        else:
            check_partitions(topic, known, partitions)
            session.assign(consumer, partitions or known)
        printed = session.print_records(sys.stdout.buffer, output, key_separator.encode(), count, follow,
                                        store=group is not None)
    finally:
        closed = _close(consumer, CLOSE_GRACE_S if session.stopping else timeout)
    consumed = f"consumed {printed} record{'s' if printed != 1 else ''}"
    if not closed:  # the broker is gone: leaving the group and committing would wait for it
        console(stderr=True).print(f"{consumed}; the broker did not answer, so the last offsets were not "
                                   "committed (the group reads those records again)", markup=False)
        sys.stdout.flush()
        os._exit(130 if session.stopping else 1)
    console(stderr=True).print(consumed, markup=False)


def _close(consumer: Consumer, wait_s: float) -> bool:
    """Closes the consumer (commit, leave the group) unless that takes more than ``wait_s``."""
    closing = threading.Thread(target=consumer.close, daemon=True)
    closing.start()
    closing.join(wait_s)
    return not closing.is_alive()


class _Session:
    """One consumer's partitions, where it starts in each, and which it has read to the end."""

    def __init__(self, consumer: Consumer, topic: str, position: Position, bootstrap: str, timeout: float) -> None:
        self.consumer = consumer
        self.topic = topic
        self.position = position
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.assigned: set[int] = set()
        self.at_end: set[int] = set()
        self.stopping: int = 0  # the signal that asked to stop
        self.broker_gone = False

    def interrupt(self, signum: int, frame: object) -> None:
        if self.stopping:  # a second Ctrl-C: at once
            os._exit(130)
        self.stopping = signum

    def check_broker(self) -> None:
        """Says once that the broker went away (librdkafka keeps trying), and once that it is back."""
        gone = refused(last_failure())
        if gone and not self.broker_gone:
            console(stderr=True).print(f"the broker at {self.bootstrap} is gone (connection refused); waiting for "
                                       "it to come back (Ctrl-C to stop)", markup=False)
        self.broker_gone = gone

    def partitions(self) -> list[int]:
        """The topic's partitions; fails on an unreachable broker or an unknown topic."""
        return sorted(topic_metadata(self.consumer, self.bootstrap, self.timeout, self.topic).partitions)

    def assign(self, consumer: Consumer, partitions: list[int]) -> None:
        consumer.assign(self.start_offsets(partitions))
        self.assigned.update(partitions)

    def on_assign(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        if self.position.kind in ("earliest", "latest"):
            self.assigned.update(tp.partition for tp in assigned)  # committed offsets, else auto.offset.reset
        else:
            self.assign(consumer, [tp.partition for tp in assigned])

    def on_revoke(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        self.assigned.difference_update(tp.partition for tp in revoked)

    def start_offsets(self, partitions: list[int]) -> list[TopicPartition]:
        """Where ``position`` is in each partition: logical offsets for the beginning and the end,
        otherwise resolved against the partition's watermarks (and ListOffsets for a time)."""
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaException, TopicPartition

        if self.position.kind in ("earliest", "latest"):
            logical = OFFSET_BEGINNING if self.position.kind == "earliest" else OFFSET_END
            return [TopicPartition(self.topic, p, logical) for p in partitions]
        try:
            marks = {p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=self.timeout)
                     for p in partitions}
            by_time: dict[int, int] = {}
            if self.position.kind == "timestamp":
                found = self.consumer.offsets_for_times(
                    [TopicPartition(self.topic, p, self.position.value) for p in partitions], timeout=self.timeout)
                by_time = {tp.partition: tp.offset for tp in found}
        except KafkaException as e:
            raise kafka_error(e.args[0], f"cannot find offsets in {self.topic!r}", self.bootstrap,
                              self.timeout) from None
        return [TopicPartition(self.topic, p, self.position.resolve(*marks[p], by_time.get(p))) for p in partitions]

    def print_records(self, out: IO[bytes], output: Format, separator: bytes, count: int | None, follow: bool,
                      store: bool) -> int:
        """Writes records until ``count``, the end of every assigned partition (unless
        ``follow``) or Ctrl-C; returns how many it wrote."""
        from confluent_kafka import KafkaError

        printed = 0
        try:
            while (count is None or printed < count) and not self.stopping:
                batch = self._next_batch(min(BATCH, count - printed) if count else BATCH)
                if batch:
                    clear_failure()
                self.check_broker()
                for message in batch:
                    error = message.error()
                    if error is not None and error.code() == KafkaError._PARTITION_EOF:
                        self.at_end.add(message.partition())
                        continue
                    if error is not None:
                        raise CliError(f"cannot consume from {self.topic!r}: {describe_error(error)}")
                    self.at_end.discard(message.partition())
                    out.write(render(message, output, separator))
                    printed += 1
                    if store:
                        self.consumer.store_offsets(message)
                out.flush()
                if not follow and self.assigned and self.assigned <= self.at_end:
                    break
        except KeyboardInterrupt:
            pass
        return printed


    def _next_batch(self, size: int) -> list[Message]:
        """Up to ``size`` records (and events): waits for the first, then takes what is already there."""
        first = self.consumer.poll(0.5)
        if first is None:
            return []
        return [first, *self.consumer.consume(size - 1, timeout=0)] if size > 1 else [first]


def render(message: Message, output: Format, separator: bytes) -> bytes:
    """One record as one line: its value, its key and value, or JSON with all its metadata
    (keys, values and header values that are not UTF-8 become ``{"base64": ...}``)."""
    value = message.value() or b""
    if output is Format.value:
        return value + b"\n"
    if output is Format.kv:  # a null key or value is `null`, as kafka-console-consumer.sh prints it
        key = message.key()
        return (b"null" if key is None else key) + separator + \
            (b"null" if message.value() is None else value) + b"\n"
    kind, timestamp = message.timestamp()
    record: dict[str, Any] = {
        "topic": message.topic(), "partition": message.partition(), "offset": message.offset(),
        "timestamp": timestamp, "timestamp_type": {1: "create", 2: "log_append"}.get(kind),
        "key": _text(message.key()), "value": _json_or_text(message.value()),
        "headers": [[k, _text(v)] for k, v in message.headers() or []],
    }
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


def _json_or_text(data: bytes | None) -> Any:
    """A value that is a JSON document as that document, any other as :func:`_text` has it."""
    if data:
        try:
            return json.loads(data)
        except ValueError:
            pass
    return _text(data)


def _text(data: bytes | None) -> str | dict[str, str] | None:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}
