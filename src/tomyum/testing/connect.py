"""A real ``tomyum connect standalone`` (or ``distributed``) worker in a child process, for
integration tests.

It listens on an ephemeral loopback port (``listeners=http://127.0.0.1:0``) and is found by the
line it logs when its REST server is up; its output goes to a log file. Every wait is bounded.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tomyum.testing.broker import wait_until

READY = re.compile(r"REST server listening on http://([^\s:]+):(\d+)/")


def write_properties(path: Path, props: Mapping[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()), encoding="utf-8")
    return path


class ConnectProcess:
    """``with ConnectProcess(workdir, bootstrap) as w: w.url`` — started, stopped, bounded."""

    def __init__(self, workdir: Path, bootstrap: str, *, worker: Mapping[str, str] | None = None,
                 connectors: Sequence[Mapping[str, str]] = (), start_timeout: float = 60.0,
                 mode: str = "standalone") -> None:
        """``mode="distributed"``: ``worker`` carries group.id and the storage topics."""
        self.workdir = workdir
        self.mode = mode
        workdir.mkdir(parents=True, exist_ok=True)
        props = {"bootstrap.servers": bootstrap, "listeners": "http://127.0.0.1:0",
                 "key.converter": "org.apache.kafka.connect.json.JsonConverter",
                 "value.converter": "org.apache.kafka.connect.json.JsonConverter",
                 "offset.flush.interval.ms": "1000"}
        if mode == "standalone":
            props["offset.storage.file.filename"] = str(workdir / "connect.offsets")
        props.update(worker or {})
        self.worker_file = write_properties(workdir / "worker.properties", props)
        self.connector_files = [write_properties(workdir / f"connector-{i}.properties", c)
                                for i, c in enumerate(connectors)]
        self.log_path = workdir / "connect.log"
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    @classmethod
    def for_files(cls, workdir: Path, worker_file: Path, connector_files: Sequence[Path],
                  start_timeout: float = 60.0, mode: str = "standalone") -> ConnectProcess:
        """A worker started on property files as they are (their ``listeners`` must be port 0)."""
        self = cls.__new__(cls)
        self.workdir, self.worker_file, self.connector_files = workdir, worker_file, list(connector_files)
        self.log_path = workdir / f"connect-{len(list(workdir.glob('connect*.log')))}.log"
        self.start_timeout, self.process, self.url, self.mode = start_timeout, None, "", mode
        return self

    def start(self) -> ConnectProcess:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tomyum", "connect", self.mode, str(self.worker_file),
                 *map(str, self.connector_files)], stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)

        def ready() -> re.Match[str] | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"connect worker exited with {self.process.returncode}:\n{self.output()}")
            return READY.search(self.output())
        try:
            match = wait_until(ready, timeout=self.start_timeout, interval=0.05,
                               what="the connect worker's REST server")
        except TimeoutError:
            self.kill()
            raise
        self.url = f"http://{match[1]}:{match[2]}"
        return self

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: the worker dies without stopping anything (kill -9)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> ConnectProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class KafkaConnectProcess:
    """Apache Kafka Connect's own standalone worker (``ConnectStandalone``) in a child process,
    from the jars ``tomyum.testing.kafka_peer.fetch_jars`` fetched (plus ``classpath``), on a free
    loopback port: ``with KafkaConnectProcess(jars, workdir, {"bootstrap.servers": …}) as w: w.url``.
    Started once ``/health`` answers 200; stopped with SIGTERM, then killed; its output goes to
    ``workdir/connect.log``."""

    def __init__(self, jars: Path, workdir: Path, worker: Mapping[str, str], *,
                 connectors: Sequence[Mapping[str, str]] = (), classpath: Sequence[Path] = (),
                 heap: str = "512m", start_timeout: float = 120.0) -> None:
        from tomyum.testing.kafka_peer import free_port
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.log_path, self.start_timeout = workdir, workdir / "connect.log", start_timeout
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        props = {"listeners": self.url, "key.converter": "org.apache.kafka.connect.json.JsonConverter",
                 "value.converter": "org.apache.kafka.connect.json.JsonConverter",
                 "offset.storage.file.filename": str(workdir / "connect.offsets"),
                 "offset.flush.interval.ms": "1000", "plugin.discovery": "only_scan", **worker}
        files = [write_properties(workdir / "worker.properties", props)]
        files += [write_properties(workdir / f"connector-{i}.properties", c) for i, c in enumerate(connectors)]
        cp = ":".join([f"{jars}/*", *map(str, classpath)])
        self.command = ["java", f"-Xmx{heap}", "-XX:TieredStopAtLevel=1", "-cp", cp,
                        "org.apache.kafka.connect.cli.ConnectStandalone", *map(str, files)]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> KafkaConnectProcess:
        import urllib.error
        import urllib.request
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.workdir)

        def healthy() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"Kafka Connect exited with {self.process.returncode}: "
                                   + self.log_path.read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                    return bool(response.status == 200)
            except (OSError, urllib.error.URLError):
                return False
        try:
            wait_until(healthy, timeout=self.start_timeout, interval=0.3, what="Kafka Connect's /health")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> KafkaConnectProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
