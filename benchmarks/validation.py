"""What checking every record of a produced batch costs (storage/log_validator.py), in
process, per record:

    python -m benchmarks.validation [--records 9000] [--repeat 20]

Batches shaped as librdkafka writes them (100-byte values, no key, timestamp deltas growing a
millisecond every few hundred records) and batches whose records all differ (keys and values
of random lengths): ``validate_batch`` (the broker's path) against the one-by-one walk.
"""

from __future__ import annotations

import argparse
import os
import random
import time

from tomyum.protocol.records import parse_header
from tomyum.storage.log_validator import TimestampPolicy, records_of, validate_batch, walk_records
from tomyum.testing.batches import crafted_batch, crafted_record


def per_record_ns(fn: object, repeat: int, records: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best / records * 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=9000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    n, rng = args.records, random.Random(1)
    now = int(time.time() * 1000)
    policy = TimestampPolicy(now_ms=now, log_append_time=False, before_max_ms=2**63 - 1, after_max_ms=3_600_000)
    value = os.urandom(100)
    shapes = {
        "alike (librdkafka-like)": [crafted_record(i, None, value, ts_delta=i // 300) for i in range(n)],
        "all different": [crafted_record(i, os.urandom(rng.randrange(20)), os.urandom(rng.randrange(50, 150)))
                          for i in range(n)],
    }
    for name, records in shapes.items():
        batch = crafted_batch(records, base_timestamp=now)
        h = parse_header(batch)
        data, start, end = records_of(h, memoryview(batch))
        fast = per_record_ns(lambda: validate_batch(h, memoryview(batch), policy, compacted=False,
                                                    topic_partition="t-0"), args.repeat, n)
        walk = per_record_ns(lambda: walk_records(data, n, start=start, end=end), args.repeat, n)
        print(f"{name}: validate_batch {fast:.0f} ns/record, one-by-one walk {walk:.0f} ns/record ({n} records)")


if __name__ == "__main__":
    main()
