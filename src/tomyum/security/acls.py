"""Kafka's ACL vocabulary: resource types, operations, and what each resource type supports.

Codes are Kafka's (``AclOperation``, ``ResourceType`` in the Java clients), so they go on the
wire unchanged. :func:`authorized_operations` answers KIP-430's question — which operations
may the requesting principal perform on this resource — the way Kafka does without an
authorizer configured: every operation the resource type supports.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

#: what a response carries when the client did not ask for authorized operations
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)


class ResourceType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class AclOperation(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


_O = AclOperation
#: the operations each resource type supports (Kafka's AclEntry.supportedOperations)
SUPPORTED_OPERATIONS: dict[ResourceType, frozenset[AclOperation]] = {
    ResourceType.TOPIC: frozenset({_O.READ, _O.WRITE, _O.CREATE, _O.DELETE, _O.ALTER, _O.DESCRIBE,
                                   _O.DESCRIBE_CONFIGS, _O.ALTER_CONFIGS}),
    ResourceType.GROUP: frozenset({_O.READ, _O.DESCRIBE, _O.DELETE, _O.DESCRIBE_CONFIGS, _O.ALTER_CONFIGS}),
    ResourceType.CLUSTER: frozenset({_O.CREATE, _O.CLUSTER_ACTION, _O.DESCRIBE_CONFIGS, _O.ALTER_CONFIGS,
                                     _O.IDEMPOTENT_WRITE, _O.ALTER, _O.DESCRIBE}),
    ResourceType.TRANSACTIONAL_ID: frozenset({_O.DESCRIBE, _O.WRITE}),
    ResourceType.DELEGATION_TOKEN: frozenset({_O.DESCRIBE}),
    ResourceType.USER: frozenset({_O.CREATE_TOKENS, _O.DESCRIBE_TOKENS}),
}


def operations_bitfield(operations: Iterable[AclOperation]) -> int:
    """KIP-430's int32: bit ``op`` set for each operation."""
    bits = 0
    for op in operations:
        bits |= 1 << int(op)
    return bits


def authorized_operations(resource_type: ResourceType, requested: bool) -> int:
    """The ``*_authorized_operations`` field of a response: the operations the principal may
    perform on a resource of this type (without an authorizer: all it supports), or Kafka's
    "not asked for" value if the request did not ask."""
    if not requested:
        return AUTHORIZED_OPERATIONS_OMITTED
    return operations_bitfield(SUPPORTED_OPERATIONS[resource_type])
