"""Records per second through two stream-processing jobs, tomyum.streams beside Quix Streams
running the same job against the same tomyum broker:

* ``stateless``: parse JSON, keep ``n % 3 != 0``, add a field, write JSON;
* ``windowed``: count per key in 1-second tumbling windows, every update written as JSON.

The jobs themselves are in ``benchmarks/streams_jobs.py``, the two frameworks side by side.

    python -m benchmarks.streams [--records 200000] [--rounds 3] [--write docs/benchmarks.md]
    python -m benchmarks.streams --records 2000 --rounds 1     # a smoke run, ~20 s

One tomyum broker (``group.initial.rebalance.delay.ms=0``, as ``make serve``) is started; an
input topic is filled once with ``--records`` JSON values of about 100 bytes, ``--keys``
distinct keys and timestamps rising by ``--ms-per-record`` up to a minute ago (or from
``--first-timestamp-ms``; the broker rolls segments on record time as Kafka does, and timestamps
older than ``retention.ms`` would be deleted by retention). Then, for each job and round, the
two frameworks run one after the other (which goes first alternates), each as a process of its
own with a fresh consumer group, state directory and output topic, at-least-once with the same
commit interval. A run is done when

* the output topic holds exactly the records the job must produce — for ``stateless`` the
  input records that pass the filter, for ``windowed`` one update per input record (grace is
  the whole span of the input, so no record is late however the partitions interleave), and
* the group has committed the end offset of every input partition;

its figure is input records / seconds from spawning the process to done. The app is then
stopped (SIGTERM) and its output checked record by record (outside the timing). The tables give
the median run by time, with the start-up (spawn to first output record), the rate after it,
and the CPU seconds of the app process and of the broker during the run.

Quix Streams runs from a virtual environment of its own, ``.venv-quix`` (created on first
use, or ``--quix-python``): quixstreams 3.28 pins ``confluent-kafka<2.13`` while tomyum needs
``confluent-kafka>=2.16``, so it cannot join the ``bench`` extra. ``--profile DIR`` adds one
unmeasured tomyum run per job under cProfile and prints its hot spots.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import confluent_kafka
import psutil
from confluent_kafka import Consumer, Producer, TopicPartition

import tomyum
from benchmarks.throughput import create_topic, machine_line, stop_process, write_section
from tomyum.testing import BrokerProcess

ROOT = Path(__file__).resolve().parent.parent
JOBS_FILE = Path(__file__).resolve().parent / "streams_jobs.py"
QUIX_REQUIREMENT = "quixstreams>=3.28.1,<4"
FRAMEWORKS = ("tomyum", "quix")
LABEL = {"tomyum": "tomyum.streams", "quix": "Quix Streams"}
INPUT = "streams-input"


@dataclass
class Run:
    framework: str
    job: str
    records: int
    seconds: float  # spawn to done
    startup: float  # spawn to the first output record
    app_cpu: float
    broker_cpu: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def steady_rate(self) -> float:
        return self.records / max(self.seconds - self.startup, 1e-9)


# the input and what each job must make of it ---------------------------------------------------

def fill_input(bootstrap: str, records: int, keys: int, partitions: int, base_ts: int, ms_per_record: int) -> None:
    create_topic(bootstrap, INPUT, partitions)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 1_000_000, "enable.idempotence": False})
    for n in range(records):
        key = f"key-{n % keys:04d}"
        value = json.dumps({"n": n, "key": key, "sensor": "thermometer-1", "reading": round(n * 0.37 % 100, 2),
                            "unit": "celsius"}).encode()
        while True:
            try:
                producer.produce(INPUT, key=key.encode(), value=value, timestamp=base_ts + n * ms_per_record)
                break
            except BufferError:
                producer.poll(0.05)
        if n % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0, "the input was not all written"


def expected_output(job: str, records: int, keys: int, base_ts: int, ms_per_record: int,
                    window_ms: int) -> dict[object, int]:
    """stateless: {n: 2n} of the records kept; windowed: {(key, window start): final count}."""
    if job == "stateless":
        return {n: 2 * n for n in range(records) if n % 3 != 0}
    counts: dict[object, int] = {}
    for n in range(records):
        ts = base_ts + n * ms_per_record
        window = (f"key-{n % keys:04d}", ts - ts % window_ms)
        counts[window] = counts.get(window, 0) + 1
    return counts


def check_output(bootstrap: str, topic: str, job: str, expected: dict[object, int], count: int) -> None:
    """Read the whole output topic and compare it with what the job must produce."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-check", "enable.auto.commit": False})
    parts = partitions_of(reader, topic)
    ends = [reader.get_watermark_offsets(tp, timeout=10)[1] for tp in parts]
    reader.assign([TopicPartition(topic, tp.partition, 0) for tp in parts])
    got: dict[object, int] = {}
    seen, deadline = 0, time.monotonic() + 120
    while seen < sum(ends) and time.monotonic() < deadline:
        for m in reader.consume(num_messages=10_000, timeout=1):
            if m.error() is not None:
                continue
            seen += 1
            v = json.loads(m.value())
            if job == "stateless":
                got[v["n"]] = v["double"]
            else:
                window = (m.key().decode(), v["start"])
                got[window] = max(got.get(window, 0), v["value"])
                assert v["end"] - v["start"] > 0, v
    reader.close()
    assert seen == count, f"{topic}: {seen} output records, expected {count}"
    assert got == expected, f"{topic}: wrong results ({len(got)} keys, {len(expected)} expected)"


# one run ---------------------------------------------------------------------------------------------

def partitions_of(client: Consumer, topic: str) -> list[TopicPartition]:
    meta = client.list_topics(topic, timeout=10).topics[topic]
    return [TopicPartition(topic, p) for p in sorted(meta.partitions)]


@contextmanager
def tomyum_broker() -> Iterator[BrokerProcess]:
    with tempfile.TemporaryDirectory() as d, \
            BrokerProcess(Path(d) / "data", settings={"group.initial.rebalance.delay.ms": "0"}) as broker:
        try:
            yield broker
        except BaseException:
            print(f"--- the broker's log, last lines ---\n{broker.output()[-6000:]}", file=sys.stderr)
            raise


def cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def run_once(args: argparse.Namespace, framework: str, job: str, run_id: str, bootstrap: str, broker_pid: int,
             python: str, expected_count: int, grace_ms: int, profile: Path | None = None) -> Run:
    group, output = f"{job}-{framework}-{run_id}", f"{job}-{framework}-{run_id}-out"
    create_topic(bootstrap, output, args.partitions)
    watch = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    inputs = partitions_of(watch, INPUT)
    input_ends = [watch.get_watermark_offsets(tp, timeout=10)[1] for tp in inputs]
    outputs = partitions_of(watch, output)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if framework == "quix":
        env.pop("PYTHONPATH", None)  # its own venv; tomyum's sources have no business there
    if profile is not None:
        env["TOMYUM_STREAMS_PROFILE"] = str(profile)
    with tempfile.TemporaryDirectory() as state_dir, open(Path(state_dir) / "app.log", "w+b") as log:
        cmd = [python, str(JOBS_FILE), framework, job, bootstrap, INPUT, output, group, state_dir,
               str(args.commit_interval_ms), str(args.window_ms), str(grace_ms)]
        broker_cpu0 = cpu(broker_pid)
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=state_dir)
        try:
            first, done, deadline = 0.0, 0.0, started + args.timeout
            produced, committed = 0, inputs
            while not done:
                if proc.poll() is not None or time.monotonic() > deadline:
                    if proc.returncode is None:
                        proc.send_signal(signal.SIGUSR1)  # its threads' stacks into the log
                        time.sleep(1)
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-4000:]
                    raise RuntimeError(f"{framework} {job} {'exited' if proc.returncode is not None else 'timed out'}"
                                       f" before its output was complete (produced {produced} of "
                                       f"{expected_count}, committed {[tp.offset for tp in committed]} of "
                                       f"{input_ends}):\n{tail}")
                produced = sum(watch.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in outputs)
                now = time.monotonic()
                if produced and not first:
                    first = now
                if produced >= expected_count:
                    committed = watch.committed(inputs, timeout=10)
                    if [tp.offset for tp in committed] == input_ends:
                        done = now
                        break
                time.sleep(0.05)
            app_cpu, broker_cpu = cpu(proc.pid), cpu(broker_pid) - broker_cpu0
        finally:
            stop_process(proc)
            watch.close()
    return Run(framework, job, sum(input_ends), done - started, first - started, app_cpu, broker_cpu)


# set-up, report ---------------------------------------------------------------------------------------

def quix_python(path: Path | None) -> str:
    """The Python of Quix Streams' own venv, made with ``QUIX_REQUIREMENT`` if absent."""
    if path is not None:
        return str(path)
    venv = ROOT / ".venv-quix"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with {QUIX_REQUIREMENT}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", QUIX_REQUIREMENT], check=True)
    return str(python)


def quix_versions(python: str) -> str:
    code = ("import confluent_kafka, importlib.metadata as m; "
            "print(m.version('quixstreams'), confluent_kafka.__version__, confluent_kafka.libversion()[0])")
    quix, ck, librd = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    return f"quixstreams {quix} (confluent-kafka {ck}, librdkafka {librd})"


def table(runs: list[Run]) -> str:
    rows = ["| job | framework | records/s | records/s after start-up | start-up s | app CPU s | broker CPU s "
            "| tomyum/Quix |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    by = {(r.job, r.framework): r for r in runs}
    for job in dict.fromkeys(r.job for r in runs):
        t, q = by.get((job, "tomyum")), by.get((job, "quix"))
        ratio = f"{t.rate / q.rate:.2f}" if t and q else "–"
        for r in (t, q):
            if r:
                rows.append(f"| {job} | {LABEL[r.framework]} | {r.rate:,.0f} | {r.steady_rate:,.0f} | "
                            f"{r.startup:.1f} | {r.app_cpu:.1f} | {r.broker_cpu:.1f} | {ratio if r is t else ''} |")
    return "\n".join(rows)


def print_profile(path: Path, limit: int = 15) -> None:
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(limit)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--ms-per-record", type=int, default=1, help="event-time step between input records")
    ap.add_argument("--first-timestamp-ms", type=int, help="the first input record's timestamp (default: the "
                    "input ends a minute ago)")
    ap.add_argument("--window-ms", type=int, default=1000)
    ap.add_argument("--commit-interval-ms", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3, help="runs per job and framework; the median is shown")
    ap.add_argument("--jobs", default="stateless,windowed")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    ap.add_argument("--timeout", type=float, default=180, help="seconds one run may take")
    ap.add_argument("--quix-python", type=Path, help="a Python with quixstreams (default: .venv-quix, made if absent)")
    ap.add_argument("--profile", type=Path, help="a directory: one more tomyum run per job under cProfile")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    jobs, frameworks = args.jobs.split(","), args.frameworks.split(",")
    pythons = {"tomyum": sys.executable, "quix": quix_python(args.quix_python) if "quix" in frameworks else ""}
    grace_ms = args.records * args.ms_per_record + args.window_ms
    # by default event time ends a minute ago: recent enough that no retention (7 days) applies
    base_ts = args.first_timestamp_ms or int(time.time() * 1000) - grace_ms - 60_000
    load = os.getloadavg()
    runs: list[Run] = []
    with tomyum_broker() as broker:
        assert broker.proc is not None
        bootstrap, broker_pid = broker.bootstrap, broker.proc.pid
        started = time.monotonic()
        fill_input(bootstrap, args.records, args.keys, args.partitions, base_ts, args.ms_per_record)
        print(f"input: {args.records:,} records in {time.monotonic() - started:.1f} s", flush=True)
        for job in jobs:
            expected = expected_output(job, args.records, args.keys, base_ts, args.ms_per_record, args.window_ms)
            count = len(expected) if job == "stateless" else args.records
            by_framework: dict[str, list[Run]] = {f: [] for f in frameworks}
            for round_ in range(args.rounds):
                order = frameworks if round_ % 2 == 0 else frameworks[::-1]
                for framework in order:
                    run = run_once(args, framework, job, str(round_), bootstrap, broker_pid, pythons[framework],
                                   count, grace_ms)
                    check_output(bootstrap, f"{job}-{framework}-{round_}-out", job, expected, count)
                    by_framework[framework].append(run)
                    print(f"{job} {framework} round {round_}: {run.rate:,.0f} records/s ({run.seconds:.2f} s, "
                          f"start-up {run.startup:.2f} s, app CPU {run.app_cpu:.1f} s, "
                          f"broker CPU {run.broker_cpu:.1f} s)", flush=True)
            for same in by_framework.values():
                runs.append(sorted(same, key=lambda r: r.seconds)[len(same) // 2])
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                path = (args.profile / f"{job}.prof").resolve()
                run_once(args, "tomyum", job, "profile", bootstrap, broker_pid, sys.executable, count, grace_ms,
                         profile=path)
                print(f"--- tomyum.streams {job} under cProfile ({path}) ---")
                print_profile(path)
    out = table(runs)
    print(out)
    if args.write:
        command = "python -m benchmarks.streams " + " ".join(sys.argv[1:])
        versions = (f"tomyum {tomyum.__version__} (confluent-kafka {confluent_kafka.__version__}, librdkafka "
                    f"{confluent_kafka.libversion()[0]}); {quix_versions(pythons['quix'])}")
        write_section(args.write, "Stream processing: tomyum.streams beside Quix Streams",
                      f"Machine: {machine_line()}; load average {load[0]:.2f} at the start.  \n"
                      f"Versions: {versions}.  \nCommand: `{command}` (also `make bench-streams`).\n\n"
                      f"One tomyum broker; the input topic holds {args.records:,} JSON values of about 100 bytes,\n"
                      f"{args.keys:,} keys, {args.partitions} partitions, timestamps {args.ms_per_record} ms apart. "
                      "Each framework runs the same job\n(`benchmarks/streams_jobs.py`) in its own process, "
                      f"at-least-once, commit interval {args.commit_interval_ms} ms,\nJSON in and out, "
                      "changelogged persistent state (SQLite for tomyum, RocksDB for Quix). records/s is input\n"
                      "records over the time from spawning the app until the output topic holds every expected "
                      "record and\nthe group has committed all input offsets; the median of "
                      f"{args.rounds} runs, the frameworks alternating.\n"
                      f"`stateless` keeps two thirds of the records; `windowed` counts per key in "
                      f"{args.window_ms} ms tumbling windows\nand writes every update (one output per input). "
                      "Start-up is from spawning the app to its first output\nrecord; Quix's includes the 1 s it "
                      "sleeps after creating its changelog topic, tomyum's does not include\nkio registering "
                      "hypothesis strategies at import (hypothesis comes with the test extra only, so the\n"
                      "benchmark hides it). CPU is the app process's whole life and the broker's during the run.\n\n"
                      + out)


if __name__ == "__main__":
    main()
