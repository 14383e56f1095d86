"""The broker process: storage, listeners, connections, and a clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tomyum import __version__
from tomyum.broker.dispatch import load_handlers
from tomyum.broker.listeners import Listener, parse_listeners
from tomyum.broker.waiters import FetchWaiters
from tomyum.config import BrokerConfig, validate_topic_configs
from tomyum.coordinator.group import GroupCoordinator
from tomyum.coordinator.group.consumer import ConsumerGroupRuntime
from tomyum.coordinator.group.offsets import OffsetStore
from tomyum.coordinator.txn import TransactionCoordinator
from tomyum.errors import ConfigError, ErrorCode, KafkaError
from tomyum.storage.local import LocalLogStore

if TYPE_CHECKING:
    from tomyum.broker.server import KafkaConnection

log = logging.getLogger(__name__)

LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_TOPIC_NAME = 249


def check_topic_name(name: str | None) -> str:
    """Kafka's topic name rules; raises INVALID_TOPIC_EXCEPTION."""
    if not name or name in (".", "..") or len(name) > MAX_TOPIC_NAME or not LEGAL_TOPIC.match(name):
        raise KafkaError(f"invalid topic name {name!r}: use up to {MAX_TOPIC_NAME} of a-z A-Z 0-9 . _ -",
                         ErrorCode.invalid_topic_exception)
    return name


class Broker:
    def __init__(self, config: BrokerConfig, data_dir: Path) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.node_id = config.node_id
        self.listeners: list[Listener] = parse_listeners(config)
        self.store = LocalLogStore(self.data_dir, config)
        self.waiters = FetchWaiters()
        self.store.on_high_watermark(self.waiters.notify)
        self.groups = GroupCoordinator(
            initial_rebalance_delay_ms=config["group.initial.rebalance.delay.ms"],
            min_session_timeout_ms=config["group.min.session.timeout.ms"],
            max_session_timeout_ms=config["group.max.session.timeout.ms"])
        self.offsets = OffsetStore(self.store, config["offsets.topic.num.partitions"], self.store.clock)
        self.groups.persist = self.offsets.store_group
        self.transactions = TransactionCoordinator(self.store, self.offsets, config, self.store.clock)
        self.consumer_groups = ConsumerGroupRuntime(
            heartbeat_interval_ms=config["group.consumer.heartbeat.interval.ms"],
            session_timeout_ms=config["group.consumer.session.timeout.ms"], topics=self._subscribable_topics,
            persist=self.offsets.store_consumer_group_records)
        self.connections: set[KafkaConnection] = set()
        self._servers: list[asyncio.base_events.Server] = []
        self._offsets_expiry: asyncio.Task[None] | None = None
        self._idle_reaper: asyncio.Task[None] | None = None
        self.started_at = time.time()
        self._topic_locks: dict[str, asyncio.Lock] = {}
        load_handlers()

    @property
    def cluster_id(self) -> str:
        return self.store.cluster_id

    async def start(self, create_topics: Sequence[tuple[str, int, int]] = ()) -> None:
        from tomyum.broker.server import KafkaConnection

        await self.store.start()
        await self.offsets.start()
        self.groups.restore(self.offsets.group_metadata)
        self.consumer_groups.restore(self.offsets.consumer_group_records())
        self._offsets_expiry = asyncio.create_task(self._expire_offsets(), name="offsets-expiry")
        self._idle_reaper = asyncio.create_task(self._close_idle_connections(), name="idle-connections")
        self.groups.start()
        await self.transactions.start()
        for name, partitions, replication in create_topics:
            if name not in self.store.topics():
                if replication != 1:
                    raise ConfigError("--create-topic", f"{name}: replication factor {replication} "
                                      "needs more brokers than this one")
                await self.store.create_topic(check_topic_name(name), partitions, {})
        loop = asyncio.get_running_loop()
        for listener in self.listeners:
            server = await loop.create_server(
                lambda listener=listener: KafkaConnection(self, listener),
                host=listener.host or None, port=listener.port, reuse_address=True,
                backlog=self.config["socket.listen.backlog.size"],
            )
            port = server.sockets[0].getsockname()[1]
            if listener.port == 0:
                listener.port = port
            if listener.advertised_port == 0:
                listener.advertised_port = port
            self._servers.append(server)

    def ready_line(self) -> str:
        where = ", ".join(f"{x.name}://{x.host or '0.0.0.0'}:{x.port}" for x in self.listeners)
        adv = ", ".join(x.url() for x in self.listeners)
        return (f"tomyum {__version__} accepting connections on {where} "
                f"(advertised {adv}), data dir {self.data_dir.resolve()}, node {self.node_id}, "
                f"cluster {self.cluster_id}")

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests, flush and close every file."""
        from tomyum.broker.server import settle_requests

        for server in self._servers:
            server.close()
        timeout = self.config["shutdown.timeout.ms"] / 1000
        self.waiters.wake_all()
        await self.groups.stop()
        self.consumer_groups.stop()
        await self.transactions.stop()
        for task in (self._offsets_expiry, self._idle_reaper):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(c.drain(timeout) for c in list(self.connections)), return_exceptions=True)
        await settle_requests(timeout)  # requests of clients that went away run to their end
        for server in self._servers:
            await server.wait_closed()
        await self.store.close()

    def active_groups(self) -> set[str]:
        """Groups with members, classic or consumer (their offsets never expire)."""
        classic = {g.group_id for g in self.groups.groups.values() if g.members}
        return classic | {gid for gid, g in self.consumer_groups.state.groups.items() if g.members}

    async def _expire_offsets(self) -> None:
        retention_ms = self.config["offsets.retention.minutes"] * 60_000
        while True:
            await asyncio.sleep(self.config["offsets.retention.check.interval.ms"] / 1000)
            try:
                await self.offsets.expire(retention_ms, self.active_groups())
            except KafkaError as e:
                log.error("cannot expire committed offsets: %s", e)

    async def _close_idle_connections(self) -> None:
        """Close connections that sent no whole request and got no response for
        ``connections.max.idle.ms`` (a client trickling a partial frame counts as idle)."""
        max_idle_s = self.config["connections.max.idle.ms"] / 1000
        if max_idle_s <= 0:
            return
        while True:
            await asyncio.sleep(min(max_idle_s / 4, 30.0))
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.idle_for(now) > max_idle_s:
                    conn.close(f"idle for more than connections.max.idle.ms ({max_idle_s * 1000:.0f} ms)")

    def _subscribable_topics(self) -> dict[str, tuple[uuid.UUID, int]]:
        return {name: (meta.topic_id, meta.num_partitions) for name, meta in self.store.topics().items()
                if not meta.internal}

    def topic_lock(self, name: str) -> asyncio.Lock:
        return self._topic_locks.setdefault(name, asyncio.Lock())

    async def auto_create_topic(self, name: str) -> None:
        """Create ``name`` with the broker defaults, as ``auto.create.topics.enable`` does."""
        async with self.topic_lock(name):
            if name not in self.store.topics():
                await self.store.create_topic(name, self.config["num.partitions"], {})

    async def create_topic(self, name: str, partitions: int, configs: dict[str, str | None]) -> None:
        parsed = validate_topic_configs(configs)
        async with self.topic_lock(name):
            await self.store.create_topic(name, partitions, parsed)
