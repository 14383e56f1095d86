"""Small requests: what each request costs the broker when every record travels alone,
tomyum (on disk, acks=all answered after the group commit's fsync) beside Tansu (memory
engine) when its binary is there and Apache Kafka 4.4 (single-node KRaft from Maven Central's
jars, ``benchmarks.throughput.kafka_broker``) when Java and Maven are, each broker fresh,
alternating. Kafka's JVM compiles its hot paths as it runs, so every Kafka broker first runs
the same phases on topics of its own (``--warm-up`` records per producer) before the measured
ones, and a latency run of a few seconds before each measured latency run:

* produce: ``--clients`` producer processes (``--client native``, the default: librdkafka's
  ``rdkafka_performance``, ``benchmarks.native``; or confluent-kafka; ``batch.num.messages=1``,
  ``linger.ms=0``, 5 requests in flight) send 100 B records to one partition, so that each
  Produce request carries one record; acks=all and acks=1;
* fetch: one consumer reads the acks=1 phase's records back from the start, one batch (so one
  record) per Fetch (``max.partition.fetch.bytes=1``: the first batch whole, KIP-74);
* end-to-end latency of 1 KiB records, acks=all, linger.ms=1, at 1,000, 5,000 and 20,000
  msg/s (``benchmarks.service.latency``), each rate twice: with nothing else running, and with
  another process busy on a core (``while True: pass``) for the whole run.

Broker CPU per request is the broker process's CPU time (user + system, psutil) over the
phase divided by the requests it served: the figure to compare before/after on a shared
machine, where rates move with the load and CPU time much less.

    python -m benchmarks.small_requests [--messages 10000] [--clients 3] [--rounds 3] [--warm-up 6000]
        [--peers tomyum,tansu,kafka] [--write docs/benchmarks.md]

Before/after an optimisation, ``--builds`` runs only the produce and fetch phases, on brokers started from
each of several source trees in turn (``git worktree add /tmp/before <commit>``; each tree's
``src/`` goes first on the broker's ``PYTHONPATH``), alternating build by build in every round,
and prints the median of the rounds per build:

    python -m benchmarks.small_requests --builds /tmp/before . --rounds 3 --messages 6000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as Partition

from benchmarks import native
from benchmarks.service import latency
from benchmarks.throughput import (
    TANSU, cpu, create_topic, kafka_available, kafka_broker, machine_line, tansu_broker, tomyum_broker,
    write_section)
from tomyum.testing.kafka_peer import pinned_version

VALUE = 100
FETCH = "fetch, one batch per request"
LATENCY_RATES = (1000, 5000, 20000)
#: each latency run without and with a process busy on a core
CONDITIONS = (False, True)
#: brokers whose code warms up as it runs (a JIT): they get a warm-up before they are measured
WARM_UP = frozenset({"kafka"})
TITLES = {"tomyum": "tomyum", "tansu": "Tansu", "kafka": "Kafka"}


@dataclass
class Phase:
    requests: int
    seconds: float
    broker_cpu: float

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.broker_cpu / self.requests * 1e6


def _produce_alone(bootstrap: str, topic: str, count: int, acks: str) -> tuple[float, float]:
    """One producer sends ``count`` records of 100 B, each in a request of its own; (start, end)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, **ALONE})
    p.list_topics(topic, timeout=10)  # connected, metadata known: not part of the timing
    value = os.urandom(VALUE)
    t0 = time.monotonic()
    for _ in range(count):
        while True:
            try:
                p.produce(topic, value=value, partition=0)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    assert p.flush(120) == 0, "produce did not finish"
    return t0, time.monotonic()


def _consume_alone(bootstrap: str, topic: str, count: int) -> tuple[float, float]:
    """One consumer reads ``count`` records of partition 0 from the start, one batch per Fetch;
    (start, end)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "small-fetch", "enable.auto.commit": False,
                  "max.partition.fetch.bytes": 1})
    try:
        c.assign([Partition(topic, 0, 0)])
        got, t0 = 0, time.monotonic()
        deadline = t0 + 120
        while got < count and time.monotonic() < deadline:
            m = c.poll(0.5)
            got += m is not None and m.error() is None
        assert got == count, f"read {got} of {count} records"
        return t0, time.monotonic()
    finally:
        c.close()


def _parallel(pid: int, fn: Callable[..., tuple[float, float]], args: list[tuple[object, ...]]) -> tuple[float, float]:
    """``fn`` in one process per argument tuple at once; (wall s first start to last end, broker CPU s)."""
    b0 = cpu(pid)
    with mp.get_context("spawn").Pool(len(args)) as pool:
        spans = pool.starmap(fn, args)
    return max(s[1] for s in spans) - min(s[0] for s in spans), cpu(pid) - b0


def run_broker(broker: Callable[[], AbstractContextManager[tuple[str, int]]], messages: int,
               clients: int, warm_up: int = 0, client: str = "python") -> dict[str, Phase]:
    """Produce acks=all, then produce acks=1, then fetch those back, on one fresh broker; first
    the same phases with ``warm_up`` records per producer, unmeasured, when it is not 0.
    ``client``: ``python`` (confluent-kafka driven from Python) or ``native`` (rdkafka_performance)."""
    with broker() as (bootstrap, pid):
        if warm_up:
            _phases(bootstrap, pid, "warm-up", warm_up, clients, client)
        return _phases(bootstrap, pid, "small", messages, clients, client)


#: librdkafka settings that make every record a Produce request of its own
ALONE = {"linger.ms": "0", "batch.num.messages": "1", "max.in.flight.requests.per.connection": "5",
         "enable.idempotence": "false"}


def _phases(bootstrap: str, pid: int, prefix: str, messages: int, clients: int, client: str) -> dict[str, Phase]:
    out: dict[str, Phase] = {}
    for acks in ("all", "1"):
        topic = f"{prefix}-{acks}"
        create_topic(bootstrap, topic, 1)
        if client == "native":
            seconds, _, broker_cpu = native.at_once([messages] * clients, lambda n: native.produce(
                bootstrap, topic, VALUE, n, partition=0, acks=acks, conf=ALONE), pid)
        else:
            seconds, broker_cpu = _parallel(pid, _produce_alone, [(bootstrap, topic, messages, acks)] * clients)
        out[f"produce acks={acks}"] = Phase(messages * clients, seconds, broker_cpu)
    if client == "native":
        seconds, _, broker_cpu = native.at_once([messages * clients], lambda n: native.consume(
            bootstrap, f"{prefix}-1", 1, n, conf={"max.partition.fetch.bytes": "1"}), pid)
    else:
        seconds, broker_cpu = _parallel(pid, _consume_alone, [(bootstrap, f"{prefix}-1", messages * clients)])
    out[FETCH] = Phase(messages * clients, seconds, broker_cpu)
    return out


def brokers(peers: frozenset[str] = frozenset(TITLES)
            ) -> Iterator[tuple[str, Callable[[], AbstractContextManager[tuple[str, int]]]]]:
    """tomyum, then those of ``peers`` that can run here."""
    yield "tomyum", tomyum_broker
    if "tansu" in peers and TANSU.exists():
        yield "tansu", tansu_broker
    if "kafka" in peers and kafka_available():
        yield "kafka", kafka_broker


@contextmanager
def _build_broker(tree: Path) -> Iterator[tuple[str, int]]:
    """A tomyum broker started from the source tree ``tree`` (its ``src/`` first on PYTHONPATH)."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree.resolve() / "src"), before) if p)
    try:
        with tomyum_broker() as broker:
            _restore_pythonpath(before)  # the clients import this process's tomyum, not the build's
            yield broker
    finally:
        _restore_pythonpath(before)


def _restore_pythonpath(value: str | None) -> None:
    if value is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = value


def compare_builds(trees: list[Path], rounds: int, messages: int, clients: int, client: str) -> str:
    """The produce phases on each build in turn, ``rounds`` times; a table of the medians."""
    runs: dict[Path, dict[str, list[Phase]]] = {t: {} for t in trees}
    for _ in range(rounds):
        for tree in trees:
            for workload, phase in run_broker(lambda: _build_broker(tree), messages, clients, 0, client).items():
                runs[tree].setdefault(workload, []).append(phase)
                print(f"{tree} {workload}: {phase.per_s:,.0f} req/s, {phase.cpu_us:,.0f} µs broker CPU/req "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
    workloads = ("produce acks=all", "produce acks=1", FETCH)
    rows = ["| build | " + " | ".join(f"{w} req/s | {w} broker CPU µs/req" for w in workloads) + " |",
            "|---|" + "---:|" * 2 * len(workloads)]
    for tree in trees:
        cells = (median_phase(runs[tree][w]) for w in workloads)
        rows.append(f"| {tree} | " + " | ".join(f"{c.per_s:,.0f} | {c.cpu_us:,.0f}" for c in cells) + " |")
    return "\n".join(rows)


def median_phase(runs: list[Phase]) -> Phase:
    return sorted(runs, key=lambda p: p.cpu_us)[len(runs) // 2]


@contextmanager
def busy_core(busy: bool) -> Iterator[None]:
    """With ``busy``, another process spinning on a core for as long as the block runs."""
    if not busy:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait(10)


def tables(phases: dict[str, dict[str, Phase]], lat: dict[str, dict[tuple[int, bool], dict[str, float]]]) -> str:
    """The phases' table, with tomyum's ratio to each peer (rate and CPU per request), and the
    latency table."""
    names = list(phases)
    peers = names[1:]
    head = "| workload | " + " | ".join(f"{n} req/s | {n} broker CPU µs/req" for n in names) + " |"
    head += "".join(f" tomyum/{TITLES[n]} req/s | tomyum/{TITLES[n]} CPU/req |" for n in peers)
    rows = [head, "|---|" + "---:|" * (2 * len(names) + 2 * len(peers))]
    for workload in phases[names[0]]:
        ps = [phases[n][workload] for n in names]
        cells = " | ".join(f"{p.per_s:,.0f} | {p.cpu_us:,.0f}" for p in ps)
        ratios = "".join(f" {ps[0].per_s / p.per_s:.2f} | {ps[0].cpu_us / p.cpu_us:.2f} |" for p in ps[1:])
        rows.append(f"| {workload} | {cells} |{ratios}")
    rows += ["", "| end-to-end latency, 1 KiB, acks=all, linger.ms=1 | " + " | ".join(
        f"{n} p50 / p99 / p99.9 ms" for n in names) + " |", "|---|" + "---:|" * len(names)]
    for busy in CONDITIONS:
        for rate in LATENCY_RATES:
            q = [lat[n][(rate, busy)] for n in names]
            cells = " | ".join(f"{x['p50']:.1f} / {x['p99']:.1f} / {x['p99.9']:.1f}" for x in q)
            rows.append(f"| {rate:,} msg/s{', a process busy on a core' if busy else ''} | {cells} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=10_000, help="records each producer sends")
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="fresh brokers per broker kind; the median is shown")
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--warm-up", type=int, default=6000,
                    help="records each producer sends, unmeasured, before a JIT-compiled broker (Kafka) is measured")
    ap.add_argument("--peers", default="tansu,kafka", help="peers beside tomyum, of tansu,kafka (those that can run)")
    ap.add_argument("--write", type=Path)
    ap.add_argument("--builds", type=Path, nargs="+", metavar="TREE",
                    help="source trees to compare (produce phases only, alternating, median of --rounds)")
    ap.add_argument("--client", choices=("native", "python"), default="native",
                    help="the produce and fetch phases' clients: librdkafka's rdkafka_performance "
                         "(benchmarks.native), or confluent-kafka driven from Python (used when the native one "
                         "cannot be built); the latency runs are Python's")
    args = ap.parse_args()
    args.client = native.client_or_python(args.client)
    if args.builds:
        print(compare_builds(args.builds, args.rounds, args.messages, args.clients, args.client))
        return
    peers = frozenset(args.peers.split(","))
    load = os.getloadavg()[0]
    runs: dict[str, dict[str, list[Phase]]] = {}
    for _ in range(args.rounds):
        for name, broker in brokers(peers):
            warm_up = args.warm_up if name in WARM_UP else 0
            for workload, phase in run_broker(broker, args.messages, args.clients, warm_up, args.client).items():
                runs.setdefault(name, {}).setdefault(workload, []).append(phase)
                print(f"{name} {workload}: {phase.per_s:,.0f} req/s, {phase.cpu_us:,.0f} µs broker CPU/req "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
    phases = {n: {w: median_phase(r) for w, r in ws.items()} for n, ws in runs.items()}
    lat: dict[str, dict[tuple[int, bool], dict[str, float]]] = {}
    for busy in CONDITIONS:
        for rate in LATENCY_RATES:
            for name, broker in brokers(peers):
                with broker() as (bootstrap, _):
                    if name in WARM_UP:
                        latency(bootstrap, min(3.0, args.latency_seconds), rate, topic=f"warm-up-latency-{rate}")
                    with busy_core(busy):
                        lat.setdefault(name, {})[(rate, busy)] = latency(bootstrap, args.latency_seconds, rate)
                print(f"latency {name} {rate}/s{' busy' if busy else ''}: {lat[name][(rate, busy)]}", flush=True)
    out = tables(phases, lat)
    load_end = os.getloadavg()[0]
    print(out)
    print(f"load average {load:.1f} at the start, {load_end:.1f} at the end")
    if args.write:
        command = "python -m benchmarks.small_requests " + " ".join(sys.argv[1:])
        beside = [f"Tansu (memory engine{'' if 'tansu' in phases else ': its binary was not there, left out'})",
                  f"Apache Kafka {pinned_version()} (single-node KRaft, 1 GiB heap, its default flush policy: "
                  "acks=all not waiting for fsync"
                  + (f"; warmed up by the same phases with {args.warm_up:,} records per producer and a 3 s "
                     "latency run, unmeasured, before each measurement: its JIT compiles as it runs)"
                     if "kafka" in phases else ": Java or Maven was not there, left out)")]
        write_section(args.write, "Small requests",
                      f"Machine: {machine_line()}; load average {load:.1f} at the start, {load_end:.1f} at the end "
                      "(rates move\n"
                      "with any other work on the two cores; broker CPU per request much less).  \n"
                      f"Command: `{command}` (also `make bench`).\n\n"
                      + ("The clients of the produce and fetch phases are librdkafka's C `rdkafka_performance`\n"
                         "(`benchmarks.native`), a phase's seconds the longest of its clients' own measures; the\n"
                         "latency runs' are confluent-kafka's, driven from Python.\n\n"
                         if args.client == "native" else
                         "The clients are confluent-kafka's, driven from Python.\n\n")
                      + f"{args.clients} producer processes each send {args.messages:,} records of 100 B to one "
                      "partition,\n"
                      "each record its own Produce request (`batch.num.messages=1`, `linger.ms=0`, 5 in flight); then\n"
                      "one consumer reads the acks=1 records back, one batch per Fetch (`max.partition.fetch.bytes=1`),\n"
                      "counted per record (Tansu answers many batches per Fetch all the same, so its fetch row is per\n"
                      "record, not per request: not a like-for-like pair). "
                      "Broker CPU is the broker process's user + system time over the phase per request served. "
                      f"Beside it: {'; '.join(beside)}; median of {args.rounds} fresh brokers.\n\n" + out)


if __name__ == "__main__":
    main()
