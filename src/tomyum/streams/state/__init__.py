"""State stores: the engine seam (:class:`BytesStore`), its in-memory and SQLite engines,
and the typed key-value, versioned key-value, window and session stores the DSL uses."""

from tomyum.streams.state.base import BytesStore, ChangelogRecord, ChangelogSink, KeyValueStore
from tomyum.streams.state.memory import InMemoryBytesStore
from tomyum.streams.state.sqlite import SqliteBytesStore
from tomyum.streams.state.versioned import VersionedKeyValueStore, VersionedRecord
from tomyum.streams.state.window import SessionStore, ValueAndTimestamp, WindowStore

__all__ = [
    "BytesStore",
    "ChangelogRecord",
    "ChangelogSink",
    "InMemoryBytesStore",
    "KeyValueStore",
    "SessionStore",
    "SqliteBytesStore",
    "ValueAndTimestamp",
    "VersionedKeyValueStore",
    "VersionedRecord",
    "WindowStore",
]
