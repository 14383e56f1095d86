"""Connection abuse: idle and slowloris connections are closed after connections.max.idle.ms,
thousands of idle connections cost little memory, running out of file descriptors in accept
is survived, and clients vanishing mid-request leave nothing behind — while a bystander is
served throughout."""

from __future__ import annotations

import resource
import socket
import struct
import threading
import time
from pathlib import Path

from tests.integration.test_bad_input import connect, read_frame, request, still_serving
from tomyum.testing import BrokerProcess, wait_until

TIMEOUT = 20


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def api_versions_ok(s: socket.socket, correlation_id: int) -> None:
    s.sendall(request(18, 0, correlation_id))
    assert struct.unpack_from(">ih", read_frame(s)) == (correlation_id, 0)


def keep_asking(s: socket.socket, stop: threading.Event, slowest: list[float]) -> None:
    """A bystander: ApiVersions over ``s`` every 0.1 s until ``stop``; its longest wait in ``slowest[0]``."""
    n = 0
    while not stop.is_set():
        n += 1
        started = time.monotonic()
        api_versions_ok(s, n)
        slowest[0] = max(slowest[0], time.monotonic() - started)
        stop.wait(0.1)


def closed_by_peer(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        s.setblocking(True)


def test_idle_and_slowloris_connections_are_closed(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "data", settings={"connections.max.idle.ms": "1500"}) as broker:
        idle = [connect(broker) for _ in range(10)]
        slow = [connect(broker) for _ in range(10)]
        for s in slow:  # a frame of 1000 bytes announced, 10 sent, the rest never
            s.sendall(struct.pack(">i", 1000) + b"\0" * 10)
        with connect(broker) as bystander:
            n = 0

            def all_closed() -> bool:
                nonlocal n
                n += 1
                api_versions_ok(bystander, n)  # busy: never idle for long
                return all(closed_by_peer(s) for s in idle + slow)

            wait_until(all_closed, TIMEOUT, interval=0.2, what="idle and slowloris connections closed")
            api_versions_ok(bystander, 10_000)
        for s in idle + slow:
            s.close()
        assert "idle for more than connections.max.idle.ms" in broker.output()


def test_five_thousand_idle_connections_cost_little_memory(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 12000), hard), hard))
    with BrokerProcess(tmp_path / "data") as broker:
        assert broker.proc is not None
        with connect(broker) as probe:
            api_versions_ok(probe, 1)
        before = rss_bytes(broker.proc.pid)
        conns: list[socket.socket] = []
        try:
            for _ in range(5000):
                conns.append(socket.create_connection((broker.host, broker.port), timeout=TIMEOUT))
            with connect(broker) as bystander:  # answered once the broker has accepted them all
                api_versions_ok(bystander, 2)
            grown = rss_bytes(broker.proc.pid) - before
            print(f"5000 idle connections: +{grown / 2**20:.1f} MiB RSS")
            assert grown < 160 << 20, f"5000 idle connections took {grown >> 20} MiB"
        finally:
            for s in conns:
                s.close()
        still_serving(broker)


def test_running_out_of_file_descriptors_in_accept_is_survived(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "data") as broker:
        assert broker.proc is not None
        pid = broker.proc.pid
        open_fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
        _, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (open_fds + 40, hard))
        conns = []
        try:
            for _ in range(120):  # more than it can hold: the kernel queues the rest
                s = socket.socket()
                s.settimeout(TIMEOUT)
                s.connect((broker.host, broker.port))
                conns.append(s)
            wait_until(lambda: len(list(Path(f"/proc/{pid}/fd").iterdir())) >= open_fds + 35, TIMEOUT,
                       what="the broker to use up its descriptors")
        finally:
            for s in conns:
                s.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (hard, hard))

        def served() -> bool:
            try:
                with connect(broker) as s:
                    api_versions_ok(s, 3)
                return True
            except (OSError, ConnectionError, AssertionError):
                return False

        wait_until(served, TIMEOUT, interval=0.2, what="service after descriptors are free again")
        assert broker.proc.poll() is None
        still_serving(broker)


def test_clients_vanishing_mid_request_leave_nothing_behind(broker: BrokerProcess, topic_name: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(TIMEOUT)
    name = topic_name.encode()
    fetch = (struct.pack(">iiii", -1, 30000, 1, 1 << 20) + struct.pack(">b", 0)  # v4: long poll
             + struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
             + struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 1 << 20))
    for i in range(50):
        s = connect(broker)
        if i % 3 == 0:
            s.sendall(request(1, 4, i, fetch))  # a parked long poll, then gone
        elif i % 3 == 1:
            s.sendall(request(18, 0, i)[:9])  # half a frame, then gone
        else:
            s.sendall(request(3, 1, i, struct.pack(">i", -1)))  # a request, gone before the answer
        s.close()
    with connect(broker) as bystander:
        api_versions_ok(bystander, 99)
    still_serving(broker)
    assert "unexpected error" not in broker.output()
