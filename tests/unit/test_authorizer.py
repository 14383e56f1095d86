"""StandardAuthorizer semantics: literal, wildcard and prefixed patterns, DENY over ALLOW,
implied operations, hosts, super users and allow.everyone.if.no.acl.found."""

from __future__ import annotations

import pytest

from tomyum.security.acls import AclOperation as Op
from tomyum.security.acls import ResourceType as Res
from tomyum.security.authorizer import (
    AclBinding,
    AclBindingFilter,
    AclPermissionType,
    PatternType,
    StandardAuthorizer,
    check_binding,
)

ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
LIT, PRE = PatternType.LITERAL, PatternType.PREFIXED


def acl(name: str, op: Op, perm: AclPermissionType = ALLOW, *, res: Res = Res.TOPIC, pattern: PatternType = LIT,
        principal: str = "User:alice", host: str = "*") -> AclBinding:
    return AclBinding(resource_type=res, resource_name=name, pattern_type=pattern, principal=principal, host=host,
                      operation=op, permission_type=perm)


def authorizer(*bindings: AclBinding, **kwargs: object) -> StandardAuthorizer:
    return StandardAuthorizer(lambda: bindings, **kwargs)  # type: ignore[arg-type]


def test_literal_wildcard_and_prefixed_patterns() -> None:
    a = authorizer(acl("orders", Op.READ), acl("*", Op.WRITE), acl("logs-", Op.ALTER, pattern=PRE))
    assert a.authorize("User:alice", "1.2.3.4", Op.READ, Res.TOPIC, "orders")
    assert not a.authorize("User:alice", "1.2.3.4", Op.READ, Res.TOPIC, "orders2")
    assert a.authorize("User:alice", "1.2.3.4", Op.WRITE, Res.TOPIC, "anything")
    assert a.authorize("User:alice", "1.2.3.4", Op.ALTER, Res.TOPIC, "logs-app")
    assert not a.authorize("User:alice", "1.2.3.4", Op.ALTER, Res.TOPIC, "log")
    assert not a.authorize("User:bob", "1.2.3.4", Op.READ, Res.TOPIC, "orders")
    assert not a.authorize("User:alice", "1.2.3.4", Op.READ, Res.GROUP, "orders")


def test_deny_wins_over_allow_and_all() -> None:
    a = authorizer(acl("*", Op.ALL), acl("secret", Op.READ, DENY))
    assert a.authorize("User:alice", "h", Op.READ, Res.TOPIC, "public")
    assert not a.authorize("User:alice", "h", Op.READ, Res.TOPIC, "secret")
    assert a.authorize("User:alice", "h", Op.WRITE, Res.TOPIC, "secret")
    b = authorizer(acl("t", Op.READ), acl("t", Op.ALL, DENY, principal="User:*"))
    assert not b.authorize("User:alice", "h", Op.READ, Res.TOPIC, "t")


@pytest.mark.parametrize("granted, implied", [(Op.READ, Op.DESCRIBE), (Op.WRITE, Op.DESCRIBE), (Op.DELETE, Op.DESCRIBE),
                                              (Op.ALTER, Op.DESCRIBE), (Op.ALTER_CONFIGS, Op.DESCRIBE_CONFIGS)])
def test_implied_operations(granted: Op, implied: Op) -> None:
    a = authorizer(acl("t", granted))
    assert a.authorize("User:alice", "h", implied, Res.TOPIC, "t")
    # a DENY implies nothing
    d = authorizer(acl("t", Op.ALL), acl("t", granted, DENY))
    assert d.authorize("User:alice", "h", implied, Res.TOPIC, "t")


def test_hosts_super_users_and_no_acl_found() -> None:
    a = authorizer(acl("t", Op.READ, host="10.0.0.1"), super_users=["User:admin"])
    assert a.authorize("User:alice", "10.0.0.1", Op.READ, Res.TOPIC, "t")
    assert not a.authorize("User:alice", "10.0.0.2", Op.READ, Res.TOPIC, "t")
    assert a.authorize("User:admin", "any", Op.DELETE, Res.CLUSTER, "kafka-cluster")
    assert not a.authorize("User:alice", "h", Op.READ, Res.TOPIC, "unguarded")
    open_ = authorizer(acl("t", Op.READ), allow_everyone_if_no_acl_found=True)
    assert open_.authorize("User:bob", "h", Op.WRITE, Res.TOPIC, "unguarded")
    assert not open_.authorize("User:bob", "h", Op.WRITE, Res.TOPIC, "t")  # t has ACLs, none for bob


def test_filters_match_as_describe_and_delete_acls_do() -> None:
    bindings = [acl("orders", Op.READ), acl("ord", Op.WRITE, pattern=PRE), acl("*", Op.DESCRIBE),
                acl("g", Op.READ, res=Res.GROUP)]
    everything = AclBindingFilter()
    assert [b for b in bindings if everything.matches(b)] == bindings
    match = AclBindingFilter(resource_type=Res.TOPIC, resource_name="orders", pattern_type=PatternType.MATCH)
    assert [b for b in bindings if match.matches(b)] == bindings[:3]
    literal = AclBindingFilter(resource_type=Res.TOPIC, resource_name="orders", pattern_type=LIT)
    assert [b for b in bindings if literal.matches(b)] == bindings[:1]
    by_op = AclBindingFilter(operation=Op.READ)
    assert [b for b in bindings if by_op.matches(b)] == [bindings[0], bindings[3]]


def test_bindings_kafka_refuses() -> None:
    assert check_binding(acl("t", Op.READ)) is None
    assert check_binding(acl("t", Op.ANY)) is not None
    assert check_binding(acl("t", Op.READ, pattern=PatternType.MATCH)) is not None
    assert check_binding(acl("t", Op.READ, principal="alice")) is not None
    assert check_binding(acl("other", Op.ALTER, res=Res.CLUSTER)) is not None
