"""Client quota resolution, Kafka's rate and throttle time (broker/client_quotas.py) and the
connection limits (broker/connection_quotas.py), on a fake clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tomyum.broker.client_quotas import ClientQuotaManager, Entity, QuotaManagers, Rate, resolve, throttle_time_ms
from tomyum.broker.connection_quotas import ConnectionQuotas, parse_overrides
from tomyum.testing.clock import FakeClock

P = "producer_byte_rate"
U, C = ("user", "alice"), ("client-id", "app")
DU, DC = ("user", None), ("client-id", None)
#: Kafka's order, most specific first (entities as the metadata image sorts them)
ORDER: list[Entity] = [(C, U), (DC, U), (U,), (C, DU), (DC, DU), (DU,), (C,), (DC,)]


@pytest.mark.parametrize("winner", range(len(ORDER)))
def test_the_most_specific_entity_wins_in_kafkas_order(winner: int) -> None:
    quotas = {entity: {P: float(i + 1)} for i, entity in enumerate(ORDER) if i >= winner}
    found = resolve(quotas, P, "alice", "app")
    assert found is not None and found[1] == winner + 1


def test_an_entity_without_the_key_does_not_count() -> None:
    quotas: dict[Entity, dict[str, float]] = {(C, U): {"consumer_byte_rate": 1.0}, (DC,): {P: 7.0}}
    assert resolve(quotas, P, "alice", "app") == (("", "app"), 7.0)
    assert resolve({}, P, "alice", "app") is None


def test_a_user_quota_is_shared_by_its_clients_and_a_client_quota_by_its_users() -> None:
    assert resolve({(U,): {P: 1.0}}, P, "alice", "app")[0] == ("alice", "")  # type: ignore[index]
    assert resolve({(DU,): {P: 1.0}}, P, "alice", "app")[0] == ("alice", "")  # type: ignore[index]
    assert resolve({(DC, U): {P: 1.0}}, P, "alice", "app")[0] == ("alice", "app")  # type: ignore[index]
    assert resolve({(C,): {P: 1.0}}, P, "bob", "app")[0] == ("", "app")  # type: ignore[index]


def test_throttle_time_is_kafkas_excess_over_quota_times_the_window() -> None:
    assert throttle_time_ms(100.0, 100.0, 11_000) == 0
    assert throttle_time_ms(150.0, 100.0, 10_000) == 5_000
    assert throttle_time_ms(1100.0, 1000.0, 10_500) == 1_050


def test_a_new_rate_is_measured_over_at_least_samples_minus_one_windows() -> None:
    rate = Rate(11, 1000, now_ms=0)
    rate.record(10_000, 0)
    assert rate.window_size_ms(0) == 10_000
    assert rate.measure(0) == pytest.approx(1000.0)
    assert rate.window_size_ms(500) == 10_500


def test_old_samples_expire_after_the_whole_window() -> None:
    rate = Rate(11, 1000, now_ms=0)
    rate.record(5000, 0)
    for t in range(1000, 11_000, 1000):
        rate.record(0, t)
    assert rate.measure(10_999) > 0
    rate.record(0, 11_000)  # the first sample is overwritten by the ring now
    rate.record(0, 12_000)
    assert rate.measure(12_000) == 0


class Image:
    def __init__(self) -> None:
        self.quotas: dict[Entity, dict[str, float]] = {}
        self.quotas_version = 0

    def set(self, entity: Entity, value: float) -> None:
        self.quotas.setdefault(entity, {})[P] = value
        self.quotas_version += 1


def test_over_the_quota_the_throttle_time_drains_the_excess() -> None:
    clock, image = FakeClock(monotonic=0.0), Image()
    manager = ClientQuotaManager(P, lambda: image, clock)
    assert manager.record("User:alice", "app", 1e9) == 0  # no quota: nothing measured
    image.set((U,), 1000.0)
    assert manager.record("User:alice", "app", 10_000) == 0  # a 10 s burst is within the quota
    assert manager.record("User:alice", "other", 5_000) == 5_000  # shared by the user's clients
    clock.advance(5_000)  # the window is still taken as 10 s (Kafka's minimum): 1500/s, 50% over
    assert manager.record("User:alice", "app", 0) == 5_000
    clock.advance(10_000)
    assert manager.record("User:alice", "app", 0) == 0
    assert manager.record("User:bob", "app", 1e9) == 0  # no quota for bob


def test_a_steady_client_throttled_as_told_keeps_to_its_quota() -> None:
    clock, image = FakeClock(monotonic=0.0), Image()
    image.set((C,), 50_000.0)
    manager = ClientQuotaManager(P, lambda: image, clock)
    sent, start = 0.0, clock.monotonic()
    while clock.monotonic() - start < 60:
        sent += 20_000
        throttle_ms = manager.record("User:ANONYMOUS", "app", 20_000)
        clock.advance(max(throttle_ms, 10))
    rate = sent / (clock.monotonic() - start)
    assert rate == pytest.approx(50_000, rel=0.2)


def fetched(size: int) -> list[tuple[str, list[Any]]]:
    from tomyum.protocol.fetch_response import FetchPartition

    return [("t", [FetchPartition(0, records=b"x" * size)])]


def test_a_throttled_fetch_mutes_and_its_bytes_are_not_counted() -> None:
    clock, image = FakeClock(monotonic=0.0), Image()
    image.quotas[(U,)] = {"consumer_byte_rate": 100.0}
    quotas = QuotaManagers(lambda: image, clock)
    muted: list[int] = []
    assert quotas.throttle_fetch("User:alice", None, 0, fetched(900), muted.append) == 0  # within the first 10 s
    throttle_ms = quotas.throttle_fetch("User:alice", None, 0, fetched(5000), muted.append)
    assert throttle_ms > 0 and muted == [throttle_ms]
    assert (quotas.fetch.throttled, quotas.fetch.throttle_time_ms) == (1, throttle_ms)
    # the 5,000 bytes were taken back: 950 bytes in the first 10 s are still within the quota
    assert quotas.throttle_fetch("User:alice", None, 0, fetched(50), muted.append) == 0
    assert quotas.throttle_fetch("User:bob", None, 0, fetched(10**6), muted.append) == 0  # no quota: nothing measured
    assert muted == [throttle_ms]


def test_a_fetch_over_its_request_percentage_takes_back_its_bytes_too() -> None:
    """Kafka's handleFetchRequest: over either quota the fetch answers nothing, so its bytes are
    taken back from consumer_byte_rate whichever quota throttled it; the longer throttle mutes
    the connection and is counted against the quota that gave it."""
    clock, image = FakeClock(monotonic=0.0), Image()
    image.quotas[(U,)] = {"consumer_byte_rate": 100.0, "request_percentage": 10.0}
    quotas = QuotaManagers(lambda: image, clock)
    muted: list[int] = []
    # 2 s of handler time: 200 %-seconds over the 10 s window, twice the 10 %; 900 bytes within
    throttle_ms = quotas.throttle_fetch("User:alice", None, 2 * 10**9, fetched(900), muted.append)
    assert throttle_ms > 0 and muted == [throttle_ms]
    assert (quotas.request.throttled, quotas.fetch.throttled) == (1, 0)
    # the 900 bytes were taken back: another 900 are still within the byte rate
    image.quotas[(U,)] = {"consumer_byte_rate": 100.0}
    image.quotas_version += 1
    assert quotas.throttle_fetch("User:alice", None, 2 * 10**9, fetched(900), muted.append) == 0


def test_request_time_counts_as_a_percentage_of_one_thread_and_its_throttle_is_at_most_a_window() -> None:
    clock, image = FakeClock(monotonic=0.0), Image()
    quotas = QuotaManagers(lambda: image, clock)
    assert quotas.record_request_time("User:alice", "app", 10**9) == 0  # no quota: nothing measured
    image.quotas[(C,)] = {"request_percentage": 10.0}  # a tenth of one thread
    image.quotas_version += 1
    # 1 s of handler time: 100 %-seconds; measured over Kafka's 10 s minimum window, 10 %: at the quota
    assert quotas.record_request_time("User:alice", "app", 10**9) == 0
    assert quotas.record_request_time("User:bob", "other", 10**9) == 0  # another client id: no quota
    # a further 10 s of handler time at once: 110 % over 10 s, far over; the throttle stops at one window
    assert quotas.record_request_time("User:alice", "app", 10 * 10**9) == 1000
    # a client throttled as told keeps to its share of one thread
    clock.advance(100)
    busy_ns, start = 0, clock.monotonic()
    while clock.monotonic() - start < 120:
        busy_ns += 5_000_000  # 5 ms requests
        clock.advance(5 + quotas.record_request_time("User:alice", "app", 5_000_000))
    assert busy_ns / 1e9 / (clock.monotonic() - start) == pytest.approx(0.10, rel=0.2)


class Config(dict[str, Any]):
    def __init__(self, **kw: Any) -> None:
        super().__init__({"max.connections": 2**31 - 1, "max.connections.per.ip": 2**31 - 1,
                          "max.connections.per.ip.overrides": "", "max.connection.creation.rate": 2**31 - 1})
        self.update({k.replace("_", "."): v for k, v in kw.items()})


def test_max_connections_per_ip_with_overrides() -> None:
    assert parse_overrides("127.0.0.1:3, ::1:5") == {"127.0.0.1": 3, "::1": 5}
    quotas = ConnectionQuotas(Config(max_connections_per_ip=2, **{"max.connections.per.ip.overrides": "10.0.0.9:3"}),
                              dict, FakeClock())
    assert [quotas.accept("PLAINTEXT", "10.0.0.1") for _ in range(3)][2] is not None
    assert [quotas.accept("PLAINTEXT", "10.0.0.9") for _ in range(4)] == [None, None, None, quotas.accept(
        "PLAINTEXT", "10.0.0.9")]
    quotas.release("10.0.0.1")
    assert quotas.accept("PLAINTEXT", "10.0.0.1") is None


def test_max_connections_counts_every_ip() -> None:
    quotas = ConnectionQuotas(Config(max_connections=2), dict, FakeClock())
    assert quotas.accept("A", "1.1.1.1") is None and quotas.accept("A", "2.2.2.2") is None
    assert "max.connections" in (quotas.accept("B", "3.3.3.3") or "")


def test_connection_creation_rates_of_the_listener_and_of_an_ip_quota() -> None:
    clock = FakeClock(monotonic=0.0)
    quotas = ConnectionQuotas(Config(**{"max.connection.creation.rate": 2}), dict, clock)
    accepted = sum(quotas.accept("A", f"10.0.0.{i}") is None for i in range(100))
    assert accepted == 20  # 2 a second over the minimum 10 s window
    ip_quotas: dict[Entity, dict[str, float]] = {(("ip", None),): {"connection_creation_rate": 1.0},
                                                 (("ip", "10.0.0.7"),): {"connection_creation_rate": 3.0}}
    quotas = ConnectionQuotas(Config(), lambda: ip_quotas, clock)
    assert sum(quotas.accept("A", "10.0.0.1") is None for _ in range(100)) == 10
    assert sum(quotas.accept("A", "10.0.0.7") is None for _ in range(100)) == 30
    clock.advance(30_000)
    assert quotas.accept("A", "10.0.0.1") is None


def ms(t: timedelta) -> int:
    return round(t.total_seconds() * 1000)


def set_quota(kafka: Any, entity: dict[str, str | None], key: str, value: float) -> None:
    r = kafka.call(49, 1, {"validate_only": False, "entries": [
        {"entity": [{"entity_type": t, "entity_name": n} for t, n in entity.items()],
         "ops": [{"key": key, "value": value, "remove": False}]}]})
    assert [e.error_code for e in r.entries] == [0]


def test_a_produce_over_the_quota_answers_throttle_time_ms_and_mutes_the_connection(kafka: Any) -> None:
    from tomyum.protocol.records import build_batch

    kafka.create_topic("t")
    set_quota(kafka, {"user": None}, P, 300.0)  # 3,000 bytes in the first 10 s
    request = {"acks": 1, "timeout": 5000,
               "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": build_batch([(None, b"v" * 2000)])}]}]}
    assert kafka.call(0, 9, request).throttle_time == timedelta(0)  # within the first 10 s burst
    r = kafka.call(0, 9, request)
    assert r.throttle_time > timedelta(0) and kafka.connection.throttled == [ms(r.throttle_time)]
    assert r.responses[0].partition_responses[0].error_code == 0  # still appended (Kafka's order)


def test_a_fetch_over_the_quota_answers_no_records_and_throttle_time_ms(kafka: Any) -> None:
    from tomyum.protocol.records import build_batch

    kafka.create_topic("t")
    kafka.call(0, 9, {"acks": 1, "timeout": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": build_batch([(None, b"v" * 5000)])}]}]})
    set_quota(kafka, {"client-id": None}, "consumer_byte_rate", 100.0)
    fetch = {"max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0, "topics": [
        {"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20,
                                       "log_start_offset": -1, "current_leader_epoch": -1}]}]}
    r = kafka.call(1, 11, fetch)
    assert r.throttle_time > timedelta(0) and kafka.connection.throttled == [ms(r.throttle_time)]
    assert (r.error_code, r.session_id, list(r.responses)) == (0, 0, [])  # Kafka's throttled answer: no partitions


def fetch_request(offset: int, max_wait: int = 0) -> dict[str, Any]:
    return {"max_wait": max_wait, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "topics": [{"topic": "t", "partitions": [{"partition": 0, "fetch_offset": offset,
                                                      "partition_max_bytes": 1 << 20}]}]}


def test_a_fetch_over_its_request_percentage_answers_no_records(kafka: Any) -> None:
    """As Kafka's handleFetchRequest: the fetch records its own time against request_percentage
    as it answers, and over it answers its throttle time and no partitions (other requests are
    answered in full and throttled after)."""
    from tomyum.protocol.records import build_batch

    kafka.create_topic("t")
    kafka.call(0, 9, {"acks": 1, "timeout": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": build_batch([(None, b"v")])}]}]})
    set_quota(kafka, {"client-id": None}, "request_percentage", 1e-6)  # any handler time is over it
    r = kafka.call(1, 12, fetch_request(0))
    assert r.throttle_time > timedelta(0) and kafka.connection.throttled == [ms(r.throttle_time)]
    assert ms(r.throttle_time) <= 1000  # a request quota's throttle is at most one window
    assert (r.error_code, r.session_id, list(r.responses)) == (0, 0, [])
    assert (kafka.broker.quotas.request.throttled, kafka.broker.quotas.fetch.throttled) == (1, 0)


def test_a_long_polls_wait_does_not_count_against_request_percentage(kafka: Any) -> None:
    """Kafka counts a fetch's time in the request handler, not its time parked: 1 s of waiting
    would be 10 % of a thread over the 10 s window, ten times this quota; the work before it
    parked is far within it."""
    kafka.create_topic("t")
    set_quota(kafka, {"client-id": None}, "request_percentage", 1.0)
    r = kafka.call(1, 12, fetch_request(0, max_wait=1000))  # an empty log: parks until max_wait
    assert (ms(r.throttle_time), kafka.connection.throttled) == (0, [])
    assert [(t.topic, [p.error_code for p in t.partitions]) for t in r.responses] == [("t", [0])]
