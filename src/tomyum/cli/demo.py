"""``tomyum demo``: the classic Kafka lessons, run for you with the programs in ``examples/``.

Each demo starts a broker of its own (``tomyum serve`` on a free loopback port, data in a
temporary directory) unless ``--bootstrap`` names one (a secured one with ``--command-config``,
Kafka's client properties, which every program is given too), creates fresh topics, runs its example
programs as child processes with their output prefixed and coloured, stops them all (SIGTERM,
so they disconnect cleanly) when the lesson is shown, after ``--timeout``, or on Ctrl-C, and
ends with a summary of what each consumer received. Exit status: 0 when the summary shows the
lesson, 1 when it does not, 2 when no broker could be reached, 130 after Ctrl-C.

The demo learns what each program did from the lines it prints (see
``examples/lifecycle.py``): ``NAME: joined group G, partitions T[0, 1]`` and
``NAME: VALUE (key K, partition P, offset O)``.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

import tomyum
from tomyum.cli.command_config import load as command_config_settings
from tomyum.cli.common import CliError, CommandConfig
from tomyum.client import ClientError, Kafka

demo_app = typer.Typer(no_args_is_help=True, help="Learn Kafka with tomyum: run a classic demo end to end.")

#: the example programs the demos run: examples/ of the source checkout tomyum runs from
EXAMPLES = Path(tomyum.__file__).resolve().parents[2] / "examples"
#: the embedded broker lets a group's first members arrive together before it assigns partitions
EMBEDDED_SETTINGS = {"group.initial.rebalance.delay.ms": "1000"}
STOP_TIMEOUT_S = 15.0

JOINED = re.compile(r": joined group \S+, partitions (.*)$")
RECEIVED = re.compile(r": (?P<value>.*) \(key .*, partition (?P<partition>\d+), offset \d+\)$")

BootstrapOption = typer.Option(None, "--bootstrap", help="host:port of a running broker (default: start one)")
MessagesOption = typer.Option(20, "--messages", min=1, help="how many messages the producer sends")
TimeoutOption = typer.Option(60.0, "--timeout", help="seconds the demo may take before it gives up")


@dataclass
class Program:
    """One running example program and what its output has told so far."""

    label: str
    style: str
    proc: asyncio.subprocess.Process
    may_exit: bool
    name: str | None
    partitions: list[int] = field(default_factory=list)
    joined: bool = False
    received: Counter[int] = field(default_factory=Counter)
    values: list[str] = field(default_factory=list)
    returncode: int | None = None

    @property
    def finished(self) -> bool:
        return self.returncode is not None

    @property
    def total(self) -> int:
        return sum(self.received.values())

    def read(self, line: str) -> None:
        if m := JOINED.search(line):
            self.joined = True
            self.partitions = [int(p) for group in re.findall(r"\[([\d, ]*)\]", m.group(1))
                               for p in group.split(",") if p.strip()]
        elif m := RECEIVED.search(line):
            self.received[int(m.group("partition"))] += 1
            self.values.append(m.group("value"))


class Stage:
    """Runs the programs of one demo: starts them, prints their lines with a coloured prefix,
    waits for what they report, and stops them all."""

    def __init__(self, console: Console, bootstrap: str, timeout: float, command_config: Path | None = None) -> None:
        self.console = console
        self.bootstrap = bootstrap
        #: what every program is given to reach the broker: --bootstrap, and --command-config if any
        self.connection = ("--bootstrap", bootstrap) + (("--command-config", str(command_config))
                                                        if command_config is not None else ())
        self.timeout = timeout
        self._deadline = asyncio.get_running_loop().time() + timeout
        self.programs: list[Program] = []
        self.interrupted = False
        self._readers: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()

    def interrupt(self) -> None:
        self.interrupted = True
        self._changed.set()

    def say(self, message: str) -> None:
        self.console.print(Text(message, style="bold"), soft_wrap=True)

    async def start(self, label: str, style: str, script: str, *args: str, name: str | None = None,
                    may_exit: bool = False) -> Program:
        """Run ``examples/<script> args... --bootstrap B [--command-config F]``. ``name``: the name
        the program puts in front of its lines (the prefix shows it already); ``may_exit`` for
        programs that end by themselves (producers)."""
        self.say(f"▶ {label}: python examples/{script} {' '.join((*args, *self.connection))}")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLES / script), *args, *self.connection,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        program = Program(label=label, style=style, proc=proc, may_exit=may_exit, name=name)
        self.programs.append(program)
        self._readers.append(asyncio.create_task(self._read(program)))
        return program

    async def _read(self, program: Program) -> None:
        assert program.proc.stdout is not None
        async for raw in program.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            program.read(line)
            if program.name:
                line = line.removeprefix(f"{program.name}: ")
            width = max(len(p.label) for p in self.programs)
            self.console.print(Text.assemble((f"{program.label:>{width}} │ ", program.style), line), soft_wrap=True)
            self._changed.set()
        program.returncode = await program.proc.wait()
        self._changed.set()

    def failure(self) -> str | None:
        for p in self.programs:
            if p.returncode is not None and (p.returncode != 0 or not p.may_exit):
                return f"{p.label} exited with status {p.returncode}"
        return None

    async def until(self, done: Callable[[], bool], what: str) -> str | None:
        """Wait until ``done()``; returns why it did not happen (Ctrl-C, a program that ended,
        the demo's timeout) or None."""
        loop = asyncio.get_running_loop()
        while not done():
            if self.interrupted:
                return "interrupted"
            if reason := self.failure():
                return reason
            if loop.time() >= self._deadline:
                return f"timed out after {self.timeout:.0f}s waiting for {what}"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), self._deadline - loop.time())
            except TimeoutError:
                pass
        return None

    async def stop(self) -> None:
        """SIGTERM every program still running, wait for them (SIGKILL after STOP_TIMEOUT_S),
        and read what they print on the way out."""
        for p in self.programs:
            if p.proc.returncode is None:
                p.proc.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(p.proc.wait()) for p in self.programs]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=STOP_TIMEOUT_S)
            for p in self.programs:
                if p.proc.returncode is None:
                    self.say(f"■ {p.label} did not stop in {STOP_TIMEOUT_S:.0f}s; killing it")
                    p.proc.kill()
            await asyncio.wait([*pending, *self._readers])


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a demo showed: its lesson, the summary line, whether the summary shows the lesson,
    and why it stopped early, if it did."""

    lesson: str
    summary: str
    ok: bool
    reason: str | None


Demo = Callable[[Stage, Kafka, int], Awaitable[Outcome]]


async def consumer_groups(stage: Stage, kafka: Kafka, count: int) -> Outcome:
    run = secrets.token_hex(3)
    topic = f"demo-greetings-{run}"
    await create_topics(kafka, {topic: 1})
    a = await stage.start("group A · alice", "cyan", "consumer.py", f"demo-group-a-{run}", "alice",
                          "--topic", topic, name="alice")
    b = await stage.start("group B · bob", "magenta", "consumer.py", f"demo-group-b-{run}", "bob",
                          "--topic", topic, name="bob")
    reason = await stage.until(lambda: a.joined and b.joined, "both consumers to join their groups")
    if reason is None:
        producer = await stage.start("producer", "yellow", "producer.py", "--topic", topic, "--count", str(count),
                                     "--interval", "0.05", may_exit=True)
        reason = await stage.until(lambda: a.total >= count and b.total >= count and producer.finished,
                                   "every message")
    await stage.stop()
    return Outcome(lesson="Every consumer group receives every message: groups read independently.",
                   summary=f"group A received {a.total}/{count}, group B received {b.total}/{count}",
                   ok=a.total == count and b.total == count, reason=reason)


async def partitions(stage: Stage, kafka: Kafka, count: int) -> Outcome:
    run = secrets.token_hex(3)
    topic, group = f"demo-orders-{run}", f"demo-orders-workers-{run}"
    await create_topics(kafka, {topic: 2})
    members = [await stage.start(f"consumer {i} · {name}", style, "partition_consumer.py", name,
                                 "--group", group, "--topic", topic, name=name)
               for i, (name, style) in enumerate([("alice", "cyan"), ("bob", "magenta")], start=1)]

    def split() -> bool:
        return all(len(m.partitions) == 1 for m in members) and {p for m in members for p in m.partitions} == {0, 1}

    reason = await stage.until(split, "the group to give each consumer one partition")
    if reason is None:
        producer = await stage.start("producer", "yellow", "partitioned_producer.py", "--topic", topic,
                                     "--partitions", "2", "--count", str(count), "--interval", "0.05", may_exit=True)
        reason = await stage.until(lambda: sum(m.total for m in members) >= count and producer.finished,
                                   "every message")
    await stage.stop()
    parts = []
    for i, m in enumerate(members, start=1):
        got = ", ".join(f"partition {p}" for p in sorted(m.received)) or "no partition"
        parts.append(f"consumer {i}: {got}, {m.total} messages")
    ok = (sum(m.total for m in members) == count
          and all(len(m.received) == 1 for m in members) and len({p for m in members for p in m.received}) == 2)
    return Outcome(lesson="Members of one group split the partitions: each message is read by one of them.",
                   summary=" · ".join(parts), ok=ok, reason=reason)


async def streams(stage: Stage, kafka: Kafka, count: int) -> Outcome:
    run = secrets.token_hex(3)
    source, sink = f"demo-greetings-{run}", f"demo-greetings-upper-{run}"
    await create_topics(kafka, {source: 1, sink: 1})
    processor = await stage.start("processor", "green", "stream_processor.py", "--source", source,
                                  "--sink", sink, "--group", f"demo-processor-{run}", name="processor")
    consumer = await stage.start("consumer · carol", "cyan", "consumer.py", f"demo-readers-{run}", "carol",
                                 "--topic", sink, name="carol")
    reason = await stage.until(lambda: processor.joined and consumer.joined,
                               "the processor and the consumer to join their groups")
    if reason is None:
        producer = await stage.start("producer", "yellow", "producer.py", "--topic", source, "--count", str(count),
                                     "--interval", "0.05", may_exit=True)
        reason = await stage.until(lambda: consumer.total >= count and producer.finished,
                                   "every transformed message")
    await stage.stop()
    upper = sum(1 for v in consumer.values if v == v.upper())
    return Outcome(lesson="A stream processor consumes, transforms and produces: the consumer reads its output.",
                   summary=f"processor transformed {processor.total}/{count} · "
                           f"consumer received {consumer.total}/{count}, {upper} upper-cased",
                   ok=processor.total == count and consumer.total == count and upper == count, reason=reason)


async def create_topics(kafka: Kafka, topics: dict[str, int]) -> None:
    admin = kafka.admin()
    await admin.connect()
    try:
        await admin.create_topics([{"topic": t, "num_partitions": n} for t, n in topics.items()])
    finally:
        await admin.disconnect()


async def play(demo: Demo, console: Console, bootstrap: str, count: int, timeout: float,
               command_config: Path | None = None) -> int:
    stage = Stage(console, bootstrap, timeout, command_config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stage.interrupt)
    kafka = Kafka(client_id="tomyum-demo", brokers=[bootstrap],
                  config=command_config_settings(command_config) if command_config is not None else None)
    try:
        outcome = await demo(stage, kafka, count)
    except ClientError as e:
        await stage.stop()
        console.print(Text(f"error: {e}", style="bold red"), soft_wrap=True)
        return 2
    console.rule("summary")
    console.print(Text(outcome.lesson, style="bold"), soft_wrap=True)
    console.print(Text(outcome.summary, style="bold green" if outcome.ok else "bold red"), soft_wrap=True)
    if outcome.reason:
        console.print(Text(f"stopped early: {outcome.reason}", style="yellow"), soft_wrap=True)
    if stage.interrupted:
        return 130
    return 0 if outcome.ok else 1


@contextmanager
def broker_for(console: Console, bootstrap: str | None) -> Iterator[str]:
    """``bootstrap`` itself, or the address of a broker started for the demo and stopped after."""
    if bootstrap:
        yield bootstrap
        return
    from tomyum.testing import BrokerProcess

    with tempfile.TemporaryDirectory(prefix="tomyum-demo-") as tmp:
        # Its own process group: a Ctrl-C reaches the programs, which then commit and leave
        # their groups through this broker, stopped only after them.
        broker = BrokerProcess(Path(tmp) / "data", settings=EMBEDDED_SETTINGS, own_process_group=True)
        try:
            try:
                broker.start()
            except (RuntimeError, TimeoutError) as e:
                console.print(Text(f"error: the embedded broker did not start: {e}", style="bold red"),
                              soft_wrap=True)
                raise typer.Exit(2) from None
            console.print(Text(f"▶ broker: tomyum serve on {broker.bootstrap}, data in {tmp}", style="bold"),
                          soft_wrap=True)
            yield broker.bootstrap
        finally:
            try:
                broker.stop()
            finally:
                broker.kill()


def run_demo(demo: Demo, bootstrap: str | None, count: int, timeout: float, command_config: Path | None) -> None:
    if command_config is not None:
        if not bootstrap:
            raise CliError("--command-config is for a secured broker named with --bootstrap (the demo's own "
                           "broker is a plaintext one)", 2)
        command_config_settings(command_config)  # a bad file is one line before anything starts
    if not EXAMPLES.is_dir():
        typer.echo(f"error: the demos run the programs in examples/ of a tomyum source checkout; "
                   f"there is none at {EXAMPLES}", err=True)
        raise typer.Exit(2)
    # The programs and the broker are this interpreter's children: let them import this tomyum.
    src = str(Path(tomyum.__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    console = Console(highlight=False)
    with broker_for(console, bootstrap) as address:
        status = asyncio.run(play(demo, console, address, count, timeout, command_config))
    raise typer.Exit(status)


@demo_app.command("consumer-groups")
def consumer_groups_command(bootstrap: str = BootstrapOption, messages: int = MessagesOption,
                            timeout: float = TimeoutOption, command_config: CommandConfig = None) -> None:
    """One producer, two consumers in different groups: each group receives every message."""
    run_demo(consumer_groups, bootstrap, messages, timeout, command_config)


@demo_app.command("partitions")
def partitions_command(bootstrap: str = BootstrapOption, messages: int = MessagesOption,
                       timeout: float = TimeoutOption, command_config: CommandConfig = None) -> None:
    """A 2-partition topic and two consumers in one group: each reads one partition."""
    run_demo(partitions, bootstrap, messages, timeout, command_config)


@demo_app.command("streams")
def streams_command(bootstrap: str = BootstrapOption, messages: int = MessagesOption,
                    timeout: float = TimeoutOption, command_config: CommandConfig = None) -> None:
    """Producer → stream processor (upper-cases) → consumer."""
    run_demo(streams, bootstrap, messages, timeout, command_config)
