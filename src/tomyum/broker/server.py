"""The only socket code: one asyncio protocol object per connection.

The protocol itself — framing, ``socket.request.max.bytes``, request decoding, the KIP-511
ApiVersions fallback, responses in request order — is :class:`tomyum.protocol.connection.Connection`,
a state machine with no I/O. This module is its asyncio adapter: it reads with
:class:`asyncio.BufferedProtocol` straight into the state machine's reusable buffer, runs the
handlers, writes what the state machine says may go (file slices by ``sendfile``), pauses
reading while too many requests are pending, and tracks idleness. Responses released in one
turn of the event loop are written together in the next (one ``send`` for a client's pipelined
requests or a group commit's completions); a response behind a file slice waits for the
writer task, so the order holds.

Requests of one connection are handled one at a time, in order; a handler that must wait (a
long-poll fetch, an acks=-1 produce) returns a :class:`Deferred`, and the connection goes on
reading while responses still leave in request order (clients close the connection otherwise).

A request, once read, runs to its end whatever becomes of its connection: a client that goes
away (or is killed) mid-request loses only the response, never half of the request's effects
(a transaction left in PrepareCommit, say). So closing a connection cancels nothing that runs
a handler: the request being handled finishes, deferred responses finish and are dropped
(:func:`settle_requests` waits for them at shutdown), and only frames not yet started are
dropped, as if never sent.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import functools
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any, Protocol, cast

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import HANDLERS, NO_RESPONSE, Deferred, RawResponse
from tomyum.errors import ProtocolError
from tomyum.log_limit import RateLimitedLog
from tomyum.security.listener import ANONYMOUS
from tomyum.security.sasl import Exchange
from tomyum.security.tls import peer_distinguished_name
from tomyum.protocol.codec import strict_responses
from tomyum.protocol.connection import (
    Connection,
    LocalProtocolError,
    RemoteProtocolError,
    RequestReceived,
)

if TYPE_CHECKING:
    from tomyum.broker.services import BrokerServices

    class Broker(BrokerServices, Protocol):
        """What a connection needs of the broker: its services and the set of live connections."""

        connections: set[KafkaConnection]
        connection_quotas: ConnectionQuotas
    from tomyum.broker.connection_quotas import ConnectionQuotas
    from tomyum.broker.listeners import Listener

log = logging.getLogger(__name__)
_limited = RateLimitedLog(log)

MAX_PENDING_RESPONSES = 512
#: what a client may send before it has authenticated: ApiVersions, SaslHandshake, SaslAuthenticate
AUTHENTICATION_APIS = frozenset({18, 17, 36})
#: the SASL exchange, which no quota counts (Kafka's network layer handles it)
SASL_APIS = frozenset({17, 36})
#: where a fetched range cannot leave by sendfile (uvloop, TLS), ranges this big (or
#: ``fetch.zero.copy.min.bytes`` if larger) are read and written a piece at a time, not read whole:
#: glibc answers an allocation over 32 MiB (a ``max.partition.fetch.bytes`` of 50 MiB, say) with a
#: fresh mmap each time, whose page faults cost more than the copy (2.3 times the broker CPU)
PIECEWISE_MIN_BYTES = 32 << 20
#: the bytes such a range is read and written in at a time
PIECE_BYTES = 1 << 20

if os.environ.get("TOMYUM_TEST_STRICT_RESPONSES"):  # the test suite's: a handler's unknown key raises
    strict_responses(True)

#: requests of closed connections still running (a strong reference, so none is collected)
_LINGERING: set[asyncio.Future[Any]] = set()


class _Flag:
    """``asyncio.Event``'s ``set``/``clear``/``is_set``/``wait`` for the per-connection flags.

    An ``asyncio.Event`` allocates its waiters' deque (about 770 B) up front; a connection
    has five flags, mostly set or waited on by one task, so an idle connection paid ~4 KB for
    empty deques. This one makes its list of waiters only when a task waits."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._value = value
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if not self._value:
            self._value = True
            waiters, self._waiters = self._waiters, None
            for fut in waiters or ():
                if not fut.done():
                    fut.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> None:
        """Return once the flag is set (at once if it is; like ``Event.wait``, also when it
        was set and cleared again before this task ran)."""
        if self._value:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        try:
            await fut
        finally:
            if self._waiters is not None and fut in self._waiters:
                self._waiters.remove(fut)


@functools.cache
def supported_versions() -> dict[int, tuple[int, int]]:
    """Each registered API key's (min_version, max_version), for the protocol state machine."""
    return {h.api_key: (h.min_version, h.max_version) for h in HANDLERS.values()}


class KafkaConnection(asyncio.BufferedProtocol):
    def __init__(self, broker: Broker, listener: Listener, counted_ip: str | None = None) -> None:
        self.broker = broker
        self.listener = listener
        #: the address ConnectionQuotas counted this connection under (released when it ends)
        self.counted_ip = counted_ip
        #: KIP-219: set while the connection is muted for a quota's throttle time
        self._unmuted = _Flag(True)
        self._unmute: asyncio.TimerHandle | None = None
        self.protocol = Connection(max_request_bytes=broker.config["socket.request.max.bytes"],
                                   api_versions=supported_versions())
        zero_copy = broker.config["fetch.zero.copy.min.bytes"]
        #: file slices leave by sendfile: on plaintext listeners of a loop that has it (TLS must copy)
        self._sendfile = listener.security_protocol == "PLAINTEXT" and _has_sendfile()
        #: fetched ranges this big leave as file slices: by sendfile, or else read and written a
        #: piece at a time (``_send_in_pieces``), the large ones only
        self.zero_copy_min: int | None = (
            None if zero_copy < 0 else zero_copy if self._sendfile else max(zero_copy, PIECEWISE_MIN_BYTES))
        #: when the connection last received a whole request or sent a response
        self.last_active = time.monotonic()
        #: buffers the state machine released, in order, for the writer
        self._out: collections.deque[list[Any]] = collections.deque()
        self._deferred: set[asyncio.Future[Any]] = set()
        self._frames_ready = _Flag()
        self._out_ready = _Flag()
        self._can_write = _Flag(True)
        self._idle = _Flag(True)
        self._closing = False
        #: the writer task is sending a response (a later one must queue behind it)
        self._writing = False
        #: responses of this turn of the event loop, to be written at its end (see _write)
        self._batch: list[bytes] = []
        self._reading_paused = False
        #: shutting down: reading stays paused (a request read now could be stored and not answered)
        self._draining = False
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._tasks: list[asyncio.Task[None]] = []
        #: who the client is (a client certificate on SSL, a SASL exchange on SASL_*)
        self.principal = ANONYMOUS
        #: the SASL exchange under way, if any
        self.authentication: Exchange | None = None
        #: when the handler of the request being handled was called (time.perf_counter_ns)
        self.request_started_ns = 0
        self._authenticated = not listener.security.sasl
        #: monotonic time the SASL session ends (KIP-368), None: never
        self._session_end: float | None = None
        self._close_after: str | None = None

    # transport callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's are not subclasses of asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and not self.listener.security.sasl:
            der = ssl_object.getpeercert(binary_form=True)
            if der:
                self.principal = self.listener.security.mapper.principal(peer_distinguished_name(der))
                _limited.log(logging.INFO, ("principal", self.principal), "connection from %s on %s: principal %s",
                             self.peer, self.listener.name, self.principal)
        self.broker.connections.add(self)
        self.broker.stats.connections_accepted[self.listener.name] += 1
        self._tasks = [
            asyncio.create_task(self._process_loop(), name=f"process {self.peer}"),
            asyncio.create_task(self._write_loop(), name=f"write {self.peer}"),
        ]

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self.broker.connections.discard(self)
        if self.counted_ip is not None:
            self.broker.connection_quotas.release(self.counted_ip)
            self.counted_ip = None
        if self._unmute is not None:
            self._unmute.cancel()
        self._unmuted.set()
        # the request being handled runs on (the loop exits after it); unstarted frames go
        _release(self.protocol.abandon())
        self._frames_ready.set()
        process, write = self._tasks or (None, None)
        if process is not None and not process.done():
            _linger(process)
        if write is not None:
            write.cancel()
        for fut in self._deferred:  # they run on; their responses are dropped
            _linger(fut)
        self._deferred.clear()
        while self._out:
            _release(self._out.popleft())
        self._batch = []
        # nothing more will be written here: a shutdown's drain does not wait for this connection
        # (a request still running lingers, and settle_requests waits for it)
        self._idle.set()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.protocol.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        try:
            framed = self.protocol.buffer_updated(nbytes)
        except RemoteProtocolError as e:
            self.close(str(e))
            return
        if framed:
            self.last_active = time.monotonic()
            self._idle.clear()
            self._frames_ready.set()
            self._maybe_pause()

    def _maybe_pause(self) -> None:
        busy = (self.protocol.pending_requests + len(self._out) > MAX_PENDING_RESPONSES
                or not self._unmuted.is_set())
        if busy and not self._reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self._reading_paused = True
        elif (not busy and self._reading_paused and self.transport is not None and not self._closing
              and not self._draining):
            self.transport.resume_reading()
            self._reading_paused = False

    def close(self, why: str | None = None) -> None:
        if why:
            _limited.warning(("close", self.listener.name, why.split(":")[0][:60]),
                             "closing connection from %s on %s: %s", self.peer, self.listener.name, why)
        if not self._closing:
            self._write_batch()  # the responses already given leave first
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    # requests -----------------------------------------------------------------------------------

    async def _process_loop(self) -> None:
        while not self._closing:
            try:
                request = self.protocol.next_request()
            except RemoteProtocolError as e:
                self.close(str(e))
                return
            self._write(self.protocol.data_to_send())
            if not isinstance(request, RequestReceived):  # NEED_DATA (EOF reaches connection_lost)
                self._check_idle()
                self._frames_ready.clear()
                await self._frames_ready.wait()
                continue
            if not self._unmuted.is_set():  # muted (KIP-219): the next request waits its turn
                await self._unmuted.wait()
                if self._closing:
                    return
            try:
                await self._handle(request)
            except ProtocolError as e:
                self.close(str(e))
                return
            except Exception:
                log.exception("unexpected error handling a request from %s; closing the connection", self.peer)
                self.close()
                return
            self._maybe_pause()

    async def _handle(self, request: RequestReceived) -> None:
        header = request.header
        if header.api_key not in AUTHENTICATION_APIS and not self._may_proceed(header.api_key):
            return
        stats = self.broker.stats
        stats.requests[header.api_key] += 1
        ctx = RequestContext(self.broker, self.listener, header.api_key, header.api_version,
                             header.correlation_id, header.client_id, self.peer, self)
        handler = HANDLERS[header.api_key]
        started_ns = self.request_started_ns = time.perf_counter_ns()
        result = await handler.fn(ctx, request.body)
        throttle_ms = 0
        if header.api_key not in SASL_APIS and not handler.times_itself:
            # KIP-124: the handler's time counts against request_percentage
            throttle_ms = self.broker.quotas.throttle_request(self.principal, header.client_id,
                                                              time.perf_counter_ns() - started_ns, self.throttle)
        if not isinstance(result, Deferred):
            self._respond(request, _with_throttle(result, throttle_ms))
            stats.answered(header.api_key, (time.perf_counter_ns() - started_ns) / 1e9)
            return
        fut = asyncio.ensure_future(result.awaitable)
        if self._closing:
            _linger(fut)
        else:
            self._deferred.add(fut)
        fut.add_done_callback(functools.partial(self._completed, request, throttle_ms, started_ns))

    def _may_proceed(self, api_key: int) -> bool:
        """On a SASL listener, only authenticated clients with a live session get past the
        SASL APIs; the others are cut off (Kafka closes such a connection)."""
        if not self._authenticated:
            self.close(f"the client sent API {api_key} before authenticating (SASL)")
            return False
        if self._session_end is not None and time.monotonic() > self._session_end:
            self.close(f"its SASL session expired (connections.max.reauth.ms) and it did not re-authenticate; "
                       f"principal {self.principal}")
            return False
        return True

    # quotas (see services.ClientConnection.throttle) ------------------------------------------

    def throttle(self, throttle_ms: int) -> None:
        """KIP-219: stop reading and handling requests for ``throttle_ms`` (a longer throttle
        extends the mute, a shorter one leaves it); responses already due still leave."""
        if throttle_ms <= 0 or self._closing:
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + throttle_ms / 1000
        if self._unmute is not None:
            if self._unmute.when() >= until:
                return
            self._unmute.cancel()
        self._unmuted.clear()
        self._unmute = loop.call_at(until, self._end_mute)
        self._maybe_pause()

    def _end_mute(self) -> None:
        self._unmute = None
        self._unmuted.set()
        self._maybe_pause()

    # authentication (what the SASL handlers may call; see services.ClientConnection) ----------

    def begin_authentication(self, exchange: Exchange) -> None:
        self.authentication = exchange

    def authenticated(self, principal: str, session_lifetime_ms: int) -> None:
        self.principal, self.authentication, self._authenticated = principal, None, True
        self._session_end = time.monotonic() + session_lifetime_ms / 1000 if session_lifetime_ms else None
        _limited.log(logging.INFO, ("authenticated", principal, self.listener.name),
                     "connection from %s on %s authenticated: principal %s", self.peer, self.listener.name,
                     principal)

    def close_after_response(self, why: str) -> None:
        self._close_after = why

    def _completed(self, request: RequestReceived, throttle_ms: int, started_ns: int,
                   fut: asyncio.Future[Any]) -> None:
        """A deferred response is done (it may outlive its connection)."""
        self.broker.stats.answered(request.header.api_key, (time.perf_counter_ns() - started_ns) / 1e9)
        self._deferred.discard(fut)
        if fut.cancelled():  # only settle_requests cancels, at shutdown
            self.close()
            return
        if (exc := fut.exception()) is not None:
            if self._closing:
                log.error("a request of a closed connection failed", exc_info=exc)
            else:
                log.error("unexpected error completing a request from %s; closing", self.peer, exc_info=exc)
                self.close()
            return
        self._respond(request, _with_throttle(fut.result(), throttle_ms))

    def idle_for(self, now: float) -> float:
        """Seconds without a whole request or a response, 0 while a request is in flight."""
        return 0.0 if not self._idle.is_set() else now - self.last_active

    def _check_idle(self) -> None:
        if not self.protocol.pending_requests and not self._out and not self._batch:
            self._idle.set()

    def _respond(self, request: RequestReceived, result: Any) -> None:
        if self._closing:  # nothing more will be written
            _abandon(result)
            return
        self.last_active = time.monotonic()
        try:
            data = self.protocol.send_response(request, None if result is NO_RESPONSE else result)
        except LocalProtocolError:
            log.exception("cannot answer a request from %s; closing", self.peer)
            _abandon(result)
            self.close()
            return
        self._write(data)

    # responses -----------------------------------------------------------------------------------

    def _write(self, data: list[Any]) -> None:
        if not data:
            return
        if (not self._out and not self._writing and not self._closing and self._can_write.is_set()
                and self.transport is not None and all(type(b) is bytes for b in data)):
            # Nothing queued or being sent before it: it joins the other responses given in this
            # turn of the event loop, all written by one call in the next turn (one send for the
            # several requests a client pipelines or a group commit completes), without waking
            # the writer task.
            if not self._batch:
                asyncio.get_running_loop().call_soon(self._write_batch)
            self._batch += data
            return
        self._write_batch()  # what was batched goes first
        self._idle.clear()
        self._out.append(data)
        self._out_ready.set()

    def _write_batch(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        if self._closing or self.transport is None:
            return
        self.transport.writelines(batch)
        self._written()

    def _written(self) -> bool:
        """After a response is handed to the transport: close if asked to (True), else maybe
        read on."""
        if self._close_after is not None and not self._out:
            self.close(self._close_after)  # written first: the transport flushes, then closes
            return True
        self._maybe_pause()
        if not self._out:
            self._check_idle()
        return False

    async def _write_loop(self) -> None:
        while True:
            if not self._out:
                if self._closing:
                    return
                self._check_idle()
                self._out_ready.clear()
                await self._out_ready.wait()
                continue
            data = self._out.popleft()
            assert self.transport is not None
            self._writing = True
            try:
                if all(type(b) is bytes for b in data):
                    self.transport.writelines(data)
                elif not await self._send_with_files(data):
                    return
                if self._written():
                    return
                if not self._can_write.is_set():
                    await self._can_write.wait()
            finally:
                self._writing = False

    async def _send_with_files(self, data: list[Any]) -> bool:
        """Write ``data``, sending zero-copy file slices with ``loop.sendfile``; False if the
        connection went away meanwhile."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        pending: list[Any] = []
        try:
            for chunk in data:
                if not hasattr(chunk, "fileno"):
                    pending.append(chunk)
                    continue
                if pending:
                    self.transport.writelines(pending)
                    pending = []
                if self.transport.is_closing():
                    return False
                if self._sendfile:
                    await loop.sendfile(self.transport, chunk, chunk.position, len(chunk))
                elif not await self._send_in_pieces(chunk):
                    return False
                chunk.release()
            if pending:
                self.transport.writelines(pending)
            return True
        except (ConnectionError, RuntimeError, OSError) as e:
            self.close(f"sending fetched records failed: {e}")
            return False
        finally:
            _release(data)

    async def _send_in_pieces(self, records: Any) -> bool:
        """Write a file slice ``PIECE_BYTES`` at a time, each read once the transport has room
        for it; False if the connection went away meanwhile."""
        assert self.transport is not None
        records.seek(records.position)
        left = len(records)
        while left:
            piece = bytearray(min(PIECE_BYTES, left))
            if records.readinto(piece) < len(piece):
                raise OSError("the log file ends before the end of a fetched range")
            self.transport.write(piece)
            left -= len(piece)
            if not self._can_write.is_set():
                await self._can_write.wait()
            if self.transport.is_closing():
                return False
        return True

    async def drain(self, timeout_s: float) -> None:
        """Stop reading; finish the requests already read and send their responses."""
        self._draining = True  # _maybe_pause must not read on once a request completes
        if self.transport is not None and not self._reading_paused:
            self.transport.pause_reading()
            self._reading_paused = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            log.warning("connection from %s still busy at shutdown; closing it", self.peer)
        self.close()


def _has_sendfile() -> bool:
    """True if the running loop has ``loop.sendfile`` (the standard library's loops; uvloop has not)."""
    return isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop)


def _with_throttle(result: Any, throttle_ms: int) -> Any:
    """``result`` answering ``throttle_ms`` of throttle (KIP-124) if that is longer than its own
    (Kafka answers the longer of a request's bandwidth and request-time throttles). Produce and
    fetch responses are encoded by their handlers: they answer their bandwidth throttle, and the
    connection is muted for the longer one all the same; other hand-encoded responses (Metadata)
    say where their throttle field is."""
    if throttle_ms and isinstance(result, dict) and result.get("throttle_time", throttle_ms) < throttle_ms:
        result["throttle_time"] = throttle_ms
    elif throttle_ms and isinstance(result, RawResponse):
        return result.with_throttle(throttle_ms)
    return result


def _linger(fut: asyncio.Future[Any]) -> None:
    _LINGERING.add(fut)
    fut.add_done_callback(_LINGERING.discard)


def _abandon(result: Any) -> None:
    """Drop the response ``result`` of a closed connection."""
    if isinstance(result, RawResponse) and isinstance(result.body, list):
        _release(result.body)


async def settle_requests(timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for the requests of closed connections, then cancel the rest."""
    pending = set(_LINGERING)
    if not pending:
        return
    _, late = await asyncio.wait(pending, timeout=timeout_s)
    for fut in late:
        log.warning("a request of a closed connection still runs at shutdown; cancelling it")
        fut.cancel()


def _release(buffers: list[Any]) -> None:
    """Let go of the zero-copy slices among ``buffers`` (idempotent)."""
    for b in buffers:
        if hasattr(b, "fileno"):
            b.release()


#: accept() errors that mean "out of descriptors or memory": refuse, wait, carry on
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: how long accepting pauses when the process is out of descriptors
EXHAUSTED_PAUSE_S = 0.2


class Acceptor:
    """Accepts connections on one listening socket.

    When the process runs out of file descriptors, the broker keeps serving the connections
    it has: a spare descriptor held for the purpose is let go, the newcomer is accepted and
    closed at once (so it sees a refusal, not a hang), the spare is taken back, and accepting
    pauses for a moment; one log line per 10 s says so, never a traceback. Creating topics
    meanwhile fails with KAFKA_STORAGE_ERROR from the log engine, which needs descriptors too.
    """

    def __init__(self, broker: Broker, listener: Listener, sock: socket.socket) -> None:
        self.broker = broker
        self.listener = listener
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self._spare: int | None = _take_spare()
        self._paused: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self._closed = False
        #: a TLS handshake must finish within connections.max.idle.ms (at most a minute)
        idle_ms = broker.config["connections.max.idle.ms"]
        self._handshake_timeout = min(idle_ms / 1000, 60.0) if idle_ms > 0 else 60.0
        self.loop.add_reader(sock.fileno(), self._accept)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _accept(self) -> None:
        for _ in range(64):
            try:
                conn, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in _EXHAUSTED:
                    self._exhausted(e)
                    return
                _limited.warning(("accept", e.errno), "cannot accept a connection on %s: %s",
                                 self.listener.name, e)
                continue
            ip = str(address[0]) if isinstance(address, tuple) else "?"
            refused = self.broker.connection_quotas.accept(self.listener.name, ip)
            if refused is not None:
                conn.close()
                _limited.warning(("refused", self.listener.name, refused.split(" (")[0]),
                                 "refused a connection from %s on %s: %s", ip, self.listener.name, refused)
                continue
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            security = self.listener.security
            task = self.loop.create_task(self.loop.connect_accepted_socket(
                functools.partial(KafkaConnection, self.broker, self.listener, ip), conn, ssl=security.ssl_context,
                ssl_handshake_timeout=self._handshake_timeout if security.ssl_context else None))
            self._pending.add(task)
            task.add_done_callback(functools.partial(self._started, ip))

    def _started(self, ip: str, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if task.cancelled() or task.exception() is not None:  # no connection: it counts no more
            self.broker.connection_quotas.release(ip)
        if not task.cancelled() and task.exception() is not None:
            _limited.warning(("start", type(task.exception())), "cannot start a connection on %s: %s",
                             self.listener.name, task.exception())

    def _exhausted(self, e: OSError) -> None:
        refused = 0
        if self._spare is not None:  # let one newcomer in just to close it: a refusal, not a hang
            os.close(self._spare)
            try:
                conn, _ = self.sock.accept()
                conn.close()
                refused = 1
            except OSError:
                pass
            self._spare = _take_spare()
        _limited.error(("exhausted", self.listener.name),
                       "out of file descriptors (%s): refusing new connections on %s for now%s; "
                       "existing connections are served", e.strerror, self.listener.name,
                       " (one refused)" if refused else "")
        self.loop.remove_reader(self.sock.fileno())
        self._paused = self.loop.call_later(EXHAUSTED_PAUSE_S, self._resume)

    def _resume(self) -> None:
        self._paused = None
        if self._closed:
            return
        if self._spare is None:
            self._spare = _take_spare()
        self.loop.add_reader(self.sock.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting (connections already made are the broker's to drain)."""
        if self._closed:
            return
        self._closed = True
        if self._paused is not None:
            self._paused.cancel()
        else:
            self.loop.remove_reader(self.sock.fileno())
        for task in self._pending:
            task.cancel()
        self.sock.close()
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None


def _take_spare() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return None


def listen(host: str | None, port: int, backlog: int) -> socket.socket:
    """A non-blocking listening TCP socket (SO_REUSEADDR, as asyncio's servers set it)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
