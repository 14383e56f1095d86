"""Kafka's listener settings: ``listeners``, ``advertised.listeners`` and
``listener.security.protocol.map``, with several named listeners (e.g. INTERNAL for other
containers, EXTERNAL for the host), as in a typical Kafka deployment."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from dataclasses import field

from tomyum.config import BrokerConfig
from tomyum.errors import ConfigError
from tomyum.security.listener import ListenerSecurity, listener_security


@dataclass(slots=True)
class Listener:
    name: str
    security_protocol: str
    host: str  # bind address ("" = every interface)
    port: int
    advertised_host: str
    advertised_port: int
    #: TLS and SASL as this listener's settings demand (PLAINTEXT: neither)
    security: ListenerSecurity = field(default_factory=lambda: ListenerSecurity("PLAINTEXT"))

    def url(self) -> str:
        return f"{self.name}://{self.advertised_host}:{self.advertised_port}"


def _split(key: str, url: str) -> tuple[str, str, int]:
    name, sep, rest = url.partition("://")
    if not sep or not name:
        raise ConfigError(key, f"{url!r} is not NAME://HOST:PORT")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(key, f"{url!r} has no valid port")
    return name.upper(), host.strip("[]"), int(port)


def parse_listeners(config: BrokerConfig) -> list[Listener]:
    protocol_map: dict[str, str] = {}
    for entry in config["listener.security.protocol.map"]:
        name, sep, proto = entry.partition(":")
        if not sep:
            raise ConfigError("listener.security.protocol.map", f"{entry!r} is not NAME:PROTOCOL")
        protocol_map[name.upper()] = proto.upper()
    advertised = {}
    for url in config["advertised.listeners"]:
        name, host, port = _split("advertised.listeners", url)
        advertised[name] = (host, port)
    listeners: list[Listener] = []
    for url in config["listeners"]:
        name, host, port = _split("listeners", url)
        if any(x.name == name for x in listeners):
            raise ConfigError("listeners", f"listener name {name} is used twice")
        proto = protocol_map.get(name, name)
        security = listener_security(config, name, proto)
        adv_host, adv_port = advertised.get(name, (host, port))
        if adv_host in ("", "0.0.0.0", "::"):
            adv_host = socket.gethostname()
        listeners.append(Listener(name, proto, host, port, adv_host, adv_port, security))
    unknown = set(advertised) - {x.name for x in listeners}
    if unknown:
        raise ConfigError("advertised.listeners", f"names listeners not in listeners: {', '.join(sorted(unknown))}")
    if not listeners:
        raise ConfigError("listeners", "at least one listener is needed")
    return listeners
