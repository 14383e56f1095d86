"""``tomyum connect standalone|distributed``: wire a worker, a herder and the REST server.

The REST server listens on the first of ``listeners`` (Kafka's default ``http://:8083``); the
worker id is that ``host:port``, as Kafka's. Connectors given as property files are created
before the server serves requests; one that does not validate stops the start with its error.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from tomyum.connect import plugins
from tomyum.connect.connector import ConnectError
from tomyum.connect.distributed import DistributedHerder
from tomyum.connect.offsets_topics import KafkaOffsetBackingStore
from tomyum.connect.herder import RestError
from tomyum.connect.offsets import FileOffsetBackingStore, MemoryOffsetBackingStore, OffsetBackingStore
from tomyum.connect.standalone import StandaloneHerder
from tomyum.connect.worker import Worker, WorkerConfig

log = logging.getLogger("tomyum.connect")

DEFAULT_LISTENER = "http://:8083"


def parse_listener(listeners: str) -> tuple[str, int]:
    """(host, port) of the first listener; an empty host means every interface."""
    first = listeners.split(",")[0].strip()
    parts = urlsplit(first)
    if parts.scheme not in ("http", "https"):
        raise ConnectError(f"Invalid listener {first!r}: expected http://host:port")
    if parts.scheme == "https":
        raise ConnectError("https listeners are not supported yet; use http://")
    try:
        port = parts.port
    except ValueError:
        raise ConnectError(f"Invalid listener {first!r}: bad port") from None
    return parts.hostname or "", 8083 if port is None else port


def _cluster_id(worker: Worker) -> str | None:
    try:
        admin = worker.admin()  # kept alive until the answer is in
        cluster_id: str | None = admin.describe_cluster(request_timeout=10).result(timeout=15).cluster_id
        return cluster_id
    except Exception as e:  # noqa: BLE001 - the REST root reports null, as when Kafka cannot be asked
        log.warning("Could not look up the Kafka cluster id: %s", e)
        return None


class _Runtime:
    """A worker with its REST server; ``run()`` serves until SIGINT/SIGTERM."""

    def __init__(self, worker_props: Mapping[str, str]) -> None:
        self.worker_props = dict(worker_props)
        self.host, port = parse_listener(self.worker_props.get("listeners", DEFAULT_LISTENER))
        # bound now, so that port 0 (an ephemeral port, for tests) gives the worker id its real port
        self.socket = socket.create_server((self.host, port), reuse_port=False)
        self.port = self.socket.getsockname()[1]
        plugins.add_plugin_path(p.strip() for p in self.worker_props.get("plugin.path", "").split(",") if p.strip())
        advertised = self.worker_props.get("rest.advertised.host.name") or self.host or socket.gethostname()
        raw_port = self.worker_props.get("rest.advertised.port", "").strip()
        if raw_port and not raw_port.isdigit():
            raise ConnectError(f"Invalid value {raw_port} for configuration rest.advertised.port: Not a number of type INT")
        advertised_port = int(raw_port or self.port)
        scheme = self.worker_props.get("rest.advertised.listener") or "http"
        self.worker_id = f"{advertised}:{advertised_port}"
        self.url = f"{scheme}://{self.worker_id}/"
        self.config = WorkerConfig.from_props(self.worker_props, self.worker_id)
        self.herder: StandaloneHerder | DistributedHerder

    def start_connectors(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, then stop every connector and task (a sink's consumer
        commits and leaves its group) before returning, as Kafka's worker does on either signal.

        uvicorn, once shut down, raises the signal it caught again; SIGTERM's default action
        would then end the process before the tasks are stopped (the group kept a dead member
        for its whole session timeout), so here SIGTERM raises ``SystemExit(143)``, the status
        of a process ended by it."""
        import uvicorn

        from tomyum.connect.rest import create_app

        server = uvicorn.Server(uvicorn.Config(create_app(self.herder), log_level="warning", access_log=False,
                                               lifespan="off"))
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            self.start_connectors()
            log.info("REST server listening on http://%s:%d/", self.host or "0.0.0.0", self.port)
            log.info("Kafka Connect started")
            server.run(sockets=[self.socket])
        finally:
            self.socket.close()
            self.herder.stop()


class StandaloneRuntime(_Runtime):
    """``tomyum connect standalone``: connectors from property files, offsets in a file."""

    def __init__(self, worker_props: Mapping[str, str], connector_configs: list[dict[str, str]]) -> None:
        super().__init__(worker_props)
        self.connector_configs = connector_configs
        filename = self.worker_props.get("offset.storage.file.filename", "").strip()
        store: OffsetBackingStore = FileOffsetBackingStore(Path(filename)) if filename else MemoryOffsetBackingStore()
        self.herder = StandaloneHerder(Worker(self.config, store, listener=_NoListener()))

    def start_connectors(self) -> None:
        self.herder.kafka_cluster_id = _cluster_id(self.herder.worker)
        for config in self.connector_configs:
            name = config.get("name", "").strip()
            if not name:
                raise ConnectError("Connector configuration is missing its name")
            try:
                self.herder.put_connector_config(name, config, allow_replace=False)
            except RestError as e:
                raise ConnectError(e.message) from None
        self.herder.start()


class DistributedRuntime(_Runtime):
    """``tomyum connect distributed``: a member of the ``group.id`` cluster of workers, state in
    Kafka's three internal topics (:mod:`tomyum.connect.distributed`)."""

    def __init__(self, worker_props: Mapping[str, str]) -> None:
        super().__init__(worker_props)
        store = KafkaOffsetBackingStore()
        self.herder = DistributedHerder(Worker(self.config, store, listener=_NoListener()), store,
                                        self.worker_props, self.url)

    def start_connectors(self) -> None:
        self.herder.start()  # first: a topic it cannot create ends the start before any other client
        self.herder.kafka_cluster_id = _cluster_id(self.herder.worker)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signal.SIGTERM)


class _NoListener:
    def on_connector_state(self, *args: object) -> None:
        pass

    def on_task_state(self, *args: object) -> None:
        pass

    def on_topic_used(self, *args: object) -> None:
        pass
