"""TopologyTestDriver: run a topology with no broker (Kafka Streams' test driver).

Deterministic: one task (``0_0``), records processed one at a time, synchronously, in the
order piped; the task commits (flushes its record cache, if ``statestore_cache_max_bytes``
gives it one, and its stores) after each input record. Wall-clock time
is a number the test moves with :meth:`advance_wall_clock_time`, which fires wall-clock
punctuators; it stamps records piped without a timestamp. Stream-time punctuators fire
after each input record. Output topics are modelled as one partition (0). Records written
to a topic the topology also reads are piped back in, after the record that produced them.

::

    with TopologyTestDriver(builder.build(), config) as driver:
        driver.pipe_input("words", None, "hello world", timestamp=0)
        assert [(r.key, r.value) for r in driver.read_output("counts")] == [...]
"""

from __future__ import annotations

import shutil
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from tomyum.streams._record import Headers, Record
from tomyum.streams._task import StreamTask
from tomyum.streams.processor import StreamsConfig
from tomyum.streams.serdes import Serde
from tomyum.streams.state.base import ChangelogRecord, KeyValueStore
from tomyum.streams.state.caching import CachingKeyValueStore, ThreadCache
from tomyum.streams.state.versioned import VersionedKeyValueStore
from tomyum.streams.state.window import SessionStore, WindowStore
from tomyum.streams.topology import Topology

__all__ = ["TopologyTestDriver"]

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class _Produced:
    record: Record[bytes | None, bytes | None]
    key_serde: Serde[Any]
    value_serde: Serde[Any]


class TopologyTestDriver:
    def __init__(self, topology: Topology, config: StreamsConfig | None = None, *,
                 initial_wall_clock_time_ms: int = 0) -> None:
        self.config = config or StreamsConfig()
        self._temp_dir = None if self.config.state_dir is not None else tempfile.mkdtemp(prefix="tomyum-streams-")
        state_dir = Path(self.config.state_dir or self._temp_dir or ".")
        self._outputs: dict[str, list[_Produced]] = {}
        self._read_positions: dict[str, int] = {}
        self._changelogs: dict[str, list[ChangelogRecord]] = {}
        self._next_offsets: dict[tuple[str, int], int] = {}
        self._pending: deque[Record[bytes | None, bytes | None]] = deque()
        self.topology = topology
        self.task = StreamTask(topology, self.config, task_id="0_0", state_dir=state_dir,
                               collector=self._collect, changelog=self._log_change,
                               wall_clock_ms=initial_wall_clock_time_ms,
                               cache=ThreadCache(self.config.cache_max_bytes))

    def _collect(self, topic: str, record: Record[bytes | None, bytes | None], key_serde: Serde[Any],
                 value_serde: Serde[Any]) -> None:
        placed = self._place(topic, 0, record)
        self._outputs.setdefault(topic, []).append(_Produced(placed, key_serde, value_serde))
        if topic in self.topology.sources:
            self._pending.append(placed)

    def _log_change(self, change: ChangelogRecord) -> None:
        self._changelogs.setdefault(change.store_name, []).append(change)

    def _place(self, topic: str, partition: int, record: Record[bytes | None, bytes | None]) -> Record[bytes | None, bytes | None]:
        offset = self._next_offsets.get((topic, partition), 0)
        self._next_offsets[(topic, partition)] = offset + 1
        return Record(key=record.key, value=record.value, timestamp=record.timestamp, headers=record.headers,
                      topic=topic, partition=partition, offset=offset)

    def pipe_input(self, topic: str, key: Any, value: Any, *, timestamp: int | None = None,
                   headers: Headers = (), partition: int = 0) -> None:
        """Serialize ``key`` and ``value`` with the source's serdes, process the record and
        everything it leads to, then commit. ``timestamp`` defaults to wall-clock time."""
        source = self.topology.sources.get(topic)
        if source is None:
            raise KeyError(f"topic {topic} is not a source of this topology")
        key_serde = source.key_serde or self.config.default_key_serde
        value_serde = source.value_serde or self.config.default_value_serde
        raw: Record[bytes | None, bytes | None] = Record(
            key=key_serde.serialize(key), value=value_serde.serialize(value),
            timestamp=self.task.wall_clock_ms if timestamp is None else timestamp, headers=headers,
        )
        self._pending.append(self._place(topic, partition, raw))
        self._drain()

    def advance_wall_clock_time(self, ms: int) -> None:
        """Move wall-clock time forward (it never moves back), fire the wall-clock
        punctuators that are due, pipe back what they wrote to source topics, and commit."""
        if ms < 0:
            raise ValueError("wall-clock time does not go back")
        self.task.advance_wall_clock(ms)
        self._drain()

    def _drain(self) -> None:
        while True:
            while self._pending:
                self.task.process(self._pending.popleft())
            self.task.commit()  # what the record cache forwards may be piped back in
            if not self._pending:
                return

    def read_output(self, topic: str, *, key_serde: Serde[Any] | None = None,
                    value_serde: Serde[Any] | None = None) -> list[Record[Any, Any]]:
        """The records written to ``topic`` since the last read, deserialized with the
        sink's serdes unless others are given."""
        produced = self._outputs.get(topic, [])
        start = self._read_positions.get(topic, 0)
        self._read_positions[topic] = len(produced)
        return [
            p.record.with_key((key_serde or p.key_serde).deserialize(p.record.key)).with_value(
                (value_serde or p.value_serde).deserialize(p.record.value))
            for p in produced[start:]
        ]

    def read_changelog(self, store_name: str) -> list[ChangelogRecord]:
        """Every write the store logged so far, as its changelog topic would receive them."""
        return list(self._changelogs.get(store_name, []))

    def get_key_value_store(self, name: str) -> KeyValueStore[Any, Any] | CachingKeyValueStore[Any, Any]:
        store = self.task.stores.get(name)
        if isinstance(store, CachingKeyValueStore):
            return store
        return self._store(name, KeyValueStore)

    def get_versioned_key_value_store(self, name: str) -> VersionedKeyValueStore[Any, Any]:
        return self._store(name, VersionedKeyValueStore)

    def get_window_store(self, name: str) -> WindowStore[Any, Any]:
        return self._store(name, WindowStore)

    def get_session_store(self, name: str) -> SessionStore[Any, Any]:
        return self._store(name, SessionStore)

    def _store(self, name: str, kind: type[S]) -> S:
        store = self.task.stores.get(name)
        if not isinstance(store, kind):
            raise KeyError(f"no {kind.__name__} named {name}; stores: {sorted(self.task.stores)}")
        return store

    def metrics(self) -> dict[str, int]:
        """Task metrics by Kafka's names: ``dropped-records-total``."""
        return {"dropped-records-total": self.task.dropped_records}

    def close(self) -> None:
        """Close processors and stores and delete the temporary state directory, if any."""
        self.task.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    def __enter__(self) -> TopologyTestDriver:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
