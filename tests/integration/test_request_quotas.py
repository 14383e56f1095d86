"""Request quotas (KIP-124): a client id given a small ``request_percentage`` with ``tomyum
quotas`` that hammers the broker with cheap Metadata requests is answered ``throttle_time_ms``
and muted, so its rate falls, while another client on the same broker is not throttled and
keeps its pace. The hammering client is kio (the codec tomyum's tests send hand-made requests
with), since none of the Python clients reports a Metadata response's throttle time."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.metadata.v12 import request as metadata

from tests.integration.test_bad_input import connect, decode_response, read_frame
from tests.integration.test_client_quotas import describe_quotas
from tomyum.testing import BrokerProcess

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(bool(os.environ.get("TOMYUM_TEST_BOOTSTRAP")), reason="starts its own broker")]
TIMEOUT = 20


def metadata_request(correlation_id: int, client_id: bytes) -> bytes:
    import io
    import struct

    from kio.serial import entity_writer

    buf = io.BytesIO()
    entity_writer(metadata.MetadataRequest)(buf, metadata.MetadataRequest(
        topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False))
    header = struct.pack(">hhih", 3, 12, correlation_id, len(client_id)) + client_id + b"\0"
    frame = header + buf.getvalue()
    return struct.pack(">i", len(frame)) + frame


def hammer(b: BrokerProcess, client_id: str, seconds: float,
           answers: list[tuple[float, int]] | None = None) -> list[tuple[float, int]]:
    """Metadata requests one after another for ``seconds``: when each was answered (monotonic
    time) and the throttle time (ms) it carried, appended to ``answers`` as they come."""
    answers = [] if answers is None else answers
    with connect(b) as s:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            s.sendall(metadata_request(len(answers), client_id.encode()))
            response = decode_response(3, 12, read_frame(s))
            throttle: timedelta = response.throttle_time  # type: ignore[attr-defined]
            answers.append((time.monotonic(), round(throttle.total_seconds() * 1000)))
    return answers


def rate(answers: list[tuple[float, int]]) -> float:
    """Requests answered a second over ``answers``."""
    return (len(answers) - 1) / (answers[-1][0] - answers[0][0])


@pytest.fixture
def qbroker(tmp_path: Path) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path / "data") as b:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        futures = admin.create_topics([NewTopic(f"t{i}", 4, 1) for i in range(40)])
        for f in futures.values():
            f.result(TIMEOUT)
        yield b


@pytest.mark.slow
def test_a_client_over_its_request_percentage_is_throttled_and_another_is_not(qbroker: BrokerProcess) -> None:
    b = qbroker
    cli = subprocess.run([sys.executable, "-m", "tomyum", "quotas", "alter", "--bootstrap", b.bootstrap,
                          "--client-id", "hammer", "--add-config", "request_percentage=1"],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert describe_quotas(b) == {(("client-id", "hammer"),): {"request_percentage": 1.0}}
    free = hammer(b, "free", 2)
    assert not any(t for _, t in free)

    # the hammer may spend 1% of one thread over Kafka's 10 s minimum window (100 ms of handler
    # time) before it is throttled; then each response says how long it is muted (at most 1 s)
    answers: list[tuple[float, int]] = []
    worker = threading.Thread(target=hammer, args=(b, "hammer", 6, answers))
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while not any(t for _, t in answers) and worker.is_alive() and time.monotonic() < deadline:
            worker.join(0.05)  # until the hammer has spent its burst and is throttled
        assert any(t for _, t in answers), "the hammer was never throttled"
        free_meanwhile = hammer(b, "free", 2)
    finally:
        worker.join(TIMEOUT)
    throttled_from = next(i for i, (_, t) in enumerate(answers) if t > 0)
    assert max(t for _, t in answers) <= 1000  # Kafka bounds a request quota's throttle by one window
    burst, throttled = answers[:throttled_from + 1], answers[throttled_from:]
    assert rate(throttled) < rate(free) / 5, (rate(throttled), rate(free))
    # the other client id is never throttled and keeps its pace while the hammer is muted
    assert not any(t for _, t in free_meanwhile)
    assert rate(free_meanwhile) > rate(free) / 2, (rate(free_meanwhile), rate(free))
    print(f"Metadata requests/s: free alone {rate(free):.0f}; hammer {rate(burst):.0f} for its first "
          f"{len(burst)}, then {rate(throttled):.1f} throttled; free meanwhile {rate(free_meanwhile):.0f}")
