"""``tomyum demo``: each demo end to end in a subprocess, with its own broker or against one
given by --bootstrap; its summary shows the lesson; Ctrl-C stops every process it started."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tomyum.testing import BrokerProcess, ExternalBroker, wait_until

SRC = Path(__file__).resolve().parents[2] / "src"
TIMEOUT = 90


def demo_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1")


def start_demo(*args: str) -> subprocess.Popen[str]:
    """The demo in a session of its own, as at a terminal: it and its programs in one process
    group (its embedded broker in another)."""
    return subprocess.Popen([sys.executable, "-m", "tomyum", "demo", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=demo_env(), start_new_session=True)


def finish(proc: subprocess.Popen[str]) -> str:
    """The rest of the demo's output once it exits; if it does not in time, SIGTERM (it then
    stops its programs and broker), and SIGKILL for what is left."""
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
        return out
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        raise


def process_group_gone(pgid: int) -> bool:
    """Whether no process of process group ``pgid`` is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def demo(*args: str) -> str:
    proc = start_demo(*args, "--messages", "20")
    out = finish(proc)
    assert proc.returncode == 0, f"demo {args} exited {proc.returncode}:\n{out}"
    return out


def test_consumer_groups() -> None:
    out = demo("consumer-groups")
    assert "▶ broker: tomyum serve on 127.0.0.1:" in out
    assert "group A received 20/20, group B received 20/20" in out


def test_partitions() -> None:
    out = demo("partitions")
    summary = re.search(r"consumer 1: partition (\d), 10 messages · consumer 2: partition (\d), 10 messages", out)
    assert summary, out
    assert {summary.group(1), summary.group(2)} == {"0", "1"}


def test_streams() -> None:
    out = demo("streams")
    assert "processor transformed 20/20 · consumer received 20/20, 20 upper-cased" in out


def test_against_a_running_broker(broker: BrokerProcess | ExternalBroker) -> None:
    out = demo("consumer-groups", "--bootstrap", broker.bootstrap)
    assert "▶ broker:" not in out
    assert "group A received 20/20, group B received 20/20" in out


def test_ctrl_c_stops_everything() -> None:
    """A Ctrl-C reaches the demo and its programs (one process group, as at a terminal); the
    embedded broker, in a group of its own, is stopped last; nothing is left running."""
    if os.environ.get("TOMYUM_TEST_BOOTSTRAP"):
        pytest.skip("starts its own broker")
    proc = start_demo("streams", "--messages", "10000")
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "HELLO TOMYUM #2 " in line:
            os.killpg(proc.pid, signal.SIGINT)
            break
    rest = finish(proc)
    out = "".join(lines) + rest
    assert proc.returncode == 130, out
    assert "stopped early: interrupted" in out
    assert re.search(r"consumer · carol │ disconnected", out), out
    wait_until(lambda: process_group_gone(proc.pid), timeout=10, what="the demo's programs to exit")
    address = re.search(r"▶ broker: tomyum serve on ([\d.]+):(\d+)", out)
    assert address, out
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address.group(1), int(address.group(2))), timeout=5).close()
