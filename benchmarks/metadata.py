"""What cluster metadata costs: creating many topics, and starting a broker that holds many
partitions.

    python -m benchmarks.metadata [--topics 1000] [--partitions 10000] [--write docs/benchmarks.md]

* create: ``--topics`` topics of one partition each, one CreateTopics request at a time
  (confluent-kafka's AdminClient, each awaited), on a fresh broker; topics per second.
* start: a data dir holding ``--partitions`` partitions (100 topics, empty logs), then the
  time from starting the broker process to its ready line, after a clean stop and after
  kill -9 (a crash makes every log be recovered from its last checkpoint).

Each figure is the median of ``--rounds`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.throughput import machine_line, write_section
from tomyum.testing import BrokerProcess


def create_topics(count: int) -> float:
    with tempfile.TemporaryDirectory() as d, BrokerProcess(Path(d) / "data") as b:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        start = time.perf_counter()
        for i in range(count):
            name = f"topic-{i:05d}"
            admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=30)[name].result(60)
        return time.perf_counter() - start


def start_times(partitions: int, rounds: int) -> tuple[list[float], list[float]]:
    topics = 100
    per_topic = partitions // topics
    clean, crashed = [], []
    with tempfile.TemporaryDirectory() as d:
        b = BrokerProcess(Path(d) / "data", start_timeout=600)
        b.start()
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        for i in range(topics):
            name = f"many-{i:03d}"
            admin.create_topics([NewTopic(name, per_topic, 1)], operation_timeout=120)[name].result(180)
        for _ in range(rounds):
            b.stop(timeout=600)  # a clean stop of 10,000 partitions takes a while on 2 busy cores
            t0 = time.perf_counter()
            b.start()
            clean.append(time.perf_counter() - t0)
            b.kill()
            t0 = time.perf_counter()
            b.start()
            crashed.append(time.perf_counter() - t0)
        b.stop(timeout=600)
    return clean, crashed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topics", type=int, default=1000)
    ap.add_argument("--partitions", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--label", default="this build", help="the row's name, e.g. before/after")
    ap.add_argument("--write", type=Path, help="add the row to the 'Cluster metadata' section of this file")
    args = ap.parse_args()
    creates = [create_topics(args.topics) for _ in range(args.rounds)]
    clean, crashed = start_times(args.partitions, args.rounds)
    seconds = statistics.median(creates)
    row = (f"| {args.label} | {seconds:.2f} s ({args.topics / seconds:.0f} topics/s) | "
           f"{statistics.median(clean):.2f} s | {statistics.median(crashed):.2f} s |")
    print(row)
    if args.write:
        heading = "Cluster metadata: creating topics, starting with many partitions"
        text = args.write.read_text() if args.write.exists() else ""
        start = text.find(f"\n## {heading}\n")
        rows = []
        if start >= 0:
            end = text.find("\n## ", start + 1)
            rows = [line for line in text[start:end if end >= 0 else None].splitlines()
                    if line.startswith("| ") and not line.startswith("| build") and
                    not line.startswith(f"| {args.label} |")]
        body = (f"Creating {args.topics} topics of one partition, one CreateTopics request at a time, "
                f"and starting a broker whose data dir holds {args.partitions} partitions (100 topics), "
                "from process start to its ready line. Medians of "
                f"{args.rounds} runs; {machine_line()}.\n\n"
                "    python -m benchmarks.metadata --label after --write docs/benchmarks.md\n\n"
                f"| build | create {args.topics} topics | start after a clean stop | start after kill -9 |\n"
                "|---|---:|---:|---:|\n" + "\n".join(rows + [row]))
        write_section(args.write, heading, body)


if __name__ == "__main__":
    main()
