"""The in-memory engine: the whole :class:`~tomyum.storage.engine.LogStore` contract, nothing on
disk, nothing kept across a restart; the reference engine for fast tests (see log_store.py)."""

from tomyum.storage.memory.log_store import MemoryLogStore

__all__ = ["MemoryLogStore"]
