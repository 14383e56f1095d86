"""What a user feels besides throughput, tomyum (on disk, acks=all = fsync by group commit)
beside Tansu (memory engine), alternating, each on a fresh broker:

* end-to-end latency at a fixed rate — 5,000 msg/s of 1 KiB, acks=all, for ``--seconds``:
  the time from just before ``produce`` to the consumer holding the record, p50/p99/p99.9
  (producer and consumer in separate processes, one clock);
* time until two consumers of one group (client defaults) on a 4-partition topic both hold
  partitions, from their ``subscribe``;
* start-up time, from spawning the process to its first successful Metadata answer, and the
  resident memory once idle.

    python -m benchmarks.service [--seconds 10] [--rounds 3] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from benchmarks.throughput import (
    create_topic,
    free_port,
    machine_line,
    stop_process,
    tansu_broker,
    tansu_command,
    tomyum_broker,
    write_section,
)

RATE = 5000
VALUE = 1024


# end-to-end latency ----------------------------------------------------------------------------

def _consume_latencies(bootstrap: str, topic: str, count: int, rate: int, ready: mp.Event, out: mp.Queue) -> None:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "latency", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 100, "fetch.queue.backoff.ms": 0})
    c.assign([TopicPartition(topic, 0, 0)])
    c.consume(num_messages=1, timeout=0.5)  # connected and fetching
    ready.set()
    latencies: list[float] = []
    deadline = time.monotonic() + count / rate + 30
    while len(latencies) < count and time.monotonic() < deadline:
        m = c.poll(0.1)  # each record as soon as it is there (consume(n) would wait for n)
        if m is not None and m.error() is None:
            latencies.append(time.time() - struct.unpack_from(">d", m.value())[0])
    c.close()
    out.put(latencies)


def paced(p: Producer, rate: float, count: int, produce: Callable[[int], None]) -> None:
    """``produce(i)`` for ``i`` in ``range(count)``, ``rate`` a second, serving ``p``'s callbacks.
    Every record due by now, then a sleep until the next is: the generator paces without
    spinning, so that it does not take a core from the broker it measures."""
    started, sent = time.perf_counter(), 0
    while sent < count:
        due = min(count, int((time.perf_counter() - started) * rate) + 1)
        for i in range(sent, due):
            produce(i)
        sent = due
        p.poll(0)
        time.sleep(max(0.0, started + sent / rate - time.perf_counter()))


def latency(bootstrap: str, seconds: float, rate: int = RATE, topic: str = "") -> dict[str, float]:
    """p50/p99/p99.9 in ms of ``rate`` msg/s of 1 KiB for ``seconds``, acks=all, linger.ms=1, on a
    new ``topic`` (by default ``latency-<rate>``)."""
    topic = topic or f"latency-{rate}"
    create_topic(bootstrap, topic, 1)
    count = int(rate * seconds)
    ctx = mp.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    consumer = ctx.Process(target=_consume_latencies, args=(bootstrap, topic, count, rate, ready, out))
    consumer.start()
    ready.wait(30)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1, "enable.idempotence": False})
    pad = os.urandom(VALUE - 8)
    paced(p, rate, count, lambda _: p.produce(topic, value=struct.pack(">d", time.time()) + pad, partition=0))
    p.flush(30)
    latencies = sorted(out.get(timeout=60))
    consumer.join(30)
    assert len(latencies) == count, f"received {len(latencies)} of {count}"
    at = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {"p50": at(0.50), "p99": at(0.99), "p99.9": at(0.999)}


# group assignment -------------------------------------------------------------------------------

def group_assignment(bootstrap: str) -> float:
    topic = f"grouped-{time.monotonic_ns()}"
    create_topic(bootstrap, topic, 4)
    members = [Consumer({"bootstrap.servers": bootstrap, "group.id": topic}) for _ in range(2)]
    assigned = [threading.Event() for _ in members]
    stop = threading.Event()

    def run(c: Consumer, done: threading.Event) -> None:
        while not stop.is_set():
            c.poll(0.05)
            if c.assignment():
                done.set()

    started = time.perf_counter()
    for c in members:
        c.subscribe([topic])
    threads = [threading.Thread(target=run, args=(c, e)) for c, e in zip(members, assigned)]
    for t in threads:
        t.start()
    ok = all(e.wait(60) for e in assigned)
    elapsed = time.perf_counter() - started
    stop.set()
    for t in threads:
        t.join(10)
    for c in members:
        c.close()
    assert ok, "the group never assigned both members"
    return elapsed


# start-up and idle memory -------------------------------------------------------------------------

@contextmanager
def spawned(kind: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        if kind == "tomyum":
            cmd = [sys.executable, "-m", "tomyum", "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", d]
        else:
            cmd = tansu_command(f"tcp://127.0.0.1:{port}")
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield proc, f"127.0.0.1:{port}"
        finally:
            stop_process(proc)


def startup(kind: str) -> tuple[float, float]:
    """(seconds to the first Metadata answer, idle RSS in MiB two seconds later)."""
    started = time.perf_counter()
    with spawned(kind) as (proc, bootstrap):
        admin = AdminClient({"bootstrap.servers": bootstrap, "reconnect.backoff.ms": 1,
                             "reconnect.backoff.max.ms": 5, "log_level": 0})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if admin.list_topics(timeout=0.2).brokers:
                    break
            except Exception:
                pass
        else:
            raise AssertionError(f"{kind} never answered Metadata")
        up = time.perf_counter() - started
        time.sleep(2)
        return up, psutil.Process(proc.pid).memory_info().rss / 2**20


# the run -------------------------------------------------------------------------------------------

Brokers = {"tomyum": tomyum_broker, "tansu": tansu_broker}


def median_of(rounds: int, measure: Callable[[str], float]) -> dict[str, float]:
    values: dict[str, list[float]] = {"tomyum": [], "tansu": []}
    for _ in range(rounds):
        for name in values:
            values[name].append(measure(name))
    return {name: statistics.median(v) for name, v in values.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()

    lat: dict[str, dict[str, float]] = {}
    for name, broker in Brokers.items():
        with broker() as (bootstrap, _):
            lat[name] = latency(bootstrap, args.seconds)
        print(f"latency {name}: {lat[name]}", flush=True)

    def assign(name: str) -> float:
        with Brokers[name]() as (bootstrap, _):
            return group_assignment(bootstrap)

    def assign_without_delay(name: str) -> float:
        with tomyum_broker({"group.initial.rebalance.delay.ms": "0"}) as (bootstrap, _):
            return group_assignment(bootstrap)

    groups = median_of(args.rounds, assign)
    no_delay = statistics.median(assign_without_delay("tomyum") for _ in range(args.rounds))
    print(f"group assignment: {groups}, tomyum without the initial delay: {no_delay:.2f}", flush=True)
    starts: dict[str, list[tuple[float, float]]] = {"tomyum": [], "tansu": []}
    for _ in range(args.rounds):
        for name in starts:
            starts[name].append(startup(name))
    up = {n: statistics.median(s for s, _ in v) for n, v in starts.items()}
    rss = {n: statistics.median(r for _, r in v) for n, v in starts.items()}

    def row(what: str, unit: str, t: float, r: float, target: str) -> str:
        return f"| {what} | {t:,.1f} {unit} | {r:,.1f} {unit} | {t / r:.2f} | {target} |"

    rows = ["| measure | tomyum | Tansu | tomyum/Tansu | target |", "|---|---:|---:|---:|---|"]
    for q in ("p50", "p99", "p99.9"):
        rows.append(row(f"end-to-end latency {q} ({RATE:,} msg/s of 1 KiB)", "ms", lat["tomyum"][q], lat["tansu"][q],
                        "p99 ≤ 10 ms" if q == "p99" else ""))
    rows.append(row("two group members assigned (client defaults)", "s", groups["tomyum"], groups["tansu"], "≤ 3 s"))
    rows.append(row("… with group.initial.rebalance.delay.ms=0 (as `make serve`)", "s", no_delay, groups["tansu"],
                    "≤ 3 s"))
    rows.append(row("start-up to first Metadata", "s", up["tomyum"], up["tansu"], "≤ 0.5 s"))
    rows.append(row("resident memory when idle", "MiB", rss["tomyum"], rss["tansu"], "≤ 80 MB"))
    table = "\n".join(rows)
    print(table)
    if args.write:
        command = "python -m benchmarks.service " + " ".join(sys.argv[1:])
        write_section(args.write, "Latency, groups, start-up and memory",
                      f"Machine: {machine_line()}.  \nCommand: `{command}` (also `make bench`).\n\n"
                      "Latency: one producer process (acks=all, linger.ms=1) paced at the rate, one consumer\n"
                      "process assigned to the partition; medians of the rounds for the rest. tomyum's\n"
                      "`group.initial.rebalance.delay.ms` defaults to Kafka's 3000 ms: the first generation of a\n"
                      "new group waits that long for more members. `make serve` sets it to 0, as Kafka's own\n"
                      "`config/server.properties` does for development.\n\n" + table)


if __name__ == "__main__":
    main()
