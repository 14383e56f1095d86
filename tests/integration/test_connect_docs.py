"""docs/connect.md, run: its property files and Python module are written out as the guide
shows them (only the broker's address and the REST port changed), the workers are started with
the guide's command lines, and each ``curl`` with a ``# answer`` line below it is asked of the
REST API and must answer exactly that."""

from __future__ import annotations

import json
import re
import shlex
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess
from tests.integration.test_connect_rest import _consume

pytestmark = pytest.mark.timeout(180)

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "connect.md"
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<code>.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def _blocks() -> list[tuple[str, str, str]]:
    """(language, file name or "", code) of every fenced block, in order."""
    out = []
    for m in FENCE.finditer(GUIDE.read_text(encoding="utf-8")):
        lang, _, name = m.group("info").strip().partition(" ")
        out.append((lang, name.strip(), m.group("code")))
    return out


def _write_files(workdir: Path, bootstrap: str) -> None:
    for lang, name, code in _blocks():
        if name:
            code = code.replace("bootstrap.servers=localhost:9092", f"bootstrap.servers={bootstrap}")
            code = code.replace("listeners=http://localhost:8083", "listeners=http://127.0.0.1:0")
            (workdir / name).write_text(code, encoding="utf-8")


def _commands() -> list[list[str]]:
    """The shell blocks' lines, each split into words (comments and ``&`` dropped)."""
    return [shlex.split(line.rstrip("& "))
            for lang, _, code in _blocks() if lang == "sh"
            for line in code.splitlines() if line.strip() and not line.startswith("#")]


def _worker(workdir: Path, command: list[str]) -> ConnectProcess:
    assert command[:2] == ["tomyum", "connect"] and command[2] in ("standalone", "distributed"), command
    files = [workdir / a for a in command[3:]]
    return ConnectProcess.for_files(workdir, files[0], files[1:], mode=command[2])


@pytest.mark.slow  # ~25 s: three workers, one after another
def test_the_guide_runs(broker: BrokerProcess | ExternalBroker, tmp_path: Path) -> None:
    _write_files(tmp_path, broker.bootstrap)
    commands = _commands()
    starts = [c for c in commands if c[:3] == ["tomyum", "connect", "standalone"]]
    assert len(starts) == 2

    # FileStream in five minutes
    (tmp_path / "input.txt").touch()
    with _worker(tmp_path, starts[0]) as worker, closing(httpx.Client(base_url=worker.url, timeout=30)) as http:
        [printf] = [c for c in commands if c[:1] == ["printf"]]
        assert printf[2:] == [">>", "input.txt"]
        with open(tmp_path / "input.txt", "a", encoding="utf-8") as f:
            f.write(printf[1].encode().decode("unicode_escape"))
        output = tmp_path / "output.txt"
        wait_until(lambda: output.exists() and output.read_text() == "hello\nworld\n", timeout=60,
                   what="the lines in output.txt")
        [first, _] = _consume(broker.bootstrap, "lines", 2)
        assert first.value() == b'{"schema":{"type":"string","optional":false},"payload":"hello"}'
        assert dict(first.headers() or []) == {}  # the InsertHeader transform is the sink's, not the topic's
        wait_until(lambda: http.get("/connectors/file-source/offsets").json()["offsets"], timeout=30,
                   what="the stored source offset")
        for method, path, answer in _curls():
            r = http.request(method, path)
            assert r.status_code < 300, (path, r.text)
            if answer is not None:
                assert r.json() == json.loads(answer), path

    # Write your own connector in 30 lines
    for _ in range(2):  # the second run goes on from the stored offset: no new records
        with _worker(tmp_path, starts[1]) as worker, closing(httpx.Client(base_url=worker.url, timeout=30)) as http:
            records = _consume(broker.bootstrap, "counts", 5)
            wait_until(lambda: http.get("/connectors/counter/offsets").json()["offsets"] ==
                       [{"partition": {"counter": "counts"}, "offset": {"next": 5}}], timeout=30, what="offset 5")
            valid = http.put("/connector-plugins/counter.CounterSourceConnector/config/validate",
                             json={"connector.class": "counter.CounterSourceConnector", "name": "c", "topic": "t"}).json()
            assert valid["error_count"] == 0
    assert [json.loads(m.value())["payload"] for m in records] == [1, 2, 3, 4, 5]
    assert len(_consume(broker.bootstrap, "counts", 5)) == 5


def _curls() -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = []
    for lang, _, code in _blocks():
        if lang != "sh":
            continue
        lines = code.splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("curl "):
                continue
            words = shlex.split(line)
            method = words[words.index("-X") + 1] if "-X" in words else "GET"
            path = "/" + words[-1].split("/", 1)[1]
            answer = lines[i + 1][2:] if i + 1 < len(lines) and lines[i + 1].startswith("# ") else None
            out.append((method, path, answer))
    assert out
    return out


@pytest.mark.slow  # ~12 s: two distributed workers join, a connector is created and runs
def test_the_distributed_example_runs(broker: BrokerProcess | ExternalBroker, tmp_path: Path) -> None:
    _write_files(tmp_path, broker.bootstrap)
    [start] = [c for c in _commands() if c[:3] == ["tomyum", "connect", "distributed"]]
    (tmp_path / "input.txt").write_text("one\ntwo\n", encoding="utf-8")
    with _worker(tmp_path, start) as first, _worker(tmp_path, start) as second, \
            closing(httpx.Client(base_url=first.url, timeout=30)) as a, \
            closing(httpx.Client(base_url=second.url, timeout=30)) as b:
        config = {"connector.class": "FileStreamSource", "file": "input.txt", "topic": "dist-lines"}
        created = b.post("/connectors", json={"name": "dist-source", "config": config})
        assert created.status_code == 201, created.text
        records = _consume(broker.bootstrap, "dist-lines", 2)
        assert [json.loads(m.value())["payload"] for m in records] == ["one", "two"]
        for http in (a, b):
            wait_until(lambda: http.get("/connectors/dist-source/status").json()["tasks"][:1] and
                       http.get("/connectors/dist-source/status").json()["tasks"][0]["state"] == "RUNNING",
                       timeout=30, what="the task RUNNING, as both workers see it")
        assert a.get("/connectors").json() == b.get("/connectors").json() == ["dist-source"]
