"""Every way a ``tomyum`` command can fail, end to end (subprocess, captured output): one
``error:`` line in the CLI's words, fast when the answer is known at once, and never Python's
own text (a traceback, an exception class, ``[Errno N]``, ``invalid literal``, a repr)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_cli import RUN_TIMEOUT, _env, free_port, ok, tomyum_cmd
from tomyum.testing import BrokerProcess

# What only Python, never the CLI, says
PYTHON_TEXT = re.compile(r"Error:|Traceback|Errno|invalid literal|object at|<[\w.]+[ >]|Value error|Input should")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    if os.environ.get("TOMYUM_TEST_BOOTSTRAP"):
        pytest.skip("needs a broker of its own (its data dir and port)")
    with BrokerProcess(tmp_path_factory.mktemp("errors") / "data",
                       settings={"group.initial.rebalance.delay.ms": "0"}) as b:
        yield b


def one_error_line(args: list[str], code: int | None = None) -> str:
    proc = tomyum_cmd(*args)
    out = proc.stdout + proc.stderr
    assert not PYTHON_TEXT.search(out), (args, out)
    assert proc.returncode != 0, (args, out)
    if code is not None:
        assert proc.returncode == code, (args, proc.returncode, out)
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr)
    return lines[0]


def test_no_broker_is_known_at_once_and_says_what_to_do(topic_name: str) -> None:
    """Connection refused is known at once: no command waits its --timeout for it. The nine run
    side by side; a --timeout of 40 s leaves room for nine interpreters starting on a loaded
    2-core machine (22 s seen), and any command that waited would take at least 40 s."""
    dead = f"127.0.0.1:{free_port()}"
    commands = [["topics", "list"], ["topics", "describe", topic_name], ["topics", "create", topic_name],
                ["produce", topic_name], ["consume", topic_name], ["consume", topic_name, "-g", "g"],
                ["groups", "list"], ["groups", "describe", "g"], ["configs", "describe", "broker", "7"]]
    began = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "tomyum", *cmd, "--timeout", "40"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env({"TOMYUM_BOOTSTRAP": dead})) for cmd in commands]
    for cmd, proc in zip(commands, procs, strict=True):
        _, stderr = proc.communicate(timeout=RUN_TIMEOUT)
        assert proc.returncode == 1, (cmd, stderr)
        assert stderr == f"error: nothing answers at {dead} (connection refused): start one with 'tomyum start', " \
                         "or name another with --bootstrap HOST:PORT\n", (cmd, stderr)
    assert time.monotonic() - began < 40, "a command waited for its timeout"


def test_no_such_broker_is_said_at_once(broker: BrokerProcess) -> None:
    began = time.monotonic()
    assert one_error_line(["configs", "describe", "broker", "7", "-b", broker.bootstrap]) == \
        "error: there is no broker 7 (brokers: 1)"
    assert time.monotonic() - began < 5


@pytest.mark.slow  # over 9 s: make test-slow
def test_every_error_path_is_one_line_in_words(broker: BrokerProcess, tmp_path: Path, topic_name: str) -> None:
    b = ["-b", broker.bootstrap]
    ok("topics", "create", topic_name, "-p", "2", *b)
    dead = ["-b", f"127.0.0.1:{free_port()}"]
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    usage = [  # bad option values, missing arguments: exit 2
        ["topics", "create", "x", "-p", "abc"], ["topics", "create", "x", "-p", "0"], ["topics", "create"],
        ["topics", "alter", topic_name, "-p", "many"], ["topics", "list", "--colour"],
        ["produce", topic_name, "-p", "-1"], ["produce", topic_name, "-H", "novalue"],
        ["produce", topic_name, "--file", str(tmp_path / "missing")],
        ["consume", topic_name, "-n", "abc"], ["consume", topic_name, "-n", "0"], ["consume", topic_name, "--format", "yaml"],
        ["consume", topic_name, "--from", "yesterday"], ["consume", topic_name, "--timeout", "soon"],
        ["consume", topic_name, "-g", "g", "-p", "0"],
        ["groups", "describe"], ["groups", "reset-offsets", "g", "--to", "soon", "--all-topics"],
        ["groups", "reset-offsets", "g", "--to", "0"],
        ["configs", "describe", "group", "x"], ["configs", "describe", "broker", "default"],
        ["configs", "set", "topic", topic_name], ["configs", "set", "topic", topic_name, "=1"],
        ["serve", "--log-level", "LOUD", "--data-dir", str(tmp_path / "d0")],
        ["serve", "--event-loop", "trio", "--data-dir", str(tmp_path / "d0")],
        ["serve", "--data-dir", str(tmp_path / "d0"), "--set", "novalue"],
        ["serve", "--data-dir", str(tmp_path / "d0"), "--set", "num.partitions=many"],
        ["serve", "--data-dir", str(tmp_path / "d0"), "--set", "num.partition=3"],
        ["serve", "--data-dir", str(tmp_path / "d0"), "--create-topic", "x:y"],
        ["start", "--timeout", "never"], ["topicz"],
    ]
    for args in usage:
        one_error_line(args if args[0] in ("serve", "start", "topicz") else [*args, *b])
    failures = [  # missing topics and partitions, answers with an error, no broker: exit 1
        ["topics", "describe", "no-such-topic", *b], ["topics", "delete", "no-such-topic", *b],
        ["topics", "alter", topic_name, "-p", "1", *b], ["topics", "create", topic_name, *b],
        ["topics", "create", "y-" + topic_name, "-c", "retention.ms=soon", *b],
        ["consume", "no-such-topic", *b], ["consume", topic_name, "-p", "7", *b],
        ["produce", topic_name, "-p", "7", *b], ["groups", "describe", "no-such-group", *b],
        ["groups", "delete", "no-such-group", *b], ["configs", "describe", "topic", "no-such-topic", *b],
        ["configs", "set", "topic", topic_name, "retention.ms=soon", *b],
        ["configs", "set", "topic", topic_name, "no.such.key=1", *b],
        ["configs", "set", "broker", "listeners=PLAINTEXT://:1", *b],
        ["topics", "list", *dead], ["groups", "reset-offsets", "g", "--to", "0", "--all-topics", *dead],
        ["configs", "set", "broker", "message.max.bytes=1", *dead],
        ["stop", "--data-dir", str(tmp_path / "nothing-here")], ["stop", "--data-dir", str(a_file)],
    ]
    for args in failures:
        one_error_line(args, code=1)


def test_data_dir_and_port_problems_are_named(broker: BrokerProcess, tmp_path: Path) -> None:
    assert broker.proc is not None
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    port = free_port()
    cases = {
        ("start", "--data-dir", str(a_file), "--listen", f"127.0.0.1:{port}"):
            f"error: cannot use data dir {a_file}: file exists",
        ("start", "--data-dir", str(a_file / "sub"), "--listen", f"127.0.0.1:{port}"):
            f"error: cannot use data dir {a_file / 'sub'}: not a directory",
        ("serve", "--data-dir", str(a_file), "--listen", f"127.0.0.1:{port}"):
            f"error: cannot use data dir {a_file}: file exists",
        ("serve", "--data-dir", "/proc/tomyum-data", "--listen", f"127.0.0.1:{port}"):
            "error: cannot use data dir /proc/tomyum-data: no such file or directory",
        ("serve", "--data-dir", str(broker.data_dir), "--listen", f"127.0.0.1:{port}"):
            f"error: data dir {broker.data_dir} is in use by another broker (pid {broker.proc.pid}); "
            "stop it first or choose another --data-dir",
    }
    for args, expected in cases.items():
        assert one_error_line(list(args)).lower() == expected.lower()
    if os.getuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "permission denied" in one_error_line(["serve", "--data-dir", str(locked / "data")])

    in_use = f"error: cannot listen on {broker.bootstrap}: the address is in use (another broker? 'tomyum status', " \
             "or --listen HOST:PORT elsewhere; port 0 picks a free one)"
    assert one_error_line(["serve", "--data-dir", str(tmp_path / "d1"), "--listen", broker.bootstrap]) == in_use
    fresh = tmp_path / "fresh"
    line = one_error_line(["start", "--data-dir", str(fresh), "--listen", broker.bootstrap])
    assert line == in_use.replace("error: ", "error: the broker did not start: ")
    assert not fresh.exists(), "a failed start leaves no data dir it created behind"


def test_did_you_mean(broker: BrokerProcess, topic_name: str, tmp_path: Path) -> None:
    b = ["-b", broker.bootstrap]
    ok("topics", "create", topic_name, *b)
    typo = topic_name[:-1]
    for args in (["topics", "describe", typo], ["consume", typo], ["topics", "delete", typo],
                 ["configs", "describe", "topic", typo]):
        assert one_error_line([*args, *b]) == f"error: unknown topic {typo!r} (did you mean {topic_name!r}?)"
    assert one_error_line(["configs", "set", "topic", topic_name, "retention.msx=5", *b]).endswith(
        "(did you mean 'retention.ms'?)")
    assert one_error_line(["serve", "--data-dir", str(tmp_path / "d"), "--set", "num.partition=3"]) == \
        "error: num.partition: unknown config key (did you mean 'num.partitions'?)"
