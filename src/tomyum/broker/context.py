"""What a handler knows about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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
