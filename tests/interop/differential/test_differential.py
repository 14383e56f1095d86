"""The differential protocol harness (issue 20): every API key tomyum serves, at its lowest and
highest version, driven by the same scripted session against tomyum and against Apache Kafka;
the two transcripts compared field by field after normalising ids, clocks and throttle times.
Run by ``make test-differential`` (and ``make test-interop``); needs java and mvn."""

from __future__ import annotations

import pytest

import tomyum.broker.handlers  # noqa: F401  (registers every handler)
from tests.interop.differential.accepted import ACCEPTED
from tests.interop.differential.harness import Accepted, Conn, api_name, compare, normalise
from tests.interop.differential.sessions import SESSIONS
from tomyum.broker.dispatch import api_version_ranges

CASES = [(r["api_key"], v) for r in api_version_ranges() for v in sorted({r["min_version"], r["max_version"]})]
USED: set[Accepted] = set()
RAN: set[tuple[int, int]] = set()


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("api_key", "version"), CASES, ids=[f"{api_name(k)}-v{v}" for k, v in CASES])
def test_tomyum_answers_as_kafka_does(peers: dict[str, str], api_key: int, version: int) -> None:
    transcripts = {}
    for peer, bootstrap in peers.items():
        conn = Conn(bootstrap, peer)
        try:
            SESSIONS[api_key](conn, version, f"d{api_key}v{version}")
        finally:
            conn.close()
        assert (api_key, version) in conn.sent, f"the session never sent {api_name(api_key)} v{version}"
        transcripts[peer] = normalise(conn.transcript)
    unexplained = []
    for difference in compare(transcripts["tomyum"], transcripts["kafka"]):
        accepted = [a for a in ACCEPTED if a.matches(difference)]
        USED.update(accepted)
        if not accepted:
            unexplained.append(str(difference))
    RAN.add((api_key, version))
    assert not unexplained, "tomyum and Kafka differ:\n" + "\n".join(unexplained)


def test_every_accepted_difference_still_occurs() -> None:
    if RAN != set(CASES):
        pytest.skip("only a full run can tell")
    assert [a for a in ACCEPTED if a not in USED] == []
