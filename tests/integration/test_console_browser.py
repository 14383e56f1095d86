"""The web console (issue 23) in a real browser: Debian's headless Chromium driven by Playwright
(``executable_path``; Playwright's own browsers are never downloaded), against a real tomyum
broker that serves the console on ``console.listener``, with confluent-kafka clients producing
and consuming beside it. Screenshots go to build/screenshots/ (the main ones are in docs/).

Every wait is bounded: Playwright's auto-waiting with explicit timeouts, and polls with deadlines.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from tomyum.testing import BrokerProcess

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"
WAIT_MS = 15_000
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def chromium_path() -> str:
    path = os.environ.get("TOMYUM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Debian's chromium is not installed: `make install-test` installs it (apt-get install chromium)"
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrokerProcess, str]]:
    """A broker with its console on an ephemeral port, and the console's URL."""
    settings = {"console.listener": "127.0.0.1:0", "group.initial.rebalance.delay.ms": "0"}
    with BrokerProcess(tmp_path_factory.mktemp("console") / "data", settings=settings) as broker:
        match = re.search(r"console on (http://\S+)", broker.output())
        assert match, broker.output()
        yield broker, match[1]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"], timeout=60_000)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page at 1280 px whose console errors and uncaught exceptions fail the test."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(WAIT_MS)
    p = context.new_page()
    errors: list[str] = []
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("response", lambda r: errors.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None)
    p.on("dialog", lambda d: d.accept())
    yield p
    context.close()
    assert errors == [], f"browser console errors: {errors}"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def producer(broker: BrokerProcess) -> Producer:
    return Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})


def produce(broker: BrokerProcess, topic: str, records: list[tuple[str, int | None]]) -> None:
    p = producer(broker)
    for value, ts in records:
        p.produce(topic, value=value, **({"timestamp": ts} if ts is not None else {}))
    assert p.flush(10) == 0


def create_topic(page: Any, url: str, name: str, partitions: int = 1) -> None:
    page.goto(f"{url}/topics")
    page.fill("#create-topic [name=name]", name)
    page.fill("#create-topic [name=partitions]", str(partitions))
    page.click("#create-topic button")
    expect(page.locator(".notice")).to_contain_text(f"created topic {name}")


def iso_seconds(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000))


def test_walk_every_page(served: tuple[BrokerProcess, str], page: Any) -> None:
    broker, url = served
    topic = f"walk-{uuid.uuid4().hex[:6]}"
    produce(broker, topic, [(f'{{"n": {i}}}', None) for i in range(5)])
    for path, name, heading in [("/", "overview-first", "Overview"), ("/topics", "topics", "Topics"),
                                (f"/topics/{topic}", "topic", f"Topic {topic}"),
                                (f"/topics/{topic}/messages", "messages", f"Messages in {topic}"),
                                ("/groups", "groups", "Consumer groups"), ("/brokers", "brokers", "Broker 1"),
                                ("/transactions", "transactions", "Transactions"), ("/security", "security", "ACLs")]:
        page.goto(url + path)
        expect(page.locator("h1").first).to_contain_text(heading)
        shot(page, name)
    page.goto(f"{url}/topics")
    expect(page.locator("#topics")).to_contain_text(topic)
    expect(page.locator("#topics tr", has_text=topic).locator("td").nth(3)).to_have_text("5")
    expect(page.locator("#topics tr", has_text=topic).locator("td").nth(4)).to_have_text(re.compile(r"^\d+ B$"))
    page.goto(url)
    expect(page.locator("#topic-count")).not_to_have_text("0")
    expect(page.locator("#disk-used")).to_have_text(re.compile(r"^[\d.]+ (B|KiB|MiB)$"))
    expect(page.locator("#rate-now")).to_contain_text("records/s")
    page.set_viewport_size(PHONE)
    page.goto(f"{url}/topics/{topic}/messages")
    expect(page.locator(".record").first).to_be_visible()
    # usable on a phone: nothing wider than the screen but the tables' own scroll boxes
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "messages-phone")

    page.set_viewport_size(DESKTOP)
    page.goto(url)  # a first sample of the end offsets; the page takes the next itself
    produce(broker, topic, [(f'{{"n": {i}}}', None) for i in range(5, 105)])
    expect(page.locator("#rate-now")).to_have_text(re.compile(r"now [1-9][\d.]* records/s"))  # the 100 records
    assert page.locator("#sparkline polyline").get_attribute("points")
    shot(page, "overview")


def test_create_topic_produce_from_the_page_search_headers_and_seek_by_timestamp(
        served: tuple[BrokerProcess, str], page: Any) -> None:
    broker, url = served
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    create_topic(page, url, topic, partitions=2)
    base = (int(time.time()) - 200) * 1000
    produce(broker, topic, [(f'{{"order": {i}}}', base + i * 10_000) for i in range(10)])

    page.goto(f"{url}/topics/{topic}/messages")
    page.fill("#produce [name=key]", "customer-7")
    page.fill("#produce [name=value]", '{"order": "from the page", "total": 12.5}')
    page.fill("#produce [name=headers]", "trace-id=needle-4711\nsource=console")
    page.click("#produce button")
    expect(page.locator(".notice")).to_contain_text("produced to partition")
    expect(page.locator(".record .key")).to_have_text("key: customer-7")
    expect(page.locator(".record pre.value")).to_contain_text('"total": 12.5')  # pretty JSON

    page.goto(f"{url}/topics/{topic}/messages")
    page.fill("#browse [name=q]", "needle-4711")
    page.click("#browse button")
    expect(page.locator(".record")).to_have_count(1)
    expect(page.locator(".record .headers")).to_contain_text("trace-id=needle-4711")
    shot(page, "search-by-header")

    page.goto(f"{url}/topics/{topic}/messages")
    page.select_option("#browse [name=start]", "timestamp")
    page.fill("#browse [name=value]", iso_seconds(base + 60_000))
    page.select_option("#browse [name=partition]", "")
    page.click("#browse button")
    # orders 6..9 by their timestamps, and the one produced from the page (now)
    expect(page.locator(".record")).to_have_count(5)
    values = page.locator(".record pre.value").all_inner_texts()
    assert sorted(v for v in values if '"order": 6' in v or '"order": 9' in v), values
    assert not any(f'"order": {i}\n' in v for v in values for i in range(6)), values


def test_live_tail_receives_a_record_produced_by_a_client(served: tuple[BrokerProcess, str], page: Any) -> None:
    broker, url = served
    topic = f"tail-{uuid.uuid4().hex[:6]}"
    produce(broker, topic, [("before the tail", None)])
    page.goto(f"{url}/topics/{topic}/messages")
    page.click("#tail-toggle")
    expect(page.locator("#tail-toggle[data-ready='1']")).to_have_count(1)
    produce(broker, topic, [("hello from confluent-kafka", None)])
    expect(page.locator("#tail .record pre.value")).to_have_text("hello from confluent-kafka")
    expect(page.locator("#tail .record")).to_have_count(1)  # not the record from before
    shot(page, "live-tail")


def open_transaction_seen(page: Any, url: str, bootstrap: str, topic: str, timeout_s: float) -> Any:
    """A topic of two partitions created on the page and a transaction left open on it (3,000
    bytes to partition 1), seen Ongoing on the Transactions page and as partition 1's active
    producer on the topic's page; the caller ends it (the helper aborts it if a check fails)."""
    create_topic(page, url, topic, partitions=2)
    txn = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"{topic}-writer", "linger.ms": 0})
    txn.init_transactions(timeout_s)
    txn.begin_transaction()
    txn.produce(topic, value=b"x" * 3000, partition=1)
    assert txn.flush(10) == 0
    try:
        page.goto(f"{url}/transactions")
        row = page.locator("#transactions tr", has_text=f"{topic}-writer")
        expect(row.locator("td").nth(1)).to_have_text("Ongoing")
        expect(row.locator("td").nth(6)).to_have_text(f"{topic}-1")
        page.goto(f"{url}/topics/{topic}")
        expect(page.locator("#producers tbody tr")).to_have_count(1)
        expect(page.locator("#producers tbody td").first).to_have_text("1")  # on partition 1
        expect(page.locator("#producers tbody td").nth(5)).to_have_text("0")  # the transaction's first offset
        expect(page.locator("#partitions tbody tr").nth(1).locator("td").nth(6)).to_have_text(
            re.compile(r"^[23]\.\d KiB$"))
    except BaseException:
        txn.abort_transaction(timeout_s)
        raise
    return txn


def test_sizes_on_disk_an_open_transaction_and_its_producer(served: tuple[BrokerProcess, str], page: Any) -> None:
    broker, url = served
    topic = f"pay-{uuid.uuid4().hex[:6]}"
    txn = open_transaction_seen(page, url, broker.bootstrap, topic, 10)
    try:
        expect(page.locator("#partitions tbody tr").nth(0).locator("td").nth(6)).to_have_text("0 B")
        shot(page, "topic-producers")
        page.goto(f"{url}/transactions")
        page.select_option("#filter-transactions [name=state]", "Ongoing")
        page.click("#filter-transactions button")
        expect(page.locator("#transactions tbody tr", has_text=f"{topic}-writer")).to_have_count(1)
        shot(page, "transactions")
    finally:
        txn.abort_transaction(10)
        del txn  # closed now, not when the broker has gone
    page.goto(f"{url}/transactions")
    expect(page.locator("#transactions tr", has_text=f"{topic}-writer").locator("td").nth(1)).to_have_text(
        "CompleteAbort")
    page.goto(f"{url}/topics")
    expect(page.locator("#topics tr", has_text=topic).locator("td").nth(4)).to_have_text(re.compile(r"KiB$"))
    page.goto(f"{url}/brokers")
    expect(page.locator("#log-dirs tbody tr")).to_have_count(1)
    expect(page.locator("#log-dirs tbody td").nth(4)).to_have_text(re.compile(r"B$"))  # usable on the volume
    shot(page, "brokers-log-dirs")


def test_reset_a_stopped_groups_offsets_to_a_timestamp(served: tuple[BrokerProcess, str], page: Any) -> None:
    broker, url = served
    topic = f"events-{uuid.uuid4().hex[:6]}"
    group = f"billing-{uuid.uuid4().hex[:6]}"
    base = (int(time.time()) - 200) * 1000
    produce(broker, topic, [(f"event {i}", base + i * 10_000) for i in range(10)])
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        seen = 0
        deadline = time.monotonic() + 30
        while seen < 10 and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and m.error() is None:
                seen += 1
        assert seen == 10
        consumer.commit(asynchronous=False)
        page.goto(f"{url}/groups/{group}")
        expect(page.locator("#group-state")).to_have_text("STABLE")
        expect(page.locator("#members")).to_contain_text(f"{topic}-0")  # the member's assignment
        expect(page.locator("#total-lag")).to_have_text("0")
        page.select_option("#reset [name=to]", "timestamp")
        page.fill("#reset [name=value]", iso_seconds(base + 50_000))
        page.click("#reset button[value='0']")
        page.click("#apply-reset")
        # Kafka's rule: an active group's offsets are not reset
        expect(page.locator(".error")).to_contain_text("can only be reset if the group")
    finally:
        consumer.close()

    page.goto(f"{url}/groups")
    expect(page.locator("#groups tr", has_text=group)).to_contain_text("EMPTY")
    page.goto(f"{url}/groups/{group}")
    page.select_option("#reset [name=to]", "timestamp")
    page.fill("#reset [name=value]", iso_seconds(base + 50_000))
    page.click("#reset button[value='0']")
    expect(page.locator("#plan tbody tr")).to_have_count(1)
    expect(page.locator("#plan tbody td").nth(3)).to_have_text("5")  # the preview: new offset 5
    shot(page, "reset-preview")
    page.click("#apply-reset")
    expect(page.locator(".notice")).to_contain_text(f"offsets of {group} reset to timestamp")
    expect(page.locator("#total-lag")).to_have_text("5")

    page.goto(f"{url}/groups?sort=lag&desc=1&state=EMPTY")
    expect(page.locator("#groups tr", has_text=group).locator("td.lag")).to_have_text("5")
    page.goto(f"{url}/groups?min_lag=6")
    expect(page.locator("#groups")).not_to_contain_text(group)
    page.goto(f"{url}/groups/{group}")
    page.click("#delete-group button")
    expect(page.locator(".notice")).to_contain_text(f"deleted group {group}")


def test_edit_a_topic_config_add_partitions_delete_records_and_the_topic(
        served: tuple[BrokerProcess, str], page: Any) -> None:
    broker, url = served
    topic = f"cfg-{uuid.uuid4().hex[:6]}"
    create_topic(page, url, topic)
    page.fill("#edit-config [name=key]", "retention.ms")
    page.fill("#edit-config [name=value]", "3600000")
    page.click("#edit-config button")
    expect(page.locator(".notice")).to_contain_text("retention.ms = 3600000")
    expect(page.locator("#configs tr.override", has_text="retention.ms")).to_contain_text("3600000")
    shot(page, "topic-configs")

    page.fill("#edit-config [name=key]", "retention.ms")
    page.select_option("#edit-config [name=op]", "delete")
    page.click("#edit-config button")
    expect(page.locator(".notice")).to_contain_text("retention.ms reset to its default")
    expect(page.locator("#configs tr", has_text="retention.ms").first).not_to_contain_text("3600000")

    page.fill("#add-partitions [name=total]", "3")
    page.click("#add-partitions button")
    expect(page.locator("#partitions tbody tr")).to_have_count(3)

    produce(broker, topic, [(f"r{i}", None) for i in range(4)])
    page.reload()
    page.fill("#delete-records [name=before]", "")
    page.click("#delete-records button")
    expect(page.locator(".notice")).to_have_text("records deleted")
    page.goto(f"{url}/topics")
    expect(page.locator("#topics tr", has_text=topic).locator("td").nth(3)).to_have_text("0")

    page.goto(f"{url}/topics/{topic}")
    page.fill("#edit-config [name=key]", "retention.ms")
    page.fill("#edit-config [name=value]", "not a number")
    page.click("#edit-config button")
    expect(page.locator(".error")).to_contain_text("INVALID_CONFIG")  # Kafka's error, in one line

    page.click("#delete-topic button")
    expect(page.locator(".notice")).to_contain_text(f"deleted topic {topic}")
    expect(page.locator("#topics")).not_to_contain_text(topic)
