"""Cost curve: group join time vs members (issue 22), tomyum beside Apache Kafka 4.4 in one run.

    python -m benchmarks.group_join [--members 1,10,50,100] [--partitions 200] [--peers kafka]
                                    [--write docs/benchmarks.md]

Each broker is started fresh (tomyum in a subprocess on disk; Kafka from ``kafka_broker``, the
conformance tests' peer), both with ``group.initial.rebalance.delay.ms=0`` so that the first
rebalance does not wait, and ``group.consumer.heartbeat.interval.ms=500`` (KIP-848). On each, one
topic of ``--partitions`` partitions; for each protocol and each N a new group:

* **join**: N confluent-kafka consumers (librdkafka), each in its own thread of this process,
  created and connected first, then all subscribe at once; the time from that moment to a
  *stable group*: every partition owned by exactly one member and every member holding its
  share (⌊P/N⌋ or ⌈P/N⌉ partitions), as the members' rebalance callbacks report it;
* **one more**: the time for member N+1 to join that stable group until it is stable again
  (the rebalance cost; P > N+1, so the newcomer's share is never empty and partitions move).

Protocols: classic with the eager ``range`` assignor, classic with ``cooperative-sticky``
(both ``heartbeat.interval.ms=500``: members learn of a rebalance by heartbeat), and KIP-848
(``group.protocol=consumer``, the broker's default assignor). The broker's CPU seconds over each
measurement are read from /proc (psutil), and so are this process's, to show whether the clients
were the bottleneck; at the largest N, also the broker's CPU while the stable group of N+1 only
heartbeats (over ``IDLE_SECONDS``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
from confluent_kafka import Consumer, TopicPartition

from benchmarks.cost_curves import plot
from benchmarks.throughput import (
    cpu,
    create_topic,
    kafka_available,
    kafka_broker,
    machine_line,
    tomyum_broker,
    write_section,
)

HEADING = "Cost curve: group join time vs members"
TOPIC = "join"
TIMEOUT = 120.0
#: at the largest N, how long the broker's CPU is read while the stable group only heartbeats
IDLE_SECONDS = 2.0
TOMYUM_SETTINGS = {"group.initial.rebalance.delay.ms": "0", "group.consumer.heartbeat.interval.ms": "500"}

#: consumer settings per protocol, beside bootstrap.servers and group.id
PROTOCOLS: dict[str, dict[str, str]] = {
    "eager": {"partition.assignment.strategy": "range", "heartbeat.interval.ms": "500"},
    "cooperative": {"partition.assignment.strategy": "cooperative-sticky", "heartbeat.interval.ms": "500"},
    "consumer": {"group.protocol": "consumer"},
}
LABELS = {"eager": "classic, eager range", "cooperative": "classic, cooperative-sticky",
          "consumer": "KIP-848 (group.protocol=consumer)"}


@dataclass
class Point:
    broker: str
    protocol: str
    members: int
    join_s: float
    one_more_s: float
    broker_cpu_s: float
    client_cpu_s: float
    #: the broker's CPU seconds per second while the stable group of N+1 only heartbeats
    idle_cpu: float | None = None


class Ownership:
    """Which member owns which partition, from the rebalance callbacks of every member thread;
    records the moment the group is first stable for the expected members."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._lock = threading.Lock()
        self._owned: dict[int, set[int]] = {}
        self._expected = 0
        self.stable = threading.Event()
        self.stable_at = 0.0

    def expect(self, members: int) -> None:
        with self._lock:
            self._expected = members
            self.stable.clear()
            self._check()

    def join(self, member: int) -> None:
        with self._lock:
            self._owned[member] = set()
            self._check()

    def change(self, member: int, assigned: list[TopicPartition], revoked: list[TopicPartition],
               incremental: bool) -> None:
        with self._lock:
            owned = self._owned.setdefault(member, set())
            if not incremental:
                owned.clear()
            owned.difference_update(tp.partition for tp in revoked)
            owned.update(tp.partition for tp in assigned)
            self._check()

    def _check(self) -> None:
        n = self._expected
        if self.stable.is_set() or n == 0 or len(self._owned) != n:
            return
        low, high = self.partitions // n, -(-self.partitions // n)
        counts = [len(p) for p in self._owned.values()]
        if sum(counts) == self.partitions and all(low <= c <= high for c in counts) \
                and len(set().union(*self._owned.values())) == self.partitions:
            self.stable_at = time.perf_counter()
            self.stable.set()


class Members:
    """Consumers of one group, each polling in its own thread until ``close``."""

    def __init__(self, bootstrap: str, group: str, protocol: str, ownership: Ownership) -> None:
        self.conf = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": "false",
                     "auto.offset.reset": "earliest", **PROTOCOLS[protocol]}
        self.incremental = protocol != "eager"
        self.ownership = ownership
        self.threads: list[threading.Thread] = []
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

    def prepare(self, count: int) -> threading.Event:
        """``count`` more consumers, connected (their metadata fetched), waiting for the returned
        event to subscribe."""
        go = threading.Event()
        for _ in range(count):
            member = len(self.threads)
            c = Consumer(self.conf)
            c.list_topics(TOPIC, timeout=30)
            t = threading.Thread(target=self._run, args=(member, c, go), daemon=True)
            self.threads.append(t)
            t.start()
        return go

    def _run(self, member: int, c: Consumer, go: threading.Event) -> None:
        def on_assign(_: Consumer, tps: list[TopicPartition]) -> None:
            self.ownership.change(member, tps, [], self.incremental)

        def on_revoke(_: Consumer, tps: list[TopicPartition]) -> None:
            self.ownership.change(member, [], tps, self.incremental)

        try:
            go.wait(TIMEOUT)
            self.ownership.join(member)
            c.subscribe([TOPIC], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
            while not self.stop.is_set():
                c.poll(0.2)
        except BaseException as e:  # reported by close()
            self.errors.append(e)
        finally:
            c.close()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)
        if any(t.is_alive() for t in self.threads):
            raise RuntimeError("a consumer did not close within 60 s")
        if self.errors:
            raise self.errors[0]


def measure(bootstrap: str, pid: int, name: str, protocol: str, n: int, partitions: int, idle_s: float) -> Point:
    ownership = Ownership(partitions)
    members = Members(bootstrap, f"{protocol}-{n}-{time.monotonic_ns()}", protocol, ownership)
    me = psutil.Process()
    try:
        go = members.prepare(n)
        cpu0, mine0 = cpu(pid), sum(me.cpu_times()[:2])
        ownership.expect(n)
        t0 = time.perf_counter()
        go.set()
        if not ownership.stable.wait(TIMEOUT):
            raise TimeoutError(f"{name} {protocol}: {n} members not stable within {TIMEOUT:.0f} s")
        join = ownership.stable_at - t0
        go = members.prepare(1)
        ownership.expect(n + 1)
        t1 = time.perf_counter()
        go.set()
        if not ownership.stable.wait(TIMEOUT):
            raise TimeoutError(f"{name} {protocol}: member {n + 1} not in within {TIMEOUT:.0f} s")
        one_more = ownership.stable_at - t1
        point = Point(name, protocol, n, join, one_more, cpu(pid) - cpu0, sum(me.cpu_times()[:2]) - mine0)
        if idle_s:
            cpu1 = cpu(pid)
            time.sleep(idle_s)  # the measurement window, not a wait for a condition
            point.idle_cpu = (cpu(pid) - cpu1) / idle_s
    finally:
        members.close()
    print(f"{name:7} {protocol:12} N={n:4}: join {join:.2f} s, one more {one_more:.2f} s, "
          f"broker CPU {point.broker_cpu_s:.2f} s, client CPU {point.client_cpu_s:.2f} s", flush=True)
    return point


def run_broker(name: str, broker: Callable[[], contextlib.AbstractContextManager[tuple[str, int]]],
               protocols: list[str], counts: list[int], partitions: int, rounds: int) -> tuple[list[Point], float]:
    """Every protocol and member count, ``rounds`` times (a new group each time), on one fresh
    broker; also the broker's CPU seconds from the first measurement to the last."""
    points = []
    with broker() as (bootstrap, pid):
        create_topic(bootstrap, TOPIC, partitions)
        cpu0 = cpu(pid)
        for protocol in protocols:
            for n in counts:
                idle_s = IDLE_SECONDS if n == max(counts) else 0.0
                points += [measure(bootstrap, pid, name, protocol, n, partitions, idle_s) for _ in range(rounds)]
        return points, cpu(pid) - cpu0


def brokers(peers: str) -> Iterator[tuple[str, Callable[[], contextlib.AbstractContextManager[tuple[str, int]]]]]:
    yield "tomyum", lambda: tomyum_broker(TOMYUM_SETTINGS)
    if "kafka" in peers.split(",") and kafka_available():
        yield "kafka", kafka_broker


def report(points: list[Point], totals: dict[str, float], counts: list[int], partitions: int,
           header: str, images: Path) -> str:
    runs: dict[tuple[str, str, int], list[Point]] = {}
    for p in points:
        runs.setdefault((p.broker, p.protocol, p.members), []).append(p)
    by = {key: Point(key[0], key[1], key[2], statistics.median(p.join_s for p in ps),
                     statistics.median(p.one_more_s for p in ps), statistics.median(p.broker_cpu_s for p in ps),
                     statistics.median(p.client_cpu_s for p in ps),
                     statistics.median(p.idle_cpu or 0.0 for p in ps) if ps[0].idle_cpu is not None else None)
          for key, ps in runs.items()}
    protocols = list(dict.fromkeys(p.protocol for p in points))
    names = list(totals)
    series = {}
    for name in names:
        for protocol in protocols:
            series[f"{name}, {protocol}"] = [(n, by[name, protocol, n].join_s) for n in counts]
    plot(images / "group-join-members.png", "Group join to stable vs members", "members",
         "seconds", series)
    lines = [header, "", "    make bench-group-join   # = python -m benchmarks.group_join --write docs/benchmarks.md", "",
             "![Group join vs members](benchmarks/group-join-members.png)", ""]
    peer = next((n for n in names if n != "tomyum"), None)

    #: title, value, with a ratio to the peer, with the range of the rounds
    measures: list[tuple[str, Callable[[Point], float], bool, bool]] = [
        ("join s", lambda p: p.join_s, True, True), ("one more s", lambda p: p.one_more_s, True, True),
        ("broker CPU s", lambda p: p.broker_cpu_s, False, False)]

    def cell(name: str, protocol: str, n: int, value: Callable[[Point], float], spread: bool) -> str:
        values = [value(p) for p in runs[name, protocol, n]]
        median = f"{statistics.median(values):.2f}"
        return f"{median} ({min(values):.2f}–{max(values):.2f})" if spread and len(values) > 1 else median

    heads: list[str] = []
    for title, _, ratio, _ in measures:
        heads += [f"{title} {n}" for n in names] + ([f"{title} tomyum ÷ {peer}"] if peer and ratio else [])
    lines += ["| protocol | N | " + " | ".join(heads) + " |", "|---|---:|" + "---:|" * len(heads)]
    for protocol in protocols:
        for n in counts:
            ps = [by[name, protocol, n] for name in names]
            cells: list[str] = []
            for _, value, ratio, spread in measures:
                cells += [cell(name, protocol, n, value, spread) for name in names]
                cells += [f"{value(ps[0]) / value(ps[1]):.2f}"] if peer and ratio else []
            lines.append(f"| {LABELS[protocol]} | {n} | " + " | ".join(cells) + " |")
    top = max(counts)
    lines += ["", f"Broker CPU while a stable group of {top + 1} members only heartbeats (CPU seconds per "
              f"second, read over {IDLE_SECONDS:.0f} s after the *one more* measurement at N={top}):", "",
              "| protocol | " + " | ".join(names) + (f" | tomyum ÷ {peer}" if peer else "") + " |",
              "|---|" + "---:|" * (len(names) + (1 if peer else 0))]
    for protocol in protocols:
        idle = [by[name, protocol, top].idle_cpu or 0.0 for name in names]
        quotient = f" | {idle[0] / idle[1]:.2f}" if peer and idle[1] else (" | " if peer else "")
        lines.append(f"| {LABELS[protocol]} | " + " | ".join(f"{x:.3f}" for x in idle) + quotient + " |")
    busiest = max(points, key=lambda p: p.client_cpu_s)
    lines += ["", "*broker CPU s*: the broker's CPU seconds over one measurement (join and one more). Over the "
              "whole run (every protocol, N and round, with the members' start and close): "
              + ", ".join(f"{n} {s:.1f} s" for n, s in totals.items()) + f". The clients were not the "
              f"bottleneck: the benchmark's process (every member) used at most {busiest.client_cpu_s:.2f} CPU s "
              f"in one measurement ({busiest.broker}, {busiest.protocol}, N={busiest.members}, "
              f"{busiest.join_s + busiest.one_more_s:.2f} s long)."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", default="1,10,50,100")
    ap.add_argument("--partitions", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3, help="groups per protocol and N; the median is shown")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS), help=f"of {','.join(PROTOCOLS)}")
    ap.add_argument("--peers", default="kafka", help="peers beside tomyum: kafka (if Java and Maven are there)")
    ap.add_argument("--images", type=Path, default=Path("docs/benchmarks"))
    ap.add_argument("--write", type=Path, help="replace this section of the file")
    args = ap.parse_args()
    counts = [int(n) for n in args.members.split(",")]
    protocols = args.protocols.split(",")
    if not set(protocols) <= set(PROTOCOLS):
        ap.error(f"--protocols: of {', '.join(PROTOCOLS)}")
    if args.partitions <= max(counts):
        ap.error("--partitions must exceed the largest member count, so that one more member moves partitions")
    load0 = os.getloadavg()[0]
    t_start = time.monotonic()
    points: list[Point] = []
    totals: dict[str, float] = {}
    for name, broker in brokers(args.peers):
        got, totals[name] = run_broker(name, broker, protocols, counts, args.partitions, args.rounds)
        points += got
    minutes = (time.monotonic() - t_start) / 60
    header = (f"{machine_line()}; load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
              f"(other engineers' work shared the two cores); {minutes:.1f} min in all. One topic of "
              f"{args.partitions} partitions; N confluent-kafka consumers, each in its own thread of the "
              "benchmark's process; both brokers with group.initial.rebalance.delay.ms=0 and "
              "group.consumer.heartbeat.interval.ms=500, classic members with heartbeat.interval.ms=500. "
              "*join*: from all N subscribing at once to every partition owned once and every member holding "
              "its share; *one more*: from member N+1 subscribing to the same again. Median of "
              f"{args.rounds} groups (fastest–slowest in brackets); lower is better; the ratio is tomyum's "
              "median over the peer's.")
    body = report(points, totals, counts, args.partitions, header, args.images)
    print(body)
    if args.write:
        write_section(args.write, HEADING, body)


if __name__ == "__main__":
    main()
