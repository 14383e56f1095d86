"""tomyum connect beside Apache Kafka Connect's own standalone worker, on one tomyum broker:

* FileStream source: ``--lines`` lines of ``--size`` bytes from a file into a topic (each worker
  its own topic);
* FileStream sink: the topic tomyum's source wrote, back out to a file (each worker its own file);
* PostgreSQL CDC: ``--changes`` changes (half inserts, half updates, in transactions of 1,000 rows)
  committed to a table before the worker starts (the slot and publication made beforehand,
  ``snapshot.mode=no_data``), streamed by tomyum's CDC connector and by Debezium's PostgreSQL
  connector on Kafka's worker.

Each run is timed from spawning the worker until every record is in the topic (the sink file
holds every line); the worker's start-up (until its REST server answers) is shown apart, and its
CPU seconds over its whole life. JsonConverter with schemas for keys and values everywhere.
Kafka's worker (connect-runtime 4.3.0 for FileStream, 4.1.1 with Debezium 3.6: the versions the
interop tests pin, jars fetched with Maven on first use) runs with its default JIT.

    python -m benchmarks.connect [--lines 200000] [--changes 100000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from confluent_kafka import Consumer, TopicPartition

from benchmarks.throughput import cpu, machine_line, write_section
from tomyum.testing import BrokerProcess, wait_until
from tomyum.testing.connect import ConnectProcess, KafkaConnectProcess
from tomyum.testing.kafka_peer import fetch_jars
from tomyum.testing.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
CONNECT_POM = ROOT / "tests" / "peers" / "connect" / "pom.xml"
DEBEZIUM_POM = ROOT / "tests" / "interop" / "debezium" / "pom.xml"
WORKERS = ("tomyum", "kafka")
LABEL = {"tomyum": "tomyum connect", "kafka": "Kafka Connect"}


@dataclass
class Run:
    case: str
    worker: str
    records: int
    seconds: float
    startup: float
    cpu: float
    spread: str = ""  # the fastest and slowest run's seconds, when the median of several is shown

    @property
    def rate(self) -> float:
        return self.records / self.seconds


class Counter:
    """Records in a topic: the sum of its partitions' high watermarks (0 while it does not exist)."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-connect"})

    def __call__(self, topic: str) -> int:
        meta = self.consumer.list_topics(timeout=10).topics.get(topic)
        if meta is None or not meta.partitions:
            return 0
        return sum(int(self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                   for p in meta.partitions)

    def close(self) -> None:
        self.consumer.close()


@contextmanager
def worker(kind: str, workdir: Path, bootstrap: str, connector: Mapping[str, str],
           jars: Path | None) -> Iterator[psutil.Process]:
    """tomyum's worker or Kafka's (its default JIT: the tests' TieredStopAtLevel=1 only saves start-up)."""
    if kind == "tomyum":
        with ConnectProcess(workdir, bootstrap, connectors=[connector], start_timeout=120) as w:
            assert w.process is not None
            yield psutil.Process(w.process.pid)
        return
    assert jars is not None
    kafka = KafkaConnectProcess(jars, workdir, {"bootstrap.servers": bootstrap, "plugin.discovery": "hybrid_warn"},
                                connectors=[connector], heap="512m", start_timeout=180)
    kafka.command.remove("-XX:TieredStopAtLevel=1")
    with kafka:
        assert kafka.process is not None
        yield psutil.Process(kafka.process.pid)


def timed(case: str, kind: str, records: int, workdir: Path, bootstrap: str, connector: Mapping[str, str],
          jars: Path | None, done: Callable[[], bool]) -> Run:
    started = time.monotonic()
    with worker(kind, workdir, bootstrap, connector, jars) as process:
        startup = time.monotonic() - started
        wait_until(done, timeout=300, interval=0.1, what=f"{case} through {LABEL[kind]}")
        seconds = time.monotonic() - started
        used = cpu(process.pid)
    run = Run(case, kind, records, seconds, startup, used)
    print(f"{case} {LABEL[kind]}: {run.rate:,.0f} records/s ({seconds:.1f} s, start-up {startup:.1f} s, "
          f"worker CPU {used:.1f} s)", flush=True)
    return run


def order(round_: int) -> tuple[str, ...]:
    """The workers in turn, the first alternating from round to round."""
    return WORKERS if round_ % 2 == 0 else WORKERS[::-1]


def filestream(args: argparse.Namespace, round_: int, d: Path, bootstrap: str, count: Counter,
               jars: dict[str, Path | None]) -> list[Run]:
    source = d / "in.txt"
    line = "x" * (args.size - 1) + "\n"
    if not source.exists():
        source.write_text(line * args.lines)
    runs = []
    for kind in order(round_):
        topic = f"filestream-{kind}-{round_}"
        conf = {"name": f"src-{kind}-{round_}",
                "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                "tasks.max": "1", "file": str(source), "topic": topic}
        runs.append(timed("FileStream source", kind, args.lines, d / f"src-{kind}-{round_}", bootstrap, conf,
                          jars[kind],
                          lambda: count(topic) >= args.lines))  # noqa: B023 - called within the iteration
    for kind in order(round_):
        sink = d / f"out-{kind}-{round_}.txt"
        conf = {"name": f"sink-{kind}-{round_}",
                "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
                "tasks.max": "1", "file": str(sink), "topics": f"filestream-tomyum-{round_}"}
        runs.append(timed("FileStream sink", kind, args.lines, d / f"sink-{kind}-{round_}", bootstrap, conf, jars[kind],
                          lambda: sink.exists() and sink.stat().st_size >= len(line) * args.lines))  # noqa: B023
    return runs


def cdc_workload(dsn: str, slot: str, changes: int) -> float:
    """The table, the publication and the slot, then ``changes`` committed changes; seconds taken."""
    rows = changes // 2
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as c:
        c.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL, "
                  "price numeric(10,2), updated timestamp NOT NULL DEFAULT now())")
        c.execute("CREATE PUBLICATION dbz_publication FOR ALL TABLES")
        c.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        started = time.monotonic()
        for low in range(1, rows + 1, 1000):
            high = min(low + 999, rows)
            c.execute("INSERT INTO items (id, name, qty, price) SELECT i, 'item ' || i, i %% 100, (i %% 1000) / 10.0 "
                      "FROM generate_series(%s::int, %s::int) AS i", (low, high))
        for low in range(1, rows + 1, 1000):
            c.execute("UPDATE items SET qty = qty + 1, updated = now() WHERE id BETWEEN %s AND %s",
                      (low, min(low + 999, rows)))
        return time.monotonic() - started


def cdc(args: argparse.Namespace, round_: int, pg: PostgresServer, d: Path, bootstrap: str, count: Counter,
        jars: Path, workload: list[float]) -> list[Run]:
    runs: list[Run] = []
    expected = args.changes // 2 * 2
    for kind in order(round_):
        db = slot = f"cdc_{kind}_{round_}"
        dsn = pg.create_database(db)
        workload.append(cdc_workload(dsn, slot, expected))
        print(f"CDC workload in {db}: {expected:,} changes committed in {workload[-1]:.2f} s", flush=True)
        topic = f"{kind}-{round_}.public.items"
        conf = {"name": f"cdc-{kind}-{round_}",
                "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                "tasks.max": "1", "database.hostname": "127.0.0.1", "database.port": str(pg.port),
                "database.user": "tomyum", "database.password": "unused", "database.dbname": db,
                "topic.prefix": f"{kind}-{round_}", "plugin.name": "pgoutput", "slot.name": slot,
                "snapshot.mode": "no_data", "table.include.list": "public.items"}
        runs.append(timed("PostgreSQL CDC", kind, expected, d / f"cdc-{kind}-{round_}", bootstrap, conf,
                          jars if kind == "kafka" else None,
                          lambda: count(topic) >= expected))  # noqa: B023 - called within the iteration
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as c:  # its WAL is no longer kept
            c.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    return runs


def medians(runs: list[Run]) -> list[Run]:
    """Per case and worker, in first-seen order, the run of median time, with the spread of all."""
    keys = list(dict.fromkeys((r.case, r.worker) for r in runs))
    out = []
    for case, kind in keys:
        same = sorted((r for r in runs if (r.case, r.worker) == (case, kind)), key=lambda r: r.seconds)
        mid = same[len(same) // 2]
        out.append(Run(mid.case, mid.worker, mid.records, mid.seconds, mid.startup, mid.cpu,
                       f"{same[0].seconds:.1f}–{same[-1].seconds:.1f}" if len(same) > 1 else ""))
    return out


def table(runs: list[Run]) -> str:
    out = ["| case | worker | records/s | records/s after start-up | seconds | all runs, s | start-up s "
           "| worker CPU s | tomyum/Kafka |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        after = run.records / max(run.seconds - run.startup, 1e-9)
        ratio = ""
        if run.worker == "tomyum":
            other = next(r for r in runs if r.case == run.case and r.worker == "kafka")
            ratio = f"{run.rate / other.rate:.2f}"
        out.append(f"| {run.case} | {LABEL[run.worker]} | {run.rate:,.0f} | {after:,.0f} | {run.seconds:.1f} "
                   f"| {run.spread} | {run.startup:.1f} | {run.cpu:.1f} | {ratio} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=100, help="bytes per line, its newline included")
    ap.add_argument("--changes", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3, help="runs per case and worker; the median is shown")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    if shutil.which("java") is None or shutil.which("mvn") is None:
        sys.exit("benchmarks.connect: java and mvn are needed to run Kafka Connect's worker")
    connect_jars, debezium_jars = fetch_jars(pom=CONNECT_POM, timeout=900), fetch_jars(pom=DEBEZIUM_POM, timeout=900)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-connect-") as tmp:
        d = Path(tmp)
        # no 3 s wait before a new group's first rebalance (the sinks' groups), as `make serve`
        with BrokerProcess(d / "data", settings={"group.initial.rebalance.delay.ms": "0"}) as broker:
            assert broker.proc is not None
            count = Counter(broker.bootstrap)
            runs: list[Run] = []
            workload: list[float] = []
            try:
                for round_ in range(args.rounds):
                    runs += filestream(args, round_, d, broker.bootstrap, count,
                                       {"tomyum": None, "kafka": connect_jars})
                with PostgresServer() as pg:
                    for round_ in range(args.rounds):
                        runs += cdc(args, round_, pg, d, broker.bootstrap, count, debezium_jars, workload)
            finally:
                count.close()
    runs = medians(runs)
    end_load = os.getloadavg()
    out = table(runs)
    print(out)
    if args.write:
        command = "python -m benchmarks.connect " + " ".join(sys.argv[1:])
        write_section(args.write, "Connect: tomyum connect beside Kafka Connect's worker",
                      f"Machine: {machine_line()}; load average {load[0]:.2f} at the start, {end_load[0]:.2f} at "
                      f"the end.  \nCommand: `{command}` (also `make bench-connect`).\n\n"
                      "One tomyum broker; each worker is a standalone worker with one connector, one task,\n"
                      "JsonConverter (schemas on) for keys and values, offsets flushed every second. Kafka's worker\n"
                      "is connect-runtime 4.3.0 with connect-file for FileStream and connect-runtime 4.1.1 with\n"
                      "Debezium 3.6.1 for CDC (the versions the interop tests pin), `-Xmx512m`, default JIT.\n"
                      f"FileStream source: {args.lines:,} lines of {args.size} B from one file into a topic of its "
                      "own per worker;\nFileStream sink: tomyum's source topic back out to a file of its own per "
                      f"worker. PostgreSQL CDC:\n{args.changes // 2:,} inserts then {args.changes // 2:,} updates "
                      f"(transactions of 1,000 rows, committed in {min(workload):.1f}–{max(workload):.1f} s) into a\n"
                      "five-column table of a database of its own per worker, its publication and slot made before "
                      "the\nworkload, then the worker started with `snapshot.mode=no_data`: tomyum's "
                      "`PostgresConnector`\nbeside Debezium's. seconds run from spawning the worker until the "
                      "topic holds every record (the\nsink file every line); start-up is until its REST server "
                      "answers; worker CPU is the worker\nprocess's over its whole life. The median of "
                      f"{args.rounds} runs, the workers alternating; all runs\ngives the fastest and the slowest. "
                      "Kafka's worker spends much of a short run starting\n(the JVM, the plug-in scan, JIT warm-up): "
                      "records/s after start-up compares the steady rates.\n\n" + out)


if __name__ == "__main__":
    main()
