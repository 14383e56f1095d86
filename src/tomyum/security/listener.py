"""What one listener demands of its clients: TLS, SASL mechanisms, who they are afterwards.

:func:`listener_security` reads a listener's settings (Kafka's keys, with its
``listener.name.<l>.`` overrides) once, at start: an SSL context for SSL/SASL_SSL, the SASL
mechanisms offered on SASL_PLAINTEXT/SASL_SSL with what each needs (PLAIN's JAAS users, the
OAUTHBEARER validation settings), the re-authentication interval (KIP-368) and the principal
mapping for client certificates. :meth:`ListenerSecurity.exchange` starts one authentication.
:func:`reconfigured` is the same listener with the key and trust stores changed at run time.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tomyum.config import BrokerConfig
from tomyum.errors import ConfigError
from tomyum.security.sasl import (
    MECHANISMS,
    Exchange,
    OAuthBearerExchange,
    OAuthSettings,
    PlainExchange,
    ScramCredential,
    ScramExchange,
    jaas_options,
)
from tomyum.security.tls import (
    PrincipalMapper,
    ensure_compatible,
    keystore_certificate,
    server_context,
    store_files_changed,
)

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
ANONYMOUS = "User:ANONYMOUS"


@dataclass(frozen=True, slots=True)
class ListenerSecurity:
    protocol: str
    ssl_context: ssl.SSLContext | None = None
    mechanisms: tuple[str, ...] = ()
    plain_users: Mapping[str, str] = field(default_factory=dict)
    oauth: OAuthSettings = field(default_factory=OAuthSettings)
    reauth_ms: int = 0
    mapper: PrincipalMapper = field(default_factory=lambda: PrincipalMapper("DEFAULT"))
    #: the listener's own certificate (an x509 certificate), for the checks of a new key store
    certificate: Any = None
    #: the store settings (and store files' modification times) ssl_context was made from
    stores: tuple[Any, ...] = ()

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def exchange(self, mechanism: str, scram: Callable[[str, str], ScramCredential | None]) -> Exchange:
        """A new authentication with ``mechanism`` (one of :attr:`mechanisms`)."""
        if mechanism == "PLAIN":
            return PlainExchange(self.plain_users)
        if mechanism.startswith("SCRAM-"):
            return ScramExchange(mechanism, lambda user: scram(user, mechanism))
        return OAuthBearerExchange(self.oauth)


def listener_security(config: BrokerConfig, name: str, protocol: str) -> ListenerSecurity:
    if protocol not in PROTOCOLS:
        raise ConfigError("listener.security.protocol.map", f"listener {name} uses {protocol}; the security "
                          f"protocols are {', '.join(PROTOCOLS)}")

    def setting(key: str) -> Any:
        return config.for_listener(name, key)

    tls: dict[str, Any] = {}
    if protocol.endswith("SSL"):
        tls = dict(ssl_context=server_context(setting), certificate=keystore_certificate(setting),
                   stores=_stores(setting))
    mapper = PrincipalMapper(setting("ssl.principal.mapping.rules") or "DEFAULT")
    if not protocol.startswith("SASL_"):
        return ListenerSecurity(protocol, mapper=mapper, **tls)
    mechanisms = tuple(m.upper() for m in setting("sasl.enabled.mechanisms"))
    unknown = [m for m in mechanisms if m not in MECHANISMS]
    if unknown or not mechanisms:
        raise ConfigError("sasl.enabled.mechanisms", f"listener {name} offers {', '.join(unknown) or 'nothing'}; "
                          f"tomyum implements {', '.join(MECHANISMS)}")
    users: dict[str, str] = {}
    if "PLAIN" in mechanisms:
        jaas = setting("plain.sasl.jaas.config")
        if not jaas:
            raise ConfigError(f"listener.name.{name.lower()}.plain.sasl.jaas.config",
                              "PLAIN needs its users: PlainLoginModule required user_<name>=\"<password>\";")
        users = {k[5:]: v for k, v in jaas_options(jaas).items() if k.startswith("user_")}
    oauth = OAuthSettings()
    if "OAUTHBEARER" in mechanisms:
        url = setting("sasl.oauthbearer.jwks.endpoint.url")
        oauth = OAuthSettings(jwks=_load_jwks(url) if url else None,
                              expected_issuer=setting("sasl.oauthbearer.expected.issuer"),
                              expected_audience=tuple(setting("sasl.oauthbearer.expected.audience")),
                              sub_claim_name=setting("sasl.oauthbearer.sub.claim.name"),
                              clock_skew_s=setting("sasl.oauthbearer.clock.skew.seconds"),
                              allow_unsecured=not url)
    return ListenerSecurity(protocol, mechanisms=mechanisms, plain_users=users, oauth=oauth,
                            reauth_ms=setting("connections.max.reauth.ms"), mapper=mapper, **tls)


#: the keys that name a listener's stores (what may change at run time, less the ignored types and
#: PEM store passwords)
STORE_KEYS = ("ssl.keystore.location", "ssl.keystore.certificate.chain", "ssl.keystore.key", "ssl.key.password",
              "ssl.truststore.location", "ssl.truststore.certificates")


def _stores(setting: Callable[[str], Any]) -> tuple[Any, ...]:
    return tuple(setting(k) for k in STORE_KEYS) + store_files_changed(setting)


def reconfigured(security: ListenerSecurity, setting: Callable[[str], Any]) -> ListenerSecurity:
    """The listener's security with the stores ``setting`` names now (Kafka's
    SslFactory.reconfigure): ``security`` itself if they are the ones it has (and their files
    are unchanged), else a copy with a new SSL context. ConfigError (refused) if the new stores
    do not load, or the new certificate does not fit (:func:`ensure_compatible`), or a trust
    store appears where there was none."""
    if security.ssl_context is None:
        return security
    stores = _stores(setting)
    if stores == security.stores:
        return security
    try:
        context = server_context(setting)
        certificate = keystore_certificate(setting)
        ensure_compatible(security.certificate, certificate, allow_dn_changes=setting("ssl.allow.dn.changes"),
                          allow_san_changes=setting("ssl.allow.san.changes"))
        had_trust = security.stores[STORE_KEYS.index("ssl.truststore.location")] or \
            security.stores[STORE_KEYS.index("ssl.truststore.certificates")]
        if not had_trust and (setting("ssl.truststore.location") or setting("ssl.truststore.certificates")):
            raise ConfigError("ssl.truststore.location", "Cannot add SSL truststore to an existing listener for "
                              "which no truststore was configured.")
    except ConfigError as e:  # Kafka's words and INVALID_REQUEST, whatever the store's fault
        reason = str(e).removeprefix(f"{e.key}: ")
        raise ConfigError(e.key, f"Validation of dynamic config update of SSLFactory failed: {reason}",
                          refused=True) from None
    return replace(security, ssl_context=context, certificate=certificate, stores=stores)


def _load_jwks(url: str) -> Mapping[str, Any]:
    """The JSON Web Key Set at ``url`` (https: or file:), read at start."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (the operator's URL)
            doc = json.loads(response.read())
    except (OSError, ValueError) as e:
        raise ConfigError("sasl.oauthbearer.jwks.endpoint.url", f"cannot read a JWKS from {url}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ConfigError("sasl.oauthbearer.jwks.endpoint.url", f"{url} is not a JWKS (no keys)")
    return doc
