"""A consume-transform-produce worker with confluent-kafka transactions, run as a process by
test_exactly_once.py.

    python eos_worker.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID TOTAL [--abort N]... [--hang-in N]

Reads INPUT (read_committed) in GROUP, writes each record upper-cased to OUTPUT keyed
``partition:offset`` of its input, and commits the input offsets in the same transaction
(send_offsets_to_transaction), 10 records per transaction. ``--abort N`` aborts the N-th
transaction (counting from 1) and rewinds to the last committed offsets, so the records are
processed again; ``--hang-in N`` writes half of the N-th transaction, prints ``HANGING`` and
waits to be killed. Exits once TOTAL input records have been committed by the group.
"""

from __future__ import annotations

import argparse
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

BATCH = 10


def main() -> int:
    ap = argparse.ArgumentParser()
    for name in ("bootstrap", "input", "output", "group", "transactional_id"):
        ap.add_argument(name)
    ap.add_argument("total", type=int)
    ap.add_argument("--abort", type=int, action="append", default=[])
    ap.add_argument("--hang-in", type=int, default=0)
    ap.add_argument("--txn-timeout-ms", type=int, default=60000)
    args = ap.parse_args()

    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed", "session.timeout.ms": 6000})
    producer = Producer({"bootstrap.servers": args.bootstrap, "transactional.id": args.transactional_id,
                         "transaction.timeout.ms": args.txn_timeout_ms, "linger.ms": 5})
    producer.init_transactions(30)
    consumer.subscribe([args.input])
    deadline = time.monotonic() + 80
    txn_no = 0
    try:
        while time.monotonic() < deadline:
            if committed_total(consumer, args.input) >= args.total:
                print("DONE", flush=True)
                return 0
            msgs = [m for m in consumer.consume(num_messages=BATCH, timeout=1) if m.error() is None]
            if not msgs:
                continue
            txn_no += 1
            producer.begin_transaction()
            for i, m in enumerate(msgs):
                if txn_no == args.hang_in and i == len(msgs) // 2:
                    producer.flush(10)
                    print("HANGING", flush=True)
                    time.sleep(120)
                producer.produce(args.output, key=f"{m.partition()}:{m.offset()}".encode(),
                                 value=m.value().upper(), partition=m.partition())
            positions = consumer.position(consumer.assignment())
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
            if txn_no in args.abort:
                producer.abort_transaction(30)
                rewind(consumer)
                print(f"ABORTED {txn_no}", flush=True)
            else:
                producer.commit_transaction(30)
                print(f"COMMITTED {txn_no} {len(msgs)}", flush=True)
        print("TIMED OUT", flush=True)
        return 1
    except KafkaException as e:
        print(f"FAILED {e}", flush=True)
        return 2
    finally:
        consumer.close()


def committed_total(consumer: Consumer, topic: str) -> int:
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    # answered once the group's join completes (a killed member's session must expire first)
    committed = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=30)
    return sum(max(tp.offset, 0) for tp in committed)


def rewind(consumer: Consumer) -> None:
    """Back to the group's committed offsets (or the start), to process an aborted batch again."""
    for tp in consumer.committed(consumer.assignment(), timeout=30):
        consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0))


if __name__ == "__main__":
    sys.exit(main())
