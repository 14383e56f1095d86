"""The differential harness's scripted sessions: one per API key tomyum serves, each a function
``(conn, version, prefix)`` that drives that API at ``version`` through its edge cases and error
paths, with whatever set-up it needs sent at fixed versions and kept out of the transcript
(``record=False``). ``prefix`` names the session's topics, groups and transactional ids, so that
sessions never see each other's state on the brokers they share.

A session must be deterministic given the broker's answers: it runs once against tomyum and once
against Apache Kafka, and the two transcripts are compared step by step.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.interop.differential.harness import Conn
from tomyum.protocol.records import build_batch

Session = Callable[[Conn, int, str], None]
SESSIONS: dict[int, Session] = {}

#: the record timestamp every session writes (CreateTime): the same on both brokers, so fetched
#: batches compare, and recent, so that no retention deletes them
TS = int(time.time()) // 60 * 60_000
READY_TIMEOUT = 30.0
#: topic configs compared where a broker lists all it has (Kafka has a few tomyum does not)
COMMON_TOPIC_CONFIGS = {"retention.ms", "cleanup.policy", "segment.bytes", "max.message.bytes", "retention.bytes",
                        "message.timestamp.type", "compression.type", "segment.ms"}


def session(*api_keys: int) -> Callable[[Session], Session]:
    def register(fn: Session) -> Session:
        for key in api_keys:
            assert key not in SESSIONS, f"two sessions for API key {key}"
            SESSIONS[key] = fn
        return fn
    return register


# Set-up, at fixed versions and out of the transcript ---------------------------------------

def create_topic(c: Conn, name: str, partitions: int = 1, configs: dict[str, str] | None = None) -> None:
    r = c.send(19, 7, record=False, topics=[{
        "name": name, "num_partitions": partitions, "replication_factor": 1,
        "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()]}], timeout_ms=30000)
    assert r["topics"][0]["error_code"] == 0, (c.peer, r)
    wait_ready(c, name, partitions)


def wait_ready(c: Conn, name: str, partitions: int = 1) -> dict[str, Any]:
    """Kafka's broker learns of a new topic from the metadata log a moment after the controller
    answers CreateTopics: wait until every partition has a leader (and its log exists)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        r = c.send(3, 12, record=False, topics=[{"name": name}], allow_auto_topic_creation=False)
        (topic,) = r["topics"]
        if topic["error_code"] == 0 and len(topic["partitions"]) == partitions and all(
                p["leader_id"] >= 0 for p in topic["partitions"]):
            probe = c.send(2, 7, record=False, replica_id=-1, isolation_level=0, topics=[{
                "name": name, "partitions": [{"partition_index": p, "timestamp": -1} for p in range(partitions)]}])
            if all(p["error_code"] == 0 for p in probe["topics"][0]["partitions"]):
                return topic  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{c.peer}: topic {name} not ready: {r}")
        time.sleep(0.05)


def node_id(c: Conn) -> int:
    r = c.send(3, 12, record=False, topics=[])
    return int(r["brokers"][0]["node_id"])


def batch(*values: bytes, key: bytes | None = b"k", **kw: Any) -> bytes:
    return build_batch([(key, v) for v in values], timestamp=TS, **kw)


def produce(c: Conn, version: int, topic: str, records: bytes | None, partition: int = 0, *,
            acks: int = -1, record: bool = True, label: str = "", transactional_id: str | None = None) -> Any:
    fields: dict[str, Any] = {"acks": acks, "timeout_ms": 10000, "topic_data": [
        {"name": topic, "partition_data": [{"index": partition, "records": records}]}]}
    if transactional_id is not None:
        fields["transactional_id"] = transactional_id
    return c.send(0, version, label, record=record, **fields)


def fetch_request(topic: str, offset: int, partition: int = 0, max_bytes: int = 1 << 20) -> dict[str, Any]:
    return {"replica_id": -1, "max_wait_ms": 10, "min_bytes": 1, "max_bytes": 50 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "topics": [{"topic": topic, "partitions": [{
                "partition": partition, "fetch_offset": offset, "log_start_offset": -1,
                "partition_max_bytes": max_bytes, "current_leader_epoch": -1}]}]}


def topic_ids(c: Conn, names: set[str]) -> dict[str, str]:
    """Each topic's id on ``c``'s broker; a topic the broker lacks gets an id made up for it."""
    r = c.send(3, 12, record=False, topics=[{"name": n} for n in sorted(names)], allow_auto_topic_creation=False)
    return {t["name"]: t["topic_id"] if t["error_code"] == 0 else str(uuid.uuid4()) for t in r["topics"]}


def by_id(c: Conn, request: dict[str, Any]) -> dict[str, Any]:
    """``request`` (a Fetch) with each topic and forgotten topic also named by its id on ``c``'s
    broker, as v13+ names them (KIP-516)."""
    ids = topic_ids(c, {t["topic"] for key in ("topics", "forgotten_topics_data") for t in request.get(key, ())})
    return {**request, **{key: [{**t, "topic_id": ids[t["topic"]]} for t in request[key]]
                          for key in ("topics", "forgotten_topics_data") if key in request}}


# Produce, Fetch, ListOffsets, OffsetForLeaderEpoch, DeleteRecords, Metadata ------------------

@session(0)
def produce_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, configs={"max.message.bytes": "2000"})
    produce(c, v, t, batch(b"one", b"two"), label="two records")
    produce(c, v, t, batch(b"three"), label="one more")
    produce(c, v, t, batch(b"x"), partition=7, label="no such partition")
    produce(c, v, t, batch(b"x"), partition=-1, label="negative partition")
    produce(c, v, f"{p}-missing", batch(b"x"), label="unknown topic")
    produce(c, v, t, batch(b"x" * 3000), label="larger than max.message.bytes")
    produce(c, v, t, batch(b"a", b"b", key=None), acks=1, label="acks=1")
    produce(c, v, t, b"", label="empty records")
    produce(c, v, t, batch(b"y"), acks=2, label="acks=2")
    compact = f"{p}-c"
    create_topic(c, compact, configs={"cleanup.policy": "compact"})
    produce(c, v, compact, batch(b"no key", key=None), label="keyless on a compacted topic")
    produce(c, v, "bad/name", batch(b"x"), label="invalid topic name")


@session(1)
def fetch_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t)
    produce(c, 9, t, batch(b"a", b"b", b"c"), record=False)
    produce(c, 9, t, batch(b"d"), record=False)

    def fetch(label: str, request: dict[str, Any]) -> Any:
        return c.send(1, v, label, **by_id(c, request))

    fetch("from 0", fetch_request(t, 0))
    fetch("mid batch", fetch_request(t, 1))
    fetch("at the end", fetch_request(t, 4))
    fetch("past the end", fetch_request(t, 10))
    fetch("before the start", fetch_request(t, -5))
    fetch("partition_max_bytes 1", fetch_request(t, 0, max_bytes=1))
    fetch("no such partition", fetch_request(t, 0, partition=3))
    fetch("unknown topic", fetch_request(f"{p}-missing", 0))
    c.send(21, 2, record=False, topics=[{"name": t, "partitions": [{"partition_index": 0, "offset": 2}]}],
           timeout_ms=10000)
    fetch("below the log start after DeleteRecords", fetch_request(t, 1))
    if v >= 7:
        incremental_fetch_session(c, v, f"{p}-s")
        throttled_fetch_session(c, v, f"{p}-q")
    if v >= 13:
        topic_id_fetch_session(c, v, f"{p}-i")


def session_fetch(session_id: int, epoch: int, wanted: dict[str, dict[int, int]] | None = None,
                  forget: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """A Fetch in a session (KIP-227): ``wanted`` is {topic: {partition: fetch offset}}."""
    request = fetch_request("-", 0)
    request.update(session_id=session_id, session_epoch=epoch, topics=[
        {"topic": topic, "partitions": [{**request["topics"][0]["partitions"][0], "partition": p, "fetch_offset": o}
                                        for p, o in parts.items()]} for topic, parts in (wanted or {}).items()],
        forgotten_topics_data=[{"topic": topic, "partitions": ps} for topic, ps in (forget or {}).items()])
    return request


def incremental_fetch_session(c: Conn, v: int, s: str) -> None:
    """A session's life: opened by a full fetch, answered only with what changed, its errors,
    forgetting, and closing."""
    create_topic(c, s, 2)
    produce(c, 9, s, batch(b"a"), record=False)

    def fetch(label: str, request: dict[str, Any]) -> Any:
        return c.send(1, v, label, **by_id(c, request))

    sid = fetch("session: a full fetch opens one", session_fetch(0, 0, {s: {0: 0, 1: 0}}))["session_id"]
    fetch("session: nothing new", session_fetch(sid, 1, {s: {0: 1}}))
    produce(c, 9, s, batch(b"b"), partition=1, record=False)
    fetch("session: only the partition with records", session_fetch(sid, 2))
    fetch("session: a wrong epoch", session_fetch(sid, 9))
    fetch("session: an unknown id", session_fetch(sid % (2**31 - 1) + 1, 3))
    fetch("session: forget a partition", session_fetch(sid, 3, {s: {0: 1}}, forget={s: [1]}))
    fetch("session: the final epoch closes it", session_fetch(sid, -1, {s: {0: 0}}))
    fetch("session: closed", session_fetch(sid, 4))


def consumer_byte_rate(c: Conn, client_id: str, rate: float | None, key: str = "consumer_byte_rate") -> None:
    """Set (None: remove) ``client_id``'s consumer_byte_rate (or another quota ``key``), and wait
    until the broker has it."""
    c.send(49, 1, record=False, validate_only=False, entries=[{
        "entity": [{"entity_type": "client-id", "entity_name": client_id}],
        "ops": [{"key": key, "value": rate or 0.0, "remove": rate is None}]}])
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        r = c.send(48, 1, record=False, strict=True,
                   components=[{"entity_type": "client-id", "match_type": 0, "match": client_id}])
        if bool(r["entries"]) == (rate is not None):
            return
        time.sleep(0.05)


def throttled_fetch_session(c: Conn, v: int, s: str) -> None:
    """A fetch over its client's consumer_byte_rate: its throttle time and no partitions. A full
    fetch makes no session; an incremental one moves its epoch and keeps what it owes."""
    create_topic(c, s, 2)
    produce(c, 9, s, batch(b"x" * 4000), record=False)
    # 4,000 bytes against 350 a second, measured over Kafka's 10 s minimum window: throttled for
    # about 1.6 s (a bandwidth throttle is not capped, and the connection is muted meanwhile)
    client = f"{s}-client"
    q = Conn(c.bootstrap, c.peer, transcript=c.transcript, sent=c.sent, client_id=client.encode())
    try:
        consumer_byte_rate(c, client, 350.0)
        q.send(1, v, "throttled: a full fetch", **by_id(c, session_fetch(0, 0, {s: {0: 0, 1: 0}})))
        consumer_byte_rate(c, client, None)
        sid = q.send(1, v, "throttled: a session opened",
                     **by_id(c, session_fetch(0, 0, {s: {0: 1, 1: 0}})))["session_id"]
        produce(c, 9, s, batch(b"y" * 4000), partition=1, record=False)
        consumer_byte_rate(c, client, 350.0)
        q.send(1, v, "throttled: an incremental fetch", **session_fetch(sid, 1))
        consumer_byte_rate(c, client, None)
        q.send(1, v, "throttled: the next epoch gets what was held back", **session_fetch(sid, 2))
        # request_percentage: any handler time is over so small a share of a thread; the fetch
        # is answered as over its byte rate (a request quota's throttle is at most one window)
        consumer_byte_rate(c, client, 1e-6, key="request_percentage")
        q.send(1, v, "throttled by request time: a full fetch", **by_id(c, session_fetch(0, 0, {s: {0: 0}})))
        consumer_byte_rate(c, client, None, key="request_percentage")
        q.send(1, v, "throttled by request time: then in full", **by_id(c, session_fetch(0, -1, {s: {0: 0}})))
    finally:
        q.close()


def topic_id_fetch_session(c: Conn, v: int, s: str) -> None:
    """Fetch v13+ names topics by id (KIP-516): an id the broker does not know, a topic deleted
    and created again under its name, and a session made by names fetched by ids."""
    create_topic(c, s)
    produce(c, 9, s, batch(b"old"), record=False)
    old = by_id(c, fetch_request(s, 0))
    c.send(20, 6, record=False, topics=[{"name": s}], timeout_ms=30000)
    create_topic(c, s)
    produce(c, 9, s, batch(b"new"), record=False)
    c.send(1, v, "by id: a deleted topic's id", **old)
    c.send(1, v, "by id: the topic created again", **by_id(c, fetch_request(s, 0)))
    made_up = fetch_request(s, 0)
    made_up["topics"][0]["topic_id"] = str(uuid.uuid4())
    c.send(1, v, "by id: an id made up", **made_up)
    by_names = c.send(1, 12, record=False, **session_fetch(0, 0, {s: {0: 1}}))["session_id"]
    c.send(1, v, "by id: a session made by names", **by_id(c, session_fetch(by_names, 1)))
    c.send(1, 12, "by id: that session by names again", **session_fetch(by_names, 1))
    by_ids = c.send(1, v, "by id: a session made by ids", **by_id(c, session_fetch(0, 0, {s: {0: 1}})))["session_id"]
    c.send(1, 12, "by id: that session fetched by names", **session_fetch(by_ids, 1))


@session(2)
def list_offsets_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t)
    for i in range(3):
        produce(c, 9, t, build_batch([(b"k", b"v")], timestamp=TS + i * 1000), record=False)

    def ask(label: str, timestamp: int, partition: int = 0, topic: str = t, isolation: int = 0) -> None:
        c.send(2, v, label, replica_id=-1, isolation_level=isolation, timeout_ms=10000, topics=[
            {"name": topic, "partitions": [{"partition_index": partition, "timestamp": timestamp,
                                            "current_leader_epoch": -1}]}])

    ask("latest", -1)
    ask("earliest", -2)
    ask("by time, between", TS + 500)
    ask("by time, exact", TS + 1000)
    ask("by time, after all", TS + 10_000)
    ask("no such partition", -1, partition=4)
    ask("unknown topic", -1, topic=f"{p}-missing")
    ask("latest, read_committed", -1, isolation=1)
    if v >= 7:
        ask("max timestamp", -3)
    c.send(21, 2, record=False, topics=[{"name": t, "partitions": [{"partition_index": 0, "offset": 1}]}],
           timeout_ms=10000)
    # the special timestamps, each answered only from the version that introduced it
    for timestamp, name in ((-3, "max timestamp"), (-4, "earliest local"), (-5, "latest tiered"),
                            (-6, "earliest pending upload"), (-7, "no such special timestamp")):
        ask(f"{name} ({timestamp}), after DeleteRecords", timestamp)
    ask("no such special timestamp, unknown topic", -7, topic=f"{p}-missing")


@session(23)
def offset_for_leader_epoch_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t)
    produce(c, 9, t, batch(b"a", b"b"), record=False)

    def ask(label: str, epoch: int, partition: int = 0, topic: str = t, current: int = -1) -> None:
        c.send(23, v, label, replica_id=-1, topics=[{"topic": topic, "partitions": [
            {"partition": partition, "leader_epoch": epoch, "current_leader_epoch": current}]}])

    ask("epoch 0", 0)
    ask("a later epoch", 5)
    ask("current epoch fenced", 0, current=7)
    ask("no such partition", 0, partition=9)
    ask("unknown topic", 0, topic=f"{p}-missing")


@session(21)
def delete_records_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, partitions=2)
    produce(c, 9, t, batch(b"a", b"b", b"c", b"d", b"e"), record=False)

    def delete(label: str, offset: int, partition: int = 0, topic: str = t) -> None:
        c.send(21, v, label, topics=[{"name": topic, "partitions": [{"partition_index": partition, "offset": offset}]}],
               timeout_ms=10000)

    delete("before 2", 2)
    delete("before 1 (behind the start)", 1)
    delete("to the high watermark (-1)", -1)
    delete("past the high watermark", 50)
    delete("empty partition", 0, partition=1)
    delete("no such partition", 0, partition=5)
    delete("unknown topic", 0, topic=f"{p}-missing")


@session(3)
def metadata_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, partitions=2)
    extra: dict[str, Any] = {}
    if v >= 4:
        extra["allow_auto_topic_creation"] = False
    if 8 <= v <= 10:
        extra["include_cluster_authorized_operations"] = True
    if v >= 8:
        extra["include_topic_authorized_operations"] = True
    c.send(3, v, "one topic", topics=[{"name": t}], **extra)
    if v >= 1:
        c.send(3, v, "no topics", topics=[], **extra)
        c.send(3, v, "unknown topic", topics=[{"name": f"{p}-missing"}], **extra)
        c.send(3, v, "invalid name", topics=[{"name": "bad/name"}], **extra)
    if v >= 4:
        extra["allow_auto_topic_creation"] = True
        c.send(3, v, "auto-created", topics=[{"name": f"{p}-auto"}], **extra)


# Groups ------------------------------------------------------------------------------------

def join(c: Conn, v: int, group: str, member_id: str = "", label: str = "", record: bool = True,
         instance: str | None = None, protocol: bytes = b"\0\0\0\0\0\0\0\0\0\0") -> Any:
    fields: dict[str, Any] = {"group_id": group, "session_timeout_ms": 10000, "rebalance_timeout_ms": 10000,
                              "member_id": member_id, "protocol_type": "consumer",
                              "protocols": [{"name": "range", "metadata": protocol}]}
    if instance is not None:
        fields["group_instance_id"] = instance
    return c.send(11, v, label, record=record, **fields)


def joined(c: Conn, v: int, group: str, record: bool = True) -> tuple[str, int]:
    """A member of ``group`` (a second JoinGroup when v4+ asks for the member id first)."""
    r = join(c, v, group, label="first join", record=record)
    if r["error_code"] == 79:  # MEMBER_ID_REQUIRED
        r = join(c, v, group, r["member_id"], label="with the member id", record=record)
    return r["member_id"], r["generation_id"]


def sync(c: Conn, v: int, group: str, member: str, generation: int, label: str = "", record: bool = True) -> Any:
    fields: dict[str, Any] = {"group_id": group, "generation_id": generation, "member_id": member,
                              "assignments": [{"member_id": member, "assignment": b"\0\1assignment"}]}
    if v >= 5:
        fields |= {"protocol_type": "consumer", "protocol_name": "range"}
    return c.send(14, v, label, record=record, **fields)


def stable_group(c: Conn, group: str, record: bool = False) -> tuple[str, int]:
    member, generation = joined(c, 7, group, record=record)
    sync(c, 5, group, member, generation, record=record)
    return member, generation


@session(11)
def join_group_session(c: Conn, v: int, p: str) -> None:
    g = f"{p}-g"
    member, generation = joined(c, v, g)
    join(c, v, g, member, label="rejoin before SyncGroup")
    join(c, v, g, "no-such-member", label="unknown member id")
    join(c, v, "", label="empty group id")
    c.send(11, v, "no protocols", group_id=f"{p}-g2", session_timeout_ms=10000, rebalance_timeout_ms=10000,
           member_id="", protocol_type="consumer", protocols=[])
    c.send(11, v, "session timeout below the minimum", group_id=f"{p}-g3", session_timeout_ms=1,
           rebalance_timeout_ms=10000, member_id="", protocol_type="consumer",
           protocols=[{"name": "range", "metadata": b""}])
    if v >= 5:
        r = join(c, v, f"{p}-static", label="static member", instance="i-1")
        join(c, v, f"{p}-static", r["member_id"], label="static member again", instance="i-1")
        # a static leader restarts into its stable group: no rebalance; from v9 (KIP-814) it is
        # told it leads, with the members, and to skip the assignment
        r = join(c, v, f"{p}-lead", record=False, instance="i-2")
        sync(c, 5, f"{p}-lead", r["member_id"], r["generation_id"], record=False)
        join(c, v, f"{p}-lead", label="the static leader restarted", instance="i-2")


@session(14)
def sync_group_session(c: Conn, v: int, p: str) -> None:
    g = f"{p}-g"
    member, generation = joined(c, 7, g, record=False)
    sync(c, v, g, member, generation, "leader's assignment")
    sync(c, v, g, member, generation, "again, stable")
    sync(c, v, g, member, generation + 5, "wrong generation")
    sync(c, v, g, "no-such-member", generation, "unknown member")
    sync(c, v, f"{p}-missing", "m", 1, "unknown group")


@session(12)
def heartbeat_session(c: Conn, v: int, p: str) -> None:
    g = f"{p}-g"
    member, generation = stable_group(c, g)
    beat: dict[str, Any] = {"group_id": g, "member_id": member, "generation_id": generation}
    c.send(12, v, "stable", **beat)
    c.send(12, v, "wrong generation", **(beat | {"generation_id": generation + 3}))
    c.send(12, v, "unknown member", **(beat | {"member_id": "nobody"}))
    c.send(12, v, "unknown group", **(beat | {"group_id": f"{p}-missing"}))
    join(c, 7, g, member, record=False)  # rejoin: a new generation
    c.send(12, v, "after the rejoin, old generation", **beat)


@session(13)
def leave_group_session(c: Conn, v: int, p: str) -> None:
    g = f"{p}-g"
    member, _ = stable_group(c, g)
    if v <= 2:
        c.send(13, v, "the member", group_id=g, member_id=member)
        c.send(13, v, "again (gone)", group_id=g, member_id=member)
        c.send(13, v, "unknown group", group_id=f"{p}-missing", member_id="m")
    else:
        c.send(13, v, "the member and a stranger", group_id=g,
               members=[{"member_id": member}, {"member_id": "stranger"}])
        c.send(13, v, "again (gone)", group_id=g, members=[{"member_id": member}])
        c.send(13, v, "unknown group", group_id=f"{p}-missing", members=[{"member_id": "m"}])
    c.send(15, 5, "the group after leaving", groups=[g])


@session(15)
def describe_groups_session(c: Conn, v: int, p: str) -> None:
    g = f"{p}-g"
    stable_group(c, g)
    extra = {"include_authorized_operations": True} if v >= 3 else {}
    c.send(15, v, "stable and unknown", groups=[g, f"{p}-missing"], **extra)
    commit_offsets(c, 9, f"{p}-empty", f"{p}-t", record=False)
    c.send(15, v, "an empty group with offsets", groups=[f"{p}-empty"], **extra)
    t = f"{p}-t2"
    create_topic(c, t)
    member = str(uuid.uuid4()).replace("-", "")[:22]
    base: dict[str, Any] = {"group_id": f"{p}-848", "member_id": member, "rebalance_timeout_ms": 10000}
    r = c.send(68, 0, record=False, **base, member_epoch=0, subscribed_topic_names=[t], topic_partitions=[],
               server_assignor="uniform")
    heartbeat_until_assigned(c, 0, base, r)
    c.send(15, v, "a consumer group (KIP-848)", groups=[f"{p}-848"], **extra)


@session(16)
def list_groups_session(c: Conn, v: int, p: str) -> None:
    stable_group(c, f"{p}-g")
    commit_offsets(c, 9, f"{p}-empty", f"{p}-t", record=False)
    filters: list[dict[str, Any]] = [{}]
    if v >= 4:
        filters += [{"states_filter": ["Stable"]}, {"states_filter": ["Empty"]}]
    if v >= 5:
        filters += [{"types_filter": ["classic"]}, {"types_filter": ["consumer"]}]
    for f in filters:  # (the groups of this session only)
        c.send(16, v, str(f or "all"), view=lambda r: r | {"groups": [g for g in r["groups"] if g["group_id"].startswith(p)]},
               **f)


@session(42)
def delete_groups_session(c: Conn, v: int, p: str) -> None:
    commit_offsets(c, 9, f"{p}-empty", f"{p}-t", record=False)
    stable_group(c, f"{p}-live")
    c.send(42, v, "empty, live and unknown", groups_names=[f"{p}-empty", f"{p}-live", f"{p}-missing"])
    c.send(9, 9, "offsets of the deleted group", groups=[{"group_id": f"{p}-empty", "topics": None}])


def commit_offsets(c: Conn, v: int, group: str, topic: str, *, member: str = "", generation: int = -1,
                   label: str = "", record: bool = True, partitions: tuple[int, ...] = (0,)) -> Any:
    fields: dict[str, Any] = {"group_id": group, "generation_id_or_member_epoch": generation, "member_id": member,
                              "retention_time_ms": -1, "topics": [{"name": topic, "partitions": [
                                  {"partition_index": i, "committed_offset": 3 + i, "committed_leader_epoch": -1,
                                   "committed_metadata": "meta"} for i in partitions]}]}
    if v >= 10:  # topics by id
        fields["topics"][0]["topic_id"] = topic_ids(c, {topic})[topic]
    return c.send(8, v, label, record=record, **fields)


@session(8)
def offset_commit_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, partitions=2)
    commit_offsets(c, v, f"{p}-solo", t, partitions=(0, 1), label="no group, generation -1")
    commit_offsets(c, v, f"{p}-solo2", t, member="librdkafka-after-assign", label="no group, a member id, generation -1")
    commit_offsets(c, v, f"{p}-solo", f"{p}-missing", label="unknown topic")
    commit_offsets(c, v, f"{p}-solo", t, partitions=(7,), label="no such partition")
    member, generation = stable_group(c, f"{p}-g")
    commit_offsets(c, v, f"{p}-g", t, member=member, generation=generation, label="member of a stable group")
    commit_offsets(c, v, f"{p}-g", t, member=member, generation=generation + 1, label="wrong generation")
    commit_offsets(c, v, f"{p}-g", t, member="stranger", generation=generation, label="unknown member")
    commit_offsets(c, v, f"{p}-g", t, label="generation -1 on a live group")
    commit_offsets(c, v, "", t, label="empty group id")


@session(9)
def offset_fetch_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, partitions=2)
    commit_offsets(c, 9, f"{p}-g", t, partitions=(0,), record=False)

    def ask(label: str, group: str, topics: list[dict[str, Any]] | None) -> None:
        if v >= 10 and topics:  # topics by id
            ids = topic_ids(c, {x["name"] for x in topics})
            topics = [x | {"topic_id": ids[x["name"]]} for x in topics]
        if v >= 8:
            c.send(9, v, label, groups=[{"group_id": group, "topics": topics}], require_stable=True)
        else:
            c.send(9, v, label, group_id=group, topics=topics, **({"require_stable": True} if v >= 7 else {}))

    ask("one committed, one not", f"{p}-g", [{"name": t, "partition_indexes": [0, 1]}])
    ask("unknown topic", f"{p}-g", [{"name": f"{p}-missing", "partition_indexes": [0]}])
    ask("unknown group", f"{p}-missing", [{"name": t, "partition_indexes": [0]}])
    if v >= 2:
        ask("all topics", f"{p}-g", None)
    if v >= 8:
        c.send(9, v, "two groups", groups=[{"group_id": f"{p}-g", "topics": None},
                                           {"group_id": f"{p}-missing", "topics": None}])


@session(47)
def offset_delete_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, partitions=2)
    commit_offsets(c, 9, f"{p}-g", t, partitions=(0, 1), record=False)
    c.send(47, v, "one of two", group_id=f"{p}-g", topics=[{"name": t, "partitions": [{"partition_index": 0}]}])
    c.send(47, v, "unknown group", group_id=f"{p}-missing", topics=[{"name": t, "partitions": [{"partition_index": 0}]}])
    member, _ = stable_group(c, f"{p}-live")
    c.send(47, v, "subscribed topic of a live group (none: no consumer protocol metadata)",
           group_id=f"{p}-live", topics=[{"name": t, "partitions": [{"partition_index": 0}]}])
    c.send(9, 9, "what is left", groups=[{"group_id": f"{p}-g", "topics": None}])


@session(10)
def find_coordinator_session(c: Conn, v: int, p: str) -> None:
    if v <= 3:
        c.send(10, v, "group", key=f"{p}-g", key_type=0)
        if v >= 1:
            c.send(10, v, "transaction", key=f"{p}-txn", key_type=1)
            c.send(10, v, "bad key type", key=f"{p}-g", key_type=7)
    else:
        c.send(10, v, "group", key_type=0, coordinator_keys=[f"{p}-g", f"{p}-h"])
        c.send(10, v, "transaction", key_type=1, coordinator_keys=[f"{p}-txn"])
        c.send(10, v, "bad key type", key_type=7, coordinator_keys=[f"{p}-g"])


def heartbeat_until_assigned(c: Conn, v: int, base: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    """Heartbeat a KIP-848 member (unrecorded) until the answer carries its partitions, or
    READY_TIMEOUT passes; the last answer."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not (r.get("assignment") or {}).get("topic_partitions") and time.monotonic() < deadline:
        time.sleep(0.05)
        r = c.send(68, v, record=False, **base, member_epoch=r["member_epoch"])
    return r


@session(68)
def consumer_group_heartbeat_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, partitions=2)
    g, member = f"{p}-g", str(uuid.uuid4()).replace("-", "")[:22]
    base: dict[str, Any] = {"group_id": g, "member_id": member, "rebalance_timeout_ms": 10000}
    # Kafka assigns in the background: the join's answer may or may not carry the assignment yet
    r = c.send(68, v, "join", view=lambda r: r | {"assignment": None}, **base, member_epoch=0,
               subscribed_topic_names=[t], topic_partitions=[], server_assignor=None)
    r = heartbeat_until_assigned(c, v, base, r)
    c.note("the assignment", r["assignment"])
    epoch = r["member_epoch"]
    c.send(68, v, "heartbeat", **base, member_epoch=epoch)
    c.send(68, v, "fenced epoch", **base, member_epoch=epoch + 10)
    c.send(68, v, "unknown member", **(base | {"member_id": "x" * 22}), member_epoch=3)
    c.send(68, v, "unknown assignor", **(base | {"group_id": f"{p}-h"}), member_epoch=0,
           subscribed_topic_names=[t], topic_partitions=[], server_assignor="nope")
    c.send(68, v, "leave", **base, member_epoch=-1)
    stable_group(c, f"{p}-classic")
    c.send(68, v, "a classic group's id", **(base | {"group_id": f"{p}-classic"}), member_epoch=0,
           subscribed_topic_names=[t], topic_partitions=[])


@session(69)
def consumer_group_describe_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, partitions=2)
    member = str(uuid.uuid4()).replace("-", "")[:22]
    base: dict[str, Any] = {"group_id": f"{p}-g", "member_id": member, "rebalance_timeout_ms": 10000}
    r = c.send(68, 0, record=False, **base, member_epoch=0, subscribed_topic_names=[t], topic_partitions=[],
               server_assignor="uniform")
    # Kafka assigns in the background (and may not see a topic it has just created yet): describe
    # the member once it holds its partitions, on both brokers
    heartbeat_until_assigned(c, 0, base, r)
    stable_group(c, f"{p}-classic")
    c.send(69, v, "consumer, classic and unknown", group_ids=[f"{p}-g", f"{p}-classic", f"{p}-missing"],
           include_authorized_operations=True)


# Transactions ------------------------------------------------------------------------------

def init_pid(c: Conn, v: int, txn: str | None, label: str = "", record: bool = True, **extra: Any) -> Any:
    return c.send(22, v, label, record=record, transactional_id=txn, transaction_timeout_ms=60000, **extra)


def begin(c: Conn, p: str, t: str) -> tuple[str, int, int]:
    txn = f"{p}-txn"
    r = init_pid(c, 4, txn, record=False, producer_id=-1, producer_epoch=-1)
    pid, epoch = r["producer_id"], r["producer_epoch"]
    add = c.send(24, 3, record=False, v3_and_below_transactional_id=txn, v3_and_below_producer_id=pid,
                 v3_and_below_producer_epoch=epoch, v3_and_below_topics=[{"name": t, "partitions": [0]}])
    assert add["results_by_topic_v3_and_below"][0]["results_by_partition"][0]["partition_error_code"] == 0, add
    return txn, pid, epoch


def completed(c: Conn, txn: str) -> None:
    """Kafka writes the markers of an ended transaction after answering EndTxn (PrepareCommit, then
    CompleteCommit); tomyum before: wait for the end state either way."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        r = c.send(65, 0, record=False, transactional_ids=[txn])
        if r["transaction_states"][0]["transaction_state"] in ("CompleteCommit", "CompleteAbort", "Empty"):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{c.peer}: {txn} did not complete: {r}")
        time.sleep(0.05)


@session(22)
def init_producer_id_session(c: Conn, v: int, p: str) -> None:
    extra = {"producer_id": -1, "producer_epoch": -1} if v >= 3 else {}
    init_pid(c, v, None, "idempotent", **extra)
    r = init_pid(c, v, f"{p}-txn", "transactional", **extra)
    init_pid(c, v, f"{p}-txn", "the same id again (epoch bumped)", **extra)
    if v >= 3 and isinstance(r, dict):
        init_pid(c, v, f"{p}-txn", "with a stale epoch", producer_id=r["producer_id"], producer_epoch=0)
    c.send(22, v, "timeout too large", transactional_id=f"{p}-t2", transaction_timeout_ms=10**9, **extra)


@session(24)
def add_partitions_to_txn_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, partitions=2)
    txn, pid, epoch = begin(c, p, t)
    ask = {"v3_and_below_transactional_id": txn, "v3_and_below_producer_id": pid, "v3_and_below_producer_epoch": epoch}
    c.send(24, v, "another partition", **ask, v3_and_below_topics=[{"name": t, "partitions": [1]}])
    c.send(24, v, "again", **ask, v3_and_below_topics=[{"name": t, "partitions": [0, 1]}])
    c.send(24, v, "unknown topic", **ask, v3_and_below_topics=[{"name": f"{p}-missing", "partitions": [0]}])
    c.send(24, v, "wrong epoch", **(ask | {"v3_and_below_producer_epoch": epoch + 1}),
           v3_and_below_topics=[{"name": t, "partitions": [0]}])
    c.send(24, v, "unknown transactional id", **(ask | {"v3_and_below_transactional_id": f"{p}-nope"}),
           v3_and_below_topics=[{"name": t, "partitions": [0]}])


@session(25)
def add_offsets_to_txn_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t)
    txn, pid, epoch = begin(c, p, t)
    c.send(25, v, "a group", transactional_id=txn, producer_id=pid, producer_epoch=epoch, group_id=f"{p}-g")
    c.send(25, v, "wrong producer id", transactional_id=txn, producer_id=pid + 1, producer_epoch=epoch,
           group_id=f"{p}-g")
    c.send(25, v, "unknown transactional id", transactional_id=f"{p}-nope", producer_id=pid, producer_epoch=epoch,
           group_id=f"{p}-g")


@session(26)
def end_txn_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t)
    txn, pid, epoch = begin(c, p, t)
    produce(c, 9, t, batch(b"in txn", producer_id=pid, producer_epoch=epoch, base_sequence=0, transactional=True),
            transactional_id=txn, record=False, label="transactional")
    c.send(26, v, "commit", transactional_id=txn, producer_id=pid, producer_epoch=epoch, committed=True)
    completed(c, txn)
    c.send(26, v, "commit with nothing open", transactional_id=txn, producer_id=pid, producer_epoch=epoch,
           committed=True)
    c.send(26, v, "abort with nothing open", transactional_id=txn, producer_id=pid, producer_epoch=epoch,
           committed=False)
    c.send(26, v, "wrong epoch", transactional_id=txn, producer_id=pid, producer_epoch=epoch + 5, committed=True)
    c.send(26, v, "unknown transactional id", transactional_id=f"{p}-nope", producer_id=pid, producer_epoch=0,
           committed=True)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:  # the markers: the last stable offset moves past the commit marker
        r = c.send(2, 7, record=False, replica_id=-1, isolation_level=1, topics=[{"name": t, "partitions": [
            {"partition_index": 0, "timestamp": -1}]}])
        if r["topics"][0]["partitions"][0]["offset"] == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    c.send(1, 12, "read_committed after the commit", **(fetch_request(t, 0) | {"isolation_level": 1}))


@session(28)
def txn_offset_commit_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t)
    txn, pid, epoch = begin(c, p, t)
    g = f"{p}-g"
    c.send(25, 3, record=False, transactional_id=txn, producer_id=pid, producer_epoch=epoch, group_id=g)
    body: dict[str, Any] = {"transactional_id": txn, "group_id": g, "producer_id": pid, "producer_epoch": epoch,
                            "topics": [{"name": t, "partitions": [{"partition_index": 0, "committed_offset": 5,
                                                                   "committed_leader_epoch": -1,
                                                                   "committed_metadata": ""}]}]}
    if v >= 3:
        body |= {"generation_id": -1, "member_id": "", "group_instance_id": None}
    c.send(28, v, "in the transaction", **body)
    c.send(28, v, "group not added", **(body | {"group_id": f"{p}-other"}))
    c.send(28, v, "a later epoch", **(body | {"producer_epoch": epoch + 3}))
    c.send(9, 9, "read_committed view before the commit", groups=[{"group_id": g, "topics": None}],
           require_stable=False)
    c.send(26, 3, record=False, transactional_id=txn, producer_id=pid, producer_epoch=epoch, committed=True)
    completed(c, txn)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        r = c.send(9, 9, record=False, groups=[{"group_id": g, "topics": None}], require_stable=True)
        group = r["groups"][0]
        if group["error_code"] == 0 and group["topics"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    c.send(9, 9, "after the commit", groups=[{"group_id": g, "topics": None}])


@session(61)
def describe_producers_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, partitions=2)
    r = init_pid(c, 4, None, record=False, producer_id=-1, producer_epoch=-1)
    produce(c, 9, t, batch(b"a", b"b", producer_id=r["producer_id"], producer_epoch=r["producer_epoch"],
                           base_sequence=0), record=False)
    c.send(61, v, "after an idempotent produce", topics=[{"name": t, "partition_indexes": [0, 1, 5]}])
    c.send(61, v, "unknown topic", topics=[{"name": f"{p}-missing", "partition_indexes": [0]}])


@session(65)
def describe_transactions_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t)
    txn, _, _ = begin(c, p, t)
    c.send(65, v, "ongoing and unknown", transactional_ids=[txn, f"{p}-nope"])


@session(66)
def list_transactions_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t)
    _, pid, _ = begin(c, p, t)
    filters: list[dict[str, Any]] = [{}, {"state_filters": ["Ongoing"]}, {"state_filters": ["CompleteCommit"]},
                                     {"producer_id_filters": [pid]}, {"state_filters": ["NoSuchState"]}]
    if v >= 1:
        filters.append({"duration_filter": 3_600_000})
    if v >= 2:  # KIP-1152: a regular expression the whole transactional id matches
        filters += [{"transactional_id_pattern": f"{p}.*"}, {"transactional_id_pattern": p},
                    {"transactional_id_pattern": ""}, {"transactional_id_pattern": "["}]
    for f in filters:  # (the transactions of this session only)
        c.send(66, v, str(f or "all"), view=lambda r: r | {"transaction_states": [
            s for s in r["transaction_states"] if s["transactional_id"].startswith(p)]}, **f)


# Admin -------------------------------------------------------------------------------------

@session(19)
def create_topics_session(c: Conn, v: int, p: str) -> None:
    def create(label: str, *topics: dict[str, Any], validate_only: bool = False) -> None:
        body: dict[str, Any] = {"topics": [{"replication_factor": 1, "num_partitions": 1, "assignments": [],
                                            "configs": []} | t for t in topics], "timeout_ms": 30000}
        if v >= 1:
            body["validate_only"] = validate_only
        c.send(19, v, label, view=lambda r: r | {"topics": [t | {"configs": [  # the configs both implement
            x for x in t.get("configs") or [] if x["name"] in COMMON_TOPIC_CONFIGS]} for t in r["topics"]]}, **body)

    create("two topics", {"name": f"{p}-a", "num_partitions": 3, "configs": [
        {"name": "retention.ms", "value": "1000000"}]}, {"name": f"{p}-b"})
    create("exists", {"name": f"{p}-a"})
    create("invalid name", {"name": "bad/name"})
    create("zero partitions", {"name": f"{p}-c", "num_partitions": 0})
    create("replication factor 3 on one broker", {"name": f"{p}-d", "replication_factor": 3})
    create("unknown config", {"name": f"{p}-e", "configs": [{"name": "no.such.config", "value": "1"}]})
    create("bad config value", {"name": f"{p}-f", "configs": [{"name": "retention.ms", "value": "soon"}]})
    create("validate only", {"name": f"{p}-g", "num_partitions": 2}, validate_only=True)
    create("the same name twice", {"name": f"{p}-h"}, {"name": f"{p}-h"})
    if v >= 4:
        create("broker defaults (-1, -1)", {"name": f"{p}-i", "num_partitions": -1, "replication_factor": -1})
    create("manual assignment", {"name": f"{p}-j", "num_partitions": -1, "replication_factor": -1,
                                 "assignments": [{"partition_index": 0, "broker_ids": [node_id(c)]}]})


@session(20)
def delete_topics_session(c: Conn, v: int, p: str) -> None:
    create_topic(c, f"{p}-a")
    create_topic(c, f"{p}-b")
    if v <= 5:
        c.send(20, v, "one and an unknown", topic_names=[f"{p}-a", f"{p}-missing"], timeout_ms=30000)
        c.send(20, v, "again", topic_names=[f"{p}-a"], timeout_ms=30000)
    else:
        topic_id = wait_ready(c, f"{p}-b")["topic_id"]
        c.send(20, v, "by name and unknown", topics=[{"name": f"{p}-a"}, {"name": f"{p}-missing"}], timeout_ms=30000)
        c.send(20, v, "by id", topics=[{"name": None, "topic_id": topic_id}], timeout_ms=30000)
        c.send(20, v, "unknown id", topics=[{"name": None, "topic_id": str(uuid.UUID(int=7))}], timeout_ms=30000)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        r = c.send(3, 12, record=False, topics=[{"name": f"{p}-a"}], allow_auto_topic_creation=False)
        if r["topics"][0]["error_code"] != 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    c.send(3, 12, "gone", topics=[{"name": f"{p}-a"}], allow_auto_topic_creation=False)


@session(37)
def create_partitions_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t)

    def grow(label: str, count: int, topic: str = t, validate_only: bool = False, **extra: Any) -> None:
        c.send(37, v, label, topics=[{"name": topic, "count": count, "assignments": None} | extra],
               timeout_ms=30000, validate_only=validate_only)

    grow("1 to 3, validate only", 3, validate_only=True)
    grow("1 to 3", 3)
    grow("3 to 3", 3)
    grow("3 to 2", 2)
    grow("unknown topic", 4, topic=f"{p}-missing")
    grow("bad assignment", 5, assignments=[{"broker_ids": [99]}, {"broker_ids": [99]}])
    c.send(37, v, "the same topic twice", topics=[{"name": t, "count": 6, "assignments": None},
                                                  {"name": t, "count": 7, "assignments": None}],
           timeout_ms=30000, validate_only=False)
    c.send(3, 12, "what the topic has", topics=[{"name": t}], allow_auto_topic_creation=False)


@session(32)
def describe_configs_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, configs={"retention.ms": "1000000", "cleanup.policy": "compact"})
    keys = ["retention.ms", "cleanup.policy", "segment.bytes", "max.message.bytes", "min.insync.replicas",
            "compression.type", "message.timestamp.type"]
    extra: dict[str, Any] = {"include_synonyms": True} if v >= 1 else {}
    if v >= 3:
        extra["include_documentation"] = False
    c.send(32, v, "topic keys", resources=[{"resource_type": 2, "resource_name": t, "configuration_keys": keys}],
           **extra)
    c.send(32, v, "unknown topic", resources=[{"resource_type": 2, "resource_name": f"{p}-missing",
                                               "configuration_keys": None}], **extra)
    c.send(32, v, "unknown key", resources=[{"resource_type": 2, "resource_name": t,
                                             "configuration_keys": ["no.such.config"]}], **extra)
    c.send(32, v, "broker keys", resources=[{"resource_type": 4, "resource_name": str(node_id(c)),
                                             "configuration_keys": ["message.max.bytes", "num.partitions",
                                                                    "log.retention.ms", "auto.create.topics.enable"]}],
           **extra)
    c.send(32, v, "another broker", resources=[{"resource_type": 4, "resource_name": "77",
                                                "configuration_keys": None}], **extra)
    c.send(32, v, "bad resource type", resources=[{"resource_type": 9, "resource_name": "x",
                                                   "configuration_keys": None}], **extra)


@session(33)
def alter_configs_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, configs={"retention.ms": "1000000"})

    def alter(label: str, configs: dict[str, str | None], name: str = t, validate_only: bool = False) -> None:
        c.send(33, v, label, validate_only=validate_only, resources=[{"resource_type": 2, "resource_name": name,
               "configs": [{"name": k, "value": val} for k, val in configs.items()]}])

    alter("replace the overrides", {"segment.bytes": "2000000"})
    alter("validate only", {"segment.bytes": "3000000"}, validate_only=True)
    alter("unknown key", {"no.such.config": "1"})
    alter("bad value", {"retention.ms": "soon"})
    alter("null value", {"retention.ms": None})
    alter("unknown topic", {"retention.ms": "1"}, name=f"{p}-missing")
    describe_keys(c, t, ["retention.ms", "segment.bytes"], lambda v: v["segment.bytes"][1] == 1)


def describe_keys(c: Conn, topic: str, keys: list[str], applied: Callable[[dict[str, Any]], bool],
                  label: str = "what is set") -> None:
    """Note ``keys`` of ``topic`` once ``applied(values)`` holds: Kafka's broker applies an
    alteration just after the controller answers it."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        r = c.send(32, 4, record=False, resources=[
            {"resource_type": 2, "resource_name": topic, "configuration_keys": keys}])
        values = {e["name"]: (e["value"], e["config_source"]) for e in r["results"][0]["configs"]}
        if applied(values) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    c.note(label, values)


@session(44)
def incremental_alter_configs_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, configs={"retention.ms": "1000000"})

    def alter(label: str, *ops: tuple[str, int, str | None], name: str = t, kind: int = 2,
              validate_only: bool = False) -> None:
        c.send(44, v, label, validate_only=validate_only, resources=[{"resource_type": kind, "resource_name": name,
               "configs": [{"name": k, "config_operation": op, "value": val} for k, op, val in ops]}])

    alter("set, delete, append", ("segment.bytes", 0, "2000000"), ("retention.ms", 1, None),
          ("cleanup.policy", 2, "compact"))
    alter("subtract", ("cleanup.policy", 3, "delete"))
    alter("append to a non-list", ("segment.bytes", 2, "1"))
    alter("unknown key", ("no.such.config", 0, "1"))
    alter("bad value", ("retention.ms", 0, "soon"))
    alter("validate only", ("retention.ms", 0, "5"), validate_only=True)
    alter("bad operation", ("retention.ms", 9, "5"))
    alter("the same key twice", ("retention.ms", 0, "5"), ("retention.ms", 0, "6"))
    alter("unknown topic", ("retention.ms", 0, "1"), name=f"{p}-missing")
    alter("another broker", ("log.retention.ms", 0, "1"), name="77", kind=4)
    alter("a group's config", ("consumer.session.timeout.ms", 0, "50000"), name=f"{p}-g", kind=32)
    alter("a group's config out of bounds", ("consumer.session.timeout.ms", 0, "1"), name=f"{p}-g", kind=32)
    describe_keys(c, t, ["retention.ms", "segment.bytes", "cleanup.policy"],
                  lambda v: v["cleanup.policy"] == ("compact", 1))


# Cluster, security, quotas -------------------------------------------------------------------

@session(35)
def describe_log_dirs_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, partitions=2)
    produce(c, 9, t, batch(b"x" * 100, b"y"), record=False)

    def view(r: Any) -> Any:
        # the directory's path and its volume's bytes are each machine's own; the sizes are
        # not: both brokers store the same batches in Kafka's format
        return {"error_code": r.get("error_code", 0), "results": [{
            "error_code": d["error_code"],
            "topics": [{"name": t["name"], "partitions": sorted(t["partitions"], key=lambda x: x["partition_index"])}
                       for t in sorted(d["topics"], key=lambda t: t["name"])],
            "volume told": [d.get("total_bytes", 1) > 0, d.get("usable_bytes", 1) > 0]} for d in r["results"]]}

    c.send(35, v, "one topic, a partition it lacks", view=view, topics=[{"topic": t, "partitions": [0, 1, 7]}])
    c.send(35, v, "an unknown topic", view=view, topics=[{"topic": f"{p}-missing", "partitions": [0]}])


@session(43)
def elect_leaders_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, partitions=2)
    kind = {"election_type": 0} if v >= 1 else {}

    def elect(label: str, topics: list[dict[str, Any]] | None, **extra: Any) -> None:
        # every partition: only this session's topics (the others are other sessions')
        c.send(43, v, label, view=lambda r: {**r, "replica_election_results": [
            x for x in r["replica_election_results"] if x["topic"].startswith(p)]},
            topic_partitions=topics, timeout_ms=10000, **(kind | extra))

    elect("preferred: the leader is the preferred one", [{"topic": t, "partitions": [0, 1]}])
    elect("an unknown topic and partition", [{"topic": f"{p}-missing", "partitions": [0]},
                                             {"topic": t, "partitions": [5]}])
    elect("every partition", None)
    if v >= 1:
        elect("unclean: the partition has a leader", [{"topic": t, "partitions": [0]}], election_type=1)
        elect("an unknown election type", [{"topic": t, "partitions": [0]}], election_type=7)


@session(45)
def alter_partition_reassignments_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t, partitions=2)
    node = node_id(c)
    rf = {"allow_replication_factor_change": True} if v >= 1 else {}

    def alter(label: str, replicas: list[int] | None, topic: str = t, partition: int = 0, **extra: Any) -> None:
        c.send(45, v, label, timeout_ms=10000, **(rf | extra), topics=[
            {"name": topic, "partitions": [{"partition_index": partition, "replicas": replicas}]}])

    alter("onto the replica it has", [node])
    alter("onto a broker that is not there", [node + 1])
    alter("the same broker twice", [node, node])
    alter("no replicas", [])
    alter("cancel: none in progress", None)
    alter("an unknown topic", [node], topic=f"{p}-missing")
    alter("an unknown partition", [node], partition=9)
    if v >= 1:
        alter("a replication factor change not allowed", [node, node + 1], allow_replication_factor_change=False)


@session(46)
def list_partition_reassignments_session(c: Conn, v: int, p: str) -> None:
    t = f"{p}-t"
    create_topic(c, t)
    c.send(46, v, "every topic", timeout_ms=10000, topics=None)
    c.send(46, v, "a topic and an unknown one", timeout_ms=10000,
           topics=[{"name": t, "partition_indexes": [0, 3]}, {"name": f"{p}-missing", "partition_indexes": [0]}])


@session(55)
def describe_quorum_session(c: Conn, v: int, p: str) -> None:
    def view(r: Any) -> Any:
        # offsets and clocks are each broker's own; what is compared is their shape
        def replica(x: dict[str, Any]) -> dict[str, Any]:
            return {"replica_id": x["replica_id"], "log_end_offset set": x["log_end_offset"] > 0,
                    "timestamps set": [x.get("last_fetch_timestamp", 1) > 0, x.get("last_caught_up_timestamp", 1) > 0]}
        return {"error_code": r["error_code"], "nodes": [n["node_id"] for n in r.get("nodes", ())], "topics": [
            {"topic_name": t["topic_name"], "partitions": [
                {"partition_index": x["partition_index"], "error_code": x["error_code"], "leader_id": x["leader_id"],
                 "leader_epoch set": x["leader_epoch"] > 0, "high_watermark set": x["high_watermark"] > 0,
                 "current_voters": [replica(y) for y in x["current_voters"]],
                 "observers": [replica(y) for y in x["observers"]]} for x in t["partitions"]]} for t in r["topics"]]}

    def quorum(topic: str = "__cluster_metadata", partitions: tuple[int, ...] = (0,)) -> list[dict[str, Any]]:
        return [{"topic_name": topic, "partitions": [{"partition_index": i} for i in partitions]}]

    c.send(55, v, "the metadata quorum", view=view, topics=quorum())
    c.send(55, v, "another topic", view=view, topics=quorum(f"{p}-t"))
    c.send(55, v, "another partition", view=view, topics=quorum(partitions=(1,)))
    c.send(55, v, "two partitions", view=view, topics=quorum(partitions=(0, 1)))


@session(75)
def describe_topic_partitions_session(c: Conn, v: int, p: str) -> None:
    a, b = f"{p}-a", f"{p}-b"
    create_topic(c, a, partitions=3)
    create_topic(c, b, partitions=2)

    def describe(label: str, topics: list[str], limit: int = 2000, cursor: tuple[str, int] | None = None) -> None:
        # every topic: only this session's (the others are other sessions')
        c.send(75, v, label, view=lambda r: r | {"topics": [t for t in r["topics"] if t["name"].startswith(p)]},
               topics=[{"name": t} for t in topics], response_partition_limit=limit,
               cursor=None if cursor is None else {"topic_name": cursor[0], "partition_index": cursor[1]})

    describe("two topics", [b, a])
    describe("a limit inside a topic", [a, b], limit=2)
    describe("from that cursor", [a, b], limit=2, cursor=(a, 2))
    describe("a limit at a topic's end", [a, b], limit=3)
    describe("an unknown topic and a bad name", [a, f"{p}-missing", "bad/name"])
    describe("a cursor past the topics asked for", [a], cursor=(b, 0))
    describe("a negative cursor partition", [a], cursor=(a, -1))
    describe("every topic from a cursor", [], limit=2, cursor=(a, 1))


@session(60)
def describe_cluster_session(c: Conn, v: int, p: str) -> None:
    extra = {"endpoint_type": 1} if v >= 1 else {}
    if v >= 2:
        extra["include_fenced_brokers"] = True
    c.send(60, v, "brokers", include_cluster_authorized_operations=True, **extra)
    if v >= 1:
        c.send(60, v, "controllers (KIP-919)", include_cluster_authorized_operations=False, endpoint_type=2)
        c.send(60, v, "bad endpoint type", include_cluster_authorized_operations=False, endpoint_type=9)


@session(18)
def api_versions_session(c: Conn, v: int, p: str) -> None:
    from tomyum.broker.dispatch import api_version_ranges
    from tomyum.metadata.controller import METADATA_VERSION

    extra = {"client_software_name": "diff", "client_software_version": "1.0"} if v >= 3 else {}
    def view(r: Any) -> Any:
        # Kafka serves more APIs and wider ranges; what matters is every version tomyum advertises
        served = {k["api_key"]: (k["min_version"], k["max_version"]) for k in r["api_keys"]}
        out = {"error_code": r["error_code"], "tomyum's ranges served": {
            a["api_key"]: [lo <= a["min_version"] <= hi, lo <= a["max_version"] <= hi]
            for a in api_version_ranges() for lo, hi in [served.get(a["api_key"], (99, -1))]}}
        if v >= 3:
            # the features tomyum finalizes, and at its levels: each one Kafka supports, at those levels
            supported = {f["name"]: (f["min_version"], f["max_version"]) for f in r["supported_features"]}
            out["tomyum's features supported"] = {
                name: supported.get(name, (99, -1))[0] <= level <= supported.get(name, (99, -1))[1]
                for name, level in (("metadata.version", METADATA_VERSION), ("group.version", 1))}
            out["finalized features have an epoch"] = r["finalized_features_epoch"] >= 0
        return out

    c.send(18, v, "tomyum's versions", view=view, **extra)
    if v >= 3:
        c.send(18, v, "bad client software name", view=lambda r: r["error_code"], client_software_name="a b!",
               client_software_version="1.0")


@session(17)
def sasl_handshake_session(c: Conn, v: int, p: str) -> None:
    c.send(17, v, "PLAIN on a PLAINTEXT listener", mechanism="PLAIN")


@session(36)
def sasl_authenticate_session(c: Conn, v: int, p: str) -> None:
    c.send(36, v, "without a handshake", auth_bytes=b"\0user\0secret")


@session(29, 30, 31)
def acls_session(c: Conn, v: int, p: str) -> None:
    """Without an authorizer (the peers run none): SECURITY_DISABLED everywhere."""
    binding = {"resource_type": 2, "resource_name": f"{p}-t", "principal": "User:alice", "host": "*",
               "operation": 3, "permission_type": 3}
    pattern = {"resource_pattern_type": 3} if v >= 1 else {}
    c.send(30, v, "create", creations=[binding | pattern])
    c.send(29, v, "describe", resource_type_filter=2, resource_name_filter=None, principal_filter=None,
           host_filter=None, operation=1, permission_type=1,
           **({"pattern_type_filter": 1} if v >= 1 else {}))
    c.send(31, v, "delete", filters=[{"resource_type_filter": 2, "resource_name_filter": None,
                                      "principal_filter": None, "host_filter": None, "operation": 1,
                                      "permission_type": 1} | ({"pattern_type_filter": 1} if v >= 1 else {})])


@session(48, 49)
def client_quotas_session(c: Conn, v: int, p: str) -> None:
    user = f"{p}-user"
    entity = [{"entity_type": "user", "entity_name": user}]
    c.send(49, v, "set", entries=[{"entity": entity, "ops": [{"key": "producer_byte_rate", "value": 1024.0,
                                                               "remove": False}]}], validate_only=False)
    c.send(49, v, "unknown key", entries=[{"entity": entity, "ops": [{"key": "no.such.quota", "value": 1.0,
                                                                       "remove": False}]}], validate_only=False)
    c.send(49, v, "bad entity type", entries=[{"entity": [{"entity_type": "planet", "entity_name": "x"}],
                                               "ops": [{"key": "producer_byte_rate", "value": 1.0, "remove": False}]}],
           validate_only=False)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        r = c.send(48, v, record=False, components=[{"entity_type": "user", "match_type": 0, "match": user}],
                   strict=False)
        if r["entries"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    c.send(48, v, "exact", components=[{"entity_type": "user", "match_type": 0, "match": user}], strict=False)
    c.send(48, v, "unknown entity type", components=[{"entity_type": "planet", "match_type": 1}], strict=False)
    c.send(49, v, "remove", entries=[{"entity": entity, "ops": [{"key": "producer_byte_rate", "value": 0.0,
                                                                  "remove": True}]}], validate_only=False)


@session(50, 51)
def scram_session(c: Conn, v: int, p: str) -> None:
    user = f"{p}-user"
    c.send(50, v, "unknown user", users=[{"name": user}])
    c.send(51, v, "upsert", deletions=[], upsertions=[{
        "name": user, "mechanism": 1, "iterations": 4096, "salt": b"salt" * 4, "salted_password": b"p" * 32}])
    c.send(51, v, "too few iterations", deletions=[], upsertions=[{
        "name": f"{user}2", "mechanism": 1, "iterations": 1, "salt": b"salt", "salted_password": b"p" * 32}])
    c.send(51, v, "unknown mechanism", deletions=[], upsertions=[{
        "name": f"{user}3", "mechanism": 9, "iterations": 4096, "salt": b"salt", "salted_password": b"p" * 32}])
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        r = c.send(50, v, record=False, users=[{"name": user}])
        if r["results"][0]["error_code"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    c.send(50, v, "the user", users=[{"name": user}])
    c.send(51, v, "delete", upsertions=[], deletions=[{"name": user, "mechanism": 1}])
    c.send(51, v, "delete again", upsertions=[], deletions=[{"name": user, "mechanism": 1}])

