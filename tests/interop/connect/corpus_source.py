"""The twin of CorpusSource.java for tomyum connect: the records of a corpus file, once, each
line ``{"key": envelope|null, "value": envelope|null, "headers": [[name, envelope]…],
"timestamp": ms}`` with every envelope decoded by tomyum's JsonConverter (schemas.enable); once
``commit_record`` has been called for every record, it creates the file ``done.file``."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tomyum.connect.config import ConfigDef
from tomyum.connect.connector import SourceConnector, SourceTask, Task
from tomyum.connect.converters import JsonConverter, dumps
from tomyum.connect.data import Headers, Schema, SourceRecord


class CorpusSource(SourceConnector):
    version = "1"

    def start(self, props: Mapping[str, str]) -> None:
        self.props = dict(props)

    def task_class(self) -> type[Task]:
        return CorpusTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [self.props]

    def stop(self) -> None:
        pass

    def config(self) -> ConfigDef:
        return ConfigDef()


class CorpusTask(SourceTask):
    version = "1"

    def start(self, props: Mapping[str, str]) -> None:
        self.file, self.topic = props["file"], props["topic"]
        self.converter = JsonConverter()
        self.converter.configure({"schemas.enable": "true"}, False)
        self.done_file = Path(props["done.file"])
        self.done = False
        self.expected, self.committed = -1, 0
        self.stopped = threading.Event()

    def _decode(self, envelope: Any) -> tuple[Schema | None, Any]:
        if envelope is None:
            return None, None
        return self.converter.to_connect_data(self.topic, dumps(envelope))

    def poll(self) -> list[SourceRecord] | None:
        if self.done:
            self.stopped.wait(0.1)
            return None
        self.done = True
        records = []
        lines = Path(self.file).read_text(encoding="utf-8").splitlines()
        self.expected = len(lines)
        for i, text in enumerate(lines):
            line = json.loads(text)
            key_schema, key = self._decode(line["key"])
            value_schema, value = self._decode(line["value"])
            headers = Headers()
            for name, envelope in line["headers"]:
                schema, v = self._decode(envelope)
                headers.add(name, v, schema)
            records.append(SourceRecord(topic=self.topic, key_schema=key_schema, key=key,
                                        value_schema=value_schema, value=value, timestamp=line["timestamp"],
                                        headers=headers, source_partition={"file": self.file},
                                        source_offset={"line": i}))
        return records

    def commit_record(self, record: SourceRecord, metadata: Any) -> None:
        self.committed += 1
        if self.committed == self.expected:
            self.done_file.touch(exist_ok=False)

    def stop(self) -> None:
        self.stopped.set()
