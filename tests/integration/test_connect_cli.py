"""``tomyum connect standalone`` and ``distributed`` refuse bad start-up input with one ``error:`` line (never a
traceback) and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tomyum.testing import BrokerProcess, ExternalBroker

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


def test_distributed_missing_keys_and_replication_factor(tmp_path: Path, broker: BrokerProcess | ExternalBroker) -> None:
    def distributed(worker: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tomyum", "connect", "distributed", str(worker)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=50, stdin=subprocess.DEVNULL)
    worker = tmp_path / "worker.properties"
    base = (f"bootstrap.servers={broker.bootstrap}\nlisteners=http://127.0.0.1:0\n"
            "key.converter=org.apache.kafka.connect.storage.StringConverter\n"
            "value.converter=org.apache.kafka.connect.storage.StringConverter\n")
    worker.write_text(base + "config.storage.topic=c\noffset.storage.topic=o\nstatus.storage.topic=s\n")
    assert 'Missing required configuration "group.id"' in one_error_line(distributed(worker))
    worker.write_text(base + "group.id=g\nconfig.storage.topic=c\noffset.storage.topic=o\nstatus.storage.topic=s\n"
                             "session.timeout.ms=ten\n")
    assert "Invalid value ten for configuration session.timeout.ms" in one_error_line(distributed(worker))
    worker.write_text(base + "group.id=g\nconfig.storage.topic=c\noffset.storage.topic=o\nstatus.storage.topic=s\n"
                             "connect.protocol=fancy\n")
    assert ("Invalid value fancy for configuration connect.protocol: Invalid Connect protocol compatibility"
            in one_error_line(distributed(worker)))
    # Kafka's default replication factor (3) on a single broker: the topic cannot be created
    worker.write_text(base + "group.id=g\nconfig.storage.topic=c\noffset.storage.topic=o\nstatus.storage.topic=s\n")
    line = one_error_line(distributed(worker))
    assert "Unable to create topic 'c'" in line and "replication factor 3" in line, line
