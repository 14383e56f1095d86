"""A local certificate authority, for trying TLS and for tests: a CA, a broker certificate for
the loopback names, and client certificates — PEM files made with ``cryptography``.

Not for production: the keys are unencrypted files in the directory given. ``tomyum serve
--secure-dev`` and the test suite use it so that TLS takes one command.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 825


@dataclass(frozen=True, slots=True)
class Issued:
    cert: Path
    key: Path
    #: certificate and key in one file (Kafka's ssl.keystore.location for PEM)
    keystore: Path


def _name(cn: str, ou: str | None = None) -> x509.Name:
    """O, OU, CN in that order, so that the name reads ``CN=...,OU=...,O=...`` (RFC 2253)."""
    parts = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tomyum dev")]
    if ou:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    parts.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(parts)


class LocalCA:
    def __init__(self, directory: Path, name: str = "tomyum local CA") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cert_path = self.directory / "ca.pem"
        key_path = self.directory / "ca.key"
        if self.cert_path.exists() and key_path.exists():
            self.key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            self.cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
            return
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        subject = _name(name)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .sign(self.key, hashes.SHA256()))
        _write(key_path, self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()), private=True)
        _write(self.cert_path, self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem: str, cn: str, *, ou: str | None = None, hosts: tuple[str, ...] = (),
              valid_days: int = VALID_DAYS) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(_name(cn, ou)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=valid_days)))
        if hosts:
            names: list[x509.GeneralName] = []
            for h in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(h)))
                except ValueError:
                    names.append(x509.DNSName(h))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())  # type: ignore[arg-type]
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        issued = Issued(self.directory / f"{stem}.pem", self.directory / f"{stem}.key",
                        self.directory / f"{stem}.keystore.pem")
        _write(issued.cert, cert_pem)
        _write(issued.key, key_pem, private=True)
        _write(issued.keystore, cert_pem + key_pem, private=True)
        return issued

    def broker(self, hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")) -> Issued:
        return self.issue("broker", "localhost", hosts=hosts)


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)
