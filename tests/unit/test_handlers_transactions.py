"""InitProducerId (22), AddPartitionsToTxn (24), AddOffsetsToTxn (25), EndTxn (26),
DescribeProducers (61), DescribeTransactions (65) and ListTransactions (66) called below the socket."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tomyum.errors import ErrorCode
from tomyum.protocol.records import build_batch
from tomyum.testing.handlers import BlockingHarness

PRODUCE, FETCH = 0, 1
INIT_PRODUCER_ID, ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN = 22, 24, 25, 26
DESCRIBE_PRODUCERS, DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS = 61, 65, 66
COVERS = {INIT_PRODUCER_ID: "InitProducerId", ADD_PARTITIONS_TO_TXN: "AddPartitionsToTxn",
          ADD_OFFSETS_TO_TXN: "AddOffsetsToTxn", END_TXN: "EndTxn", DESCRIBE_PRODUCERS: "DescribeProducers",
          DESCRIBE_TRANSACTIONS: "DescribeTransactions", LIST_TRANSACTIONS: "ListTransactions"}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
#: the versions that answer a fenced producer PRODUCER_FENCED; older ones INVALID_PRODUCER_EPOCH
FENCED = {0: ErrorCode.invalid_producer_epoch, 1: ErrorCode.invalid_producer_epoch,
          2: ErrorCode.producer_fenced, 3: ErrorCode.producer_fenced}


def init(kafka: BlockingHarness, version: int = 4, transactional_id: str | None = "tx", producer_id: int = -1,
         epoch: int = -1) -> Any:
    return kafka.call(INIT_PRODUCER_ID, version, {"transactional_id": transactional_id,
                                                  "transaction_timeout": 60_000, "producer_id": producer_id,
                                                  "producer_epoch": epoch})


def add_partitions(kafka: BlockingHarness, version: int, producer_id: int, epoch: int,
                   partitions: dict[str, list[int]], transactional_id: str = "tx") -> dict[tuple[str, int], ErrorCode]:
    r = kafka.call(ADD_PARTITIONS_TO_TXN, version, {
        "v3_and_below_transactional_id": transactional_id, "v3_and_below_producer_id": producer_id,
        "v3_and_below_producer_epoch": epoch,
        "v3_and_below_topics": [{"name": t, "partitions": ps} for t, ps in partitions.items()]})
    return {(t.name, p.partition_index): p.partition_error_code
            for t in r.results_by_topic_v3_and_below for p in t.results_by_partition}


def end_txn(kafka: BlockingHarness, version: int, producer_id: int, epoch: int, committed: bool = True,
            transactional_id: str = "tx") -> ErrorCode:
    r = kafka.call(END_TXN, version, {"transactional_id": transactional_id, "producer_id": producer_id,
                                      "producer_epoch": epoch, "committed": committed})
    return ErrorCode(r.error_code)


def add_offsets(kafka: BlockingHarness, version: int, producer_id: int, epoch: int, group: str = "g") -> ErrorCode:
    r = kafka.call(ADD_OFFSETS_TO_TXN, version, {"transactional_id": "tx", "producer_id": producer_id,
                                                 "producer_epoch": epoch, "group_id": group})
    return ErrorCode(r.error_code)


def produce_in_txn(kafka: BlockingHarness, producer_id: int, epoch: int, *values: bytes, seq: int = 0) -> None:
    batch = build_batch([(None, v) for v in values], producer_id=producer_id, producer_epoch=epoch,
                        base_sequence=seq, transactional=True)
    r = kafka.call(PRODUCE, 9, {"transactional_id": "tx", "acks": -1, "timeout": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": batch}]}]})
    assert r.responses[0].partition_responses[0].error_code == ErrorCode.none


def read_committed_end(kafka: BlockingHarness) -> int:
    r = kafka.call(FETCH, 12, {"max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 1,
                               "topics": [{"topic": "t", "partitions": [
                                   {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]})
    return int(r.responses[0].partitions[0].last_stable_offset)


@pytest.mark.parametrize("version", [0, 4])
def test_an_idempotent_producer_gets_a_producer_id_never_handed_out_before(kafka: BlockingHarness,
                                                                          version: int) -> None:
    first, second = init(kafka, version, None), init(kafka, version, None)
    assert (first.error_code, first.producer_epoch, second.producer_epoch) == (ErrorCode.none, 0, 0)
    assert 0 <= first.producer_id != second.producer_id


def test_init_producer_id_v3_bumps_the_epoch_of_an_idempotent_producer(kafka: BlockingHarness) -> None:
    first = init(kafka, 3, None)
    bumped = init(kafka, 3, None, first.producer_id, first.producer_epoch)
    assert (bumped.error_code, bumped.producer_id, bumped.producer_epoch) == (ErrorCode.none, first.producer_id, 1)


@pytest.mark.parametrize("version", [0, 4])
def test_a_transactional_producer_that_initialises_again_keeps_its_id_with_the_next_epoch(
        kafka: BlockingHarness, version: int) -> None:
    first, again = init(kafka, version), init(kafka, version)
    assert (first.error_code, again.error_code) == (ErrorCode.none, ErrorCode.none)
    assert (again.producer_id, again.producer_epoch) == (first.producer_id, first.producer_epoch + 1)


@pytest.mark.parametrize("version", [0, 3])
def test_a_transaction_commits_and_read_committed_consumers_then_see_it(kafka: BlockingHarness, version: int) -> None:
    kafka.create_topic("t")
    p = init(kafka)
    assert add_partitions(kafka, version, p.producer_id, p.producer_epoch, {"t": [0]}) == {("t", 0): ErrorCode.none}
    produce_in_txn(kafka, p.producer_id, p.producer_epoch, b"a", b"b")
    assert read_committed_end(kafka) == 0
    assert end_txn(kafka, version, p.producer_id, p.producer_epoch, committed=True) == ErrorCode.none
    assert read_committed_end(kafka) == 3  # two records and the commit marker


def test_an_aborted_transaction_ends_too(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    p = init(kafka)
    add_partitions(kafka, 3, p.producer_id, p.producer_epoch, {"t": [0]})
    produce_in_txn(kafka, p.producer_id, p.producer_epoch, b"a")
    assert end_txn(kafka, 3, p.producer_id, p.producer_epoch, committed=False) == ErrorCode.none
    assert read_committed_end(kafka) == 2


def test_add_partitions_naming_an_unknown_partition_attempts_none_of_them(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    p = init(kafka)
    assert add_partitions(kafka, 3, p.producer_id, p.producer_epoch, {"t": [0, 7], "absent": [0]}) == {
        ("t", 0): ErrorCode.operation_not_attempted, ("t", 7): ErrorCode.unknown_topic_or_partition,
        ("absent", 0): ErrorCode.unknown_topic_or_partition}


@pytest.mark.parametrize("version", [0, 3])
def test_add_partitions_of_an_old_epoch_is_fenced(kafka: BlockingHarness, version: int) -> None:
    kafka.create_topic("t")
    old = init(kafka)
    init(kafka)
    assert add_partitions(kafka, version, old.producer_id, old.producer_epoch, {"t": [0]}) == {("t", 0): FENCED[version]}


def test_add_partitions_of_an_unknown_transactional_id_is_invalid_producer_id_mapping(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    assert add_partitions(kafka, 3, 99, 0, {"t": [0]}, transactional_id="nobody") == {
        ("t", 0): ErrorCode.invalid_producer_id_mapping}


@pytest.mark.parametrize("version", [0, 3])
def test_add_offsets_to_txn_adds_the_group_to_the_transaction(kafka: BlockingHarness, version: int) -> None:
    p = init(kafka)
    assert add_offsets(kafka, version, p.producer_id, p.producer_epoch) == ErrorCode.none
    assert end_txn(kafka, 3, p.producer_id, p.producer_epoch) == ErrorCode.none


@pytest.mark.parametrize("version", [0, 3])
def test_add_offsets_to_txn_of_an_old_epoch_is_fenced(kafka: BlockingHarness, version: int) -> None:
    old = init(kafka)
    init(kafka)
    assert add_offsets(kafka, version, old.producer_id, old.producer_epoch) == FENCED[version]


@pytest.mark.parametrize("version", [0, 3])
def test_end_txn_of_an_old_epoch_is_fenced(kafka: BlockingHarness, version: int) -> None:
    kafka.create_topic("t")
    old = init(kafka)
    new = init(kafka)
    add_partitions(kafka, 3, new.producer_id, new.producer_epoch, {"t": [0]})
    assert end_txn(kafka, version, old.producer_id, old.producer_epoch) == FENCED[version]


def test_end_txn_of_an_unknown_transactional_id_is_invalid_producer_id_mapping(kafka: BlockingHarness) -> None:
    assert end_txn(kafka, 3, 99, 0, transactional_id="nobody") == ErrorCode.invalid_producer_id_mapping


def test_end_txn_commit_without_a_transaction_is_invalid_txn_state(kafka: BlockingHarness) -> None:
    p = init(kafka)
    assert end_txn(kafka, 3, p.producer_id, p.producer_epoch, committed=True) == ErrorCode.invalid_txn_state


def test_describe_producers_lists_the_producers_of_a_partition(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    p = init(kafka)
    add_partitions(kafka, 3, p.producer_id, p.producer_epoch, {"t": [0]})
    produce_in_txn(kafka, p.producer_id, p.producer_epoch, b"a", b"b")
    r = kafka.call(DESCRIBE_PRODUCERS, 0, {"topics": [{"name": "t", "partition_indexes": [0]},
                                                      {"name": "absent", "partition_indexes": [0]}]})
    (known,), (unknown,) = (t.partitions for t in r.topics)
    assert known.error_code == ErrorCode.none
    (producer,) = known.active_producers
    assert (producer.producer_id, producer.producer_epoch, producer.last_sequence) == (
        p.producer_id, p.producer_epoch, 1)
    assert producer.current_txn_start_offset == 0
    assert unknown.error_code == ErrorCode.unknown_topic_or_partition


def test_describe_transactions_describes_an_ongoing_transaction(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 2)
    p = init(kafka)
    add_partitions(kafka, 3, p.producer_id, p.producer_epoch, {"t": [1, 0]})
    r = kafka.call(DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": ["tx", "nobody"]})
    described, unknown = r.transaction_states
    assert (described.error_code, described.transaction_state) == (ErrorCode.none, "Ongoing")
    assert (described.producer_id, described.producer_epoch) == (p.producer_id, p.producer_epoch)
    assert [(t.topic, sorted(t.partitions)) for t in described.topics] == [("t", [0, 1])]
    # Kafka's answer for an unknown id leaves TransactionStartTimeMs at its default, 0 (a -1 there
    # was a bug: kio, as a client, cannot parse a negative timestamp)
    assert (unknown.error_code, unknown.transaction_start_time) == (ErrorCode.transactional_id_not_found, EPOCH)
    assert (unknown.producer_id, unknown.producer_epoch) == (0, 0)  # Kafka's defaults too (the harness)


@pytest.mark.parametrize("version", [0, 1])
def test_list_transactions_lists_transactional_ids_by_state(kafka: BlockingHarness, version: int) -> None:
    kafka.create_topic("t")
    p = init(kafka)
    add_partitions(kafka, 3, p.producer_id, p.producer_epoch, {"t": [0]})
    r = kafka.call(LIST_TRANSACTIONS, version, {"state_filters": [], "producer_id_filters": [], "duration_filter": -1})
    assert [(s.transactional_id, s.producer_id, s.transaction_state) for s in r.transaction_states] == [
        ("tx", p.producer_id, "Ongoing")]
    r = kafka.call(LIST_TRANSACTIONS, version, {"state_filters": ["Empty", "NoSuchState"], "producer_id_filters": [],
                                                "duration_filter": -1})
    assert (r.transaction_states, r.unknown_state_filters) == ((), ("NoSuchState",))


def test_list_transactions_v2_filters_by_a_regular_expression_of_the_whole_id(kafka: BlockingHarness) -> None:
    """KIP-1152, as Kafka 4.4 answers (checked by the differential harness)."""
    kafka.create_topic("t")
    init(kafka)

    def listed(pattern: str | None) -> tuple[int, list[str]]:
        r = kafka.call(LIST_TRANSACTIONS, 2, {"state_filters": [], "producer_id_filters": [], "duration_filter": -1,
                                              "transactional_id_pattern": pattern})
        return r.error_code, [s.transactional_id for s in r.transaction_states]

    assert listed("t.*") == listed("") == listed(None) == (0, ["tx"])
    assert listed("t") == (0, [])  # the whole id must match
    assert listed("[") == (ErrorCode.invalid_regular_expression, [])
