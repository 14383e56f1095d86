"""Consumer groups of the KIP-848 protocol (ConsumerGroupHeartbeat): server-side assignment,
incremental reconciliation, member epochs. A pure state machine (coordinator.py) of records
(records.py) replayed into group state (group.py), and a runtime with the timers."""

from tomyum.coordinator.group.consumer.coordinator import ConsumerGroups, HeartbeatRequest, Result
from tomyum.coordinator.group.consumer.runtime import ConsumerGroupRuntime

__all__ = ["ConsumerGroupRuntime", "ConsumerGroups", "HeartbeatRequest", "Result"]
