"""Kafka's StandardAuthorizer semantics, pure: who may perform which operation on which resource.

Rules (Kafka's, KIP-290 patterns included):

* a binding matches a resource of its type if its pattern is LITERAL and names it exactly or is
  the wildcard ``*``, or is PREFIXED and the name starts with it;
* it matches a principal if it names it or is ``User:*``, a host if it names it or is ``*``;
* a DENY that matches (for the operation or ALL) wins over every ALLOW;
* an ALLOW for the operation or ALL allows it; an ALLOW for READ, WRITE, DELETE or ALTER also
  allows DESCRIBE, and one for ALTER_CONFIGS also allows DESCRIBE_CONFIGS (implied operations);
* ``super.users`` are allowed everything; a resource that no binding matches at all is allowed
  to everyone only with ``allow.everyone.if.no.acl.found``.

Bindings come from the metadata image (AccessControlEntryRecords); this module only reads them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tomyum.metadata.records import AccessControlEntryRecord
from tomyum.security.acls import AclOperation, ResourceType


class PatternType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclPermissionType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


WILDCARD_RESOURCE = "*"
WILDCARD_PRINCIPAL = "User:*"
WILDCARD_HOST = "*"

#: operations an ALLOW of the key also allows
IMPLIED: dict[AclOperation, frozenset[AclOperation]] = {
    AclOperation.READ: frozenset({AclOperation.DESCRIBE}),
    AclOperation.WRITE: frozenset({AclOperation.DESCRIBE}),
    AclOperation.DELETE: frozenset({AclOperation.DESCRIBE}),
    AclOperation.ALTER: frozenset({AclOperation.DESCRIBE}),
    AclOperation.ALTER_CONFIGS: frozenset({AclOperation.DESCRIBE_CONFIGS}),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AclBinding:
    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission_type: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AclBindingFilter:
    """DescribeAcls/DeleteAcls' filter: ANY (or None) matches everything; pattern MATCH matches
    every binding that would apply to ``resource_name`` (literal, wildcard or prefix)."""

    resource_type: int = ResourceType.ANY
    resource_name: str | None = None
    pattern_type: int = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: int = AclOperation.ANY
    permission_type: int = AclPermissionType.ANY

    def matches(self, b: AclBinding) -> bool:
        if self.resource_type != ResourceType.ANY and b.resource_type != self.resource_type:
            return False
        if self.pattern_type == PatternType.MATCH:
            if self.resource_name is not None and not _resource_matches(b, self.resource_name):
                return False
        else:
            if self.pattern_type != PatternType.ANY and b.pattern_type != self.pattern_type:
                return False
            if self.resource_name is not None and b.resource_name != self.resource_name:
                return False
        return ((self.principal is None or b.principal == self.principal)
                and (self.host is None or b.host == self.host)
                and (self.operation == AclOperation.ANY or b.operation == self.operation)
                and (self.permission_type == AclPermissionType.ANY or b.permission_type == self.permission_type))


def binding_of(record: AccessControlEntryRecord) -> AclBinding:
    """The binding an AccessControlEntryRecord of the metadata log stores."""
    return AclBinding(resource_type=record.resource_type, resource_name=record.resource_name,
                      pattern_type=record.pattern_type, principal=record.principal, host=record.host,
                      operation=record.operation, permission_type=record.permission_type)


def _resource_matches(b: AclBinding, name: str) -> bool:
    if b.pattern_type == PatternType.LITERAL:
        return b.resource_name == name or b.resource_name == WILDCARD_RESOURCE
    if b.pattern_type == PatternType.PREFIXED:
        return name.startswith(b.resource_name)
    return False


def check_binding(b: AclBinding) -> str | None:
    """Why Kafka refuses to create this binding (None: it may be created)."""
    if b.resource_type in (ResourceType.ANY, ResourceType.UNKNOWN):
        return "the resource type must be a concrete one"
    if b.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        return "the pattern type must be LITERAL or PREFIXED"
    if b.operation in (AclOperation.ANY, AclOperation.UNKNOWN):
        return "the operation must be a concrete one"
    if b.permission_type not in (AclPermissionType.ALLOW, AclPermissionType.DENY):
        return "the permission type must be ALLOW or DENY"
    kind, sep, name = b.principal.partition(":")
    if not sep or not kind or not name:
        return f"invalid principal {b.principal!r}: expected Type:name (User:alice)"
    if not b.resource_name:
        return "the resource name must not be empty"
    if b.resource_type == ResourceType.CLUSTER and b.resource_name != "kafka-cluster":
        return "the cluster resource is named kafka-cluster"
    return None


class StandardAuthorizer:
    def __init__(self, bindings: Callable[[], Iterable[AclBinding]], *, super_users: Iterable[str] = (),
                 allow_everyone_if_no_acl_found: bool = False) -> None:
        self._bindings = bindings
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl = allow_everyone_if_no_acl_found

    def authorize(self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType,
                  resource_name: str) -> bool:
        if principal in self.super_users:
            return True
        found = False
        allowed = False
        for b in self._bindings():
            if b.resource_type != resource_type or not _resource_matches(b, resource_name):
                continue
            found = True
            if b.principal not in (principal, WILDCARD_PRINCIPAL) or b.host not in (host, WILDCARD_HOST):
                continue
            if b.permission_type == AclPermissionType.DENY:
                if b.operation in (operation, AclOperation.ALL):
                    return False
            elif b.permission_type == AclPermissionType.ALLOW and not allowed:
                allowed = b.operation in (operation, AclOperation.ALL) or \
                    operation in IMPLIED.get(AclOperation(b.operation), frozenset())
        if not found:
            return self.allow_if_no_acl
        return allowed

    def authorize_by_resource_type(self, principal: str, host: str, operation: AclOperation,
                                   resource_type: ResourceType) -> bool:
        """Kafka's ``Authorizer.authorizeByResourceType``: is some resource of the type allowed?
        True if an ALLOW for the principal (or ``User:*``) and host names ``operation`` or ALL on
        a literal name or prefix that no matching DENY covers (a literal ``*`` DENY covers all)."""
        if principal in self.super_users:
            return True
        denied_literals: set[str] = set()
        denied_prefixes: set[str] = set()
        allowed: list[AclBinding] = []
        found = False
        for b in self._bindings():
            if b.resource_type != resource_type:
                continue
            found = True
            if b.principal not in (principal, WILDCARD_PRINCIPAL) or b.host not in (host, WILDCARD_HOST) \
                    or b.operation not in (operation, AclOperation.ALL):
                continue
            if b.permission_type == AclPermissionType.DENY:
                (denied_literals if b.pattern_type == PatternType.LITERAL else denied_prefixes).add(b.resource_name)
            elif b.permission_type == AclPermissionType.ALLOW:
                allowed.append(b)
        if not found:
            return self.allow_if_no_acl
        if WILDCARD_RESOURCE in denied_literals:
            return False
        for b in allowed:
            if any(b.resource_name.startswith(p) for p in denied_prefixes):
                continue
            if b.pattern_type == PatternType.PREFIXED or b.resource_name not in denied_literals:
                return True
        return False

    def authorized_operations(self, principal: str, host: str, resource_type: ResourceType,
                              resource_name: str, supported: Iterable[AclOperation]) -> list[AclOperation]:
        """KIP-430: the operations of ``supported`` this principal may perform on the resource."""
        return [op for op in supported if self.authorize(principal, host, op, resource_type, resource_name)]
