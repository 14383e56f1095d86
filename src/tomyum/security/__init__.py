"""Security: who may do what. Today the operations a principal is authorized for (KIP-430)
as Kafka reports them without an authorizer; ACLs, SASL and TLS arrive here as they land."""

from tomyum.security.acls import (
    AclOperation,
    ResourceType,
    authorized_operations,
    operations_bitfield,
)

__all__ = ["AclOperation", "ResourceType", "authorized_operations", "operations_bitfield"]
