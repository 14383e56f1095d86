"""The metadata log: records round-trip, appends survive restarts, snapshots bound replay, and a
torn or corrupt tail is cut off without touching what came before it."""

from __future__ import annotations

import errno
import logging
import os
import uuid
from pathlib import Path

import pytest

from tomyum.errors import StorageError
from tomyum.metadata import MetadataImage
from tomyum.metadata.log import DIR_NAME, MetadataLog
from tomyum.metadata.records import (
    BROKER_RESOURCE,
    AccessControlEntryRecord,
    ClientQuotaRecord,
    EntityData,
    RemoveAccessControlEntryRecord,
    RemoveUserScramCredentialRecord,
    UserScramCredentialRecord,
    RECORD_TYPES,
    TOPIC_RESOURCE,
    ConfigRecord,
    FeatureLevelRecord,
    MetadataRecord,
    MetadataRecordError,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RemoveTopicRecord,
    TopicRecord,
    decode,
    encode,
)
from tomyum.protocol.records import build_batch

TID = uuid.UUID("6f1c2a8e-1111-4222-8333-944445555666")
EVERY_RECORD: list[MetadataRecord] = [
    FeatureLevelRecord(name="metadata.version", feature_level=25),
    TopicRecord(name="orders", topic_id=TID),
    PartitionRecord(partition_id=0, topic_id=TID, replicas=(1,), isr=(1,), leader=1),
    PartitionRecord(partition_id=1, topic_id=TID, replicas=(1,), isr=(1,), leader=1, leader_epoch=3,
                    partition_epoch=4),
    PartitionChangeRecord(partition_id=1, topic_id=TID, isr=(1,), leader=1),
    ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name="orders", name="retention.ms", value="1000"),
    ConfigRecord(resource_type=BROKER_RESOURCE, resource_name="", name="log.retention.ms", value=None),
    ProducerIdsRecord(broker_id=1, broker_epoch=-1, next_producer_id=2000),
    UserScramCredentialRecord(name="alice", mechanism=1, salt=b"\x00salt", stored_key=b"s" * 32,
                              server_key=b"k" * 32, iterations=4096),
    RemoveUserScramCredentialRecord(name="bob", mechanism=2),
    AccessControlEntryRecord(id=TID, resource_type=2, resource_name="orders", pattern_type=3,
                             principal="User:alice", host="*", operation=3, permission_type=3),
    RemoveAccessControlEntryRecord(id=uuid.UUID(int=7)),
    ClientQuotaRecord(entity=(EntityData(entity_type="user", entity_name="alice"),
                              EntityData(entity_type="client-id", entity_name=None)),
                      key="producer_byte_rate", value=1024.0),
    RemoveTopicRecord(topic_id=TID),
]


def image_of(records: list[tuple[int, MetadataRecord]]) -> MetadataImage:
    image = MetadataImage()
    for offset, r in records:
        image.replay(r, offset)
    return image


def topic(name: str, partitions: int = 1, **configs: str) -> list[MetadataRecord]:
    tid = uuid.uuid4()
    return ([TopicRecord(name=name, topic_id=tid)]
            + [PartitionRecord(partition_id=p, topic_id=tid, replicas=(1,), isr=(1,), leader=1)
               for p in range(partitions)]
            + [ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name=name, name=k.replace("_", "."), value=v)
               for k, v in configs.items()])


def test_every_record_type_round_trips() -> None:
    assert {type(r) for r in EVERY_RECORD} == set(RECORD_TYPES.values())
    for r in EVERY_RECORD:
        assert decode(encode(r)) == r


def test_records_are_written_as_kafkas_json() -> None:
    raw = encode(EVERY_RECORD[2])
    assert raw.startswith(b'{"type":"PARTITION_RECORD","version":0,"data":{"partitionId":0,"topicId":"bxwqjhERQiKDM5RERVVWZg"')


@pytest.mark.parametrize("raw, message", [
    (b'{"type":"NO_SUCH_RECORD","version":0,"data":{}}', "unknown metadata record type"),
    (b'{"type":"TOPIC_RECORD","version":0,"data":{"name":"x"}}', "has no topicId"),
    (b'{"type":"TOPIC_RECORD","version":0,"data":{"name":3,"topicId":"bxwqjhERQiKDM5REVVVWZg"}}', "not a string"),
    (b'{"type":"PARTITION_RECORD","version":0,"data":{"partitionId":0,"topicId":"bxwqjhERQiKDM5REVVVWZg",'
     b'"replicas":["a"],"isr":[1],"leader":1}}', "replicas\\[\\] is not an integer"),
    (b'{"type":"REMOVE_TOPIC_RECORD","version":0,"data":{"topicId":"!!"}}', None),
    (b"not json", "unreadable"),
])
def test_undecodable_records_are_named(raw: bytes, message: str | None) -> None:
    with pytest.raises(MetadataRecordError, match=message):
        decode(raw)


def test_appends_are_replayed_after_a_restart(tmp_path: Path) -> None:
    log = MetadataLog(tmp_path)
    assert log.recover().records == []
    assert log.append(EVERY_RECORD[:3]) == 0
    assert log.append(EVERY_RECORD[3:]) == 3
    log.close()
    again = MetadataLog(tmp_path)
    recovered = again.recover()
    assert recovered.records == list(enumerate(EVERY_RECORD))
    assert recovered.next_offset == len(EVERY_RECORD) and again.append(topic("next")) == len(EVERY_RECORD)
    again.close()


def test_a_snapshot_plus_its_tail_rebuild_the_same_image(tmp_path: Path) -> None:
    log = MetadataLog(tmp_path)
    log.recover()
    live: list[tuple[int, MetadataRecord]] = []

    def append(records: list[MetadataRecord]) -> None:
        base = log.append(records)
        live.extend((base + i, r) for i, r in enumerate(records))

    append(topic("a", 3, retention_ms="5"))
    append(topic("b", 2))
    append([RemoveTopicRecord(topic_id=next(r.topic_id for _, r in live if isinstance(r, TopicRecord)))])
    log.write_snapshot(list(image_of(live).records()))
    append(topic("c", 1, cleanup_policy="compact"))
    append([ProducerIdsRecord(broker_id=1, broker_epoch=-1, next_producer_id=1000)])
    log.close()

    again = MetadataLog(tmp_path)
    recovered = again.recover()
    again.close()
    assert recovered.snapshot_offset == 9  # 5 + 3 + 1 records before it
    assert [o for o, _ in recovered.records if o >= 0] == [9, 10, 11, 12]  # only the tail is replayed
    assert image_of(recovered.records).summary() == image_of(live).summary()
    assert set(image_of(live).topics) == {"b", "c"}


def test_only_the_two_newest_snapshots_and_the_logs_they_need_are_kept(tmp_path: Path) -> None:
    log = MetadataLog(tmp_path)
    log.recover()
    live: list[tuple[int, MetadataRecord]] = []
    for i in range(4):
        records = topic(f"t{i}")
        base = log.append(records)
        live.extend((base + j, r) for j, r in enumerate(records))
        log.write_snapshot(list(image_of(live).records()))
    log.close()
    names = sorted(p.name for p in (tmp_path / DIR_NAME).iterdir())
    assert [n for n in names if n.endswith(".checkpoint")] == [f"{6:020d}-{0:010d}.checkpoint",
                                                               f"{8:020d}-{0:010d}.checkpoint"]
    assert [n for n in names if n.endswith(".log")] == [f"{6:020d}.log", f"{8:020d}.log"]
    again = MetadataLog(tmp_path)
    assert image_of(again.recover().records).summary() == image_of(live).summary()
    again.close()


def test_a_damaged_snapshot_falls_back_to_the_one_before(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = MetadataLog(tmp_path)
    log.recover()
    live: list[tuple[int, MetadataRecord]] = []
    for name in ("a", "b"):
        records = topic(name)
        base = log.append(records)
        live.extend((base + j, r) for j, r in enumerate(records))
        log.write_snapshot(list(image_of(live).records()))
    log.close()
    newest = sorted((tmp_path / DIR_NAME).glob("*.checkpoint"))[-1]
    data = bytearray(newest.read_bytes())
    data[-3] ^= 0xFF
    newest.write_bytes(bytes(data))
    again = MetadataLog(tmp_path)
    with caplog.at_level(logging.ERROR):
        recovered = again.recover()
    again.close()
    assert recovered.snapshot_offset == 2 and "damaged metadata snapshot" in caplog.text
    assert image_of(recovered.records).summary() == image_of(live).summary()


def test_a_torn_tail_is_cut_off_and_appends_carry_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = MetadataLog(tmp_path)
    log.recover()
    log.append(topic("kept", 2))
    log.close()
    segment = tmp_path / DIR_NAME / f"{0:020d}.log"
    good = segment.stat().st_size
    torn = build_batch([(None, encode(r)) for r in topic("torn")], base_offset=3)
    with open(segment, "ab") as f:
        f.write(torn[: len(torn) // 2])
    again = MetadataLog(tmp_path)
    with caplog.at_level(logging.WARNING):
        recovered = again.recover()
    assert "cutting a torn or corrupt tail" in caplog.text
    assert segment.stat().st_size == good
    assert set(image_of(recovered.records).topics) == {"kept"}
    assert again.append(topic("after")) == 3
    again.close()
    third = MetadataLog(tmp_path)
    assert set(image_of(third.recover().records).topics) == {"kept", "after"}
    third.close()


def test_a_corrupt_batch_ends_the_log_there(tmp_path: Path) -> None:
    log = MetadataLog(tmp_path)
    log.recover()
    log.append(topic("first"))
    size_after_first = (tmp_path / DIR_NAME / f"{0:020d}.log").stat().st_size
    log.append(topic("second"))
    log.append(topic("third"))
    log.close()
    segment = tmp_path / DIR_NAME / f"{0:020d}.log"
    data = bytearray(segment.read_bytes())
    data[size_after_first + 70] ^= 0x01  # inside the second batch's records: its CRC fails
    segment.write_bytes(bytes(data))
    again = MetadataLog(tmp_path)
    recovered = again.recover()
    again.close()
    assert set(image_of(recovered.records).topics) == {"first"}
    assert recovered.next_offset == 2 and segment.stat().st_size == size_after_first


def test_a_batch_this_build_cannot_read_stops_recovery(tmp_path: Path) -> None:
    log = MetadataLog(tmp_path)
    log.recover()
    log.close()
    future = build_batch([(None, b'{"type":"FROM_THE_FUTURE_RECORD","version":0,"data":{}}')])
    with open(tmp_path / DIR_NAME / f"{0:020d}.log", "ab") as f:
        f.write(future)
    with pytest.raises(StorageError, match="FROM_THE_FUTURE_RECORD"):
        MetadataLog(tmp_path).recover()


def test_a_failed_append_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = MetadataLog(tmp_path)
    log.recover()
    log.append(topic("before"))
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data)[:20])  # part of it got in
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(StorageError, match="No space left"):
        log.append(topic("refused"))
    monkeypatch.setattr(os, "write", real_write)
    assert log.append(topic("after")) == 2
    log.close()
    again = MetadataLog(tmp_path)
    assert set(image_of(again.recover().records).topics) == {"before", "after"}
    again.close()


def test_the_image_applies_each_record_kind() -> None:
    image = image_of(list(enumerate(EVERY_RECORD[:-1])))
    assert set(image.scram) == {("alice", 1)} and set(image.acls) == {TID}
    t = image.topics["orders"]
    assert (t.num_partitions, dict(t.raw_configs)) == (2, {"retention.ms": "1000"})
    assert image.partitions(t)[1].leader_epoch == 4  # one leader change on top of 3
    assert image.next_producer_id == 2000 and image.features == {"metadata.version": 25}
    image.replay(ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name="orders", name="retention.ms",
                              value=None), 99)
    assert image.topics["orders"].raw_configs == {}
    image.replay(EVERY_RECORD[-1], 100)
    assert image.topics == {} and image.topics_by_id == {}
    assert image.summary() == image_of([(-1, r) for r in image.records()]).summary()
