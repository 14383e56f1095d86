"""``--command-config FILE``: Kafka's client properties file, read into librdkafka settings.

The translation is :mod:`tomyum.client`'s (``client_properties``), so that applications read the
same files; here a key that cannot be translated, or a file that cannot be read, is a
:class:`CliError` of one line naming the file, the key and what to write instead.
"""

from __future__ import annotations

from pathlib import Path

from tomyum.cli.common import CliError
from tomyum.client._properties import PropertiesError, parse_jaas, read_properties, translate_properties

__all__ = ["load", "parse_jaas", "read_properties", "translate"]


def translate(props: dict[str, str], source: str = "--command-config") -> dict[str, str]:
    """librdkafka settings for Kafka client properties ``props``; ``source`` names them in errors."""
    try:
        return translate_properties(props)
    except PropertiesError as e:
        raise CliError(f"{source}: {e}", 2) from None


def load(path: Path) -> dict[str, str]:
    """The librdkafka settings in the client properties file at ``path``."""
    try:
        text = path.read_text()
    except OSError as e:
        from tomyum.cli.common import os_error

        raise CliError(os_error(e, f"--command-config: cannot read {path}"), 2) from None
    return translate(read_properties(text), f"--command-config {path}")
