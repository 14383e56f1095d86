"""What every part of a running application reads and none changes: the topology, the
application id, the processing guarantee, where the state lives, and how its clients are
configured — with the naming rules that follow from them (internal topics, task directories,
client settings).

Owned by :class:`tomyum.streams.runtime.KafkaStreams`, which makes one at construction and hands
it to the task manager and the record collector. Immutable, so any thread may read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tomyum.client._connection import librdkafka_log
from tomyum.streams.processor import StreamsConfig
from tomyum.streams.topology import Topology

__all__ = ["CLIENT_KINDS", "RuntimeConfig"]

CLIENT_KINDS = ("consumer", "producer", "admin")
"""Kafka's client prefixes: ``consumer.x`` in ``client_config`` goes to the consumers only."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeConfig:
    topology: Topology
    config: StreamsConfig
    bootstrap_servers: str
    exactly_once: bool
    """``processing_guarantee="exactly_once_v2"``."""
    client_config: Mapping[str, Any]
    state_root: Path
    """``<state_dir>/tomyum-streams``; an application's files are under ``<application.id>/``."""
    num_standby_replicas: int = 0
    """Kafka's ``num.standby.replicas``: warm copies of each stateful task's stores on other
    instances (see :mod:`tomyum.streams._standby`)."""

    group_protocol: str = "classic"
    """How the application's consumer joins its group: ``classic`` (eager range rebalancing)
    or ``consumer`` (KIP-848 with the broker's range assignor: cooperative, kept tasks go on
    processing while the group rebalances)."""

    @property
    def cooperative(self) -> bool:
        return self.group_protocol == "consumer"

    @property
    def application_id(self) -> str:
        return self.config.application_id

    @property
    def isolation_level(self) -> str:
        """What the application's consumers read: only committed records under exactly-once."""
        return "read_committed" if self.exactly_once else "read_uncommitted"

    def client(self, kind: str, **settings: Any) -> dict[str, Any]:
        """The settings of a ``kind`` client (``consumer``, ``producer``, ``admin``): ours, then
        ``client_config``'s unprefixed keys and those with ``kind``'s prefix. librdkafka's own
        log goes to tomyum.client's logger (WARNING, each line once a minute), never raw to stderr."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers, "logger": librdkafka_log, **settings}
        for key, value in self.client_config.items():
            prefix, _, rest = key.partition(".")
            if prefix in CLIENT_KINDS and rest:
                if prefix == kind:
                    config[rest] = value
            else:
                config[key] = value
        return config

    def changelog_topic(self, store: str) -> str:
        return f"{self.application_id}-{self.topology.stores[store].changelog_topic}"

    def topic(self, name: str) -> str:
        """A topology's topic name as it is on the broker (internal topics get the prefix)."""
        return f"{self.application_id}-{name}" if name in self.topology.repartition_topics else name

    def app_dir(self) -> Path:
        return self.state_root / self.application_id

    def task_dir(self, task_id: str) -> Path:
        return self.app_dir() / task_id
