"""The handler registry. Each handler module registers itself with :func:`handles`;
ApiVersions is computed from what is registered.

A handler is ``async def handler(ctx, request) -> response`` where the response is a dict
(built into the kio entity of the request's version), a kio entity, ``Deferred`` (an
awaitable producing one of those, answered in order once it completes, while the connection
goes on reading), ``RawResponse`` (body bytes already encoded) or ``NO_RESPONSE`` (acks=0).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from tomyum.protocol.connection import RawResponse as RawResponse

Handler = Callable[[Any, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ApiHandler:
    api_key: int
    min_version: int
    max_version: int
    fn: Handler
    name: str
    #: the handler records its own time against ``request_percentage`` (KIP-124), as Kafka's
    #: fetch does, to answer an empty fetch when throttled; the server records everyone else's
    times_itself: bool = False


class Deferred:
    """A response that completes later (long-poll fetch, acks=-1 produce, JoinGroup)."""

    __slots__ = ("awaitable",)

    def __init__(self, awaitable: Awaitable[Any]) -> None:
        self.awaitable = awaitable


NO_RESPONSE = object()

HANDLERS: dict[int, ApiHandler] = {}


def handles(api_key: int, versions: range, *, times_itself: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        if api_key in HANDLERS:
            raise RuntimeError(f"API key {api_key} registered twice")
        HANDLERS[api_key] = ApiHandler(api_key, versions.start, versions.stop - 1, fn, fn.__name__, times_itself)
        return fn

    return register


def api_version_ranges() -> list[dict[str, int]]:
    """What ApiVersions answers: every registered API (the composition root imports
    ``tomyum.broker.handlers``, which registers them all)."""
    return [
        {"api_key": h.api_key, "min_version": h.min_version, "max_version": h.max_version}
        for h in sorted(HANDLERS.values(), key=lambda h: h.api_key)
    ]


def error_code(e: BaseException) -> ErrorCode:
    from tomyum.errors import KafkaError

    return e.code if isinstance(e, KafkaError) else ErrorCode.unknown_server_error


@contextmanager
def errors_into(entry: dict[str, Any]) -> Iterator[None]:
    """Answer a KafkaError raised inside as ``entry``'s error_code and error_message (the
    per-resource error of most admin APIs)."""
    from tomyum.errors import KafkaError

    try:
        yield
    except KafkaError as e:
        entry["error_code"] = e.code
        entry["error_message"] = str(e)
