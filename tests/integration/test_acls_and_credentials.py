"""ACL bindings and SCRAM credentials managed through AdminClient, kept in the metadata log:
created, described, deleted, and still there after a restart; without an authorizer the ACL
APIs answer SECURITY_DISABLED, as Kafka's do."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from tomyum.testing import BrokerProcess

TIMEOUT = 30
pytestmark = pytest.mark.timeout(120)
AUTHORIZER = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
              "allow.everyone.if.no.acl.found": "true"}


def binding(name: str, op: AclOperation, pattern: ResourcePatternType = ResourcePatternType.LITERAL,
            principal: str = "User:alice") -> AclBinding:
    return AclBinding(ResourceType.TOPIC, name, pattern, principal, "*", op, AclPermissionType.ALLOW)


def described(admin: AdminClient, f: AclBindingFilter) -> set[tuple[str, int, str]]:
    return {(b.name, b.operation.value, b.principal) for b in admin.describe_acls(f).result(TIMEOUT)}


EVERYTHING = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                              AclPermissionType.ANY)


def test_acls_are_created_described_deleted_and_kept(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "data", settings=AUTHORIZER) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        wanted = [binding("orders", AclOperation.READ), binding("logs-", AclOperation.WRITE,
                  ResourcePatternType.PREFIXED), binding("x", AclOperation.READ, principal="bob")]
        results = admin.create_acls(wanted)
        results[wanted[0]].result(TIMEOUT)
        results[wanted[1]].result(TIMEOUT)
        with pytest.raises(KafkaException) as bad:
            results[wanted[2]].result(TIMEOUT)  # a principal is Type:name
        assert bad.value.args[0].code() == KafkaError.INVALID_REQUEST
        assert described(admin, EVERYTHING) == {("orders", AclOperation.READ.value, "User:alice"),
                                                ("logs-", AclOperation.WRITE.value, "User:alice")}
        match = AclBindingFilter(ResourceType.TOPIC, "logs-app", ResourcePatternType.MATCH, None, None,
                                 AclOperation.ANY, AclPermissionType.ANY)
        assert described(admin, match) == {("logs-", AclOperation.WRITE.value, "User:alice")}
        broker.restart()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        assert len(described(admin, EVERYTHING)) == 2
        deleted = admin.delete_acls([AclBindingFilter(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL,
                                                      None, None, AclOperation.ANY, AclPermissionType.ANY)])
        assert [b.name for b in next(iter(deleted.values())).result(TIMEOUT)] == ["orders"]
        broker.restart()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        assert described(admin, EVERYTHING) == {("logs-", AclOperation.WRITE.value, "User:alice")}


def test_acl_apis_without_an_authorizer_say_security_is_disabled(broker: BrokerProcess) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    wanted = binding("orders", AclOperation.READ)
    with pytest.raises(KafkaException) as e:
        admin.create_acls([wanted])[wanted].result(TIMEOUT)
    assert e.value.args[0].code() == KafkaError.SECURITY_DISABLED


def test_scram_credentials_are_upserted_described_deleted_and_kept(own_broker: BrokerProcess) -> None:
    admin = AdminClient({"bootstrap.servers": own_broker.bootstrap})
    sha256 = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192)
    sha512 = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
    results = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion("alice", sha256, b"secret", b"salt-alice"),
        UserScramCredentialUpsertion("bob", sha512, b"secret"),
        UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b"x"),
    ])
    results["alice"].result(TIMEOUT)
    results["bob"].result(TIMEOUT)
    with pytest.raises(KafkaException) as weak:
        results["carol"].result(TIMEOUT)
    assert weak.value.args[0].code() == KafkaError.UNACCEPTABLE_CREDENTIAL
    own_broker.restart()
    admin = AdminClient({"bootstrap.servers": own_broker.bootstrap})
    users = admin.describe_user_scram_credentials().result(TIMEOUT)
    assert set(users) == {"alice", "bob"}
    infos = users["alice"].scram_credential_infos
    assert [(i.mechanism, i.iterations) for i in infos] == [(ScramMechanism.SCRAM_SHA_256, 8192)]
    gone = admin.alter_user_scram_credentials([UserScramCredentialDeletion("bob", ScramMechanism.SCRAM_SHA_512),
                                               UserScramCredentialDeletion("dave", ScramMechanism.SCRAM_SHA_256)])
    gone["bob"].result(TIMEOUT)
    with pytest.raises(KafkaException) as missing:
        gone["dave"].result(TIMEOUT)
    assert missing.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND
    assert set(admin.describe_user_scram_credentials().result(TIMEOUT)) == {"alice"}
