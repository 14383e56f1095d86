"""The classic consumer-group protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup) and
committed offsets stored in ``__consumer_offsets``."""

from tomyum.coordinator.group.coordinator import GroupCoordinator

__all__ = ["GroupCoordinator"]
