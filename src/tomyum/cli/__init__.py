"""The ``tomyum`` command (typer), one module per command group."""
