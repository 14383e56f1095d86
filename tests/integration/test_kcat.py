"""kcat (librdkafka's command-line client, Debian package) against a real broker."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.testing import BrokerProcess

TIMEOUT = 30


def kcat(*args: str, stdin: str | None = None) -> str:
    exe = shutil.which("kcat")
    assert exe, "kcat is not installed: run `make test` (it installs the Debian package kcat)"
    proc = subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"kcat {args} failed: {proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produce_consume_query(broker: BrokerProcess, topic_name: str, codec: str) -> None:
    b = broker.bootstrap
    admin = AdminClient({"bootstrap.servers": b})
    admin.create_topics([NewTopic(topic_name, 3, 1)])[topic_name].result(TIMEOUT)
    lines = [f"key{i}:value-{i}-{codec}" for i in range(12)]
    for p in range(3):
        part = "\n".join(line for i, line in enumerate(lines) if i % 3 == p) + "\n"
        kcat("-b", b, "-P", "-t", topic_name, "-p", str(p), "-K:", "-H", "origin=kcat", "-H", "n=1",
             "-X", f"compression.codec={codec}", stdin=part)

    metadata = json.loads(kcat("-b", b, "-L", "-J", "-t", topic_name))
    topic = next(t for t in metadata["topics"] if t["topic"] == topic_name)
    assert sorted(p["partition"] for p in topic["partitions"]) == [0, 1, 2]

    out = kcat("-b", b, "-C", "-t", topic_name, "-o", "beginning", "-e", "-J")
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(records) == 12
    for p in range(3):
        mine = [r for r in records if r["partition"] == p]
        assert [r["offset"] for r in mine] == [0, 1, 2, 3]
        want = [line.split(":", 1) for i, line in enumerate(lines) if i % 3 == p]
        assert [[r["key"], r["payload"]] for r in mine] == want
        assert all(r["headers"] == ["origin", "kcat", "n", "1"] for r in mine)

    first_ts = min(r["ts"] for r in records if r["partition"] == 1)
    answer = kcat("-b", b, "-Q", "-t", f"{topic_name}:1:{first_ts}")
    assert "[1] offset 0" in answer, answer
    answer = kcat("-b", b, "-Q", "-t", f"{topic_name}:1:-1")
    assert "[1] offset 4" in answer, answer
