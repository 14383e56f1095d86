"""What producers, consumers and admins share: librdkafka settings, the first contact with the
cluster, and the threads blocking librdkafka calls run in (never the event loop's)."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import KafkaException

from tomyum.client._errors import ClientError

T = TypeVar("T")

#: librdkafka's own log (connection failures, ...) goes to this Python logger, never raw to
#: stderr; at WARNING, and with repeats of one line held back, so a broker that is gone is said
#: once rather than on every reconnect attempt
librdkafka_log = logging.getLogger("tomyum.client.librdkafka")
librdkafka_log.setLevel(logging.WARNING)


class _OncePerLine(logging.Filter):
    """Lets each distinct librdkafka line (numbers aside) through once per ``every_s`` seconds."""

    def __init__(self, every_s: float = 60.0) -> None:
        super().__init__()
        self.every_s = every_s
        self.last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()  # FAIL [rdkafka#consumer-1] [thrd:HOST:PORT/bootstrap]: ...: REASON
        shape = re.sub(r"\d+", "N", message.rpartition(" failed: ")[2] or message)
        shape = re.sub(r" \(after .*\)$", "", shape)
        now = time.monotonic()
        if now - self.last.get(shape, -self.every_s) < self.every_s:
            return False
        self.last[shape] = now
        return True


librdkafka_log.addFilter(_OncePerLine())


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """Settings every client of one :class:`~tomyum.client.Kafka` starts from."""

    client_id: str
    brokers: tuple[str, ...]
    connection_timeout_ms: int
    settings: Mapping[str, Any] = field(default_factory=dict)

    def librdkafka(self, *layers: Mapping[str, Any] | None) -> dict[str, Any]:
        """librdkafka settings: bootstrap and client id, then ``layers`` in order, then the
        settings given to ``Kafka(config=...)``, which win."""
        out: dict[str, Any] = {"bootstrap.servers": ",".join(self.brokers), "client.id": self.client_id,
                               "logger": librdkafka_log}
        for layer in layers:
            out.update(layer or {})
        out.update(self.settings)
        return out


async def probe(list_topics: Callable[..., Any], config: ClientConfig, what: str,
                run: Callable[..., Awaitable[Any]] = asyncio.to_thread) -> None:
    """Fetch cluster metadata once with the client's ``list_topics``, run by ``run`` (a fresh
    thread by default), so that ``connect()`` fails when no broker answers in
    ``connection_timeout_ms``."""
    try:
        await run(list_topics, timeout=config.connection_timeout_ms / 1000)
    except KafkaException as e:
        raise ClientError.wrap(e, f"{what} could not connect to {','.join(config.brokers)}") from None


class SerialThread:
    """One thread that runs a client's blocking calls one at a time, in order.

    A consumer's librdkafka handle is used from this thread only, so that its callbacks
    (rebalances) run there and never race a ``consume`` in flight.
    """

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)
