"""UringFsync (storage/local/uring_fsync.py): the group commit's fsyncs through io_uring —
every file and directory of a round done before its future is, errors per round, the ring
never overfilled, and a plain fallback where io_uring cannot be used."""

from __future__ import annotations

import asyncio
import collections
import errno
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tomyum.storage.local import uring_fsync
from tomyum.storage.local.uring_fsync import ENTRIES, UringFsync


@pytest.fixture
def ring() -> Iterator[UringFsync]:
    r = UringFsync.open()
    assert r is not None, "io_uring is not usable on this machine: the group commit falls back to its thread"
    try:
        yield r
    finally:
        r.close()


def open_files(tmp_path: Path, count: int) -> list[int]:
    fds = []
    for i in range(count):
        fd = os.open(tmp_path / f"f{i}", os.O_CREAT | os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"record %d" % i)
        fds.append(fd)
    return fds


def close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


def test_rounds_of_more_files_than_the_ring_holds_all_complete_on_the_loop(ring: UringFsync, tmp_path: Path) -> None:
    fds = open_files(tmp_path, 2 * ENTRIES + 44)

    async def scenario() -> None:
        rounds = [ring.sync(fds[:ENTRIES + 1]), ring.sync(fds[ENTRIES + 1:]), ring.sync(fds[:3])]
        assert ring._in_flight == ENTRIES  # the rest wait for room, not overfilling the ring
        seconds = await asyncio.gather(*rounds)
        assert all(isinstance(s, float) and s >= 0 for s in seconds)
        assert (ring._in_flight, ring._waiting, ring._rounds) == (0, collections.deque(), {})
        assert await ring.sync([]) == 0.0

    try:
        run(scenario())
    finally:
        close_all(fds)


def test_a_file_that_cannot_be_synced_fails_its_round_only(ring: UringFsync, tmp_path: Path) -> None:
    fds = open_files(tmp_path, 3)
    pipe_r, pipe_w = os.pipe()  # fsync on a pipe: EINVAL, from the kernel

    async def scenario() -> None:
        bad = ring.sync([fds[0], pipe_w, fds[1]])
        good = ring.sync([fds[2]])
        with pytest.raises(OSError) as e:
            await bad
        assert e.value.errno == errno.EINVAL
        assert await good >= 0
        assert await ring.sync(fds) >= 0  # the ring goes on
        assert ring._rounds == {}

    try:
        run(scenario())
    finally:
        close_all(fds + [pipe_r, pipe_w])


def test_a_cancelled_round_submits_no_more_of_its_files(ring: UringFsync, tmp_path: Path) -> None:
    fds = open_files(tmp_path, ENTRIES + 50)
    submitted: list[int] = []
    real = ring._L.io_uring_prep_fsync

    def prep(sqe: object, fd: int, flags: int) -> None:
        submitted.append(fd)
        real(sqe, fd, flags)

    async def scenario() -> None:
        ring._L = _Wrapped(ring._L, io_uring_prep_fsync=prep)
        cancelled = ring.sync(fds)
        cancelled.cancel()
        assert await ring.sync(fds[:2]) >= 0
        assert submitted == fds[:ENTRIES] + fds[:2]  # the cancelled round's last 50 never went
        while ring._in_flight:  # what it had submitted completes unobserved (bounded by run's timeout)
            await asyncio.sleep(0.001)
        assert ring._rounds == {}

    try:
        run(scenario())
    finally:
        close_all(fds)


def open_under(path: Path) -> int:
    """How many of this process's descriptors are open on ``path`` or below it (the listing's
    own descriptor, on /proc, never counts)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, closed by now
            continue
        count += target == str(path) or target.startswith(f"{path}/")
    return count


def test_directories_are_fsynced_in_full_beside_the_files_and_their_descriptors_closed(
        ring: UringFsync, tmp_path: Path) -> None:
    fds = open_files(tmp_path, 3)
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
    prepared: list[tuple[str, int]] = []
    real = ring._L.io_uring_prep_fsync

    def prep(sqe: object, fd: int, flags: int) -> None:
        prepared.append((os.readlink(f"/proc/self/fd/{fd}"), flags))
        real(sqe, fd, flags)

    async def scenario() -> None:
        ring._L = _Wrapped(ring._L, io_uring_prep_fsync=prep)
        before = open_under(tmp_path)  # the three files
        assert await ring.sync(fds, dirs) >= 0
        datasync = ring._L.IORING_FSYNC_DATASYNC
        assert prepared == [(str(tmp_path / f"f{i}"), datasync) for i in range(3)] + [(str(d), 0) for d in dirs]
        assert open_under(tmp_path) == before  # the directories' descriptors are closed again
        prepared.clear()
        assert await ring.sync([], dirs[:1]) >= 0  # a round of directories only
        assert prepared == [(str(dirs[0]), 0)]
        with pytest.raises(FileNotFoundError):  # cannot be opened: the round fails, nothing goes
            await ring.sync(fds, [dirs[0], tmp_path / "missing"])
        assert prepared == [(str(dirs[0]), 0)]
        assert open_under(tmp_path) == before and ring._rounds == {}

    try:
        run(scenario())
    finally:
        close_all(fds)


def test_a_cancelled_round_closes_its_directories_once_what_it_submitted_completes(
        ring: UringFsync, tmp_path: Path) -> None:
    fds = open_files(tmp_path, ENTRIES)
    dirs = [tmp_path / f"d{i}" for i in range(20)]
    for d in dirs:
        d.mkdir()

    async def scenario() -> None:
        cancelled = ring.sync(fds, dirs)  # the ring is full of files: the directories wait
        assert [open_under(d) for d in dirs] == [1] * len(dirs)
        cancelled.cancel()
        assert await ring.sync(fds[:1]) >= 0
        while ring._rounds:  # bounded by run's timeout
            await asyncio.sleep(0.001)
        assert [open_under(d) for d in dirs] == [0] * len(dirs)

    try:
        run(scenario())
    finally:
        close_all(fds)


class _Wrapped:
    """The binding with some functions replaced."""

    def __init__(self, inner: object, **replaced: object) -> None:
        self._inner, self._replaced = inner, replaced

    def __getattr__(self, name: str) -> object:
        return self._replaced[name] if name in self._replaced else getattr(self._inner, name)


def test_close_fails_what_waits_and_refuses_more(tmp_path: Path) -> None:
    ring = UringFsync.open()
    assert ring is not None
    fds = open_files(tmp_path, ENTRIES + 10)

    async def scenario() -> None:
        d = tmp_path / "d"
        d.mkdir()
        waiting = ring.sync(fds, [d])
        assert open_under(d) == 1
        ring.close()
        ring.close()
        with pytest.raises(OSError, match="closed"):
            await waiting
        assert open_under(d) == 0  # the directory's descriptor is closed with the ring
        with pytest.raises(OSError, match="closed"):
            await ring.sync(fds[:1])

    try:
        run(scenario())
    finally:
        close_all(fds)


def test_without_the_binding_open_answers_none(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "liburing", None)  # import liburing raises ImportError
    with caplog.at_level("INFO", logger=uring_fsync.__name__):
        assert UringFsync.open() is None
    assert "through a thread" in caplog.text


def test_where_the_kernel_refuses_io_uring_open_answers_none(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    import liburing

    def refused(entries: int, ring: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")  # kernel.io_uring_disabled=2

    monkeypatch.setattr(liburing, "io_uring_queue_init", refused)
    with caplog.at_level("INFO", logger=uring_fsync.__name__):
        assert UringFsync.open() is None
    assert "Operation not permitted" in caplog.text
