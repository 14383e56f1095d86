"""SASL mechanisms, server side, as pure exchanges: client bytes in, server bytes out.

Each mechanism is a small object made per authentication: :meth:`Exchange.step` takes the
client's next message and returns the server's answer; once :attr:`Exchange.principal` is set
the client is authenticated (Kafka's ``User:<name>``). A bad credential raises
:class:`AuthenticationFailed` with a message fit to send back (it never says which of name or
password was wrong). The crypto is the libraries': ``scramp`` for SCRAM (RFC 5802/7677),
``PyJWT`` for OAUTHBEARER tokens.

* **PLAIN** (RFC 4616): users and passwords from the listener's JAAS config,
  ``user_<name>="<password>"`` as Kafka's PlainLoginModule reads them.
* **SCRAM-SHA-256 / SCRAM-SHA-512**: credentials from the metadata log (salt, iterations,
  StoredKey, ServerKey; never a password).
* **OAUTHBEARER** (RFC 7628, KIP-255): the client's ``auth=Bearer <jwt>``; unsecured JWS
  (``alg: none``, Kafka's development default) checked for its subject and expiry, or a signed
  JWT checked against keys (a JWKS) with issuer and audience, as Kafka's
  OAuthBearerValidatorCallbackHandler does.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
#: Kafka's ScramMechanism codes, as UserScramCredentialRecords store them
SCRAM_CODES = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}


class AuthenticationFailed(Exception):
    """The client is not who it says; the message goes back in SaslAuthenticate's error."""


class Exchange(Protocol):
    principal: str | None
    #: the SASL mechanism's name (``PLAIN``, ``SCRAM-SHA-256``, ``OAUTHBEARER``)
    mechanism: str

    def step(self, client: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


_JAAS_OPTION = re.compile(r'(\w[\w.-]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def jaas_options(config: str) -> dict[str, str]:
    """The ``key="value"`` options of a JAAS config line (``... required user_alice="pw";``)."""
    return {k: v.replace('\\"', '"') for k, v in _JAAS_OPTION.findall(config)}


class PlainExchange:
    mechanism = "PLAIN"

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = users
        self.principal: str | None = None

    def step(self, client: bytes) -> bytes:
        parts = client.split(b"\0")
        if len(parts) != 3:
            raise AuthenticationFailed("Invalid SASL/PLAIN response: expected authzid, username and password")
        authzid, user, password = (p.decode("utf-8", "replace") for p in parts)
        if not user or (authzid and authzid != user):
            raise AuthenticationFailed("Authentication failed: invalid username or authorization id")
        expected = self.users.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            raise AuthenticationFailed("Authentication failed: Invalid username or password")
        self.principal = f"User:{user}"
        return b""


class ScramExchange:
    """A SCRAM server conversation: client-first → server-first, client-final → server-final."""

    def __init__(self, mechanism: str, credential: Callable[[str], ScramCredential | None]) -> None:
        self.mechanism = mechanism
        import scramp

        self.principal: str | None = None
        self._user = ""

        def auth_info(user: str) -> tuple[bytes, bytes, bytes, int]:
            self._user = _saslname(user)
            found = credential(self._user)
            if found is None:
                raise scramp.ScramException("Authentication failed: Invalid user credentials")
            return found.salt, found.stored_key, found.server_key, found.iterations

        self._server = scramp.ScramMechanism(mechanism).make_server(auth_info)
        self._round = 0

    def step(self, client: bytes) -> bytes:
        import scramp

        try:
            if self._round == 0:
                self._round = 1
                self._server.set_client_first(client.decode("utf-8"))
                first: str = self._server.get_server_first()
                return first.encode()
            if self._round == 1:
                self._round = 2
                self._server.set_client_final(client.decode("utf-8"))
                final: str = self._server.get_server_final()
                answer = final.encode()
                self.principal = f"User:{self._user}"
                return answer
        except (scramp.ScramException, UnicodeDecodeError, ValueError) as e:
            raise AuthenticationFailed(f"Authentication failed during authentication due to invalid credentials "
                                       f"with SASL mechanism {self._server.m.name}: {e}") from None
        raise AuthenticationFailed("SCRAM exchange already complete")


def _saslname(name: str) -> str:
    """RFC 5802's saslname: ``=2C`` is ``,`` and ``=3D`` is ``=``."""
    return name.replace("=2C", ",").replace("=3D", "=")


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    """How OAUTHBEARER tokens are checked (Kafka's sasl.oauthbearer.* keys)."""

    #: signing keys: a JWKS document (``{"keys": [...]}``) — None allows only unsecured tokens
    jwks: Mapping[str, Any] | None = None
    expected_issuer: str | None = None
    expected_audience: tuple[str, ...] = ()
    sub_claim_name: str = "sub"
    clock_skew_s: int = 30
    allow_unsecured: bool = True


class OAuthBearerExchange:
    mechanism = "OAUTHBEARER"

    def __init__(self, settings: OAuthSettings, now: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.now = now
        self.principal: str | None = None
        self.token_expiry_ms: int | None = None

    def step(self, client: bytes) -> bytes:
        token = _bearer_token(client)
        claims = self._validate(token)
        subject = claims.get(self.settings.sub_claim_name)
        if not isinstance(subject, str) or not subject:
            raise AuthenticationFailed(f"the token has no {self.settings.sub_claim_name!r} claim")
        if "exp" in claims:
            self.token_expiry_ms = int(float(claims["exp"]) * 1000)
        self.principal = f"User:{subject}"
        return b""

    def _validate(self, token: str) -> dict[str, Any]:
        import jwt

        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise AuthenticationFailed(f"malformed token: {e}") from None
        options: Any = {"require": ["exp"], "verify_aud": bool(s.expected_audience)}
        if header.get("alg", "none") == "none":
            if not s.allow_unsecured or s.jwks is not None:
                raise AuthenticationFailed("unsecured (unsigned) tokens are not accepted on this listener")
            try:
                claims = jwt.decode(token, options={"verify_signature": False, "require": ["exp"]},
                                    algorithms=["none"])
            except jwt.PyJWTError as e:
                raise AuthenticationFailed(f"invalid token: {e}") from None
            if float(claims["exp"]) < self.now() - s.clock_skew_s:
                raise AuthenticationFailed("the token has expired")
            return dict(claims)
        if s.jwks is None:
            raise AuthenticationFailed("signed tokens need sasl.oauthbearer.jwks.endpoint.url on this listener")
        try:
            keys = jwt.PyJWKSet.from_dict(dict(s.jwks))
            key = next((k for k in keys.keys if k.key_id == header.get("kid")), None)
            if key is None:
                raise AuthenticationFailed(f"no key {header.get('kid')!r} in the JWKS")
            claims = jwt.decode(token, key.key, algorithms=[header.get("alg", "RS256")],
                                audience=list(s.expected_audience) or None, issuer=s.expected_issuer,
                                leeway=s.clock_skew_s, options=options)
        except jwt.PyJWTError as e:
            raise AuthenticationFailed(f"invalid token: {e}") from None
        return dict(claims)


def _bearer_token(client: bytes) -> str:
    """The token of an OAUTHBEARER client-first message (``n,,\\x01auth=Bearer <t>\\x01\\x01``)."""
    text = client.decode("utf-8", "replace")
    for part in text.split("\x01"):
        if part.startswith("auth="):
            scheme, _, token = part[5:].partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip()
    raise AuthenticationFailed("Invalid OAUTHBEARER client first message: no auth=Bearer token")
