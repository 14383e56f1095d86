"""Client quotas on produce and fetch bandwidth, as Kafka's ClientQuotaManager (KIP-13, KIP-55,
KIP-219), and on request handling time, as its ClientRequestQuotaManager (KIP-124): which quota
applies to a request, the rate it is measured against, and how long the client is throttled
when over it.

Resolution (Kafka's DefaultQuotaCallback): of the quotas set with AlterClientQuotas (kept in the
metadata image), the most specific entity with the quota's key wins, in this order —
(user, client-id) > (user, default client-id) > user > (default user, client-id) >
(default user, default client-id) > default user > client-id > default client-id. The user is
the principal's name (``User:alice`` → ``alice``). Clients that resolve to the same entity share
one rate when the entity names no client id (a ``user`` quota is shared by all of the user's
clients) and have one each where it names them, as Kafka's metric tags do.

Rate (Kafka's ``Rate`` over a ``SampledStat``): ``quota.window.num`` samples of
``quota.window.size.seconds``; the observed rate is the samples' sum over the window size, and
the window is never taken shorter than ``quota.window.num - 1`` whole samples, so a new client
may send a first burst of up to about that many seconds of its quota.

Throttle time (Kafka's ``QuotaUtils.throttleTime``): when the observed rate exceeds the quota,
``(observed - quota) / quota * window_ms``, rounded: how long the excess takes to drain at the
quota. Nothing caps it for bandwidth quotas; a request quota's is capped at one
``quota.window.size.seconds`` (Kafka's ``boundedThrottleTime``).

Request quotas (``request_percentage``): each request records the time its handler took as a
percentage of one thread for a second (Kafka's ``nanosToPercentage``), so the rate is the share
of one thread the client keeps busy; ``request_percentage=50`` is half of one thread. Every
request counts except the SASL exchange (Kafka's network layer handles it before any quota). A
fetch records both its quotas as it answers (:meth:`QuotaManagers.throttle_fetch`), so that over
either it answers no records, as Kafka does; every other request's time is recorded by the
server once its handler returns.

Where tomyum differs: the value recorded for a produce is the bytes of its record batches, for a
fetch those of the records returned (Kafka counts whole request and response sizes; the
difference is the few bytes of headers). Time is the injected clock's monotonic clock.

The hot path without quotas is one truth test of the image's quota dict; with quotas, one dict
lookup per request resolves the client (the resolution is cached until the quotas change).
No I/O here: the connection mutes itself (``ClientConnection.throttle``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from tomyum.clock import Clock
from tomyum.protocol.fetch_response import FetchPartition

PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
REQUEST_PERCENTAGE = "request_percentage"
#: Kafka's ClientRequestQuotaManager.NanosToPercentagePerSecond
NANOS_TO_PERCENTAGE = 100.0 / 1e9

Entity = tuple[tuple[str, str | None], ...]
#: the rate a client records into: (user or "", client id or ""), Kafka's metric tags
SensorKey = tuple[str, str]

#: cached resolutions at most; past it the cache starts again (client ids are the client's to vary)
MAX_RESOLVED = 10_000
#: rates kept before the idle ones are dropped
MAX_SENSORS = 10_000


class QuotaImage(Protocol):
    """What quotas are read from: the metadata image."""

    quotas: dict[Entity, dict[str, float]]
    quotas_version: int


class Rate:
    """Kafka's ``Rate`` over a ``SampledStat``: ``samples`` windows of ``window_ms``, plus the one
    overlapping the start of the measured span. Times are milliseconds."""

    __slots__ = ("samples", "window_ms", "_start", "_last", "_value", "_current")

    def __init__(self, samples: int, window_ms: int, now_ms: int) -> None:
        self.samples, self.window_ms = samples, window_ms
        n = samples + 1
        self._start = [now_ms] * n
        self._last = [now_ms] * n
        self._value = [0.0] * n
        self._current = 0

    def record(self, value: float, now_ms: int) -> None:
        i = self._current
        if now_ms - self._start[i] >= self.window_ms:
            i = self._current = (i + 1) % (self.samples + 1)
            self._start[i], self._value[i] = now_ms, 0.0
        self._value[i] += value
        self._last[i] = now_ms

    def _purge(self, now_ms: int) -> None:
        expire_ms = self.samples * self.window_ms
        for i in range(self.samples + 1):
            if now_ms - self._last[i] >= expire_ms:
                self._start[i] = self._last[i] = now_ms
                self._value[i] = 0.0

    def window_size_ms(self, now_ms: int) -> int:
        """The span the rate is measured over: since the oldest live sample began, but never
        less than ``samples - 1`` whole windows (plus what has passed of the current one)."""
        self._purge(now_ms)
        elapsed = now_ms - min(self._start)
        full = elapsed // self.window_ms
        if full < self.samples - 1:
            elapsed += (self.samples - 1 - full) * self.window_ms
        return max(elapsed, 1)

    def measure(self, now_ms: int) -> float:
        """The rate, per second."""
        size_ms = self.window_size_ms(now_ms)
        return sum(self._value) / (size_ms / 1000)

    def last_event_ms(self) -> int:
        return max(self._last)


def throttle_time_ms(observed: float, quota: float, window_ms: int) -> int:
    """Kafka's QuotaUtils.throttleTime: how long the excess over ``quota`` takes to drain."""
    if observed <= quota:
        return 0
    return round((observed - quota) / quota * window_ms)


def user_name(principal: str) -> str:
    """The quota entity name of a principal (``User:alice`` → ``alice``)."""
    return principal.partition(":")[2] or principal


def candidates(user: str, client_id: str) -> tuple[Entity, ...]:
    """The entities that may hold a client's quota, most specific first (Kafka's order)."""
    c, u = ("client-id", client_id), ("user", user)
    dc, du = ("client-id", None), ("user", None)
    return ((c, u), (dc, u), (u,), (c, du), (dc, du), (du,), (c,), (dc,))


def resolve(quotas: Mapping[Entity, Mapping[str, float]], key: str, user: str,
            client_id: str) -> tuple[SensorKey, float] | None:
    """The quota ``key`` of this client and the rate it shares, or None if no entity sets it."""
    for entity in candidates(user, client_id):
        values = quotas.get(entity)
        if values is not None and key in values:
            types = {t for t, _ in entity}
            return (user if "user" in types else "", client_id if "client-id" in types else ""), values[key]
    return None


class ClientQuotaManager:
    """The rates and quotas of one quota key (``producer_byte_rate`` or ``consumer_byte_rate``).
    Not thread-safe: the event loop's."""

    def __init__(self, key: str, image: QuotaImageSource, clock: Clock, *, samples: int = 11,
                 window_s: int = 1, max_throttle_ms: int | None = None) -> None:
        self.key = key
        #: the longest throttle (None: unbounded, as for bandwidth quotas)
        self.max_throttle_ms = max_throttle_ms
        self._image = image
        self._clock = clock
        self.samples, self.window_ms = samples, window_s * 1000
        self._version = -1
        self._resolved: dict[tuple[str, str | None], tuple[SensorKey, float] | None] = {}
        self._rates: dict[SensorKey, Rate] = {}
        #: responses throttled since start, and their throttle time in ms (for /metrics)
        self.throttled = 0
        self.throttle_time_ms = 0

    def _now_ms(self) -> int:
        return int(self._clock.monotonic() * 1000)

    def quota_of(self, principal: str, client_id: str | None) -> tuple[SensorKey, float] | None:
        image = self._image()
        if not image.quotas:
            return None
        if image.quotas_version != self._version:
            self._resolved.clear()
            self._version = image.quotas_version
        k = (principal, client_id)
        try:
            return self._resolved[k]
        except KeyError:
            pass
        if len(self._resolved) >= MAX_RESOLVED:
            self._resolved.clear()
        found = self._resolved[k] = resolve(image.quotas, self.key, user_name(principal), client_id or "")
        return found

    def record(self, principal: str, client_id: str | None, value: float) -> int:
        """Record ``value`` bytes of this client; the throttle time in ms (0: within its quota)."""
        found = self.quota_of(principal, client_id)
        if found is None:
            return 0
        sensor, quota = found
        now_ms = self._now_ms()
        rate = self._rate(sensor, now_ms)
        rate.record(value, now_ms)
        observed = rate.measure(now_ms)
        if observed <= quota:
            return 0
        throttle_ms = throttle_time_ms(observed, quota, rate.window_size_ms(now_ms))
        return throttle_ms if self.max_throttle_ms is None else min(throttle_ms, self.max_throttle_ms)

    def throttle(self, principal: str, client_id: str | None, value: Callable[[], float],
                 mute: Callable[[int], None]) -> int:
        """Record ``value()`` (called only if a quota applies) and, over the quota, ``mute`` the
        connection for the throttle time; that time in ms (0: within the quota, or no quota)."""
        if self.quota_of(principal, client_id) is None:
            return 0
        throttle_ms = self.record(principal, client_id, value())
        if throttle_ms > 0:
            self.count_throttle(throttle_ms)
            mute(throttle_ms)
        return throttle_ms

    def count_throttle(self, throttle_ms: int) -> None:
        self.throttled += 1
        self.throttle_time_ms += throttle_ms

    def unrecord(self, principal: str, client_id: str | None, value: float) -> None:
        """Take back ``value`` (a throttled fetch answers no records, as Kafka's unrecordQuotaSensor)."""
        found = self.quota_of(principal, client_id)
        if found is not None:
            now_ms = self._now_ms()
            self._rate(found[0], now_ms).record(-value, now_ms)

    def _rate(self, sensor: SensorKey, now_ms: int) -> Rate:
        rate = self._rates.get(sensor)
        if rate is None:
            if len(self._rates) >= MAX_SENSORS:
                idle_ms = self.samples * self.window_ms
                self._rates = {k: r for k, r in self._rates.items() if now_ms - r.last_event_ms() < idle_ms}
            rate = self._rates[sensor] = Rate(self.samples, self.window_ms, now_ms)
        return rate


class QuotaImageSource(Protocol):
    def __call__(self) -> QuotaImage: ...


def produce_bytes(request: Any) -> int:
    """The record batch bytes of a produce request (what ``producer_byte_rate`` counts)."""
    return sum(len(p.records) for t in request.topic_data for p in t.partition_data if p.records)


class QuotaManagers:
    """Kafka's QuotaManagers, the client part: one manager for produce bandwidth, one for fetch
    bandwidth, one for request time (its throttle at most one window)."""

    def __init__(self, image: QuotaImageSource, clock: Clock, *, samples: int = 11, window_s: int = 1) -> None:
        self.produce = ClientQuotaManager(PRODUCER_BYTE_RATE, image, clock, samples=samples, window_s=window_s)
        self.fetch = ClientQuotaManager(CONSUMER_BYTE_RATE, image, clock, samples=samples, window_s=window_s)
        self.request = ClientQuotaManager(REQUEST_PERCENTAGE, image, clock, samples=samples, window_s=window_s,
                                          max_throttle_ms=window_s * 1000)

    def record_request_time(self, principal: str, client_id: str | None, elapsed_ns: int) -> int:
        """Record a request's handler time (KIP-124); the throttle time in ms (0: within the
        client's ``request_percentage``, or none set)."""
        if self.request.quota_of(principal, client_id) is None:
            return 0
        return self.request.record(principal, client_id, elapsed_ns * NANOS_TO_PERCENTAGE)

    def throttle_request(self, principal: str, client_id: str | None, elapsed_ns: int,
                         mute: Callable[[int], None]) -> int:
        """:meth:`record_request_time` and, over the quota, ``mute`` the connection for the
        throttle time (counted in the metrics); that time in ms."""
        throttle_ms = self.record_request_time(principal, client_id, elapsed_ns)
        if throttle_ms > 0:
            self.request.count_throttle(throttle_ms)
            mute(throttle_ms)
        return throttle_ms

    def throttle_fetch(self, principal: str, client_id: str | None, elapsed_ns: int,
                       topics: Sequence[tuple[Any, Sequence[FetchPartition]]], mute: Callable[[int], None]) -> int:
        """A fetch's two quotas, as Kafka's ``handleFetchRequest`` applies them: the handler's
        time so far (``request_percentage``) and the bytes of ``topics``' records
        (``consumer_byte_rate``, counted only where that quota applies: no work on a fetch
        without one). Over either, the bytes are taken back (the caller answers no partitions),
        and the connection is muted for the longer throttle, counted against the quota that
        gave it. That throttle in ms (0: within both, or none set)."""
        request_ms = self.record_request_time(principal, client_id, elapsed_ns)
        fetch = self.fetch
        size = bandwidth_ms = 0
        if fetch.quota_of(principal, client_id) is not None:
            size = sum(len(p.records) for _, parts in topics for p in parts)
            bandwidth_ms = fetch.record(principal, client_id, size)
        throttle_ms = max(request_ms, bandwidth_ms)
        if throttle_ms > 0:
            if size:
                fetch.unrecord(principal, client_id, size)
            (fetch if bandwidth_ms > request_ms else self.request).count_throttle(throttle_ms)
            mute(throttle_ms)
        return throttle_ms
