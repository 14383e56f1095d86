"""The README's command block, run literally, top to bottom, against a broker started as
``make serve`` starts it (on free ports: ``TOMYUM_BOOTSTRAP`` names it), each line ending within
its timeout and printing what its comment in the README says."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.test_cli import _env

ROOT = Path(__file__).resolve().parents[2]
LINE_TIMEOUT = 30
READY = re.compile(r"accepting connections on \w+://(?P<address>[\d.]+:\d+)")


def readme_commands(section: str = "## The `tomyum` command") -> list[list[str]]:
    """The fenced ``sh`` blocks of a README section, each a list of its command lines."""
    text = (ROOT / "README.md").read_text()
    body = text[text.index(section) + len(section):]
    body = body[:body.index("\n## ")]
    return [[line for line in block.splitlines() if line.strip()]
            for block in re.findall(r"```sh\n(.*?)```", body, flags=re.S)]


def make_serve_command(data_dir: Path) -> list[str]:
    """``make serve``'s recipe, with this venv's tomyum, port 0 and ``data_dir``."""
    recipe = re.search(r"^serve:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), flags=re.M)
    assert recipe, "the Makefile has a serve target"
    words = recipe[1].replace("$(BIN)/tomyum", "tomyum").split()
    assert words[:2] == ["tomyum", "serve"] and "127.0.0.1:9092" in words and "./data" in words, words
    free = {"127.0.0.1:9092": "127.0.0.1:0", "./data": str(data_dir),
            "metrics.listener=127.0.0.1:9644": "metrics.listener=127.0.0.1:0",
            "console.listener=127.0.0.1:9645": "console.listener=127.0.0.1:0"}
    return [sys.executable, "-m", "tomyum", *[free.get(w, w) for w in words[1:]]]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    if os.environ.get("TOMYUM_TEST_BOOTSTRAP"):
        pytest.skip("starts a broker as make serve does")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(make_serve_command(tmp_path / "data"), stdout=out, stderr=subprocess.STDOUT,
                                env=_env())
    try:
        from tomyum.testing import wait_until

        ready = wait_until(lambda: READY.search(log.read_text()) or proc.poll(), 30, interval=0.05,
                           what="make serve's broker to accept connections")
        assert isinstance(ready, re.Match), log.read_text()
        yield ready["address"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()


def _lines(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.strip()]


def _committed(out: str) -> bool:
    offsets = [row for row in _lines(out) if row[0] == "orders"]
    return sum(int(row[2]) for row in offsets) == 2 and all(row[4] == "0" for row in offsets)


# What each line of the client block prints, as its comment in the README says (stdout + stderr)
CLAIMS: dict[str, Callable[[str], bool]] = {
    "tomyum topics create orders": lambda out: "created topic orders with 2 partitions" in out,
    "tomyum topics list": lambda out: ["orders", "2", "1"] in _lines(out),
    "printf": lambda out: "produced 2 records to orders" in out,
    "tomyum consume orders --from beginning": lambda out: sorted(out.splitlines()) ==
    ["consumed 2 records", "k1\thello", "k2\tworld"],
    "tomyum consume orders -g billing": lambda out: sorted(
        json.loads(line)["value"] for line in out.splitlines() if line.startswith("{")) == ["hello", "world"],
    "tomyum groups describe billing": _committed,
    "tomyum groups reset-offsets billing": lambda out: "this is a preview" in out and
    all(row[3] == "0" for row in _lines(out) if row[0] == "orders"),
    "tomyum configs describe topic orders": lambda out: ["retention.ms", "86400000", "dynamic", "topic"] in _lines(out),
    "tomyum configs set broker": lambda out: "updated broker '1': message.max.bytes=2000000" in out,
}


def test_the_readme_block_runs_literally_and_shows_what_it_says(served: str, tmp_path: Path) -> None:
    lifecycle, clients = readme_commands()
    assert [line.split("#")[0].split()[:2] for line in lifecycle] == \
        [["tomyum", "start"], ["tomyum", "status"], ["tomyum", "stop"]]  # test_cli runs these
    env = _env({"TOMYUM_BOOTSTRAP": served, "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                                     os.environ["PATH"]])})
    unclaimed = [line for line in clients if not any(line.startswith(prefix) for prefix in CLAIMS)]
    assert not unclaimed, f"the test says nothing of {unclaimed}"
    for line in clients:
        proc = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=LINE_TIMEOUT,
                              cwd=tmp_path, env=env, stdin=subprocess.DEVNULL)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, (line, out)
        claim = next(check for prefix, check in CLAIMS.items() if line.startswith(prefix))
        assert claim(out), (line, out)
