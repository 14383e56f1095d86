"""SaslHandshake (key 17) v1, SaslAuthenticate (key 36) v0-2 (KIP-152, KIP-368).

On a SASL_PLAINTEXT or SASL_SSL listener a client may send only ApiVersions, SaslHandshake
and SaslAuthenticate until it is authenticated; anything else closes the connection (the
server enforces it). SaslHandshake picks one of the listener's ``sasl.enabled.mechanisms``;
SaslAuthenticate carries the mechanism's exchange (``security/sasl.py``) until it names a
principal. A failed authentication is answered with SASL_AUTHENTICATION_FAILED and the
connection is closed after the answer, as Kafka does. The answer's ``session_lifetime_ms``
(v1+) is ``connections.max.reauth.ms`` (or the OAUTHBEARER token's remaining life, if
shorter): past it the client must authenticate again on the same connection (KIP-368).
SaslHandshake v0 (raw SASL tokens outside Kafka's framing) is not offered.
"""

from __future__ import annotations

from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import handles
from tomyum.errors import ErrorCode
from tomyum.security.sasl import SCRAM_CODES, AuthenticationFailed, OAuthBearerExchange, ScramCredential


@handles(17, versions=range(1, 2))
async def sasl_handshake(ctx: RequestContext, request: Any) -> dict[str, Any]:
    security = ctx.listener.security
    mechanisms = list(security.mechanisms)
    if not security.sasl:
        return {"error_code": ErrorCode.illegal_sasl_state, "mechanisms": ()}
    if request.mechanism not in security.mechanisms:
        return {"error_code": ErrorCode.unsupported_sasl_mechanism, "mechanisms": mechanisms}
    image = ctx.broker.metadata.image

    def scram(user: str, mechanism: str) -> ScramCredential | None:
        found = image.scram.get((user, SCRAM_CODES[mechanism]))
        return None if found is None else ScramCredential(found.salt, found.stored_key, found.server_key,
                                                          found.iterations)

    ctx.connection.begin_authentication(security.exchange(request.mechanism, scram))
    return {"error_code": 0, "mechanisms": mechanisms}


@handles(36, versions=range(0, 3))
async def sasl_authenticate(ctx: RequestContext, request: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"error_code": 0, "error_message": None, "auth_bytes": b"", "session_lifetime": 0}
    exchange = ctx.connection.authentication
    if exchange is None:
        return {**answer, "error_code": ErrorCode.illegal_sasl_state,
                "error_message": "SaslAuthenticate without a SaslHandshake before it"}
    try:
        answer["auth_bytes"] = exchange.step(bytes(request.auth_bytes))
    except AuthenticationFailed as e:
        ctx.broker.stats.authentication_failures[(exchange.mechanism, ctx.listener.name)] += 1
        ctx.connection.close_after_response(f"authentication failed: {e}")
        return {**answer, "error_code": ErrorCode.sasl_authentication_failed, "error_message": str(e)}
    if exchange.principal is not None:
        lifetime_ms = ctx.listener.security.reauth_ms
        if isinstance(exchange, OAuthBearerExchange) and exchange.token_expiry_ms is not None:
            left = max(exchange.token_expiry_ms - ctx.broker.clock.time_ms(), 1)
            lifetime_ms = min(lifetime_ms, left) if lifetime_ms else left
        ctx.connection.authenticated(exchange.principal, lifetime_ms)
        answer["session_lifetime"] = lifetime_ms
    return answer
