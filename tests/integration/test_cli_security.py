"""The CLI on a secured broker: ``--command-config`` with Kafka's client properties (SASL PLAIN
and SCRAM over SASL_SSL with a local CA), ``tomyum users``, ``acls`` and ``quotas``, and
``tomyum start --secure-dev`` end to end."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_cli import fails, ok, rows, tomyum_cmd
from tests.integration.test_security import PLAIN_JAAS, listeners, ports
from tomyum.security.certs import LocalCA
from tomyum.testing import BrokerProcess

pytestmark = pytest.mark.timeout(180)
SCRAM = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="{}" password="{}";'
PLAIN = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="{}" password="{}";'


def properties(path: Path, ca: LocalCA, jaas: str, mechanism: str) -> str:
    path.write_text(f"security.protocol=SASL_SSL\nsasl.mechanism={mechanism}\nsasl.jaas.config={jaas}\n"
                    f"ssl.truststore.type=PEM\nssl.truststore.location={ca.cert_path}\n")
    return str(path)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A broker with PLAINTEXT and SASL_SSL (PLAIN, SCRAM) listeners; alice is a SCRAM user,
    admin a PLAIN one; the addresses and properties files by name."""
    tmp = tmp_path_factory.mktemp("cli-security")
    ca = LocalCA(tmp / "ca")
    settings = {**listeners(PLAIN="PLAINTEXT", SECURE="SASL_SSL"),
                "ssl.keystore.location": str(ca.broker().keystore), "ssl.truststore.location": str(ca.cert_path),
                "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                "listener.name.secure.plain.sasl.jaas.config": PLAIN_JAAS,
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users": "User:ANONYMOUS;User:admin;User:alice"}
    with BrokerProcess(tmp / "data", settings=settings) as b:
        p = ports(b)
        plain, secure = f"127.0.0.1:{p['PLAIN']}", f"127.0.0.1:{p['SECURE']}"
        ok("users", "add", "alice", "--password", "alice-secret", "--bootstrap", plain)
        yield {"plain": plain, "secure": secure,
               "scram": properties(tmp / "scram.properties", ca, SCRAM.format("alice", "alice-secret"), "SCRAM-SHA-256"),
               "admin": properties(tmp / "plain.properties", ca, PLAIN.format("admin", "admin-secret"), "PLAIN"),
               "wrong": properties(tmp / "wrong.properties", ca, SCRAM.format("alice", "nope"), "SCRAM-SHA-256")}


def test_command_config_speaks_plain_and_scram_over_sasl_ssl(secured: dict[str, str]) -> None:
    s = secured
    ok("topics", "create", "payments", "--bootstrap", s["secure"], "--command-config", s["admin"])
    assert ["payments", "1", "1"] in rows(ok("topics", "list", "-b", s["secure"], "--command-config", s["scram"]))
    ok("produce", "payments", "-b", s["secure"], "--command-config", s["scram"], input="paid\n")
    assert ok("consume", "payments", "--from", "earliest", "--count", "1", "-b", s["secure"], "--command-config", s["admin"]) == "paid\n"


def test_bad_credentials_and_wrong_listeners_are_one_line(secured: dict[str, str]) -> None:
    s = secured
    assert "cannot authenticate at" in fails("topics", "list", "-b", s["secure"], "--command-config", s["wrong"])
    assert "authentication as 'alice' with SCRAM-SHA-256 failed" in fails(
        "quotas", "describe", "-b", s["secure"], "--command-config", s["wrong"])
    assert "no TLS connection" in fails("topics", "list", "-b", s["plain"], "--command-config", s["scram"])
    assert "--command-config" in fails("topics", "list", "--command-config", "/no/such.properties", code=2)


def test_users_are_added_listed_and_removed(secured: dict[str, str]) -> None:
    s = secured
    cmd = ("-b", s["secure"], "--command-config", s["admin"])
    ok("users", "add", "bob", "--password", "b0b", "--mechanism", "SCRAM-SHA-512", "--iterations", "4096", *cmd)
    assert ["bob", "SCRAM-SHA-512", "4096"] in rows(ok("users", "list", *cmd))
    assert "removed user 'bob' (SCRAM-SHA-512)" in ok("users", "remove", "bob", *cmd)
    assert "bob" not in ok("users", "list", *cmd)
    assert "no SCRAM user 'bob'" in fails("users", "remove", "bob", *cmd)
    assert "--iterations" in fails("users", "add", "x", "--password", "p", "--iterations", "10", *cmd, code=2)


def test_acls_are_added_listed_and_removed_in_kafka_acls_words(secured: dict[str, str]) -> None:
    cmd = ("-b", secured["secure"], "--command-config", secured["scram"])
    out = ok("acls", "add", "--allow-principal", "User:carol", "--operation", "Read", "--operation", "Describe",
             "--topic", "orders", "--group", "billing", *cmd)
    assert out.startswith("added 4 ACLs")
    ok("acls", "add", "--allow-principal", "User:carol", "--operation", "Write", "--topic", "ord",
       "--resource-pattern-type", "prefixed", *cmd)
    ok("acls", "add", "--allow-principal", "User:carol", "--operation", "IdempotentWrite", "--cluster", *cmd)
    ok("acls", "add", "--allow-principal", "User:carol", "--operation", "Write", "--transactional-id", "tx", *cmd)
    listed = rows(ok("acls", "list", "--principal", "User:carol", *cmd))
    assert ["User:carol", "ALLOW", "Write", "*", "topic", "ord", "prefixed"] in listed
    assert ["User:carol", "ALLOW", "IdempotentWrite", "*", "cluster", "kafka-cluster", "literal"] in listed
    assert ["User:carol", "ALLOW", "Write", "*", "transactional-id", "tx", "literal"] in listed
    assert len(listed) == 8
    assert ok("acls", "remove", "--allow-principal", "User:carol", "--topic", "orders", *cmd).startswith("removed 2 ACLs")
    assert len(rows(ok("acls", "list", "--principal", "User:carol", *cmd))) == 6
    assert "Reed" in fails("acls", "add", "--allow-principal", "User:x", "--operation", "Reed", "--topic", "t", *cmd, code=2)
    assert "User:NAME" in fails("acls", "add", "--allow-principal", "x", "--operation", "Read", "--topic", "t", *cmd, code=2)
    assert "name what to remove" in fails("acls", "remove", *cmd, code=2)


def test_quotas_are_altered_and_described_over_sasl_ssl(secured: dict[str, str]) -> None:
    scram = ("-b", secured["secure"], "--command-config", secured["scram"])
    plain = ("-b", secured["secure"], "--command-config", secured["admin"])
    assert "updated quotas of user=dave" in ok("quotas", "alter", "--user", "dave",
                                              "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048", *scram)
    ok("quotas", "alter", "--entity-type", "user", "--entity-default", "--add-config", "producer_byte_rate=10", *plain)
    assert rows(ok("quotas", "describe", "--user", "dave", *plain)) == [
        ["ENTITY", "QUOTA", "VALUE"], ["user=dave", "consumer_byte_rate", "2048"], ["user=dave", "producer_byte_rate", "1024"]]
    ok("quotas", "alter", "--user", "dave", "--delete-config", "consumer_byte_rate", *scram)
    assert ["user=dave", "consumer_byte_rate", "2048"] not in rows(ok("quotas", "describe", *scram))
    assert ["user=<default>", "producer_byte_rate", "10"] in rows(
        ok("quotas", "describe", "--entity-type", "user", "--entity-default", *scram))
    assert "nope is not a quota" in fails("quotas", "alter", "--user", "dave", "--add-config", "nope=1", *scram)


def test_secure_dev_turns_tls_scram_and_acls_on_in_one_command(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = ok("start", "--secure-dev", "--listen", "127.0.0.1:0", "--data-dir", str(data))
    try:
        assert "created the super user 'admin' with password" in out
        secure = re.search(r"SASL_SSL \(SCRAM\) on (\S+):", out)
        assert secure, out
        config = str(data / "client.properties")
        assert (data / "client.properties").stat().st_mode & 0o077 == 0
        assert "SASL_SSL" in (data / "client.properties").read_text()
        ok("topics", "create", "orders", "-b", secure[1], "--command-config", config)
        assert ["orders", "1", "1"] in rows(ok("topics", "list", "-b", secure[1], "--command-config", config))
        ok("users", "add", "alice", "--password", "alice-secret", "-b", secure[1], "--command-config", config)
        assert "cluster" in ok("acls", "add", "--allow-principal", "User:alice", "--operation", "Create", "--cluster",
                               "-b", secure[1], "--command-config", config)
    finally:
        ok("stop", "--data-dir", str(data))
    again = ok("start", "--secure-dev", "--listen", "127.0.0.1:0", "--data-dir", str(data))
    try:  # the same CA, the same admin: no new password
        assert "password" not in again
        secure = re.search(r"SASL_SSL \(SCRAM\) on (\S+):", again)
        assert secure and ["orders", "1", "1"] in rows(
            ok("topics", "list", "-b", secure[1], "--command-config", str(data / "client.properties")))
    finally:
        ok("stop", "--data-dir", str(data))
    assert tomyum_cmd("serve", "--secure-dev", "--advertised", "x:1", "--data-dir", str(data)).returncode == 2
