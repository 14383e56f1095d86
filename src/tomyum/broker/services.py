"""What a handler, and a connection, may use of the broker: the ``BrokerServices`` protocol.

Handlers and connections are written against this protocol, never against the composition
root (``broker.py``, imported by nothing in the broker package), so that a handler can be
unit-tested with any object that has these parts, and so that the broker package has no
import circle (checked by import-linter in ``make test``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tomyum.broker.client_quotas import QuotaManagers
    from tomyum.broker.fetch_sessions import FetchSessionCache
    from tomyum.broker.listeners import Listener
    from tomyum.broker.stats import BrokerStats
    from tomyum.clock import Clock
    from tomyum.security.sasl import Exchange
    from tomyum.broker.waiters import FetchWaiters
    from tomyum.config import BrokerConfig
    from tomyum.coordinator.group import GroupCoordinator
    from tomyum.coordinator.group.consumer import ConsumerGroupRuntime
    from tomyum.coordinator.group.offsets import OffsetStore
    from tomyum.coordinator.group.service import GroupCoordinatorService
    from tomyum.coordinator.txn import TransactionCoordinator
    from tomyum.metadata import MetadataController
    from tomyum.security.authorizer import StandardAuthorizer
    from tomyum.storage.engine import LogStore


class ClientConnection(Protocol):
    """The connection a request came in on, as a handler sees it."""

    #: fetched ranges at least this big may leave by sendfile (None: never, e.g. on TLS)
    zero_copy_min: int | None
    #: who the client is: ``User:ANONYMOUS`` until a SASL exchange or a client certificate says
    principal: str
    #: the SASL exchange under way (after SaslHandshake), if any
    authentication: Exchange | None
    #: when the handler of the request being handled was called (``time.perf_counter_ns``)
    request_started_ns: int

    def close(self, why: str | None = None) -> None: ...

    def throttle(self, throttle_ms: int) -> None:
        """KIP-219: mute the connection for ``throttle_ms`` (a quota was exceeded): the response
        under way still leaves at once, then nothing more is read or handled until it ends."""
        ...

    def close_after_response(self, why: str) -> None:
        """Close once the response to the current request is written (a failed SASL login)."""
        ...

    def begin_authentication(self, exchange: Exchange) -> None: ...

    def authenticated(self, principal: str, session_lifetime_ms: int) -> None:
        """The exchange named ``principal``; past ``session_lifetime_ms`` (0: never) the client
        must authenticate again before any other request (KIP-368)."""
        ...


class BrokerServices(Protocol):
    config: BrokerConfig
    clock: Clock
    node_id: int
    cluster_id: str
    #: the log directory (Kafka's log.dirs, one of them): what DescribeLogDirs describes
    data_dir: Path
    #: where clients connect (Kafka's listeners, as advertised)
    listeners: list[Listener]
    metadata: MetadataController
    store: LogStore
    waiters: FetchWaiters
    #: incremental fetch sessions (KIP-227)
    fetch_sessions: FetchSessionCache
    groups: GroupCoordinator
    offsets: OffsetStore
    transactions: TransactionCoordinator
    consumer_groups: ConsumerGroupRuntime
    group_coordinator: GroupCoordinatorService
    #: Kafka's StandardAuthorizer over the ACLs in the metadata log; None without authorizer.class.name
    authorizer: StandardAuthorizer | None
    #: client quotas on produce and fetch bandwidth (broker/client_quotas.py)
    quotas: QuotaManagers
    #: what the broker has served: requests per API, bytes in and out per topic (broker/stats.py)
    stats: BrokerStats

    async def auto_create_topic(self, name: str) -> None:
        """Create ``name`` as ``auto.create.topics.enable`` does (throttled; see Broker)."""
        ...

    async def create_topic(self, name: str, partitions: int, configs: dict[str, str | None]) -> None: ...

    def check_listener_reconfiguration(self, dynamic: Mapping[str, Any] | None) -> None:
        """ConfigError unless every listener's stores, with ``dynamic`` as the per-broker dynamic
        config layer (None: the current one), load and fit (Kafka's SslFactory checks)."""
        ...

    def reconfigure_listeners(self) -> None:
        """Listeners take up the stores their settings name now (for new connections)."""
        ...
