"""``tomyum console``: the web console (:mod:`tomyum.console`) against any Kafka, in the
foreground until SIGINT or SIGTERM. ``--command-config`` makes it act as that principal: it
shows what the principal's ACLs allow."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from tomyum.cli.common import DEFAULT_BOOTSTRAP, DEFAULT_TIMEOUT, Bootstrap, CliError, CommandConfig, Timeout
from tomyum.cli.common import client_config, metadata, new_client


def console(
    listen: Annotated[str, typer.Option("--listen", metavar="HOST:PORT",
                                        help="where the console's HTTP listener binds (port 0 picks one)")]
    = "127.0.0.1:8080",
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
    connect: Annotated[str, typer.Option("--connect", metavar="URL",
                                         help="a Kafka Connect worker's REST URL (http://HOST:8083): its "
                                         "connectors on the Connectors page")] = "",
) -> None:
    """Serve the web console for a Kafka cluster (tomyum or Apache Kafka) until Ctrl-C."""
    from confluent_kafka.admin import AdminClient

    from tomyum.console import ConsoleServer, parse_listener

    settings = client_config(bootstrap, timeout, command_config, **{"client.id": "tomyum-console"})
    metadata(new_client(AdminClient, settings), bootstrap, timeout)  # reachable, or one line saying why
    try:
        parse_listener(listen)
    except ValueError as e:
        raise CliError(f"--listen: {e}", 2) from None
    settings.pop("bootstrap.servers")
    if connect and not connect.startswith(("http://", "https://")):
        raise CliError(f"--connect: {connect!r} is not an http:// or https:// URL", 2)

    async def run() -> None:
        try:
            server = ConsoleServer(bootstrap, listen, settings, connect_url=connect)
        except OSError as e:
            raise CliError(f"--listen {listen}: {e.strerror or e}".lower()) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await server.start()
        print(f"console on {server.url} for {bootstrap}", flush=True)
        await stop.wait()
        await server.stop()

    asyncio.run(run())
