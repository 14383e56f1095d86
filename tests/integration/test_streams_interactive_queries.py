"""Interactive queries across instances on a real broker: two instances of
examples/interactive_queries.py share a topic's four partitions, each knows the other's
``application.server`` through the group, and either answers ``GET /count/<key>`` for every key
with the owner's count (forwarding what it does not hold); when one stops, the other takes its
tasks and the map follows."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tomyum.testing import BrokerProcess, wait_until

#: a broker and two application processes, a rebalance and a fail-over: ~20 s (make test-slow)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TIMEOUT = 60
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "interactive_queries.py"


class Instance:
    """One example process; its output lines are gathered by a thread."""

    def __init__(self, bootstrap: str, topic: str, app_id: str, state_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--bootstrap", bootstrap, "--topic", topic, "--application-id", app_id,
             "--state-dir", str(state_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            first = wait_until(self._serving, TIMEOUT, what="the example to serve")
        except BaseException:
            self.reap()
            raise
        self.endpoint = first.removeprefix("serving http://").removesuffix("/count/<key>")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _serving(self) -> str | None:
        while not self.lines.empty():
            line = self.lines.get_nowait()
            self.output.append(line)
            if line.startswith("serving http://"):
                return line
        return None

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"http://{self.endpoint}{path}", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(TIMEOUT)
        finally:
            self.reap()

    def reap(self) -> None:
        """Kill the process if it still runs, and close its output."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def test_either_instance_answers_every_key_with_the_owners_count(broker: BrokerProcess, topic_name: str,
                                                                 tmp_path: Path) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 4, 1)])[topic_name].result(TIMEOUT)
    instances: list[Instance] = []
    try:
        for name in ("a", "b"):
            instances.append(Instance(broker.bootstrap, topic_name, f"iq-{topic_name}", tmp_path / name))

        def both_hold_tasks() -> bool:
            status, listed = instances[0].get("/instances")
            return status == 200 and len(listed) == 2 and all(i["partitions"] for i in listed) and sum(
                len(i["partitions"]) for i in listed) == 4

        wait_until(both_hold_tasks, TIMEOUT, interval=0.2, what="two instances sharing the four partitions")
        _, listed = instances[1].get("/instances")  # the other instance sees the same map
        owner_of = {p: i["host"] for i in listed for _, p in i["partitions"]}
        assert sorted(i["host"] for i in listed) == sorted(i.endpoint for i in instances)
        assert all(i["stores"] == ["counts"] for i in listed)

        # keyed records, partitioned as Kafka's clients do; the producer says where each went
        producer = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})
        expected: Counter[str] = Counter()
        partition_of: dict[str, int] = {}

        def delivered(err: Any, msg: Any) -> None:
            assert err is None, err
            partition_of[msg.key().decode()] = msg.partition()

        for i in range(24):
            key = f"user-{i}"
            for _ in range(i % 4 + 1):
                producer.produce(topic_name, key=key.encode(), value=b"click", on_delivery=delivered)
                expected[key] += 1
        assert producer.flush(TIMEOUT) == 0
        assert {owner_of[p] for p in partition_of.values()} == {i.endpoint for i in instances}  # both own keys

        def all_counted() -> bool:
            return all(instances[n % 2].get(f"/count/{key}") == (200, {
                "key": key, "count": count, "host": owner_of[partition_of[key]], "partition": partition_of[key]})
                for n, (key, count) in enumerate(sorted(expected.items())))

        wait_until(all_counted, TIMEOUT, interval=0.2, what="every key counted")
        forwarded = 0
        for key, count in sorted(expected.items()):
            for asked in instances:
                status, body = asked.get(f"/count/{key}")
                assert (status, body) == (200, {"key": key, "count": count, "host": owner_of[partition_of[key]],
                                                "partition": partition_of[key]}), (asked.endpoint, key)
                forwarded += body["host"] != asked.endpoint
        assert forwarded == len(expected)  # each key: one instance answered itself, the other forwarded
        for asked in instances:  # a key never seen: its owner says 404, through whichever instance
            status, body = asked.get("/count/nobody")
            assert status == 404 and body["count"] is None

        # one instance stops: the group moves its tasks to the other (restored from the
        # changelogs), the map follows, and the survivor answers every key itself
        assert instances[1].stop() == 0
        survivor = instances[0]

        def survivor_owns_all() -> bool:
            return survivor.get("/instances") == (200, [{"host": survivor.endpoint, "stores": ["counts"], "partitions": [
                [topic_name, p] for p in range(4)]}])

        wait_until(survivor_owns_all, TIMEOUT, interval=0.2, what="the survivor to hold every partition")
        wait_until(lambda: all(survivor.get(f"/count/{key}") == (200, {
            "key": key, "count": count, "host": survivor.endpoint, "partition": partition_of[key]})
            for key, count in sorted(expected.items())), TIMEOUT, interval=0.2, what="the survivor to answer all")
        assert survivor.stop() == 0
    finally:
        for i in instances:
            i.reap()
