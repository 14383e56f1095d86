"""DescribeUserScramCredentials (key 50) v0, AlterUserScramCredentials (key 51) v0 (KIP-554).

Credentials are stored as Kafka stores them — salt, iterations, StoredKey and ServerKey (RFC
5802), never the password — as UserScramCredentialRecords in the metadata log, durable before
they are answered. A client sends the salted password; the broker derives the keys.
Iterations must be 4096-16384 (Kafka's bounds); each user gets one result. With an
authorizer: describing needs DESCRIBE on the cluster, altering ALTER
(CLUSTER_AUTHORIZATION_FAILED), as in Kafka.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from typing import Any

from tomyum.broker.context import CLUSTER, RequestContext
from tomyum.broker.dispatch import handles
from tomyum.errors import ErrorCode
from tomyum.metadata.records import RemoveUserScramCredentialRecord, UserScramCredentialRecord
from tomyum.security.acls import AclOperation, ResourceType

#: Kafka's ScramMechanism codes
MECHANISMS = {1: "sha256", 2: "sha512"}
MIN_ITERATIONS, MAX_ITERATIONS = 4096, 16384


def scram_keys(mechanism: int, salted_password: bytes) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) of RFC 5802 for a salted password."""
    digest = MECHANISMS[mechanism]
    client_key = hmac.new(salted_password, b"Client Key", digest).digest()
    return hashlib.new(digest, client_key).digest(), hmac.new(salted_password, b"Server Key", digest).digest()


@handles(50, versions=range(0, 1))
async def describe_user_scram_credentials(ctx: RequestContext, request: Any) -> dict[str, Any]:
    creds = ctx.broker.metadata.image.scram
    if not ctx.authorized(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "error_message": None,
                "results": ()}
    # null or empty: every user with a credential (Kafka's ScramImage.describe)
    users = [u.name for u in request.users or ()] or sorted({name for name, _ in creds})
    counts = Counter(users)
    results = []
    for user in dict.fromkeys(users):
        infos = [{"mechanism": m, "iterations": c.iterations} for (n, m), c in sorted(creds.items()) if n == user]
        if counts[user] > 1:
            code, message = ErrorCode.duplicate_resource, f"Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
        elif not infos:
            code, message = ErrorCode.resource_not_found, f"Attempt to describe a user credential that does not exist: {user}"
        else:
            code, message = ErrorCode.none, None
        results.append({"user": user, "error_code": code, "error_message": message,
                        "credential_infos": infos if code == ErrorCode.none else ()})
    return {"throttle_time": 0, "error_code": 0, "error_message": None, "results": results}


def _problem(ctx: RequestContext, name: str, mechanism: int, iterations: int | None) -> tuple[ErrorCode, str] | None:
    if not name:
        return ErrorCode.unacceptable_credential, "Username must not be empty"
    if mechanism not in MECHANISMS:
        return ErrorCode.unsupported_sasl_mechanism, f"Unknown SCRAM mechanism {mechanism}"
    if iterations is None:
        if (name, mechanism) not in ctx.broker.metadata.image.scram:
            return ErrorCode.resource_not_found, "Attempt to delete a user credential that does not exist"
    elif iterations < MIN_ITERATIONS:
        return ErrorCode.unacceptable_credential, f"Too few iterations ({iterations} < {MIN_ITERATIONS})"
    elif iterations > MAX_ITERATIONS:
        return ErrorCode.unacceptable_credential, f"Too many iterations ({iterations} > {MAX_ITERATIONS})"
    return None


@handles(51, versions=range(0, 1))
async def alter_user_scram_credentials(ctx: RequestContext, request: Any) -> dict[str, Any]:
    names = [d.name for d in request.deletions] + [u.name for u in request.upsertions]
    if not ctx.authorized(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER):
        return {"throttle_time": 0, "results": [{"user": n, "error_code": ErrorCode.cluster_authorization_failed,
                                                 "error_message": None} for n in dict.fromkeys(names)]}
    counts = Counter(names)
    errors: dict[str, tuple[ErrorCode, str]] = {
        n: (ErrorCode.duplicate_resource, "A user credential cannot be altered twice in the same request")
        for n, k in counts.items() if k > 1}
    changes: dict[str, UserScramCredentialRecord | RemoveUserScramCredentialRecord] = {}
    for d in request.deletions:
        problem = errors.get(d.name) or _problem(ctx, d.name, d.mechanism, None)
        if problem:
            errors[d.name] = problem
        else:
            changes[d.name] = RemoveUserScramCredentialRecord(name=d.name, mechanism=d.mechanism)
    for u in request.upsertions:
        problem = errors.get(u.name) or _problem(ctx, u.name, u.mechanism, u.iterations)
        if problem:
            errors[u.name] = problem
            continue
        stored_key, server_key = scram_keys(u.mechanism, u.salted_password)
        changes[u.name] = UserScramCredentialRecord(name=u.name, mechanism=u.mechanism, salt=u.salt,
                                                    stored_key=stored_key, server_key=server_key,
                                                    iterations=u.iterations)
    await ctx.broker.metadata.alter_scram_credentials(list(changes.values()))
    results = [{"user": n, "error_code": errors[n][0] if n in errors else 0,
                "error_message": errors[n][1] if n in errors else None} for n in dict.fromkeys(names)]
    return {"throttle_time": 0, "results": results}
