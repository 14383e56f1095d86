"""DescribeAcls (29), CreateAcls (30), DeleteAcls (31), DescribeClientQuotas (48),
AlterClientQuotas (49), DescribeUserScramCredentials (50) and AlterUserScramCredentials (51)
called below the socket."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tomyum.config import STANDARD_AUTHORIZER
from tomyum.errors import ErrorCode
from tomyum.testing.handlers import BlockingHarness

DESCRIBE_ACLS, CREATE_ACLS, DELETE_ACLS = 29, 30, 31
DESCRIBE_QUOTAS, ALTER_QUOTAS, DESCRIBE_SCRAM, ALTER_SCRAM = 48, 49, 50, 51
COVERS = {DESCRIBE_ACLS: "DescribeAcls", CREATE_ACLS: "CreateAcls", DELETE_ACLS: "DeleteAcls",
          DESCRIBE_QUOTAS: "DescribeClientQuotas", ALTER_QUOTAS: "AlterClientQuotas",
          DESCRIBE_SCRAM: "DescribeUserScramCredentials", ALTER_SCRAM: "AlterUserScramCredentials"}
TOPIC, LITERAL, PREFIXED, ANY, MATCH = 2, 3, 4, 1, 2
READ, WRITE, ALLOW, DENY = 3, 4, 3, 2
EVERYTHING = {"resource_type_filter": ANY, "resource_name_filter": None, "pattern_type_filter": ANY,
              "principal_filter": None, "host_filter": None, "operation": ANY, "permission_type": ANY}


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[BlockingHarness]:
    settings = {"authorizer.class.name": STANDARD_AUTHORIZER, "super.users": "User:ANONYMOUS"}
    with BlockingHarness(tmp_path / "secured", settings=settings) as h:
        yield h


def creation(name: str, op: int, pattern: int = LITERAL, principal: str = "User:alice") -> dict[str, Any]:
    return {"resource_type": TOPIC, "resource_name": name, "resource_pattern_type": pattern, "principal": principal,
            "host": "*", "operation": op, "permission_type": ALLOW}


@pytest.mark.parametrize("version", [1, 3])
def test_acls_are_created_described_and_deleted(secured: BlockingHarness, version: int) -> None:
    made = secured.call(CREATE_ACLS, version, {"creations": [creation("orders", READ), creation("logs-", WRITE,
                                                                                                 PREFIXED),
                                                             creation("x", READ, principal="alice")]})
    assert [r.error_code for r in made.results] == [ErrorCode.none, ErrorCode.none, ErrorCode.invalid_request]
    described = secured.call(DESCRIBE_ACLS, version, EVERYTHING)
    assert described.error_code == ErrorCode.none
    assert sorted((r.resource_name, r.pattern_type) for r in described.resources) == [("logs-", PREFIXED),
                                                                                      ("orders", LITERAL)]
    matching = secured.call(DESCRIBE_ACLS, version, {**EVERYTHING, "resource_type_filter": TOPIC,
                                                     "resource_name_filter": "logs-x", "pattern_type_filter": MATCH})
    assert [r.resource_name for r in matching.resources] == ["logs-"]
    deleted = secured.call(DELETE_ACLS, version, {"filters": [{**EVERYTHING, "resource_name_filter": "orders"}]})
    assert [a.resource_name for a in deleted.filter_results[0].matching_acls] == ["orders"]
    assert [r.resource_name for r in secured.call(DESCRIBE_ACLS, version, EVERYTHING).resources] == ["logs-"]


def test_acl_apis_without_an_authorizer_are_security_disabled(kafka: BlockingHarness) -> None:
    assert kafka.call(DESCRIBE_ACLS, 3, EVERYTHING).error_code == ErrorCode.security_disabled
    assert kafka.call(CREATE_ACLS, 3, {"creations": [creation("t", READ)]}).results[0].error_code == \
        ErrorCode.security_disabled
    assert kafka.call(DELETE_ACLS, 3, {"filters": [EVERYTHING]}).filter_results[0].error_code == \
        ErrorCode.security_disabled


@pytest.mark.parametrize("version", [0, 1])
def test_client_quotas_are_set_and_described(kafka: BlockingHarness, version: int) -> None:
    entity = [{"entity_type": "user", "entity_name": "alice"}]
    altered = kafka.call(ALTER_QUOTAS, version, {"entries": [
        {"entity": entity, "ops": [{"key": "producer_byte_rate", "value": 1024.0, "remove": False}]},
        {"entity": [{"entity_type": "user", "entity_name": "bob"}],
         "ops": [{"key": "producer_byte_rate", "value": -1.0, "remove": False}]}]})
    assert [e.error_code for e in altered.entries] == [ErrorCode.none, ErrorCode.invalid_request]
    described = kafka.call(DESCRIBE_QUOTAS, version, {"components": [
        {"entity_type": "user", "match_type": 0, "match": "alice"}], "strict": True})
    assert [(v.key, v.value) for v in described.entries[0].values] == [("producer_byte_rate", 1024.0)]
    # an entity type Kafka does not know: UNSUPPORTED_VERSION, as its ClientQuotaManager answers
    bad = kafka.call(DESCRIBE_QUOTAS, version, {"components": [{"entity_type": "team", "match_type": 2}]})
    assert (bad.error_code, bad.error_message) == (ErrorCode.unsupported_version, "Custom entity type 'team' not supported")
    twice = kafka.call(DESCRIBE_QUOTAS, version, {"components": [{"entity_type": "user", "match_type": 2}] * 2})
    assert twice.error_code == ErrorCode.invalid_request


def test_scram_credentials_are_upserted_described_and_deleted(kafka: BlockingHarness) -> None:
    salted = hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 4096)
    altered = kafka.call(ALTER_SCRAM, 0, {"deletions": [{"name": "ghost", "mechanism": 1}], "upsertions": [
        {"name": "alice", "mechanism": 1, "iterations": 4096, "salt": b"salt", "salted_password": salted},
        {"name": "weak", "mechanism": 1, "iterations": 10, "salt": b"s", "salted_password": salted},
        {"name": "odd", "mechanism": 9, "iterations": 4096, "salt": b"s", "salted_password": salted}]})
    assert {r.user: r.error_code for r in altered.results} == {
        "ghost": ErrorCode.resource_not_found, "alice": ErrorCode.none,
        "weak": ErrorCode.unacceptable_credential, "odd": ErrorCode.unsupported_sasl_mechanism}
    described = kafka.call(DESCRIBE_SCRAM, 0, {"users": None})
    assert [(r.user, [(c.mechanism, c.iterations) for c in r.credential_infos]) for r in described.results] == \
        [("alice", [(1, 4096)])]
    missing = kafka.call(DESCRIBE_SCRAM, 0, {"users": [{"name": "nobody"}]})
    assert missing.results[0].error_code == ErrorCode.resource_not_found
    kafka.call(ALTER_SCRAM, 0, {"deletions": [{"name": "alice", "mechanism": 1}], "upsertions": []})
    assert kafka.call(DESCRIBE_SCRAM, 0, {"users": None}).results == ()


SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36
COVERS |= {SASL_HANDSHAKE: "SaslHandshake", SASL_AUTHENTICATE: "SaslAuthenticate"}
JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="pw";'


@pytest.fixture
def sasl(tmp_path: Path) -> Iterator[BlockingHarness]:
    settings = {"listeners": "SASL_PLAINTEXT://127.0.0.1:0", "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT",
                "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256", "connections.max.reauth.ms": 60000,
                "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS}
    with BlockingHarness(tmp_path / "sasl", settings=settings) as h:
        yield h


def test_sasl_handshake_offers_the_listeners_mechanisms(sasl: BlockingHarness, kafka: BlockingHarness) -> None:
    ok = sasl.call(SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
    assert ok.error_code == ErrorCode.none and list(ok.mechanisms) == ["PLAIN", "SCRAM-SHA-256"]
    unknown = sasl.call(SASL_HANDSHAKE, 1, {"mechanism": "GSSAPI"})
    assert unknown.error_code == ErrorCode.unsupported_sasl_mechanism
    assert kafka.call(SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"}).error_code == ErrorCode.illegal_sasl_state


@pytest.mark.parametrize("version", [0, 2])
def test_sasl_authenticate_plain_names_the_principal_or_fails_and_closes(sasl: BlockingHarness, version: int) -> None:
    assert sasl.call(SASL_AUTHENTICATE, version, {"auth_bytes": b"\0alice\0pw"}).error_code == \
        ErrorCode.illegal_sasl_state  # no handshake before it
    sasl.call(SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
    ok = sasl.call(SASL_AUTHENTICATE, version, {"auth_bytes": b"\0alice\0pw"})
    assert ok.error_code == ErrorCode.none and sasl.connection.principal == "User:alice"
    if version >= 1:
        assert ok.session_lifetime.total_seconds() == 60
    sasl.call(SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
    bad = sasl.call(SASL_AUTHENTICATE, version, {"auth_bytes": b"\0alice\0nope"})
    assert bad.error_code == ErrorCode.sasl_authentication_failed
    assert sasl.connection.closes and "authentication failed" in str(sasl.connection.closes[-1])
