"""What a handler knows about the request it serves."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from tomyum.errors import ErrorCode, KafkaError
from tomyum.security.acls import AclOperation, ResourceType

#: the one cluster resource's name (Kafka's CLUSTER_NAME)
CLUSTER = "kafka-cluster"

if TYPE_CHECKING:
    from tomyum.broker.listeners import Listener
    from tomyum.broker.services import BrokerServices, ClientConnection


class RequestContext(NamedTuple):  # a NamedTuple: made per request, it costs a third of a frozen dataclass
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

    def authorize(self, operation: AclOperation, resource_type: ResourceType, name: str, code: ErrorCode) -> None:
        """:meth:`authorized`, or raise a KafkaError with ``code`` (a ``*_AUTHORIZATION_FAILED``)."""
        if not self.authorized(operation, resource_type, name):
            raise KafkaError(f"{self.principal} may not {operation.name} {resource_type.name} {name}", code)

    def authorize_topic(self, operation: AclOperation, topic: str) -> None:
        self.authorize(operation, ResourceType.TOPIC, topic, ErrorCode.topic_authorization_failed)

    def authorize_group(self, operation: AclOperation, group_id: str) -> None:
        self.authorize(operation, ResourceType.GROUP, group_id, ErrorCode.group_authorization_failed)

    def authorize_cluster(self, operation: AclOperation) -> None:
        self.authorize(operation, ResourceType.CLUSTER, CLUSTER, ErrorCode.cluster_authorization_failed)

    def authorize_transactional_id(self, operation: AclOperation, transactional_id: str) -> None:
        self.authorize(operation, ResourceType.TRANSACTIONAL_ID, transactional_id,
                       ErrorCode.transactional_id_authorization_failed)

    def authorized_names(self, operation: AclOperation, resource_type: ResourceType,
                         names: Iterable[str | None]) -> set[str]:
        """Those of ``names`` this principal may perform ``operation`` on (each asked once), as
        Kafka's ``filterByAuthorized``."""
        return {n for n in set(names) if n is not None and self.authorized(operation, resource_type, n)}

    def authorized_by_resource_type(self, operation: AclOperation, resource_type: ResourceType) -> bool:
        """May this principal perform ``operation`` on some resource of the type? (Kafka's
        ``authorizeByResourceType``: an idempotent producer with WRITE on any topic.)"""
        authorizer = self.broker.authorizer
        return authorizer is None or authorizer.authorize_by_resource_type(self.principal, self.client_host,
                                                                           operation, resource_type)

    def operations(self, resource_type: ResourceType, name: str, requested: bool) -> int:
        """KIP-430's authorized operations of this principal on the resource (when ``requested``)."""
        from tomyum.security.acls import SUPPORTED_OPERATIONS, authorized_operations, operations_bitfield

        authorizer = self.broker.authorizer
        if authorizer is None or not requested:
            return authorized_operations(resource_type, requested)
        return operations_bitfield(authorizer.authorized_operations(
            self.principal, self.client_host, resource_type, name, SUPPORTED_OPERATIONS[resource_type]))
