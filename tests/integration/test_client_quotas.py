"""Client quotas (KIP-546) set, described and removed with AlterClientQuotas and
DescribeClientQuotas, kept in the metadata log across restarts. No Python client has these
APIs, so the requests are built with kio, as Kafka's own tools send them."""

from __future__ import annotations

from typing import Any

import pytest
from kio.schema.alter_client_quotas.v1 import request as alter
from kio.schema.describe_client_quotas.v1 import request as describe

from tests.integration.test_bad_input import connect, decode_response, kio_request, read_frame
from tomyum.testing import BrokerProcess

pytestmark = pytest.mark.timeout(120)


def alter_quotas(b: BrokerProcess, *entries: tuple[dict[str, str | None], dict[str, float | None]],
                 validate_only: bool = False) -> list[Any]:
    body = alter.AlterClientQuotasRequest(validate_only=validate_only, entries=tuple(
        alter.EntryData(entity=tuple(alter.EntityData(entity_type=t, entity_name=n) for t, n in entity.items()),
                        ops=tuple(alter.OpData(key=k, value=v or 0.0, remove=v is None) for k, v in ops.items()))
        for entity, ops in entries))
    with connect(b) as s:
        s.sendall(kio_request(49, 1, 1, body))
        return list(decode_response(49, 1, read_frame(s)).entries)  # type: ignore[attr-defined]


def describe_quotas(b: BrokerProcess, components: tuple[tuple[str, int, str | None], ...] = (),
                    strict: bool = False) -> dict[tuple[tuple[str, str | None], ...], dict[str, float]]:
    body = describe.DescribeClientQuotasRequest(strict=strict, components=tuple(
        describe.ComponentData(entity_type=t, match_type=m, match=name) for t, m, name in components))
    with connect(b) as s:
        s.sendall(kio_request(48, 1, 2, body))
        response: Any = decode_response(48, 1, read_frame(s))
    assert response.error_code == 0, response.error_message
    return {tuple(sorted((e.entity_type, e.entity_name) for e in entry.entity)): {v.key: v.value for v in entry.values}
            for entry in response.entries}


def test_quotas_are_set_described_removed_and_kept(own_broker: BrokerProcess) -> None:
    b = own_broker
    results = alter_quotas(b, ({"user": "alice"}, {"producer_byte_rate": 1024.0, "request_percentage": 50.0}),
                           ({"user": "alice", "client-id": "app"}, {"consumer_byte_rate": 2048.0}),
                           ({"client-id": None}, {"producer_byte_rate": 4096.0}),
                           ({"ip": "10.0.0.1"}, {"connection_creation_rate": 5.0}),
                           ({"user": "bob"}, {"no_such_quota": 1.0}),
                           ({"ip": "10.0.0.2", "user": "x"}, {"connection_creation_rate": 1.0}))
    assert [r.error_code for r in results] == [0, 0, 0, 0, 42, 42]
    b.restart()
    everything = describe_quotas(b)
    assert everything == {
        (("user", "alice"),): {"producer_byte_rate": 1024.0, "request_percentage": 50.0},
        (("client-id", "app"), ("user", "alice")): {"consumer_byte_rate": 2048.0},
        (("client-id", None),): {"producer_byte_rate": 4096.0},
        (("ip", "10.0.0.1"),): {"connection_creation_rate": 5.0},
    }
    assert set(describe_quotas(b, (("user", 0, "alice"),), strict=True)) == {(("user", "alice"),)}
    assert set(describe_quotas(b, (("user", 0, "alice"),))) == {(("user", "alice"),),
                                                                (("client-id", "app"), ("user", "alice"))}
    assert set(describe_quotas(b, (("client-id", 1, None),))) == {(("client-id", None),)}
    alter_quotas(b, ({"user": "alice"}, {"request_percentage": None}))
    alter_quotas(b, ({"ip": "10.0.0.1"}, {"connection_creation_rate": 9.0}), validate_only=True)
    after = describe_quotas(b)
    assert after[(("user", "alice"),)] == {"producer_byte_rate": 1024.0}
    assert after[(("ip", "10.0.0.1"),)] == {"connection_creation_rate": 5.0}
