"""``tomyum serve``: run a broker in the foreground until SIGINT or SIGTERM.

The broker's modules are imported when the command runs, not when the ``tomyum`` command
loads, so that client-side commands start quickly.
"""

from __future__ import annotations

import asyncio
import errno
import faulthandler
import gc
import logging
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from tomyum.broker.broker import Broker
    from tomyum.config import BrokerConfig
    from tomyum.console import ConsoleServer


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EVENT_LOOPS = ("uvloop", "asyncio")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop the broker runs on: uvloop (libuv; about half the broker CPU of a small
    request, docs/benchmarks.md) or the standard library's, which sends fetched file slices
    with zero-copy ``sendfile`` (uvloop has no ``loop.sendfile``: it copies them)."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def config_error(e: Exception) -> str:
    """A config error in the CLI's words: a suggestion for an unknown key, the expected kind of
    value for a bad one (never Python's ``invalid literal for int()``)."""
    from tomyum.cli.common import reword
    from tomyum.cli.suggest import did_you_mean
    from tomyum.config import BROKER_CONFIGS

    message = str(e)
    if message.endswith(": unknown config key"):
        return message + did_you_mean(getattr(e, "key", ""), BROKER_CONFIGS)
    return reword(message)


def parse_create_topic(spec: str) -> tuple[str, int, int]:
    from tomyum.errors import ConfigError

    parts = spec.split(":")
    try:
        if not 1 <= len(parts) <= 3 or not parts[0]:
            raise ValueError
        partitions = int(parts[1]) if len(parts) > 1 else 1
        replication = int(parts[2]) if len(parts) > 2 else 1
        if partitions < 1 or replication < 1:
            raise ValueError
    except ValueError:
        raise ConfigError("--create-topic", f"{spec!r} is not NAME[:PARTITIONS[:REPLICATION]] "
                          "with positive numbers") from None
    return parts[0], partitions, replication


def build_config(listen: str | None, advertised: str | None, data_dir: Path | None,
                 config_file: Path | None, settings: list[str]) -> tuple[BrokerConfig, Path]:
    from tomyum.config import BrokerConfig
    from tomyum.errors import ConfigError

    pairs = []
    for s in settings:
        key, sep, value = s.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", f"{s!r} is not key=value")
        pairs.append((key.strip(), value.strip()))
    if listen:
        pairs.append(("listeners", f"PLAINTEXT://{listen}"))
    if advertised:
        pairs.append(("advertised.listeners", f"PLAINTEXT://{advertised}"))
    config = BrokerConfig.load(config_file, pairs)
    if data_dir is None:
        data_dir = Path(config["log.dir"] or config["log.dirs"].split(",")[0])
    return config, data_dir


async def run_broker(config: BrokerConfig, data_dir: Path, create_topics: list[tuple[str, int, int]],
                     secure_dev: bool = False) -> None:
    from tomyum.broker.broker import Broker

    # checked before the broker starts, except with --secure-dev, whose first start writes the
    # client.properties the console may be pointed at
    client_settings = None if secure_dev else console_settings(config)
    broker = Broker(config, data_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # `kill -USR1 <pid>` writes every thread's stack to the log: what a stuck broker is doing
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # start-up only makes what lives as long as the broker (the metadata image, one
    # PartitionLog per partition): the automatic collector would walk it all again and again as
    # it grows (4 full collections at 10,000 partitions, each longer than the last); one
    # collection at the end, below, is enough
    gc.disable()
    try:
        console = await _start(broker, config, data_dir, create_topics, secure_dev, client_settings)
        # what start-up made (modules, configs, the metadata image, partition logs) lives as long
        # as the broker: out of the collector's way, so that a full collection walks only what
        # requests made since (a pause in the latency tail otherwise, growing with partitions)
        gc.collect()
        gc.freeze()
    finally:
        gc.enable()
    print(broker.ready_line(), flush=True)
    await stop.wait()
    logging.getLogger("tomyum").info("shutting down")
    if console is not None:
        await console.stop()
    await broker.stop()
    logging.getLogger("tomyum").info("stopped cleanly")


async def _start(broker: Broker, config: BrokerConfig, data_dir: Path, create_topics: list[tuple[str, int, int]],
                 secure_dev: bool, client_settings: dict[str, str] | None) -> ConsoleServer | None:
    """Start the broker (and the console); on a failure, what started is stopped."""
    try:
        await broker.start(create_topics)
    except BaseException:
        await broker.abort_start()
        raise
    if secure_dev:
        from tomyum.cli import secure_dev as dev

        password = await dev.ensure_admin(broker, data_dir)
        if password is not None:
            print(f"created the super user {dev.ADMIN!r} with password {password} (shown once; "
                  f"{data_dir / dev.PROPERTIES} has it for --command-config)", flush=True)
    try:
        if client_settings is None:
            client_settings = console_settings(config)
        return await start_console(config, broker, client_settings)
    except BaseException:
        await broker.stop()
        raise


def console_settings(config: BrokerConfig) -> dict[str, str]:
    """The librdkafka settings of ``console.client.config`` (a Kafka client properties file,
    read as ``--command-config`` reads one), checked before the broker starts."""
    path = config["console.client.config"]
    if not path or not config["console.listener"]:
        return {}
    from tomyum.client._properties import PropertiesError, client_properties
    from tomyum.errors import ConfigError

    try:
        return client_properties(path)
    except OSError as e:
        raise ConfigError("console.client.config", f"cannot read {path}: {e.strerror or e}") from None
    except PropertiesError as e:
        raise ConfigError("console.client.config", f"{path}: {e}") from None


async def start_console(config: BrokerConfig, broker: Broker, settings: dict[str, str]) -> ConsoleServer | None:
    """The web console on ``console.listener``, a client of this broker with ``settings``
    (:func:`console_settings`): at their ``bootstrap.servers``, else at the first listener of
    their security protocol (the first listener without one)."""
    listen = config["console.listener"]
    if not listen:
        return None
    from tomyum import __version__
    from tomyum.console import ConsoleServer
    from tomyum.errors import ConfigError

    settings = dict(settings)
    bootstrap = settings.pop("bootstrap.servers", "")
    if not bootstrap:
        protocol = settings.get("security.protocol", "PLAINTEXT").upper()
        listener = next((x for x in broker.listeners if x.security_protocol == protocol), broker.listeners[0])
        host = listener.host if listener.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        bootstrap = f"{host}:{listener.port}"
    settings.setdefault("client.id", "tomyum-console")
    try:
        console = ConsoleServer(bootstrap, listen, settings, about=lambda: {
            "version": f"tomyum {__version__}", "uptime": int(time.time() - broker.started_at)},
            connect_url=config["console.connect.url"])
    except ValueError as e:
        raise ConfigError("console.listener", str(e)) from None
    await console.start()
    print(f"console on {console.url}", flush=True)
    return console


def serve(
    listen: str = typer.Option(None, "--listen", help="HOST:PORT to accept connections on (port 0 picks one)"),
    advertised: str = typer.Option(None, "--advertised", help="HOST:PORT clients are told to connect to"),
    data_dir: Path = typer.Option(None, "--data-dir", help="where the logs live (default ./data)"),
    config_file: Path = typer.Option(None, "--config", help="a server.properties file"),
    settings: list[str] = typer.Option([], "--set", help="key=value, a Kafka broker config (repeatable)"),
    create_topic: list[str] = typer.Option([], "--create-topic",
                                           help="NAME:PARTITIONS[:REPLICATION] to create at start if missing"),
    log_level: str = typer.Option("INFO", "--log-level", envvar="TOMYUM_LOG_LEVEL"),
    event_loop: str = typer.Option("uvloop", "--event-loop",
                                   help="uvloop (cheaper per request) or asyncio (zero-copy fetch by sendfile)"),
    secure_dev: bool = typer.Option(False, "--secure-dev", help="TLS, SCRAM and ACLs for development: a local CA, "
                                    "SASL_SSL on the port after --listen's, the super user admin"),
) -> None:
    """Run a broker in the foreground; SIGINT or SIGTERM stops it cleanly."""
    from tomyum.errors import ConfigError, TomyumError

    if log_level.upper() not in LOG_LEVELS:
        typer.echo(f"error: --log-level: {log_level!r} is not one of {', '.join(LOG_LEVELS)}", err=True)
        raise typer.Exit(2)
    if event_loop not in EVENT_LOOPS:
        typer.echo(f"error: --event-loop: {event_loop!r} is not one of {', '.join(EVENT_LOOPS)}", err=True)
        raise typer.Exit(2)
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config, directory = build_config(listen, advertised, data_dir, config_file, settings)
        if secure_dev:
            from tomyum.cli.secure_dev import settings as secure_settings

            if advertised:
                raise ConfigError("--advertised", "not with --secure-dev (it advertises the addresses it listens on)")
            directory.mkdir(parents=True, exist_ok=True)
            config, directory = build_config(None, None, directory, config_file,
                                             secure_settings(directory, listen) + settings)
        topics = [parse_create_topic(s) for s in create_topic]
        with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
            runner.run(run_broker(config, directory, topics, secure_dev))
    except TomyumError as e:
        typer.echo(f"error: {config_error(e)}", err=True)
        raise typer.Exit(2) from None
    except OSError as e:
        typer.echo(f"error: {_os_error(e, listen)}", err=True)
        raise typer.Exit(1) from None


def _os_error(e: OSError, listen: str | None) -> str:
    """An OSError in words: the file it concerns, or the address a listener could not bind."""
    from tomyum.cli.common import os_error

    if e.filename:
        return os_error(e)
    bound = re.search(r"address \('?([^',]*)'?, (\d+)", str(e))
    address = f"{bound[1]}:{bound[2]}" if bound else (listen or "the listener's address")
    if e.errno == errno.EADDRINUSE:
        return (f"cannot listen on {address}: the address is in use (another broker? 'tomyum status', "
                "or --listen HOST:PORT elsewhere; port 0 picks a free one)")
    return os_error(e, f"cannot listen on {address}")
