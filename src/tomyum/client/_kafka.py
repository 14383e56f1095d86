"""``Kafka``: the entry point, holding the brokers and client id its clients share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tomyum.client._admin import Admin
from tomyum.client._connection import ClientConfig
from tomyum.client._consumer import Consumer
from tomyum.client._producer import Producer


class Kafka:
    """``Kafka(client_id="app", brokers=["localhost:9092"])``, then ``.producer()``,
    ``.consumer(group_id=...)`` and ``.admin()``.

    ``config`` holds librdkafka settings (``CONFIGURATION.md``) given to every client; each
    factory also takes its own ``config``. Creating a client does not connect: ``await
    client.connect()`` does, and fails after ``connection_timeout_ms`` if no broker answers.
    """

    def __init__(self, *, brokers: Sequence[str], client_id: str = "tomyum",
                 connection_timeout_ms: int = 10_000, config: Mapping[str, Any] | None = None) -> None:
        if isinstance(brokers, str) or not brokers:
            raise ValueError("brokers is a list of host:port, e.g. ['localhost:9092']")
        self._config = ClientConfig(client_id=client_id, brokers=tuple(brokers),
                                    connection_timeout_ms=connection_timeout_ms, settings=dict(config or {}))

    def producer(self, *, config: Mapping[str, Any] | None = None) -> Producer:
        """A producer: acks from all in-sync replicas (-1), murmur2 partitioning of keys."""
        return Producer(self._config, config or {})

    def consumer(self, *, group_id: str, session_timeout_ms: int | None = None,
                 heartbeat_interval_ms: int | None = None, allow_auto_topic_creation: bool = True,
                 config: Mapping[str, Any] | None = None) -> Consumer:
        """A member of consumer group ``group_id`` (librdkafka's classic group protocol unless
        ``config`` says ``group.protocol=consumer``). As in KafkaJS, topics it subscribes to are
        created if missing, when the broker allows it (``auto.create.topics.enable``)."""
        settings: dict[str, Any] = {"allow.auto.create.topics": allow_auto_topic_creation}
        if session_timeout_ms is not None:
            settings["session.timeout.ms"] = session_timeout_ms
        if heartbeat_interval_ms is not None:
            settings["heartbeat.interval.ms"] = heartbeat_interval_ms
        return Consumer(self._config, group_id, {**settings, **(config or {})})

    def admin(self, *, config: Mapping[str, Any] | None = None) -> Admin:
        """An admin client for creating and listing topics."""
        return Admin(self._config, config or {})
