"""The ``tomyum`` command end to end: every command as a subprocess against a real broker,
its output and exit code, error cases included (one ``error:`` line, never a traceback), and
``start``/``status``/``stop`` of a background broker on an ephemeral port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tomyum
from tomyum.testing import BrokerProcess, wait_until

SRC = str(Path(tomyum.__file__).resolve().parents[1])
RUN_TIMEOUT = 60


def tomyum_cmd(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tomyum", *args], input=input, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, env=_env(env))


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TOMYUM_BOOTSTRAP", "TOMYUM_TIMEOUT")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
    return {**env, **(extra or {})}


def ok(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
    proc = tomyum_cmd(*args, input=input, env=env)
    assert proc.returncode == 0, f"tomyum {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc.stdout


def fails(*args: str, code: int = 1, input: str | None = None) -> str:
    """Runs a command that must fail with ``code`` and one ``error:`` line; returns that line."""
    proc = tomyum_cmd(*args, input=input)
    assert proc.returncode == code, f"exit {proc.returncode}, stdout {proc.stdout!r}, stderr {proc.stderr!r}"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def rows(output: str) -> list[list[str]]:
    """A table's rows (header first) as lists of cells."""
    return [line.split() for line in output.splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One broker for the module's tests (each uses its own topics and groups)."""
    external = os.environ.get("TOMYUM_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    settings = {"group.initial.rebalance.delay.ms": "0"}  # groups form at once
    with BrokerProcess(tmp_path_factory.mktemp("cli") / "data", settings=settings) as broker:
        yield broker.bootstrap


@pytest.fixture
def group() -> str:
    return f"g-{uuid.uuid4().hex[:10]}"


@pytest.mark.slow
def test_topics_create_list_describe_alter_delete(bootstrap: str, topic_name: str) -> None:
    b = ["-b", bootstrap]
    assert ok("topics", "create", topic_name, "-p", "3", "-c", "retention.ms=3600000", *b) == \
        f"created topic {topic_name} with 3 partitions\n"
    assert [topic_name, "3", "1"] in rows(ok("topics", "list", *b))
    assert "__consumer_offsets" not in ok("topics", "list", *b)

    described = rows(ok("topics", "describe", topic_name, *b))
    assert described[0] == ["topic", f"{topic_name}:", "3", "partitions,", "replication", "1"]
    assert described[1] == ["PARTITION", "LEADER", "REPLICAS", "ISR", "LOW", "HIGH"]
    assert [r[0] for r in described[2:5]] == ["0", "1", "2"] and all(r[4:6] == ["0", "0"] for r in described[2:5])
    assert ["retention.ms", "3600000", "dynamic", "topic"] in described
    assert "segment.bytes" not in ok("topics", "describe", topic_name, *b)
    assert "segment.bytes" in ok("topics", "describe", topic_name, "--all", *b)

    out = ok("topics", "alter", topic_name, "-p", "5", "-c", "cleanup.policy=compact", "--delete-config",
             "retention.ms", *b)
    assert f"topic {topic_name} now has 5 partitions (was 3)" in out
    assert f"updated topic '{topic_name}': cleanup.policy=compact, retention.ms (back to default)" in out
    def altered() -> bool:
        described = ok("topics", "describe", topic_name, *b)
        return "retention.ms" not in described and ["cleanup.policy", "compact", "dynamic", "topic"] in rows(described)
    # the change is committed when alter returns; Kafka's broker applies it a moment later
    wait_until(altered, 30, interval=0.2, what="the altered configs described")
    assert [topic_name, "5", "1"] in rows(ok("topics", "list", *b))

    assert ok("topics", "create", topic_name, "--if-not-exists", *b) == f"topic {topic_name} already exists\n"
    assert ok("topics", "delete", topic_name, *b) == f"deleted topic {topic_name}\n"
    assert topic_name not in ok("topics", "list", *b)
    assert ok("topics", "delete", topic_name, "--if-exists", *b) == ""


def test_topic_errors(bootstrap: str, topic_name: str) -> None:
    b = ["-b", bootstrap]
    ok("topics", "create", topic_name, "-p", "2", *b)
    assert "TOPIC_ALREADY_EXISTS" in fails("topics", "create", topic_name, *b)
    invalid = fails("topics", "create", "other-" + topic_name, "-c", "retention.ms=soon", *b)
    assert "retention.ms" in invalid and "INVALID_CONFIG" in invalid
    assert fails("topics", "create", "x", "-c", "retention.ms", *b, code=2) == \
        "error: --config: 'retention.ms' is not key=value"
    assert fails("topics", "describe", "no-such-topic", *b) == "error: unknown topic 'no-such-topic'"
    assert fails("topics", "delete", "no-such-topic", *b) == "error: unknown topic 'no-such-topic'"
    assert "can only raise" in fails("topics", "alter", topic_name, "-p", "1", *b)
    assert "nothing to alter" in fails("topics", "alter", topic_name, *b, code=2)
    assert "--partitions: expected a whole number" in fails("topics", "create", topic_name, "-p", "many", *b, code=2)
    assert "name the topic: TOPIC or --topic TOPIC" in fails("topics", "create", *b, code=2)
    assert "No such command" in fails("topicz", code=2)


def test_produce_and_consume(bootstrap: str, topic_name: str) -> None:
    b = ["-b", bootstrap]
    ok("topics", "create", topic_name, "-p", "2", *b)
    out = ok("produce", topic_name, "-K", ":", "-H", "source=cli", "-H", "n=1", *b,
             input="k1:hello\nk2:world\nk1:again\n")
    assert out == f"produced 3 records to {topic_name}\n"
    everything = ["--from", "beginning", "--no-follow", *b]

    assert sorted(ok("consume", topic_name, *everything).split("\n")) == ["", "again", "hello", "world"]
    assert sorted(ok("consume", topic_name, *everything, "--format", "kv", "-K", "=").splitlines()) == \
        ["k1=again", "k1=hello", "k2=world"]
    records = [json.loads(line) for line in ok("consume", topic_name, *everything, "--format", "json").splitlines()]
    assert {(r["key"], r["value"]) for r in records} == {("k1", "hello"), ("k2", "world"), ("k1", "again")}
    first = next(r for r in records if r["value"] == "hello")
    assert first["topic"] == topic_name and first["offset"] == 0 and first["timestamp_type"] == "create"
    assert first["headers"] == [["source", "cli"], ["n", "1"]] and abs(first["timestamp"] / 1000 - time.time()) < 300
    partition = first["partition"]
    in_order = [r["value"] for r in sorted(records, key=lambda r: r["offset"]) if r["partition"] == partition]
    assert in_order[-1] == "again", "k1's records share a partition"

    assert ok("consume", topic_name, "-p", str(partition), "--from", "1", "--no-follow", *b) == \
        "".join(v + "\n" for v in in_order[1:])
    assert ok("consume", topic_name, "-p", str(partition), "--from", "-1", "--no-follow", *b) == "again\n"
    assert len(ok("consume", topic_name, "-n", "2", "--from", "beginning", *b).splitlines()) == 2
    assert ok("consume", topic_name, "--no-follow", *b) == ""  # the end by default
    assert ok("consume", topic_name, "--from", f"@{int(time.time() * 1000) + 3_600_000}", "--no-follow", *b) == ""
    assert len(ok("consume", topic_name, "--from", "2000-01-01T00:00:00+00:00", "--no-follow", *b).splitlines()) == 3
    proc = tomyum_cmd("consume", topic_name, "-n", "1", "--from", "beginning", *b)
    assert proc.stderr == "consumed 1 record\n"


def test_produce_a_file_as_json_to_one_partition(bootstrap: str, topic_name: str, tmp_path: Path) -> None:
    b = ["-b", bootstrap]
    ok("topics", "create", topic_name, "-p", "2", *b)
    lines = tmp_path / "values.jsonl"
    lines.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(1000)))
    assert ok("produce", topic_name, "--file", str(lines), "--json", "-p", "1", *b) == \
        f"produced 1000 records to {topic_name}\n"
    described = rows(ok("topics", "describe", topic_name, *b))
    assert described[2][4:6] == ["0", "0"] and described[3][4:6] == ["0", "1000"]
    consumed = ok("consume", topic_name, "-p", "1", "--from", "-2", "--no-follow", *b)
    assert consumed == '{"n": 998}\n{"n": 999}\n'

    assert fails("produce", topic_name, "--json", *b, input='{"n": 1}\nnot json\n{"n": 2}\n').startswith(
        "error: line 2 is not JSON: Expecting value")
    assert fails("produce", topic_name, "-K", ":", *b, input="k:v\nno separator\n") == \
        "error: line 2 has no key separator ':'; the 1 record before it were produced"
    assert fails("produce", topic_name, "-p", "7", *b, input="x\n") == \
        f"error: topic '{topic_name}' has no partition 7 (it has 2)"
    assert "does not exist" in fails("produce", topic_name, "--file", str(tmp_path / "missing"), *b, code=2)


def test_consume_follows_in_a_group_until_interrupted(bootstrap: str, topic_name: str, group: str,
                                                       tmp_path: Path) -> None:
    b = ["-b", bootstrap]
    ok("topics", "create", topic_name, "-p", "2", *b)
    ok("produce", topic_name, *b, input="one\ntwo\n")
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        consumer = subprocess.Popen([sys.executable, "-m", "tomyum", "consume", topic_name, "-g", group,
                                     "--from", "beginning", *b], stdout=stdout, stderr=stderr, env=_env())
    try:
        wait_until(lambda: out.read_text().count("\n") == 2, 30, interval=0.1, what="the first two records")
        ok("produce", topic_name, *b, input="three\n")
        wait_until(lambda: "three" in out.read_text(), 30, interval=0.1, what="a record produced while following")

        described = ok("groups", "describe", group, *b)
        assert f"group {group}: stable, classic, 1 member" in described
        assert "tomyum-cli" in described and f"{topic_name}:0,1" in described  # members: client id, assignment
        assert "active members" in fails("groups", "reset-offsets", group, "--to", "earliest", "--all-topics", *b)
        assert "NON_EMPTY_GROUP" in fails("groups", "delete", group, *b)
    finally:
        consumer.send_signal(signal.SIGINT)
        assert consumer.wait(RUN_TIMEOUT) == 0
    assert sorted(out.read_text().splitlines()) == ["one", "three", "two"]
    assert err.read_text() == "consumed 3 records\n"

    table = rows(ok("groups", "describe", group, *b))
    assert table[0][:3] == ["group", f"{group}:", "empty,"]
    offsets = [r for r in table if r[0] == topic_name]
    assert sum(int(r[2]) for r in offsets) == 3 and all(r[4] == "0" for r in offsets)  # committed, no lag
    assert [group, "empty", "classic"] in rows(ok("groups", "list", *b))


def test_groups_reset_offsets_and_delete(bootstrap: str, topic_name: str, group: str) -> None:
    b = ["-b", bootstrap]
    ok("topics", "create", topic_name, "-p", "2", *b)
    ok("produce", topic_name, "-p", "0", *b, input="a\nb\nc\nd\n")
    ok("produce", topic_name, "-p", "1", *b, input="e\nf\n")
    assert len(ok("consume", topic_name, "-g", group, "--from", "beginning", "--no-follow", *b).splitlines()) == 6

    dry = rows(ok("groups", "reset-offsets", group, "--to", "earliest", "--all-topics", "--dry-run", *b))
    assert dry == [["TOPIC", "PARTITION", "COMMITTED", "NEW"], [topic_name, "0", "4", "0"],
                   [topic_name, "1", "2", "0"],
                   ["nothing", "changed:", "this", "is", "a", "preview", "(--execute", "changes", "the", "offsets)"]]
    lag = [r[4] for r in rows(ok("groups", "describe", group, *b)) if r[0] == topic_name]
    assert lag == ["0", "0"]

    out = ok("groups", "reset-offsets", group, "--to", "1", "--topic", f"{topic_name}:0","--execute", *b)
    assert [topic_name, "0", "4", "1"] in rows(out) and f"reset offsets of group {group} on 1 partition" in out
    assert ok("consume", topic_name, "-g", group, "--no-follow", *b).splitlines() == ["b", "c", "d"]
    out = ok("groups", "reset-offsets", group, "--to", "-1", "--topic", topic_name,"--execute", *b)
    assert [topic_name, "0", "4", "3"] in rows(out) and [topic_name, "1", "2", "1"] in rows(out)
    out = ok("groups", "reset-offsets", group, "--to", "2000-01-01", "--topic", topic_name,"--execute", *b)
    assert [topic_name, "0", "3", "0"] in rows(out) and [topic_name, "1", "1", "0"] in rows(out)
    out = ok("groups", "reset-offsets", group, "--to", "99", "--topic", topic_name,"--execute", *b)
    assert [topic_name, "0", "0", "4"] in rows(out), "an offset past the end is clamped to it"

    assert "--all-topics" in fails("groups", "reset-offsets", group, "--to", "earliest", *b, code=2)
    assert "is not beginning, end" in fails("groups", "reset-offsets", group, "--to", "soon", "--all-topics", *b,
                                            code=2)
    assert fails("groups", "reset-offsets", group, "--to", "0", "--topic", f"{topic_name}:9", *b) == \
        f"error: topic '{topic_name}' has no partition 9 (it has 2)"

    assert ok("groups", "delete", group, *b) == f"deleted group {group}\n"
    assert fails("groups", "describe", group, *b) == f"error: unknown group '{group}'"
    assert "GROUP_ID_NOT_FOUND" in fails("groups", "delete", group, *b)


def test_configs_describe_and_set(bootstrap: str, topic_name: str) -> None:
    b = ["-b", bootstrap]
    ok("topics", "create", topic_name, *b)
    assert ok("configs", "set", "topic", topic_name, "retention.ms=60000", "max.message.bytes=5000", *b) == \
        f"updated topic '{topic_name}': retention.ms=60000, max.message.bytes=5000\n"
    described = rows(ok("configs", "describe", "topic", topic_name, *b))
    assert described[0] == ["NAME", "VALUE", "SOURCE"]
    assert ["max.message.bytes", "5000", "dynamic", "topic"] in described
    ok("configs", "set", "topic", topic_name, "--delete", "max.message.bytes", *b)
    assert "max.message.bytes" not in ok("configs", "describe", "topic", topic_name, *b)
    assert ["max.message.bytes", "1048588", "default"] in rows(ok("configs", "describe", "topic", topic_name,
                                                                  "--all", *b))

    assert "INVALID_CONFIG" in fails("configs", "set", "topic", topic_name, "retention.ms=soon", *b)
    assert "no.such.key" in fails("configs", "set", "topic", topic_name, "no.such.key=1", *b)
    assert fails("configs", "set", "topic", "no-such-topic", "retention.ms=1", *b) == \
        "error: unknown topic 'no-such-topic'"
    assert "nothing to change" in fails("configs", "set", "topic", topic_name, *b, code=2)
    assert "'queue'" in fails("configs", "describe", "queue", "x", *b, code=2)


@pytest.mark.skipif(bool(os.environ.get("TOMYUM_TEST_BOOTSTRAP")), reason="changes the broker's configs")
def test_broker_configs(bootstrap: str) -> None:
    b = ["-b", bootstrap]
    assert ["num.partitions", "1", "default"] in rows(ok("configs", "describe", "broker", "--all", *b))
    assert ok("configs", "set", "broker", "message.max.bytes=200000", *b) == \
        "updated broker '1': message.max.bytes=200000\n"
    assert ["message.max.bytes", "200000", "dynamic", "broker"] in rows(ok("configs", "describe", "broker", "1", *b))
    assert ok("configs", "set", "broker", "--delete", "message.max.bytes", *b) == \
        "updated broker '1': message.max.bytes (back to default)\n"
    assert "message.max.bytes" not in ok("configs", "describe", "broker", *b)
    assert "Cannot update these configs dynamically" in fails("configs", "set", "broker", "listeners=PLAINTEXT://:1",
                                                               *b)
    assert "is not a broker id" in fails("configs", "describe", "broker", "default", *b, code=2)


def test_unreachable_broker_is_one_line(topic_name: str) -> None:
    """Every client-side command, pointed at a port nobody listens on, fails fast in one line."""
    dead = f"127.0.0.1:{free_port()}"
    commands = [["topics", "list"], ["topics", "describe", topic_name], ["topics", "create", topic_name],
                ["topics", "delete", topic_name], ["topics", "alter", topic_name, "-p", "2"],
                ["produce", topic_name], ["consume", topic_name], ["groups", "list"], ["groups", "describe", "g"],
                ["groups", "reset-offsets", "g", "--to", "0", "--all-topics"], ["groups", "delete", "g"],
                ["configs", "describe", "broker"], ["configs", "set", "topic", topic_name, "retention.ms=1"]]
    procs = [subprocess.Popen([sys.executable, "-m", "tomyum", *cmd, "--timeout", "1"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env({"TOMYUM_BOOTSTRAP": dead}))
             for cmd in commands]
    for cmd, proc in zip(commands, procs, strict=True):
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
        assert proc.returncode == 1, (cmd, stdout, stderr)
        assert stderr == f"error: nothing answers at {dead} (connection refused): start one with 'tomyum start', " \
                         "or name another with --bootstrap HOST:PORT\n", (cmd, stderr)


def test_bootstrap_from_the_environment(bootstrap: str, topic_name: str) -> None:
    ok("topics", "create", topic_name, env={"TOMYUM_BOOTSTRAP": bootstrap})
    assert topic_name in ok("topics", "list", env={"TOMYUM_BOOTSTRAP": bootstrap})


def test_bad_arguments_are_one_line() -> None:
    assert "--count: must be at least 1" in fails("consume", "t", "--count", "0", code=2)
    assert "is not beginning, end" in fails("consume", "t", "--from", "yesterday", code=2)
    assert "--partition" in fails("consume", "t", "-g", "g", "-p", "0", code=2)
    assert fails("produce", "t", "-H", "novalue", code=2) == "error: --header: 'novalue' is not key=value"
    assert "No such option" in fails("topics", "list", "--colour", code=2)


def test_start_status_stop(tmp_path: Path, topic_name: str) -> None:
    data = tmp_path / "data"
    d = ["--data-dir", str(data)]
    address = f"127.0.0.1:{free_port()}"
    try:
        out = ok("start", "--listen", address, *d)
        assert out.startswith(f"tomyum {tomyum.__version__} started (pid ") and f"on {address};" in out
        pid = int((data / "tomyum.pid").read_text())
        assert _running(pid)
        assert f"(pid {pid} on {address})" in fails("start", "--listen", address, *d)

        ok("topics", "create", topic_name, "-b", address)
        status = ok("status", *d)
        assert status.startswith(f"tomyum {tomyum.__version__} is running (pid {pid})")
        assert f"address   {address}" in status and f"topics    1: {topic_name}" in status
        assert f"data dir  {data}" in status and "uptime" in status

        assert ok("stop", *d).startswith(f"stopped the broker (pid {pid}) in ")
        assert not _running(pid), "no broker process remains"
        assert not (data / "tomyum.pid").exists()
    finally:
        if (data / "tomyum.pid").exists():
            os.kill(int((data / "tomyum.pid").read_text()), signal.SIGKILL)
    status = tomyum_cmd("status", *d)
    assert status.returncode == 3 and status.stdout == f"tomyum is not running from {data}\n"
    assert fails("stop", *d) == f"error: no tomyum broker is running from {data}"
    assert "did not start: no.such.key: unknown config key" in fails("start", "--set", "no.such.key=1", *d)
    assert not (data / "tomyum.pid").exists()


def test_a_stale_pid_file_is_handled(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    d = ["--data-dir", str(data)]
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(RUN_TIMEOUT)
    (data / "tomyum.pid").write_text(f"{gone.pid}\n")
    status = tomyum_cmd("status", *d)
    assert status.returncode == 3 and f"a stale pid file names pid {gone.pid}" in status.stdout
    try:
        out = ok("start", "--listen", "127.0.0.1:0", *d)
        assert f"removed a stale pid file (pid {gone.pid})" in out
    finally:
        stopped = tomyum_cmd("stop", *d)
    assert stopped.returncode == 0, stopped.stderr
    (data / "tomyum.pid").write_text(f"{gone.pid}\n")
    assert fails("stop", *d) == \
        f"error: no tomyum broker is running from {data} (removed a stale pid file for pid {gone.pid})"
    assert not (data / "tomyum.pid").exists()


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie awaiting its reaper is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")
