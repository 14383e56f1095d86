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


def test_from_v3_the_features_are_named_with_the_levels_finalized(kafka: BlockingHarness) -> None:
    """KIP-584: metadata.version as the metadata log holds it, group.version 1 (KIP-848); no
    transaction.version, so that clients keep to the transaction protocol tomyum speaks."""
    r = kafka.call(API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})
    level = kafka.broker.metadata.image.features["metadata.version"]
    assert {f.name: (f.min_version, f.max_version) for f in r.supported_features} == {
        "metadata.version": (level, level), "group.version": (0, 1)}
    assert {f.name: (f.min_version_level, f.max_version_level) for f in r.finalized_features} == {
        "metadata.version": (level, level), "group.version": (1, 1)}
    assert r.finalized_features_epoch == kafka.broker.metadata.log.next_offset - 1 >= 0
