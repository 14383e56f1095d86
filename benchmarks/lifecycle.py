"""What durability and zero copy cost, tomyum against itself, side by side in one run:

* produce throughput with acks=all (answered after the group commit's fsync) against acks=1
  (answered once written; flushed by the group commit all the same) — the ratio is what
  durable produce costs;
* consume throughput with fetched records sent by sendfile (zero copy) against read into
  memory and written (``fetch.zero.copy.min.bytes=-1``).

    python -m benchmarks.lifecycle [--rounds 3] [--write docs/benchmarks.md]

The two variants alternate, each on a fresh broker, for ``--rounds`` rounds; the table shows
the median of the rounds, with CPU seconds of the client and the broker.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from benchmarks.throughput import (
    consume_phase,
    create_topic,
    machine_line,
    produce_phase,
    tomyum_broker,
    write_section,
)

Row = tuple[str, str, float, float, float, float]  # workload, variant, msgs/s, MB/s, client s, broker s


def measure_produce(acks: str, partitions: int, value_bytes: int, count: int) -> tuple[float, float, float]:
    with tomyum_broker() as (bootstrap, pid):
        create_topic(bootstrap, "bench", partitions)
        return produce_phase(bootstrap, pid, "bench", partitions, value_bytes, count, acks=acks)


def measure_consume(zero_copy_min: str, partitions: int, value_bytes: int, count: int) -> tuple[float, float, float]:
    with tomyum_broker({"fetch.zero.copy.min.bytes": zero_copy_min}) as (bootstrap, pid):
        create_topic(bootstrap, "bench", partitions)
        produce_phase(bootstrap, pid, "bench", partitions, value_bytes, count)
        return consume_phase(bootstrap, pid, "bench", partitions, count)


def median_row(workload: str, variant: str, runs: list[tuple[float, float, float]], count: int,
               value_bytes: int) -> Row:
    seconds = statistics.median(r[0] for r in runs)
    return (workload, variant, count / seconds, count * value_bytes / seconds / 1e6,
            statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs))


def table(rows: list[Row], ratio_label: str) -> str:
    out = [f"| workload | variant | msgs/s | MB/s | client CPU s | broker CPU s | {ratio_label} |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for i in range(0, len(rows), 2):
        a, b = rows[i], rows[i + 1]
        ratio = a[2] / b[2]
        for r in (a, b):
            out.append(f"| {r[0]} | {r[1]} | {r[2]:,.0f} | {r[3]:,.1f} | {r[4]:.1f} | {r[5]:.1f} | "
                       f"{f'{ratio:.2f}' if r is a else ''} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages-100b", type=int, default=200_000)
    ap.add_argument("--messages-10k", type=int, default=20_000)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    sizes = ((100, args.messages_100b), (10 * 1024, args.messages_10k))
    produce_rows: list[Row] = []
    consume_rows: list[Row] = []
    for partitions in (1, 8):
        for value_bytes, count in sizes:
            workload = f"{partitions}p {value_bytes}B"
            durable, fast = [], []
            zero_copy, copying = [], []
            for _ in range(args.rounds):
                durable.append(measure_produce("all", partitions, value_bytes, count))
                fast.append(measure_produce("1", partitions, value_bytes, count))
                zero_copy.append(measure_consume("65536", partitions, value_bytes, count))
                copying.append(measure_consume("-1", partitions, value_bytes, count))
            produce_rows += [median_row(f"produce {workload}", "acks=all (fsync)", durable, count, value_bytes),
                             median_row(f"produce {workload}", "acks=1", fast, count, value_bytes)]
            consume_rows += [median_row(f"consume {workload}", "sendfile", zero_copy, count, value_bytes),
                             median_row(f"consume {workload}", "read + write", copying, count, value_bytes)]
            print(f"done: {workload}", flush=True)
    produce_table = table(produce_rows, "acks=all / acks=1")
    consume_table = table(consume_rows, "sendfile / copy")
    print(produce_table, consume_table, sep="\n\n")
    if args.write:
        command = "python -m benchmarks.lifecycle " + " ".join(sys.argv[1:])
        write_section(args.write, "Durability and zero copy",
                      f"Machine: {machine_line()}.  \nCommand: `{command}`.\n\n"
                      "tomyum against itself; the variants alternate on fresh brokers, median of the rounds.\n"
                      "With the default flush policy acks=1 data is fsynced by the group commit too, so the\n"
                      "produce ratio measures what waiting for the fsync before answering costs the producer.\n\n"
                      "### Produce: acks=all (answered after the group commit's fsync) against acks=1\n\n"
                      + produce_table +
                      "\n\n### Consume: fetched records by sendfile (ranges of 64 KiB or more) against "
                      "read into memory\n\n" + consume_table)


if __name__ == "__main__":
    main()
