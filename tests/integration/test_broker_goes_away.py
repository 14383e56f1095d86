"""Consumers whose broker goes away, under a pseudo-terminal as a user runs them: ``tomyum
consume`` and ``examples/consumer.py`` say so in one line (librdkafka's own log never printed
raw), keep waiting, and on Ctrl-C exit within 2 s, with no traceback and no process left."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import pexpect
import pytest

from tests.integration.test_cli import _env, ok
from tomyum.testing import BrokerProcess, wait_until

ROOT = Path(__file__).resolve().parents[2]
EXIT_WITHIN_S = 2.0


def spawn(*args: str) -> pexpect.spawn:
    env = _env({"PYTHONUNBUFFERED": "1", "COLUMNS": "120"})
    return pexpect.spawn(sys.executable, list(args), env=env, encoding="utf-8", timeout=30, cwd=str(ROOT))


def interrupt_and_finish(child: pexpect.spawn) -> str:
    """Ctrl-C, as a terminal sends it; the output until exit, which must come within 2 s."""
    began = time.monotonic()
    child.sendintr()
    child.expect(pexpect.EOF, timeout=10)
    took = time.monotonic() - began
    child.close()
    assert took < EXIT_WITHIN_S, f"exit took {took:.1f}s:\n{child.before}"
    out = child.before or ""
    assert "Traceback" not in out and "Error:" not in out, out
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)
    return out


@pytest.fixture
def own_broker(tmp_path: Path) -> BrokerProcess:
    if os.environ.get("TOMYUM_TEST_BOOTSTRAP"):
        pytest.skip("stops its broker")
    return BrokerProcess(tmp_path / "data", settings={"group.initial.rebalance.delay.ms": "0"})


def test_tomyum_consume_in_a_group_when_the_broker_goes(own_broker: BrokerProcess, topic_name: str) -> None:
    with own_broker as broker:
        ok("produce", topic_name, "-b", broker.bootstrap, input="one\n")
        child = spawn("-m", "tomyum", "consume", topic_name, "-g", f"g-{uuid.uuid4().hex[:8]}", "-b", broker.bootstrap)
        child.expect_exact("one")
    child.expect_exact(f"the broker at {broker.bootstrap} is gone (connection refused); waiting for it to come back "
                       "(Ctrl-C to stop)", timeout=30)
    out = interrupt_and_finish(child)
    assert "FAIL" not in out and "rdkafka" not in out, out
    assert "consumed 1 record" in out


@pytest.mark.slow
def test_example_consumer_when_the_broker_goes(own_broker: BrokerProcess, topic_name: str) -> None:
    with own_broker as broker:
        ok("produce", topic_name, "-b", broker.bootstrap, input="hello\n")
        child = spawn(str(ROOT / "examples" / "consumer.py"), "group-a", "alice", "--topic", topic_name,
                      "--bootstrap", broker.bootstrap)
        child.expect_exact("hello")
    child.expect("Connection refused", timeout=30)
    try:
        child.expect("Connection refused", timeout=3)
        pytest.fail("librdkafka's connection failure printed more than once")
    except pexpect.TIMEOUT:
        pass
    interrupt_and_finish(child)


def test_tomyum_produce_at_a_terminal_prompts_and_sends_each_line_at_once(own_broker: BrokerProcess,
                                                                          topic_name: str) -> None:
    with own_broker as broker:
        child = spawn("-m", "tomyum", "produce", topic_name, "-K:", "-b", broker.bootstrap)
        child.expect_exact("type records, one per line; Ctrl-D to finish, Ctrl-C to stop")
        child.expect_exact(f"{topic_name}> ")
        child.sendline("k1:hello")
        child.expect_exact(f"{topic_name}> ")
        # sent as typed, before the input ends
        assert ok("consume", topic_name, "--from", "beginning", "-n", "1", "--format", "kv",
                  "-b", broker.bootstrap) == "k1\thello\n"
        child.sendline("k2:world")
        child.expect_exact(f"{topic_name}> ")
        child.sendeof()
        child.expect(pexpect.EOF)
        child.close()
    out = child.before or ""
    assert child.exitstatus == 0, out
    assert "produced 2 records to " + topic_name in out
    assert "Traceback" not in out


def test_tomyum_produce_at_a_terminal_says_at_once_when_the_broker_goes(own_broker: BrokerProcess,
                                                                        topic_name: str) -> None:
    """Without waiting for the input to end: one line as soon as the broker is gone; what is typed
    then waits; Ctrl-C exits within 2 s and says how many records did not leave."""
    with own_broker as broker:
        child = spawn("-m", "tomyum", "produce", topic_name, "-b", broker.bootstrap)
        child.expect_exact(f"{topic_name}> ")
        child.sendline("one")
        child.expect_exact(f"{topic_name}> ")
        wait_until(lambda: ok("consume", topic_name, "--from", "beginning", "-n", "1", "-b", broker.bootstrap),
                   timeout=30, what="the first record to be delivered")
    child.expect_exact(f"the broker at {broker.bootstrap} is gone (connection refused); what you type waits for "
                       "it to come back", timeout=30)
    child.expect_exact(f"{topic_name}> ")
    child.sendline("two")
    child.expect_exact(f"{topic_name}> ")
    out = interrupt_and_finish(child)
    assert f"error: 1 record was not delivered to '{topic_name}' within 1.5s (1 delivered)" in out, out
