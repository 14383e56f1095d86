"""kcat (librdkafka's command-line client, Debian package) against a real broker: produce,
consume and query with every codec, and balanced consumer groups (``-G``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.testing import BrokerProcess, wait_until

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


def _assignment(stderr: Path) -> set[int]:
    """The partitions a ``kcat -G`` member holds now, from the rebalances it reported."""
    held: set[int] = set()
    for line in stderr.read_text().splitlines():
        if "rebalanced" in line and "assigned:" in line:
            held = {int(p) for p in re.findall(r"\[(\d+)\]", line.split("assigned:", 1)[1])}
        elif "rebalanced" in line and "revoked:" in line:
            held = set()
    return held


def test_kcat_group_members_split_the_partitions_and_commit_on_exit(broker: BrokerProcess, topic_name: str,
                                                                    tmp_path: Path) -> None:
    """Two ``kcat -G`` members of one classic group: the partitions are split between them, each
    reads only its own, together every record once; on exit they commit what they read."""
    b, group, partitions = broker.bootstrap, f"kcat-{topic_name}", 4
    admin = AdminClient({"bootstrap.servers": b})
    admin.create_topics([NewTopic(topic_name, partitions, 1)])[topic_name].result(TIMEOUT)
    exe = shutil.which("kcat")
    assert exe, "kcat is not installed: run `make test` (it installs the Debian package kcat)"
    members: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
    try:
        for name in ("a", "b"):
            out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
            with open(out, "wb") as o, open(err, "wb") as e:
                proc = subprocess.Popen([exe, "-b", b, "-G", group, "-u", "-f", "%p %s\\n",
                                         "-X", "auto.offset.reset=earliest", "-X", "heartbeat.interval.ms=300",
                                         "-X", "session.timeout.ms=6000", topic_name],
                                        stdout=o, stderr=e, stdin=subprocess.DEVNULL)
            members.append((proc, out, err))
            wait_until(lambda err=err: _assignment(err), TIMEOUT, what=f"member {name} assigned")

        def split() -> bool:
            a, c = (_assignment(err) for _, _, err in members)
            return bool(a) and bool(c) and not a & c and a | c == set(range(partitions))
        wait_until(split, TIMEOUT, what="the partitions split between the two members")
        for p in range(partitions):
            kcat("-b", b, "-P", "-t", topic_name, "-p", str(p), stdin="".join(f"p{p}-{i}\n" for i in range(10)))

        def lines() -> list[list[str]]:
            return [out.read_text().splitlines() for _, out, _ in members]
        wait_until(lambda: sum(map(len, lines())) >= 10 * partitions, TIMEOUT, what="every record read")
        for (_, _, err), got in zip(members, lines(), strict=True):
            held = _assignment(err)
            assert got and {int(line.split()[0]) for line in got} == held  # its own partitions only
            assert sorted(got) == sorted(f"{p} p{p}-{i}" for p in held for i in range(10))
    finally:
        for proc, _, _ in members:
            proc.terminate()  # kcat closes its consumer: a final commit, then it leaves the group
        for proc, _, _ in members:
            proc.wait(TIMEOUT)
    committed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(TIMEOUT)
    assert {tp.partition: tp.offset for tp in committed.topic_partitions} == {p: 10 for p in range(partitions)}
