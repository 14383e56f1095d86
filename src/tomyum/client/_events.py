"""Instrumentation events, named and shaped as KafkaJS's (``consumer.on(name, listener)``)."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("tomyum.client")


class ConsumerEvents:
    """The event names a consumer emits (``Consumer.events.CRASH`` and so on).

    - ``CONNECT``: ``connect()`` reached a broker. Payload: ``{}``.
    - ``GROUP_JOIN``: the group gave this member its partitions (after every rebalance).
      Payload: ``group_id``, ``member_id``, ``member_assignment`` (topic → sorted partitions).
    - ``CRASH``: a handler raised, or librdkafka reported a fatal error; the consumer stops and
      disconnects (the message that failed is not committed). Payload: ``group_id``, ``error``,
      ``restart`` (always ``False``: the facade does not restart a crashed consumer).
    - ``DISCONNECT``: the consumer left its group and closed. Payload: ``{}``.
    """

    CONNECT = "consumer.connect"
    GROUP_JOIN = "consumer.group_join"
    CRASH = "consumer.crash"
    DISCONNECT = "consumer.disconnect"

    ALL = frozenset({CONNECT, GROUP_JOIN, CRASH, DISCONNECT})


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerEvent:
    """What a listener receives: the event's name, when it happened (ms since the epoch), and
    its payload (see :class:`ConsumerEvents`)."""

    type: str
    timestamp: int
    payload: Mapping[str, Any]


Listener = Callable[[ConsumerEvent], Awaitable[None] | None]


class EventEmitter:
    """Listeners by event name. Listeners may be plain functions or coroutine functions; they
    run on the event loop, in the order they were added; one that raises is logged and the
    others still run."""

    def __init__(self, names: frozenset[str]) -> None:
        self._names = names
        self._listeners: dict[str, list[Listener]] = {}

    def on(self, name: str, listener: Listener) -> Callable[[], None]:
        """Add ``listener`` for ``name``; returns a function that removes it again."""
        if name not in self._names:
            raise ValueError(f"unknown event {name!r}: one of {', '.join(sorted(self._names))}")
        self._listeners.setdefault(name, []).append(listener)

        def remove() -> None:
            if listener in self._listeners.get(name, []):
                self._listeners[name].remove(listener)
        return remove

    async def emit(self, name: str, payload: Mapping[str, Any]) -> None:
        event = ConsumerEvent(type=name, timestamp=int(time.time() * 1000), payload=payload)
        for listener in list(self._listeners.get(name, [])):
            try:
                result = listener(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("listener for %s failed", name)
