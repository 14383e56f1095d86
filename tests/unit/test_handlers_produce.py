"""Produce (0) called below the socket; responses read through the hand-written encoder."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tomyum.errors import ErrorCode, StorageError
from tomyum.protocol.records import build_batch
from tomyum.storage.engine import TopicPartition
from tomyum.storage.memory.log_store import MemoryLogStore
from tomyum.storage.memory.partition_log import MemoryPartitionLog
from tomyum.testing.handlers import BlockingHarness

PRODUCE = 0
COVERS = {PRODUCE: "Produce"}


def produce(topic: str, records: bytes, *, partition: int = 0, acks: int = -1) -> dict[str, Any]:
    return {"acks": acks, "timeout": 5000,
            "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": records}]}]}


def partition_response(r: Any) -> Any:
    (topic,) = r.responses
    (part,) = topic.partition_responses
    return part


@pytest.mark.parametrize("version", [3, 9])
@pytest.mark.parametrize("acks", [1, -1])
def test_produce_appends_batches_at_consecutive_offsets(kafka: BlockingHarness, version: int, acks: int) -> None:
    kafka.create_topic("t")
    first = partition_response(kafka.call(PRODUCE, version, produce("t", build_batch([(b"k", b"a"), (None, b"b")]),
                                                                     acks=acks)))
    second = partition_response(kafka.call(PRODUCE, version, produce("t", build_batch([(None, b"c")]), acks=acks)))
    assert (first.error_code, first.base_offset) == (ErrorCode.none, 0)
    assert (second.error_code, second.base_offset) == (ErrorCode.none, 2)


def test_produce_with_acks_0_sends_no_response(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    assert kafka.call(PRODUCE, 9, produce("t", build_batch([(None, b"v")]), acks=0)) is None
    assert kafka.connection.closes == []
    assert kafka.broker.store.offsets(TopicPartition("t", 0)).log_end_offset == 1


def test_a_failed_acks_0_produce_closes_the_connection_so_the_client_notices(kafka: BlockingHarness) -> None:
    assert kafka.call(PRODUCE, 9, produce("absent", build_batch([(None, b"v")]), acks=0)) is None
    assert len(kafka.connection.closes) == 1


def test_produce_to_an_unknown_topic_is_unknown_topic_or_partition(kafka: BlockingHarness) -> None:
    r = partition_response(kafka.call(PRODUCE, 9, produce("absent", build_batch([(None, b"v")]))))
    assert r.error_code == ErrorCode.unknown_topic_or_partition


def test_produce_to_a_partition_the_topic_lacks_is_unknown_topic_or_partition(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 1)
    r = partition_response(kafka.call(PRODUCE, 9, produce("t", build_batch([(None, b"v")]), partition=5)))
    assert r.error_code == ErrorCode.unknown_topic_or_partition


@pytest.mark.parametrize("internal", ["__consumer_offsets", "__transaction_state"])
def test_produce_to_an_internal_topic_is_invalid_topic(kafka: BlockingHarness, internal: str) -> None:
    r = partition_response(kafka.call(PRODUCE, 9, produce(internal, build_batch([(None, b"v")]))))
    assert r.error_code == ErrorCode.invalid_topic_exception


def test_produce_with_acks_other_than_0_1_or_minus_1_is_invalid_required_acks(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    r = partition_response(kafka.call(PRODUCE, 9, produce("t", build_batch([(None, b"v")]), acks=2)))
    assert r.error_code == ErrorCode.invalid_required_acks


def test_produce_of_a_batch_with_a_bad_crc_is_corrupt_message(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    batch = bytearray(build_batch([(None, b"value")]))
    batch[-1] ^= 0xFF
    r = partition_response(kafka.call(PRODUCE, 9, produce("t", bytes(batch))))
    assert r.error_code == ErrorCode.corrupt_message


def test_acks_all_with_min_insync_replicas_above_the_replicas_is_capped_as_kafka_4_does(
        kafka: BlockingHarness) -> None:
    """Kafka 4 caps the effective min.insync.replicas at the replica count (checked against
    Apache Kafka 4.4 by make test-kafka): on one broker acks=all is answered."""
    kafka.create_topic("t", 1, {"min.insync.replicas": "2"})
    assert partition_response(kafka.call(PRODUCE, 9, produce("t", build_batch([(None, b"v")]), acks=-1))
                              ).error_code == ErrorCode.none
    assert partition_response(kafka.call(PRODUCE, 9, produce("t", build_batch([(None, b"v")]), acks=1))
                              ).error_code == ErrorCode.none


def idempotent(seq: int, epoch: int = 0, producer_id: int = 1000) -> bytes:
    return build_batch([(None, b"v")], producer_id=producer_id, producer_epoch=epoch, base_sequence=seq)


def test_an_idempotent_retry_is_answered_with_its_original_offset(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    first = partition_response(kafka.call(PRODUCE, 9, produce("t", idempotent(0))))
    retry = partition_response(kafka.call(PRODUCE, 9, produce("t", idempotent(0))))
    assert (retry.error_code, retry.base_offset) == (ErrorCode.none, first.base_offset)
    assert kafka.broker.store.offsets(TopicPartition("t", 0)).log_end_offset == 1


def test_an_idempotent_sequence_gap_is_out_of_order_sequence_number(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    partition_response(kafka.call(PRODUCE, 9, produce("t", idempotent(0))))
    r = partition_response(kafka.call(PRODUCE, 9, produce("t", idempotent(5))))
    assert r.error_code == ErrorCode.out_of_order_sequence_number


def test_an_idempotent_batch_of_an_older_epoch_is_invalid_producer_epoch(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    partition_response(kafka.call(PRODUCE, 9, produce("t", idempotent(0, epoch=3))))
    r = partition_response(kafka.call(PRODUCE, 9, produce("t", idempotent(1, epoch=2))))
    assert r.error_code == ErrorCode.invalid_producer_epoch


def test_records_refused_by_validation_answer_the_log_start_offset_as_kafka_does(kafka: BlockingHarness) -> None:
    """Kafka's ReplicaManager answers a RecordValidationException (KIP-467) with the partition's log
    start offset; other refusals (unknown partition, too large) with -1 (the differential harness)."""
    kafka.create_topic("c", 1, {"cleanup.policy": "compact"})
    kafka.call(PRODUCE, 9, produce("c", build_batch([(b"k", b"a"), (b"k", b"b")])))
    kafka.run(kafka.broker.store.delete_records(TopicPartition("c", 0), 1))
    refused = partition_response(kafka.call(PRODUCE, 9, produce("c", build_batch([(None, b"no key")]))))
    assert (refused.error_code, refused.log_start_offset) == (ErrorCode.invalid_record, 1)
    assert [e.batch_index for e in refused.record_errors] == [0]
    unknown = partition_response(kafka.call(PRODUCE, 9, produce("c", build_batch([(b"k", b"v")]), partition=3)))
    assert (unknown.error_code, unknown.log_start_offset) == (ErrorCode.unknown_topic_or_partition, -1)


class StalledDisk(MemoryLogStore):
    """A log engine whose group commit never finishes (a disk that hangs in fsync)."""

    def _commit_soon(self, plog: MemoryPartitionLog) -> None:
        pass


class FailingDisk(MemoryLogStore):
    """A log engine whose group commit fails (fsync answers EIO)."""

    def _commit_soon(self, plog: MemoryPartitionLog) -> None:
        asyncio.get_running_loop().call_soon(plog.fail_waiters, StorageError("fsync failed: Input/output error"))


def test_acks_all_not_durable_within_the_request_timeout_is_request_timed_out(tmp_path: Path) -> None:
    with BlockingHarness(tmp_path / "data", engine=StalledDisk) as kafka:
        kafka.create_topic("t", 2)
        request = produce("t", build_batch([(None, b"v")]))
        request["timeout"] = 50
        request["topic_data"][0]["partition_data"].append({"index": 1, "records": build_batch([(None, b"w")])})
        started = time.monotonic()
        (topic,) = kafka.call(PRODUCE, 9, request).responses
        assert time.monotonic() - started >= 0.05
        assert [p.error_code for p in topic.partition_responses] == [ErrorCode.request_timed_out] * 2
        assert kafka.broker.store.offsets(TopicPartition("t", 0)).high_watermark == 0


def test_acks_all_whose_group_commit_fails_is_kafka_storage_error_and_acks_1_is_answered(tmp_path: Path) -> None:
    with BlockingHarness(tmp_path / "data", engine=FailingDisk) as kafka:
        kafka.create_topic("t")
        failed = partition_response(kafka.call(PRODUCE, 9, produce("t", build_batch([(None, b"v")]))))
        assert failed.error_code == ErrorCode.kafka_storage_error
        assert failed.error_message == "fsync failed: Input/output error"
        written = partition_response(kafka.call(PRODUCE, 9, produce("t", build_batch([(None, b"v")]), acks=1)))
        assert (written.error_code, written.base_offset) == (ErrorCode.none, 1)
