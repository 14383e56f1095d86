"""Ctrl-C at a terminal, as a user presses it: the three demos and the README's command block run
under a pseudo-terminal and are interrupted at three moments each — while starting (before the
broker has answered, or while a group is being formed), mid-stream (while records are printed),
and right after the broker went away. Each time: exit within 2 s of the Ctrl-C, no Python
exception text, no process of the interrupted command left behind (its process group is empty).
"""

from __future__ import annotations

import io
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.integration.test_cli import _env, ok
from tests.integration.test_demos import process_group_gone
from tests.integration.test_readme import readme_commands
from tomyum.testing import BrokerProcess, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
EXIT_WITHIN_S = 2.0
PYTHON_ERRORS = re.compile(r"Traceback|Error:|Exception|KeyboardInterrupt|SystemError|Errno")
#: a line a demo prints for a message one of its consumers received
RECEIVED = re.compile(r"│ .*\(key .*, partition \d+, offset \d+\)")
DEMO_STARTS = {"consumer-groups": "▶ group A · alice", "partitions": "▶ consumer 1 · alice",
               "streams": "▶ processor"}
DEMOS = list(DEMO_STARTS)


@pytest.fixture
def broker_to_stop(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker the test may stop, whose groups form at once (as `make serve`'s)."""
    if os.environ.get("TOMYUM_TEST_BOOTSTRAP"):
        pytest.skip("stops its broker")
    broker = BrokerProcess(tmp_path / "data", settings={"group.initial.rebalance.delay.ms": "0"})
    with broker:
        yield broker


def spawn(command: str, bootstrap: str) -> pexpect.spawn:
    """``command`` run by bash in a new session on a pseudo-terminal (the terminal's foreground
    process group is bash's: Ctrl-C reaches it and everything it started, as at a prompt)."""
    env = _env({"PYTHONUNBUFFERED": "1", "COLUMNS": "120", "TOMYUM_BOOTSTRAP": bootstrap,
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])})
    child = pexpect.spawn("bash", ["-c", command], env=env, encoding="utf-8", timeout=60, cwd=str(ROOT),
                          dimensions=(40, 120))
    child.logfile_read = io.StringIO()
    return child


def interrupt(child: pexpect.spawn) -> str:
    """Ctrl-C through the terminal; everything the command printed. Fails unless it exits
    within 2 s, prints no Python exception text, and leaves no process of its group behind."""
    began = time.monotonic()
    child.sendintr()
    child.expect(pexpect.EOF, timeout=15)
    took = time.monotonic() - began
    child.close()
    assert isinstance(child.logfile_read, io.StringIO)
    out = child.logfile_read.getvalue()
    assert took < EXIT_WITHIN_S, f"exit took {took:.1f}s after Ctrl-C:\n{out}"
    assert not PYTHON_ERRORS.search(out), out
    wait_until(lambda: process_group_gone(child.pid), timeout=5, what="every process of the interrupted command to exit")
    return out


def demo(name: str, bootstrap: str) -> pexpect.spawn:
    return spawn(f"exec tomyum demo {name} --bootstrap {bootstrap} --messages 5000", bootstrap)


@pytest.mark.parametrize("name", DEMOS)
def test_a_demo_interrupted_while_starting(broker_to_stop: BrokerProcess, name: str) -> None:
    child = demo(name, broker_to_stop.bootstrap)
    child.expect_exact(DEMO_STARTS[name])
    out = interrupt(child)
    assert "stopped early: interrupted" in out
    assert child.exitstatus == 130 or child.signalstatus is not None, out


@pytest.mark.parametrize("name", DEMOS)
def test_a_demo_interrupted_mid_stream(broker_to_stop: BrokerProcess, name: str) -> None:
    child = demo(name, broker_to_stop.bootstrap)
    child.expect(RECEIVED)
    out = interrupt(child)
    assert "stopped early: interrupted" in out
    assert child.exitstatus == 130, out


@pytest.mark.parametrize("name", DEMOS)
def test_a_demo_interrupted_after_the_broker_went_away(broker_to_stop: BrokerProcess, name: str) -> None:
    child = demo(name, broker_to_stop.bootstrap)
    child.expect(RECEIVED)
    broker_to_stop.stop()
    out = interrupt(child)
    assert "stopped early: interrupted" in out
    assert child.exitstatus == 130, out


def readme_client_block() -> list[str]:
    return readme_commands()[1]


def test_each_readme_line_interrupted_while_starting(broker_to_stop: BrokerProcess) -> None:
    """Ctrl-C the moment each line starts: before it can have reached the broker (while Python
    starts, or while the client connects)."""
    for line in readme_client_block():
        child = spawn(line, broker_to_stop.bootstrap)
        interrupt(child)


def test_the_readme_consumer_interrupted_mid_stream(broker_to_stop: BrokerProcess) -> None:
    """The README's ``consume orders --from beginning`` without ``-n``, as a user who wants to
    follow the topic runs it, stopped while it prints."""
    ok("topics", "create", "orders", "-p", "2", "-b", broker_to_stop.bootstrap)
    ok("produce", "orders", "-K:", "-b", broker_to_stop.bootstrap,
       input="".join(f"k{i}:value {i}\n" for i in range(20_000)))
    [line] = [c for c in readme_client_block() if c.startswith("tomyum consume orders --from beginning")]
    child = spawn(line.split("#")[0].replace("-n 10", ""), broker_to_stop.bootstrap)
    child.expect(r"k\d+\tvalue \d+")
    interrupt(child)


def test_the_readme_group_consumer_interrupted_after_the_broker_went_away(broker_to_stop: BrokerProcess) -> None:
    """The README's ``consume orders -g billing`` following the topic (without ``--no-follow``),
    interrupted right after its broker stopped."""
    ok("produce", "orders", "-K:", "-b", broker_to_stop.bootstrap, input="k1:hello\nk2:world\n")
    [line] = [c for c in readme_client_block() if c.startswith("tomyum consume orders -g billing")]
    child = spawn(line.split("#")[0].replace("--no-follow", ""), broker_to_stop.bootstrap)
    child.expect_exact('"world"')
    broker_to_stop.stop()
    interrupt(child)
