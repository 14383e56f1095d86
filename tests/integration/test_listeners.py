"""Several named listeners, as in a typical Kafka deployment: each client is told the
address advertised for the listener it came in on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from confluent_kafka.admin import AdminClient

from tomyum.testing import wait_until

TIMEOUT = 20


def test_each_listener_advertises_its_own_address(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    cmd = [sys.executable, "-m", "tomyum", "serve", "--data-dir", str(tmp_path / "data"),
           "--set", "listeners=INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0",
           "--set", "advertised.listeners=INTERNAL://localhost:0,EXTERNAL://127.0.0.1:0",
           "--set", "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        line = wait_until(lambda: re.search(r"accepting connections on INTERNAL://127.0.0.1:(\d+), "
                                            r"EXTERNAL://127.0.0.1:(\d+)", log.read_text()),
                          TIMEOUT, what="broker start")
        internal, external = int(line.group(1)), int(line.group(2))
        assert internal != external
        for port, host in ((internal, "localhost"), (external, "127.0.0.1")):
            admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
            brokers = admin.list_topics(timeout=TIMEOUT).brokers
            assert [(b.host, b.port) for b in brokers.values()] == [(host, port)]
    finally:
        proc.terminate()
        assert proc.wait(TIMEOUT) == 0, log.read_text()


def test_an_ssl_listener_without_a_key_store_or_an_unknown_protocol_is_a_clear_error(tmp_path: Path) -> None:
    for listeners, expected in (("SSL://127.0.0.1:0", "an SSL listener needs a key store"),
                                ("FOO://127.0.0.1:0", "listener FOO uses FOO; the security protocols are")):
        proc = subprocess.run([sys.executable, "-m", "tomyum", "serve", "--data-dir", str(tmp_path / "d"),
                               "--set", f"listeners={listeners}"], capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == 2
        assert expected in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_config_key_is_named(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "tomyum", "serve", "--data-dir", str(tmp_path / "d"),
                           "--listen", "127.0.0.1:0", "--set", "log.retention.hourz=3"],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 2
    assert "log.retention.hourz: unknown config key" in proc.stderr and "Traceback" not in proc.stderr


def test_create_topic_at_start(tmp_path: Path) -> None:
    from tomyum.testing import BrokerProcess

    with BrokerProcess(tmp_path / "data", extra_args=["--create-topic", "orders:4", "--create-topic", "audit"]) as b:
        topics = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=TIMEOUT).topics
        assert len(topics["orders"].partitions) == 4 and len(topics["audit"].partitions) == 1
        assert b.stop() == 0
        assert "stopped cleanly" in b.output()
