"""SASL mechanisms as pure exchanges: PLAIN against the JAAS users, SCRAM (a real scramp
client against the server) against stored credentials, OAUTHBEARER unsecured and signed."""

from __future__ import annotations

import json
import time

import jwt
import pytest
import scramp
from cryptography.hazmat.primitives.asymmetric import rsa

from tomyum.security.sasl import (
    AuthenticationFailed,
    OAuthBearerExchange,
    OAuthSettings,
    PlainExchange,
    ScramCredential,
    ScramExchange,
    jaas_options,
)

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
        'password="admin-secret" user_admin="admin-secret" user_alice="alice \\"pw\\"";')


def test_plain_checks_the_jaas_users() -> None:
    users = {k[5:]: v for k, v in jaas_options(JAAS).items() if k.startswith("user_")}
    assert users == {"admin": "admin-secret", "alice": 'alice "pw"'}
    ok = PlainExchange(users)
    assert ok.step(b'\0alice\0alice "pw"') == b"" and ok.principal == "User:alice"
    for bad in (b"\0alice\0wrong", b"\0nobody\0x", b"bob\0alice\0alice \"pw\"", b"garbage"):
        with pytest.raises(AuthenticationFailed):
            PlainExchange(users).step(bad)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_authenticates_a_real_client_and_refuses_a_wrong_password(mechanism: str) -> None:
    m = scramp.ScramMechanism(mechanism)
    salt, stored, server, iterations = m.make_auth_info("s3cret", iteration_count=4096)
    creds = {"alice": ScramCredential(salt, stored, server, iterations)}
    for password, accepted in (("s3cret", True), ("wrong", False)):
        client = scramp.ScramClient([mechanism], "alice", password)
        exchange = ScramExchange(mechanism, creds.get)
        server_first = exchange.step(client.get_client_first().encode())
        client.set_server_first(server_first.decode())
        if accepted:
            client.set_server_final(exchange.step(client.get_client_final().encode()).decode())
            assert exchange.principal == "User:alice"
        else:
            with pytest.raises(AuthenticationFailed):
                exchange.step(client.get_client_final().encode())
            assert exchange.principal is None
    with pytest.raises(AuthenticationFailed):
        ScramExchange(mechanism, creds.get).step(scramp.ScramClient([mechanism], "mallory", "x")
                                                 .get_client_first().encode())


def bearer(token: str) -> bytes:
    return f"n,,\x01auth=Bearer {token}\x01\x01".encode()


def test_oauthbearer_unsecured_tokens_for_development() -> None:
    now = time.time()
    good = jwt.encode({"sub": "alice", "exp": now + 60}, key=None, algorithm="none")
    ex = OAuthBearerExchange(OAuthSettings())
    assert ex.step(bearer(good)) == b"" and ex.principal == "User:alice"
    expired = jwt.encode({"sub": "alice", "exp": now - 3600}, key=None, algorithm="none")
    with pytest.raises(AuthenticationFailed, match="expired"):
        OAuthBearerExchange(OAuthSettings()).step(bearer(expired))
    with pytest.raises(AuthenticationFailed, match="no 'sub'"):
        OAuthBearerExchange(OAuthSettings()).step(bearer(jwt.encode({"exp": now + 60}, key=None, algorithm="none")))


def test_oauthbearer_signed_tokens_against_a_jwks() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    settings = OAuthSettings(jwks={"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]},
                             expected_issuer="https://idp.example", expected_audience=("kafka",))
    now = time.time()
    claims = {"sub": "svc", "exp": now + 60, "iss": "https://idp.example", "aud": "kafka"}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    ex = OAuthBearerExchange(settings)
    ex.step(bearer(token))
    assert ex.principal == "User:svc" and ex.token_expiry_ms is not None
    forged = jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256",
                        headers={"kid": "k1"})
    wrong_issuer = jwt.encode({**claims, "iss": "https://evil"}, key, algorithm="RS256", headers={"kid": "k1"})
    wrong_audience = jwt.encode({**claims, "aud": "other"}, key, algorithm="RS256", headers={"kid": "k1"})
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    for bad in (forged, wrong_issuer, wrong_audience, unsigned):
        with pytest.raises(AuthenticationFailed):
            OAuthBearerExchange(settings).step(bearer(bad))
