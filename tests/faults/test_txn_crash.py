"""kill -9 under a transactional load: a confluent-kafka producer commits 5-record
transactions over two partitions in a loop while the broker is killed and restarted three
times. Afterwards a read_committed consumer sees every transaction whole or not at all —
never part of one — and every transaction whose commit returned is there."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.test_exactly_once import create, read
from tomyum.testing import BrokerProcess, wait_until

HERE = Path(__file__).parent


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_transactions_stay_atomic_through_kill_9(tmp_path: Path, topic_name: str) -> None:
    with BrokerProcess(tmp_path / "data", settings={
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500"}) as broker:
        create(broker.bootstrap, topic_name, 2)
        worker = subprocess.Popen([sys.executable, str(HERE / "txn_worker.py"), broker.bootstrap, topic_name],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        committed: list[int] = []
        try:
            assert worker.stdout is not None

            def commits_reach(n: int) -> bool:
                line = worker.stdout.readline()
                if line.startswith("COMMITTED"):
                    committed.append(int(line.split()[1]))
                assert worker.poll() is None, "the worker died"
                return len(committed) >= n

            for cycle in range(3):
                target = len(committed) + 10
                wait_until(lambda: commits_reach(target), 120, interval=0, what=f"commits before kill {cycle}")
                broker.kill()
                broker.start()
            target = len(committed) + 10
            wait_until(lambda: commits_reach(target), 120, interval=0, what="commits after the last restart")
        finally:
            worker.terminate()
            try:
                out, _ = worker.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                out, _ = worker.communicate(timeout=10)
        committed += [int(line.split()[1]) for line in out.splitlines() if line.startswith("COMMITTED")]
        records = read(broker.bootstrap, topic_name, 2, "read_committed", len(committed) * 5)
    per_txn = Counter(m.key() for m in records)
    assert set(per_txn.values()) == {5}, f"partial transactions: {[k for k, n in per_txn.items() if n != 5][:5]}"
    for n in committed:
        assert per_txn[b"txn%d" % n] == 5, f"transaction {n} was committed but is missing"
    assert len(set(m.value() for m in records)) == len(records), "a record is there twice"
