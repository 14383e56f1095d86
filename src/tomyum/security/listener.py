"""What one listener demands of its clients: TLS, SASL mechanisms, who they are afterwards.

:func:`listener_security` reads a listener's settings (Kafka's keys, with its
``listener.name.<l>.`` overrides) once, at start: an SSL context for SSL/SASL_SSL, the SASL
mechanisms offered on SASL_PLAINTEXT/SASL_SSL with what each needs (PLAIN's JAAS users, the
OAUTHBEARER validation settings), the re-authentication interval (KIP-368) and the principal
mapping for client certificates. :meth:`ListenerSecurity.exchange` starts one authentication.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
from tomyum.security.tls import PrincipalMapper, server_context

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

    context = server_context(setting) if protocol.endswith("SSL") else None
    mapper = PrincipalMapper(setting("ssl.principal.mapping.rules") or "DEFAULT")
    if not protocol.startswith("SASL_"):
        return ListenerSecurity(protocol, context, mapper=mapper)
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
    return ListenerSecurity(protocol, context, mechanisms, users, oauth, setting("connections.max.reauth.ms"), mapper)


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
