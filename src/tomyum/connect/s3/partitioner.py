"""Where a record goes in the bucket: Confluent's storage partitioners and S3 object names.

Pure: no I/O, no clock (the wall clock, for ``timestamp.extractor=Wallclock``, is an argument).
The names and encodings are those of Confluent's ``io.confluent.connect.storage.partitioner``:

- ``DefaultPartitioner``: ``partition=<kafka partition>``;
- ``FieldPartitioner``: ``<field>=<value>`` for each of ``partition.field.name``, joined by ``/``
  (fields of a Struct or a schemaless map; ints, strings and booleans only, as Confluent's);
- ``TimeBasedPartitioner``: the record's timestamp (``timestamp.extractor`` ``Record``,
  ``RecordField`` with ``timestamp.field``, or ``Wallclock``) rounded down to
  ``partition.duration.ms`` in ``timezone``, printed with the Joda pattern ``path.format``
  (``'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH``); ``DailyPartitioner`` and
  ``HourlyPartitioner`` are that with the pattern and duration fixed.

An object is named ``<topics.dir>/<topic>/<encoded partition>/<topic>+<partition>+<start offset>.<ext>``,
the start offset zero-padded to ``filename.offset.zero.pad.width`` digits: the same records
always get the same name, which is what makes a rewrite after a crash replace, not duplicate.
"""

from __future__ import annotations

import dataclasses
import datetime
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tomyum.connect.config import ConfigError
from tomyum.connect.connector import ConnectError
from tomyum.connect.data import SinkRecord, Struct, Type

STORAGE = "io.confluent.connect.storage.partitioner."
PARTITIONERS = ("DefaultPartitioner", "FieldPartitioner", "TimeBasedPartitioner", "DailyPartitioner",
                "HourlyPartitioner")
EXTRACTORS = ("Record", "RecordField", "Wallclock")
_EPOCH = datetime.datetime(1970, 1, 1)


class Partitioner(Protocol):
    def encode_partition(self, record: SinkRecord, now_ms: int) -> str:
        """The directory of ``record`` under its topic's."""

    def timestamp(self, record: SinkRecord, now_ms: int) -> int | None:
        """The record's time as this partitioner sees it (None: it has no notion of time)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DefaultPartitioner:
    def encode_partition(self, record: SinkRecord, now_ms: int) -> str:
        return f"partition={record.kafka_partition}"

    def timestamp(self, record: SinkRecord, now_ms: int) -> int | None:
        return None


def _field_of(record: SinkRecord, name: str) -> Any:
    value = record.value
    if isinstance(value, Struct):
        if value.schema.field(name) is None:
            raise ConnectError(f"{record.topic}-{record.kafka_partition}@{record.kafka_offset}: "
                               f"the value has no field {name!r}")
        return value.get(name)
    if isinstance(value, Mapping):
        if name not in value:
            raise ConnectError(f"{record.topic}-{record.kafka_partition}@{record.kafka_offset}: "
                               f"the value has no field {name!r}")
        return value[name]
    raise ConnectError(f"{record.topic}-{record.kafka_partition}@{record.kafka_offset}: a field of the "
                       f"value is needed, but the value is {type(value).__name__}, not a Struct or a map")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FieldPartitioner:
    field_names: tuple[str, ...]

    def encode_partition(self, record: SinkRecord, now_ms: int) -> str:
        parts = []
        for name in self.field_names:
            value = _field_of(record, name)
            if isinstance(record.value, Struct):
                f = record.value.schema.field(name)
                assert f is not None
                ok = f.schema.type in (Type.INT8, Type.INT16, Type.INT32, Type.INT64, Type.STRING, Type.BOOLEAN)
            else:
                ok = isinstance(value, (int, str))
            if not ok or value is None:
                raise ConnectError(f"{record.topic}-{record.kafka_partition}@{record.kafka_offset}: field "
                                   f"{name!r} is {value!r}; a partition field must be an int, a string or a boolean")
            parts.append(f"{name}={str(value).lower() if isinstance(value, bool) else value}")
        return "/".join(parts)

    def timestamp(self, record: SinkRecord, now_ms: int) -> int | None:
        return None


def _to_millis(record: SinkRecord, field: str, value: Any) -> int:
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        return value
    elif isinstance(value, datetime.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return int(aware.timestamp() * 1000)
    elif isinstance(value, str):
        try:
            return _to_millis(record, field, datetime.datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ConnectError(f"{record.topic}-{record.kafka_partition}@{record.kafka_offset}: timestamp field "
                       f"{field!r} is {value!r}, not epoch milliseconds, a Timestamp or an ISO-8601 string")


def extract_timestamp(extractor: str, field: str, record: SinkRecord, now_ms: int) -> int:
    """Confluent's ``timestamp.extractor``: ``Record`` (the Kafka timestamp), ``RecordField``
    (``field`` of the value) or ``Wallclock`` (``now_ms``)."""
    if extractor == "Wallclock":
        return now_ms
    if extractor == "Record":
        if record.timestamp is None:
            raise ConnectError(f"{record.topic}-{record.kafka_partition}@{record.kafka_offset}: the record "
                               "has no timestamp (timestamp.extractor=Record)")
        return record.timestamp
    return _to_millis(record, field, _field_of(record, field))


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _joda_field(letter: str, n: int, t: datetime.datetime) -> str:
    if letter in "yYx":
        year = t.isocalendar().year if letter == "x" else t.year
        return f"{year % 100:02d}" if n == 2 else str(year).zfill(n)
    if letter == "M" and n >= 3:
        return _MONTHS[t.month - 1] if n >= 4 else _MONTHS[t.month - 1][:3]
    if letter == "E":
        return _DAYS[t.weekday()] if n >= 4 else _DAYS[t.weekday()][:3]
    if letter == "a":
        return "AM" if t.hour < 12 else "PM"
    if letter == "S":
        return f"{t.microsecond:06d}{'0' * n}"[:n]
    numbers: dict[str, Callable[[datetime.datetime], int]] = {
        "M": lambda t: t.month, "d": lambda t: t.day, "D": lambda t: t.timetuple().tm_yday,
        "H": lambda t: t.hour, "k": lambda t: t.hour or 24, "K": lambda t: t.hour % 12,
        "h": lambda t: t.hour % 12 or 12, "m": lambda t: t.minute, "s": lambda t: t.second,
        "w": lambda t: t.isocalendar().week, "e": lambda t: t.isoweekday()}
    if letter not in numbers:
        raise ValueError(f"the pattern letter {letter!r} is not supported")
    return str(numbers[letter](t)).zfill(n)


def format_joda(pattern: str, t: datetime.datetime) -> str:
    """``t`` printed with a Joda-Time ``DateTimeFormat`` pattern: letters (``YYYY``, ``MM``,
    ``dd``, ``HH``, ``mm``, ``ss``, ``SSS``, ``D``, ``w``, ``E``, ``MMM``, ``a``…), ``'quoted'``
    literals (``''`` for a quote) and anything else as it is. Names are English."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "'":
            i += 1
            if i < len(pattern) and pattern[i] == "'":
                out.append("'")
                i += 1
                continue
            while True:
                if i >= len(pattern):
                    raise ValueError("an unterminated quote")
                if pattern[i] == "'" and pattern[i + 1:i + 2] == "'":
                    out.append("'")
                    i += 2
                elif pattern[i] == "'":
                    i += 1
                    break
                else:
                    out.append(pattern[i])
                    i += 1
        elif c.isascii() and c.isalpha():
            n = 1
            while i + n < len(pattern) and pattern[i + n] == c:
                n += 1
            out.append(_joda_field(c, n, t))
            i += n
        else:
            out.append(c)
            i += 1
    return "".join(out)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TimeBasedPartitioner:
    path_format: str
    partition_duration_ms: int
    timezone: str
    extractor: str = "Wallclock"
    timestamp_field: str = "timestamp"

    def __post_init__(self) -> None:
        if not self.path_format:
            raise ConfigError("path.format", self.path_format, "Path format cannot be empty.")
        if self.partition_duration_ms <= 0:
            raise ConfigError("partition.duration.ms", self.partition_duration_ms,
                              "Partition duration must be positive.")
        if not self.timezone:
            raise ConfigError("timezone", self.timezone, "Timezone cannot be empty.")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError("timezone", self.timezone, "Unknown timezone.") from None
        if self.extractor not in EXTRACTORS:
            raise ConfigError("timestamp.extractor", self.extractor, f"Must be one of: {', '.join(EXTRACTORS)}")
        try:
            format_joda(self.path_format, _EPOCH)
        except ValueError as e:
            raise ConfigError("path.format", self.path_format, f"Invalid Joda pattern: {e}") from None

    def timestamp(self, record: SinkRecord, now_ms: int) -> int | None:
        return extract_timestamp(self.extractor, self.timestamp_field, record, now_ms)

    def encode_timestamp(self, timestamp_ms: int) -> str:
        """Kafka-Connect-storage's ``getPartition``: the local time rounded down to the duration."""
        zone = zoneinfo.ZoneInfo(self.timezone)
        utc = datetime.datetime.fromtimestamp(timestamp_ms / 1000, datetime.UTC)
        offset = utc.astimezone(zone).utcoffset() or datetime.timedelta()
        local_ms = timestamp_ms + int(offset.total_seconds() * 1000)
        floored = local_ms // self.partition_duration_ms * self.partition_duration_ms
        return format_joda(self.path_format, _EPOCH + datetime.timedelta(milliseconds=floored))

    def encode_partition(self, record: SinkRecord, now_ms: int) -> str:
        return self.encode_timestamp(extract_timestamp(self.extractor, self.timestamp_field, record, now_ms))


def partitioner_from(config: Mapping[str, Any]) -> Partitioner:
    """The partitioner ``partitioner.class`` names (Confluent's class name, or its last part)."""
    name = str(config["partitioner.class"]).removeprefix(STORAGE)
    if name == "DefaultPartitioner":
        return DefaultPartitioner()
    if name == "FieldPartitioner":
        fields = tuple(f for f in config.get("partition.field.name") or [] if f)
        if not fields:
            raise ConfigError("partition.field.name", "", "FieldPartitioner needs partition.field.name")
        return FieldPartitioner(field_names=fields)
    if name in ("TimeBasedPartitioner", "DailyPartitioner", "HourlyPartitioner"):
        fixed = {"DailyPartitioner": ("'year'=YYYY/'month'=MM/'day'=dd", 86_400_000),
                 "HourlyPartitioner": ("'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH", 3_600_000)}
        path_format, duration = fixed.get(name, (str(config.get("path.format") or ""),
                                                 int(config.get("partition.duration.ms", -1))))
        return TimeBasedPartitioner(path_format=path_format, partition_duration_ms=duration,
                                    timezone=str(config.get("timezone") or ""),
                                    extractor=str(config.get("timestamp.extractor") or "Wallclock"),
                                    timestamp_field=str(config.get("timestamp.field") or "timestamp"))
    raise ConfigError("partitioner.class", config["partitioner.class"],
                      f"Unknown partitioner; one of: {', '.join(STORAGE + p for p in PARTITIONERS)}")


def object_key(*, topics_dir: str, topic: str, encoded_partition: str, kafka_partition: int, start_offset: int,
               extension: str, zero_pad_width: int = 10, directory_delim: str = "/", file_delim: str = "+") -> str:
    """Confluent's S3 object name: ``<topics.dir>/<topic>/<encoded>/<topic>+<partition>+<offset>.<ext>``."""
    directory = directory_delim.join(p for p in (topics_dir.strip(directory_delim), topic, encoded_partition) if p)
    name = file_delim.join((topic, str(kafka_partition), str(start_offset).zfill(zero_pad_width)))
    return f"{directory}{directory_delim}{name}{extension}"


__all__ = ["DefaultPartitioner", "FieldPartitioner", "Partitioner", "TimeBasedPartitioner", "extract_timestamp",
           "format_joda", "object_key", "partitioner_from"]
