"""ListOffsets (2), OffsetForLeaderEpoch (23) and DeleteRecords (21) called below the socket."""

from __future__ import annotations

from typing import Any

import pytest

from tomyum.errors import ErrorCode
from tomyum.protocol.records import build_batch
from tomyum.testing.handlers import BlockingHarness

PRODUCE, LIST_OFFSETS, DELETE_RECORDS, OFFSET_FOR_LEADER_EPOCH = 0, 2, 21, 23
COVERS = {LIST_OFFSETS: "ListOffsets", DELETE_RECORDS: "DeleteRecords", OFFSET_FOR_LEADER_EPOCH: "OffsetForLeaderEpoch"}
LATEST, EARLIEST, MAX_TIMESTAMP = -1, -2, -3


def fill(kafka: BlockingHarness, topic: str, *timestamps: int) -> None:
    """One single-record batch per timestamp."""
    kafka.create_topic(topic)
    for ts in timestamps:
        kafka.call(PRODUCE, 9, {"acks": -1, "timeout": 5000, "topic_data": [
            {"name": topic, "partition_data": [{"index": 0, "records": build_batch([(None, b"v")], timestamp=ts)}]}]})


def list_offsets(kafka: BlockingHarness, version: int, topic: str, timestamp: int, partition: int = 0,
                 isolation_level: int = 0) -> Any:
    r = kafka.call(LIST_OFFSETS, version, {"replica_id": -1, "isolation_level": isolation_level, "topics": [
        {"name": topic, "partitions": [{"partition_index": partition, "timestamp": timestamp,
                                        "current_leader_epoch": -1}]}]})
    return r.topics[0].partitions[0]


@pytest.mark.parametrize("version", [1, 7])
def test_list_offsets_answers_earliest_and_latest(kafka: BlockingHarness, version: int) -> None:
    fill(kafka, "t", 1000, 2000, 3000)
    earliest = list_offsets(kafka, version, "t", EARLIEST)
    latest = list_offsets(kafka, version, "t", LATEST)
    assert (earliest.error_code, earliest.offset) == (ErrorCode.none, 0)
    assert (latest.error_code, latest.offset) == (ErrorCode.none, 3)


@pytest.mark.parametrize("version", [1, 7])
def test_list_offsets_by_timestamp_finds_the_first_record_at_or_after_it(kafka: BlockingHarness,
                                                                         version: int) -> None:
    fill(kafka, "t", 1000, 2000, 3000)
    found = list_offsets(kafka, version, "t", 1500)
    assert (found.offset, found.timestamp) == (1, 2000)
    after_all = list_offsets(kafka, version, "t", 5000)
    assert (after_all.offset, after_all.timestamp, after_all.leader_epoch if version >= 4 else -1) == (-1, -1, -1)
    if version >= 4:
        assert found.leader_epoch == 0


def test_list_offsets_v7_max_timestamp_finds_the_record_with_the_largest_timestamp(kafka: BlockingHarness) -> None:
    fill(kafka, "t", 1000, 9000, 3000)
    found = list_offsets(kafka, 7, "t", MAX_TIMESTAMP)
    assert (found.offset, found.timestamp) == (1, 9000)


def test_list_offsets_of_an_unknown_partition_is_unknown_topic_or_partition(kafka: BlockingHarness) -> None:
    fill(kafka, "t")
    assert list_offsets(kafka, 7, "absent", LATEST).error_code == ErrorCode.unknown_topic_or_partition
    assert list_offsets(kafka, 7, "t", LATEST, partition=4).error_code == ErrorCode.unknown_topic_or_partition


def test_a_special_timestamp_is_answered_from_its_version_on_and_any_other_is_unsupported(
        kafka: BlockingHarness) -> None:
    """As Kafka 4.4 answers (checked by the differential harness): -3 from v7, -4 (earliest local,
    the log start: nothing is tiered) from v8, -5 and -6 (nothing is tiered: offset -1) from v9
    and v11; before those, and for a negative timestamp Kafka does not define,
    UNSUPPORTED_VERSION."""
    fill(kafka, "t", 1000, 2000)
    answers = {(v, ts): (r.error_code, r.offset) for v in (1, 7, 8, 9, 11) for ts in (-3, -4, -5, -6, -42)
               for r in [list_offsets(kafka, v, "t", ts)]}
    unsupported = (ErrorCode.unsupported_version, -1)
    assert answers == {(v, ts): (answer if v >= since else unsupported) for v in (1, 7, 8, 9, 11)
                       for ts, since, answer in ((-3, 7, (0, 1)), (-4, 8, (0, 0)), (-5, 9, (0, -1)),
                                                 (-6, 11, (0, -1)), (-42, 99, unsupported))}


def leader_epoch(kafka: BlockingHarness, version: int, topic: str, epoch: int, current: int = -1,
                 partition: int = 0) -> Any:
    r = kafka.call(OFFSET_FOR_LEADER_EPOCH, version, {"replica_id": -1, "topics": [
        {"topic": topic, "partitions": [{"partition": partition, "leader_epoch": epoch,
                                         "current_leader_epoch": current}]}]})
    return r.topics[0].partitions[0]


@pytest.mark.parametrize("version", [2, 4])
def test_offset_for_leader_epoch_ends_the_current_epoch_at_the_log_end(kafka: BlockingHarness, version: int) -> None:
    fill(kafka, "t", 1, 2)
    p = leader_epoch(kafka, version, "t", 0)
    assert (p.error_code, p.leader_epoch, p.end_offset) == (ErrorCode.none, 0, 2)


def test_offset_for_leader_epoch_of_a_later_epoch_is_unknown(kafka: BlockingHarness) -> None:
    fill(kafka, "t", 1)
    p = leader_epoch(kafka, 4, "t", 7)
    assert (p.error_code, p.leader_epoch, p.end_offset) == (ErrorCode.none, -1, -1)


def test_offset_for_leader_epoch_with_a_current_epoch_ahead_of_the_broker_is_unknown_leader_epoch(
        kafka: BlockingHarness) -> None:
    fill(kafka, "t", 1)
    assert leader_epoch(kafka, 4, "t", 0, current=5).error_code == ErrorCode.unknown_leader_epoch


def test_offset_for_leader_epoch_of_an_unknown_partition_is_unknown_topic_or_partition(kafka: BlockingHarness) -> None:
    assert leader_epoch(kafka, 4, "absent", 0).error_code == ErrorCode.unknown_topic_or_partition


def delete_records(kafka: BlockingHarness, version: int, topic: str, offset: int, partition: int = 0) -> Any:
    r = kafka.call(DELETE_RECORDS, version, {"timeout": 5000, "topics": [
        {"name": topic, "partitions": [{"partition_index": partition, "offset": offset}]}]})
    return r.topics[0].partitions[0]


@pytest.mark.parametrize("version", [0, 2])
def test_delete_records_moves_the_log_start_offset_up(kafka: BlockingHarness, version: int) -> None:
    fill(kafka, "t", 1, 2, 3)
    p = delete_records(kafka, version, "t", 2)
    assert (p.error_code, p.low_watermark) == (ErrorCode.none, 2)
    assert list_offsets(kafka, 7, "t", EARLIEST).offset == 2


def test_delete_records_to_minus_one_deletes_up_to_the_high_watermark(kafka: BlockingHarness) -> None:
    fill(kafka, "t", 1, 2, 3)
    assert delete_records(kafka, 2, "t", -1).low_watermark == 3


def test_delete_records_past_the_high_watermark_is_offset_out_of_range(kafka: BlockingHarness) -> None:
    fill(kafka, "t", 1)
    assert delete_records(kafka, 2, "t", 10).error_code == ErrorCode.offset_out_of_range


def test_delete_records_of_an_unknown_partition_is_unknown_topic_or_partition(kafka: BlockingHarness) -> None:
    assert delete_records(kafka, 2, "absent", 0).error_code == ErrorCode.unknown_topic_or_partition


def test_delete_records_of_the_offsets_topic_is_invalid_topic(kafka: BlockingHarness) -> None:
    assert delete_records(kafka, 2, "__consumer_offsets", 0).error_code == ErrorCode.invalid_topic_exception
