"""One Kafka connection, broker side, as a state machine with no I/O (h11's shape).

Bytes in, requests out; responses in, bytes out. It owns framing, the request size limit,
the KIP-511 ApiVersions fallback and the rule that responses leave in request order; it
imports no asyncio, socket, os or time, so all of it is tested with bytes alone.
``broker/server.py`` is its asyncio adapter.

Contracts:

- **In.** :meth:`Connection.receive_data` takes bytes as they came (``b""``: the peer
  closed); the asyncio adapter instead reads straight into the connection's buffer with
  :meth:`~Connection.get_buffer` / :meth:`~Connection.buffer_updated` (``BufferedProtocol``'s
  calls), which copies each frame once. A frame whose length is negative or exceeds
  ``socket.request.max.bytes`` raises :class:`RemoteProtocolError` as soon as its 4-byte length
  arrives, before its body is buffered.
- **Requests.** :meth:`~Connection.next_request` returns a :class:`RequestReceived` (header and
  decoded kio request entity), :data:`NEED_DATA`, or :class:`ConnectionClosed` once the peer
  closed on a frame boundary; it raises :class:`RemoteProtocolError` for a malformed header or
  body, an unknown API key, a version the broker does not speak, or a peer that closed
  mid-frame. The connection then closes: Kafka answers none of these, except one.
- **KIP-511.** An ApiVersions request of a version newer than the broker's is answered by the
  connection itself, in its turn: ApiVersions v0 with UNSUPPORTED_VERSION and the supported
  ranges, which the client uses to retry with a version both speak. Those bytes come out of
  :meth:`~Connection.data_to_send` (and of the next :meth:`~Connection.send_response`).
- **Out, in order.** :meth:`~Connection.send_response` takes the response to one request
  (a dict for :func:`~tomyum.protocol.codec.build_response`, a kio entity, a
  :class:`RawResponse`, or ``None`` for a request without one — acks=0) in any order, and
  returns the buffers that may now be written: every response whose predecessors are all
  answered, in request order (clients close a connection whose responses come out of order).
  Buffers are ``bytes`` or whatever a :class:`RawResponse` carried (zero-copy file slices),
  passed through untouched. Responses are keyed by the request's ``sequence``, not its
  correlation id, which is the client's and need not be unique.
- :attr:`~Connection.pending_requests` counts the requests read (framed) and not yet answered,
  for backpressure: the adapter stops reading while too many are pending.
- A response that cannot be encoded is this side's fault: :class:`LocalProtocolError`.

Decoding happens in :meth:`~Connection.next_request`, when the adapter is ready to handle the
request, as before this module existed (``buffer_updated`` only cuts frames): the same work at
the same moment, so the hot path (Produce, Fetch) costs what it did.
"""

from __future__ import annotations

import collections
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from tomyum.errors import ErrorCode, ProtocolError, TomyumError, UnsupportedVersion
from tomyum.protocol.codec import (
    API_VERSIONS_KEY,
    RequestHeader,
    build_response,
    decode_request,
    encode_response,
    read_header_prefix,
    response_header_flexible,
)

__all__ = [
    "NEED_DATA",
    "Connection",
    "ConnectionClosed",
    "LocalProtocolError",
    "RawResponse",
    "RemoteProtocolError",
    "RequestReceived",
]

_I32 = struct.Struct(">i")
#: what the buffer is sized for beyond a frame still arriving, and what it shrinks back to
READ_CHUNK = 256 * 1024
#: a new connection's read buffer; it grows with what the client sends (a frame still
#: arriving sizes it for the whole frame), so an idle connection keeps only this much
INITIAL_BUFFER = 1024
MIN_FREE = 1024


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol; the connection closes (the message says how)."""


class LocalProtocolError(TomyumError):
    """This side broke the protocol: a response that cannot be encoded, or a request answered twice."""


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


#: :meth:`Connection.next_request`: no whole request yet
NEED_DATA: Final = _NeedData()


class RequestReceived(NamedTuple):  # a NamedTuple: made per request, it costs a third of a frozen dataclass
    header: RequestHeader
    #: the kio request entity
    body: Any
    #: size of the frame in bytes, without the 4-byte length prefix
    size: int
    #: this request's place among the connection's requests (0, 1, ...): what
    #: :meth:`Connection.send_response` keys on
    sequence: int


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection between requests."""


class RawResponse(NamedTuple):  # a NamedTuple: made per request, it costs a third of a frozen dataclass
    """A response body already encoded (hot-path handlers encode by hand), one buffer or a
    list (which may hold zero-copy file slices: anything with ``len``). ``throttle_at``: where
    a ``bytes`` body holds its int32 ``throttle_time_ms``, for the server to answer a longer
    request-quota throttle there (None: the handler answered its own)."""

    body: bytes | list[Any]
    throttle_at: int | None = None

    def with_throttle(self, throttle_ms: int) -> RawResponse:
        """This response answering ``throttle_ms`` if that is longer than what it says."""
        at, body = self.throttle_at, self.body
        if at is None or not isinstance(body, bytes) or _I32.unpack_from(body, at)[0] >= throttle_ms:
            return self
        return RawResponse(body[:at] + _I32.pack(throttle_ms) + body[at + 4:], at)


class Connection:
    """The protocol state of one connection (see the module docstring). Not thread-safe."""

    def __init__(self, *, max_request_bytes: int, api_versions: Mapping[int, tuple[int, int]]) -> None:
        """``api_versions``: each supported API key's (min_version, max_version)."""
        self.max_request_bytes = max_request_bytes
        self._versions = api_versions
        self._buf = bytearray(INITIAL_BUFFER)
        self._len = 0
        #: the bytes the frame being received needs (0: no frame is partly received)
        self._need = 0
        self._frames: collections.deque[bytes] = collections.deque()
        self._peer_closed = False
        self._error: RemoteProtocolError | None = None
        self._next_sequence = 0
        #: the sequence of the next response to leave
        self._next_out = 0
        #: responses waiting for an earlier one (None: the request has no response)
        self._answered: dict[int, list[Any] | None] = {}
        self._ready: list[Any] = []

    @property
    def pending_requests(self) -> int:
        """Requests framed and not yet answered (read, handled or waiting for an earlier one)."""
        return len(self._frames) + self._next_sequence - self._next_out

    # in ----------------------------------------------------------------------------------------

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Where the next bytes go (``BufferedProtocol.get_buffer``); then :meth:`buffer_updated`."""
        # The transport may still hold the previous view while we parse, so the buffer is
        # never resized in place: a bigger one is allocated and the unread bytes copied. It at
        # most doubles per read, so a client announcing a large frame costs only what it sends.
        want = max(self._need, self._len + MIN_FREE)
        if len(self._buf) < want:
            bigger = bytearray(min(want, max(2 * len(self._buf), self._len + MIN_FREE)))
            bigger[: self._len] = self._buf[: self._len]
            self._buf = bigger
        return memoryview(self._buf)[self._len :]

    def buffer_updated(self, nbytes: int) -> int:
        """``nbytes`` were written into the last :meth:`get_buffer`; returns how many whole
        frames they completed. Raises :class:`RemoteProtocolError` for an oversized frame."""
        if self._error is not None:
            raise self._error
        self._len += nbytes
        buf, pos, end = self._buf, 0, self._len
        view = memoryview(buf)  # slicing a bytearray copies twice; a view's slice copies once
        self._need = 0
        framed = 0
        while end - pos >= 4:
            (size,) = _I32.unpack_from(buf, pos)
            if size < 0 or size > self.max_request_bytes:
                view.release()
                self._error = RemoteProtocolError(
                    f"request of {size} bytes exceeds socket.request.max.bytes ({self.max_request_bytes})")
                raise self._error
            if end - pos - 4 < size:
                self._need = 4 + size + READ_CHUNK // 4
                break
            self._frames.append(bytes(view[pos + 4 : pos + 4 + size]))
            framed += 1
            pos += 4 + size
        view.release()
        if pos:
            rest = end - pos
            if len(buf) > 4 * READ_CHUNK and self._need <= READ_CHUNK:
                small = bytearray(READ_CHUNK)
                small[:rest] = buf[pos:end]
                self._buf = small
            else:
                buf[:rest] = buf[pos:end]
            self._len = rest
        return framed

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Bytes from the peer; ``b""`` means the peer closed the connection."""
        if not data:
            self._peer_closed = True
            return
        view = memoryview(data)
        while view:
            with self.get_buffer(len(view)) as into:
                n = min(len(into), len(view))
                into[:n] = view[:n]
            view = view[n:]
            self.buffer_updated(n)

    # requests ------------------------------------------------------------------------------------

    def next_request(self) -> RequestReceived | _NeedData | ConnectionClosed:
        """The next request (see the module docstring for what it raises)."""
        if self._error is not None:
            raise self._error
        try:
            return self._next_request()
        except RemoteProtocolError as e:
            self._error = e
            raise

    def _next_request(self) -> RequestReceived | _NeedData | ConnectionClosed:
        while self._frames:
            frame = self._frames.popleft()
            try:
                header = read_header_prefix(frame)
            except ProtocolError as e:
                raise RemoteProtocolError(str(e)) from None
            versions = self._versions.get(header.api_key)
            if header.api_key == API_VERSIONS_KEY and versions and header.api_version > versions[1]:
                self._answer_unsupported_api_versions(header)
                continue
            if versions is None:
                raise RemoteProtocolError(f"unknown API key {header.api_key} (client {header.client_id!r})")
            if not versions[0] <= header.api_version <= versions[1]:
                raise RemoteProtocolError(str(UnsupportedVersion(header.api_key, header.api_version)))
            try:
                request = decode_request(frame, header)
            except ProtocolError as e:
                raise RemoteProtocolError(str(e)) from None
            sequence = self._next_sequence
            self._next_sequence += 1
            return RequestReceived(header=header, body=request.body, size=request.size, sequence=sequence)
        if not self._peer_closed:
            return NEED_DATA
        if self._len:
            raise RemoteProtocolError(f"the peer closed the connection {self._len} bytes into a request frame")
        return ConnectionClosed()

    def _answer_unsupported_api_versions(self, header: RequestHeader) -> None:
        """KIP-511: a v0 body with UNSUPPORTED_VERSION and the supported ranges."""
        ranges = [{"api_key": key, "min_version": low, "max_version": high}
                  for key, (low, high) in sorted(self._versions.items())]
        body = build_response(API_VERSIONS_KEY, 0,
                              {"error_code": ErrorCode.unsupported_version, "api_keys": ranges})
        sequence = self._next_sequence
        self._next_sequence += 1
        self._answered[sequence] = [encode_response(API_VERSIONS_KEY, 0, header.correlation_id, body)]
        self._ready = self._flush()  # with what was ready before

    # responses -------------------------------------------------------------------------------------

    def send_response(self, request: RequestReceived, response: Any) -> list[Any]:
        """Answer ``request`` (``None``: it has no response); the buffers now ready to write,
        in request order (empty while an earlier request is unanswered)."""
        sequence = request.sequence
        if sequence < self._next_out or sequence in self._answered or sequence >= self._next_sequence:
            raise LocalProtocolError(f"request {sequence} (correlation id {request.header.correlation_id}) "
                                     "is not waiting for a response")
        if response is None:
            self._answered[sequence] = None
        else:
            try:
                self._answered[sequence] = _encode(request.header, response)
            except Exception as e:
                raise LocalProtocolError(
                    f"cannot encode the response to API {request.header.api_key} "
                    f"v{request.header.api_version}: {type(e).__name__}: {e}") from e
        return self._flush()

    def data_to_send(self) -> list[Any]:
        """Buffers ready to write that no :meth:`send_response` returned yet (KIP-511 answers)."""
        ready, self._ready = self._ready, []
        return ready

    def abandon(self) -> list[Any]:
        """Forget every response not yet returned (the connection is gone); their buffers, for
        the caller to release."""
        held = self.data_to_send()
        for buffers in self._answered.values():
            held += buffers or ()
        self._answered.clear()
        self._frames.clear()
        return held

    def _flush(self) -> list[Any]:
        out = self.data_to_send()
        while self._next_out in self._answered:
            buffers = self._answered.pop(self._next_out)
            self._next_out += 1
            if buffers:
                out += buffers
        return out


def _encode(header: RequestHeader, response: Any) -> list[Any]:
    key, version = header.api_key, header.api_version
    if isinstance(response, RawResponse):
        flexible = response_header_flexible(key, version)
        head = _I32.pack(header.correlation_id) + (b"\0" if flexible else b"")
        body = response.body if isinstance(response.body, list) else [response.body]
        size = len(head) + sum(len(b) for b in body)
        return [_I32.pack(size) + head, *body]
    if isinstance(response, Mapping):
        response = build_response(key, version, response)
    return [encode_response(key, version, header.correlation_id, response)]
