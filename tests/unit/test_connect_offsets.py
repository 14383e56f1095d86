"""A connector's own offsets store (KIP-618's ``offsets.storage.topic``; Kafka's
ConnectorOffsetBackingStore): its offsets first, the worker's as the fallback; writes to it, then
copies to the worker's; tombstones to the worker's first, so that a removed offset stays removed."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from tomyum.connect.offsets import ConnectorOffsetBackingStore, ConnectorOffsets, MemoryOffsetBackingStore, offset_key

pytestmark = pytest.mark.timeout(10)

A, B = offset_key("c", {"p": "a"}), offset_key("c", {"p": "b"})


def test_reads_prefer_the_connectors_store_and_fall_back_to_the_workers() -> None:
    own, worker = MemoryOffsetBackingStore(), MemoryOffsetBackingStore()
    worker.set({A: b'{"n":1}', B: b'{"n":2}'})
    own.set({A: b'{"n":10}'})
    offsets = ConnectorOffsets(ConnectorOffsetBackingStore(own, worker), "c")
    assert offsets.offset({"p": "a"}) == {"n": 10} and offsets.offset({"p": "b"}) == {"n": 2}
    assert sorted(o["n"] for _, o in offsets.all()) == [2, 10]


def test_writes_go_to_the_connectors_store_then_to_the_workers() -> None:
    own, worker = MemoryOffsetBackingStore(), MemoryOffsetBackingStore()
    ConnectorOffsetBackingStore(own, worker).set({A: b'{"n":3}'})
    assert own.get_all() == {A: b'{"n":3}'} and worker.get_all() == {A: b'{"n":3}'}


class _Recording(MemoryOffsetBackingStore):
    def __init__(self, name: str, journal: list[tuple[str, dict[bytes, bytes | None]]]) -> None:
        super().__init__()
        self.name, self.journal = name, journal

    def set(self, values: Mapping[bytes, bytes | None]) -> None:
        self.journal.append((self.name, dict(values)))
        super().set(values)


def test_tombstones_reach_the_workers_store_first_and_stay_removed() -> None:
    journal: list[tuple[str, dict[bytes, bytes | None]]] = []
    own, worker = _Recording("own", journal), _Recording("worker", journal)
    store = ConnectorOffsetBackingStore(own, worker)
    store.set({A: b'{"n":1}', B: b'{"n":2}'})
    journal.clear()
    store.set({A: None, B: b'{"n":5}'})
    assert journal == [("worker", {A: None}), ("own", {A: None, B: b'{"n":5}'}), ("worker", {B: b'{"n":5}'})]
    assert store.get_all() == {B: b'{"n":5}'}


class _Failing(MemoryOffsetBackingStore):
    def set(self, values: Mapping[bytes, bytes | None]) -> None:
        raise OSError("the worker's topic is unreachable")


def test_a_failed_copy_to_the_workers_store_does_not_fail_the_write(caplog: pytest.LogCaptureFixture) -> None:
    own = MemoryOffsetBackingStore()
    ConnectorOffsetBackingStore(own, _Failing()).set({A: b'{"n":1}'})
    assert own.get_all() == {A: b'{"n":1}'}
    assert "Failed to write offsets to secondary backing store" in caplog.text
