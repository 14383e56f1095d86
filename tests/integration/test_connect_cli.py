"""``tomyum connect standalone`` refuses bad start-up input with one ``error:`` line (never a
traceback) and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tomyum", "connect", "standalone", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=50, stdin=subprocess.DEVNULL)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if not line.startswith("[")]  # log lines aside
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in done.stderr
    return lines[0]


def test_missing_files_and_keys(tmp_path: Path) -> None:
    assert "missing.properties" in one_error_line(run("missing.properties", cwd=tmp_path))
    worker = tmp_path / "worker.properties"
    worker.write_text("bootstrap.servers=127.0.0.1:1\nlisteners=http://127.0.0.1:0\n")
    assert 'Missing required configuration "key.converter"' in one_error_line(run(str(worker), cwd=tmp_path))
    worker.write_text("key.converter=org.apache.kafka.connect.storage.StringConverter\n"
                      "value.converter=org.apache.kafka.connect.storage.StringConverter\nlisteners=ftp://x:1\n")
    assert "Invalid listener" in one_error_line(run(str(worker), cwd=tmp_path))
