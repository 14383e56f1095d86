"""A throwaway PostgreSQL server for tests: ``initdb`` + ``postgres`` from the Debian package
(``/usr/lib/postgresql/<version>/bin``, installed by ``make install-test``), on a free loopback
port, in a temp dir, with ``wal_level=logical`` so logical replication slots work.

PostgreSQL refuses to run as root; when the tests run as root the server runs as the
``postgres`` system user (created by the Debian package): the child processes switch to it. Every wait is
bounded; ``stop()`` (or leaving the ``with`` block) stops the server and removes its files.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tomyum.testing.kafka_peer import free_port

SUPERUSER = "tomyum"


def postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin dir, or None if PostgreSQL is not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """``with PostgresServer() as pg: pg.dsn("dbname")`` — a PostgreSQL on 127.0.0.1:``pg.port``
    whose superuser ``tomyum`` logs in without a password (trust on loopback only)."""

    def __init__(self, *, settings: dict[str, str] | None = None, start_timeout_s: float = 60.0) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (make install-test installs it)")
        self.bin_dir = bin_dir
        self.settings = {"wal_level": "logical", "max_replication_slots": "10", "max_wal_senders": "10",
                         "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                         "shared_buffers": "16MB", **(settings or {})}
        self.start_timeout_s = start_timeout_s
        self.port = 0
        self.work_dir = Path(tempfile.mkdtemp(prefix="tomyum-pg-"))
        self.data_dir = self.work_dir / "data"
        self._process: subprocess.Popen[bytes] | None = None
        self._as_user = "postgres" if os.getuid() == 0 else None

    def _user(self) -> dict[str, object]:
        """Popen's arguments that run the child as the ``postgres`` user when we are root."""
        return {"user": self._as_user, "group": self._as_user, "extra_groups": []} if self._as_user else {}

    def start(self) -> PostgresServer:
        if self._as_user:
            entry = pwd.getpwnam(self._as_user)
            os.chown(self.work_dir, entry.pw_uid, entry.pw_gid)
        subprocess.run([str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                        "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                       check=True, capture_output=True, timeout=120, cwd=self.work_dir,
                       **self._user())  # type: ignore[call-overload]
        for _ in range(5):  # a port free a moment ago may be taken by now: try another
            self.port = free_port()
            options = [f"-c{k}={v}" for k, v in self.settings.items()]
            log = open(self.work_dir / "postgres.log", "ab")  # noqa: SIM115 - closed with the process
            self._process = subprocess.Popen(  # type: ignore[call-overload]
                [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                 "-h", "127.0.0.1", "-k", str(self.work_dir), *options],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.work_dir, **self._user())
            log.close()
            if self._wait_ready():
                return self
            self._terminate()
        raise RuntimeError(f"PostgreSQL did not start: {(self.work_dir / 'postgres.log').read_text()[-2000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                return False
            ready = subprocess.run([str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                                    "-U", SUPERUSER, "-d", "postgres", "-t", "1"],
                                   capture_output=True, timeout=10)
            if ready.returncode == 0:
                return True
            time.sleep(0.05)
        return False

    def _terminate(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown: clients disconnected
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = None

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={dbname}"

    def create_database(self, dbname: str) -> str:
        """Create ``dbname`` and return its DSN."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        return self.dsn(dbname)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
