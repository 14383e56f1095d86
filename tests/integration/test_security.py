"""TLS and SASL with real clients: TLS round trips, mTLS with principal mapping, SASL PLAIN,
SCRAM-SHA-256/512 managed through AdminClient, OAUTHBEARER; bad certificates, passwords,
mechanisms and tokens refused with Kafka's errors while bystanders are served; clients that do
not authenticate are cut off; sessions expire (KIP-368)."""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

from tomyum.security.certs import LocalCA
from tomyum.testing import BrokerProcess, wait_until

TIMEOUT = 30
pytestmark = pytest.mark.timeout(180)
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
              'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";')


def listeners(**protocols: str) -> dict[str, str]:
    """Settings for listeners NAME=PROTOCOL on free loopback ports."""
    return {"listeners": ",".join(f"{n}://127.0.0.1:0" for n in protocols),
            "listener.security.protocol.map": ",".join(f"{n}:{p}" for n, p in protocols.items())}


def ports(broker: BrokerProcess) -> dict[str, int]:
    import re

    line = next(line for line in broker.output().splitlines() if "accepting connections on" in line)
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"(\w+)://[^:\s]+:(\d+)", line.split("(advertised")[0])}


def round_trip(conf: dict[str, Any], topic: str, value: bytes = b"hello") -> bytes:
    p = Producer({**conf, "acks": "all", "message.timeout.ms": 10000})
    errors: list[Any] = []
    p.produce(topic, value=value, on_delivery=lambda err, msg: errors.append(err))
    p.flush(TIMEOUT)
    assert errors == [None], errors
    c = Consumer({**conf, "group.id": f"g-{time.monotonic_ns()}", "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None and m.value() == value:
                return bytes(m.value())
        raise AssertionError(f"{value!r} not consumed")
    finally:
        c.close()


def refused(conf: dict[str, Any], expect: str) -> None:
    """A client with ``conf`` cannot get metadata; its error mentions ``expect``."""
    errors: list[str] = []
    admin = AdminClient({**conf, "error_cb": lambda e: errors.append(str(e)), "socket.timeout.ms": 3000})
    with pytest.raises(KafkaException) as e:
        admin.list_topics(timeout=4)
    errors.append(str(e.value))
    admin.poll(0.5)  # serves the error callbacks
    assert any(expect.lower() in err.lower() for err in errors), errors


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tls_broker(tmp_path: Path, ca: LocalCA) -> Iterator[BrokerProcess]:
    broker_cert = ca.broker()
    alice = ca.issue("alice", "alice", ou="eng")
    assert alice
    settings = {**listeners(PLAIN="PLAINTEXT", TLS="SSL", MTLS="SSL", SECURE="SASL_SSL", SASL="SASL_PLAINTEXT"),
                "ssl.keystore.location": str(broker_cert.keystore),
                "ssl.truststore.location": str(ca.cert_path),
                "listener.name.mtls.ssl.client.auth": "required",
                "ssl.principal.mapping.rules": "RULE:^CN=(.*?),OU=(.*?),.*$/$1@$2/L,DEFAULT",
                "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
                "listener.name.secure.plain.sasl.jaas.config": PLAIN_JAAS,
                "listener.name.sasl.plain.sasl.jaas.config": PLAIN_JAAS,
                "group.initial.rebalance.delay.ms": "0"}
    with BrokerProcess(tmp_path / "data", settings=settings) as b:
        b.ports = ports(b)  # type: ignore[attr-defined]
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{b.ports['PLAIN']}"})  # type: ignore[attr-defined]
        admin.create_topics([NewTopic("secure", 1, 1)])["secure"].result(TIMEOUT)
        yield b


def addr(b: BrokerProcess, name: str) -> str:
    return f"127.0.0.1:{b.ports[name]}"  # type: ignore[attr-defined]


@pytest.mark.slow
def test_tls_round_trip_and_mtls(tls_broker: BrokerProcess, ca: LocalCA) -> None:
    tls = {"bootstrap.servers": addr(tls_broker, "TLS"), "security.protocol": "SSL", "ssl.ca.location": str(ca.cert_path)}
    assert round_trip(tls, "secure", b"over tls") == b"over tls"
    alice = ca.directory / "alice"
    mtls = {"bootstrap.servers": addr(tls_broker, "MTLS"), "security.protocol": "SSL",
            "ssl.ca.location": str(ca.cert_path), "ssl.certificate.location": f"{alice}.pem",
            "ssl.key.location": f"{alice}.key"}
    assert round_trip(mtls, "secure", b"mutual") == b"mutual"
    assert "principal User:alice@eng" in tls_broker.output()
    # no client certificate on the mTLS listener, or one from another CA: refused
    refused({k: v for k, v in mtls.items() if k not in ("ssl.certificate.location", "ssl.key.location")}, "")
    stranger = LocalCA(ca.directory / "other").issue("mallory", "mallory")
    refused({**mtls, "ssl.certificate.location": str(stranger.cert), "ssl.key.location": str(stranger.key)}, "")
    # a plaintext client on the TLS port fails cleanly, and bystanders are served
    refused({"bootstrap.servers": addr(tls_broker, "TLS")}, "")
    assert round_trip(tls, "secure", b"still") == b"still"


def test_sasl_plain(tls_broker: BrokerProcess, ca: LocalCA) -> None:
    good = {"bootstrap.servers": addr(tls_broker, "SECURE"), "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(ca.cert_path), "sasl.mechanism": "PLAIN", "sasl.username": "alice",
            "sasl.password": "alice-secret"}
    assert round_trip(good, "secure", b"plain") == b"plain"
    refused({**good, "sasl.password": "wrong"}, "Authentication failed")
    cleartext = {**good, "bootstrap.servers": addr(tls_broker, "SASL"), "security.protocol": "SASL_PLAINTEXT"}
    assert round_trip(cleartext, "secure", b"sasl plaintext") == b"sasl plaintext"
    # a mechanism the listener does not offer: UNSUPPORTED_SASL_MECHANISM naming those it does
    with socket.create_connection(("127.0.0.1", tls_broker.ports["SASL"]), timeout=TIMEOUT) as s:  # type: ignore[attr-defined]
        s.sendall(frame(17, 1, 1, struct.pack(">h", 6) + b"GSSAPI"))
        answer = _read(s)
    error, count = struct.unpack_from(">hi", answer, 4)
    assert error == 33 and count == 4


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.slow
def test_scram_users_created_rotated_and_deleted_take_effect(tls_broker: BrokerProcess, mechanism: str) -> None:
    admin = AdminClient({"bootstrap.servers": addr(tls_broker, "PLAIN")})
    kind = ScramMechanism.SCRAM_SHA_256 if mechanism.endswith("256") else ScramMechanism.SCRAM_SHA_512
    admin.alter_user_scram_credentials([UserScramCredentialUpsertion("bob", ScramCredentialInfo(kind, 4096),
                                                                     b"first")])["bob"].result(TIMEOUT)
    conf = {"bootstrap.servers": addr(tls_broker, "SASL"), "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism, "sasl.username": "bob", "sasl.password": "first"}
    assert round_trip(conf, "secure", b"scram") == b"scram"
    admin.alter_user_scram_credentials([UserScramCredentialUpsertion("bob", ScramCredentialInfo(kind, 8192),
                                                                     b"second")])["bob"].result(TIMEOUT)
    refused(conf, "Authentication failed")
    assert round_trip({**conf, "sasl.password": "second"}, "secure", b"rotated") == b"rotated"
    from confluent_kafka.admin import UserScramCredentialDeletion

    admin.alter_user_scram_credentials([UserScramCredentialDeletion("bob", kind)])["bob"].result(TIMEOUT)
    refused({**conf, "sasl.password": "second"}, "Authentication failed")


def test_oauthbearer_unsecured_token(tls_broker: BrokerProcess) -> None:
    conf = {"bootstrap.servers": addr(tls_broker, "SASL"), "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": True,
            "sasl.oauthbearer.config": "principal=carol"}
    assert round_trip(conf, "secure", b"token") == b"token"
    assert "principal User:carol" in tls_broker.output()


def frame(api_key: int, version: int, correlation: int, body: bytes) -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation, 1) + b"t"
    return struct.pack(">i", len(header) + len(body)) + header + body


def test_a_client_that_does_not_authenticate_is_cut_off(tls_broker: BrokerProcess) -> None:
    with socket.create_connection(("127.0.0.1", tls_broker.ports["SASL"]), timeout=TIMEOUT) as s:  # type: ignore[attr-defined]
        s.sendall(frame(3, 1, 1, struct.pack(">i", -1)))  # Metadata v1 before any SASL
        assert s.recv(4) == b""  # closed, no answer
    assert round_trip({"bootstrap.servers": addr(tls_broker, "PLAIN")}, "secure", b"others") == b"others"


def test_sessions_expire_and_clients_reauthenticate(tmp_path: Path) -> None:
    settings = {**listeners(SASL="SASL_PLAINTEXT"), "sasl.enabled.mechanisms": "PLAIN",
                "listener.name.sasl.plain.sasl.jaas.config": PLAIN_JAAS, "connections.max.reauth.ms": "1500"}
    with BrokerProcess(tmp_path / "data", settings=settings) as b:
        conf = {"bootstrap.servers": b.bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                "sasl.username": "alice", "sasl.password": "alice-secret"}
        admin = AdminClient(conf)
        admin.create_topics([NewTopic("t", 1, 1)])["t"].result(TIMEOUT)
        p = Producer({**conf, "acks": "all"})
        deadline = time.monotonic() + 5  # several session lifetimes: librdkafka re-authenticates (KIP-368)
        sent = 0
        while time.monotonic() < deadline:
            p.produce("t", value=b"x")
            sent += 1
            assert p.flush(TIMEOUT) == 0
            time.sleep(0.2)  # paces the producer, not a wait for a condition
        assert sent > 10
        # a raw client that authenticates once and lets its session lapse is closed on its next request
        with socket.create_connection(("127.0.0.1", b.port), timeout=TIMEOUT) as s:
            s.sendall(frame(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
            _read(s)
            token = b"\0alice\0alice-secret"
            s.sendall(frame(36, 1, 2, struct.pack(">i", len(token)) + token))
            answer = _read(s)
            assert struct.unpack_from(">h", answer, 4)[0] == 0
            assert struct.unpack_from(">q", answer, len(answer) - 8)[0] == 1500  # session_lifetime_ms
            s.sendall(frame(3, 1, 3, struct.pack(">i", -1)))  # within the session: answered
            _read(s)
            lapsed = time.monotonic() + 1.6
            wait_until(lambda: time.monotonic() > lapsed, 5, what="the session to lapse")
            s.sendall(frame(3, 1, 4, struct.pack(">i", -1)))
            assert s.recv(4) == b""  # closed without an answer
        assert "did not re-authenticate" in b.output()


def _read(s: socket.socket) -> bytes:
    size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
    return s.recv(size, socket.MSG_WAITALL)


def test_forged_and_expired_tokens_are_refused_with_kafka_python(tls_broker: BrokerProcess) -> None:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError as KPError
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class Token(AbstractTokenProvider):  # type: ignore[misc]
        def __init__(self, token: str) -> None:
            self.value = token

        def token(self) -> str:
            return self.value

    now = time.time()
    for token in (jwt.encode({"sub": "eve", "exp": now - 3600}, key=None, algorithm="none"),
                  jwt.encode({"sub": "eve", "exp": now + 3600}, key="a key no issuer of this broker ever had", algorithm="HS256")):
        with pytest.raises((KPError, OSError, ssl.SSLError)):
            KafkaAdminClient(bootstrap_servers=addr(tls_broker, "SASL"), security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="OAUTHBEARER", sasl_oauth_token_provider=Token(token),
                             request_timeout_ms=5000, api_version_auto_timeout_ms=5000).list_topics()
