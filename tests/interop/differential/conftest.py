"""Two brokers side by side for the whole differential run: tomyum and the Apache Kafka peer
(``tomyum.testing.kafka_peer``, its jars fetched with Maven on first use), configured alike where
the sessions can tell (groups that form at once, one partition by default)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.differential.harness import Conn
from tomyum.testing import BrokerProcess, wait_until
from tomyum.testing.kafka_peer import KafkaPeer

#: tomyum's side of kafka_peer.SERVER_SETTINGS (the keys a session can observe)
TOMYUM_SETTINGS = {
    "group.initial.rebalance.delay.ms": "0",
    "group.consumer.heartbeat.interval.ms": "500",
    "num.partitions": "1",
    "auto.create.topics.enable": "true",
    "log.retention.check.interval.ms": "100",
}


@pytest.fixture(scope="session")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``{"tomyum": bootstrap, "kafka": bootstrap}``, both stopped when the run ends."""
    root: Path = tmp_path_factory.mktemp("differential")
    with BrokerProcess(root / "tomyum" / "data", settings=TOMYUM_SETTINGS) as tomyum, \
            KafkaPeer(root / "kafka") as kafka:
        bootstraps = {"tomyum": tomyum.bootstrap, "kafka": kafka.bootstrap}
        for peer, bootstrap in bootstraps.items():
            warm_up(Conn(bootstrap, peer))
        yield bootstraps


def warm_up(c: Conn) -> None:
    """Kafka creates its coordinators' internal topics on first use and answers
    COORDINATOR_NOT_AVAILABLE / LOAD_IN_PROGRESS meanwhile: get that behind both brokers."""
    try:
        for key_type in (0, 1):
            wait_until(lambda: c.send(10, 4, record=False, key_type=key_type, coordinator_keys=["warm-up"])
                       ["coordinators"][0]["error_code"] == 0, timeout=60, interval=0.2, what=f"{c.peer}'s coordinator")
        wait_until(lambda: c.send(22, 4, record=False, transactional_id=None, transaction_timeout_ms=60000,
                                  producer_id=-1, producer_epoch=-1)["error_code"] == 0,
                   timeout=60, interval=0.2, what=f"{c.peer}'s producer ids")
        wait_until(lambda: c.send(22, 4, record=False, transactional_id="warm-up", transaction_timeout_ms=60000,
                                  producer_id=-1, producer_epoch=-1)["error_code"] == 0,
                   timeout=60, interval=0.2, what=f"{c.peer}'s transaction coordinator")
    finally:
        c.close()
