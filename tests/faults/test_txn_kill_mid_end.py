"""Transactional producers SIGKILLed at random moments of ``commit_transaction()`` and
``abort_transaction()`` (issue 17): a client that dies mid-request must not leave its
transaction half done. Several transactional ids run rounds in parallel, each round a new
confluent-kafka process that initialises, writes one transaction and is killed somewhere in
ending it. Every next ``init_transactions()`` with the same id succeeds within the transaction
timeout (a transaction stuck in PrepareCommit would answer CONCURRENT_TRANSACTIONS forever),
and a read_committed consumer sees each transaction whole or not at all — the ones whose
commit returned whole, the ones whose abort returned not at all — and is never stalled."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from tests.integration.test_exactly_once import create
from tomyum.testing import BrokerProcess

HERE = Path(__file__).parent
IDS = 6
ROUNDS = 10  # per id: 60 rounds, each killed, then one that must finish
TXN_TIMEOUT_MS = 4000
#: the final, unkilled round's transaction timeout: it must not be aborted for being slow when
#: the machine is loaded (its init is still held to TXN_TIMEOUT_MS)
LAST_TXN_TIMEOUT_MS = 30000
RECORDS = 4
#: a round is killed this long at most after it starts ending its transaction: an EndTxn
#: takes about 2-3 ms here, so about half the kills land inside one
KILL_WINDOW_S = 0.005


@dataclass
class Outcomes:
    committed: set[str] = field(default_factory=set)  # commit_transaction() returned
    aborted: set[str] = field(default_factory=set)  # abort_transaction() returned, or never ended
    killed: set[str] = field(default_factory=set)  # killed inside commit/abort: either way
    failed: dict[str, str] = field(default_factory=dict)  # commit/abort raised: either way, and why
    init_ms: list[int] = field(default_factory=list)


def _round(bootstrap: str, topic: str, tid: str, key: str, end: str, kill_after_s: float | None,
           flush: bool, out: Outcomes) -> None:
    timeout_ms = TXN_TIMEOUT_MS if kill_after_s is not None else LAST_TXN_TIMEOUT_MS
    args = [sys.executable, str(HERE / "txn_end_worker.py"), bootstrap, topic, tid, key, end, str(timeout_ms)]
    proc = subprocess.Popen([*args, *(["flush"] if flush else [])], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("INIT "), f"{tid}: init_transactions() failed: {line.strip()!r}"
        out.init_ms.append(int(line.split()[1]))
        assert proc.stdout.readline().strip() == "ENDING"
        if kill_after_s is not None:
            try:
                proc.wait(timeout=kill_after_s)  # whatever it got done by then
            except subprocess.TimeoutExpired:
                proc.kill()
        rest = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    if "COMMITTED" in rest:
        out.committed.add(key)
    elif "ABORTED" in rest:
        out.aborted.add(key)
    elif "FAILED" in rest:
        out.failed[key] = rest.strip()
    else:
        out.killed.add(key)


def _run_id(bootstrap: str, topic: str, tid: str, seed: int, out: Outcomes) -> None:
    rnd = random.Random(seed)
    for n in range(ROUNDS):
        _round(bootstrap, topic, tid, f"{tid}-{n}", rnd.choice(["commit", "abort"]),
               rnd.uniform(0, KILL_WINDOW_S), rnd.random() < 0.5, out)
    _round(bootstrap, topic, tid, f"{tid}-last", "commit", None, False, out)  # must go through


def _read_committed(bootstrap: str, topic: str, until: set[str], timeout_s: float) -> Counter[str]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{topic}",
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    seen: Counter[str] = Counter()
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        while any(seen[k] < RECORDS for k in until):
            assert time.monotonic() < deadline, (
                f"read_committed stalled: still waiting for {sorted(k for k in until if seen[k] < RECORDS)}")
            for m in consumer.consume(500, timeout=0.5):
                if m.error() is None:
                    seen[m.key().decode()] += 1
    finally:
        consumer.close()
    return seen


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_producers_killed_while_ending_transactions_leave_nothing_half_done(tmp_path: Path,
                                                                           topic_name: str) -> None:
    with BrokerProcess(tmp_path / "data", settings={
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500"}) as broker:
        create(broker.bootstrap, topic_name, 2)
        out = Outcomes()
        seed = random.randrange(1 << 30)
        with ThreadPoolExecutor(IDS) as pool:
            for f in [pool.submit(_run_id, broker.bootstrap, topic_name, f"kill-{i}", seed + i, out)
                      for i in range(IDS)]:
                f.result()
        assert len(out.killed) >= IDS * ROUNDS // 4, f"too few kills landed inside an end (seed {seed}): {len(out.killed)}"
        seen = _read_committed(broker.bootstrap, topic_name, out.committed, 60)
    assert max(out.init_ms) <= TXN_TIMEOUT_MS
    partial = {k: n for k, n in seen.items() if n != RECORDS}
    assert not partial, f"transactions seen in part (seed {seed}): {partial}"
    assert not out.aborted & set(seen), f"aborted transactions were read (seed {seed})"
    unfinished = {i: out.failed.get(f"kill-{i}-last", "killed?") for i in range(IDS)
                  if f"kill-{i}-last" not in out.committed}
    assert not unfinished, f"final rounds that did not commit (seed {seed}): {unfinished}"
