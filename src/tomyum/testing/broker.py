"""A real tomyum broker in a child process, for integration tests and benchmarks.

The broker is started with ``python -m tomyum serve --listen 127.0.0.1:0`` and found by
the one line it prints when it accepts connections. Its output goes to a log file (never a
pipe that could fill up). Every wait is bounded by a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

READY = re.compile(r"accepting connections on (\w+)://([^\s,]+):(\d+)")
#: what a broker must never print: a coroutine never awaited, a task's exception nobody
#: retrieved, an exception raised where nothing could catch it, a warning from tomyum's code
NEVER_IN_LOG = re.compile(r"was never awaited|Task exception was never retrieved|Exception ignored in"
                          r"|/tomyum/\S+\.py:\d+: \w*Warning")


def wait_until(
    predicate: Callable[[], T | None | bool],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; raise TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class BrokerProcess:
    """Start, kill and restart a tomyum broker process on an ephemeral loopback port.

    The port is chosen by the first start (``--listen 127.0.0.1:0``) and reused by every
    restart, so that clients can reconnect to the same bootstrap address.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        settings: dict[str, str] | None = None,
        extra_args: Sequence[str] = (),
        start_timeout: float = 30.0,
        own_process_group: bool = False,
    ) -> None:
        """``own_process_group``: start the broker in a process group of its own, so that a
        Ctrl-C at the terminal does not reach it and its owner decides when it stops."""
        self.data_dir = Path(data_dir)
        self.own_process_group = own_process_group
        self.settings = dict(settings or {})
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.port = 0
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.broker.log"
        self._log_offset = 0

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "tomyum", "serve", "--data-dir", str(self.data_dir)]
        if "listeners" not in self.settings:  # listeners of its own: the first is the bootstrap
            cmd += ["--listen", f"{self.host}:{self.port}"]
        for key, value in self.settings.items():
            cmd += ["--set", f"{key}={value}"]
        return cmd + self.extra_args

    def start(self) -> BrokerProcess:
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self._log_offset = log.tell()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            process_group=0 if self.own_process_group else None,
        )
        log.close()

        def ready() -> re.Match[str] | None:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"broker exited with {self.proc.returncode} during start:\n{self.output()}"
                )
            return READY.search(self.output())

        match = wait_until(ready, timeout=self.start_timeout, what="broker start")
        self.port = int(match.group(3))
        return self

    def output(self) -> str:
        """Everything the current broker process has written to its log so far."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no flush, no clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code. Raises AssertionError if
        the broker's output shows a bug that no response did (see ``NEVER_IN_LOG``)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise
            self.check_output()
        return self.proc.returncode

    def check_output(self) -> None:
        """Fail if the output of the current process shows ``NEVER_IN_LOG``."""
        bad = [line for line in self.output().splitlines() if NEVER_IN_LOG.search(line)]
        if bad:
            raise AssertionError(f"the broker's log ({self.log_path}) shows a bug:\n" + "\n".join(bad[:10]))

    def restart(self) -> BrokerProcess:
        self.stop()
        return self.start()

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.kill()


class ExternalBroker:
    """A broker someone else runs (``TOMYUM_TEST_BOOTSTRAP=host:port``): no restart, no kill."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.host, _, port = bootstrap.rpartition(":")
        self.port = int(port)

    def output(self) -> str:
        return ""
