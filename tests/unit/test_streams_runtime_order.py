"""KafkaStreams' choice of the next record among a task's partitions (no broker needed)."""

from __future__ import annotations

from typing import Any

import pytest

from tomyum.streams import Record, StreamsBuilder, StreamsConfig
from tomyum.streams._partition_group import PartitionGroup
from tomyum.streams.runtime import KafkaStreams

pytestmark = pytest.mark.timeout(30)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str | None, int]] = []

    def process(self, record: Record[Any, Any]) -> None:
        self.seen.append((record.topic, record.timestamp))


def test_a_tasks_partitions_are_interleaved_by_timestamp_each_in_its_order() -> None:
    b = StreamsBuilder()
    b.stream(["clicks", "views"]).to("out")
    app = KafkaStreams(b.build(), StreamsConfig(application_id="order"), bootstrap_servers="unused:9092")
    recorder = Recorder()
    app.tasks["0_0"] = recorder  # type: ignore[assignment]

    def records(topic: str, *stamps: int) -> list[Record[bytes | None, bytes | None]]:
        return [Record(key=None, value=b"", timestamp=t, topic=topic, partition=0, offset=i)
                for i, t in enumerate(stamps)]

    # views arrive out of order within their partition: that order is kept
    group = PartitionGroup([("clicks", 0), ("views", 0)], max_task_idle_ms=0)
    group.add(("clicks", 0), records("clicks", 10, 30, 50))
    group.add(("views", 0), records("views", 20, 5, 40))
    app._task_manager.partition_groups["0_0"] = group
    app._task_manager.process_ready()
    assert recorder.seen == [("clicks", 10), ("views", 20), ("views", 5), ("clicks", 30), ("views", 40),
                             ("clicks", 50)]
    assert app._task_manager.positions == {("clicks", 0): 3, ("views", 0): 3}
