"""docs/security.md as it is written: every ``sh`` block is marked ``<!-- run -->`` and runs,
in order, against the broker its first block starts (on free ports instead of 9092 and 9093);
each command prints what the doc says it prints (``...`` standing for anything)."""

from __future__ import annotations

import random
import re
import shlex
import socket
from pathlib import Path

import pytest

from tests.integration.test_cli import tomyum_cmd

pytestmark = pytest.mark.timeout(180)
DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
BLOCK = re.compile(r"(?P<marker><!-- run -->\n)?```sh\n(?P<body>.*?)```", re.S)


def steps(text: str) -> list[tuple[str, list[str]]]:
    """``(command, expected lines)`` of every ``sh`` block, in order."""
    out: list[tuple[str, list[str]]] = []
    for block in BLOCK.finditer(text):
        assert block["marker"], f"a sh block of {DOC.name} is not marked <!-- run -->: {block['body'][:60]!r}"
        for line in block["body"].splitlines():
            if line.startswith("$ "):
                out.append((line[2:], []))
            elif line.strip():
                out[-1][1].append(line)
    return out


def matches(expected: str, actual: str) -> bool:
    return re.fullmatch(".*".join(re.escape(part) for part in expected.split("...")), actual.rstrip()) is not None


def free_port_pair() -> int:
    """A port P with P and P + 1 both free, below Linux's ephemeral range (32768-60999), so that no
    client's outgoing connection nor another test's port 0 can take P + 1 before the broker binds it."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32766)
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise AssertionError("no two consecutive free ports between 20000 and 32767")


def test_every_command_of_the_security_guide_runs_and_prints_what_it_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port_pair()
    ports = {"localhost:9092": f"127.0.0.1:{port}", "localhost:9093": f"127.0.0.1:{port + 1}"}
    monkeypatch.chdir(tmp_path)
    started = False
    try:
        for command, expected in steps(DOC.read_text()):
            for doc_address, address in ports.items():
                command = command.replace(doc_address, address)
                expected = [line.replace(doc_address, address) for line in expected]
            args = shlex.split(command)
            assert args[0] == "tomyum", command
            if args[1:3] == ["start", "--secure-dev"]:
                args += ["--listen", ports["localhost:9092"]]
            proc = tomyum_cmd(*args[1:])
            assert proc.returncode == 0, f"{command}: {proc.stderr}"
            started = (started or args[1] == "start") and args[1] != "stop"
            printed = [line for line in proc.stdout.splitlines() if line.strip()]
            assert len(printed) == len(expected), f"{command} printed {printed}, the doc says {expected}"
            for want, got in zip(expected, printed):
                assert matches(want, got), f"{command}: printed {got!r}, the doc says {want!r}"
    finally:
        if started:
            tomyum_cmd("stop", "--data-dir", str(tmp_path / "data"))
