"""UringFsync: the group commit's fsyncs through io_uring, with no thread of ours.

Through :class:`~tomyum.storage.local.sync_thread.SyncThread`, every group-commit round
hands its fsyncs to a Python thread and back. That thread needs the interpreter lock twice a
round (to start the job, and after the fdatasync to post the result), so it competes with the
event loop for it, and a round costs two thread wake-ups. At a few thousand small acks=-1
produces a second the loop waits on those handoffs (``docs/benchmarks.md``, "Sixth round").

Here the loop puts one ``IORING_OP_FSYNC`` (``IORING_FSYNC_DATASYNC``: what ``fdatasync(2)``
does, through the same kernel path) per file on the ring, and one plain ``IORING_OP_FSYNC``
(``fsync(2)``) per directory whose entries must be made durable (a partition's new or removed
segment files), and submitting costs a system call of a microsecond or two: the kernel runs
the fsyncs on its own workers, a round's files and directories side by side. Their completions
make an eventfd readable, which the loop watches like a socket; the future of the round is
resolved there, on the loop, once every file of the round is done. No Python code runs off
the loop.

Contract: :meth:`sync` may be called from the event loop the object was first used on;
the future's result is the seconds the round took, or the ``OSError`` of the first file or
directory that failed (a directory that cannot be opened fails the round before anything is
submitted). The directories are opened here and their descriptors closed once the round is
over, whatever its end. Files and directories are submitted at most :data:`ENTRIES` at a time
(so completions never overflow the ring); a round cancelled before all of them were submitted
submits no more of them, and what was submitted completes unobserved. A file descriptor must stay open until it
is submitted: the caller keeps it open until the future is done. :meth:`open` answers None
where io_uring cannot be used (the ``liburing`` binding missing, a kernel without io_uring, or
one where ``kernel.io_uring_disabled`` or a seccomp filter refuses it); the caller then keeps
to its thread.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import os
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: submission queue entries; also the most fsyncs in flight at once
ENTRIES = 256


class _Round:
    __slots__ = ("future", "started", "unfinished", "error", "owned")

    def __init__(self, future: asyncio.Future[float], files: int, owned: list[int]) -> None:
        self.future = future
        self.started = time.perf_counter()
        self.unfinished = files
        self.error = 0
        #: the directories' descriptors, opened for this round: closed when it is over
        self.owned = owned

    def close_owned(self) -> None:
        for fd in self.owned:
            os.close(fd)
        self.owned = []


class UringFsync:
    def __init__(self, uring: Any) -> None:
        """Use :meth:`open`."""
        self._L = uring
        self._ring = uring.Ring()
        uring.io_uring_queue_init(ENTRIES, self._ring)
        try:
            self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            try:
                uring.io_uring_register_eventfd(self._ring, self._efd)
            except BaseException:
                os.close(self._efd)
                raise
        except BaseException:
            uring.io_uring_queue_exit(self._ring)
            raise
        #: frees the ring if its owner forgets to close it (a test dropping a started store)
        self._free = weakref.finalize(self, _free, uring, self._ring, self._efd)
        self._cqe = uring.Cqe()
        self._rounds: dict[int, _Round] = {}
        self._next_key = 1
        #: (round key, fd, fsync flags) not yet on the ring
        self._waiting: collections.deque[tuple[int, int, int]] = collections.deque()
        self._in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @classmethod
    def open(cls) -> UringFsync | None:
        """A ring of our own, or None (logged once, with why) where io_uring cannot be used."""
        try:
            import liburing
        except ImportError as e:
            log.info("group commit fsyncs through a thread: no io_uring binding (%s)", e)
            return None
        try:
            return cls(liburing)
        except OSError as e:
            log.info("group commit fsyncs through a thread: io_uring is not available here (%s)", e.strerror or e)
            return None

    def sync(self, fds: Sequence[int], dirs: Sequence[Path] = ()) -> asyncio.Future[float]:
        """fdatasync every one of ``fds`` and fsync every one of ``dirs``; a future of the
        seconds it took (the first error, if any)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[float] = loop.create_future()
        if self._closed:
            fut.set_exception(OSError(9, "the fsync ring is closed"))
            return fut
        if not fds and not dirs:
            fut.set_result(0.0)
            return fut
        owned: list[int] = []
        try:
            for d in dirs:
                owned.append(os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        except OSError as e:
            for fd in owned:
                os.close(fd)
            fut.set_exception(e)
            return fut
        if self._loop is None:
            self._loop = loop
            loop.add_reader(self._efd, self._completed)
        key = self._next_key
        self._next_key += 1
        self._rounds[key] = _Round(fut, len(fds) + len(owned), owned)
        datasync = self._L.IORING_FSYNC_DATASYNC
        self._waiting.extend((key, fd, datasync) for fd in fds)
        self._waiting.extend((key, fd, 0) for fd in owned)
        self._submit()
        return fut

    def close(self) -> None:
        """Wait for what is in flight, then free the ring (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._efd)
        self._free()
        for r in self._rounds.values():
            r.close_owned()  # the ring is gone: nothing of it is in flight any more
            if not r.future.done():
                r.future.set_exception(OSError(9, "the fsync ring was closed"))
        self._rounds.clear()
        self._waiting.clear()

    def _submit(self) -> None:
        L, added = self._L, 0
        while self._waiting and self._in_flight < ENTRIES:
            key, fd, flags = self._waiting.popleft()
            r = self._rounds[key]
            if r.future.cancelled():  # nobody waits: the rest of the round stays off the ring
                self._finish_one(key, r, 0)
                continue
            sqe = L.io_uring_get_sqe(self._ring)
            L.io_uring_prep_fsync(sqe, fd, flags)
            L.io_uring_sqe_set_data64(sqe, key)
            self._in_flight += 1
            added += 1
        while added:
            try:
                L.io_uring_submit(self._ring)
                break
            except InterruptedError:  # a signal came first: nothing was lost, submit again
                continue
            except OSError as e:
                # what is on the queue goes with the next submit; the rounds waiting for it
                # learn of the failure now
                log.error("cannot submit fsyncs to io_uring: %s", e)
                for r in self._rounds.values():
                    if not r.future.done():
                        r.future.set_exception(e)
                break

    def _completed(self) -> None:
        """The eventfd is readable: settle every completion on the ring."""
        L = self._L
        try:
            os.eventfd_read(self._efd)
        except BlockingIOError:
            pass
        while True:
            try:
                L.io_uring_peek_cqe(self._ring, self._cqe)
            except BlockingIOError:
                break
            cqe = self._cqe[0]
            key = cqe.user_data
            try:
                res = cqe.res  # the binding raises a negative result as its OSError
                error = -res if res < 0 else 0
            except OSError as e:
                error = e.errno or errno.EIO
            finally:
                L.io_uring_cqe_seen(self._ring, cqe)
            self._in_flight -= 1
            r = self._rounds.get(key)
            if r is not None:
                self._finish_one(key, r, error)
        if self._waiting:
            self._submit()

    def _finish_one(self, key: int, r: _Round, error: int) -> None:
        if error and not r.error:
            r.error = error
        r.unfinished -= 1
        if r.unfinished:
            return
        del self._rounds[key]
        r.close_owned()
        if r.future.done():
            return
        if r.error:
            r.future.set_exception(OSError(r.error, os.strerror(r.error)))
        else:
            r.future.set_result(time.perf_counter() - r.started)


def _free(uring: Any, ring: Any, efd: int) -> None:
    uring.io_uring_queue_exit(ring)
    os.close(efd)
