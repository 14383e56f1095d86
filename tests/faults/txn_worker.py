"""A transactional producer for test_txn_crash.py: commits small transactions in a loop
until stopped, surviving broker restarts, and prints ``COMMITTED <n>`` for each transaction
whose commit returned.

    python txn_worker.py BOOTSTRAP TOPIC
"""

from __future__ import annotations

import signal
import sys

from confluent_kafka import KafkaException, Producer

RECORDS = 5


def producer(bootstrap: str) -> Producer:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "crash-tid", "transaction.timeout.ms": 10000,
                  "message.timeout.ms": 10000, "retry.backoff.ms": 50, "reconnect.backoff.max.ms": 200})
    p.init_transactions(60)
    return p


def main() -> int:
    bootstrap, topic = sys.argv[1], sys.argv[2]
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    p = producer(bootstrap)
    n = 0
    while not stopping:
        try:
            p.begin_transaction()
            for j in range(RECORDS):
                p.produce(topic, key=b"txn%d" % n, value=b"txn%d-%d" % (n, j), partition=j % 2)
            p.commit_transaction(30)
            print(f"COMMITTED {n}", flush=True)
        except KafkaException as e:
            err = e.args[0]
            if err.txn_requires_abort():
                try:
                    p.abort_transaction(30)
                except KafkaException:
                    p = producer(bootstrap)
            elif err.fatal() or not err.retriable():
                p = producer(bootstrap)  # fenced or fatal: a new producer takes over the id
        n += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
