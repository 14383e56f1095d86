"""Fetch (1) called below the socket; responses read through the hand-written encoder."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tomyum.config import STANDARD_AUTHORIZER
from tomyum.errors import ErrorCode
from tomyum.protocol.records import build_batch, decode_records, iter_batches
from tomyum.storage.engine import TopicPartition
from tomyum.storage.local import LocalLogStore
from tomyum.testing.handlers import BlockingHarness

PRODUCE, FETCH = 0, 1
COVERS = {FETCH: "Fetch"}


def fetch(topic: str, offset: int = 0, *, partition: int = 0, max_wait: int = 0, min_bytes: int = 1,
          isolation_level: int = 0) -> dict[str, Any]:
    return {"max_wait": max_wait, "min_bytes": min_bytes, "max_bytes": 1 << 20, "isolation_level": isolation_level,
            "topics": [{"topic": topic, "partitions": [
                {"partition": partition, "fetch_offset": offset, "partition_max_bytes": 1 << 20}]}]}


def produce(topic: str, *values: bytes) -> dict[str, Any]:
    batch = build_batch([(None, v) for v in values])
    return {"acks": -1, "timeout": 5000,
            "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": batch}]}]}


def only_partition(r: Any) -> Any:
    (topic,) = r.responses
    (part,) = topic.partitions
    return part


def values(part: Any) -> list[bytes | None]:
    """The record values of every batch fetched (each batch checked: CRC, length)."""
    data = part.records or b""
    return [rec.value for h in iter_batches(data) for rec in decode_records(data[h.position:h.end])]


@pytest.mark.parametrize("version", [4, 12])
def test_fetch_returns_the_records_from_the_offset_with_the_high_watermark(kafka: BlockingHarness,
                                                                           version: int) -> None:
    kafka.create_topic("t")
    kafka.call(PRODUCE, 9, produce("t", b"a", b"b"))
    kafka.call(PRODUCE, 9, produce("t", b"c"))
    part = only_partition(kafka.call(FETCH, version, fetch("t")))
    assert (part.error_code, part.high_watermark, part.last_stable_offset) == (ErrorCode.none, 3, 3)
    assert values(part) == [b"a", b"b", b"c"]


def test_fetch_at_the_log_end_returns_no_records(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    kafka.call(PRODUCE, 9, produce("t", b"a"))
    part = only_partition(kafka.call(FETCH, 12, fetch("t", 1)))
    assert (part.error_code, part.high_watermark) == (ErrorCode.none, 1)
    assert not part.records


def test_fetch_past_the_log_end_is_offset_out_of_range(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    kafka.call(PRODUCE, 9, produce("t", b"a"))
    assert only_partition(kafka.call(FETCH, 12, fetch("t", 5))).error_code == ErrorCode.offset_out_of_range


@pytest.mark.parametrize("version", [4, 12])
def test_fetch_of_an_unknown_topic_is_unknown_topic_or_partition(kafka: BlockingHarness, version: int) -> None:
    part = only_partition(kafka.call(FETCH, version, fetch("absent")))
    assert part.error_code == ErrorCode.unknown_topic_or_partition
    # as Kafka answers a partition it refuses before reading a log: no aborted transactions, not null
    assert (part.aborted_transactions, part.high_watermark) == ((), -1)


def test_fetch_of_a_partition_the_topic_lacks_is_unknown_topic_or_partition(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 1)
    assert only_partition(kafka.call(FETCH, 12, fetch("t", partition=3))).error_code == \
        ErrorCode.unknown_topic_or_partition


def test_a_parked_fetch_is_answered_when_records_arrive(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    waiters = kafka.broker.waiters

    async def scenario() -> Any:
        h = kafka.harness
        parked = h.start(FETCH, 12, fetch("t", max_wait=60_000))
        await h.until(lambda: TopicPartition("t", 0) in waiters._by_tp, "the fetch to park")
        assert not parked.done()
        await h.call(PRODUCE, 9, produce("t", b"late"))
        return await h.bounded(parked)  # long before max_wait: woken by the append

    assert values(only_partition(kafka.run(scenario()))) == [b"late"]


def test_a_parked_fetch_without_records_is_answered_empty_at_max_wait(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    part = only_partition(kafka.call(FETCH, 12, fetch("t", max_wait=20)))
    assert (part.error_code, part.high_watermark) == (ErrorCode.none, 0)
    assert not part.records


def test_fetch_sends_records_from_segment_files_by_zero_copy_slices(tmp_path: Path) -> None:
    settings = {"fetch.zero.copy.min.bytes": 0}
    with BlockingHarness(tmp_path / "data", engine=LocalLogStore, settings=settings) as kafka:
        kafka.create_topic("t")
        kafka.call(PRODUCE, 9, produce("t", b"on", b"disk"))
        assert values(only_partition(kafka.call(FETCH, 12, fetch("t")))) == [b"on", b"disk"]
        assert values(only_partition(kafka.call(FETCH, 4, fetch("t")))) == [b"on", b"disk"]


def by_id(topic_id: uuid.UUID | None, offset: int = 0, partition: int = 0) -> dict[str, Any]:
    """A Fetch v13+ request: the topic named by its id (KIP-516)."""
    request = fetch("", offset, partition=partition)
    request["topics"][0]["topic_id"] = topic_id
    return request


def topic_id(kafka: BlockingHarness, name: str) -> uuid.UUID:
    return kafka.broker.metadata.image.topics[name].topic_id


@pytest.mark.parametrize("version", [13, 18])
def test_fetch_v13_and_later_names_the_topic_by_id_in_the_request_and_the_answer(kafka: BlockingHarness,
                                                                                 version: int) -> None:
    kafka.create_topic("t")
    kafka.call(PRODUCE, 9, produce("t", b"a", b"b"))
    r = kafka.call(FETCH, version, by_id(topic_id(kafka, "t"), 1))
    assert [t.topic_id for t in r.responses] == [topic_id(kafka, "t")]
    part = only_partition(r)
    assert (part.error_code, part.high_watermark) == (ErrorCode.none, 2)
    assert values(part) == [b"a", b"b"]  # the whole batch holding offset 1


@pytest.mark.parametrize("unknown", [uuid.uuid4(), None], ids=["made-up", "null"])
def test_fetch_of_an_id_the_broker_does_not_know_is_unknown_topic_id(kafka: BlockingHarness,
                                                                     unknown: uuid.UUID | None) -> None:
    r = kafka.call(FETCH, 18, by_id(unknown, partition=2))
    assert [t.topic_id for t in r.responses] == [unknown]
    part = only_partition(r)
    assert (part.partition_index, part.error_code, part.high_watermark, part.aborted_transactions) == \
        (2, ErrorCode.unknown_topic_id, -1, ())


def test_a_topic_deleted_and_created_again_is_another_id(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    old = topic_id(kafka, "t")
    r = kafka.call(20, 6, {"topics": [{"name": "t"}], "timeout": 5000})
    assert r.responses[0].error_code == ErrorCode.none
    kafka.create_topic("t")
    kafka.call(PRODUCE, 9, produce("t", b"new"))
    assert only_partition(kafka.call(FETCH, 13, by_id(old))).error_code == ErrorCode.unknown_topic_id
    assert values(only_partition(kafka.call(FETCH, 13, by_id(topic_id(kafka, "t"))))) == [b"new"]


def test_an_unknown_id_is_answered_before_authorization(tmp_path: Path) -> None:
    """As Kafka: UNKNOWN_TOPIC_ID for an id it does not know, whatever the ACLs; a known topic
    the principal may not READ is TOPIC_AUTHORIZATION_FAILED."""
    with BlockingHarness(tmp_path / "secured", settings={"authorizer.class.name": STANDARD_AUTHORIZER}) as kafka:
        kafka.create_topic("t")
        assert only_partition(kafka.call(FETCH, 13, by_id(uuid.uuid4()))).error_code == ErrorCode.unknown_topic_id
        assert only_partition(kafka.call(FETCH, 13, by_id(topic_id(kafka, "t")))).error_code == \
            ErrorCode.topic_authorization_failed
