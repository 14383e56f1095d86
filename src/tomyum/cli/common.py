"""What every client-side command shares: ``--bootstrap`` and ``--timeout``, quiet clients,
tables, and the rule that a failure is one line on stderr and a non-zero exit, never a traceback.

Client-side commands reach a broker only through confluent-kafka (librdkafka), never through
tomyum's internals, so the same commands manage an Apache Kafka cluster. librdkafka's own log
lines go to a handler that keeps only the last connection failure, to say why a broker could
not be reached.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient, ClusterMetadata, OffsetSpec, TopicMetadata

DEFAULT_BOOTSTRAP = "localhost:9092"
DEFAULT_TIMEOUT = 10.0
METADATA_SLICE = 0.25  # seconds between looks at why no broker answers

Bootstrap = Annotated[str, typer.Option(
    "--bootstrap", "-b", "--bootstrap-server", envvar="TOMYUM_BOOTSTRAP", metavar="HOST:PORT[,...]",
    help="a broker to start from: tomyum or Apache Kafka (env TOMYUM_BOOTSTRAP)")]
Timeout = Annotated[float, typer.Option(
    "--timeout", min=0.1, envvar="TOMYUM_TIMEOUT", metavar="SECONDS",
    help="how long to wait for the broker (env TOMYUM_TIMEOUT)")]
CommandConfig = Annotated[Path | None, typer.Option(
    "--command-config", envvar="TOMYUM_COMMAND_CONFIG", metavar="FILE", show_default=False, dir_okay=False,
    help="Kafka's client properties file: security.protocol, sasl.*, ssl.* (env TOMYUM_COMMAND_CONFIG)")]

# librdkafka errors that mean "no broker answered", as opposed to an answer with an error.
UNREACHABLE = {"_TRANSPORT", "_TIMED_OUT", "_ALL_BROKERS_DOWN", "_RESOLVE", "_WAIT_COORD"}
_FAILURE_LOG = re.compile(r"^\w+ \[[^\]]*\] \[[^\]]*\]: \S+: (?P<reason>.*?)(?: \(after \d+ms in state .*\))?$")


class CliError(Exception):
    """A failure the command reports as ``error: <message>`` with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _LastFailure(logging.Handler):
    """Keeps librdkafka's last warning or error (why a connection failed), prints nothing."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reason = ""

    def emit(self, record: logging.LogRecord) -> None:
        match = _FAILURE_LOG.match(record.getMessage())
        if match:
            self.reason = match["reason"]


_last_failure = _LastFailure()
librdkafka_log = logging.getLogger("tomyum.cli.librdkafka")
librdkafka_log.addHandler(_last_failure)
librdkafka_log.propagate = bool(os.environ.get("TOMYUM_DEBUG"))


def last_failure() -> str:
    """Why librdkafka last failed to connect (its log is read when a client polls), or ``""``."""
    return _last_failure.reason


def clear_failure() -> None:
    """Forget the last failure: the broker answered since."""
    _last_failure.reason = ""


def client_config(bootstrap: str, timeout: float, command_config: Path | None = None, **extra: Any) -> dict[str, Any]:
    """Config for any confluent-kafka client: quiet, giving up on a connection within ``timeout``,
    with the settings of ``--command-config`` (Kafka's client properties, translated) over the
    defaults and ``extra`` (what the command itself needs) over both."""
    from tomyum.cli import command_config as properties

    security = properties.load(command_config) if command_config is not None else {}
    return {"bootstrap.servers": bootstrap, "logger": librdkafka_log, "client.id": "tomyum-cli",
            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)), **security,
            "bootstrap.servers": bootstrap, **extra}  # --bootstrap wins, as in Kafka's tools


def new_client(cls: Any, config: dict[str, Any]) -> Any:
    """``cls(config)``, a setting librdkafka refuses (a misspelt key, an unreadable certificate)
    being one :class:`CliError` line."""
    from confluent_kafka import KafkaException

    try:
        return cls(config)
    except (KafkaException, ValueError, TypeError) as e:
        error = e.args[0] if e.args else e
        text = error.str() if hasattr(error, "str") else str(error)
        hint = " (a key of --command-config? use librdkafka's name for it)" if "No such configuration" in text else ""
        raise CliError(f"cannot create a client: {text}{hint}", 2) from None


TopicArgument = Annotated[str | None, typer.Argument(metavar="TOPIC", show_default=False)]
TopicOption = Annotated[str | None, typer.Option("--topic", "-t", metavar="TOPIC",
                                                 help="the topic, as Kafka's tools name it", show_default=False)]


def one_topic(argument: str | None, option: str | None) -> str:
    """The topic named as an argument or with ``--topic`` (Kafka's tools' way), not both differently."""
    if argument and option and argument != option:
        raise CliError(f"two topics named: {argument!r} and --topic {option!r}", 2)
    if not (argument or option):
        raise CliError("name the topic: TOPIC or --topic TOPIC", 2)
    return argument or option  # type: ignore[return-value]


def unreachable(bootstrap: str, timeout: float) -> CliError:
    """``nothing answers at ADDRESS``, with why and what to do about it."""
    reason = _last_failure.reason
    if "SASL authentication error" in reason or "Authentication failed" in reason:
        return CliError(f"cannot authenticate at {bootstrap}: {reason.removeprefix('SASL authentication error: ')} "
                        "(check the user and password of --command-config's sasl.jaas.config)")
    if "SSL" in reason:
        return CliError(f"no TLS connection with {bootstrap} ({reason}): check that --bootstrap names a listener "
                        "of --command-config's security.protocol, and its ssl.truststore.location")
    if refused(reason):
        why = "cannot resolve its host name" if "resolve" in reason else "connection refused"  # the only two left
        what = f"nothing answers at {bootstrap} ({why})"
    else:
        what = f"no broker answered at {bootstrap} within {timeout:g}s" + (f" ({reason})" if reason else "")
    return CliError(f"{what}: start one with 'tomyum start', or name another with --bootstrap HOST:PORT")


def refused(reason: str) -> bool:
    """Whether librdkafka's last connection failure is final (nobody listens, the credentials or
    the TLS handshake are refused): known at once, no need to wait."""
    return any(final in reason for final in ("Connection refused", "Failed to resolve", "SASL authentication error",
                                             "SSL handshake failed", "certificate verify failed"))


def describe_error(error: KafkaError) -> str:
    """A Kafka error in words, with its code name: ``Unknown topic or partition (UNKNOWN_TOPIC_OR_PART)``."""
    text = reword(error.str().removeprefix("Broker: ").removeprefix("Local: "))
    return text if error.name() in text else f"{text} ({error.name()})"


_BAD_VALUE = re.compile(r"invalid value (?P<value>.*?) for an? (?P<type>\w+): .*?(?= \([A-Z_]+\)$|$)")
_KINDS = {"int": "a whole number", "long": "a whole number", "short": "a whole number", "double": "a number",
          "bool": "true or false", "boolean": "true or false"}


def reword(message: str) -> str:
    """A config error from tomyum's config module or a broker, without Python's words in it:
    ``invalid value 'x' for a long: invalid literal for int() ...`` → ``invalid value 'x': expected a whole number``."""
    return _BAD_VALUE.sub(lambda m: f"invalid value {m['value']}: expected {_KINDS.get(m['type'], 'a ' + m['type'])}",
                          message)


def kafka_error(error: KafkaError, what: str, bootstrap: str, timeout: float) -> CliError:
    if error.name() in UNREACHABLE:
        return unreachable(bootstrap, timeout)
    return CliError(f"{what}: {describe_error(error)}")


def metadata(client: Any, bootstrap: str, timeout: float, topic: str | None = None) -> ClusterMetadata:
    """Cluster metadata from any client; the first call of every command, so an unreachable
    broker is reported before anything else is tried.

    It asks in short slices and reads librdkafka's log between them: a refused connection (no
    listener, an unknown host) is reported at once rather than after the whole ``timeout``."""
    from confluent_kafka import KafkaException

    _last_failure.reason = ""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            return client.list_topics(topic, timeout=max(0.05, min(METADATA_SLICE, left)))
        except KafkaException as e:
            client.poll(0)  # serves librdkafka's log lines, which say why no broker answered
            error = e.args[0]
            if error.name() not in UNREACHABLE or refused(_last_failure.reason) or left <= METADATA_SLICE:
                raise kafka_error(error, "cannot read metadata", bootstrap, timeout) from None


def topic_metadata(client: Any, bootstrap: str, timeout: float, topic: str, create: bool = False) -> TopicMetadata:
    """The topic's metadata through any client, or ``unknown topic`` as a :class:`CliError`.

    Only with ``create`` is the topic named in the request, which makes a broker that allows it
    create the topic (librdkafka asks for that even from an AdminClient); a topic being created
    (LEADER_NOT_AVAILABLE) counts as known."""
    from confluent_kafka import KafkaError

    t = metadata(client, bootstrap, timeout, topic if create else None).topics.get(topic)
    code = t.error.code() if t is not None and t.error is not None else None
    if t is None or code == KafkaError.UNKNOWN_TOPIC_OR_PART or (code is None and not t.partitions):
        raise unknown_topic(client, bootstrap, timeout, topic)
    if code is not None and code != KafkaError.LEADER_NOT_AVAILABLE:
        raise CliError(f"topic {topic!r}: {describe_error(t.error)}")
    return t


def unknown_topic(client: Any, bootstrap: str, timeout: float, topic: str) -> CliError:
    """``unknown topic 'ordres' (did you mean 'orders'?)``."""
    from tomyum.cli.suggest import did_you_mean

    try:
        known = metadata(client, bootstrap, timeout).topics
    except CliError:
        known = {}
    return CliError(f"unknown topic {topic!r}{did_you_mean(topic, known)}")


def check_partitions(topic: str, existing: Iterable[int], wanted: Iterable[int]) -> None:
    """Fails, naming the first, if ``wanted`` has partitions the topic does not."""
    existing = set(existing)
    missing = sorted(set(wanted) - existing)
    if missing:
        raise CliError(f"topic {topic!r} has no partition {missing[0]} (it has {len(existing)})")


class Admin:
    """One AdminClient for one command.

    It holds the client for as long as the command runs: librdkafka never completes the futures
    of an AdminClient that has been collected, so a command must not create one inline and
    wait on its futures after dropping it.
    """

    def __init__(self, bootstrap: str, timeout: float, command_config: Path | None = None) -> None:
        from confluent_kafka.admin import AdminClient

        self.bootstrap = bootstrap
        self.timeout = timeout
        self.config = client_config(bootstrap, timeout, command_config)
        self.client: AdminClient = new_client(AdminClient, self.config)

    def wait(self, future: concurrent.futures.Future[Any], what: str) -> Any:
        """The future's result; a Kafka error or a timeout becomes a :class:`CliError` naming ``what``."""
        from confluent_kafka import KafkaException

        try:
            return future.result(self.timeout + 1)
        except KafkaException as e:
            raise kafka_error(e.args[0], what, self.bootstrap, self.timeout) from None
        except concurrent.futures.TimeoutError:
            raise CliError(f"{what}: no answer within {self.timeout:g}s") from None

    def metadata(self) -> ClusterMetadata:
        return metadata(self.client, self.bootstrap, self.timeout)

    def list_offsets(self, partitions: Iterable[tuple[str, int]], spec: OffsetSpec) -> dict[tuple[str, int], int]:
        """ListOffsets for each ``(topic, partition)`` at ``spec`` (earliest, latest, a timestamp)."""
        from confluent_kafka import TopicPartition

        request = {TopicPartition(topic, partition): spec for topic, partition in partitions}
        if not request:
            return {}
        futures = self.client.list_offsets(request, request_timeout=self.timeout)
        return {(tp.topic, tp.partition): self.wait(future, f"cannot list offsets of {tp.topic}/{tp.partition}").offset
                for tp, future in futures.items()}

    def watermarks(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
        """The low and high watermark of each ``(topic, partition)``."""
        from confluent_kafka.admin import OffsetSpec

        partitions = list(partitions)
        low = self.list_offsets(partitions, OffsetSpec.earliest())
        high = self.list_offsets(partitions, OffsetSpec.latest())
        return {key: (low[key], high[key]) for key in low}

    def topic(self, name: str) -> TopicMetadata:
        return topic_metadata(self.client, self.bootstrap, self.timeout, name)


def console(stderr: bool = False) -> Console:
    """A console that does not wrap tables when output goes to a pipe or a file."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, highlight=False, emoji=False, width=None if stream.isatty() else 1000)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]], empty: str = "") -> None:
    """Columns under upper-case headers, no borders (easy to read, easy to grep);
    ``empty`` goes to stderr instead when there are no rows."""
    rows = list(rows)
    if not rows and empty:
        console(stderr=True).print(empty, markup=False)
        return
    table = Table(box=None, show_edge=False, pad_edge=False,
                  header_style="bold", padding=(0, 2, 0, 0))
    for header in headers:  # on a narrow terminal, long cells fold rather than lose their end to "…"
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text("-" if cell is None else str(cell)) for cell in row))
    out = console()
    if out.is_terminal:
        out.print(table)
        return
    with out.capture() as captured:
        out.print(table)
    out.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def say(message: str) -> None:
    """A line for the user on stdout (no markup)."""
    console().print(message, markup=False)


def run(app: typer.Typer) -> int:
    """Run the typer app and turn every failure into one ``error:`` line and an exit code.

    No Python exception text reaches the user: usage errors are reworded (``--count: expected a
    whole number, not 'abc'``), an ``OSError`` becomes its reason and file, anything else one
    line that ``TOMYUM_DEBUG=1`` turns into a traceback. (A closed stdout, as in
    ``tomyum consume ... | head``, is click's: a quiet exit 1.)
    """
    from typer._click import exceptions as click_exceptions

    from tomyum.cli.help import humanize

    try:
        code = humanize(typer.main.get_command(app)).main(prog_name="tomyum", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except CliError as e:
        return _fail(str(e), e.exit_code)
    except click_exceptions.NoArgsIsHelpError as e:  # bare `tomyum` (or `tomyum topics`): its help, on stdout
        if e.ctx is not None:
            typer.echo(e.ctx.get_help())
        return 0
    except click_exceptions.MissingParameter as e:
        return _fail(e.format_message() + _see_help(e), e.exit_code)
    except click_exceptions.BadParameter as e:
        return _fail(bad_parameter(e) + _see_help(e), e.exit_code)
    except click_exceptions.UsageError as e:
        return _fail(e.format_message() + _see_help(e), e.exit_code)
    except click_exceptions.ClickException as e:
        return _fail(e.format_message(), e.exit_code)
    except typer.Abort:
        return _fail("aborted", 130)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if os.environ.get("TOMYUM_DEBUG"):
            raise
        if isinstance(e, OSError):
            return _fail(os_error(e), 1)
        return _fail(f"unexpected failure, {' '.join(str(e).split()) or 'no details'} "
                     "(TOMYUM_DEBUG=1 shows where)", 1)


def os_error(e: OSError, what: str = "") -> str:
    """``cannot use /path: permission denied``: the reason in words, never ``[Errno 13]``."""
    reason = (e.strerror or str(e) or type(e).__name__).lower()
    where = what or (f"cannot use {e.filename}" if e.filename else "")
    return f"{where}: {reason}" if where else reason


# typer's validation messages (pydantic's), in the CLI's words
_VALIDATION = [
    (re.compile(r"Input should be a valid integer.*"), "expected a whole number"),
    (re.compile(r"Input should be a valid number.*"), "expected a number"),
    (re.compile(r"Input should be a valid boolean.*"), "expected true or false"),
    (re.compile(r"Input should be greater than or equal to (\S+)"), r"must be at least \1"),
    (re.compile(r"Input should be less than or equal to (\S+)"), r"must be at most \1"),
    (re.compile(r"Input should be greater than (\S+)"), r"must be more than \1"),
    (re.compile(r"Value error, (.*) is not one of (.*?)\.?$"), r"\1 is not one of \2"),
    (re.compile(r"invalid literal for int\(\) with base 10: (.*)"), r"\1 is not a whole number"),
]


def bad_parameter(e: Any) -> str:
    """``--count: must be at least 1`` from click's ``Invalid value for '--count' / '-n': ...``."""
    param = getattr(e, "param", None)
    name = (param.opts[0] if param is not None and getattr(param, "param_type_name", "") == "option"
            else (getattr(param, "metavar", None) or getattr(param, "name", None) or "value").upper())
    message = str(getattr(e, "message", "") or e)
    for pattern, words in _VALIDATION:
        if pattern.search(message):
            message = pattern.sub(words, message)
            break
    return f"{name}: {message}"


def _see_help(e: Any) -> str:
    return f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""


def _fail(message: str, exit_code: int) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return exit_code
