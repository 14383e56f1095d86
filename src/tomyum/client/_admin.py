"""``Admin``: the few topic operations the examples need, in KafkaJS's shape, over librdkafka's
AdminClient (each blocking call in a worker thread)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from tomyum.client._connection import ClientConfig, probe
from tomyum.client._errors import ClientError


class TopicSpec(TypedDict, total=False):
    """A topic to create: ``topic`` is required; the broker's defaults fill in the rest."""

    topic: str
    num_partitions: int
    replication_factor: int
    config: Mapping[str, str]


class Admin:
    """Creates and lists topics; create with :meth:`tomyum.client.Kafka.admin`."""

    def __init__(self, config: ClientConfig, settings: Mapping[str, Any]) -> None:
        self._config = config
        # Notice and above: destroying an admin handle soon after a request can log, at info
        # level, that an internal event went unserved, which is harmless.
        self._settings = config.librdkafka({"log_level": 5}, settings)
        self._admin: AdminClient | None = None

    async def connect(self) -> None:
        """Reach the cluster (raises :class:`ClientError`)."""
        if self._admin is None:
            admin = AdminClient(self._settings)
            await probe(admin.list_topics, self._config, "admin")
            self._admin = admin

    async def create_topics(self, topics: Sequence[TopicSpec]) -> bool:
        """Create ``topics``; ``True`` if all were created, ``False`` if any existed already
        (left as it is). Any other failure raises :class:`ClientError`."""
        admin = self._require()
        new = [NewTopic(t["topic"], t.get("num_partitions", -1), t.get("replication_factor", -1),
                        config=dict(t.get("config", {}))) for t in topics]
        futures = admin.create_topics(new, operation_timeout=self._config.connection_timeout_ms / 1000)
        created = True
        for name, future in futures.items():
            # exception() rather than result(): a raised error's traceback would keep this
            # admin handle (and its connections) alive until the next garbage collection.
            error = await asyncio.to_thread(future.exception)
            if isinstance(error, KafkaException) and error.args[0].code() == RdKafkaError.TOPIC_ALREADY_EXISTS:
                created = False
            elif isinstance(error, KafkaException):
                raise ClientError.wrap(error, f"create topic {name}")
            elif error is not None:
                raise error
        return created

    async def list_topics(self) -> list[str]:
        """The names of the cluster's topics, internal ones left out."""
        admin = self._require()
        metadata = await asyncio.to_thread(admin.list_topics, timeout=self._config.connection_timeout_ms / 1000)
        return sorted(t for t in metadata.topics if not t.startswith("__"))

    async def disconnect(self) -> None:
        self._admin = None

    def _require(self) -> AdminClient:
        if self._admin is None:
            raise RuntimeError("admin is not connected: await admin.connect() first")
        return self._admin
