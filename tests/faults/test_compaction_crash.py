"""kill -9 while the cleaner compacts: after each restart the log is consistent — offsets only
increase, no record moved, every batch's CRC is valid, no ``.cleaned`` file is left, and the
latest acknowledged value of every key is there."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.protocol.records import iter_batches
from tomyum.testing import BrokerProcess, wait_until

TIMEOUT = 30
KEYS = 50
SETTINGS = {"log.cleaner.backoff.ms": "20", "log.retention.check.interval.ms": "50"}
CONFIGS = {"cleanup.policy": "compact", "internal.segment.bytes": "8192", "min.cleanable.dirty.ratio": "0.01"}


def produce_round(bootstrap: str, topic: str, start: int, n: int, latest: dict[bytes, bytes]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "batch.num.messages": 20,
                  "linger.ms": 1, "compression.type": "lz4"})

    def on_delivery(err: object, msg: object) -> None:
        assert err is None, err
        latest[msg.key()] = msg.value()  # type: ignore[attr-defined]

    for i in range(start, start + n):
        p.produce(topic, key=b"k%d" % (i % KEYS), value=b"v%d" % i, partition=0, on_delivery=on_delivery)
        p.poll(0)
    assert p.flush(TIMEOUT) == 0


def read_log(bootstrap: str, topic: str) -> list[tuple[int, bytes, bytes]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "check", "enable.auto.commit": False,
                  "check.crcs": True})
    try:
        _, end = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT)
        c.assign([TopicPartition(topic, 0, -2)])
        out: list[tuple[int, bytes, bytes]] = []
        deadline = time.monotonic() + TIMEOUT
        while not out or out[-1][0] < end - 1:
            assert time.monotonic() < deadline, "could not read back the whole log"
            for m in c.consume(num_messages=10_000, timeout=0.5):
                assert m.error() is None, m.error()
                out.append((m.offset(), m.key(), m.value()))
        return out
    finally:
        c.close()


@pytest.mark.slow  # over 9 s: make test-slow
def test_kill9_during_compaction_leaves_a_consistent_log(tmp_path: Path) -> None:
    topic = "compacted"
    latest: dict[bytes, bytes] = {}
    with BrokerProcess(tmp_path / "data", settings=SETTINGS) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(topic, 1, 1, config=CONFIGS)])[topic].result(TIMEOUT)
        written = 0
        partition_dir = tmp_path / "data" / f"{topic}-0"
        for cycle in range(6):
            produce_round(broker.bootstrap, topic, written, 3000, latest)
            written += 3000
            # the cleaner runs every 20 ms on this much dirty data: kill it while it writes
            # its cleaned files (odd cycles) or at once (even cycles: mid-produce cleaning)
            if cycle % 2:
                wait_until(lambda: next(partition_dir.glob("*.cleaned"), None), TIMEOUT, interval=0.0005,
                           what="the cleaner to start writing")
            broker.kill()
            assert not [p for p in (tmp_path / "data" / f"{topic}-0").glob("*.swap")]
            broker.start()
            records = read_log(broker.bootstrap, topic)
            offsets = [o for o, _, _ in records]
            assert offsets == sorted(set(offsets)), f"cycle {cycle}: offsets out of order"
            assert all(v == b"v%d" % o for o, _, v in records), f"cycle {cycle}: a record moved"
            assert {k: v for _, k, v in records} == latest, f"cycle {cycle}: a latest value is missing"
        # the cleaner did compact, and no leftover survived a restart
        wait_until(lambda: len(read_log(broker.bootstrap, topic)) < written // 4, TIMEOUT,
                   what="compaction after the last restart")
        assert not list((tmp_path / "data" / f"{topic}-0").glob("*.cleaned"))
    for seg in (tmp_path / "data").glob(f"{topic}-*/*.log"):
        data = seg.read_bytes()
        assert sum(h.size for h in iter_batches(data)) == len(data), f"bad batch in {seg}"
    # the odd cycles killed the broker mid-clean: each restart found the leftover and removed it
    assert broker.log_path.read_text().count("left by a cleaning that did not finish") >= 3
