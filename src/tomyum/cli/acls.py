"""``tomyum acls add | list | remove``: ACLs in ``kafka-acls.sh``'s words (CreateAcls,
DescribeAcls, DeleteAcls).

``--allow-principal User:alice --operation Read --topic orders`` makes one binding per
principal, operation and resource named; ``--resource-pattern-type prefixed`` makes the
resource names prefixes. ``list`` and ``remove`` take the same options as a filter: what is not
named matches anything (``remove`` wants at least a resource or a principal, so that it is never
"remove every ACL" by accident).
"""

from __future__ import annotations

import enum
import itertools
import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tomyum.cli.common import DEFAULT_BOOTSTRAP, DEFAULT_TIMEOUT, Admin, Bootstrap, CliError, CommandConfig, Timeout
from tomyum.cli.common import print_table, say

if TYPE_CHECKING:
    from confluent_kafka.admin import AclBinding, AclBindingFilter

app = typer.Typer(no_args_is_help=True, help="Add, list and remove ACLs (as kafka-acls.sh does).")

CLUSTER = "kafka-cluster"
OPERATIONS = ("All", "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction", "DescribeConfigs",
              "AlterConfigs", "IdempotentWrite")


class PatternType(str, enum.Enum):
    literal = "literal"
    prefixed = "prefixed"
    any = "any"
    match = "match"


Principals = Annotated[list[str], typer.Option("--allow-principal", metavar="User:NAME",
                                               help="a principal the ACL allows (repeatable)")]
DenyPrincipals = Annotated[list[str], typer.Option("--deny-principal", metavar="User:NAME",
                                                   help="a principal the ACL denies (repeatable)")]
Operations = Annotated[list[str], typer.Option("--operation", metavar="OPERATION",
                                               help=f"one of {', '.join(OPERATIONS)} (repeatable)")]
Topics = Annotated[list[str], typer.Option("--topic", metavar="TOPIC", help="a topic (repeatable)")]
Groups = Annotated[list[str], typer.Option("--group", metavar="GROUP", help="a consumer group (repeatable)")]
TransactionalIds = Annotated[list[str], typer.Option("--transactional-id", metavar="ID",
                                                     help="a transactional id (repeatable)")]
Cluster = Annotated[bool, typer.Option("--cluster", help="the cluster itself (CreateTopics, ClusterAction, ...)")]
Host = Annotated[str, typer.Option("--host", metavar="HOST", help="the client host the ACL is for")]


def operation(name: str) -> Any:
    from confluent_kafka.admin import AclOperation

    for known in OPERATIONS:
        if name.replace("_", "").replace("-", "").lower() == known.lower():
            return AclOperation[re.sub(r"(?<!^)(?=[A-Z])", "_", known).upper()]
    raise CliError(f"--operation: {name!r} is not one of {', '.join(OPERATIONS)}", 2)


def resources(topics: list[str], groups: list[str], transactional_ids: list[str], cluster: bool) -> list[tuple[Any, str]]:
    from confluent_kafka.admin import ResourceType

    return ([(ResourceType.TOPIC, t) for t in topics] + [(ResourceType.GROUP, g) for g in groups]
            + [(ResourceType.TRANSACTIONAL_ID, t) for t in transactional_ids]
            + ([(ResourceType.BROKER, CLUSTER)] if cluster else []))


def principal(name: str) -> str:
    kind, sep, who = name.partition(":")
    if not sep or not kind or not who:
        raise CliError(f"{name!r} is not a principal: write User:NAME (or User:* for everyone)", 2)
    return name


def _label(binding: Any) -> tuple[str, ...]:
    return (binding.principal, binding.permission_type.name, _operation_name(binding.operation), binding.host,
            "cluster" if binding.restype.name == "BROKER" else binding.restype.name.lower().replace("_", "-"),
            binding.name, binding.resource_pattern_type.name.lower())


def _operation_name(op: Any) -> str:
    return "".join(part.capitalize() for part in op.name.split("_"))


HEADERS = ["PRINCIPAL", "PERMISSION", "OPERATION", "HOST", "RESOURCE", "NAME", "PATTERN"]


@app.command("add")
def add(
    allow: Principals = [],  # noqa: B006 (typer's way of a repeatable option)
    deny: DenyPrincipals = [],  # noqa: B006
    operations: Operations = [],  # noqa: B006
    topics: Topics = [],  # noqa: B006
    groups: Groups = [],  # noqa: B006
    transactional_ids: TransactionalIds = [],  # noqa: B006
    cluster: Cluster = False,
    pattern: Annotated[PatternType, typer.Option("--resource-pattern-type", help="literal or prefixed")] = PatternType.literal,
    host: Host = "*",
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Allow (or deny) principals operations on topics, groups, transactional ids or the cluster."""
    from confluent_kafka.admin import AclBinding, AclPermissionType, ResourcePatternType

    if pattern not in (PatternType.literal, PatternType.prefixed):
        raise CliError("--resource-pattern-type: an ACL is literal or prefixed", 2)
    who = [(principal(p), AclPermissionType.ALLOW) for p in allow] + [(principal(p), AclPermissionType.DENY) for p in deny]
    if not who:
        raise CliError("name who: --allow-principal User:NAME or --deny-principal User:NAME", 2)
    if not operations:
        raise CliError(f"name what: --operation OPERATION ({', '.join(OPERATIONS)})", 2)
    ops = [operation(o) for o in operations]
    where = resources(topics, groups, transactional_ids, cluster)
    if not where:
        raise CliError("name a resource: --topic, --group, --transactional-id or --cluster", 2)
    bindings = [AclBinding(restype, name, ResourcePatternType[pattern.name.upper()], p, host, op, permission)
                for (p, permission), op, (restype, name) in itertools.product(who, ops, where)]
    admin = Admin(bootstrap, timeout, command_config)
    admin.metadata()
    for binding, future in admin.client.create_acls(bindings, request_timeout=timeout).items():
        admin.wait(future, f"cannot add the ACL for {binding.principal} on {binding.name!r}")
    say(f"added {len(bindings)} ACL{'s' if len(bindings) != 1 else ''}:")
    print_table(HEADERS, sorted(_label(b) for b in bindings))


def binding_filter(allow: list[str], operations: list[str], where: list[tuple[Any, str]],
                   pattern: PatternType | None, host: str | None) -> list[AclBindingFilter]:
    from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    patterns = ResourcePatternType[(pattern.name if pattern else ("literal" if where else "any")).upper()]
    return [AclBindingFilter(restype, name, patterns, p, host, op, AclPermissionType.ANY)
            for p in ([principal(a) for a in allow] or [None])
            for op in ([operation(o) for o in operations] or [AclOperation.ANY])
            for restype, name in (where or [(ResourceType.ANY, None)])]


@app.command("list")
def list_acls(
    principals: Annotated[list[str], typer.Option("--principal", metavar="User:NAME",
                                                  help="only this principal's ACLs (repeatable)")] = [],  # noqa: B006
    topics: Topics = [],  # noqa: B006
    groups: Groups = [],  # noqa: B006
    transactional_ids: TransactionalIds = [],  # noqa: B006
    cluster: Cluster = False,
    pattern: Annotated[PatternType | None, typer.Option("--resource-pattern-type", show_default=False,
                                                        help="literal, prefixed, any, or match")] = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """List ACLs: all of them, or those of the resources and principals named."""
    admin = Admin(bootstrap, timeout, command_config)
    admin.metadata()
    found: set[tuple[str, ...]] = set()
    for f in binding_filter(principals, [], resources(topics, groups, transactional_ids, cluster), pattern, None):
        found.update(_label(b) for b in admin.wait(admin.client.describe_acls(f, request_timeout=timeout),
                                                    "cannot list ACLs"))
    print_table(HEADERS, sorted(found), empty="no ACLs")


@app.command("remove")
def remove(
    allow: Principals = [],  # noqa: B006
    operations: Operations = [],  # noqa: B006
    topics: Topics = [],  # noqa: B006
    groups: Groups = [],  # noqa: B006
    transactional_ids: TransactionalIds = [],  # noqa: B006
    cluster: Cluster = False,
    pattern: Annotated[PatternType | None, typer.Option("--resource-pattern-type", show_default=False,
                                                        help="literal (default with a resource), prefixed, any")] = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """Remove the ACLs matching the principals, operations and resources named."""
    where = resources(topics, groups, transactional_ids, cluster)
    if not where and not allow:
        raise CliError("name what to remove: a resource (--topic, --group, --transactional-id, --cluster) "
                       "or --allow-principal User:NAME", 2)
    admin = Admin(bootstrap, timeout, command_config)
    admin.metadata()
    filters = binding_filter(allow, operations, where, pattern, None)
    removed: list[AclBinding] = []
    for f, future in admin.client.delete_acls(filters, request_timeout=timeout).items():
        removed.extend(admin.wait(future, "cannot remove ACLs"))
    say(f"removed {len(removed)} ACL{'s' if len(removed) != 1 else ''}" + (":" if removed else ""))
    if removed:
        print_table(HEADERS, sorted({_label(b) for b in removed}))
