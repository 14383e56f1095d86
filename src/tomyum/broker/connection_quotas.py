"""Connection limits, as Kafka's ConnectionQuotas (KIP-402, KIP-612): whether a connection just
accepted may stay.

Checked in Kafka's order: ``max.connections`` (all listeners), ``max.connections.per.ip`` (with
``max.connections.per.ip.overrides``, ``host:count,host:count``), ``max.connection.creation.rate``
(per listener), then the ``connection_creation_rate`` quota of the ``ip`` entity (the address's
own, else the default ip entity's; AlterClientQuotas). Rates are measured as client quotas are
(broker/client_quotas.py: ``quota.window.num`` samples of ``quota.window.size.seconds``).

Where tomyum differs: over any limit the connection is closed at once (Kafka does so for the
per-IP count and rate, but keeps a connection over ``max.connections`` or the listener rate
waiting in the accept queue); the broker goes on serving the connections it has. A refused
connection is not counted in any rate (Kafka unrecords it too). Config values are read at each
accept, so dynamic changes (AlterConfigs) apply to the next connection. No I/O here: the
Acceptor asks, and tells when a connection ends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from tomyum.broker.client_quotas import Entity, Rate
from tomyum.clock import Clock

CONNECTION_CREATION_RATE = "connection_creation_rate"
UNLIMITED = 2**31 - 1


def parse_overrides(text: str) -> dict[str, int]:
    """``max.connections.per.ip.overrides``: ``host:count`` pairs separated by commas (the count
    after the last colon, so that IPv6 addresses work)."""
    out: dict[str, int] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if item:
            host, _, count = item.rpartition(":")
            out[host.strip().strip("[]")] = int(count)
    return out


class ConnectionQuotas:
    """Counts connections per IP and overall and measures creation rates. Not thread-safe: the
    event loop's."""

    def __init__(self, config: Any, quotas: Callable[[], Mapping[Entity, Mapping[str, float]]], clock: Clock,
                 *, samples: int = 11, window_s: int = 1) -> None:
        self._config = config
        self._quotas = quotas
        self._clock = clock
        self.samples, self.window_ms = samples, window_s * 1000
        self.total = 0
        self.per_ip: Counter[str] = Counter()
        self._listener_rates: dict[str, Rate] = {}
        self._ip_rates: dict[str, Rate] = {}
        self._overrides: tuple[str, dict[str, int]] = ("", {})

    def _max_per_ip(self, ip: str) -> int:
        text = self._config["max.connections.per.ip.overrides"] or ""
        if text != self._overrides[0]:
            self._overrides = (text, parse_overrides(text))
        return int(self._overrides[1].get(ip, self._config["max.connections.per.ip"]))

    def _ip_quota(self, ip: str) -> float | None:
        quotas = self._quotas()
        if not quotas:
            return None
        for entity in ((("ip", ip),), (("ip", None),)):
            values = quotas.get(entity)
            if values is not None and CONNECTION_CREATION_RATE in values:
                return values[CONNECTION_CREATION_RATE]
        return None

    def _over_rate(self, rates: dict[str, Rate], key: str, bound: float, now_ms: int) -> bool:
        """Record one connection in ``rates[key]``; True (and unrecorded) if that is over ``bound``."""
        rate = rates.get(key)
        if rate is None:
            rate = rates[key] = Rate(self.samples, self.window_ms, now_ms)
        rate.record(1, now_ms)
        if rate.measure(now_ms) > bound:
            rate.record(-1, now_ms)
            return True
        return False

    def accept(self, listener: str, ip: str) -> str | None:
        """Count a new connection from ``ip`` on ``listener``; or, over a limit, count nothing and
        say which limit (the caller closes the connection)."""
        config = self._config
        if self.total >= config["max.connections"]:
            return f"max.connections ({config['max.connections']}) reached"
        limit = self._max_per_ip(ip)
        if self.per_ip[ip] >= limit:
            return f"max.connections.per.ip ({limit}) reached for {ip}"
        now_ms = int(self._clock.monotonic() * 1000)
        listener_rate = config["max.connection.creation.rate"]
        if listener_rate < UNLIMITED and self._over_rate(self._listener_rates, listener, listener_rate, now_ms):
            return f"max.connection.creation.rate ({listener_rate}/s) exceeded on listener {listener}"
        ip_rate = self._ip_quota(ip)
        if ip_rate is not None and self._over_rate(self._ip_rates, ip, ip_rate, now_ms):
            if listener_rate < UNLIMITED:
                self._listener_rates[listener].record(-1, now_ms)
            return f"connection_creation_rate quota ({ip_rate:g}/s) exceeded for {ip}"
        self.total += 1
        self.per_ip[ip] += 1
        return None

    def release(self, ip: str) -> None:
        """A connection counted by :meth:`accept` has ended."""
        self.total -= 1
        self.per_ip[ip] -= 1
        if self.per_ip[ip] <= 0:
            del self.per_ip[ip]
