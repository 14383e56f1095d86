"""Help that reads well in an 80-column terminal: human metavars (``N``, ``NUMBER``, ``PATH``,
``value|kv|json``) instead of typer's type names (``<int range> [x>=1]``, ``<list[str]>``,
``<bool>``), and each environment variable named once, in the option's own help."""

from __future__ import annotations

import enum
import pathlib
from typing import Any, get_args, get_origin

_BY_TYPE: dict[Any, str] = {int: "N", float: "NUMBER", pathlib.Path: "PATH", bool: "BOOL"}


def humanize(command: Any) -> Any:
    """``command`` (a typer/click command) and its subcommands with human metavars and click's
    plain layout (two columns that use the terminal's width, no boxes); returns it."""
    command.rich_markup_mode = None
    for param in command.params:
        _humanize(param)
    for sub in getattr(command, "commands", {}).values():
        humanize(sub)
    return command


def _humanize(param: Any) -> None:
    param.show_envvar = False  # the help text names the variable: typer would say it again
    param._get_number_range_help_str = lambda: None  # the error message says the range
    if param.param_type_name == "argument":
        param.display_type = lambda ctx=None: None  # its name is its metavar: no ``<str>`` after it
    if param.metavar is not None:
        return
    if getattr(param, "is_flag", False):
        param.metavar = ""
        return
    descriptor = getattr(param, "type_descriptor", None)
    kind = descriptor.annotation if descriptor is not None else str
    if get_origin(kind) is list:
        kind = get_args(kind)[0]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        param.metavar = "|".join(str(member.value) for member in kind)
    else:
        param.metavar = _BY_TYPE.get(kind) or (param.name or "value").upper()
