"""Abuse of a SASL_SSL listener: a client that has not authenticated may send ApiVersions and
the SASL exchange and nothing else (any other request, real or mutated, closes its connection
unanswered); a TLS handshake that never finishes is closed after connections.max.idle.ms and
holds up no one; and the live fuzz of test_fuzz.py runs over TLS, before and after
authentication, while an authenticated bystander is served and the broker neither crashes nor
logs an unexpected error. The corpus is recorded from real clients (confluent-kafka) through a
proxy on the broker's PLAINTEXT listener."""

from __future__ import annotations

import random
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from tests.faults.test_connection_abuse import api_versions_ok, closed_by_peer, keep_asking
from tests.faults.test_fuzz import mutate, record_corpus
from tests.integration.test_bad_input import read_frame, request
from tomyum.security.certs import LocalCA
from tomyum.testing import BrokerProcess, wait_until
from tomyum.testing.proxy import CuttingProxy

TIMEOUT = 20
IDLE_MS = 1500
AUTHENTICATION_APIS = {17, 18, 36}
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_admin="admin-secret" user_alice="alice-secret";')


class SecureBroker:
    def __init__(self, broker: BrokerProcess, ca: LocalCA, corpus: list[bytes]) -> None:
        self.broker, self.ca, self.corpus = broker, ca, corpus
        line = [x for x in broker.output().splitlines() if "accepting connections on" in x][-1]
        self.port = int(line.split("SECURE://")[1].split()[0].rstrip(",").rsplit(":", 1)[1])
        self.context = ssl.create_default_context(cafile=str(ca.cert_path))

    def tls(self) -> ssl.SSLSocket:
        """A TLS connection to the SASL_SSL listener, not authenticated."""
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        try:
            return self.context.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise

    def authenticated(self, user: str = "alice") -> ssl.SSLSocket:
        """A TLS connection that has authenticated with SASL PLAIN (SaslHandshake v1, SaslAuthenticate v1)."""
        s = self.tls()
        s.sendall(request(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
        assert struct.unpack_from(">ih", read_frame(s)) == (1, 0)
        token = b"\0" + user.encode() + b"\0" + user.encode() + b"-secret"
        s.sendall(request(36, 1, 2, struct.pack(">i", len(token)) + token))
        assert struct.unpack_from(">ih", read_frame(s)) == (2, 0)
        return s

    def client_config(self) -> dict[str, str]:
        return {"bootstrap.servers": f"127.0.0.1:{self.port}", "security.protocol": "SASL_SSL",
                "ssl.ca.location": str(self.ca.cert_path), "sasl.mechanism": "PLAIN",
                "sasl.username": "alice", "sasl.password": "alice-secret"}


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    tmp_path = tmp_path_factory.mktemp("sasl-ssl-abuse")
    ca = LocalCA(tmp_path / "ca")
    proxy = CuttingProxy(record=True)
    settings = {"listeners": "PLAINTEXT://127.0.0.1:0,SECURE://127.0.0.1:0",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SECURE:SASL_SSL",
                "ssl.keystore.location": str(ca.broker().keystore), "sasl.enabled.mechanisms": "PLAIN",
                "listener.name.secure.plain.sasl.jaas.config": JAAS,
                "connections.max.idle.ms": str(IDLE_MS), "group.initial.rebalance.delay.ms": "0"}
    with BrokerProcess(tmp_path / "data", settings=settings) as broker, proxy:
        proxy.start(broker.port)
        yield SecureBroker(broker, ca, record_corpus(broker, proxy))
        assert broker.proc is not None and broker.proc.poll() is None, "the broker died"
        assert "unexpected error" not in broker.output(), broker.output()[-3000:]


def closed_unanswered(s: ssl.SSLSocket) -> bool:
    """Whether the broker closed ``s`` without answering (True), or answered (False)."""
    try:
        return s.recv(4) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True


@pytest.mark.timeout(120)
def test_before_authenticating_only_api_versions_and_the_sasl_exchange_are_answered(secure: SecureBroker) -> None:
    keys = sorted({struct.unpack_from(">h", f, 4)[0] for f in secure.corpus} - AUTHENTICATION_APIS)
    assert len(keys) >= 8, keys
    for key in keys:  # each a real client's request, sent before any SASL: closed, never answered
        frame = next(f for f in secure.corpus if struct.unpack_from(">h", f, 4)[0] == key)
        with secure.tls() as s:
            s.sendall(frame)
            assert closed_unanswered(s), f"API {key} was answered before authentication"
        with secure.tls() as s:  # after the handshake, before SaslAuthenticate: the same
            s.sendall(request(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
            assert struct.unpack_from(">ih", read_frame(s)) == (1, 0)
            s.sendall(frame)
            assert closed_unanswered(s), f"API {key} was answered between the SASL handshake and authentication"
    with secure.tls() as s:
        api_versions_ok(s, 7)  # ApiVersions is, and the connection stays
        api_versions_ok(s, 8)
    with secure.authenticated() as s:  # once authenticated, the same frames are served
        metadata = next(f for f in secure.corpus if struct.unpack_from(">h", f, 4)[0] == 3)
        s.sendall(metadata)
        assert read_frame(s)
    assert "before authenticating (SASL)" in secure.broker.output()


def client_hello() -> bytes:
    """The first bytes a TLS client sends (its ClientHello record), made by the stdlib."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


@pytest.mark.timeout(120)
def test_a_slow_tls_handshake_is_closed_after_the_idle_time_and_holds_up_no_one(secure: SecureBroker) -> None:
    hello = client_hello()
    opened = time.monotonic()
    silent = [socket.create_connection(("127.0.0.1", secure.port), timeout=TIMEOUT) for _ in range(10)]
    trickling = [socket.create_connection(("127.0.0.1", secure.port), timeout=TIMEOUT) for _ in range(10)]
    for s in trickling:  # half a ClientHello, the rest never
        s.sendall(hello[: len(hello) // 2])
    try:
        started = time.monotonic()
        with secure.authenticated() as bystander:  # a whole handshake and SASL exchange meanwhile
            handshake_s = time.monotonic() - started
            api_versions_ok(bystander, 3)
            assert not any(closed_by_peer(s) for s in silent + trickling)
            n = 10

            def all_closed() -> bool:
                nonlocal n
                n += 1
                api_versions_ok(bystander, n)  # busy: never idle itself
                return all(closed_by_peer(s) for s in silent + trickling)

            wait_until(all_closed, TIMEOUT, interval=0.1, what="unfinished TLS handshakes closed")
            closed_after_s = time.monotonic() - opened
        assert handshake_s < 1.0, f"a client waited {handshake_s:.2f} s for its handshake behind the slow ones"
        assert closed_after_s >= IDLE_MS / 1000 * 0.9, f"closed after {closed_after_s:.2f} s, before the idle time"
        print(f"bystander handshake and SASL: {handshake_s * 1000:.0f} ms; unfinished handshakes closed after "
              f"{closed_after_s:.2f} s (connections.max.idle.ms={IDLE_MS})")
    finally:
        for s in silent + trickling:
            s.close()
    assert AdminClient(secure.client_config()).list_topics(timeout=TIMEOUT).brokers


def fuzz(secure: SecureBroker, frames: int, *, authenticate: bool, seed: int) -> int:
    """Send ``frames`` mutated frames over TLS, each connection authenticated first or not;
    returns how many frames the broker answered before authentication (must be none but
    ApiVersions and the SASL exchange)."""
    rng = random.Random(seed)
    answered_unauthenticated = 0
    s: ssl.SSLSocket | None = None
    for _ in range(frames):
        if s is None:
            s = secure.authenticated() if authenticate else secure.tls()
            s.settimeout(0.2 if authenticate else TIMEOUT)
        frame = mutate(rng.choice(secure.corpus), rng)
        key = struct.unpack_from(">h", frame, 4)[0] if len(frame) >= 6 else -1
        try:
            s.sendall(frame)
            if authenticate:
                if not s.recv(65536):
                    raise ConnectionError
            elif key in AUTHENTICATION_APIS:  # may be answered; start afresh either way
                s.close()
                s = None
            else:
                if not closed_unanswered(s):
                    answered_unauthenticated += 1
                s.close()
                s = None
        except (OSError, ConnectionError):  # closed, or no answer yet (a long poll, say)
            s.close()
            s = None
    if s is not None:
        s.close()
    return answered_unauthenticated


@pytest.mark.timeout(600)
@pytest.mark.parametrize("frames", [pytest.param(2_000, id="2k"),
                                    pytest.param(20_000, id="20k", marks=pytest.mark.slow)])
@pytest.mark.slow
def test_mutated_frames_over_tls_before_and_after_authentication(secure: SecureBroker, frames: int) -> None:
    stop = threading.Event()
    slowest = [0.0]
    results: dict[str, int] = {}

    def bystander() -> None:
        with secure.authenticated("admin") as s:
            keep_asking(s, stop, slowest)

    workers = [threading.Thread(target=lambda: results.setdefault("pre", fuzz(secure, frames // 2,
                                                                             authenticate=False, seed=1))),
               threading.Thread(target=lambda: results.setdefault("post", fuzz(secure, frames // 2,
                                                                              authenticate=True, seed=2)))]
    watcher = threading.Thread(target=bystander)
    started = time.monotonic()
    watcher.start()
    try:
        for t in workers:
            t.start()
        for t in workers:
            t.join(550)
    finally:
        stop.set()
        watcher.join(TIMEOUT)
    assert set(results) == {"pre", "post"}, "a fuzz worker failed"
    assert results["pre"] == 0, f"{results['pre']} requests answered before authentication"
    assert slowest[0] < 2.0, f"the bystander waited {slowest[0]:.1f} s"
    print(f"{frames} mutated frames over SASL_SSL in {time.monotonic() - started:.1f} s; "
          f"bystander's slowest answer {slowest[0] * 1000:.0f} ms")
    assert AdminClient(secure.client_config()).list_topics(timeout=TIMEOUT).brokers
