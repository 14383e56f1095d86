"""Shared fixtures: a real broker per test on an ephemeral loopback port.

Set ``TOMYUM_TEST_BOOTSTRAP=host:port`` to run the client tests against a broker you run
yourself (an Apache Kafka, say); tests that restart or kill the broker are then skipped.

Response building is strict in the whole suite (``TOMYUM_TEST_STRICT_RESPONSES``, see
:func:`tomyum.protocol.codec.strict_responses`).
``TOMYUM_TEST_PEER=kafka`` (set by ``make test-kafka``) says that broker is Apache Kafka: tests
marked ``tomyum_only`` — tomyum's deliberate differences, listed in docs/compatibility.md — are
then skipped too.
"""

from __future__ import annotations

import os
import tarfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from tomyum.protocol.codec import strict_responses
from tomyum.testing import BrokerProcess, ExternalBroker
from tomyum.testing.kafka_peer import SERVER_SETTINGS as KAFKA_PEER_SETTINGS

BrokerWith = Callable[[dict[str, str]], AbstractContextManager[BrokerProcess | ExternalBroker]]

# Strict response building everywhere in the suite, brokers in child processes included: a
# handler's key that no version of its response has raises instead of vanishing.
os.environ.setdefault("TOMYUM_TEST_STRICT_RESPONSES", "1")
strict_responses(True)


def data_dir(tmp_path: Path) -> Path:
    """The test broker's data dir; with ``TOMYUM_TEST_MIGRATED=1``, seeded with a data dir of
    the layout before the metadata log (topics.json), which the broker migrates at start."""
    path = tmp_path / "data"
    if os.environ.get("TOMYUM_TEST_MIGRATED"):
        with tarfile.open(Path(__file__).parent / "data" / "legacy-topics-json-data-dir.tar.gz") as tar:
            tar.extractall(tmp_path, filter="data")
    return path


def against_kafka() -> bool:
    return os.environ.get("TOMYUM_TEST_PEER") == "kafka"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not against_kafka():
        return
    for item in items:
        marker = item.get_closest_marker("tomyum_only")
        if marker is not None:
            item.add_marker(pytest.mark.skip(reason=f"tomyum only: {marker.kwargs['reason']}"))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess | ExternalBroker]:
    external = os.environ.get("TOMYUM_TEST_BOOTSTRAP")
    if external:
        yield ExternalBroker(external)
        return
    with BrokerProcess(data_dir(tmp_path)) as b:
        yield b


@pytest.fixture(scope="module")
def module_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess | ExternalBroker]:
    """One broker for a whole module, whose tests each use topics of their own (groups rebalance
    without the initial delay), or the external one."""
    external = os.environ.get("TOMYUM_TEST_BOOTSTRAP")
    if external:
        yield ExternalBroker(external)
        return
    with BrokerProcess(data_dir(tmp_path_factory.mktemp("module-broker")),
                       settings={"group.initial.rebalance.delay.ms": "0"}) as b:
        yield b


@pytest.fixture
def broker_with(request: pytest.FixtureRequest, tmp_path: Path) -> BrokerWith:
    """``with broker_with(settings) as b``: a tomyum broker started with these broker settings,
    or the external broker when it is the Kafka peer started with them (``KafkaPeer``'s
    ``SERVER_SETTINGS``). Tests marked ``restarts_broker`` get a tomyum broker only."""
    @contextmanager
    def start(settings: dict[str, str]) -> Iterator[BrokerProcess | ExternalBroker]:
        external = os.environ.get("TOMYUM_TEST_BOOTSTRAP")
        if not external:
            with BrokerProcess(data_dir(tmp_path), settings=settings) as b:
                yield b
            return
        if request.node.get_closest_marker("restarts_broker"):
            pytest.skip("needs a broker the test can restart")
        missing = {k: v for k, v in settings.items() if not against_kafka() or KAFKA_PEER_SETTINGS.get(k) != v}
        if missing:
            pytest.skip(f"needs a broker started with {missing}")
        yield ExternalBroker(external)
    return start


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker this test may kill and restart."""
    if os.environ.get("TOMYUM_TEST_BOOTSTRAP"):
        pytest.skip("needs a broker the test can restart")
    with BrokerProcess(data_dir(tmp_path)) as b:
        yield b


@pytest.fixture
def topic_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"
