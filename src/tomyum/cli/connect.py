"""``tomyum connect standalone worker.properties [connector.properties ...]`` and ``tomyum connect
distributed worker.properties``: Kafka Connect's workers, with its REST API (tomyum.connect)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from tomyum.cli.command_config import read_properties
from tomyum.cli.common import CliError

app = typer.Typer(no_args_is_help=True, help="Kafka Connect: run connectors with Kafka Connect's REST API.")


def _read(path: Path) -> dict[str, str]:
    try:
        return read_properties(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise CliError(f"{path}: {e.strerror}") from None


@app.command()
def standalone(
    worker_properties: Annotated[Path, typer.Argument(metavar="WORKER.PROPERTIES", dir_okay=False,
                                                      help="the worker's keys (bootstrap.servers, converters, listeners, ...)")],
    connector_properties: Annotated[list[Path] | None, typer.Argument(metavar="CONNECTOR.PROPERTIES...",
                                                                      help="connectors to create at start")] = None,
) -> None:
    """Run a standalone worker: connectors from the files, offsets in offset.storage.file.filename."""
    from tomyum.connect.connector import ConnectError
    from tomyum.connect.runtime import StandaloneRuntime

    _logging()
    worker = _read(worker_properties)
    connectors = [_read(p) for p in connector_properties or []]
    try:
        runtime = StandaloneRuntime(worker, connectors)
        runtime.run()
    except ConnectError as e:
        raise CliError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


@app.command()
def distributed(
    worker_properties: Annotated[Path, typer.Argument(metavar="WORKER.PROPERTIES", dir_okay=False,
                                                      help="the worker's keys (bootstrap.servers, group.id, "
                                                           "config/offset/status.storage.topic, listeners, ...)")],
) -> None:
    """Run a distributed worker: it joins group.id's workers; connectors are created by REST."""
    from tomyum.connect.connector import ConnectError
    from tomyum.connect.runtime import DistributedRuntime

    _logging()
    worker = _read(worker_properties)
    try:
        DistributedRuntime(worker).run()
    except ConnectError as e:
        raise CliError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(message)s (%(name)s)")
    logging.getLogger("httpx").setLevel(logging.WARNING)
