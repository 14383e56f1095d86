"""Kafka's FileStream connectors: a source that tails a file line by line into one topic, and
a sink that appends each record's value as a line.

Source keys: ``file`` (stdin when absent), ``topic``, ``batch.size`` (default 2000). Each line
is a STRING value, no key; its source partition is ``{"filename": file}`` and its offset
``{"position": n}``, the byte position after the line, so a restart resumes where the stored
offset says. Sink keys: ``file`` (stdout when absent) and the sink ``topics``/``topics.regex``.
"""

from __future__ import annotations

import datetime
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from tomyum.connect.config import NO_DEFAULT as _NO
from tomyum.connect.config import ConfigDef, ConfigError, ConfigType, Importance, in_range
from tomyum.connect.connector import (
    ConnectError, SinkConnector, SinkTask, SourceConnector, SourceTask, Task,
)
from tomyum.connect.data import STRING_SCHEMA, SinkRecord, SourceRecord, Struct

VERSION = "4.4.0"
FILE_CONFIG = "file"
TOPIC_CONFIG = "topic"
TOPICS_CONFIG = "topics"
BATCH_SIZE_CONFIG = "batch.size"
DEFAULT_BATCH_SIZE = 2000
FILENAME_FIELD = "filename"
POSITION_FIELD = "position"


def _source_config() -> ConfigDef:
    return (ConfigDef()
            .define(FILE_CONFIG, ConfigType.STRING, None, Importance.HIGH,
                    "Source filename. If not specified, the standard input will be used")
            .define(TOPIC_CONFIG, ConfigType.LIST, _NO, Importance.HIGH,
                    "The topic to publish data to", validator=_single_topic)
            .define(BATCH_SIZE_CONFIG, ConfigType.INT, DEFAULT_BATCH_SIZE, Importance.LOW,
                    "The maximum number of records the source task can read from the file each time it is polled",
                    validator=in_range(1)))


def _single_topic(name: str, value: Any) -> None:
    if not isinstance(value, list) or len(value) != 1 or not value[0]:
        raise ConfigError(name, ",".join(value) if isinstance(value, list) else value,
                          "'topic' in FileStreamSourceConnector configuration requires definition of a single topic.")



class FileStreamSourceConnector(SourceConnector):
    version = VERSION

    def __init__(self) -> None:
        self._props: dict[str, str] = {}

    def config(self) -> ConfigDef:
        return _source_config()

    def start(self, props: Mapping[str, str]) -> None:
        self.config().parse(props)
        self._props = dict(props)

    def task_class(self) -> type[Task]:
        return FileStreamSourceTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self._props)]  # only one input stream makes sense

    def stop(self) -> None:
        pass

    def alter_offsets(self, connector_config: Mapping[str, str],
                      offsets: Mapping[Any, Mapping[str, Any] | None]) -> bool:
        # Kafka's FileStreamSourceConnector.alterOffsets: check the shape, then nothing else to do
        for partition, offset in offsets.items():
            if offset is None:
                continue
            if FILENAME_FIELD not in dict(partition):
                raise ConnectError(f"Partition objects for source connector offsets must contain the key '{FILENAME_FIELD}'")
            if POSITION_FIELD not in offset:
                raise ConnectError(f"Offset objects should either be null or contain the key '{POSITION_FIELD}'")
            position = offset[POSITION_FIELD]
            if isinstance(position, bool) or not isinstance(position, int):
                raise ConnectError("The value for the 'position' key in the offset is expected to be a Long value")
            if position < 0:
                raise ConnectError("The value for the 'position' key in the offset should be a non-negative value")
        return True


class FileStreamSourceTask(SourceTask):
    version = VERSION
    kafka_class = "org.apache.kafka.connect.file.FileStreamSourceTask"

    def __init__(self) -> None:
        self._stream: IO[bytes] | None = None
        self._filename: str | None = None
        self._topic = ""
        self._batch_size = DEFAULT_BATCH_SIZE
        self._position = 0
        self._buffer = b""
        self._stopped = threading.Event()

    def start(self, props: Mapping[str, str]) -> None:
        parsed = _source_config().parse(props)
        self._filename = parsed[FILE_CONFIG] or None
        self._topic = parsed[TOPIC_CONFIG][0]
        self._batch_size = parsed[BATCH_SIZE_CONFIG]

    def _open(self) -> bool:
        if self._stream is not None:
            return True
        if self._filename is None:
            self._stream = sys.stdin.buffer
            return True
        try:
            stream = open(self._filename, "rb")
        except FileNotFoundError:
            return False
        stored = self.context.offset_storage_reader.offset({FILENAME_FIELD: self._filename})
        if stored is not None:
            position = stored.get(POSITION_FIELD)
            if isinstance(position, int):
                stream.seek(position)
                self._position = position
        self._stream = stream
        return True

    def poll(self) -> list[SourceRecord] | None:
        if not self._open():
            self._stopped.wait(1.0)
            return None
        assert self._stream is not None
        chunk = self._stream.read(65536) if self._filename is not None else self._stream.readline()
        if chunk:
            self._buffer += chunk
        records: list[SourceRecord] = []
        start = 0
        while len(records) < self._batch_size:
            nl = self._buffer.find(b"\n", start)
            if nl < 0:
                break
            raw = self._buffer[start:nl]
            self._position += nl + 1 - start
            start = nl + 1
            line = raw[:-1] if raw.endswith(b"\r") else raw
            records.append(SourceRecord(
                source_partition={FILENAME_FIELD: self._filename}, source_offset={POSITION_FIELD: self._position},
                topic=self._topic, value_schema=STRING_SCHEMA, value=line.decode("utf-8"),
                timestamp=int(time.time() * 1000)))
        self._buffer = self._buffer[start:]
        if not records and not chunk:
            self._stopped.wait(1.0)
        return records or None

    def stop(self) -> None:
        self._stopped.set()
        if self._stream is not None and self._filename is not None:
            self._stream.close()
        self._stream = None


def _sink_config() -> ConfigDef:
    return ConfigDef().define(FILE_CONFIG, ConfigType.STRING, None, Importance.HIGH,
                              "Destination filename. If not specified, the standard output will be used")


class FileStreamSinkConnector(SinkConnector):
    version = VERSION

    def __init__(self) -> None:
        self._props: dict[str, str] = {}

    def config(self) -> ConfigDef:
        return _sink_config()

    def start(self, props: Mapping[str, str]) -> None:
        self._props = dict(props)

    def task_class(self) -> type[Task]:
        return FileStreamSinkTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self._props) for _ in range(max_tasks)]

    def stop(self) -> None:
        pass

    def alter_offsets(self, connector_config: Mapping[str, str], offsets: Mapping[tuple[str, int], int | None]) -> bool:
        return True  # the sink keeps no offsets of its own


def java_string(value: Any) -> str:
    """A value as Java's ``String.valueOf`` prints it (what Kafka's sink writes): maps ``{k=v, …}``,
    lists ``[a, b]``, ``true``/``false``, ``null``, structs ``Struct{a=1,b=x}``, Date/Time/Timestamp
    values as ``java.util.Date`` prints them (``Thu Feb 29 00:00:00 UTC 2024``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        from tomyum.connect.transforms import _java_float_str
        return _java_float_str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{java_string(k)}={java_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(java_string(v) for v in value) + "]"
    if isinstance(value, datetime.datetime):  # java.util.Date.toString(): in the local time zone
        return value.astimezone().strftime("%a %b %d %H:%M:%S %Z %Y")
    if isinstance(value, Struct):
        return "Struct{" + ",".join(f"{f.name}={java_string(value.get(f.name))}" for f in value.schema.fields
                                    if value.get(f.name) is not None) + "}"
    return str(value)


class FileStreamSinkTask(SinkTask):
    version = VERSION
    kafka_class = "org.apache.kafka.connect.file.FileStreamSinkTask"

    def __init__(self) -> None:
        self._out: IO[str] | None = None
        self._filename: str | None = None

    def start(self, props: Mapping[str, str]) -> None:
        self._filename = _sink_config().parse(props)[FILE_CONFIG] or None
        self._out = open(self._filename, "a", encoding="utf-8") if self._filename else sys.stdout

    def put(self, records: list[SinkRecord]) -> None:
        assert self._out is not None
        for r in records:
            self._out.write(java_string(r.value) + "\n")

    def flush(self, current_offsets: Mapping[tuple[str, int], int]) -> None:
        if self._out is not None:
            self._out.flush()

    def stop(self) -> None:
        if self._out is not None and self._filename:
            self._out.close()
        self._out = None
