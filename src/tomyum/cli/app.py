"""The ``tomyum`` command."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tomyum import __version__
from tomyum.cli import acls, configs, console, consume, daemon, groups, produce, quotas, top, topics, users
from tomyum.cli.common import run
from tomyum.cli.serve import serve
from tomyum.cli.demo import demo_app

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="tomyum: a Kafka-compatible event streaming platform in Python.")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"tomyum {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", "-V", is_eager=True, callback=_show_version,
                                          help="print tomyum's version and exit")] = False,
) -> None:
    """tomyum: a Kafka-compatible event streaming platform in Python."""


app.command()(serve)
app.command()(daemon.start)
app.command()(daemon.stop)
app.command()(daemon.status)
app.command()(top.top)
app.command()(console.console)
app.add_typer(topics.app, name="topics")
app.command()(produce.produce)
app.command()(consume.consume)
app.add_typer(groups.app, name="groups")
app.add_typer(configs.app, name="configs")
app.add_typer(users.app, name="users")
app.add_typer(acls.app, name="acls")
app.add_typer(quotas.app, name="quotas")


@app.command()
def version() -> None:
    """Print tomyum's version."""
    typer.echo(f"tomyum {__version__}")


app.add_typer(demo_app, name="demo")


def main() -> None:
    sys.exit(run(app))


if __name__ == "__main__":
    main()
