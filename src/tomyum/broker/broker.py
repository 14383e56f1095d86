"""The broker process: storage, listeners, connections, and a clean shutdown."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tomyum import __version__
from tomyum.broker.client_quotas import QuotaManagers
from tomyum.broker.connection_quotas import ConnectionQuotas
from tomyum.broker.handlers import registry
from tomyum.broker.listeners import Listener, parse_listeners
from tomyum.broker.log_publisher import LogPublisher
from tomyum.broker.exporter import StateCollector
from tomyum.broker.fetch_sessions import FetchSessionCache
from tomyum.broker.metrics import (BrokerCollector, MetricsListener, metrics_uses_tls, new_registry,
                                   parse_basic_auth_users, parse_metrics_listener)
from tomyum.broker.stats import BrokerStats, request_name
from tomyum.broker.waiters import FetchWaiters
from tomyum.clock import SYSTEM_CLOCK, Clock
from tomyum.config import BrokerConfig, validate_topic_configs
from tomyum.coordinator.group import GroupCoordinator
from tomyum.coordinator.group.consumer import ConsumerGroupRuntime
from tomyum.coordinator.group.offsets import OffsetStore
from tomyum.coordinator.group.service import GroupCoordinatorService
from tomyum.coordinator.timer import CoordinatorTimer
from tomyum.coordinator.txn import TransactionCoordinator
from tomyum.coordinator.group.offsets_log import OFFSETS_TOPIC
from tomyum.coordinator.txn.log import TXN_TOPIC
from tomyum.errors import ConfigError, ErrorCode, KafkaError
from tomyum.log_limit import RateLimitedLog, TokenBucket
from tomyum.security.authorizer import AclBinding, StandardAuthorizer, binding_of
from tomyum.security.listener import reconfigured
from tomyum.security.tls import server_context
from tomyum.metadata import DataDirLock, MetadataController, check_meta_properties, check_topic_name
from tomyum.storage.engine import LogStore
from tomyum.storage.local import LocalLogStore

if TYPE_CHECKING:
    from tomyum.broker.server import Acceptor, KafkaConnection

log = logging.getLogger(__name__)
_limited = RateLimitedLog(log)

#: makes the log engine for a data dir (the local one unless a test or a later mode says otherwise)
EngineFactory = Callable[[Path, BrokerConfig, Clock], LogStore]

__all__ = ["Broker", "check_topic_name"]


class Broker:
    def __init__(self, config: BrokerConfig, data_dir: Path, *, clock: Clock = SYSTEM_CLOCK,
                 engine: EngineFactory = LocalLogStore) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.node_id = config.node_id
        self.clock = clock
        self.authorizer: StandardAuthorizer | None = None
        self._acl_cache: tuple[int, list[AclBinding]] | None = None
        if config["authorizer.class.name"]:
            self.authorizer = StandardAuthorizer(
                self._acl_bindings, super_users=[u.strip() for u in (config["super.users"] or "").split(";") if u.strip()],
                allow_everyone_if_no_acl_found=config["allow.everyone.if.no.acl.found"])
        self.listeners: list[Listener] = parse_listeners(config)
        self.cluster_id = ""
        self._dir_lock = DataDirLock(self.data_dir)
        self.metadata = MetadataController(self.data_dir, config)
        self.store: LogStore = engine(self.data_dir, config, clock)
        self.publisher = LogPublisher(self.store, self.metadata)
        self.metadata.logs = self.publisher
        self._store_started = False
        self.waiters = FetchWaiters()
        self.fetch_sessions = FetchSessionCache(config["max.incremental.fetch.session.cache.slots"],
                                                lambda: int(clock.monotonic() * 1000))
        self.store.on_high_watermark(self.waiters.notify)
        #: the coordinators' timers (sessions, rebalances), on the injected clock
        self.coordinator_timer = CoordinatorTimer(clock)
        self.offsets = OffsetStore(self.store, config["offsets.topic.num.partitions"], clock, topics=self.metadata)
        self.groups = GroupCoordinator(
            initial_rebalance_delay_ms=config["group.initial.rebalance.delay.ms"],
            min_session_timeout_ms=config["group.min.session.timeout.ms"],
            max_session_timeout_ms=config["group.max.session.timeout.ms"], write=self.offsets.runtime.write,
            clock=clock, timer=self.coordinator_timer)
        self.offsets.classic = self.groups
        self.transactions = TransactionCoordinator(self.store, self.offsets, config, clock, topics=self.metadata,
                                                   timer=self.coordinator_timer)
        self.consumer_groups = ConsumerGroupRuntime(
            heartbeat_interval_ms=config["group.consumer.heartbeat.interval.ms"],
            session_timeout_ms=config["group.consumer.session.timeout.ms"], topics=self._subscribable_topics,
            timer=self.coordinator_timer, write=self.offsets.runtime.write)
        self.offsets.consumer = self.consumer_groups.state
        #: what the group handlers call: routing, commit checks and deletion for every group type
        self.group_coordinator = GroupCoordinatorService(
            classic=self.groups, consumer=self.consumer_groups, offsets=self.offsets,
            topics=self.metadata.topics, clock=clock)
        self.connections: set[KafkaConnection] = set()
        window = dict(samples=config["quota.window.num"], window_s=config["quota.window.size.seconds"])
        self.quotas = QuotaManagers(lambda: self.metadata.image, clock, **window)
        self.connection_quotas = ConnectionQuotas(config, lambda: self.metadata.image.quotas, clock, **window)
        self._servers: list[Acceptor] = []
        self.stats = BrokerStats()
        self.store.on_sync(self.stats.synced)
        self.metrics: MetricsListener | None = None
        self._idle_reaper: asyncio.Task[None] | None = None
        self.started_at = time.time()
        rate = config["auto.create.topics.partitions.per.second"]
        self._auto_create_bucket = TokenBucket(rate, 2 * rate, clock.monotonic)
        handlers = registry()  # every handler registered
        self._request_names = {key: request_name(h.name) for key, h in handlers.items()}

    async def start(self, create_topics: Sequence[tuple[str, int, int]] = ()) -> None:
        """Take the data dir (refused if another process holds it), recover the metadata log,
        then the partition logs it names, then the coordinators; then listen. On an error,
        call :meth:`abort_start`."""
        from tomyum.broker.server import Acceptor, listen

        self._dir_lock.acquire()
        self.cluster_id = check_meta_properties(self.data_dir, self.config["cluster.id"], self.node_id)
        await self.metadata.start()
        self.reconfigure_listeners()  # the stores set at run time before this start
        await self.store.start(self.publisher.all_specs())
        self._store_started = True
        await self.offsets.start()  # the loader: replays offsets, classic and consumer groups
        self.consumer_groups.restore()
        self.group_coordinator.schedule_offsets_expiry(self.config["offsets.retention.minutes"] * 60_000,
                                                       self.config["offsets.retention.check.interval.ms"])
        self._idle_reaper = asyncio.create_task(self._close_idle_connections(), name="idle-connections")
        await self.transactions.start()
        for name, partitions, replication in create_topics:
            if name not in self.metadata.topics():
                if replication != 1:
                    raise ConfigError("--create-topic", f"{name}: replication factor {replication} "
                                      "needs more brokers than this one")
                await self.metadata.create_topic(check_topic_name(name), partitions, {})
        for listener in self.listeners:
            acceptor = Acceptor(self, listener, listen(listener.host, listener.port,
                                                       self.config["socket.listen.backlog.size"]))
            self._servers.append(acceptor)
            if listener.port == 0:
                listener.port = acceptor.port
            if listener.advertised_port == 0:
                listener.advertised_port = acceptor.port
        if self.config["metrics.listener"]:
            await self._start_metrics(self.config["metrics.listener"])

    async def _start_metrics(self, where: str) -> None:
        """The metrics listener (``metrics.listener``; see broker/metrics.py)."""
        host, port = parse_metrics_listener(where)
        users = parse_basic_auth_users(self.config["metrics.basic.auth.users"])
        tls = None
        if metrics_uses_tls(where):
            try:
                tls = server_context(lambda key: self.config.for_listener("metrics", key))
            except ConfigError as e:  # said as the metrics listener's key
                raise ConfigError(f"listener.name.metrics.{e.key}", f"metrics.listener is https: "
                                  f"{str(e).removeprefix(e.key + ': ')}") from None
        counters = BrokerCollector(self.stats, lambda: self.connections, self._request_names, self.started_at,
                                   self.fetch_sessions)
        state = StateCollector(self, lambda: self.listeners[0].url().partition("://")[2])
        self.metrics = MetricsListener(new_registry(state, counters), users=users, tls=tls)
        await self.metrics.start(host, port)

    def ready_line(self) -> str:
        where = ", ".join(f"{x.name}://{x.host or '0.0.0.0'}:{x.port}" for x in self.listeners)
        adv = ", ".join(x.url() for x in self.listeners)
        metrics = f", metrics on {self.metrics.url()}" if self.metrics is not None else ""
        return (f"tomyum {__version__} accepting connections on {where} "
                f"(advertised {adv}), data dir {self.data_dir.resolve()}, node {self.node_id}, "
                f"cluster {self.cluster_id}{metrics}")

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests, flush and close every file."""
        from tomyum.broker.server import settle_requests

        for server in self._servers:
            server.close()
        if self.metrics is not None:
            await self.metrics.close()
        timeout = self.config["shutdown.timeout.ms"] / 1000
        self.waiters.close()
        await self.groups.stop()
        self.coordinator_timer.stop()
        await self.transactions.stop()
        if self._idle_reaper is not None:
            self._idle_reaper.cancel()
        await asyncio.gather(*(c.drain(timeout) for c in list(self.connections)), return_exceptions=True)
        await settle_requests(timeout)  # requests of clients that went away run to their end
        await self.store.close()
        await self.metadata.close()
        self._dir_lock.release()

    async def abort_start(self) -> None:
        """Undo a :meth:`start` that raised: close what it opened, release the data dir."""
        for server in self._servers:
            server.close()
        if self.metrics is not None:
            await self.metrics.close()
        if self._store_started:
            await self.store.close()
        self.metadata.log.close()
        self._dir_lock.release()

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
        return {name: (meta.topic_id, meta.num_partitions) for name, meta in self.metadata.topics().items()
                if not meta.internal}

    def _acl_bindings(self) -> list[AclBinding]:
        """The ACLs in the metadata image, as the authorizer reads them (cached per image change)."""
        image = self.metadata.image
        if self._acl_cache is None or self._acl_cache[0] != image.acls_version:
            self._acl_cache = (image.acls_version, [binding_of(r) for r in image.acls.values()])
        return self._acl_cache[1]

    async def auto_create_topic(self, name: str) -> None:
        """Create ``name`` as ``auto.create.topics.enable`` does: an internal topic as its
        coordinator makes it, any other with the broker defaults, at most
        ``auto.create.topics.partitions.per.second`` partitions a second (a burst of twice that),
        so that no client can flood the broker with topics; over it UNKNOWN_TOPIC_OR_PARTITION,
        which clients retry."""
        if name in self.metadata.topics():
            return
        if name == OFFSETS_TOPIC:
            return await self.offsets.ensure_topic()
        if name == TXN_TOPIC:
            return await self.transactions.ensure_topic()
        partitions = self.config["num.partitions"]
        if not self._auto_create_bucket.take(partitions):
            _limited.warning("auto-create", "auto-creation of topics throttled (more than %g partitions a second "
                             "asked for, auto.create.topics.partitions.per.second); %r not created",
                             self._auto_create_bucket.rate, name)
            raise KafkaError(f"auto-creation of {name!r} throttled", ErrorCode.unknown_topic_or_partition)
        try:
            await self.metadata.create_topic(name, partitions, {})
        except KafkaError as e:
            if e.code != ErrorCode.topic_already_exists:  # created meanwhile: as good
                raise

    def check_listener_reconfiguration(self, dynamic: Mapping[str, Any] | None) -> None:
        """Whether every listener's stores, with ``dynamic`` as the per-broker dynamic layer
        (None: the current one), load and fit (ConfigError if not); changes nothing."""
        for listener in self.listeners:
            reconfigured(listener.security, functools.partial(self.config.for_listener, listener.name,
                                                              dynamic=dynamic))

    def reconfigure_listeners(self) -> None:
        """Give each listener the stores its settings name now: new TLS connections use them,
        connections made before keep theirs. A store that no longer loads (at a restart, say)
        leaves the listener as it was, with a log line."""
        for listener in self.listeners:
            try:
                security = reconfigured(listener.security, functools.partial(self.config.for_listener, listener.name))
            except ConfigError as e:
                log.error("listener %s keeps its TLS stores: %s", listener.name, e)
                continue
            if security is not listener.security:
                listener.security = security
                log.info("listener %s: new TLS connections use the key store of %s (serial %x, valid until %s)",
                         listener.name, security.certificate.subject.rfc4514_string(),
                         security.certificate.serial_number, security.certificate.not_valid_after_utc)

    async def create_topic(self, name: str, partitions: int, configs: dict[str, str | None]) -> None:
        await self.metadata.create_topic(name, partitions, validate_topic_configs(configs))
