"""The tomyum web console: a Kafka client with pages (Starlette + Jinja2, a little vanilla JS).

It reaches the cluster only through confluent-kafka (no broker internals), so the same console
runs against tomyum or Apache Kafka: ``tomyum console --bootstrap HOST:PORT``, or inside
``tomyum serve`` with ``console.listener=HOST:PORT``, pointed at that broker as a client.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from tomyum.console._app import create_app
from tomyum.console._connect import ConnectCluster
from tomyum.console._kafka import Cluster

__all__ = ["Cluster", "ConsoleServer", "create_app", "parse_listener"]


def parse_listener(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (port 0 picks one) as a pair; ValueError in words otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


class ConsoleServer:
    """The console's HTTP server (uvicorn) on ``listen``, in the running event loop."""

    def __init__(self, bootstrap: str, listen: str, settings: dict[str, Any] | None = None,
                 about: Callable[[], dict[str, Any]] | None = None, connect_url: str = "") -> None:
        import uvicorn

        host, port = parse_listener(listen)
        self.socket = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.cluster = Cluster(bootstrap, settings)
        self.connect = ConnectCluster(connect_url) if connect_url else None
        config = uvicorn.Config(create_app(self.cluster, about, self.connect), log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:
        # _serve, not serve: serve captures SIGINT and SIGTERM, which belong to the process's owner
        self._task = asyncio.create_task(self.server._serve(sockets=[self.socket]))
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
        self.socket.close()
        await asyncio.to_thread(self.cluster.close)
        if self.connect is not None:
            self.connect.close()
