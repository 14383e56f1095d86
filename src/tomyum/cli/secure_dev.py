"""``tomyum serve --secure-dev``: TLS, SCRAM and ACLs on in one command, for development.

In the data dir it makes (or reuses) a local CA and a broker certificate (``tls/``), and it
starts two listeners: PLAINTEXT on the address given (``localhost:9092`` by default) and
SASL_SSL on the next port, with SCRAM-SHA-256 and SCRAM-SHA-512. The StandardAuthorizer is on
with ``super.users=User:admin``; the PLAINTEXT listener's ANONYMOUS principal may do only what
ACLs allow it. On the first start the broker writes the ``admin`` SCRAM credential through its
own metadata controller, prints the password once, and writes ``client.properties`` (Kafka's
client keys, the password included, mode 0600) for ``--command-config``.

Not for production: the CA key is an unencrypted file next to the logs.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tomyum.broker.broker import Broker

ADMIN = "admin"
DEFAULT_LISTEN = "localhost:9092"
MECHANISMS = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}  # Kafka's ScramMechanism numbers
ITERATIONS = 8192
PROPERTIES = "client.properties"
SCRAM_JAAS = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="{}" password="{}";'


def listen_addresses(listen: str | None) -> tuple[str, str]:
    """``(PLAINTEXT address, SASL_SSL address)``: the given port and the next (port 0: both 0)."""
    host, _, port = (listen or DEFAULT_LISTEN).rpartition(":")
    number = int(port) if port.isdigit() else -1
    if not host or number < 0 or number >= 65535:
        from tomyum.errors import ConfigError

        raise ConfigError("--listen", f"{listen!r} is not HOST:PORT (with --secure-dev, PORT+1 is SASL_SSL)")
    return f"{host}:{number}", f"{host}:{number + 1 if number else 0}"


def settings(data_dir: Path, listen: str | None) -> list[str]:
    """The broker settings (``key=value``) of ``--secure-dev``; makes the CA and certificate if missing."""
    from tomyum.security.certs import LocalCA

    plain, secure = listen_addresses(listen)
    tls = data_dir / "tls"
    ca = LocalCA(tls, "tomyum --secure-dev CA")
    keystore = tls / "broker.keystore.pem"
    if not keystore.exists():
        host = plain.rpartition(":")[0].strip("[]")
        ca.broker(tuple(dict.fromkeys(("localhost", "127.0.0.1", "::1", *([host] if host else [])))))
    return [f"listeners=PLAINTEXT://{plain},SASL_SSL://{secure}",
            "sasl.enabled.mechanisms=" + ",".join(MECHANISMS),
            f"ssl.keystore.location={keystore}", f"ssl.truststore.location={ca.cert_path}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{ADMIN}"]


async def ensure_admin(broker: Broker, data_dir: Path) -> str | None:
    """Creates the admin's SCRAM credentials and ``client.properties`` if there are none; the
    new password, or ``None`` when the admin already existed. May await the metadata log."""
    import scramp

    from tomyum.metadata.records import UserScramCredentialRecord

    if any(name == ADMIN for name, _ in broker.metadata.image.scram):
        return None
    password = secrets.token_urlsafe(18)
    records = []
    for mechanism, number in MECHANISMS.items():
        salt, stored_key, server_key, iterations = scramp.ScramMechanism(mechanism).make_auth_info(
            password, iteration_count=ITERATIONS)
        records.append(UserScramCredentialRecord(name=ADMIN, mechanism=number, salt=salt, stored_key=stored_key,
                                                 server_key=server_key, iterations=iterations))
    await broker.metadata.alter_scram_credentials(records)
    write_client_properties(data_dir, password)
    return password


def write_client_properties(data_dir: Path, password: str) -> Path:
    path = data_dir / PROPERTIES
    path.write_text("# tomyum serve --secure-dev: the admin (a super user) over the SASL_SSL listener\n"
                    "security.protocol=SASL_SSL\n"
                    "sasl.mechanism=SCRAM-SHA-256\n"
                    f"sasl.jaas.config={SCRAM_JAAS.format(ADMIN, password)}\n"
                    "ssl.truststore.type=PEM\n"
                    f"ssl.truststore.location={(data_dir / 'tls' / 'ca.pem').resolve()}\n")
    path.chmod(0o600)
    return path
