"""Incremental fetch sessions (KIP-227): Fetch (1) called below the socket, and the session
cache's eviction and limits on their own."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tomyum.broker.fetch_sessions import EVICTION_MS, FetchSessionCache, next_epoch
from tomyum.broker.metrics import BrokerCollector, new_registry
from tomyum.errors import ErrorCode
from tomyum.protocol.fetch_response import FetchPartition
from tomyum.protocol.records import build_batch, decode_records, iter_batches
from tomyum.protocol.request_decoders import FetchPartition as RequestPartition
from tomyum.protocol.request_decoders import FetchRequest, FetchTopic, ForgottenTopic
from tomyum.storage.engine import TopicPartition
from tomyum.testing.handlers import BlockingHarness

PRODUCE, FETCH, DELETE_RECORDS = 0, 1, 21
COVERS = {FETCH: "Fetch"}


def fetch(session_id: int, epoch: int, wanted: dict[str, dict[int, int]] | None = None, *,
          forget: dict[str, list[int]] | None = None, max_wait: int = 0) -> dict[str, Any]:
    """A Fetch request: ``wanted`` is {topic: {partition: fetch offset}}."""
    return {"max_wait": max_wait, "min_bytes": 1, "max_bytes": 1 << 20, "session_id": session_id,
            "session_epoch": epoch,
            "topics": [{"topic": t, "partitions": [{"partition": p, "fetch_offset": o, "partition_max_bytes": 1 << 20}
                                                   for p, o in parts.items()]} for t, parts in (wanted or {}).items()],
            "forgotten_topics_data": [{"topic": t, "partitions": ps} for t, ps in (forget or {}).items()]}


def produce(kafka: BlockingHarness, topic: str, partition: int, *values: bytes) -> None:
    batch = build_batch([(None, v) for v in values])
    r = kafka.call(PRODUCE, 9, {"acks": -1, "timeout": 5000, "topic_data": [
        {"name": topic, "partition_data": [{"index": partition, "records": batch}]}]})
    assert r.responses[0].partition_responses[0].error_code == ErrorCode.none


def answered(r: Any) -> list[tuple[str, int]]:
    """The (topic, partition)s of a response, in its order."""
    return [(t.topic, p.partition_index) for t in r.responses for p in t.partitions]


def values(r: Any, topic: str | uuid.UUID, partition: int) -> list[bytes | None]:
    """The record values answered for a partition of ``topic`` (a name, or an id from v13)."""
    (part,) = [p for t in r.responses if getattr(t, "topic", None) == topic or getattr(t, "topic_id", None) == topic
               for p in t.partitions if p.partition_index == partition]
    data = part.records or b""
    return [rec.value for h in iter_batches(data) for rec in decode_records(data[h.position:h.end])]


def open_session(kafka: BlockingHarness, wanted: dict[str, dict[int, int]]) -> int:
    r = kafka.call(FETCH, 12, fetch(0, 0, wanted))
    assert r.error_code == ErrorCode.none and r.session_id > 0
    assert sorted(answered(r)) == sorted((t, p) for t, parts in wanted.items() for p in parts)
    return int(r.session_id)


def test_a_full_fetch_opens_a_session_and_an_incremental_one_answers_only_what_changed(
        kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 2)
    produce(kafka, "t", 0, b"a")
    sid = open_session(kafka, {"t": {0: 0, 1: 0}})
    # the client moves past "a"; nothing new since: the session's partitions are read, none answered
    r = kafka.call(FETCH, 12, fetch(sid, 1, {"t": {0: 1}}))
    assert (r.error_code, r.session_id, answered(r)) == (ErrorCode.none, sid, [])
    produce(kafka, "t", 1, b"b")
    # partition 1 was not named in this request: the session still reads it from offset 0
    r = kafka.call(FETCH, 12, fetch(sid, 2))
    assert (r.session_id, answered(r)) == (sid, [("t", 1)])
    assert values(r, "t", 1) == [b"b"]
    # the client moves its position on partition 1 only; partition 0 keeps offset 1 and,
    # with its high watermark unchanged, stays out of the response
    r = kafka.call(FETCH, 12, fetch(sid, 3, {"t": {1: 1}}))
    assert answered(r) == []


def test_a_partition_added_to_a_session_is_answered_in_full(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 1)
    kafka.create_topic("u", 1)
    produce(kafka, "u", 0, b"u0")
    sid = open_session(kafka, {"t": {0: 0}})
    r = kafka.call(FETCH, 12, fetch(sid, 1, {"u": {0: 0}}))
    assert answered(r) == [("u", 0)] and values(r, "u", 0) == [b"u0"]


def test_a_moved_high_watermark_or_log_start_offset_is_answered_without_records(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 1)
    produce(kafka, "t", 0, b"a", b"b")
    sid = open_session(kafka, {"t": {0: 2}})
    produce(kafka, "t", 0, b"c")
    r = kafka.call(FETCH, 12, fetch(sid, 1, {"t": {0: 3}}))  # past the new record: none read
    assert answered(r) == [("t", 0)] and r.responses[0].partitions[0].high_watermark == 3
    d = kafka.call(DELETE_RECORDS, 2, {"timeout": 5000, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "offset": 1}]}]})
    assert d.topics[0].partitions[0].error_code == ErrorCode.none
    r = kafka.call(FETCH, 12, fetch(sid, 2))
    assert answered(r) == [("t", 0)] and r.responses[0].partitions[0].log_start_offset == 1
    assert answered(kafka.call(FETCH, 12, fetch(sid, 3))) == []


def test_a_partition_with_an_error_is_answered_every_time(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 1)
    sid = open_session(kafka, {"t": {0: 0}, "absent": {0: 0}})
    for epoch in (1, 2):
        r = kafka.call(FETCH, 12, fetch(sid, epoch))
        assert answered(r) == [("absent", 0)]
        assert r.responses[0].partitions[0].error_code == ErrorCode.unknown_topic_or_partition


def by_id(kafka: BlockingHarness, request: dict[str, Any], made_up: dict[str, uuid.UUID] | None = None) -> dict[str, Any]:
    """``request`` (:func:`fetch`) with its topics named by id, as Fetch v13+ names them (KIP-516):
    the broker's id for a topic it has, else ``made_up``'s."""
    ids = {**{n: t.topic_id for n, t in kafka.broker.metadata.image.topics.items()}, **(made_up or {})}
    for key in ("topics", "forgotten_topics_data"):
        request[key] = [{**{k: v for k, v in t.items() if k != "topic"}, "topic_id": ids[t["topic"]]}
                        for t in request[key]]
    return request


def test_a_session_by_topic_ids_keeps_them_and_answers_an_unknown_id_each_time(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 2)
    t = kafka.broker.metadata.image.topics["t"].topic_id
    gone = uuid.uuid4()
    produce(kafka, "t", 0, b"a")
    r = kafka.call(FETCH, 18, by_id(kafka, fetch(0, 0, {"t": {0: 0, 1: 0}, "gone": {0: 0}}), {"gone": gone}))
    sid = r.session_id
    assert r.error_code == ErrorCode.none and sid > 0
    assert [(x.topic_id, p.partition_index, p.error_code) for x in r.responses for p in x.partitions] == \
        [(t, 0, 0), (t, 1, 0), (gone, 0, ErrorCode.unknown_topic_id)]
    produce(kafka, "t", 1, b"b")
    r = kafka.call(FETCH, 18, by_id(kafka, fetch(sid, 1, {"t": {0: 1}})))
    assert [(x.topic_id, p.partition_index) for x in r.responses for p in x.partitions] == [(t, 1), (gone, 0)]
    assert values(r, t, 1) == [b"b"]
    # forgotten by id: only the topic the broker knows is left, and nothing in it is new
    r = kafka.call(FETCH, 18, by_id(kafka, fetch(sid, 2, {"t": {1: 1}}, forget={"gone": [0]}), {"gone": gone}))
    assert (r.error_code, r.session_id, r.responses) == (ErrorCode.none, sid, ())


def test_a_session_is_by_ids_or_by_names_and_a_fetch_of_the_other_kind_is_an_error(kafka: BlockingHarness) -> None:
    """Kafka's FETCH_SESSION_TOPIC_ID_ERROR: a session made before v13 (by names) fetched at
    v13+, or the reverse; the session itself is left as it was."""
    kafka.create_topic("t", 1)
    by_names = open_session(kafka, {"t": {0: 0}})
    r = kafka.call(FETCH, 13, by_id(kafka, fetch(by_names, 1)))
    assert (r.error_code, r.session_id, r.responses) == (ErrorCode.fetch_session_topic_id_error, 0, ())
    assert kafka.call(FETCH, 12, fetch(by_names, 1)).error_code == ErrorCode.none
    ids = kafka.call(FETCH, 13, by_id(kafka, fetch(0, 0, {"t": {0: 0}}))).session_id
    r = kafka.call(FETCH, 12, fetch(ids, 1))
    assert (r.error_code, r.session_id, r.responses) == (ErrorCode.fetch_session_topic_id_error, 0, ())
    assert kafka.call(FETCH, 13, by_id(kafka, fetch(ids, 1))).error_code == ErrorCode.none


def test_a_partition_that_returned_records_is_read_last_next_time(kafka: BlockingHarness) -> None:
    """Kafka moves a partition that answered records to the end of its session, so that a
    response cut short by max_bytes does not always favour the same partitions."""
    kafka.create_topic("t", 2)
    sid = open_session(kafka, {"t": {0: 0, 1: 0}})
    produce(kafka, "t", 0, b"a")
    r = kafka.call(FETCH, 12, fetch(sid, 1))
    assert answered(r) == [("t", 0)]
    produce(kafka, "t", 0, b"b")
    produce(kafka, "t", 1, b"c")
    r = kafka.call(FETCH, 12, fetch(sid, 2, {"t": {0: 1}}))
    assert answered(r) == [("t", 1), ("t", 0)]
    assert values(r, "t", 0) == [b"b"] and values(r, "t", 1) == [b"c"]


def test_an_unknown_session_or_a_wrong_epoch_is_an_error_with_no_partitions(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 1)
    sid = open_session(kafka, {"t": {0: 0}})
    r = kafka.call(FETCH, 12, fetch(sid + 1 if sid < 2**31 - 1 else 1, 1))
    assert (r.error_code, r.session_id, answered(r)) == (ErrorCode.fetch_session_id_not_found, 0, [])
    r = kafka.call(FETCH, 12, fetch(sid, 5))
    assert (r.error_code, r.session_id, answered(r)) == (ErrorCode.invalid_fetch_session_epoch, 0, [])
    # the session is still there, at the epoch it expects
    assert kafka.call(FETCH, 12, fetch(sid, 1)).error_code == ErrorCode.none
    # a retry of an answered request carries an old epoch
    assert kafka.call(FETCH, 12, fetch(sid, 1)).error_code == ErrorCode.invalid_fetch_session_epoch


def test_the_final_epoch_closes_the_session_and_answers_without_one(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 1)
    sid = open_session(kafka, {"t": {0: 0}})
    r = kafka.call(FETCH, 12, fetch(sid, -1, {"t": {0: 0}}))
    assert (r.error_code, r.session_id, answered(r)) == (ErrorCode.none, 0, [("t", 0)])
    assert kafka.call(FETCH, 12, fetch(sid, 1)).error_code == ErrorCode.fetch_session_id_not_found
    assert len(kafka.broker.fetch_sessions) == 0


def test_a_full_fetch_naming_a_session_replaces_it(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 1)
    sid = open_session(kafka, {"t": {0: 0}})
    r = kafka.call(FETCH, 12, fetch(sid, 0, {"t": {0: 0}}))
    assert r.session_id not in (0, sid)
    assert kafka.call(FETCH, 12, fetch(sid, 1)).error_code == ErrorCode.fetch_session_id_not_found
    assert len(kafka.broker.fetch_sessions) == 1


def test_forgetting_every_partition_ends_the_session(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 2)
    sid = open_session(kafka, {"t": {0: 0, 1: 0}})
    r = kafka.call(FETCH, 12, fetch(sid, 1, forget={"t": [1]}))
    assert (r.session_id, answered(r)) == (sid, [])
    produce(kafka, "t", 1, b"forgotten")
    assert answered(kafka.call(FETCH, 12, fetch(sid, 2))) == []
    r = kafka.call(FETCH, 12, fetch(sid, 3, forget={"t": [0]}))
    assert (r.error_code, r.session_id, answered(r)) == (ErrorCode.none, 0, [])
    assert len(kafka.broker.fetch_sessions) == 0


def test_an_incremental_fetch_parks_until_a_partition_of_its_session_gets_records(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 2)
    sid = open_session(kafka, {"t": {0: 0, 1: 0}})
    waiters = kafka.broker.waiters

    async def scenario() -> Any:
        h = kafka.harness
        parked = h.start(FETCH, 12, fetch(sid, 1, max_wait=60_000))
        await h.until(lambda: TopicPartition("t", 1) in waiters._by_tp, "the fetch to park")
        assert not parked.done()
        await h.call(PRODUCE, 9, {"acks": -1, "timeout": 5000, "topic_data": [
            {"name": "t", "partition_data": [{"index": 1, "records": build_batch([(None, b"late")])}]}]})
        return await h.bounded(parked)

    r = kafka.run(scenario())
    assert answered(r) == [("t", 1)] and values(r, "t", 1) == [b"late"]


def test_without_slots_there_are_no_sessions(tmp_path: Path) -> None:
    settings = {"max.incremental.fetch.session.cache.slots": 0}
    with BlockingHarness(tmp_path / "data", settings=settings) as kafka:
        kafka.create_topic("t", 1)
        r = kafka.call(FETCH, 12, fetch(0, 0, {"t": {0: 0}}))
        assert (r.error_code, r.session_id, answered(r)) == (ErrorCode.none, 0, [("t", 0)])


def test_the_metrics_count_sessions_and_their_partitions(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 3)
    sid = open_session(kafka, {"t": {0: 0, 1: 0, 2: 0}})
    open_session(kafka, {"t": {0: 0}})
    kafka.call(FETCH, 12, fetch(sid, 1, forget={"t": [2]}))
    collector = BrokerCollector(kafka.broker.stats, lambda: (), {}, 0.0, kafka.broker.fetch_sessions)
    samples = {s.name: s.value for family in text_string_to_metric_families(generate_latest(new_registry(collector))
                                                                            .decode()) for s in family.samples}
    assert samples["tomyum_fetch_sessions"] == 2
    assert samples["tomyum_fetch_session_partitions"] == 3
    assert samples["tomyum_fetch_session_evictions_total"] == 0


def test_fetch_v6_and_older_never_opens_a_session(kafka: BlockingHarness) -> None:
    kafka.create_topic("t", 1)
    r = kafka.call(FETCH, 6, fetch(0, 0, {"t": {0: 0}}))
    assert answered(r) == [("t", 0)]
    assert len(kafka.broker.fetch_sessions) == 0


# the cache on its own ------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> int:
        return self.ms


def request(session_id: int, epoch: int, partitions: int, topic: str = "t",
            forget: tuple[int, ...] = ()) -> FetchRequest:
    parts = tuple(RequestPartition(p, -1, 0, -1, -1, 1 << 20) for p in range(partitions))
    return FetchRequest(-1, 0, 1, 1 << 20, 0, session_id, epoch, (FetchTopic(topic, parts),) if parts else (),
                        (ForgottenTopic(topic, forget),) if forget else (), "")


def opened(cache: FetchSessionCache, partitions: int, topic: str = "t") -> int:
    """A full fetch of ``partitions`` partitions, answered: its session id (0: none made)."""
    context = cache.context(request(0, 0, partitions, topic), 12)
    read = [(name, [FetchPartition(p.partition, high_watermark=0, log_start_offset=0) for p in parts])
            for name, parts in context.wanted]
    _, session_id, _ = context.respond(read)
    return session_id


def test_a_full_cache_evicts_a_session_unused_for_two_minutes() -> None:
    clock = Clock()
    cache = FetchSessionCache(1, clock)
    first = opened(cache, 5)
    assert first and opened(cache, 5) == 0  # no room: answered without a session
    clock.ms += EVICTION_MS + 1
    second = opened(cache, 1)
    assert second not in (0, first) and cache.evictions == 1
    assert cache.context(request(first, 1, 0), 12).error == ErrorCode.fetch_session_id_not_found


def test_a_full_cache_lets_a_larger_session_take_the_place_of_an_old_smaller_one() -> None:
    clock = Clock()
    cache = FetchSessionCache(1, clock)
    small = opened(cache, 2)
    clock.ms += EVICTION_MS // 2
    assert cache.context(request(small, 1, 0), 12).error == ErrorCode.none  # used: not stale
    clock.ms += EVICTION_MS // 2 + 1  # created over two minutes ago, used a minute ago
    assert opened(cache, 2) == 0  # not larger: kept
    assert opened(cache, 3) != 0 and cache.evictions == 1


def test_the_partitions_all_sessions_hold_are_capped() -> None:
    cache = FetchSessionCache(10, Clock(), max_partitions=4)
    sid = opened(cache, 3)
    assert sid and cache.partitions == 3
    assert opened(cache, 2, topic="u") == 0  # 5 > 4: no session
    # growing the session past the cap ends it; the client starts over with a full fetch
    grown = request(sid, 1, 2, topic="u")
    assert cache.context(grown, 12).error == ErrorCode.fetch_session_id_not_found
    assert (len(cache), cache.partitions) == (0, 0)


def test_forgetting_partitions_gives_back_their_room() -> None:
    cache = FetchSessionCache(10, Clock())
    sid = opened(cache, 3)
    assert cache.context(request(sid, 1, 0, forget=(0, 2)), 12).error == ErrorCode.none
    assert cache.partitions == 1


def test_the_session_epoch_wraps_to_one() -> None:
    assert [next_epoch(e) for e in (0, 1, 2**31 - 1, -1)] == [1, 2, 1, -1]


def quota(kafka: BlockingHarness, consumer_byte_rate: float | None) -> None:
    """Set (None: remove) the default client id's consumer_byte_rate."""
    r = kafka.call(49, 1, {"validate_only": False, "entries": [
        {"entity": [{"entity_type": "client-id", "entity_name": None}],
         "ops": [{"key": "consumer_byte_rate", "value": consumer_byte_rate or 0.0,
                  "remove": consumer_byte_rate is None}]}]})
    assert [e.error_code for e in r.entries] == [0]


def test_a_throttled_fetch_answers_no_partitions_and_leaves_the_session_as_it_was(kafka: BlockingHarness) -> None:
    """Kafka's getThrottledResponse: a throttled full fetch makes no session; a throttled
    incremental one answers its session id and nothing else, and the session still owes the
    client what it did not get."""
    kafka.create_topic("t", 2)
    produce(kafka, "t", 0, b"a" * 4000)
    quota(kafka, 100.0)  # 1,000 bytes in the first 10 s
    r = kafka.call(FETCH, 12, fetch(0, 0, {"t": {0: 0, 1: 0}}))
    assert r.throttle_time.total_seconds() > 0
    assert (r.error_code, r.session_id, answered(r)) == (ErrorCode.none, 0, [])
    assert len(kafka.broker.fetch_sessions) == 0
    quota(kafka, None)
    sid = open_session(kafka, {"t": {0: 1, 1: 0}})  # past "a": nothing to throttle
    produce(kafka, "t", 1, b"b" * 4000)
    quota(kafka, 100.0)
    r = kafka.call(FETCH, 12, fetch(sid, 1))
    assert (r.error_code, r.session_id, answered(r)) == (ErrorCode.none, sid, [])
    quota(kafka, None)
    r = kafka.call(FETCH, 12, fetch(sid, 2))  # the session's epoch moved on; its partition 1 did not
    assert (r.session_id, answered(r)) == (sid, [("t", 1)]) and values(r, "t", 1) == [b"b" * 4000]
