"""TLS for SSL and SASL_SSL listeners, from Kafka's ``ssl.*`` keys (PEM stores, KIP-651).

:func:`server_context` builds the listener's :class:`ssl.SSLContext` (the stdlib's): the key
store as a file (``ssl.keystore.location``) or inline PEM (``ssl.keystore.certificate.chain``
and ``ssl.keystore.key``), an encrypted key's ``ssl.key.password``, the trust store for client
certificates, ``ssl.client.auth`` (none / requested / required), ``ssl.enabled.protocols`` and
``ssl.cipher.suites``. Every key may be set per listener (``listener.name.<l>.ssl.*``).
A bad store is a :class:`~tomyum.errors.ConfigError` naming the key. :func:`ensure_compatible`
is Kafka's check of a key store changed at run time (same distinguished name and subject
alternative names unless ``ssl.allow.dn.changes`` / ``ssl.allow.san.changes``).

:class:`PrincipalMapper` turns a client certificate's distinguished name into the principal
(``User:<name>``) with ``ssl.principal.mapping.rules`` in Kafka's syntax: ``DEFAULT`` keeps the
whole name; ``RULE:pattern/replacement/[LU]`` rules apply the first whose pattern matches the
whole name, ``L``/``U`` lower- or upper-casing the result.
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tomyum.errors import ConfigError

_TLS_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def server_context(setting: Callable[[str], Any]) -> ssl.SSLContext:
    """The listener's server-side context; ``setting(key)`` reads a key as the listener sees it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = [_TLS_VERSIONS[v] for v in setting("ssl.enabled.protocols")]
    ctx.minimum_version, ctx.maximum_version = min(versions), max(versions)
    password = setting("ssl.key.password")
    location, chain, key = (setting(k) for k in ("ssl.keystore.location", "ssl.keystore.certificate.chain",
                                                   "ssl.keystore.key"))
    try:
        if location:
            ctx.load_cert_chain(location, password=password)
        elif chain and key:
            _load_inline_chain(ctx, chain, key, password)
        else:
            raise ConfigError("ssl.keystore.location", "an SSL listener needs a key store: ssl.keystore.location, "
                              "or ssl.keystore.certificate.chain and ssl.keystore.key")
    except (OSError, ssl.SSLError) as e:
        raise ConfigError("ssl.keystore.location", f"cannot load the key store: {e}") from None
    client_auth = setting("ssl.client.auth")
    trust_file, trust_inline = setting("ssl.truststore.location"), setting("ssl.truststore.certificates")
    try:
        if trust_file:
            ctx.load_verify_locations(cafile=trust_file)
        elif trust_inline:
            ctx.load_verify_locations(cadata=trust_inline)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError("ssl.truststore.location", f"cannot load the trust store: {e}") from None
    if client_auth != "none" and not (trust_file or trust_inline):
        raise ConfigError("ssl.client.auth", f"{client_auth} needs a trust store (ssl.truststore.location)")
    ctx.verify_mode = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}[client_auth]
    ciphers = setting("ssl.cipher.suites")
    if ciphers:
        try:
            ctx.set_ciphers(":".join(ciphers))
        except ssl.SSLError as e:
            raise ConfigError("ssl.cipher.suites", f"no usable cipher suite among {ciphers}: {e}") from None
    return ctx


def _load_inline_chain(ctx: ssl.SSLContext, chain: str, key: str, password: str | None) -> None:
    """The stdlib loads a chain from files only: write both to a private temporary file."""
    fd, path = tempfile.mkstemp(prefix="tomyum-keystore-", suffix=".pem")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(chain.strip() + "\n" + key.strip() + "\n")
        ctx.load_cert_chain(path, password=password)
    finally:
        os.unlink(path)


_RULE = re.compile(r"\s*(?:(DEFAULT)|RULE:((?:[^/\\]|\\.)*)/((?:[^/\\]|\\.)*)/([LU]?))\s*(?:,|$)")


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str] | None  # None: DEFAULT
    replacement: str
    case: str


class PrincipalMapper:
    def __init__(self, rules: str) -> None:
        self.rules: list[_Rule] = []
        pos, text = 0, rules.strip()
        while pos < len(text):
            m = _RULE.match(text, pos)
            if m is None or m.end() == pos:
                raise ConfigError("ssl.principal.mapping.rules", f"invalid rule at {text[pos:]!r}: expected DEFAULT "
                                  "or RULE:pattern/replacement/[LU], separated by commas")
            pos = m.end()
            if m.group(1):
                self.rules.append(_Rule(None, "", ""))
                continue
            try:
                pattern = re.compile(m.group(2).replace("\\/", "/"))
            except re.error as e:
                raise ConfigError("ssl.principal.mapping.rules", f"invalid pattern {m.group(2)!r}: {e}") from None
            replacement = re.sub(r"\$(\d+)", r"\\\1", m.group(3).replace("\\/", "/"))
            self.rules.append(_Rule(pattern, replacement, m.group(4)))

    def principal(self, distinguished_name: str) -> str:
        for rule in self.rules:
            if rule.pattern is None:
                return f"User:{distinguished_name}"
            if rule.pattern.fullmatch(distinguished_name):
                name = rule.pattern.sub(rule.replacement, distinguished_name)
                name = name.lower() if rule.case == "L" else name.upper() if rule.case == "U" else name
                return f"User:{name}"
        return f"User:{distinguished_name}"  # no rule applies: Kafka keeps the name


def keystore_certificate(setting: Callable[[str], Any]) -> Any:
    """The listener's own certificate (a ``cryptography`` x509 certificate: the first of the key
    store's chain), or None without a key store. ConfigError if it cannot be read."""
    from cryptography import x509

    location, chain = setting("ssl.keystore.location"), setting("ssl.keystore.certificate.chain")
    try:
        pem = Path(location).read_bytes() if location else chain.encode() if chain else None
        return x509.load_pem_x509_certificates(pem)[0] if pem else None
    except (OSError, ValueError) as e:
        raise ConfigError("ssl.keystore.location", f"cannot read the key store's certificate: {e}") from None


def store_files_changed(setting: Callable[[str], Any]) -> tuple[float, ...]:
    """The modification times of the listener's store files (0: none), so that a file replaced
    in place is read again when its location is set again (as Kafka's key store reload)."""
    out = []
    for key in ("ssl.keystore.location", "ssl.truststore.location"):
        try:
            out.append(os.stat(setting(key)).st_mtime if setting(key) else 0.0)
        except OSError:
            out.append(-1.0)
    return tuple(out)


def ensure_compatible(old: Any, new: Any, *, allow_dn_changes: bool, allow_san_changes: bool) -> None:
    """Kafka's check of a key store changed at run time: the new certificate keeps the old one's
    distinguished name (compared as RFC 2253 text, ignoring case) unless ``allow_dn_changes``, and
    every subject alternative name of the old one unless ``allow_san_changes``."""
    if old is None:
        if new is not None:
            raise ConfigError("ssl.keystore.location", "Cannot add SSL keystore to an existing listener for which "
                              "no keystore was configured.")
        return
    if new is None:
        raise ConfigError("ssl.keystore.location", "Cannot remove the SSL keystore from an existing listener for "
                          "which a keystore was configured.")
    old_dn, new_dn = old.subject.rfc4514_string(), new.subject.rfc4514_string()
    if not allow_dn_changes and old_dn.lower() != new_dn.lower():
        raise ConfigError("ssl.keystore.location", f"Keystore DistinguishedName does not match: existing={old_dn}, "
                          f"new={new_dn} (set ssl.allow.dn.changes=true to allow it)")
    old_sans, new_sans = _subject_alt_names(old), _subject_alt_names(new)
    if not allow_san_changes and not old_sans <= new_sans:
        raise ConfigError("ssl.keystore.location", f"Keystore SubjectAltNames do not match: existing="
                          f"{sorted(old_sans)}, new={sorted(new_sans)} (set ssl.allow.san.changes=true to allow "
                          "it)")


def _subject_alt_names(cert: Any) -> set[str]:
    from cryptography import x509

    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {f"{type(n).__name__}:{n.value}" for n in names}


def peer_distinguished_name(der: bytes) -> str:
    """A certificate's subject as Kafka's principal builder writes it (RFC 2253)."""
    from cryptography import x509

    return x509.load_der_x509_certificate(der).subject.rfc4514_string()
