"""kill -9 under acks=all load 20 times (and a graceful SIGTERM 5 times), from two idempotent producers on three partitions:
after each restart every acknowledged record is there at the offset it was acknowledged with,
no record is there twice (retries of batches the broker had written are recognised), offsets
are contiguous, and every batch on disk has a valid CRC."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.protocol.records import iter_batches
from tomyum.testing import BrokerProcess, wait_until

PARTITIONS = 3
TIMEOUT = 30


class AckedProducer(threading.Thread):
    """Sends numbered values until stopped; records (partition, offset, value) of each ack."""

    def __init__(self, bootstrap: str, topic: str, name: str) -> None:
        super().__init__(daemon=True)
        self.topic, self.name = topic, name
        self.acked: list[tuple[int, int, bytes]] = []
        self.stop = threading.Event()
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
                                  "enable.idempotence": True,
                                  "message.timeout.ms": 60000, "retry.backoff.ms": 50,
                                  "reconnect.backoff.max.ms": 200})

    def on_delivery(self, err: object, msg: object) -> None:
        if err is None:
            self.acked.append((msg.partition(), msg.offset(), msg.value()))  # type: ignore[attr-defined]

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                self.producer.produce(self.topic, value=f"{self.name}-{i}".encode(), partition=i % PARTITIONS,
                                      on_delivery=self.on_delivery)
                i += 1
            except BufferError:
                pass
            self.producer.poll(0.001)
        self.producer.flush(TIMEOUT)


def read_everything(bootstrap: str, topic: str) -> dict[int, list[tuple[int, bytes]]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "check", "enable.auto.commit": False})
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT)[1] for p in range(PARTITIONS)}
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        out: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        deadline = time.monotonic() + TIMEOUT
        while sum(len(v) for v in out.values()) < sum(ends.values()):
            assert time.monotonic() < deadline, "could not read back the whole log"
            for m in c.consume(num_messages=10_000, timeout=1):
                assert m.error() is None, m.error()
                out[m.partition()].append((m.offset(), m.value()))
        return out
    finally:
        c.close()


@pytest.mark.slow
@pytest.mark.parametrize("how, cycles", [("kill -9", 20), ("SIGTERM", 5)])
def test_a_crash_or_a_shutdown_under_load_loses_nothing_acknowledged(tmp_path: Path, how: str, cycles: int) -> None:
    topic = "crash"
    with BrokerProcess(tmp_path / "data") as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(TIMEOUT)
        producers = [AckedProducer(broker.bootstrap, topic, f"p{n}") for n in range(2)]
        for p in producers:
            p.start()
        for cycle in range(cycles):
            target = sum(len(p.acked) for p in producers) + 150
            wait_until(lambda: sum(len(p.acked) for p in producers) >= target, TIMEOUT,
                       what=f"acks before {how} {cycle}")
            if how == "kill -9":
                broker.kill()
            else:
                assert broker.stop() == 0, "an unclean exit on SIGTERM"
            broker.start()
        wait_until(lambda: sum(len(p.acked) for p in producers) >= target + 300, TIMEOUT, what="acks after")
        for p in producers:
            p.stop.set()
        for p in producers:
            p.join(TIMEOUT)
        log = read_everything(broker.bootstrap, topic)

    for p, records in log.items():
        assert [o for o, _ in records] == list(range(len(records))), f"gap or reorder in partition {p}"
    stored = {(p, o): v for p, records in log.items() for o, v in records}
    acked = [a for prod in producers for a in prod.acked]
    assert len(acked) > 150 * cycles
    for partition, offset, value in acked:
        assert stored.get((partition, offset)) == value, f"acknowledged {value!r} lost at {partition}/{offset}"
    # idempotence: no value is stored twice, acknowledged or not
    counts = Counter(stored.values())
    assert max(counts.values()) == 1, f"duplicates: {[v for v, n in counts.items() if n > 1][:5]}"
    # every batch on disk has a valid CRC
    for seg in (tmp_path / "data").glob(f"{topic}-*/*.log"):
        data = seg.read_bytes()
        assert sum(h.size for h in iter_batches(data)) == len(data), f"bad batch in {seg}"
