"""The console as a SASL principal (issue 23): ``tomyum console --command-config`` logs in with
those credentials over SASL_SSL, and its pages show what the principal's ACLs allow, no more."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_cli import ok
from tests.integration.test_cli_security import secured
from tests.integration.test_console_cli import get, start_console
from tests.integration.test_interrupts import interrupt

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
        status, html = get(f"{url}/topics/carol-hidden")
        assert status == 502 and "UNKNOWN_TOPIC_OR_PART" in html
        status, html = get(f"{url}/security")  # SCRAM users need Describe on the cluster: said, in Kafka's words
        assert status == 200 and "CLUSTER_AUTHORIZATION_FAILED" in html
    finally:
        interrupt(child)
