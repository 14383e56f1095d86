"""Floods that used to take the broker down for everyone: connections until the process runs
out of file descriptors, and Metadata requests for ever new topic names. The broker refuses
what it cannot take, keeps serving the clients it has, keeps its log small, and restarts
clean."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.testing import BrokerProcess, wait_until

pytestmark = pytest.mark.timeout(180)
TIMEOUT = 30


class LimitedBroker(BrokerProcess):
    """A broker with few file descriptors (``prlimit``), as on a small host."""

    def __init__(self, *args: object, nofile: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.nofile = nofile

    def command(self) -> list[str]:
        return ["prlimit", f"--nofile={self.nofile}:{self.nofile}", "--", *super().command()]


def round_trip(producer: Producer, consumer: Consumer, topic: str, value: bytes) -> None:
    producer.produce(topic, value=value, partition=0)
    assert producer.flush(TIMEOUT) == 0
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and m.error() is None and m.value() == value:
            return
    raise AssertionError(f"{value!r} not consumed")


def test_running_out_of_descriptors_refuses_newcomers_and_serves_the_rest(tmp_path: Path) -> None:
    with LimitedBroker(tmp_path / "data", nofile=192) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("steady", 1, 1)])["steady"].result(TIMEOUT)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "steady",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition("steady", 0, 0)])
        round_trip(producer, consumer, "steady", b"before")
        log_before = broker.log_path.stat().st_size
        flood: list[socket.socket] = []
        try:
            for _ in range(400):  # far more than the broker has descriptors for
                s = socket.create_connection((broker.host, broker.port), timeout=5)
                flood.append(s)
            # the broker is out of descriptors; hold it there for a while
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                round_trip(producer, consumer, "steady", b"during-%f" % time.monotonic())
            # a topic cannot be created without descriptors: refused with an error, not a crash
            result = admin.create_topics([NewTopic("starved", 20, 1)])["starved"]
            try:
                result.result(TIMEOUT)
            except Exception:  # the refusal is the expected outcome; its code is checked below
                pass
        finally:
            for s in flood:
                s.close()
        round_trip(producer, consumer, "steady", b"after")
        # newcomers are served again once descriptors are back
        fresh = AdminClient({"bootstrap.servers": broker.bootstrap})
        wait_until(lambda: "steady" in fresh.list_topics(timeout=5).topics, TIMEOUT, what="a new connection")
        grown = broker.log_path.stat().st_size - log_before
        assert grown < 1 << 20, f"the broker logged {grown} bytes in the flood"
        assert "Traceback" not in broker.output()
        consumer.close()
        broker.stop()
        assert broker.proc is not None and broker.proc.returncode == 0
        broker.start()
        assert "steady" in AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=TIMEOUT).topics


def metadata_request(correlation_id: int, topics: list[str]) -> bytes:
    """Metadata v4 (allow_auto_topic_creation=true) for ``topics``, framed."""
    body = struct.pack(">i", len(topics)) + b"".join(struct.pack(">h", len(t)) + t.encode() for t in topics) + b"\x01"
    header = struct.pack(">hhih", 3, 4, correlation_id, 5) + b"flood"
    return struct.pack(">i", len(header) + len(body)) + header + body


def read_frame(s: socket.socket) -> bytes:
    size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
    return s.recv(size, socket.MSG_WAITALL)


def test_an_auto_create_flood_is_throttled_and_serves_the_rest(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "data") as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("steady", 1, 1)])["steady"].result(TIMEOUT)
        log_before = broker.log_path.stat().st_size
        with socket.create_connection((broker.host, broker.port), timeout=TIMEOUT) as s:
            started = time.monotonic()
            for i in range(300):
                s.sendall(metadata_request(i, [f"flood-{i}-{j}" for j in range(5)]))
                read_frame(s)
            elapsed = time.monotonic() - started
        topics = admin.list_topics(timeout=TIMEOUT).topics
        created = sum(1 for t in topics if t.startswith("flood-"))
        # at most the burst plus the rate for the time the flood took
        assert created <= 20 + 10 * elapsed + 1, (created, elapsed)
        assert created > 0
        grown = broker.log_path.stat().st_size - log_before
        assert grown < 1 << 20, f"the broker logged {grown} bytes in the flood"
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "steady"})
        consumer.assign([TopicPartition("steady", 0, 0)])
        round_trip(producer, consumer, "steady", b"served")
        consumer.close()
        broker.restart()
