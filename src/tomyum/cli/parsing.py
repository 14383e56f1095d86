"""Pure parsing and formatting for the command line: positions in a log, ``key=value``
arguments, ``topic:partitions``, durations and sizes. No I/O; errors are :class:`CliError`
with the option's name and what was expected."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from tomyum.cli.common import CliError

PositionKind = Literal["earliest", "latest", "offset", "tail", "timestamp"]
POSITION_HELP = ("beginning, end, an offset, -N (N before the end), "
                 "an ISO 8601 datetime or @MILLISECONDS since the epoch")

_WORDS: dict[str, PositionKind] = {"beginning": "earliest", "earliest": "earliest", "start": "earliest",
                                   "end": "latest", "latest": "latest"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """Where to read from, or reset a group to, in every partition: the ``earliest`` or
    ``latest`` offset, an absolute ``offset``, ``tail`` (``value`` records before the end), or
    the first record at or after ``timestamp`` (``value`` in ms since the epoch)."""

    kind: PositionKind
    value: int = 0

    def resolve(self, low: int, high: int, offset_for_time: int | None = None) -> int:
        """The offset this position names in a partition whose log runs from ``low`` to ``high``,
        clamped into it. For ``timestamp``, ``offset_for_time`` is what ListOffsets answered
        (-1 or None: no record that late, so the end, as Kafka's tools do)."""
        match self.kind:
            case "earliest":
                return low
            case "latest":
                return high
            case "offset":
                return min(max(self.value, low), high)
            case "tail":
                return max(high - self.value, low)
            case "timestamp":
                return high if offset_for_time is None or offset_for_time < 0 else \
                    min(max(offset_for_time, low), high)


def parse_position(text: str, option: str) -> Position:
    """``beginning``/``earliest``, ``end``/``latest``, ``42``, ``-10``, ``@1700000000000`` or an
    ISO 8601 datetime (``2024-05-01``, ``2024-05-01T12:00:00+02:00``; without a zone, local time)."""
    word = text.strip().lower()
    if word in _WORDS:
        return Position(kind=_WORDS[word])
    if re.fullmatch(r"[+-]?\d+", word):
        number = int(word)
        return Position(kind="offset", value=number) if number >= 0 else Position(kind="tail", value=-number)
    if re.fullmatch(r"@\d+", word):
        return Position(kind="timestamp", value=int(word[1:]))
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(f"{option}: {text!r} is not {POSITION_HELP}", 2) from None
    return Position(kind="timestamp", value=int(moment.astimezone().timestamp() * 1000))


def parse_pairs(items: Iterable[str], option: str) -> dict[str, str]:
    """``key=value`` arguments, in order; the value may contain ``=`` and may be empty."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"{option}: {item!r} is not key=value", 2)
        pairs[key.strip()] = value
    return pairs


def parse_topic_partitions(spec: str, option: str) -> tuple[str, list[int] | None]:
    """``topic`` (every partition) or ``topic:0,2`` (those partitions), as Kafka's tools take them."""
    topic, sep, rest = spec.partition(":")
    if not topic or (sep and not re.fullmatch(r"\d+(,\d+)*", rest)):
        raise CliError(f"{option}: {spec!r} is not TOPIC or TOPIC:PARTITION[,PARTITION...]", 2)
    return topic, sorted({int(p) for p in rest.split(",")}) if sep else None


def format_duration(seconds: float) -> str:
    """``4s``, ``3m 12s``, ``5h 02m``, ``2d 03h``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def format_bytes(n: int) -> str:
    """``512 B``, ``1.5 KiB``, ``12.0 MiB``."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    size, unit = float(n), 0
    while size >= 1024 and unit < len(units) - 1:
        size, unit = size / 1024, unit + 1
    return f"{n} B" if unit == 0 else f"{size:.1f} {units[unit]}"
