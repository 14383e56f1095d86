"""The default engine: Kafka's on-disk layout in a local data directory (see FORMAT.md)."""

from tomyum.storage.local.log_store import LocalLogStore

__all__ = ["LocalLogStore"]
