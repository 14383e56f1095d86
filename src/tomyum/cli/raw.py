"""Requests librdkafka has no API for (AlterClientQuotas, DescribeClientQuotas), sent as Kafka's
own tools send them: one connection to the bootstrap broker, with the security settings of
``--command-config`` (TLS, SASL PLAIN, SCRAM-SHA-256/512, OAUTHBEARER's unsecured tokens) and
kio's codecs.

Only the librdkafka keys this needs are read: ``security.protocol``, ``sasl.mechanism(s)``,
``sasl.username``, ``sasl.password``, ``ssl.ca.location``, ``ssl.certificate.location``,
``ssl.key.location``, ``ssl.endpoint.identification.algorithm``, and for OAUTHBEARER
``enable.sasl.oauthbearer.unsecure.jwt`` with ``sasl.oauthbearer.config`` (``principal=NAME``,
``lifeSeconds=N``: librdkafka's unsecured JWT, what ``--command-config`` makes of Kafka's
``OAuthBearerLoginModule`` with ``unsecuredLoginStringClaim_sub``). Tokens from an identity
provider (``sasl.oauthbearer.method=oidc``) are not fetched here: one line says so.
"""

from __future__ import annotations

import io
import socket
import ssl
import struct
from typing import Any

from tomyum.cli.common import CliError

SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36


class RawConnection:
    """One blocking connection to a broker; every failure is a :class:`CliError` of one line."""

    def __init__(self, config: dict[str, Any], timeout: float) -> None:
        self.config = config
        self.timeout = timeout
        self.correlation_id = 0
        first = str(config["bootstrap.servers"]).split(",")[0].strip()
        first = first.split("://")[-1]
        host, _, port = first.rpartition(":")
        self.address = first
        protocol = str(config.get("security.protocol", "PLAINTEXT")).upper()
        try:
            sock = socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout)
        except OSError as e:
            raise CliError(f"nothing answers at {first} ({(e.strerror or str(e)).lower()}): start one with "
                           "'tomyum start', or name another with --bootstrap HOST:PORT") from None
        sock.settimeout(timeout)
        if protocol in ("SSL", "SASL_SSL"):
            sock = self._tls(sock, host)
        self.sock = sock
        if protocol.startswith("SASL"):
            self._authenticate()

    def _tls(self, sock: socket.socket, host: str) -> ssl.SSLSocket:
        c = self.config
        context = ssl.create_default_context(cafile=c.get("ssl.ca.location"))
        if str(c.get("ssl.endpoint.identification.algorithm", "https")).lower() == "none":
            context.check_hostname = False
        if c.get("ssl.certificate.location"):
            context.load_cert_chain(c["ssl.certificate.location"], c.get("ssl.key.location"), c.get("ssl.key.password"))
        try:
            return context.wrap_socket(sock, server_hostname=host)
        except (ssl.SSLError, OSError) as e:
            raise CliError(f"TLS with {self.address} failed: {getattr(e, 'reason', None) or e} "
                           "(is ssl.ca.location the CA that signed the broker's certificate?)") from None

    def _authenticate(self) -> None:
        import scramp

        c = self.config
        mechanism = str(c.get("sasl.mechanism") or c.get("sasl.mechanisms") or "GSSAPI").upper()
        user, password = c.get("sasl.username"), c.get("sasl.password")
        token = unsecured_token(c) if mechanism == "OAUTHBEARER" else None
        if token is not None:
            user = token[1]
        elif mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") or user is None or password is None:
            raise CliError(f"this command authenticates with PLAIN or SCRAM and a username and password, or "
                           f"OAUTHBEARER with an unsecured token, not {mechanism}"
                           + (" from an identity provider" if mechanism == "OAUTHBEARER" else ""))
        from kio.schema.sasl_authenticate.v2 import request as authenticate
        from kio.schema.sasl_handshake.v1 import request as handshake

        response = self.send(SASL_HANDSHAKE, 1, handshake.SaslHandshakeRequest(mechanism=mechanism))
        if response.error_code:
            raise CliError(f"the broker at {self.address} does not offer {mechanism} "
                           f"(it offers {', '.join(response.mechanisms) or 'nothing'})")

        def step(data: bytes) -> bytes:
            r = self.send(SASL_AUTHENTICATE, 2, authenticate.SaslAuthenticateRequest(auth_bytes=data))
            if r.error_code:
                raise CliError(f"authentication as {user!r} with {mechanism} failed: "
                               f"{r.error_message or 'bad credentials'}")
            return bytes(r.auth_bytes)

        if token is not None:  # RFC 7628's client first message
            step(b"n,,\x01auth=Bearer " + token[0].encode() + b"\x01\x01")
            return
        assert user is not None and password is not None
        if mechanism == "PLAIN":
            step(b"\0" + user.encode() + b"\0" + password.encode())
            return
        client = scramp.ScramClient([mechanism], user, password)
        client.set_server_first(step(client.get_client_first().encode()).decode())
        try:
            client.set_server_final(step(client.get_client_final().encode()).decode())
        except scramp.ScramException as e:
            raise CliError(f"authentication as {user!r} with {mechanism} failed: {e}") from None

    def send(self, api_key: int, version: int, body: Any) -> Any:
        """Sends ``body`` and returns the decoded response."""
        from kio.serial import entity_reader, entity_writer

        from tomyum.protocol.codec import request_class, response_class, response_header_flexible

        self.correlation_id += 1
        cls = request_class(api_key, version)
        buf = io.BytesIO()
        entity_writer(cls)(buf, body)
        header = (struct.pack(">hhih", api_key, version, self.correlation_id, 10) + b"tomyum-cli"
                  + (b"\0" if cls.__flexible__ else b""))
        frame = header + buf.getvalue()
        try:
            self.sock.sendall(struct.pack(">i", len(frame)) + frame)
            (size,) = struct.unpack(">i", self._exactly(4))
            response = self._exactly(size)
        except (OSError, ConnectionError) as e:
            raise CliError(f"the broker at {self.address} closed the connection ({e or 'no answer'}): "
                           "are --bootstrap and --command-config's security.protocol for the same listener?") from None
        offset = 4 + (1 if response_header_flexible(api_key, version) else 0)
        return entity_reader(response_class(api_key, version))(response, offset)[0]

    def _exactly(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unsecured_token(config: dict[str, Any]) -> tuple[str, str] | None:
    """librdkafka's unsecured JWT (``alg: none``) for ``sasl.oauthbearer.config``'s principal,
    and that principal; None unless ``enable.sasl.oauthbearer.unsecure.jwt`` is on."""
    import base64
    import json
    import time

    if str(config.get("enable.sasl.oauthbearer.unsecure.jwt", "false")).lower() != "true":
        return None
    options = dict(item.partition("=")[::2] for item in str(config.get("sasl.oauthbearer.config", "")).split())
    principal = options.get("principal")
    if not principal:
        raise CliError("OAUTHBEARER's unsecured token needs sasl.oauthbearer.config=principal=NAME "
                       "(unsecuredLoginStringClaim_sub in Kafka's OAuthBearerLoginModule)")
    now = int(time.time())

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"sub": principal, "iat": now, "exp": now + int(options.get("lifeSeconds", "3600"))}
    return f"{part({'alg': 'none'})}.{part(claims)}.", principal
