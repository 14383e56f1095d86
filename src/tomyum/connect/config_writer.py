"""Writes to the config topic (Kafka's KafkaConfigBackingStore ``sendPrivileged``).

With ``exactly.once.source.support`` ``preparing`` or ``enabled`` the leader writes through a
transactional producer, ``transactional.id=connect-cluster-<group.id>`` (Kafka's
``DistributedConfig.transactionalProducerId``): claiming write privileges (its
``init_transactions``, when a worker becomes leader) fences out every earlier leader's producer,
so a zombie leader can no longer write connector or task configs or task count records. Each
write is one transaction; a write that fails gives the privileges up (the next write claims them
again). With ``disabled`` writes are plain idempotent sends, as before.

Thread-safety: callers hold the herder's lock or run on the herder thread; one write at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

from confluent_kafka import Producer

from tomyum.connect.connector import ConnectError
from tomyum.connect.kafka_log import KafkaBasedLog

log = logging.getLogger("tomyum.connect.config_writer")


class TransactionalProducer(Protocol):
    def init_transactions(self, timeout: float) -> None: ...

    def begin_transaction(self) -> None: ...

    def produce(self, topic: str, key: bytes | None = None, value: bytes | None = None, **kwargs: Any) -> None: ...

    def commit_transaction(self, timeout: float) -> None: ...

    def flush(self, timeout: float) -> int: ...


def transactional_producer_id(group_id: str) -> str:
    """Kafka's ``DistributedConfig.transactionalProducerId``."""
    return f"connect-cluster-{group_id}"


def _kafka_producer(config: dict[str, Any]) -> TransactionalProducer:
    return cast(TransactionalProducer, Producer(config))


class ConfigTopicWriter:
    """The config topic's writer: plain sends through ``config_log``, or (``transactional_id``
    set) one transaction per write by a fencable producer made with ``producer_factory``."""

    def __init__(self, config_log: KafkaBasedLog, client_config: Mapping[str, str], transactional_id: str | None,
                 producer_factory: Callable[[dict[str, Any]], TransactionalProducer] = _kafka_producer) -> None:
        self.config_log = config_log
        self.client_config = dict(client_config)
        self.transactional_id = transactional_id
        self.producer_factory = producer_factory
        self.producer: TransactionalProducer | None = None

    @property
    def fencable(self) -> bool:
        return self.transactional_id is not None

    def claim_write_privileges(self) -> None:
        """Make and initialise the fencable producer unless there is one (Kafka's
        claimWritePrivileges): every earlier producer with the same id is fenced out."""
        if self.transactional_id is None or self.producer is not None:
            return
        producer = self.producer_factory({**self.client_config, "transactional.id": self.transactional_id,
                                          "enable.idempotence": "true", "acks": "all"})
        try:
            producer.init_transactions(30)
        except Exception as e:
            producer.flush(0)
            raise ConnectError(f"Failed to create and initialize fencable producer for config topic: {e}") from e
        self.producer = producer

    def relinquish_write_privileges(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            producer.flush(0)

    def write(self, records: list[tuple[bytes, bytes | None]]) -> None:
        """Write ``records`` and wait until Kafka has them; raise ConnectError if it has not."""
        if self.transactional_id is None:
            for key, value in records:
                self.config_log.send(key, value)
            self.config_log.flush()
            return
        self.claim_write_privileges()
        producer = self.producer
        assert producer is not None
        try:
            producer.begin_transaction()
            for key, value in records:
                producer.produce(self.config_log.topic, key=key, value=value)
            producer.commit_transaction(30)
        except Exception as e:
            log.warning("Failed to perform fencable send to config topic: %s", e)
            self.relinquish_write_privileges()
            raise ConnectError(f"Failed to perform fencable send to config topic: {e}") from e
