"""The console as a SASL principal (issue 23): ``tomyum console --command-config`` and the console
of ``tomyum serve`` with ``console.client.config`` log in with those credentials over SASL_SSL, and
their pages show what the principal's ACLs allow, no more; kafka-python's calls (sizes on disk,
transactions, producers) log in the same way."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.integration.test_cli import fails, ok
from tests.integration.test_cli_security import PLAIN, properties, secured
from tests.integration.test_console_cli import get, start_console
from tests.integration.test_interrupts import interrupt
from tests.integration.test_security import PLAIN_JAAS, listeners, ports
from tomyum.client._properties import client_properties
from tomyum.security.certs import LocalCA
from tomyum.testing import BrokerProcess

__all__ = ["secured"]  # the fixture, imported to be used here

pytestmark = pytest.mark.timeout(120)


def test_console_shows_only_what_the_principals_acls_allow(secured: dict[str, str], tmp_path: Path) -> None:
    s = secured
    admin = ("-b", s["secure"], "--command-config", s["admin"])
    ok("topics", "create", "carol-visible", *admin)
    ok("topics", "create", "carol-hidden", *admin)
    ok("users", "add", "carol", "--password", "carol-secret", *admin)
    ok("acls", "add", "--allow-principal", "User:carol", "--operation", "Describe", "--operation", "Read",
       "--topic", "carol-visible", *admin)
    carol = tmp_path / "carol.properties"
    carol.write_text(Path(s["scram"]).read_text().replace('username="alice" password="alice-secret"',
                                                          'username="carol" password="carol-secret"'))
    child, url = start_console(s["secure"], "--command-config", str(carol))
    try:
        status, html = get(f"{url}/topics")
        assert status == 200 and "carol-visible" in html and "carol-hidden" not in html
        assert re.search(r'id="disk-unavailable">Sizes on disk unavailable: CLUSTER_AUTHORIZATION_FAILED', html)
        status, html = get(f"{url}/topics/carol-hidden")
        assert status == 502 and "UNKNOWN_TOPIC_OR_PART" in html
        status, html = get(f"{url}/security")  # SCRAM users need Describe on the cluster: said, in Kafka's words
        assert status == 200 and "CLUSTER_AUTHORIZATION_FAILED" in html
    finally:
        interrupt(child)


@pytest.fixture
def admin_console(tmp_path: Path) -> Iterator[dict[str, str]]:
    """``tomyum serve`` with its console logged in over SASL_SSL as the PLAIN user admin (the one
    super user: ANONYMOUS, on the PLAINTEXT listener, may do nothing) by ``console.client.config``."""
    ca = LocalCA(tmp_path / "ca")
    admin = properties(tmp_path / "admin.properties", ca, PLAIN.format("admin", "admin-secret"), "PLAIN")
    settings = {**listeners(PLAIN="PLAINTEXT", SECURE="SASL_SSL"),
                "ssl.keystore.location": str(ca.broker().keystore), "ssl.truststore.location": str(ca.cert_path),
                "sasl.enabled.mechanisms": "PLAIN", "listener.name.secure.plain.sasl.jaas.config": PLAIN_JAAS,
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users": "User:admin", "console.listener": "127.0.0.1:0", "console.client.config": admin}
    with BrokerProcess(tmp_path / "data", settings=settings) as b:
        match = re.search(r"console on (http://\S+)", b.output())
        assert match, b.output()
        p = ports(b)
        yield {"url": match[1], "admin": admin, "plain": f"127.0.0.1:{p['PLAIN']}",
               "secure": f"127.0.0.1:{p['SECURE']}"}


def test_the_console_of_serve_acts_as_the_principal_of_console_client_config(admin_console: dict[str, str]) -> None:
    s = admin_console
    ok("topics", "create", "ledger", "--partitions", "2", "-b", s["secure"], "--command-config", s["admin"])
    assert "ledger" not in ok("topics", "list", "-b", s["plain"])  # ANONYMOUS sees nothing
    producer = Producer({**client_properties(s["admin"]), "bootstrap.servers": s["secure"],
                         "transactional.id": "ledger-writer"})
    producer.init_transactions(10)
    producer.begin_transaction()
    producer.produce("ledger", value=b"x" * 1000, partition=1)
    assert producer.flush(10) == 0
    try:
        status, html = get(f"{s['url']}/topics")
        assert status == 200 and "/topics/ledger" in html
        assert "disk-unavailable" not in html  # DescribeLogDirs as admin, by kafka-python over SASL_SSL
        status, html = get(f"{s['url']}/topics/ledger")
        assert status == 200 and re.search(r'data-bytes="([1-9]\d{3,})"', html), html
        assert re.search(r"<table id=\"producers\">.*<tr><td>1</td>", html, re.S), html
        status, html = get(f"{s['url']}/transactions")
        assert status == 200 and re.search(r"<td>ledger-writer</td><td>Ongoing</td>.*<td>ledger-1</td>", html), html
        status, html = get(f"{s['url']}/brokers")
        assert status == 200 and 'id="log-dirs"' in html and "log-dirs-unavailable" not in html
    finally:
        producer.abort_transaction(10)


def test_an_unreadable_console_client_config_stops_serve_in_one_line(tmp_path: Path) -> None:
    line = fails("serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
                 "--set", "console.listener=127.0.0.1:0", "--set", f"console.client.config={tmp_path}/none.properties",
                 code=2)
    assert line == f"error: console.client.config: cannot read {tmp_path}/none.properties: No such file or directory"


def test_secure_dev_can_point_its_console_at_the_admin_properties_it_writes(tmp_path: Path) -> None:
    """The first start writes client.properties after the broker is up: the console reads it then."""
    data = tmp_path / "data"
    out = ok("start", "--secure-dev", "--listen", "127.0.0.1:0", "--data-dir", str(data),
             "--set", "console.listener=127.0.0.1:0", "--set", f"console.client.config={data / 'client.properties'}")
    try:
        secure = re.search(r"SASL_SSL \(SCRAM\) on (\S+):", out)
        assert secure, out
        ok("topics", "create", "admins-only", "-b", secure[1], "--command-config", str(data / "client.properties"))
        match = re.search(r"console on (http://\S+)", (data / "tomyum.log").read_text())
        assert match, out
        status, html = get(f"{match[1]}/topics")
        assert status == 200 and "/topics/admins-only" in html and "disk-unavailable" not in html
        status, html = get(f"{match[1]}/brokers")
        assert status == 200 and f"<td>{data.resolve()}</td>" in html
    finally:
        ok("stop", "--data-dir", str(data))
