"""DescribeAcls (key 29), CreateAcls (key 30), DeleteAcls (key 31), v1-3.

ACL bindings are metadata records (AccessControlEntryRecord), durable before they are
answered; the authorizer (``security/authorizer.py``, Kafka's StandardAuthorizer semantics)
reads them from the image. Without ``authorizer.class.name`` every one of these APIs answers
SECURITY_DISABLED, as Kafka does. CreateAcls stores the valid bindings of a request in one
batch and answers each creation with its own error; DeleteAcls answers each filter with the
bindings it removed. DescribeAcls needs DESCRIBE on the cluster, CreateAcls and DeleteAcls
ALTER (CLUSTER_AUTHORIZATION_FAILED), as Kafka's AclApis.
"""

from __future__ import annotations

import uuid
from typing import Any

from tomyum.broker.context import CLUSTER, RequestContext
from tomyum.broker.dispatch import handles
from tomyum.errors import ErrorCode
from tomyum.metadata.records import AccessControlEntryRecord
from tomyum.security.acls import AclOperation, ResourceType
from tomyum.security.authorizer import AclBinding, AclBindingFilter, binding_of, check_binding

DISABLED = "No Authorizer is configured on the broker (authorizer.class.name)"


def _filter(f: Any) -> AclBindingFilter:
    return AclBindingFilter(resource_type=f.resource_type_filter, resource_name=f.resource_name_filter,
                            pattern_type=f.pattern_type_filter, principal=f.principal_filter, host=f.host_filter,
                            operation=f.operation, permission_type=f.permission_type)


def _enabled(ctx: RequestContext) -> bool:
    return bool(ctx.broker.config["authorizer.class.name"])


@handles(29, versions=range(1, 4))
async def describe_acls(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not _enabled(ctx):
        return {"throttle_time": 0, "error_code": ErrorCode.security_disabled, "error_message": DISABLED,
                "resources": ()}
    if not ctx.authorized(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "error_message": None,
                "resources": ()}
    wanted = _filter(request)
    by_resource: dict[tuple[int, str, int], list[dict[str, Any]]] = {}
    for record in ctx.broker.metadata.image.acls.values():
        b = binding_of(record)
        if wanted.matches(b):
            by_resource.setdefault((b.resource_type, b.resource_name, b.pattern_type), []).append(
                {"principal": b.principal, "host": b.host, "operation": b.operation,
                 "permission_type": b.permission_type})
    resources = [{"resource_type": t, "resource_name": n, "pattern_type": p, "acls": acls}
                 for (t, n, p), acls in sorted(by_resource.items())]
    return {"throttle_time": 0, "error_code": 0, "error_message": None, "resources": resources}


@handles(30, versions=range(1, 4))
async def create_acls(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not _enabled(ctx):
        return {"throttle_time": 0, "results": [{"error_code": ErrorCode.security_disabled, "error_message": DISABLED}
                                                for _ in request.creations]}
    if not ctx.authorized(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER):
        return {"throttle_time": 0, "results": [{"error_code": ErrorCode.cluster_authorization_failed,
                                                 "error_message": None} for _ in request.creations]}
    results: list[dict[str, Any]] = []
    records: list[AccessControlEntryRecord] = []
    for c in request.creations:
        b = AclBinding(resource_type=c.resource_type, resource_name=c.resource_name,
                       pattern_type=c.resource_pattern_type, principal=c.principal, host=c.host,
                       operation=c.operation, permission_type=c.permission_type)
        problem = check_binding(b)
        if problem is not None:
            results.append({"error_code": ErrorCode.invalid_request, "error_message": problem})
            continue
        results.append({"error_code": 0, "error_message": None})
        records.append(AccessControlEntryRecord(id=uuid.uuid4(), resource_type=b.resource_type,
                                                resource_name=b.resource_name, pattern_type=b.pattern_type,
                                                principal=b.principal, host=b.host, operation=b.operation,
                                                permission_type=b.permission_type))
    existing = {binding_of(r) for r in ctx.broker.metadata.image.acls.values()}
    await ctx.broker.metadata.add_acls([r for r in records if binding_of(r) not in existing])
    return {"throttle_time": 0, "results": results}


@handles(31, versions=range(1, 4))
async def delete_acls(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not _enabled(ctx):
        return {"throttle_time": 0, "filter_results": [
            {"error_code": ErrorCode.security_disabled, "error_message": DISABLED, "matching_acls": ()}
            for _ in request.filters]}
    if not ctx.authorized(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER):
        return {"throttle_time": 0, "filter_results": [
            {"error_code": ErrorCode.cluster_authorization_failed, "error_message": None, "matching_acls": ()}
            for _ in request.filters]}
    acls = ctx.broker.metadata.image.acls
    results, doomed = [], []
    for f in request.filters:
        wanted = _filter(f)
        matched = [r for r in acls.values() if wanted.matches(binding_of(r))]
        doomed += [r.id for r in matched]
        results.append({"error_code": 0, "error_message": None, "matching_acls": [
            {"error_code": 0, "error_message": None, "resource_type": r.resource_type,
             "resource_name": r.resource_name, "pattern_type": r.pattern_type, "principal": r.principal,
             "host": r.host, "operation": r.operation, "permission_type": r.permission_type} for r in matched]})
    await ctx.broker.metadata.remove_acls(list(dict.fromkeys(doomed)))
    return {"throttle_time": 0, "filter_results": results}
