"""Quotas enforced (KIP-13, KIP-219, KIP-402): a producer over its producer_byte_rate is held
to its quota and told throttle_time_ms while a client without a quota is not slowed; a flood of
connections over max.connections.per.ip is refused while the clients already connected are
served. Real clients (confluent-kafka) against a real broker."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.conftest import data_dir
from tests.integration.test_client_quotas import alter_quotas
from tomyum.testing import BrokerProcess

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(bool(os.environ.get("TOMYUM_TEST_BOOTSTRAP")), reason="starts its own broker")]

QUOTA = 200_000  # bytes a second
VALUE = b"v" * 1000


def produce_for(b: BrokerProcess, client_id: str, topic: str, seconds: float) -> tuple[float, list[float]]:
    """Produce as fast as the client goes for ``seconds``; the bytes a second acknowledged in that
    time, and the throttle times (ms) librdkafka reported."""
    throttles: list[float] = []
    acked = [0]

    def on_throttle(event: Any) -> None:
        throttles.append(event.throttle_time * 1000)

    start = time.monotonic()
    end = start + seconds

    def delivered(err: Any, msg: Any) -> None:
        if err is None and time.monotonic() <= end:
            acked[0] += len(msg.value())

    # batches of Java's default size: a quota is enforced one request late, so 1 MB batches
    # (librdkafka's default) would overshoot a 200 kB/s quota by half a second's worth each
    p = Producer({"bootstrap.servers": b.bootstrap, "client.id": client_id, "linger.ms": 5, "batch.size": 16384,
                  "queue.buffering.max.messages": 2000, "throttle_cb": on_throttle})
    while time.monotonic() < end:
        try:
            p.produce(topic, VALUE, on_delivery=delivered)
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    p.poll(0)
    p.purge()
    p.flush(10)
    return acked[0] / seconds, throttles


@pytest.mark.slow  # over 9 s: make test-slow
def test_a_producer_over_its_quota_is_throttled_to_it_and_others_are_not(tmp_path: Path) -> None:
    with BrokerProcess(data_dir(tmp_path)) as b:
        results = alter_quotas(b, ({"client-id": "slow"}, {"producer_byte_rate": float(QUOTA)}))
        assert [r.error_code for r in results] == [0]
        fast_rate, fast_throttles = produce_for(b, "fast", "quotas", 3)
        slow_rate, slow_throttles = produce_for(b, "slow", "quotas", 10)
    print(f"quota {QUOTA} B/s: throttled client {slow_rate:.0f} B/s ({len(slow_throttles)} throttles, "
          f"max {max(slow_throttles, default=0):.0f} ms); unthrottled client {fast_rate:.0f} B/s")
    assert slow_rate == pytest.approx(QUOTA, rel=0.2)
    assert slow_throttles and max(slow_throttles) > 0
    assert fast_rate > 3 * QUOTA
    assert not [t for t in fast_throttles if t > 0]


def test_a_connection_flood_over_max_connections_per_ip_is_refused_while_clients_are_served(
        tmp_path: Path) -> None:
    with BrokerProcess(data_dir(tmp_path), settings={"max.connections.per.ip": "8"}) as b:
        p = Producer({"bootstrap.servers": b.bootstrap, "client.id": "served"})
        p.produce("flood", b"before")
        assert p.flush(10) == 0
        flood, refused = [], 0
        for _ in range(40):
            s = socket.create_connection((b.host, b.port), timeout=5)
            flood.append(s)
        for s in flood:
            s.settimeout(0.5)
            try:
                refused += s.recv(1) == b""  # closed by the broker at once
            except ConnectionResetError:
                refused += 1
            except TimeoutError:
                pass  # accepted: it waits for a request
        assert refused >= 40 - 8
        p.produce("flood", b"during")
        assert p.flush(10) == 0
        for s in flood:
            s.close()
        assert "max.connections.per.ip" in b.output()
