"""``tomyum console --bootstrap``: the web console as a command, a plain Kafka client of any
broker (issue 23); its pages over HTTP, its errors in one line, Ctrl-C. The pages in a
browser: test_console_browser.py."""

from __future__ import annotations

import io
import re
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pexpect
import pytest
from confluent_kafka import Producer

from tests.integration.test_cli import _env, fails, tomyum_cmd
from tests.integration.test_interrupts import interrupt
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess

pytestmark = pytest.mark.timeout(90)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:  # noqa: S310 - the test's own console
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def start_console(bootstrap: str, *args: str) -> tuple[pexpect.spawn, str]:
    """``tomyum console`` on a free port, at a terminal (Ctrl-C stops it), and its URL."""
    child = pexpect.spawn(sys.executable, ["-m", "tomyum", "console", "-b", bootstrap, "--listen", "127.0.0.1:0", *args],
                          env=_env(), encoding="utf-8", timeout=30)
    child.logfile_read = io.StringIO()
    child.expect(r"console on (http://[\d.]+:\d+) for ")
    return child, child.match.group(1)


def test_console_serves_the_pages_of_any_broker_and_stops_on_ctrl_c(broker: BrokerProcess | ExternalBroker) -> None:
    topic = f"console-{uuid.uuid4().hex[:6]}"
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce(topic, key="k", value='{"hello": "console"}', headers=[("trace", "t-1")])
    assert p.flush(10) == 0
    child, url = start_console(broker.bootstrap)
    for path in ("/", "/topics", f"/topics/{topic}", "/groups", "/brokers", "/security"):
        status, _ = get(url + path)
        assert status == 200, path
    status, html = get(url + "/")  # a client of any broker: no broker version nor uptime to show
    assert "Kafka&#39;s protocol" in html or "Kafka's protocol" in html, html
    assert 'id="broker-about"' not in html
    status, html = get(f"{url}/topics/{topic}/messages?q=t-1")
    assert status == 200 and "trace=t-1" in html and "&#34;hello&#34;: &#34;console&#34;" in html
    status, html = get(f"{url}/topics/no-such-{topic}")
    assert status == 502 and "UNKNOWN_TOPIC_OR_PART" in html
    status, html = get(f"{url}/topics/{topic}/messages?start=timestamp&value=yesterday")
    assert status == 200 and "is neither milliseconds nor" in html
    interrupt(child)


def test_the_console_inside_serve_shows_its_brokers_version_and_uptime(tmp_path: Path) -> None:
    from tomyum import __version__

    with BrokerProcess(tmp_path / "data", settings={"console.listener": "127.0.0.1:0"}) as b:
        match = re.search(r"console on (http://\S+)", b.output())
        assert match, b.output()
        status, html = get(match[1] + "/")
    assert status == 200
    about = re.search(r'<p id="broker-about">Broker tomyum ([^,]+), up for (\d+) s\.</p>', html)
    assert about, html
    assert about[1] == __version__ and 0 <= int(about[2]) < 120


def test_console_with_an_unreachable_broker_says_so_in_one_line() -> None:
    line = fails("console", "-b", "127.0.0.1:1", "--timeout", "1")
    assert "127.0.0.1:1" in line


def test_console_with_a_bad_listen_address_says_so_in_one_line(broker: BrokerProcess | ExternalBroker) -> None:
    assert fails("console", "-b", broker.bootstrap, "--listen", "nowhere", code=2) == \
        "error: --listen: 'nowhere' is not HOST:PORT"


def test_serve_with_a_bad_console_listener_says_so_in_one_line(tmp_path: Path) -> None:
    proc = tomyum_cmd("serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
                      "--set", "console.listener=nowhere")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == "error: console.listener: 'nowhere' is not HOST:PORT", proc.stderr
    assert "Traceback" not in proc.stderr


def post(url: str) -> tuple[int, str]:
    """A form POST (the console answers 303 to the page it names; urllib follows it)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=20) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.mark.slow
def test_the_connectors_page_shows_and_drives_a_connect_workers_connectors(
        broker: BrokerProcess | ExternalBroker, tmp_path: Path) -> None:
    name, topic = f"lines-{uuid.uuid4().hex[:6]}", f"lines-{uuid.uuid4().hex[:6]}"
    source = tmp_path / "lines.txt"
    source.write_text("one\ntwo\n", encoding="utf-8")
    config = {"name": name, "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
              "file": str(source), "topic": topic, "tasks.max": "1"}
    with ConnectProcess(tmp_path / "worker", broker.bootstrap, connectors=[config]) as worker:
        child, url = start_console(broker.bootstrap, "--connect", worker.url)

        def row() -> str:
            status, html = get(url + "/connectors")
            assert status == 200, html
            found = re.search(rf'<tr data-name="{name}">(.*?)</tr>', html, re.S)
            return found[1] if found else ""

        def state() -> str:
            found = re.search(r'<td class="state"[^>]*>(\w+)</td>', row())
            return found[1] if found else ""
        wait_until(lambda: state() == "RUNNING" and "0: RUNNING" in row(), timeout=30, what="the connector RUNNING")
        assert "FileStreamSourceConnector" in row() and topic in row()
        for action, want in (("pause", "PAUSED"), ("resume", "RUNNING"), ("stop", "STOPPED"), ("resume", "RUNNING")):
            status, html = post(f"{url}/connectors/{name}/{action}")
            assert status == 200 and f"{action} {name}: done" in html, html
            wait_until(lambda want=want: state() == want, timeout=30, what=f"the connector {want}")  # type: ignore[misc]
        status, html = post(f"{url}/connectors/no-such-{name}/pause")
        assert status == 200 and "HTTP 404" in html and f"no-such-{name}" in html
        status, html = post(f"{url}/connectors/{name}/delete")
        assert status == 200 and f"delete {name}: done" in html
        wait_until(lambda: row() == "", timeout=30, what="the connector gone from the page")
        interrupt(child)
    # the worker has gone: the page says so in one line, and the rest of the console works
    child, url = start_console(broker.bootstrap, "--connect", worker.url)
    status, html = get(url + "/connectors")
    assert status == 200 and 'id="connect-error"' in html and "did not answer" in html
    assert get(url + "/topics")[0] == 200
    interrupt(child)
    # without --connect the page says how to give one
    child, url = start_console(broker.bootstrap)
    status, html = get(url + "/connectors")
    assert status == 200 and 'id="no-connect"' in html and "--connect" in html
    interrupt(child)


def test_console_with_a_connect_url_that_is_not_one_says_so_in_one_line(broker: BrokerProcess | ExternalBroker) -> None:
    assert fails("console", "-b", broker.bootstrap, "--connect", "localhost:8083", code=2) == \
        "error: --connect: 'localhost:8083' is not an http:// or https:// URL"
