"""ApiVersions (18) called below the socket."""

from __future__ import annotations

import pytest

from tomyum.broker.dispatch import HANDLERS
from tomyum.testing.handlers import BlockingHarness

API_VERSIONS = 18
COVERS = {API_VERSIONS: "ApiVersions"}


@pytest.mark.parametrize("version", [0, 4])
def test_api_versions_lists_every_registered_api_with_its_range(kafka: BlockingHarness, version: int) -> None:
    r = kafka.call(API_VERSIONS, version, {"client_software_name": "t", "client_software_version": "1"})
    assert r.error_code == 0
    assert {k.api_key: (k.min_version, k.max_version) for k in r.api_keys} == {
        h.api_key: (h.min_version, h.max_version) for h in HANDLERS.values()}


def test_api_versions_lists_keys_in_ascending_order(kafka: BlockingHarness) -> None:
    keys = [k.api_key for k in kafka.call(API_VERSIONS, 3, {"client_software_name": "t",
                                                             "client_software_version": "1"}).api_keys]
    assert keys == sorted(keys)


@pytest.mark.parametrize(("name", "version"), [("", "1"), ("a b", "1"), ("librdkafka", "2.6.0+x"), ("-x", "1")])
def test_a_client_software_name_or_version_off_kafkas_pattern_is_an_invalid_request(
        kafka: BlockingHarness, name: str, version: str) -> None:
    r = kafka.call(API_VERSIONS, 3, {"client_software_name": name, "client_software_version": version})
    assert (r.error_code, r.api_keys) == (42, ())
