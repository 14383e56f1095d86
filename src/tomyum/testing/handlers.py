"""Call any broker handler in-process, below the socket, and read its answer as a client would.

:class:`HandlerHarness` runs a real :class:`~tomyum.broker.broker.Broker` (the in-memory log
engine unless another is given, a :class:`~tomyum.testing.clock.FakeClock`, a listener on
``127.0.0.1:0``, no initial rebalance delay). :meth:`HandlerHarness.call` then does for one
request what the server does for a frame, minus the socket:

1. the request dict becomes the kio entity of (api key, version) — fields it leaves out take
   their zero value (0, "", False, empty array, null where nullable), as Kafka's generated
   request classes do for fields without a schema default — and is encoded to a request frame
   and decoded back with the server's own :func:`~tomyum.protocol.codec.decode_request`;
2. the registered handler (:data:`~tomyum.broker.dispatch.HANDLERS`) is awaited with a
   :class:`~tomyum.broker.context.RequestContext` on a :class:`FakeConnection`, and a
   ``Deferred`` result is awaited in turn;
3. the result — dict, kio entity, ``RawResponse`` (the hand-written Produce and Fetch
   encoders; zero-copy file slices are read and released) — is encoded to a response frame as
   the server encodes it and decoded with kio's reader for that version, which must consume
   the frame exactly. ``NO_RESPONSE`` comes back as ``None``.

So a test asserts on the response entity a client would parse. Every await is bounded by
``timeout_s`` (``asyncio.wait_for``); nothing sleeps. :class:`BlockingHarness` is the same
for synchronous tests: it owns an event loop and runs each call to its end on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import io
import struct
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from kio.serial import entity_reader, entity_writer
from kio.serial._introspect import EntityField, EntityTupleField, classify_field, is_optional

from tomyum.broker.broker import Broker, EngineFactory
from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import HANDLERS, NO_RESPONSE, Deferred, RawResponse
from tomyum.config import BrokerConfig
from tomyum.errors import UnsupportedVersion
from tomyum.protocol.codec import (
    build,
    build_response,
    decode_request,
    encode_response,
    request_class,
    response_class,
    response_header_flexible,
)
from tomyum.protocol.primitives import read_uvarint as uvarint
from tomyum.security.sasl import Exchange
from tomyum.storage.memory import MemoryLogStore
from tomyum.testing.clock import FakeClock

__all__ = ["BlockingHarness", "FakeConnection", "HandlerHarness", "build_request", "decode_response",
           "encode_request", "encode_result"]

T = TypeVar("T")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_HEADER = struct.Struct(">hhi")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_ZEROS: dict[str, Any] = {"bool": False, "string": "", "bytes": b"", "uuid": uuid.UUID(int=0),
                          "float64": 0.0, "datetime_i64": _EPOCH}
#: what a test broker is started with, under the test's own settings
DEFAULT_SETTINGS: dict[str, Any] = {"listeners": "PLAINTEXT://127.0.0.1:0", "group.initial.rebalance.delay.ms": 0}


class FakeConnection:
    """The connection a handler sees (:class:`~tomyum.broker.services.ClientConnection`);
    :attr:`closes` records every ``close(why)`` a handler asks for."""

    def __init__(self, zero_copy_min: int | None = None) -> None:
        self.zero_copy_min = zero_copy_min
        self.closes: list[str | None] = []
        self.principal = "User:ANONYMOUS"
        self.authentication: Exchange | None = None
        self.request_started_ns = 0
        #: (principal, session lifetime ms) of each completed authentication
        self.authentications: list[tuple[str, int]] = []
        #: the throttle time of each ``throttle`` (KIP-219 mute) a handler asks for
        self.throttled: list[int] = []

    def close(self, why: str | None = None) -> None:
        self.closes.append(why)

    def throttle(self, throttle_ms: int) -> None:
        self.throttled.append(throttle_ms)

    def close_after_response(self, why: str) -> None:
        self.closes.append(why)

    def begin_authentication(self, exchange: Exchange) -> None:
        self.authentication = exchange

    def authenticated(self, principal: str, session_lifetime_ms: int) -> None:
        self.principal, self.authentication = principal, None
        self.authentications.append((principal, session_lifetime_ms))


# requests ------------------------------------------------------------------------------------

def _zero(f: dataclasses.Field[Any]) -> Any:
    """Kafka's value for a field the schema gives no default: 0, "", false, empty, null."""
    kind = classify_field(f)
    if isinstance(kind, EntityTupleField):
        return ()
    if isinstance(kind, EntityField):
        return None if is_optional(f) else _complete(kind.type_, {})
    if is_optional(f):
        return None
    kafka_type = f.metadata.get("kafka_type", "")
    if kafka_type.startswith("timedelta"):
        return 0
    return _ZEROS.get(kafka_type, 0)


def _complete(cls: type, data: Mapping[str, Any]) -> Any:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = classify_field(f)
        value = data.get(f.name, dataclasses.MISSING)
        if value is dataclasses.MISSING:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                out[f.name] = _zero(f)
            continue
        if isinstance(kind, EntityTupleField) and value is not None:
            value = tuple(v if isinstance(v, kind.type_) else _complete(kind.type_, v) for v in value)
        elif isinstance(kind, EntityField) and isinstance(value, Mapping):
            value = _complete(kind.type_, value)
        out[f.name] = value
    return build(cls, out)


def build_request(api_key: int, api_version: int, data: Mapping[str, Any]) -> Any:
    """The request entity of (``api_key``, ``api_version``) from plain ``data`` (nested dicts);
    keys the version lacks are ignored, fields left out take their zero value."""
    return _complete(request_class(api_key, api_version), data)


def encode_request(api_key: int, api_version: int, correlation_id: int, client_id: str | None,
                   body: Any) -> bytes:
    """A request frame without its length prefix: header v1 (v2 for flexible versions), body."""
    buf = io.BytesIO()
    buf.write(_HEADER.pack(api_key, api_version, correlation_id))
    if client_id is None:
        buf.write(_I16.pack(-1))
    else:
        raw = client_id.encode()
        buf.write(_I16.pack(len(raw)) + raw)
    if type(body).__flexible__:
        buf.write(b"\0")
    entity_writer(type(body))(buf, body)
    return buf.getvalue()


# responses -----------------------------------------------------------------------------------

def _materialize(chunk: Any) -> bytes:
    """A zero-copy file slice as the bytes ``sendfile`` would send (then released)."""
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    try:
        data: bytes = chunk.read_all()
    finally:
        chunk.release()
    if len(data) != len(chunk):
        raise AssertionError(f"a zero-copy slice of {len(chunk)} bytes read back {len(data)}")
    return data


def encode_result(api_key: int, api_version: int, correlation_id: int, result: Any) -> bytes:
    """The response frame (length prefix included) for a handler's ``result``, encoded as the
    server encodes it (``KafkaConnection._encode``)."""
    if isinstance(result, RawResponse):
        head = _I32.pack(correlation_id) + (b"\0" if response_header_flexible(api_key, api_version) else b"")
        body = result.body if isinstance(result.body, list) else [result.body]
        payload = b"".join([head, *(_materialize(b) for b in body)])
        return _I32.pack(len(payload)) + payload
    if isinstance(result, dict):
        result = build_response(api_key, api_version, result)
    return encode_response(api_key, api_version, correlation_id, result)


def decode_response(api_key: int, api_version: int, frame: bytes, correlation_id: int | None = None) -> Any:
    """The response entity a client reads from ``frame`` (length prefix included). Raises
    AssertionError if the frame's length, correlation id or size disagree with its body."""
    (size,) = _I32.unpack_from(frame, 0)
    if size != len(frame) - 4:
        raise AssertionError(f"response frame says {size} bytes, has {len(frame) - 4}")
    (got,) = _I32.unpack_from(frame, 4)
    if correlation_id is not None and got != correlation_id:
        raise AssertionError(f"correlation id {got}, expected {correlation_id}")
    pos = 8
    if response_header_flexible(api_key, api_version):
        count, pos = uvarint(frame, pos, len(frame))
        for _ in range(count):
            _, pos = uvarint(frame, pos, len(frame))
            n, pos = uvarint(frame, pos, len(frame))
            pos += n
    body, size = entity_reader(response_class(api_key, api_version))(frame, pos)
    if (end := pos + size) != len(frame):
        raise AssertionError(f"API {api_key} v{api_version}: the response body ends at byte {end} "
                             f"of a {len(frame)}-byte frame")
    return body


# the harness ---------------------------------------------------------------------------------

class HandlerHarness:
    """A real broker in this process, and its handlers to call (an async context manager).

    ``settings`` are broker config keys over :data:`DEFAULT_SETTINGS`; ``clock`` is the
    broker's clock (a new :class:`FakeClock` unless given; move it with ``advance``).
    """

    def __init__(self, data_dir: Path, *, settings: Mapping[str, Any] | None = None,
                 clock: FakeClock | None = None, engine: EngineFactory = MemoryLogStore,
                 timeout_s: float = 10.0, client_id: str | None = "handler-test") -> None:
        self.config = BrokerConfig({**DEFAULT_SETTINGS, **(settings or {})})
        self.clock = clock if clock is not None else FakeClock()
        self.broker = Broker(self.config, Path(data_dir), clock=self.clock, engine=engine)
        zero_copy = self.config["fetch.zero.copy.min.bytes"]
        self.connection = FakeConnection(zero_copy if zero_copy >= 0 else None)
        self.timeout_s = timeout_s
        self.client_id = client_id
        self._correlation_id = 0

    async def __aenter__(self) -> Self:
        Path(self.broker.data_dir).mkdir(parents=True, exist_ok=True)
        try:
            await self.bounded(self.broker.start())
        except BaseException:
            await self.bounded(self.broker.abort_start())
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.bounded(self.broker.stop())

    async def bounded(self, awaitable: Awaitable[T]) -> T:
        """``awaitable``'s result, or TimeoutError after ``timeout_s``."""
        return await asyncio.wait_for(awaitable, self.timeout_s)

    async def call(self, api_key: int, api_version: int, request: Mapping[str, Any] | Any) -> Any:
        """Send one request (a dict or a kio entity) to its handler; the decoded response entity,
        or None when the handler sends none (acks=0)."""
        handler = HANDLERS.get(api_key)
        if handler is None:
            raise LookupError(f"no handler registered for API key {api_key}")
        if not handler.min_version <= api_version <= handler.max_version:
            raise UnsupportedVersion(api_key, api_version)
        body = build_request(api_key, api_version, request) if isinstance(request, Mapping) else request
        self._correlation_id += 1
        correlation_id = self._correlation_id
        decoded = decode_request(encode_request(api_key, api_version, correlation_id, self.client_id, body))
        ctx = RequestContext(self.broker, self.broker.listeners[0], api_key, api_version, correlation_id,
                             self.client_id, "127.0.0.1:50000", self.connection)
        self.connection.request_started_ns = time.perf_counter_ns()
        result = await self.bounded(handler.fn(ctx, decoded.body))
        if isinstance(result, Deferred):
            result = await self.bounded(result.awaitable)
        if result is NO_RESPONSE:
            return None
        frame = encode_result(api_key, api_version, correlation_id, result)
        return decode_response(api_key, api_version, frame, correlation_id)

    def start(self, api_key: int, api_version: int, request: Mapping[str, Any] | Any) -> asyncio.Task[Any]:
        """:meth:`call` as a task, for a request that parks (JoinGroup, a long-poll Fetch) while
        the test sends others; see :meth:`until`."""
        return asyncio.ensure_future(self.call(api_key, api_version, request))

    async def until(self, predicate: Callable[[], bool], what: str = "condition", max_turns: int = 1000) -> None:
        """Let the broker's tasks run (no time passes: each turn is one pass of the event loop)
        until ``predicate()`` holds; AssertionError after ``max_turns`` passes."""
        for _ in range(max_turns):
            if predicate():
                return
            await asyncio.sleep(0)
        raise AssertionError(f"{what} did not happen within {max_turns} turns of the event loop")

    async def create_topic(self, name: str, partitions: int = 1, configs: Mapping[str, str | None] | None = None) -> None:
        await self.bounded(self.broker.create_topic(name, partitions, dict(configs or {})))


class BlockingHarness:
    """:class:`HandlerHarness` for synchronous tests: a context manager that owns an event
    loop; :meth:`call` runs one request to its end, :meth:`run` any coroutine on the broker's
    loop (a scenario of requests in flight together, with :attr:`harness`'s ``start`` and
    ``until``)."""

    def __init__(self, data_dir: Path, **kwargs: Any) -> None:
        self.harness = HandlerHarness(data_dir, **kwargs)
        self._runner = asyncio.Runner()
        self._entered = False

    @property
    def broker(self) -> Broker:
        return self.harness.broker

    @property
    def clock(self) -> FakeClock:
        return self.harness.clock

    @property
    def connection(self) -> FakeConnection:
        return self.harness.connection

    def __enter__(self) -> Self:
        try:
            self._runner.run(self.harness.__aenter__())
        except BaseException:
            self._runner.close()
            raise
        self._entered = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._entered:
                self._runner.run(self.harness.__aexit__(exc_type, exc, tb))
        finally:
            self._runner.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(self.harness.bounded(coro))

    def call(self, api_key: int, api_version: int, request: Mapping[str, Any] | Any) -> Any:
        return self._runner.run(self.harness.call(api_key, api_version, request))

    def create_topic(self, name: str, partitions: int = 1, configs: Mapping[str, str | None] | None = None) -> None:
        self._runner.run(self.harness.create_topic(name, partitions, configs))

