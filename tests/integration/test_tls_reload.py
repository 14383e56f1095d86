"""Certificates replaced without a restart, as Kafka allows: IncrementalAlterConfigs of
``listener.name.<l>.ssl.keystore.location`` on the broker resource, with confluent-kafka's
AdminClient. New TLS connections see the new certificate (another CA, another expiry); a
connection made before keeps working; a key store that does not load, or whose certificate
names another subject, is refused with INVALID_REQUEST (Kafka's answer to a dynamic broker
config that fails validation) and nothing changes; the new store survives a restart."""

from __future__ import annotations

import re
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType
from cryptography import x509

from tomyum.security.certs import LocalCA
from tomyum.testing import BrokerProcess

TIMEOUT = 20
pytestmark = pytest.mark.timeout(120)
KEYSTORE = "listener.name.tls.ssl.keystore.location"


def tls_port(b: BrokerProcess) -> int:
    """The TLS listener's port, from the last start's ready line."""
    line = [x for x in b.output().splitlines() if "accepting connections on" in x][-1]
    match = re.search(r"TLS://[^:\s]+:(\d+)", line)
    assert match, line
    return int(match.group(1))


def serial_seen(port: int, cafile: Path) -> int:
    """The serial number of the certificate a new TLS connection is shown (verified with ``cafile``)."""
    context = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as s:
        der = s.getpeercert(binary_form=True)
        assert der is not None
        return int(x509.load_der_x509_certificate(der).serial_number)


def api_versions(s: ssl.SSLSocket, correlation_id: int) -> int:
    """ApiVersions v0 over ``s``; the response's error code."""
    body = struct.pack(">hhih", 18, 0, correlation_id, 4) + b"test"
    s.sendall(struct.pack(">i", len(body)) + body)
    size = struct.unpack(">i", _read(s, 4))[0]
    frame = _read(s, size)
    assert struct.unpack(">i", frame[:4])[0] == correlation_id
    return int(struct.unpack(">h", frame[4:6])[0])


def _read(s: ssl.SSLSocket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        assert chunk, "connection closed"
        out += chunk
    return out


def set_keystore(admin: AdminClient, node: str, path: Path, key: str = KEYSTORE) -> None:
    resource = ConfigResource(ResourceType.BROKER, node)
    resource.add_incremental_config(ConfigEntry(key, str(path), incremental_operation=AlterConfigOpType.SET))
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT)


def refused_code(admin: AdminClient, node: str, path: Path, key: str = KEYSTORE) -> tuple[int, str]:
    with pytest.raises(KafkaException) as e:
        set_keystore(admin, node, path, key)
    error: Any = e.value.args[0]
    return error.code(), error.str()


@pytest.fixture
def cas(tmp_path: Path) -> tuple[LocalCA, LocalCA]:
    return LocalCA(tmp_path / "ca1"), LocalCA(tmp_path / "ca2", name="tomyum rotated CA")


@pytest.fixture
def tls_broker(tmp_path: Path, cas: tuple[LocalCA, LocalCA]) -> Iterator[BrokerProcess]:
    settings = {"listeners": "PLAINTEXT://127.0.0.1:0,TLS://127.0.0.1:0",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,TLS:SSL",
                "ssl.keystore.location": str(cas[0].broker().keystore)}
    with BrokerProcess(tmp_path / "data", settings=settings) as b:
        yield b


def test_a_new_keystore_serves_new_connections_and_old_ones_go_on(tls_broker: BrokerProcess, tmp_path: Path,
                                                                 cas: tuple[LocalCA, LocalCA]) -> None:
    ca1, ca2 = cas
    both = tmp_path / "both-cas.pem"
    both.write_bytes(ca1.cert_path.read_bytes() + ca2.cert_path.read_bytes())
    port = tls_port(tls_broker)
    admin = AdminClient({"bootstrap.servers": tls_broker.bootstrap})
    admin.create_topics([NewTopic("rotated", 1, 1)])["rotated"].result(TIMEOUT)
    node = str(next(iter(admin.list_topics(timeout=TIMEOUT).brokers)))
    first_serial = serial_seen(port, ca1.cert_path)
    tls = {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SSL", "ssl.ca.location": str(both)}
    producer = Producer({**tls, "acks": "all", "message.timeout.ms": 10000})
    delivered: list[Any] = []
    producer.produce("rotated", b"before", on_delivery=lambda err, msg: delivered.append(err))
    producer.flush(TIMEOUT)
    context = ssl.create_default_context(cafile=str(ca1.cert_path))
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as old:
        assert api_versions(old, 1) == 0

        rotated = ca2.issue("broker2", "localhost", hosts=("localhost", "127.0.0.1", "::1"), valid_days=30)
        set_keystore(admin, node, rotated.keystore)

        new_cert = x509.load_pem_x509_certificate(rotated.cert.read_bytes())
        assert serial_seen(port, ca2.cert_path) == new_cert.serial_number != first_serial
        with pytest.raises(ssl.SSLCertVerificationError):  # the old CA no longer vouches for it
            serial_seen(port, ca1.cert_path)
        assert api_versions(old, 2) == 0  # the connection made before goes on with its session
    producer.produce("rotated", b"after", on_delivery=lambda err, msg: delivered.append(err))
    producer.flush(TIMEOUT)
    assert delivered == [None, None]
    # a client that trusts only the new CA is served end to end
    consumer = Consumer({**tls, "ssl.ca.location": str(ca2.cert_path), "group.id": "g", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition("rotated", 0, 0)])
        values: list[bytes] = []
        deadline = time.monotonic() + TIMEOUT
        while len(values) < 2 and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and m.error() is None:
                values.append(m.value())
        assert values == [b"before", b"after"]
    finally:
        consumer.close()
    described = admin.describe_configs([ConfigResource(ResourceType.BROKER, node)])
    entries = next(iter(described.values())).result(TIMEOUT)
    assert entries[KEYSTORE].value == str(rotated.keystore)

    # the store set at run time is the one a restart starts with
    tls_broker.restart()
    assert serial_seen(tls_port(tls_broker), ca2.cert_path) == new_cert.serial_number


def test_a_bad_keystore_is_refused_and_nothing_changes(tls_broker: BrokerProcess, tmp_path: Path,
                                                       cas: tuple[LocalCA, LocalCA]) -> None:
    ca1, ca2 = cas
    port = tls_port(tls_broker)
    admin = AdminClient({"bootstrap.servers": tls_broker.bootstrap})
    node = str(next(iter(admin.list_topics(timeout=TIMEOUT).brokers)))
    serial = serial_seen(port, ca1.cert_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    code, message = refused_code(admin, node, garbage)
    assert code == KafkaError.INVALID_REQUEST and "SSLFactory" in message, message
    cli = subprocess.run([sys.executable, "-m", "tomyum", "configs", "set", "broker", node,
                          f"{KEYSTORE}={garbage}", "--bootstrap", tls_broker.bootstrap],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode != 0 and len(cli.stderr.strip().splitlines()) == 1 and "SSLFactory" in cli.stderr, cli.stderr
    code, message = refused_code(admin, node, tmp_path / "missing.pem")
    assert code == KafkaError.INVALID_REQUEST, message
    # another subject (or fewer alternative names) is not the same broker: Kafka refuses it
    stranger = ca2.issue("stranger", "someone-else", hosts=("localhost", "127.0.0.1", "::1"))
    code, message = refused_code(admin, node, stranger.keystore)
    assert code == KafkaError.INVALID_REQUEST and "DistinguishedName" in message, message
    fewer = ca2.issue("fewer", "localhost", hosts=("localhost",))
    code, message = refused_code(admin, node, fewer.keystore)
    assert code == KafkaError.INVALID_REQUEST and "SubjectAltNames" in message, message
    # the store keys change only per listener
    code, message = refused_code(admin, node, ca2.broker().keystore, key="ssl.keystore.location")
    assert code == KafkaError.INVALID_REQUEST and "listener prefix" in message, message
    assert serial_seen(port, ca1.cert_path) == serial
    tls = {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SSL",
           "ssl.ca.location": str(ca1.cert_path)}
    assert AdminClient(tls).list_topics(timeout=TIMEOUT).brokers
