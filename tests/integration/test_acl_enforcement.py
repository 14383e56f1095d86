"""ACLs enforced against real clients (issue 19): a broker with the StandardAuthorizer and a
SASL PLAIN listener; the super user ``admin`` creates the topic and the ACLs with AdminClient."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from tomyum.testing import BrokerProcess

TIMEOUT = 30
pytestmark = pytest.mark.timeout(180)
USERS = ("admin", "alice", "bob", "carol")
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" "
        "password=\"admin-pw\" " + " ".join(f'user_{u}="{u}-pw"' for u in USERS) + ";")


def conf(b: BrokerProcess, user: str) -> dict[str, Any]:
    return {"bootstrap.servers": b.bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": user, "sasl.password": f"{user}-pw"}


def allow(user: str, kind: ResourceType, name: str, op: AclOperation) -> AclBinding:
    return AclBinding(kind, name, ResourcePatternType.LITERAL, f"User:{user}", "*", op, AclPermissionType.ALLOW)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    settings = {"listeners": "SASL://127.0.0.1:0", "listener.security.protocol.map": "SASL:SASL_PLAINTEXT",
                "sasl.enabled.mechanisms": "PLAIN", "listener.name.sasl.plain.sasl.jaas.config": JAAS,
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users": "User:admin"}
    with BrokerProcess(Path(tmp_path_factory.mktemp("acls")) / "data", settings=settings) as b:
        admin = AdminClient(conf(b, "admin"))
        admin.create_topics([NewTopic("t", 1, 1)])["t"].result(TIMEOUT)
        for f in admin.create_acls([allow("alice", ResourceType.TOPIC, "t", AclOperation.WRITE),
                                    allow("bob", ResourceType.TOPIC, "t", AclOperation.READ),
                                    allow("carol", ResourceType.TOPIC, "t", AclOperation.WRITE)]).values():
            f.result(TIMEOUT)
        yield b


def produce(config: dict[str, Any], value: bytes) -> list[Any]:
    p = Producer({**config, "acks": "all", "message.timeout.ms": 10000})
    errors: list[Any] = []
    p.produce("t", value=value, on_delivery=lambda err, msg: errors.append(err))
    p.flush(TIMEOUT)
    return errors


def first_error_or_value(c: Consumer) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None:
            return m.error() if m.error() is not None else m.value()
    raise AssertionError("nothing consumed and no error")


def test_a_group_member_without_read_on_the_group_gets_group_authorization_failed(broker: BrokerProcess) -> None:
    c = Consumer({**conf(broker, "bob"), "group.id": "bobs", "auto.offset.reset": "earliest"})
    try:
        c.subscribe(["t"])
        error = first_error_or_value(c)
        assert isinstance(error, KafkaError) and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    finally:
        c.close()


def test_a_transactional_producer_without_write_on_its_transactional_id_is_refused(broker: BrokerProcess) -> None:
    p = Producer({**conf(broker, "carol"), "transactional.id": "carols"})
    with pytest.raises(KafkaException) as e:
        p.init_transactions(TIMEOUT)
    assert e.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def test_an_idempotent_producer_with_write_on_a_topic_works(broker: BrokerProcess) -> None:
    assert produce({**conf(broker, "alice"), "enable.idempotence": True}, b"idempotent") == [None]


def test_a_super_user_can_do_everything(broker: BrokerProcess) -> None:
    admin = conf(broker, "admin")
    p = Producer({**admin, "transactional.id": "admins"})
    p.init_transactions(TIMEOUT)
    p.begin_transaction()
    p.produce("t", value=b"super")
    p.commit_transaction(TIMEOUT)
    c = Consumer({**admin, "group.id": "admins", "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    try:
        c.subscribe(["t"])
        deadline = time.monotonic() + TIMEOUT
        seen: list[bytes] = []
        while b"super" not in seen and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                seen.append(m.value())
        assert b"super" in seen
        c.commit(asynchronous=False)
    finally:
        c.close()
