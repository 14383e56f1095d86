"""What producers, consumers and admins share: librdkafka settings, the first contact with the
cluster, and the threads blocking librdkafka calls run in (never the event loop's)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import KafkaException

from tomyum.client._errors import ClientError

T = TypeVar("T")


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
        out: dict[str, Any] = {"bootstrap.servers": ",".join(self.brokers), "client.id": self.client_id}
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
