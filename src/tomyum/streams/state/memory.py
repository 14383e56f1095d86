"""The in-memory engine: a dict, sorted on demand for range scans. For tests and for
stores small enough to rebuild from their changelog on every start."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["InMemoryBytesStore"]


class InMemoryBytesStore:
    """A :class:`~tomyum.streams.state.base.BytesStore` held in a dict."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._data[key] = value

    def delete(self, key: bytes) -> None:
        self._data.pop(key, None)

    def range(self, lower: bytes | None, upper: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        # A snapshot, so that callers may write while iterating.
        keys = sorted(
            k for k in self._data if (lower is None or k >= lower) and (upper is None or k <= upper)
        )
        return iter([(k, self._data[k]) for k in keys])

    def approximate_num_entries(self) -> int:
        return len(self._data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
