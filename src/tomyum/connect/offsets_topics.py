"""The offsets topics of distributed workers: the worker's ``offset.storage.topic`` and the
connectors' own (KIP-618's connector key ``offsets.storage.topic``).

Each topic is read from the beginning into memory (:class:`KafkaOffsetBackingStore`, Kafka's).
A connector's own topic is created on first use if missing — compacted, with the worker's
``offset.storage.partitions`` and ``offset.storage.replication.factor``, as Kafka's worker creates
it — and read from then on; its connector's store is a
:class:`~tomyum.connect.offsets.ConnectorOffsetBackingStore` with the worker's topic as the
fallback. A connector whose key names the worker's own topic simply uses the worker's store.
Unlike Kafka, the topic is on the worker's cluster only (a connector's
``producer.override.bootstrap.servers`` does not move it). Thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from tomyum.connect.exactly_once import OFFSETS_TOPIC_CONFIG, OffsetsTarget
from tomyum.connect.kafka_log import KafkaBasedLog, create_compacted_topic
from tomyum.connect.offsets import ConnectorOffsetBackingStore, MemoryOffsetBackingStore, OffsetBackingStore


class KafkaOffsetBackingStore(MemoryOffsetBackingStore):
    """Source offsets in an offsets topic (Kafka's KafkaOffsetBackingStore): ``set`` returns
    once Kafka has the records; every worker's copy follows the topic."""

    def __init__(self) -> None:
        super().__init__()
        self.log: KafkaBasedLog | None = None

    def apply(self, key: bytes | None, value: bytes | None, _partition: int, _offset: int) -> None:
        if key is not None:
            super().set({key: value})

    def remember(self, values: Mapping[bytes, bytes | None]) -> None:
        """Offsets another producer wrote to the topic (an exactly-once task's transaction)."""
        super().set(values)

    def set(self, values: Mapping[bytes, bytes | None]) -> None:
        assert self.log is not None
        for k, v in values.items():
            self.log.send(k, v)
        self.log.flush()
        super().set(values)


class OffsetsTopics:
    """The worker's offsets store (``worker_store``, started by the herder) and the stores of
    the connectors' own offsets topics (started here, on first use; stopped by :meth:`stop`)."""

    def __init__(self, worker_store: KafkaOffsetBackingStore, client_config: Mapping[str, str], worker_topic: str,
                 partitions: int, replication_factor: int) -> None:
        self.worker_store = worker_store
        self.client_config = dict(client_config)
        self.worker_topic = worker_topic
        self.partitions = partitions
        self.replication_factor = replication_factor
        self._lock = threading.Lock()
        self._own: dict[str, KafkaOffsetBackingStore] = {}

    def own_topic(self, conn_props: Mapping[str, str]) -> str | None:
        topic = (conn_props.get(OFFSETS_TOPIC_CONFIG) or "").strip()
        return topic if topic and topic != self.worker_topic else None

    def _topic_store(self, topic: str) -> KafkaOffsetBackingStore:
        with self._lock:
            store = self._own.get(topic)
            if store is None:
                create_compacted_topic(self.client_config, topic, self.partitions, self.replication_factor)
                store = KafkaOffsetBackingStore()
                store.log = KafkaBasedLog(topic, self.client_config, store.apply,
                                          producer_config={"partitioner": "murmur2_random"})
                store.log.start()
                self._own[topic] = store
            return store

    def store(self, name: str, conn_props: Mapping[str, str]) -> OffsetBackingStore:
        """A connector's offsets (Kafka's ConnectorOffsetBackingStore): its own topic first, the
        worker's as the fallback; the worker's alone for a connector without one."""
        topic = self.own_topic(conn_props)
        if topic is None:
            return self.worker_store
        return ConnectorOffsetBackingStore(self._topic_store(topic), self.worker_store)

    def transaction_target(self, name: str, conn_props: Mapping[str, str]) -> OffsetsTarget | None:
        """Where an exactly-once task's offsets go inside its transaction (its connector's own
        topic; None: the worker's) and what follows the commit: this worker's copy of that topic
        learns them and the worker's topic gets them, as Kafka's store does after a primary write."""
        topic = self.own_topic(conn_props)
        if topic is None:
            return None
        own = self._topic_store(topic)
        store = ConnectorOffsetBackingStore(own, self.worker_store)

        def committed(values: Mapping[bytes, bytes | None]) -> None:
            own.remember(values)
            store.after_primary_write(values)
        return topic, committed

    def read_to_end(self) -> None:
        """Block until every offsets topic has been read to its end (Kafka's readToEnd)."""
        with self._lock:
            logs = [self.worker_store.log, *(s.log for s in self._own.values())]
        for kafka_log in logs:
            assert kafka_log is not None
            kafka_log.read_to_end()

    def stop(self) -> None:
        """Stop reading the connectors' own topics (the worker's is the herder's to stop)."""
        with self._lock:
            own, self._own = list(self._own.values()), {}
        for store in own:
            if store.log is not None:
                store.log.stop()
