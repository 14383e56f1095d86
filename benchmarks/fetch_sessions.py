"""What incremental fetch sessions (KIP-227) save the broker: one consumer assigned every
partition of a topic with nothing new to read, fetching without waiting (``fetch_max_wait_ms=0``),
once listing every partition in every Fetch (no session: ``enable_incremental_fetch_sessions``
off) and once in a session (only what changed: nothing). The client is kafka-python, which
uses sessions like the Java consumer does (librdkafka asks for none). Reported: the broker's
CPU per Fetch (its process CPU over the Fetches it counted, from its metrics) and Fetches a
second; median of fresh brokers.

    python -m benchmarks.fetch_sessions [--partitions 100 1000 10000] [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.testing import BrokerProcess

METRICS = re.compile(r"metrics on (http://[\d.]+:\d+/metrics)")
FETCHES = re.compile(r'^tomyum_requests_total\{request="Fetch"\} (\S+)$', re.M)


def fetches(url: str) -> float:
    with urllib.request.urlopen(url, timeout=10) as response:
        found = FETCHES.search(response.read().decode())
    return float(found[1]) if found else 0.0


def measure(partitions: int, sessions: bool, seconds: float) -> tuple[float, float]:
    """(broker CPU µs per Fetch, Fetches a second) on a fresh broker."""
    from kafka import KafkaConsumer, TopicPartition

    with tempfile.TemporaryDirectory() as d, BrokerProcess(Path(d) / "data",
                                                           settings={"metrics.listener": "127.0.0.1:0"}) as b:
        assert b.proc is not None
        found = METRICS.search(b.output())
        assert found, b.output()
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("bench", partitions, 1)])["bench"].result(120)
        consumer = KafkaConsumer(bootstrap_servers=b.bootstrap, enable_incremental_fetch_sessions=sessions,
                                 fetch_max_wait_ms=0, enable_auto_commit=False, auto_offset_reset="earliest",
                                 request_timeout_ms=60_000)
        try:
            consumer.assign([TopicPartition("bench", p) for p in range(partitions)])
            warm_until = time.monotonic() + 2
            while time.monotonic() < warm_until:
                consumer.poll(timeout_ms=100)
            proc = psutil.Process(b.proc.pid)
            cpu0, n0, t0 = sum(proc.cpu_times()[:2]), fetches(found[1]), time.monotonic()
            while time.monotonic() - t0 < seconds:
                consumer.poll(timeout_ms=100)
            cpu1, n1, t1 = sum(proc.cpu_times()[:2]), fetches(found[1]), time.monotonic()
        finally:
            consumer.close()
    n = max(n1 - n0, 1.0)
    return (cpu1 - cpu0) / n * 1e6, n / (t1 - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--partitions", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print("| partitions | no session: µs CPU/Fetch | Fetches/s | session: µs CPU/Fetch | Fetches/s | CPU ratio |")
    print("|---:|---:|---:|---:|---:|---:|")
    for partitions in args.partitions:
        row = []
        for sessions in (False, True):
            runs = [measure(partitions, sessions, args.seconds) for _ in range(args.rounds)]
            row.append((statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)))
        (full_cpu, full_rate), (inc_cpu, inc_rate) = row
        print(f"| {partitions:,} | {full_cpu:,.0f} | {full_rate:,.0f} | {inc_cpu:,.0f} | {inc_rate:,.0f} | "
              f"{inc_cpu / full_cpu:.2f} |", flush=True)


if __name__ == "__main__":
    main()
