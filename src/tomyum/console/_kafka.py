"""What the console asks of a Kafka cluster, through confluent-kafka (no broker internals), so
that it works against tomyum and Apache Kafka alike; what confluent-kafka has no call for (sizes
on disk, transactions, producers) through kafka-python (:mod:`tomyum.console._admin`).

Every call blocks (the web layer runs it in a worker thread) and is bounded by ``timeout``.
Errors are :class:`confluent_kafka.KafkaException`; the web layer shows them as one line.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka import admin as _admin
from confluent_kafka.admin import AdminClient

from tomyum.console._admin import WireAdmin

# confluent-kafka's admin types, untyped for mypy (the package re-exports them without __all__)
ck: Any = _admin
T = TypeVar("T")

INACTIVE_STATES = {"EMPTY", "DEAD"}  # Kafka resets a group's offsets only in these
SAMPLES = 60  # throughput samples kept for the sparkline

# librdkafka's own log lines (a broker that went away, say): kept off the console's output
librdkafka_log = logging.getLogger("tomyum.console.librdkafka")
librdkafka_log.propagate = False


@dataclass
class Record:
    partition: int
    offset: int
    timestamp: int
    key: str | None
    value: str | None
    headers: list[tuple[str, str]]
    pretty: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"partition": self.partition, "offset": self.offset, "timestamp": self.timestamp,
                "time": iso(self.timestamp), "key": self.key, "value": self.value,
                "headers": self.headers, "pretty": self.pretty}


@dataclass
class Sample:
    at: float
    end_offsets: dict[str, int] = field(default_factory=dict)


def iso(ms: int) -> str:
    if ms < 0:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def _text(b: bytes | str | None) -> str | None:
    if b is None:
        return None
    if isinstance(b, str):
        return b
    return b.decode("utf-8", "backslashreplace")


def _pretty(value: str | None) -> str | None:
    if not value or value[0] not in "{[":
        return None
    try:
        return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
    except ValueError:
        return None


# What a cluster answers for a moment while a partition moves or a new topic settles (Kafka's
# InvalidMetadataException family): the console asks again, within its timeout, before it shows an error.
TRANSIENT = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.NOT_LEADER_FOR_PARTITION,
             KafkaError.REPLICA_NOT_AVAILABLE, KafkaError._TRANSPORT, KafkaError.NOT_COORDINATOR,
             KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE}


def _check(error: Any) -> None:
    if error is not None and error.code() != KafkaError.NO_ERROR:
        raise KafkaException(error)


class Cluster:
    """One cluster seen as the client ``settings`` (librdkafka keys, security included) sees it."""

    def __init__(self, bootstrap: str, settings: dict[str, str] | None = None, timeout: float = 10.0) -> None:
        self.settings: dict[str, Any] = {"bootstrap.servers": bootstrap, **(settings or {})}
        self.timeout = timeout
        self.started = time.time()
        self.settings.setdefault("logger", librdkafka_log)
        self.admin = AdminClient(dict(self.settings))
        self.wire = WireAdmin(self.settings, timeout)
        self._producer: Producer | None = None
        self._lock = threading.Lock()
        self.samples: deque[Sample] = deque(maxlen=SAMPLES)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self.timeout)
        self.wire.close()

    # --- the cluster ---

    def describe(self) -> dict[str, Any]:
        d = self.admin.describe_cluster(request_timeout=self.timeout).result(self.timeout)
        return {"cluster_id": d.cluster_id, "controller": d.controller.id if d.controller else None,
                "nodes": sorted(((n.id, n.host, n.port) for n in d.nodes))}

    def overview(self) -> dict[str, Any]:
        md = self.admin.list_topics(timeout=self.timeout)
        topics = [t for t in md.topics if not t.startswith("__")]
        partitions = sum(len(md.topics[t].partitions) for t in topics)
        groups = self.admin.list_consumer_groups(request_timeout=self.timeout).result(self.timeout)
        return {**self.describe(), "topics": len(topics), "partitions": partitions,
                "groups": len(groups.valid), "console_uptime": int(time.time() - self.started)}

    def broker_configs(self, node: int) -> list[Any]:
        resource = ck.ConfigResource(ck.ResourceType.BROKER, str(node))
        result = self.admin.describe_configs([resource], request_timeout=self.timeout)
        return sorted(result[resource].result(self.timeout).values(), key=lambda e: e.name)

    def log_dirs(self) -> list[dict[str, Any]]:
        """Every broker's log directories with their partitions' sizes (DescribeLogDirs)."""
        return self.settled(self.wire.log_dirs)

    def disk(self) -> tuple[dict[tuple[str, int], int] | None, str]:
        """Bytes on disk per partition, all its replicas together, or None and why not (the
        principal may not describe the cluster, or its login cannot be carried to kafka-python)."""
        try:
            dirs = self.log_dirs()
        except KafkaException as e:
            error: Any = e.args[0]
            return None, f"{error.name()}: {error.str()}"
        sizes: dict[tuple[str, int], int] = {}
        for d in dirs:
            for tp, size in d["sizes"].items():
                sizes[tp] = sizes.get(tp, 0) + size
        return sizes, ""

    def transactions(self) -> list[dict[str, Any]]:
        """Every transactional id (ListTransactions on each broker), described by its coordinator."""
        return self.settled(self.wire.transactions)

    def producers(self, topic: str) -> list[dict[str, Any]]:
        """The active (idempotent or transactional) producers of each partition of ``topic``."""
        partitions = sorted(self._topic_metadata(topic).partitions)
        return self.settled(lambda: self.wire.producers(topic, partitions))

    # --- offsets and throughput ---

    def settled(self, call: Callable[[], T]) -> T:
        """``call()``, asked again (for up to ``timeout``) while the cluster answers a transient error."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return call()
            except KafkaException as e:
                if e.args[0].code() not in TRANSIENT or time.monotonic() >= deadline:
                    raise
            time.sleep(0.1)  # a transient answer: ask again, within the deadline

    def end_offsets(self, partitions: list[TopicPartition], spec: Any) -> dict[tuple[str, int], int]:
        if not partitions:
            return {}

        def ask() -> dict[tuple[str, int], int]:
            result = self.admin.list_offsets({tp: spec for tp in partitions}, request_timeout=self.timeout)
            return {(tp.topic, tp.partition): future.result(self.timeout).offset for tp, future in result.items()}
        return self.settled(ask)

    def partitions(self, topics: list[str] | None = None) -> list[TopicPartition]:
        md = self.admin.list_topics(timeout=self.timeout)
        names = topics if topics is not None else [t for t in md.topics if not t.startswith("__")]
        return [TopicPartition(t, p) for t in names if t in md.topics for p in md.topics[t].partitions]

    def sample(self) -> list[Sample]:
        """Take a sample of every topic's end offsets (at most one a second) and return them all."""
        with self._lock:
            if self.samples and time.time() - self.samples[-1].at < 1.0:
                return list(self.samples)
        latest = self.end_offsets(self.partitions(), ck.OffsetSpec.latest())
        sample = Sample(time.time())
        for (topic, _), offset in latest.items():
            sample.end_offsets[topic] = sample.end_offsets.get(topic, 0) + max(offset, 0)
        with self._lock:
            self.samples.append(sample)
            return list(self.samples)

    def throughput(self) -> list[float]:
        """Records per second between consecutive samples, all topics together."""
        samples = self.sample()
        return [max(0.0, (sum(b.end_offsets.values()) - sum(a.end_offsets.values())) / max(b.at - a.at, 1e-3))
                for a, b in zip(samples, samples[1:])]

    def rates(self) -> dict[str, float]:
        samples = self.sample()
        if len(samples) < 2:
            return {}
        a, b = samples[-2], samples[-1]
        return {t: max(0.0, (n - a.end_offsets.get(t, n)) / max(b.at - a.at, 1e-3)) for t, n in b.end_offsets.items()}

    # --- topics ---

    def topics(self, internal: bool = False) -> list[dict[str, Any]]:
        md = self.admin.list_topics(timeout=self.timeout)
        names = sorted(t for t in md.topics if internal or not t.startswith("__"))
        tps = [TopicPartition(t, p) for t in names for p in md.topics[t].partitions]
        low = self.end_offsets(tps, ck.OffsetSpec.earliest())
        high = self.end_offsets(tps, ck.OffsetSpec.latest())
        rates = self.rates()
        rows = []
        for t in names:
            parts = md.topics[t].partitions
            replicas = max((len(p.replicas) for p in parts.values()), default=0)
            records = sum(max(high[(t, p)] - low[(t, p)], 0) for p in parts)
            rows.append({"name": t, "partitions": len(parts), "replicas": replicas, "records": records,
                         "rate": rates.get(t, 0.0)})
        return rows

    def _topic_metadata(self, name: str) -> Any:
        """``name``'s metadata, without creating it (asking for one topic by name may)."""
        md = self.admin.list_topics(timeout=self.timeout)
        if name not in md.topics:
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"no topic {name!r}"))
        meta = md.topics[name]
        _check(meta.error)
        return meta

    def topic(self, name: str) -> dict[str, Any]:
        meta = self._topic_metadata(name)
        tps = [TopicPartition(name, p) for p in sorted(meta.partitions)]
        low = self.end_offsets(tps, ck.OffsetSpec.earliest())
        high = self.end_offsets(tps, ck.OffsetSpec.latest())
        parts = [{"id": tp.partition, "leader": meta.partitions[tp.partition].leader,
                  "replicas": meta.partitions[tp.partition].replicas, "isr": meta.partitions[tp.partition].isrs,
                  "low": low[(name, tp.partition)], "high": high[(name, tp.partition)]} for tp in tps]
        resource = ck.ConfigResource(ck.ResourceType.TOPIC, name)
        configs = self.settled(
            lambda: self.admin.describe_configs([resource], request_timeout=self.timeout)[resource].result(self.timeout))
        return {"name": name, "partitions": parts, "configs": sorted(configs.values(), key=lambda e: e.name)}

    def create_topic(self, name: str, partitions: int, replication: int, configs: dict[str, str]) -> None:
        topic = ck.NewTopic(name, partitions, replication, config=configs)
        self.admin.create_topics([topic], request_timeout=self.timeout)[name].result(self.timeout)
        # Apache Kafka answers once the controller has the topic; its brokers learn of it a moment
        # later. The topic's page comes next: wait (bounded) until metadata has every partition led.
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            meta = self.admin.list_topics(timeout=self.timeout).topics.get(name)
            if meta is not None and len(meta.partitions) == partitions and \
                    all(p.leader >= 0 for p in meta.partitions.values()):
                return
            time.sleep(0.05)

    def delete_topic(self, name: str) -> None:
        self.admin.delete_topics([name], request_timeout=self.timeout)[name].result(self.timeout)

    def add_partitions(self, name: str, total: int) -> None:
        self.admin.create_partitions([ck.NewPartitions(name, total)], request_timeout=self.timeout)[name].result(
            self.timeout)

    def alter_topic_config(self, name: str, key: str, value: str | None) -> None:
        """Set ``key`` to ``value`` (incrementally), or back to its default when ``value`` is None."""
        op = ck.AlterConfigOpType.DELETE if value is None else ck.AlterConfigOpType.SET
        entry = ck.ConfigEntry(key, value, incremental_operation=op)
        resource = ck.ConfigResource(ck.ResourceType.TOPIC, name, incremental_configs=[entry])
        self.admin.incremental_alter_configs([resource], request_timeout=self.timeout)[resource].result(self.timeout)

    def delete_records(self, name: str, partition: int | None, before: int) -> None:
        """Delete the records before offset ``before`` (-1: all) of one partition, or of every one."""
        ids = sorted(self._topic_metadata(name).partitions) if partition is None else [partition]
        tps = [TopicPartition(name, p, before) for p in ids]
        for future in self.admin.delete_records(tps, request_timeout=self.timeout).values():
            future.result(self.timeout)

    # --- records ---

    def _consumer(self) -> Consumer:
        return Consumer({**self.settings, "group.id": f"tomyum-console-{uuid.uuid4()}",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "auto.offset.reset": "earliest"})

    def browse(self, topic: str, partition: int | None, start: str, value: int | None = None,
               query: str = "", limit: int = 50, max_scan: int = 20000) -> tuple[list[Record], int]:
        """Up to ``limit`` records of ``topic`` (one partition, or all) from ``start`` (newest,
        oldest, offset, timestamp), those that contain ``query`` in the key, value or a header
        when it is given; and how many records were read."""
        tps = [tp for tp in self.partitions([topic]) if partition is None or tp.partition == partition]
        low = self.end_offsets(tps, ck.OffsetSpec.earliest())
        high = self.end_offsets(tps, ck.OffsetSpec.latest())
        begin: dict[tuple[str, int], int] = {}
        if start == "timestamp":
            begin = self.end_offsets(tps, ck.OffsetSpec.for_timestamp(value or 0))
            begin = {k: (high[k] if v < 0 else v) for k, v in begin.items()}
        for tp in tps:
            k = (tp.topic, tp.partition)
            if start == "oldest" or (start == "newest" and query):
                begin[k] = low[k]
            elif start == "newest":
                begin[k] = max(low[k], high[k] - limit)
            elif start == "offset":
                begin[k] = min(max(value or 0, low[k]), high[k])
        todo = [TopicPartition(t, p, begin[(t, p)]) for t, p in begin if begin[(t, p)] < high[(t, p)]]
        records: list[Record] = []
        scanned = 0
        if todo:
            needle = query.lower()
            consumer = self._consumer()
            try:
                consumer.assign(todo)
                remaining = {(tp.topic, tp.partition) for tp in todo}
                deadline = time.monotonic() + self.timeout
                while remaining and scanned < max_scan and time.monotonic() < deadline:
                    for m in self._consume(consumer):
                        k = (m.topic(), m.partition())
                        if m.error() is not None:
                            if m.error().code() == KafkaError._PARTITION_EOF:
                                remaining.discard(k)
                                continue
                            raise KafkaException(m.error())
                        if k not in remaining:
                            continue
                        scanned += 1
                        if m.offset() + 1 >= high[k]:
                            remaining.discard(k)
                        r = self._record(m)
                        if not needle or self._matches(r, needle):
                            records.append(r)
                    if not needle and start != "newest" and len(records) >= limit:
                        break
            finally:
                consumer.close()
        newest_first = start == "newest"
        records.sort(key=lambda r: (r.timestamp, r.partition, r.offset), reverse=newest_first)
        return records[:limit], scanned

    @staticmethod
    def _consume(consumer: Consumer) -> list[Any]:
        return list(consumer.consume(500, 0.5))

    @staticmethod
    def _record(m: Any) -> Record:
        value = _text(m.value())
        headers = [(h, _text(v) or "") for h, v in (m.headers() or [])]
        return Record(m.partition(), m.offset(), m.timestamp()[1], _text(m.key()), value, headers, _pretty(value))

    @staticmethod
    def _matches(r: Record, needle: str) -> bool:
        fields = [r.key or "", r.value or ""] + [f"{h}={v}" for h, v in r.headers]
        return any(needle in f.lower() for f in fields)

    def tail(self, topic: str, after: dict[int, int]) -> tuple[list[Record], dict[int, int]]:
        """The records of ``topic`` after the positions ``after`` (partition → next offset; a
        partition not in it starts at its end now), and the new positions."""
        tps = self.partitions([topic])
        high = self.end_offsets(tps, ck.OffsetSpec.latest())
        positions = {tp.partition: after.get(tp.partition, high[(topic, tp.partition)]) for tp in tps}
        todo = [TopicPartition(topic, p, o) for p, o in positions.items() if o < high[(topic, p)]]
        records: list[Record] = []
        if todo:
            consumer = self._consumer()
            try:
                consumer.assign(todo)
                remaining = {tp.partition for tp in todo}
                deadline = time.monotonic() + self.timeout
                while remaining and time.monotonic() < deadline:
                    for m in self._consume(consumer):
                        if m.error() is not None:
                            if m.error().code() == KafkaError._PARTITION_EOF:
                                remaining.discard(m.partition())
                                continue
                            raise KafkaException(m.error())
                        records.append(self._record(m))
                        positions[m.partition()] = m.offset() + 1
                        if m.offset() + 1 >= high[(topic, m.partition())]:
                            remaining.discard(m.partition())
            finally:
                consumer.close()
        records.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
        return records, positions

    def produce(self, topic: str, key: str | None, value: str | None, headers: list[tuple[str, str]],
                partition: int | None) -> tuple[int, int]:
        """Produce one record and wait for it; its partition and offset."""
        with self._lock:
            if self._producer is None:
                self._producer = Producer(dict(self.settings))
            producer = self._producer
        delivered: list[Any] = []
        kwargs: dict[str, Any] = {"key": key, "value": value, "headers": headers,
                                  "on_delivery": lambda err, msg: delivered.append((err, msg))}
        if partition is not None:
            kwargs["partition"] = partition
        producer.produce(topic, **kwargs)
        producer.flush(self.timeout)
        if not delivered:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "the record was not acknowledged in time"))
        err, msg = delivered[0]
        _check(err)
        return msg.partition(), msg.offset()

    # --- consumer groups ---

    def groups(self) -> list[dict[str, Any]]:
        listed = self.admin.list_consumer_groups(request_timeout=self.timeout).result(self.timeout)
        ids = sorted(g.group_id for g in listed.valid)
        if not ids:
            return []
        described = self.admin.describe_consumer_groups(ids, request_timeout=self.timeout)
        rows = []
        for gid in ids:
            try:
                d = described[gid].result(self.timeout)
            except KafkaException:
                continue  # not allowed to describe it, or gone since it was listed
            lag = self.group_lag(gid)
            rows.append({"id": gid, "state": d.state.name, "type": getattr(d.type, "name", ""),
                         "members": len(d.members), "topics": sorted({r["topic"] for r in lag}),
                         "lag": sum(r["lag"] for r in lag)})
        return rows

    def committed(self, group: str) -> list[TopicPartition]:
        request = [ConsumerGroupTopicPartitions(group)]
        result = self.admin.list_consumer_group_offsets(request, request_timeout=self.timeout)
        return [tp for tp in result[group].result(self.timeout).topic_partitions if tp.offset >= 0]

    def group_lag(self, group: str) -> list[dict[str, Any]]:
        committed = self.committed(group)
        high = self.end_offsets([TopicPartition(tp.topic, tp.partition) for tp in committed], ck.OffsetSpec.latest())
        return [{"topic": tp.topic, "partition": tp.partition, "committed": tp.offset,
                 "end": high[(tp.topic, tp.partition)], "lag": max(high[(tp.topic, tp.partition)] - tp.offset, 0)}
                for tp in sorted(committed, key=lambda tp: (tp.topic, tp.partition))]

    def group(self, group: str) -> dict[str, Any]:
        d = self.admin.describe_consumer_groups([group], request_timeout=self.timeout)[group].result(self.timeout)
        members = [{"id": m.member_id, "client_id": m.client_id, "host": m.host,
                    "assignment": sorted(f"{tp.topic}-{tp.partition}" for tp in
                                         (m.assignment.topic_partitions if m.assignment else []))}
                   for m in d.members]
        return {"id": group, "state": d.state.name, "type": getattr(d.type, "name", ""),
                "coordinator": d.coordinator.id if d.coordinator else None, "members": members,
                "lag": self.group_lag(group)}

    def reset_plan(self, group: str, to: str, value: int | None) -> list[dict[str, Any]]:
        """Every committed partition of ``group`` with its offset now and after a reset ``to``
        earliest, latest, a timestamp (ms) or an offset (clamped to the log, as Kafka's tool does)."""
        lag = self.group_lag(group)
        tps = [TopicPartition(r["topic"], r["partition"]) for r in lag]
        low = self.end_offsets(tps, ck.OffsetSpec.earliest())
        high = {(r["topic"], r["partition"]): r["end"] for r in lag}
        if to == "timestamp":
            target = self.end_offsets(tps, ck.OffsetSpec.for_timestamp(value or 0))
            target = {k: (high[k] if v < 0 else v) for k, v in target.items()}
        elif to == "earliest":
            target = low
        elif to == "latest":
            target = high
        else:
            target = {k: min(max(value or 0, low[k]), high[k]) for k in high}
        return [{**r, "new": target[(r["topic"], r["partition"])],
                 "new_lag": high[(r["topic"], r["partition"])] - target[(r["topic"], r["partition"])]} for r in lag]

    def reset(self, group: str, plan: list[dict[str, Any]]) -> None:
        d = self.admin.describe_consumer_groups([group], request_timeout=self.timeout)[group].result(self.timeout)
        if d.state.name not in INACTIVE_STATES:
            raise KafkaException(KafkaError(
                KafkaError.NON_EMPTY_GROUP,
                f"Assignments can only be reset if the group '{group}' is inactive, "
                f"but the current state is {d.state.name.title()}."))
        tps = [TopicPartition(r["topic"], r["partition"], r["new"]) for r in plan]
        request = [ConsumerGroupTopicPartitions(group, tps)]
        result = self.admin.alter_consumer_group_offsets(request, request_timeout=self.timeout)[group]
        for tp in result.result(self.timeout).topic_partitions:
            _check(tp.error)

    def delete_group(self, group: str) -> None:
        self.admin.delete_consumer_groups([group], request_timeout=self.timeout)[group].result(self.timeout)

    # --- security ---

    def acls(self) -> list[Any]:
        f = ck.AclBindingFilter(ck.ResourceType.ANY, None, ck.ResourcePatternType.ANY, None, None,
                             ck.AclOperation.ANY, ck.AclPermissionType.ANY)
        return list(self.admin.describe_acls(f, request_timeout=self.timeout).result(self.timeout))

    def users(self) -> dict[str, Any]:
        # Kafka answers DescribeUserScramCredentials only with Describe on the cluster, and
        # confluent-kafka 2.16 aborts the process (munmap_chunk) on that refusal: a principal
        # (SASL) asks only when the cluster's authorized operations say it may.
        d = self.admin.describe_cluster(request_timeout=self.timeout,
                                        include_authorized_operations=True).result(self.timeout)
        ops = d.authorized_operations
        allowed = ops is not None and bool({op.name for op in ops} & {"DESCRIBE", "ALTER", "ALL"})
        if not allowed and (ops is not None or any(k.startswith("sasl.") for k in self.settings)):
            raise KafkaException(KafkaError(KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                                            "the broker does not say that this principal may describe the cluster"))
        future: Any = self.admin.describe_user_scram_credentials(request_timeout=self.timeout)  # all users: one future
        return dict(future.result(self.timeout))


__all__ = ["Cluster", "INACTIVE_STATES", "OFFSET_BEGINNING", "Record", "iso"]
