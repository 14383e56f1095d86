"""The ``tomyum`` command."""

from __future__ import annotations

import typer

from tomyum import __version__
from tomyum.cli.serve import serve
from tomyum.cli.demo import demo_app

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="tomyum: a Kafka-compatible event streaming platform in Python.")
app.command()(serve)


@app.command()
def version() -> None:
    """Print tomyum's version."""
    typer.echo(f"tomyum {__version__}")


app.add_typer(demo_app, name="demo")


def main() -> None:
    app()
