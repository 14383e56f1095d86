"""What a handler knows about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tomyum.security.acls import AclOperation, ResourceType

if TYPE_CHECKING:
    from tomyum.broker.listeners import Listener
    from tomyum.broker.services import BrokerServices, ClientConnection


@dataclass(frozen=True, slots=True)
class RequestContext:
    broker: BrokerServices
    listener: Listener
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    client_address: str
    connection: ClientConnection

    @property
    def principal(self) -> str:
        return self.connection.principal

    @property
    def client_host(self) -> str:
        return self.client_address.rpartition(":")[0] or self.client_address

    def authorized(self, operation: AclOperation, resource_type: ResourceType, name: str) -> bool:
        """May this request's principal perform ``operation`` on the resource? (Always, without
        ``authorizer.class.name``.) Kafka's StandardAuthorizer semantics, see security/authorizer.py."""
        authorizer = self.broker.authorizer
        return authorizer is None or authorizer.authorize(self.principal, self.client_host, operation,
                                                           resource_type, name)

    def operations(self, resource_type: ResourceType, name: str, requested: bool) -> int:
        """KIP-430's authorized operations of this principal on the resource (when ``requested``)."""
        from tomyum.security.acls import SUPPORTED_OPERATIONS, authorized_operations, operations_bitfield

        authorizer = self.broker.authorizer
        if authorizer is None or not requested:
            return authorized_operations(resource_type, requested)
        return operations_bitfield(authorizer.authorized_operations(
            self.principal, self.client_host, resource_type, name, SUPPORTED_OPERATIONS[resource_type]))
