"""DescribeLogDirs (35) called below the socket, on the local log engine (sizes on disk)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tomyum.config import STANDARD_AUTHORIZER
from tomyum.errors import ErrorCode
from tomyum.protocol.records import build_batch
from tomyum.storage.engine import TopicPartition
from tomyum.storage.local.log_store import LocalLogStore
from tomyum.testing.handlers import BlockingHarness

PRODUCE, DESCRIBE_LOG_DIRS = 0, 35
COVERS = {DESCRIBE_LOG_DIRS: "DescribeLogDirs"}


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[BlockingHarness]:
    with BlockingHarness(tmp_path / "data", engine=LocalLogStore) as h:
        yield h


def produce(kafka: BlockingHarness, topic: str, partition: int, *values: bytes) -> None:
    batch = build_batch([(None, v) for v in values])
    r = kafka.call(PRODUCE, 9, {"acks": -1, "timeout": 5000, "topic_data": [
        {"name": topic, "partition_data": [{"index": partition, "records": batch}]}]})
    assert r.responses[0].partition_responses[0].error_code == ErrorCode.none


def sizes(result: object) -> dict[tuple[str, int], int]:
    return {(t.name, p.partition_index): int(p.partition_size) for t in result.topics  # type: ignore[attr-defined]
            for p in t.partitions}


@pytest.mark.parametrize("version", [1, 4, 5])
def test_describe_log_dirs_answers_the_data_dir_with_each_partition_size_on_disk(
        disk: BlockingHarness, tmp_path: Path, version: int) -> None:
    disk.create_topic("big", 2)
    disk.create_topic("small")
    produce(disk, "big", 1, b"x" * 5000, b"y" * 5000)
    produce(disk, "small", 0, b"z")
    r = disk.call(DESCRIBE_LOG_DIRS, version, {"topics": None})
    (result,) = r.results
    assert result.error_code == ErrorCode.none
    assert result.log_dir == str((tmp_path / "data").resolve())
    got = sizes(result)
    assert got[("big", 0)] == 0 and got[("big", 1)] > 10000 and 0 < got[("small", 0)] < 1000
    assert got[("big", 1)] == disk.broker.store.disk_usage()[TopicPartition("big", 1)].size_in_bytes
    assert all(p.offset_lag == 0 and not p.is_future_key for t in result.topics for p in t.partitions)
    if version >= 4:  # KIP-827: the volume's size
        assert 0 < result.usable_bytes <= result.total_bytes
    if version >= 5:  # KIP-1066: never cordoned
        assert result.is_cordoned is False


def test_describe_log_dirs_of_named_partitions_leaves_out_those_the_broker_does_not_have(
        disk: BlockingHarness) -> None:
    disk.create_topic("t", 2)
    r = disk.call(DESCRIBE_LOG_DIRS, 4, {"topics": [{"topic": "t", "partitions": [1, 7]},
                                                    {"topic": "absent", "partitions": [0]}]})
    assert set(sizes(r.results[0])) == {("t", 1)}


def test_describe_log_dirs_needs_describe_on_the_cluster(tmp_path: Path) -> None:
    settings = {"authorizer.class.name": STANDARD_AUTHORIZER, "super.users": "User:admin"}
    with BlockingHarness(tmp_path / "secured", settings=settings) as kafka:
        r = kafka.call(DESCRIBE_LOG_DIRS, 4, {"topics": None})
        assert (r.error_code, r.results) == (ErrorCode.cluster_authorization_failed, ())
