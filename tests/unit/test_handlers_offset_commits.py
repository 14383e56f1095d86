"""OffsetCommit (8), OffsetFetch (9) and TxnOffsetCommit (28) called below the socket."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tomyum.errors import ErrorCode
from tomyum.testing.handlers import BlockingHarness

OFFSET_COMMIT, OFFSET_FETCH, JOIN_GROUP, SYNC_GROUP = 8, 9, 11, 14
INIT_PRODUCER_ID, ADD_OFFSETS_TO_TXN, TXN_OFFSET_COMMIT = 22, 25, 28
COVERS = {OFFSET_COMMIT: "OffsetCommit", OFFSET_FETCH: "OffsetFetch", TXN_OFFSET_COMMIT: "TxnOffsetCommit"}
#: the id a test gives a topic the broker does not have (v10 names topics by id)
MADE_UP = uuid.uuid4()


def ids(kafka: BlockingHarness) -> dict[str, uuid.UUID]:
    return {name: t.topic_id for name, t in kafka.broker.metadata.image.topics.items()}


def named(kafka: BlockingHarness, version: int, topic: str) -> dict[str, Any]:
    """A request's topic as ``version`` names it: by name, or (v10+) by id."""
    return {"topic_id": ids(kafka).get(topic, MADE_UP)} if version >= 10 else {"name": topic}


def name_of(kafka: BlockingHarness, version: int, t: Any) -> str:
    """The name of a response's topic (v10+: named by id)."""
    return {v: k for k, v in ids(kafka).items()}.get(t.topic_id, "?") if version >= 10 else str(t.name)


def commit(kafka: BlockingHarness, version: int, offsets: dict[tuple[str, int], int], *, group: str = "g",
           generation: int = -1, member_id: str = "", metadata: str = "") -> dict[tuple[str, int], ErrorCode]:
    topics: dict[str, list[dict[str, Any]]] = {}
    for (topic, partition), offset in offsets.items():
        topics.setdefault(topic, []).append({"partition_index": partition, "committed_offset": offset,
                                             "committed_leader_epoch": -1, "committed_metadata": metadata})
    r = kafka.call(OFFSET_COMMIT, version, {
        "group_id": group, "generation_id": generation, "generation_id_or_member_epoch": generation,
        "member_id": member_id, "retention_time": -1,
        "topics": [named(kafka, version, t) | {"partitions": ps} for t, ps in topics.items()]})
    return {(name_of(kafka, version, t), p.partition_index): p.error_code for t in r.topics for p in t.partitions}


def fetch(kafka: BlockingHarness, version: int, topics: dict[str, list[int]] | None, *, group: str = "g",
          require_stable: bool = False) -> tuple[ErrorCode, dict[tuple[str, int], tuple[int, ErrorCode]]]:
    wanted = None if topics is None else [named(kafka, version, t) | {"partition_indexes": ps}
                                          for t, ps in topics.items()]
    r = kafka.call(OFFSET_FETCH, version, {"group_id": group, "topics": wanted, "require_stable": require_stable,
                                           "groups": [{"group_id": group, "topics": wanted,
                                                       "member_id": None, "member_epoch": -1}]})
    if version >= 8:
        (g,) = r.groups
        code, found = g.error_code, g.topics
    else:
        code, found = getattr(r, "error_code", ErrorCode.none), r.topics  # v2+
    return code, {(name_of(kafka, version, t), p.partition_index): (p.committed_offset, p.error_code)
                  for t in found for p in t.partitions}


@pytest.mark.parametrize(("commit_version", "fetch_version"), [(2, 1), (9, 7), (9, 9), (10, 10), (9, 10)])
def test_a_standalone_commit_is_fetched_back(kafka: BlockingHarness, commit_version: int, fetch_version: int) -> None:
    kafka.create_topic("t", 2)
    assert commit(kafka, commit_version, {("t", 0): 5, ("t", 1): 7}) == {("t", 0): ErrorCode.none,
                                                                         ("t", 1): ErrorCode.none}
    assert fetch(kafka, fetch_version, {"t": [0, 1]}) == (
        ErrorCode.none, {("t", 0): (5, ErrorCode.none), ("t", 1): (7, ErrorCode.none)})


def test_offset_fetch_of_a_partition_without_a_commit_answers_minus_one(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    assert fetch(kafka, 9, {"t": [0]}) == (ErrorCode.none, {("t", 0): (-1, ErrorCode.none)})


def test_offset_fetch_of_all_topics_answers_every_committed_partition(kafka: BlockingHarness) -> None:
    kafka.create_topic("a")
    kafka.create_topic("b")
    commit(kafka, 9, {("a", 0): 1, ("b", 0): 2})
    assert fetch(kafka, 9, None)[1] == {("a", 0): (1, ErrorCode.none), ("b", 0): (2, ErrorCode.none)}


def test_offset_commit_of_an_unknown_topic_or_partition_is_unknown_topic_or_partition(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 1)
    assert commit(kafka, 9, {("absent", 0): 1, ("t", 3): 1, ("t", 0): 1}) == {
        ("absent", 0): ErrorCode.unknown_topic_or_partition, ("t", 3): ErrorCode.unknown_topic_or_partition,
        ("t", 0): ErrorCode.none}


def test_from_v10_an_id_the_broker_does_not_know_is_unknown_topic_id(kafka: BlockingHarness) -> None:
    """As Kafka 4.4 answers (checked by the differential harness); a known id's missing
    partition is UNKNOWN_TOPIC_OR_PARTITION, as by name."""
    kafka.create_topic("t")
    assert commit(kafka, 10, {("t", 0): 5, ("t", 3): 1, ("absent", 0): 1}) == {
        ("t", 0): ErrorCode.none, ("t", 3): ErrorCode.unknown_topic_or_partition,
        ("?", 0): ErrorCode.unknown_topic_id}
    assert fetch(kafka, 10, {"t": [0], "absent": [0]}) == (
        ErrorCode.none, {("t", 0): (5, ErrorCode.none), ("?", 0): (-1, ErrorCode.unknown_topic_id)})
    assert fetch(kafka, 10, None) == (ErrorCode.none, {("t", 0): (5, ErrorCode.none)})  # all: by id


def test_offset_commit_with_metadata_over_4096_bytes_is_offset_metadata_too_large(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    assert commit(kafka, 9, {("t", 0): 1}, metadata="x" * 4097) == {("t", 0): ErrorCode.offset_metadata_too_large}


def member_of_stable_group(kafka: BlockingHarness) -> tuple[str, int]:
    join = {"group_id": "g", "session_timeout": 10_000, "rebalance_timeout": 10_000, "member_id": "",
            "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b""}]}
    joined = kafka.call(JOIN_GROUP, 3, join)
    kafka.call(SYNC_GROUP, 3, {"group_id": "g", "generation_id": joined.generation_id,
                               "member_id": joined.member_id, "assignments": []})
    return joined.member_id, joined.generation_id


def test_a_member_commits_with_its_generation(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    member_id, generation = member_of_stable_group(kafka)
    assert commit(kafka, 8, {("t", 0): 3}, generation=generation, member_id=member_id) == {("t", 0): ErrorCode.none}


def test_offset_commit_of_another_generation_is_illegal_generation(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    member_id, generation = member_of_stable_group(kafka)
    assert commit(kafka, 8, {("t", 0): 3}, generation=generation + 1, member_id=member_id) == {
        ("t", 0): ErrorCode.illegal_generation}


def test_offset_commit_of_an_unknown_member_is_unknown_member_id(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    _, generation = member_of_stable_group(kafka)
    assert commit(kafka, 8, {("t", 0): 3}, generation=generation, member_id="stranger") == {
        ("t", 0): ErrorCode.unknown_member_id}


def test_a_standalone_commit_into_a_group_with_members_is_unknown_member_id(kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    member_of_stable_group(kafka)
    assert commit(kafka, 8, {("t", 0): 3}) == {("t", 0): ErrorCode.unknown_member_id}


def open_transaction(kafka: BlockingHarness, transactional_id: str = "tx", group: str = "g") -> tuple[int, int]:
    r = kafka.call(INIT_PRODUCER_ID, 4, {"transactional_id": transactional_id, "transaction_timeout": 60_000,
                                         "producer_id": -1, "producer_epoch": -1})
    assert r.error_code == ErrorCode.none
    added = kafka.call(ADD_OFFSETS_TO_TXN, 3, {"transactional_id": transactional_id, "producer_id": r.producer_id,
                                              "producer_epoch": r.producer_epoch, "group_id": group})
    assert added.error_code == ErrorCode.none
    return r.producer_id, r.producer_epoch


def txn_commit(kafka: BlockingHarness, version: int, producer_id: int, epoch: int, offsets: dict[tuple[str, int], int],
               transactional_id: str = "tx") -> list[ErrorCode]:
    r = kafka.call(TXN_OFFSET_COMMIT, version, {
        "transactional_id": transactional_id, "group_id": "g", "producer_id": producer_id, "producer_epoch": epoch,
        "generation_id": -1, "member_id": "", "group_instance_id": None,
        "topics": [{"name": t, "partitions": [{"partition_index": p, "committed_offset": o,
                                               "committed_leader_epoch": -1, "committed_metadata": ""}]}
                   for (t, p), o in offsets.items()]})
    return [p.error_code for t in r.topics for p in t.partitions]


@pytest.mark.parametrize("version", [0, 3])
def test_a_transactional_commit_is_unstable_until_the_transaction_ends(kafka: BlockingHarness, version: int) -> None:
    kafka.create_topic("t")
    producer_id, epoch = open_transaction(kafka)
    assert txn_commit(kafka, version, producer_id, epoch, {("t", 0): 9}) == [ErrorCode.none]
    assert fetch(kafka, 9, {"t": [0]}, require_stable=True)[1] == {("t", 0): (-1, ErrorCode.unstable_offset_commit)}
    assert fetch(kafka, 9, {"t": [0]})[1] == {("t", 0): (-1, ErrorCode.none)}


def test_txn_offset_commit_of_an_unknown_transactional_id_is_invalid_producer_id_mapping(
        kafka: BlockingHarness) -> None:
    kafka.create_topic("t")
    assert txn_commit(kafka, 3, 1234, 0, {("t", 0): 1}, transactional_id="nobody") == [
        ErrorCode.invalid_producer_id_mapping]


@pytest.mark.parametrize("version", [0, 3])
def test_txn_offset_commit_for_a_group_the_transaction_did_not_add_is_invalid_txn_state(
        kafka: BlockingHarness, version: int) -> None:
    """As Kafka (4.4, differential harness): TxnOffsetCommit is verified against the transaction,
    which must hold the group's offsets partition (AddOffsetsToTxn)."""
    kafka.create_topic("t")
    offsets = kafka.broker.offsets
    other = next(f"group {i}" for i in range(100) if offsets.partition_of(f"group {i}") != offsets.partition_of("g"))
    producer_id, epoch = open_transaction(kafka, group=other)
    assert txn_commit(kafka, version, producer_id, epoch, {("t", 0): 1}) == [ErrorCode.invalid_txn_state]
    kafka.call(ADD_OFFSETS_TO_TXN, 3, {"transactional_id": "tx", "producer_id": producer_id,
                                       "producer_epoch": epoch, "group_id": "g"})
    assert txn_commit(kafka, version, producer_id, epoch, {("t", 0): 1}) == [ErrorCode.none]


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_txn_offset_commit_of_another_epoch_is_invalid_producer_epoch(kafka: BlockingHarness, version: int) -> None:
    """As Kafka 4.4 answers (the differential harness): INVALID_PRODUCER_EPOCH at every version."""
    kafka.create_topic("t")
    producer_id, epoch = open_transaction(kafka)
    for other in (epoch - 1, epoch + 3):
        assert txn_commit(kafka, version, producer_id, other, {("t", 0): 1}) == [ErrorCode.invalid_producer_epoch]
