"""The differential harness (tests/interop/differential, run by make test-differential against
Apache Kafka) covers every API key tomyum advertises at its lowest and highest version, and its
list of accepted differences stays short, each with its reason. Checked here without a JVM."""

from __future__ import annotations

import tomyum.broker.handlers  # noqa: F401  (registers every handler)
from tests.interop.differential.accepted import ACCEPTED
from tests.interop.differential.harness import Conn, compare, normalise
from tests.interop.differential.sessions import SESSIONS
from tests.interop.differential.test_differential import CASES
from tomyum.broker.dispatch import api_version_ranges


def test_every_advertised_api_key_has_a_session_at_its_lowest_and_highest_version() -> None:
    advertised = api_version_ranges()
    assert {r["api_key"] for r in advertised} <= set(SESSIONS)
    for r in advertised:
        assert (r["api_key"], r["min_version"]) in CASES and (r["api_key"], r["max_version"]) in CASES


def test_accepted_differences_are_few_and_each_has_a_reason() -> None:
    assert len(ACCEPTED) <= 25
    for a in ACCEPTED:
        assert len(a.reason.split()) >= 5, a
    assert len(set(ACCEPTED)) == len(ACCEPTED)


def test_ids_are_compared_by_consistency_not_by_value() -> None:
    def conn(topic_id: str, other: str) -> Conn:
        c = Conn("-", "x")
        c.note("a", {"topic_id": topic_id, "throttle_time": 7, "members": [{"member_id": other}]})
        c.note("b", {"topic_id": topic_id})
        return c

    same = compare(normalise(conn("u1", "m1").transcript), normalise(conn("u2", "m2").transcript))
    assert same == []
    # one broker answering two different ids where the other answers the same one twice: a difference
    c = conn("u1", "m1")
    c.transcript[1].response = {"topic_id": "u3"}
    assert [d.path for d in compare(normalise(c.transcript), normalise(conn("u2", "m2").transcript))] == [".topic_id"]
