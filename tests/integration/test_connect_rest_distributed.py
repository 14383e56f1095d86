"""The REST tests of tomyum connect (tests/integration/test_connect_rest.py), unchanged, against a
cluster of two ``tomyum connect distributed`` workers: the client talks to the worker that does
not lead, so every write is forwarded to the leader and every read answered from the topics.

Only the ``connect`` fixture differs (as in tests/interop/test_connect_kafka_worker.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.integration.test_connect_rest import *  # noqa: F403 - the same tests, run here
from tests.integration.test_connect_rest import Connect
from tomyum.testing import BrokerProcess, ExternalBroker, wait_until
from tomyum.testing.connect import ConnectProcess

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


@pytest.fixture
def connect(broker: BrokerProcess | ExternalBroker, tmp_path: Path) -> Iterator[Connect]:  # noqa: F811
    tag = uuid.uuid4().hex[:6]
    props = {"group.id": f"rest-{tag}", "config.storage.topic": f"cfg-{tag}", "offset.storage.topic": f"off-{tag}",
             "status.storage.topic": f"sts-{tag}", "config.storage.replication.factor": "1",
             "offset.storage.replication.factor": "1", "status.storage.replication.factor": "1",
             "heartbeat.interval.ms": "1000"}
    with ExitStack() as stack:
        workers = [stack.enter_context(ConnectProcess(tmp_path / f"worker-{i}", broker.bootstrap, worker=props,
                                                      mode="distributed")) for i in range(2)]

        def follower() -> ConnectProcess | None:
            """The worker that does not lead, once both are in one generation."""
            leaders = set()
            for w in workers:
                joined = [line for line in w.output().splitlines() if "Joined group at generation" in line]
                if not joined:
                    return None
                leaders.add(joined[-1].split(" at http://")[1].split("/")[0])
            if len(leaders) != 1:
                return None
            [leader] = leaders
            return next((w for w in workers if not w.url.endswith(leader)), None)
        client = Connect(wait_until(follower, timeout=60, interval=0.1, what="two workers, one leader").url,
                         broker.bootstrap, tmp_path)
        yield client
        client.close()
