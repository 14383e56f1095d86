"""One round of test_txn_kill_mid_end.py: a transactional producer that initialises (timing
it), writes one small transaction and ends it, announcing each step on stdout so the test can
SIGKILL it somewhere inside ``commit_transaction()`` / ``abort_transaction()``.

    python txn_end_worker.py BOOTSTRAP TOPIC TRANSACTIONAL_ID KEY commit|abort TIMEOUT_MS [flush]

Prints ``INIT <ms>`` once init_transactions() returned, ``ENDING`` just before the commit or
abort, then ``COMMITTED`` or ``ABORTED``; exits 2 if init_transactions() failed, and 3 after
``FAILED <error>`` if the commit or abort did (so the test can say why).
"""

from __future__ import annotations

import sys
import time

from confluent_kafka import KafkaException, Producer

RECORDS = 4


def main() -> int:
    bootstrap, topic, tid, key, end, timeout_ms = sys.argv[1:7]
    flush = sys.argv[7:] == ["flush"]
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid,
                  "transaction.timeout.ms": int(timeout_ms), "retry.backoff.ms": 20,
                  "reconnect.backoff.max.ms": 100, "linger.ms": 0})
    started = time.monotonic()
    try:
        p.init_transactions(int(timeout_ms) / 1000)
    except KafkaException as e:
        print(f"INITFAIL {(time.monotonic() - started) * 1000:.0f} {e}", flush=True)
        return 2
    print(f"INIT {(time.monotonic() - started) * 1000:.0f}", flush=True)
    p.begin_transaction()
    for j in range(RECORDS):
        p.produce(topic, key=key.encode(), value=f"{key}-{j}".encode(), partition=j % 2)
    if flush:
        p.flush(10)
    print("ENDING", flush=True)
    try:
        if end == "commit":
            p.commit_transaction(30)
            print("COMMITTED", flush=True)
        else:
            p.abort_transaction(30)
            print("ABORTED", flush=True)
    except KafkaException as e:
        print(f"FAILED {e}", flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
