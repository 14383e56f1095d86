"""The web console against Apache Kafka 4.4 (issue 23): ``tomyum console --bootstrap`` is a plain
Kafka client, so the same browser walk as test_console_browser.py, read-mostly, works against
the real thing (KafkaPeer: the jars are fetched with Maven on first use)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from tests.integration.test_cli import _env
from tests.integration.test_console_browser import (
    browser,
    create_topic,
    expect,
    iso_seconds,
    open_transaction_seen,
    page,
    shot,
)
from tomyum.testing.kafka_peer import KafkaPeer

__all__ = ["browser", "page"]  # the fixtures, imported to be used here

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.fixture(scope="module")
def kafka_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KafkaPeer, str]]:
    with KafkaPeer(tmp_path_factory.mktemp("kafka")) as peer:
        log = tmp_path_factory.mktemp("console") / "console.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "tomyum", "console", "-b", peer.bootstrap,
                                     "--listen", "127.0.0.1:0"], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=_env())
        try:
            deadline = time.monotonic() + 30
            match = None
            while match is None and proc.poll() is None and time.monotonic() < deadline:
                match = re.search(r"console on (http://\S+)", log.read_text())
                if match is None:
                    time.sleep(0.1)  # polling the log for the ready line, within the deadline
            assert match, log.read_text()
            yield peer, match[1]
        finally:
            proc.terminate()
            proc.wait(15)


def test_console_walk_against_apache_kafka(kafka_console: tuple[KafkaPeer, str], page: Any) -> None:
    peer, url = kafka_console
    topic = f"kafka-{uuid.uuid4().hex[:6]}"
    group = f"kafka-group-{uuid.uuid4().hex[:6]}"
    create_topic(page, url, topic, partitions=2)
    base = (int(time.time()) - 200) * 1000
    p = Producer({"bootstrap.servers": peer.bootstrap})
    for i in range(10):
        p.produce(topic, value=f'{{"n": {i}}}', headers=[("trace", f"id-{i}")], timestamp=base + i * 10_000)
    assert p.flush(10) == 0
    c = Consumer({"bootstrap.servers": peer.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    try:
        c.subscribe([topic])
        seen, deadline = 0, time.monotonic() + 60
        while seen < 10 and time.monotonic() < deadline:
            m = c.poll(0.5)
            seen += m is not None and m.error() is None
        assert seen == 10
        c.commit(asynchronous=False)
    finally:
        c.close()

    for path, heading in [("/", "Overview"), ("/topics", "Topics"), (f"/topics/{topic}", f"Topic {topic}"),
                          ("/groups", "Consumer groups"), ("/brokers", "Broker"), ("/transactions", "Transactions"),
                          ("/security", "ACLs")]:
        page.goto(url + path)
        expect(page.locator("h1").first).to_contain_text(heading)
    shot(page, "kafka-security")
    page.goto(f"{url}/topics/{topic}/messages?q=id-7")
    expect(page.locator(".record")).to_have_count(1)
    expect(page.locator(".record pre.value")).to_contain_text('"n": 7')
    page.goto(f"{url}/topics/{topic}/messages?start=timestamp&value={iso_seconds(base + 80_000)}")
    expect(page.locator(".record")).to_have_count(2)
    page.goto(f"{url}/groups/{group}")
    expect(page.locator("#group-state")).to_have_text("EMPTY")
    expect(page.locator("#total-lag")).to_have_text("0")
    page.select_option("#reset [name=to]", "earliest")
    page.click("#reset button[value='0']")
    expect(page.locator("#plan tbody tr")).to_have_count(2)
    shot(page, "kafka-group")


def test_console_sizes_transactions_and_producers_against_apache_kafka(kafka_console: tuple[KafkaPeer, str],
                                                                       page: Any) -> None:
    """What the console asks through kafka-python (DescribeLogDirs, ListTransactions,
    DescribeTransactions, DescribeProducers) works against Apache Kafka too."""
    peer, url = kafka_console
    topic = f"kafka-txn-{uuid.uuid4().hex[:6]}"
    txn = open_transaction_seen(page, url, peer.bootstrap, topic, 30)
    try:
        shot(page, "kafka-topic-producers")
    finally:
        txn.commit_transaction(30)
        del txn
    # Kafka answers EndTxn in PrepareCommit and completes once its markers are written: the
    # page is reloaded (within a deadline) until it says so
    state, deadline = "", time.monotonic() + 30
    while state != "CompleteCommit" and time.monotonic() < deadline:
        page.goto(f"{url}/transactions")
        state = page.locator("#transactions tr", has_text=f"{topic}-writer").locator("td").nth(1).inner_text()
        if state != "CompleteCommit":
            time.sleep(0.2)  # polling the page, within the deadline
    assert state == "CompleteCommit"
    page.goto(f"{url}/brokers")
    expect(page.locator("#log-dirs tbody tr")).to_have_count(1)
    expect(page.locator("#log-dirs tbody td").nth(3)).to_have_text(re.compile(r"B$"))
    page.goto(f"{url}/topics")
    expect(page.locator("#topics tr", has_text=topic).locator("td").nth(4)).to_have_text(re.compile(r"KiB$"))

