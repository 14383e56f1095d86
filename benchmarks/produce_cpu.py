"""Produce throughput and broker CPU for one workload, median of fresh brokers: the quick
measurement used for the before/after figures of an optimisation.

    python -m benchmarks.produce_cpu VALUE_BYTES MESSAGES PARTITIONS [--rounds 3] [--clients 2]
"""

from __future__ import annotations

import argparse
import statistics

from benchmarks.throughput import create_topic, produce_phase, tomyum_broker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("value_bytes", type=int)
    ap.add_argument("messages", type=int)
    ap.add_argument("partitions", type=int)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=2)
    args = ap.parse_args()
    runs = []
    for _ in range(args.rounds):
        with tomyum_broker() as (bootstrap, pid):
            create_topic(bootstrap, "bench", args.partitions)
            seconds, _, broker_cpu = produce_phase(bootstrap, pid, "bench", args.partitions, args.value_bytes,
                                                   args.messages, clients=args.clients)
            runs.append((args.messages / seconds, broker_cpu))
    print(f"produce {args.partitions}p {args.value_bytes}B: {statistics.median(r[0] for r in runs):,.0f} msg/s, "
          f"broker CPU {statistics.median(r[1] for r in runs):.2f} s (median of {args.rounds})")


if __name__ == "__main__":
    main()
