"""Apache Kafka as a test peer: the oracle the client suite is checked against (issue 20).

``KafkaPeer`` fetches the broker's and tools' jars with Maven (the version pinned in
``tests/peers/kafka/pom.xml``) into a cache directory, formats a single-node KRaft data dir
(``kafka.tools.StorageTool``), starts ``kafka.Kafka`` on free loopback ports and stops it.
Every wait is bounded; the JVM's output goes to a log file, never a pipe.

Run from the command line (``make kafka``, ``make test-kafka``)::

    python -m tomyum.testing.kafka_peer serve              # one broker in the foreground
    python -m tomyum.testing.kafka_peer run -- CMD ARGS    # CMD with TOMYUM_TEST_BOOTSTRAP set

``run`` gives ``CMD`` the environment ``TOMYUM_TEST_BOOTSTRAP=127.0.0.1:<port>`` and
``TOMYUM_TEST_PEER=kafka``, and stops the broker however ``CMD`` ends (Ctrl-C included).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from tomyum.testing.broker import wait_until

PEER_DIR = Path(__file__).resolve().parents[3] / "tests" / "peers" / "kafka"
POM = PEER_DIR / "pom.xml"
#: jars land in ``<cache>/<pom digest>/libs``; ``TOMYUM_KAFKA_CACHE`` moves the cache
DEFAULT_CACHE = PEER_DIR / "cache"
READY_LINE = "Kafka Server started"

#: what a single node needs (replication factors of 1) and what the suite needs (groups that
#: form at once, KIP-848 heartbeats as fast as the tests ask, retention checked often)
SERVER_SETTINGS: dict[str, str] = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "4",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "group.consumer.min.heartbeat.interval.ms": "500",
    "group.consumer.heartbeat.interval.ms": "500",
    "log.retention.check.interval.ms": "100",
    "log.cleaner.backoff.ms": "100",
    "num.partitions": "1",
    "auto.create.topics.enable": "true",
}

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.kafka.request.name = kafka.request.logger
logger.kafka.request.level = WARN
"""


def pinned_version(pom: Path = POM) -> str:
    """The Kafka version ``pom`` pins (its ``kafka.version`` property)."""
    text = pom.read_text()
    start = text.index("<kafka.version>") + len("<kafka.version>")
    return text[start:text.index("</kafka.version>", start)].strip()


def fetch_jars(cache: Path | None = None, timeout: float = 600.0, *, pom: Path = POM) -> Path:
    """The directory of the jars ``pom`` depends on (by default the pinned Kafka broker's and
    tools'), fetched with Maven on first use into ``cache`` (by default ``TOMYUM_KAFKA_CACHE`` or
    ``tests/peers/kafka/cache``).

    Keyed by the pom's artifact id and digest, so a version bump fetches afresh; a fetch that
    fails leaves nothing that looks complete."""
    cache = Path(cache or os.environ.get("TOMYUM_KAFKA_CACHE") or DEFAULT_CACHE)
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    name = "kafka" if pom == POM else pom.parent.name
    libs = cache / f"{name}-{pinned_version(pom)}-{digest}" / "libs"
    if (libs / ".complete").exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (mvn) is needed to fetch Apache Kafka's jars")
    partial = libs.with_name("libs.partial")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"fetching the jars of {pom} with Maven into {libs}", file=sys.stderr, flush=True)
    done = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={partial}"],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mvn exited with {done.returncode}:\n{done.stdout}{done.stderr}")
    (partial / ".complete").touch()
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    return libs


def free_port() -> int:
    """A loopback port free at this moment (Kafka's controller needs its port before it binds)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class KafkaPeer:
    """One single-node KRaft Apache Kafka on free loopback ports, in ``work_dir``.

    ``settings`` are added to (and override) ``SERVER_SETTINGS``. ``quick_jit`` stops the JIT at
    its first tier (C1): the JVM starts sooner and runs slower, the tests' choice; benchmarks
    pass False for the JVM's default (C2 as well)."""

    def __init__(
        self,
        work_dir: Path,
        *,
        settings: Mapping[str, str] | None = None,
        heap: str = "512m",
        start_timeout: float = 120.0,
        quick_jit: bool = True,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.settings = {**SERVER_SETTINGS, **(settings or {})}
        self.heap = heap
        self.start_timeout = start_timeout
        self.quick_jit = quick_jit
        self.host = "127.0.0.1"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.work_dir / "server.log"
        self.stdout_path = self.work_dir / "kafka.out"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def _java(self, libs: Path, main: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("Java is needed to run Apache Kafka")
        jit = ["-XX:TieredStopAtLevel=1"] if self.quick_jit else []
        return [
            java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC", *jit,
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={self.work_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.work_dir}", "-cp", f"{libs}/*", main, *args,
        ]

    def _configure(self) -> Path:
        self.port, controller_port = free_port(), free_port()
        settings = {
            **self.settings,
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.quorum.bootstrap.servers": f"{self.host}:{controller_port}",
            "log.dirs": str(self.work_dir / "data"),
        }
        config = self.work_dir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        (self.work_dir / "log4j2.properties").write_text(LOG4J2.format(log=self.log_path))
        return config

    def start(self) -> KafkaPeer:
        """Fetch (first time), format, start; return once the broker accepts connections."""
        assert self.proc is None or self.proc.poll() is not None, "Kafka already running"
        libs = fetch_jars()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.work_dir / "data", ignore_errors=True)
        config = self._configure()
        cluster_id = _kafka_uuid()
        with open(self.stdout_path, "ab") as out:
            subprocess.run(
                self._java(libs, "kafka.tools.StorageTool", "format", "--config", str(config),
                           "--cluster-id", cluster_id, "--standalone", "--ignore-formatted"),
                check=True, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120,
            )
            self.proc = subprocess.Popen(
                self._java(libs, "kafka.Kafka", str(config)),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, process_group=0,
            )
        try:
            wait_until(self._ready, timeout=self.start_timeout, interval=0.2, what="Apache Kafka to start")
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"Kafka exited with {self.proc.returncode} during start; see {self.stdout_path}"
                               f" and {self.log_path}:\n{self.output()[-4000:]}")
        if READY_LINE not in self.output():
            return False
        try:
            socket.create_connection((self.host, self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def output(self) -> str:
        text = ""
        for path in (self.stdout_path, self.log_path):
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a controlled shutdown), SIGKILL if it takes longer than ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> KafkaPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _kafka_uuid() -> str:
    """A random cluster id as Kafka writes one: 16 bytes, URL-safe base64 without padding, never
    starting with "-" (Kafka's Uuid.randomUuid draws again then: kafka-storage would read such an
    id as an option, and the peer failed to start about once in 64 runs)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _run(peer: KafkaPeer, command: list[str]) -> int:
    env = dict(os.environ, TOMYUM_TEST_BOOTSTRAP=peer.bootstrap, TOMYUM_TEST_PEER="kafka")
    child = subprocess.Popen(command, env=env)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.wait(timeout=60)  # the terminal's Ctrl-C reached the child too: let it finish
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kafka_peer", description="Apache Kafka as a test peer")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("fetch", help="fetch the pinned Kafka's jars and print their directory")
    sub.add_parser("serve", help="run one broker in the foreground until Ctrl-C")
    run = sub.add_parser("run", help="start a broker, run a command against it, stop the broker")
    run.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.action == "fetch":
        print(fetch_jars())
        return 0
    command = [c for c in getattr(args, "command", []) if c != "--"]
    # a SIGTERM to this process stops the broker as Ctrl-C does (the broker has its own group)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="kafka-peer-") as tmp:
        started = time.monotonic()
        with KafkaPeer(Path(tmp)) as peer:
            print(f"Apache Kafka {pinned_version()} accepting connections on {peer.bootstrap}"
                  f" (started in {time.monotonic() - started:.1f}s; log {peer.log_path})", flush=True)
            if args.action == "run":
                return _run(peer, command)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
            return 0


if __name__ == "__main__":
    sys.exit(main())
