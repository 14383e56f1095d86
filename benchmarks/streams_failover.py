"""Restore after a fail-over, with and without a standby replica (``num_standby_replicas``).

    python -m benchmarks.streams_failover [--keys 200000] [--write docs/benchmarks.md]   # make bench-streams-failover: 10**6 keys, ~5 min

One tomyum broker; an input topic of two partitions holds ``--keys`` records, one per key.
For ``num_standby_replicas`` 1 and then 0, two instances of an exactly-once count per key
(``group_by_key().count()``, a persistent SQLite store, one task per partition) are started as
processes, each with a state directory of its own; once the group has committed the end of the
input (and, with a standby, once the survivor's standby checkpoint has reached the end of the
killed instance's changelog), one instance is killed with SIGKILL. Measured on the survivor:
from the kill to RUNNING with both tasks (the 6 s session timeout, the rebalance, the restore),
how many changelog records it restored, and how long the restore itself took (the
``StateRestoreListener``'s start to end, or 0 when there was nothing to restore).
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import confluent_kafka
from confluent_kafka import Consumer, Producer, TopicPartition

import tomyum
from benchmarks.throughput import create_topic, machine_line, stop_process, write_section
from tomyum.testing import BrokerProcess

INPUT = "failover-in"
SESSION_TIMEOUT_MS = 6000


def app(bootstrap: str, app_id: str, state_dir: str, standbys: int) -> int:
    """One instance; prints ``<wall time> RUNNING <tasks>`` / ``RESTORE-START`` / ``RESTORE-END <records>``."""
    from typing import Any

    from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig
    from tomyum.streams.processor import StateRestoreListener
    from tomyum.streams.runtime import KafkaStreams

    class Timed(StateRestoreListener):
        def on_restore_start(self, topic_partition: Any, store_name: str, starting_offset: int,
                             ending_offset: int) -> None:
            print(time.time(), "RESTORE-START", starting_offset, ending_offset, flush=True)

        def on_restore_end(self, topic_partition: Any, store_name: str, total_restored: int) -> None:
            print(time.time(), "RESTORE-END", total_restored, flush=True)

    builder = StreamsBuilder()
    builder.stream(INPUT, key_serde=Serdes.string(), value_serde=Serdes.bytes()).group_by_key().count(
        Materialized(store_name="counts", store_type="persistent"))
    streams = KafkaStreams(builder.build(), StreamsConfig(application_id=app_id, state_dir=state_dir),
                           bootstrap_servers=bootstrap, processing_guarantee="exactly_once_v2",
                           commit_interval_ms=1000, num_standby_replicas=standbys,
                           client_config={"consumer.session.timeout.ms": SESSION_TIMEOUT_MS,
                                          "consumer.heartbeat.interval.ms": 1000})
    streams.set_global_state_restore_listener(Timed())
    streams.set_state_listener(lambda new, old: print(time.time(), new.value, ",".join(sorted(streams.tasks)),
                                                      flush=True))
    return streams.run()


class Instance:
    def __init__(self, bootstrap: str, app_id: str, state_dir: Path, standbys: int) -> None:
        self.state_dir = state_dir
        self.log = (state_dir.parent / f"{state_dir.name}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.streams_failover", "--app", bootstrap, app_id,
                                      str(state_dir), str(standbys)], stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.lines: queue.SimpleQueue[tuple[float, str, list[str]]] = queue.SimpleQueue()
        self.passed: list[tuple[float, str, list[str]]] = []
        """Lines :meth:`wait_for` went past."""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            at, what, *rest = line.split() + [""]
            self.lines.put((float(at), what, [r for r in rest if r]))

    def wait_for(self, what: str, check: object = None, timeout: float = 600) -> tuple[float, list[str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                at, kind, rest = self.lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"instance exited ({self.proc.returncode}); see {self.log.name}") from None
                continue
            if kind == what and (check is None or (callable(check) and check(rest))):
                return at, rest
            self.passed.append((at, kind, rest))
        raise TimeoutError(f"no {what} within {timeout} s; see {self.log.name}")

    def stop(self, kill: bool = False) -> None:
        if kill and self.proc.poll() is None:
            self.proc.kill()
        stop_process(self.proc)
        self.log.close()


def fill(bootstrap: str, keys: int) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000,
                  "partitioner": "murmur2_random", "log_level": 3})
    for i in range(keys):
        while True:
            try:
                p.produce(INPUT, key=f"k{i:08d}".encode(), value=b"1")
                break
            except BufferError:  # librdkafka's queue is full: let deliveries drain it
                p.poll(0.1)
        p.poll(0)
    assert p.flush(120) == 0


def wait_committed(bootstrap: str, group: str, timeout: float = 900) -> None:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        parts = [TopicPartition(INPUT, p) for p in range(2)]
        ends = [c.get_watermark_offsets(tp, timeout=10)[1] for tp in parts]
        deadline = time.monotonic() + timeout
        while [tp.offset for tp in c.committed(parts, timeout=10)] != ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{group} did not commit the input's end within {timeout} s")
            time.sleep(0.5)
    finally:
        c.close()


def changelog_end(bootstrap: str, topic: str, partition: int) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "failover-bench-ends"})
    try:
        return int(c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)[1])
    finally:
        c.close()


def one(bootstrap: str, root: Path, standbys: int) -> dict[str, float]:
    from tomyum.streams._checkpoint import read_checkpoint

    app_id = f"failover-{standbys}"
    a = Instance(bootstrap, app_id, root / f"{app_id}-a", standbys)
    b = Instance(bootstrap, app_id, root / f"{app_id}-b", standbys)
    try:
        started = time.monotonic()
        _, (a_task,) = a.wait_for("RUNNING", lambda tasks: tasks and len(tasks[0].split(",")) == 1)
        b.wait_for("RUNNING", lambda tasks: tasks and len(tasks[0].split(",")) == 1)
        wait_committed(bootstrap, app_id)
        processed_s = time.monotonic() - started
        changelog, partition = f"{app_id}-counts-changelog", int(a_task[-1])
        if standbys:
            end = changelog_end(bootstrap, changelog, partition)
            copy = root / f"{app_id}-b" / "tomyum-streams" / app_id / a_task
            deadline = time.monotonic() + 300
            while (read_checkpoint(copy) or {}).get(changelog, -1) < end - 1:
                if time.monotonic() > deadline:
                    raise TimeoutError("the standby did not catch up")
                time.sleep(0.2)
        while not b.lines.empty():
            b.lines.get_nowait()
        b.passed.clear()
        a.stop(kill=True)
        killed = time.time()
        running_at, _ = b.wait_for("RUNNING", lambda tasks: tasks and len(tasks[0].split(",")) == 2)
        restored, restore_s = 0.0, 0.0
        starts = []
        for at, kind, rest in b.passed:
            if kind == "RESTORE-START":
                starts.append(at)
            elif kind == "RESTORE-END":
                restored += int(rest[0])
                restore_s += at - starts.pop()
        return {"standbys": standbys, "processed_s": processed_s, "failover_s": running_at - killed,
                "restored": restored, "restore_s": restore_s}
    finally:
        a.stop(kill=True)
        b.stop()


def main() -> None:
    if sys.argv[1:2] == ["--app"]:
        bootstrap, app_id, state_dir, standbys = sys.argv[2:6]
        sys.exit(app(bootstrap, app_id, state_dir, int(standbys)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    load = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as d, \
            BrokerProcess(Path(d) / "data", settings={"group.initial.rebalance.delay.ms": "0"}) as broker:
        create_topic(broker.bootstrap, INPUT, 2)
        started = time.monotonic()
        fill(broker.bootstrap, args.keys)
        print(f"input: {args.keys:,} keys in {time.monotonic() - started:.1f} s", flush=True)
        for standbys in (1, 0):
            result = one(broker.bootstrap, Path(d), standbys)
            print(result, flush=True)
            results.append(result)
    rows = ["| num_standby_replicas | kill → survivor RUNNING | changelog records restored | restore time |",
            "|---|---|---|---|"]
    rows += [f"| {r['standbys']:.0f} | {r['failover_s']:.1f} s | {r['restored']:,.0f} | {r['restore_s']:.2f} s |"
             for r in results]
    out = "\n".join(rows)
    print(out)
    if args.write:
        command = "python -m benchmarks.streams_failover " + " ".join(sys.argv[1:])
        write_section(args.write, "Stream processing: restore after a fail-over, with and without a standby",
                      f"Machine: {machine_line()}; load average {load[0]:.2f} at the start.  \n"
                      f"Versions: tomyum {tomyum.__version__} (confluent-kafka {confluent_kafka.__version__}, "
                      f"librdkafka {confluent_kafka.libversion()[0]}).  \nCommand: `{command}`.\n\n"
                      f"An exactly-once count over {args.keys:,} keys (one input record each, two partitions, so "
                      f"about {args.keys // 2:,}\nchangelog records per task), two instances; once the input is "
                      f"counted one is killed with SIGKILL.\nThe survivor is RUNNING with both tasks after the "
                      f"{SESSION_TIMEOUT_MS / 1000:.0f} s session timeout, the rebalance and the restore; the "
                      "restore time\nis the StateRestoreListener's start to end on the survivor (0 when its "
                      "standby left nothing to read).\n\n" + out)


if __name__ == "__main__":
    main()
