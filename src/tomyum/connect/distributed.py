"""Distributed mode (Kafka's DistributedHerder): workers sharing ``group.id`` share the work.

State lives in three compacted topics, in Kafka's formats (JSON without schemas):

- ``config.storage.topic`` (1 partition): ``connector-<name>`` → ``{"properties": {…}}``,
  ``target-state-<name>`` → ``{"state": …, "state.v2": …}``, ``task-<name>-<n>`` →
  ``{"properties": {…}}``, ``commit-<name>`` → ``{"tasks": n}`` (task configs count only once
  committed), ``restart-connector-<name>`` → ``{"include-tasks": …, "only-failed": …}``;
- ``offset.storage.topic`` (25): ``["<connector>",{partition}]`` → ``{offset}``;
- ``status.storage.topic`` (5): ``status-connector-<name>`` / ``status-task-<name>-<n>`` →
  ``{"state", "trace", "worker_id", "generation"}``.

Workers form a group with protocol type ``connect`` (:mod:`tomyum.connect.group`). With
``connect.protocol=compatible`` (the default here) rebalances are incremental and cooperative
(KIP-415, :mod:`tomyum.connect.assignor`): a worker keeps running what it is not told to stop,
stops only what is revoked, starts only what is newly assigned, and rejoins at once after a
revocation so the freed work can be handed out. A worker that dies stops heartbeating; after
``session.timeout.ms`` the coordinator rebalances, and its connectors and tasks are held for
``scheduled.rebalance.max.delay.ms`` (in case it comes back) before the survivors take them,
resuming sources from the offsets topic (at least once). With ``connect.protocol=eager`` (or in a
group with a worker that speaks only eager) every worker stops everything at each rebalance and
the leader assigns round-robin (Kafka's eager protocol).

``sessioned`` (Kafka's default; KIP-507) needs session keys in the config topic and signed
requests between workers, which tomyum does not implement: a worker configured with it warns and
offers ``compatible``, which is what a Kafka cluster also falls back to when one member cannot
sign. Internal requests (task configs sent to the leader) are therefore not signed.

One thread (the herder thread) owns the membership and every start and stop; REST calls write
to the config topic (on the leader: a non-leader answers with :class:`ForwardError`, which the
REST layer turns into a forwarded request) and the herder thread reacts to what it reads back.
The worker that runs a connector sends its task configs to the leader (Kafka's internal
``POST /connectors/{name}/tasks``), which writes them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from tomyum.connect import exactly_once, plugins
from tomyum.connect.assignor import IncrementalCooperativeAssignor
from tomyum.connect.config_writer import ConfigTopicWriter, transactional_producer_id
from tomyum.connect.connector import ConnectError, SourceConnector
from tomyum.connect.group import (
    EAGER, PROTOCOL_VERSIONS, Assignment, RebalanceNeeded, WorkerGroupMember, WorkerState, assign_eager, protocols_for,
)
from tomyum.connect.herder import (
    AbstractHerder, AlreadyExistsError, BadRequestError, ForwardError, NotFoundError, Status,
)
from tomyum.connect.kafka_log import KafkaBasedLog, create_compacted_topic
from tomyum.connect.offsets_topics import KafkaOffsetBackingStore, OffsetsTopics
from tomyum.connect.worker import State, TargetState, TaskId, Worker

log = logging.getLogger("tomyum.connect.distributed")

#: how long a REST write waits for a rebalance under way before it is answered 409
REBALANCE_WAIT_S = 20.0


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class ConfigState:
    """What the config topic says (Kafka's ClusterConfigState); changed by the reader thread only."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: the offset after the last record read; -1 before any, as Kafka's (members compare them)
        self.offset = -1
        self.configs: dict[str, dict[str, str]] = {}
        self.targets: dict[str, TargetState] = {}
        self.tasks: dict[str, list[dict[str, str]]] = {}
        self.pending: dict[str, dict[int, dict[str, str]]] = {}

    def apply(self, key: str, value: Any) -> tuple[str, str] | None:
        """Apply one record; returns (kind, connector) for the herder to react to, or None."""
        with self.lock:
            if key.startswith("connector-"):
                name = key[len("connector-"):]
                if value is None:
                    self.configs.pop(name, None)
                    self.targets.pop(name, None)
                    self.tasks.pop(name, None)
                    self.pending.pop(name, None)
                else:
                    self.configs[name] = {str(k): str(v) for k, v in value["properties"].items() if v is not None}
                    self.targets.setdefault(name, TargetState.STARTED)
                return "connector", name
            if key.startswith("target-state-"):
                name = key[len("target-state-"):]
                if value is not None:
                    state = value.get("state.v2") or value.get("state")
                    self.targets[name] = TargetState(state)
                return "target", name
            if key.startswith("task-"):
                name, _, n = key[len("task-"):].rpartition("-")
                if value is not None and n.isdigit():
                    self.pending.setdefault(name, {})[int(n)] = {
                        str(k): str(v) for k, v in value["properties"].items() if v is not None}
                return None
            if key.startswith("commit-"):
                name = key[len("commit-"):]
                if value is None:
                    return None
                count = int(value["tasks"])
                pending = self.pending.pop(name, {})
                old = self.tasks.get(name, [])
                self.tasks[name] = [pending.get(i, old[i] if i < len(old) else {}) for i in range(count)]
                return "commit", name
            if key.startswith("restart-connector-") and value is not None:
                return "restart:" + json.dumps(value), key[len("restart-connector-"):]
            return None


class DistributedHerder(AbstractHerder):
    def __init__(self, worker: Worker, offsets: KafkaOffsetBackingStore, props: Mapping[str, str], url: str) -> None:
        super().__init__(worker)
        worker.listener = self
        worker.on_reconfiguration_request = lambda name: self._events.put(("reconfigure", name, -1))
        self.props = dict(props)
        self.url = url
        self.offset_store = offsets
        self.config = ConfigState()
        #: (kind, connector, config-topic offset of the record or -1) for the herder thread
        self._events: queue.Queue[tuple[str, str, int]] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="distributed-herder", daemon=True)
        self.assignment: Assignment | None = None
        self._settled = threading.Event()  # set while there is an assignment
        self._status_generations: dict[str, int] = {}
        #: the leader's last assignment: member id → (its URL, what it was given)
        self._given: dict[str, tuple[str, Assignment]] = {}
        self.generation = -1
        for required in ("group.id", "config.storage.topic", "offset.storage.topic", "status.storage.topic"):
            if not self.props.get(required, "").strip():
                raise ConnectError(f'Missing required configuration "{required}" which has no default value.')
        protocols = protocols_for(self.props.get("connect.protocol", "compatible"))
        max_delay_ms = _int(self.props, "scheduled.rebalance.max.delay.ms", 300000)
        if max_delay_ms < 0:
            raise ConnectError(f"Invalid value {max_delay_ms} for configuration scheduled.rebalance.max.delay.ms: "
                               "Value must be at least 0")
        self.assignor = IncrementalCooperativeAssignor(max_delay_ms)
        #: the full assignment of the last completed generation, sent to the leader when joining
        self._held: Assignment | None = None
        #: connectors with work on this worker that ran on through the last rebalance
        self._kept: set[str] = set()
        #: monotonic time of a rebalance the leader scheduled (an assignment's delay), if any
        self._rejoin_at: float | None = None
        protocol = self.props.get("security.protocol", "PLAINTEXT").upper()
        if protocol != "PLAINTEXT":
            raise ConnectError(f"security.protocol={protocol}: distributed workers connect with PLAINTEXT only")
        client = {"bootstrap.servers": worker.config.bootstrap_servers}
        self.client_config = client
        self.config_topic = self.props["config.storage.topic"]
        self.offset_topic = self.props["offset.storage.topic"]
        self.status_topic = self.props["status.storage.topic"]
        self.config_log = KafkaBasedLog(self.config_topic, client, self._on_config_record)
        offsets.log = KafkaBasedLog(self.offset_topic, client, offsets.apply,
                                    producer_config={"partitioner": "murmur2_random"})
        self.status_log = KafkaBasedLog(self.status_topic, client, self._on_status_record,
                                        producer_config={"partitioner": "murmur2_random"})
        self.exactly_once = exactly_once.ExactlyOnceSource(
            group_id=self.props["group.id"], client_config=client, offset_topic=self.offset_topic, rest_url=url,
            read_offsets_to_end=self.catch_up, offsets_committed=offsets.remember)
        #: the connectors' own offsets topics (KIP-618), each read as the worker's topic is
        self.offsets_topics = OffsetsTopics(offsets, client, self.offset_topic,
                                            _int(self.props, "offset.storage.partitions", 25),
                                            _int(self.props, "offset.storage.replication.factor", 3))
        worker.connector_offset_store = self.offsets_topics.store
        self.exactly_once.connector_offsets = self.offsets_topics.transaction_target
        support = exactly_once.worker_support(self.props)
        if support is exactly_once.ExactlyOnceSourceSupport.ENABLED:
            self.exactly_once_enabled = True
            worker.source_task_factory = self.exactly_once.task
        # preparing (a rolling upgrade's first step) and enabled: the leader writes the config
        # topic transactionally, fencing earlier leaders; only enabled gives tasks transactions
        self.config_writer = ConfigTopicWriter(
            self.config_log, client, None if support is exactly_once.ExactlyOnceSourceSupport.DISABLED
            else transactional_producer_id(self.props["group.id"]))
        self.member = WorkerGroupMember(
            bootstrap_servers=worker.config.bootstrap_servers, group_id=self.props["group.id"], url=url,
            session_timeout_ms=_int(self.props, "session.timeout.ms", 10000),
            rebalance_timeout_ms=_int(self.props, "rebalance.timeout.ms", 60000),
            heartbeat_interval_ms=_int(self.props, "heartbeat.interval.ms", 3000),
            client_id=f"connect-{worker.config.worker_id}", protocols=protocols)

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Create the internal topics (Kafka's partition counts, compacted), read them, join."""
        p = self.props
        for topic, partitions, rf in (
                (self.config_topic, 1, _int(p, "config.storage.replication.factor", 3)),
                (self.offset_topic, _int(p, "offset.storage.partitions", 25),
                 _int(p, "offset.storage.replication.factor", 3)),
                (self.status_topic, _int(p, "status.storage.partitions", 5),
                 _int(p, "status.storage.replication.factor", 3))):
            create_compacted_topic(self.client_config, topic, partitions, rf)
        assert self.offset_store.log is not None
        for kafka_log in (self.config_log, self.offset_store.log, self.status_log):
            kafka_log.start()
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._events.put(("stop", "", -1))
        if self._thread.is_alive():
            self._thread.join(30)
        assert self.offset_store.log is not None
        self.offsets_topics.stop()
        for kafka_log in (self.config_log, self.offset_store.log, self.status_log):
            kafka_log.stop()

    # reading the topics ---------------------------------------------------------------------
    def _on_config_record(self, key: bytes | None, value: bytes | None, _partition: int, offset: int) -> None:
        if key is None:
            return
        doc = None if value is None else json.loads(value)
        event = self.config.apply(key.decode("utf-8"), doc)
        self.exactly_once.fencing.apply(key.decode("utf-8"), doc)
        with self.config.lock:
            self.config.offset = offset + 1
        if event is not None:
            self._events.put((*event, offset))

    def _on_status_record(self, key: bytes | None, value: bytes | None, _partition: int, _offset: int) -> None:
        if key is None:
            return
        k = key.decode("utf-8")
        doc = None if value is None else json.loads(value)
        if k.startswith("status-topic-") and ":connector-" in k:
            topic, _, connector = k[len("status-topic-"):].rpartition(":connector-")
            with self.status_lock:
                if doc is None:
                    self.active_topics.get(connector, set()).discard(topic)
                else:
                    self.active_topics.setdefault(connector, set()).add(topic)
            return
        if doc is not None and doc.get("worker_id") == self.worker_id:
            return  # our own statuses are set as they happen
        status = None if doc is None else Status(State(doc["state"]), str(doc["worker_id"]), doc.get("trace"))
        with self.status_lock:
            # a status from an older generation (a worker reporting a task it gave up) never
            # overwrites a newer one: Kafka's KafkaStatusBackingStore does the same
            if doc is None:
                self._status_generations.pop(k, None)
            else:
                generation = int(doc.get("generation", -1))
                if generation < self._status_generations.get(k, -1):
                    return
                self._status_generations[k] = generation
            if k.startswith("status-connector-"):
                name = k[len("status-connector-"):]
                if status is None:
                    self.connector_status.pop(name, None)
                else:
                    self.connector_status[name] = status
            elif k.startswith("status-task-"):
                name, _, n = k[len("status-task-"):].rpartition("-")
                if n.isdigit():
                    if status is None:
                        self.task_status.pop(TaskId(name, int(n)), None)
                    else:
                        self.task_status[TaskId(name, int(n))] = status

    def _status_value(self, state: State, trace: str | None) -> bytes:
        return _json({"state": state.value, "trace": trace, "worker_id": self.worker_id,
                      "generation": self.generation})

    def on_connector_state(self, connector: str, state: State, trace: str | None) -> None:
        super().on_connector_state(connector, state, trace)
        self._put_status(f"status-connector-{connector}", state, trace)

    def on_task_state(self, task: TaskId, state: State, trace: str | None) -> None:
        super().on_task_state(task, state, trace)
        self._put_status(f"status-task-{task}", state, trace)

    def on_topic_used(self, connector: str, topic: str, task: int = 0) -> None:
        super().on_topic_used(connector, topic, task)
        self.status_log.send(f"status-topic-{topic}:connector-{connector}".encode(), _json(
            {"topic": {"name": topic, "connector": connector, "task": task,
                       "discoverTimestamp": int(time.time() * 1000)}}))

    def reset_topics(self, name: str) -> None:
        """Kafka's resetConnectorActiveTopics: a tombstone for each of the connector's topics."""
        with self.status_lock:
            topics = sorted(self.active_topics.get(name, set()))
        super().reset_topics(name)
        for topic in topics:
            self.status_log.send(f"status-topic-{topic}:connector-{name}".encode(), None)
        self.status_log.flush()

    def _put_status(self, key: str, state: State, trace: str | None) -> None:
        with self.status_lock:
            self._status_generations[key] = max(self.generation, self._status_generations.get(key, -1))
        self.status_log.send(key.encode(), self._status_value(state, trace))

    # config views ---------------------------------------------------------------------------
    def connectors(self) -> list[str]:
        with self.config.lock:
            return sorted(self.config.configs)

    def connector_config(self, name: str) -> dict[str, str]:
        with self.config.lock:
            return dict(self.config.configs[name])

    def target_state(self, name: str) -> TargetState:
        with self.config.lock:
            return self.config.targets.get(name, TargetState.STARTED)

    def task_configs(self, name: str) -> list[dict[str, str]]:
        with self.config.lock:
            return [dict(c) for c in self.config.tasks.get(name, [])]

    # writes (leader only) ---------------------------------------------------------------------
    def _leader_url(self) -> str:
        a = self.assignment
        return "" if a is None else a.leader_url

    def check_leader(self) -> None:
        """Raise ForwardError unless this worker leads a settled group; a rebalance under way is
        waited for (up to ``REBALANCE_WAIT_S``, then 409), as Kafka's herder queues requests."""
        a = self._wait_settled()
        if a.leader != self.member.member_id:
            raise ForwardError(a.leader_url)

    def _wait_settled(self) -> Assignment:
        """The current assignment, waiting for a rebalance under way; ForwardError("") (409) if
        none comes within ``REBALANCE_WAIT_S``."""
        deadline = time.monotonic() + REBALANCE_WAIT_S
        while (a := self.assignment) is None:
            if not self._settled.wait(max(0.0, deadline - time.monotonic())):
                raise ForwardError("")
        return a

    def _write(self, *records: tuple[str, Any]) -> None:
        fencable = self.config_writer.fencable
        before = sum(self.config_log.end_offsets(30).values()) if fencable else 0
        self.config_writer.write([(key.encode("utf-8"), None if value is None else _json(value))
                                  for key, value in records])
        if fencable:
            # an Apache Kafka broker writes a transaction's commit marker after EndTxn has been
            # answered: until then the last stable offset (the reader's end) is behind the records
            deadline = time.monotonic() + 30
            while sum(self.config_log.end_offsets(30).values()) < before + len(records):
                if time.monotonic() > deadline:
                    raise ConnectError(f"Timed out waiting for the write to {self.config_topic} to become stable")
                time.sleep(0.02)
        self.config_log.read_to_end()

    def put_connector_config(self, name: str, config: Mapping[str, str], allow_replace: bool,
                             initial_state: TargetState = TargetState.STARTED) -> tuple[bool, dict[str, Any]]:
        config = self.check_name(name, config)
        self.check_leader()
        with self.lock:
            exists = name in self.connectors()
            if exists and not allow_replace:
                raise AlreadyExistsError(f"Connector {name} already exists")
            self.check_valid(config)
            records: list[tuple[str, Any]] = []
            if not exists:
                records.append((f"target-state-{name}", _target_value(initial_state)))
            records.append((f"connector-{name}", {"properties": config}))
            self._write(*records)
            return not exists, self.connector_info(name)

    def delete_connector(self, name: str) -> None:
        self.check_leader()
        with self.lock:
            self._require(name)
            count = len(self.task_configs(name))
            self._write((f"connector-{name}", None), (f"target-state-{name}", None))
            for key in [f"status-connector-{name}"] + [f"status-task-{name}-{i}" for i in range(count)]:
                self.status_log.send(key.encode(), None)
            self.status_log.flush()

    def _set_target(self, name: str, target: TargetState) -> None:
        self.check_leader()
        with self.lock:
            self._require(name)
            records: list[tuple[str, Any]] = [(f"target-state-{name}", _target_value(target))]
            if target is TargetState.STOPPED:
                records.append((f"commit-{name}", {"tasks": 0}))  # Kafka's empty task set for STOPPED
            self._write(*records)

    def restart_connector(self, name: str) -> None:
        self.check_leader()
        self._require(name)
        self._write((f"restart-connector-{name}", {"include-tasks": False, "only-failed": False}))

    def restart_connector_and_tasks(self, name: str, include_tasks: bool, only_failed: bool) -> dict[str, Any]:
        self.check_leader()
        status = self.connector_status_json(name)
        if not only_failed or status["connector"]["state"] == State.FAILED.value:
            status["connector"]["state"] = State.RESTARTING.value
            status["connector"].pop("trace", None)
        for t in status["tasks"]:
            if include_tasks and (not only_failed or t["state"] == State.FAILED.value):
                t["state"] = State.RESTARTING.value
                t.pop("trace", None)
        self._write((f"restart-connector-{name}", {"include-tasks": include_tasks, "only-failed": only_failed}))
        return status

    def alter_offsets(self, name: str, offsets: list[dict[str, Any]]) -> str:
        self.check_leader()
        return super().alter_offsets(name, offsets)

    def reset_offsets(self, name: str) -> str:
        self.check_leader()
        return super().reset_offsets(name)

    def restart_task(self, name: str, task: int) -> None:
        """Restart a task this worker runs; otherwise a ForwardError names who runs it (the
        leader, which knows every member's share, or for the leader the member itself)."""
        self._require(name)
        configs = self.task_configs(name)
        if task >= len(configs):
            raise NotFoundError(f"Task {name}-{task} not found")
        a = self._wait_settled()
        if (name, task) not in a.tasks:
            if a.leader != self.member.member_id:
                raise ForwardError(a.leader_url)
            owner = next((url for url, given in self._given.values() if (name, task) in given.tasks), "")
            raise ForwardError(owner)  # none: assigned at the next rebalance (409)
        self._events.put(("restart-task", json.dumps([name, task]), -1))

    def fence_zombies(self, name: str) -> None:
        """KIP-618's round of zombie fencing, by the leader (Kafka's doFenceZombieSourceTasks)."""
        self.check_leader()
        with self.lock:
            self._require(name)
            self.config_log.read_to_end()
            if not issubclass(plugins.connector_class(self.connector_config(name)["connector.class"]),
                              SourceConnector):
                raise BadRequestError(f"Connector {name} is not a source connector")
            self.exactly_once.fence_zombies(name, len(self.task_configs(name)), lambda record: self._write(record))

    def catch_up(self) -> None:
        """After a write another worker made for us: read the topics it went to, so that this
        worker's next answer shows it (read-your-writes through any worker)."""
        self.config_log.read_to_end()
        self.offsets_topics.read_to_end()

    def offsets(self, name: str) -> dict[str, Any]:
        self.offsets_topics.read_to_end()  # Kafka reads the offsets topics afresh for this answer
        return super().offsets(name)

    # the herder thread --------------------------------------------------------------------------
    def _run(self) -> None:
        rejoin = True
        while not self._stopping.is_set():
            try:
                if rejoin:
                    rejoin = not self._rebalance()
                    continue
                try:
                    event = self._events.get(timeout=self._wait_s())
                except queue.Empty:
                    event = None
                if self._rejoin_at is not None and time.monotonic() >= self._rejoin_at:
                    log.info("Rejoining: the rebalance the leader scheduled is due")
                    rejoin = True
                    continue
                if self.member.heartbeat_due() == 0:
                    self.member.heartbeat()
                while event is not None and not self._stopping.is_set():
                    rejoin = self._handle(*event) or rejoin
                    try:
                        event = self._events.get_nowait()
                    except queue.Empty:
                        event = None
            except RebalanceNeeded as e:
                log.info("Rebalance needed: %s", e)
                rejoin = True
            except Exception as e:  # noqa: BLE001 - the herder thread must outlive one failed step
                log.error("Unexpected error in the herder thread; rejoining", exc_info=e)
                rejoin = True
                self._stopping.wait(1)
        self._stop_work()
        self.member.leave()

    def _wait_s(self) -> float:
        """How long the herder thread may wait for an event: until a heartbeat or a scheduled
        rebalance is due."""
        wait = self.member.heartbeat_due()
        if self._rejoin_at is not None:
            wait = min(wait, max(0.0, self._rejoin_at - time.monotonic()))
        return wait

    def _rebalance(self) -> bool:
        """Join the group and apply the assignment; False if the group must be joined again.

        Under the eager protocol everything stops first and the assignment is the whole share.
        Under the cooperative one (KIP-415) nothing stops before the join: the assignment says
        what to stop (revoked) and what to start (new), the rest runs on untouched; after a
        revocation this worker rejoins at once, and after ``delay`` ms as the leader scheduled."""
        self._settled.clear()
        self.assignment = None
        self._rejoin_at = None
        if self.member.protocol == EAGER:
            self._held = None
            self._stop_work()
            while not self._events.empty():  # a full restart follows: what they asked for is in the state read next
                self._events.get_nowait()
        self.config_log.read_to_end()
        with self.config.lock:
            offset = self.config.offset
        last_generation = self.generation
        assignment = self.member.join(WorkerState(url=self.url, config_offset=offset, assignment=self._held),
                                      lambda leader, members: self._assign(leader, members, last_generation),
                                      self._stopping.is_set, self._on_coordinator_unreachable)
        if assignment is None:
            return False
        if assignment.error:
            # Kafka's CONFIG_MISMATCH: a member had read further than the leader; catch up, rejoin
            log.info("The leader's assignment failed (error %d): reading the config topic and rejoining",
                     assignment.error)
            self.config_log.read_to_end()
            return False
        self.generation = self.member.generation_id
        self.config_log.read_to_end()
        self.offsets_topics.read_to_end()
        full = self._apply(assignment)
        log.info("Joined group at generation %d as %s (leader %s at %s) with protocol %s; assigned connectors %s, "
                 "tasks %s; revoked connectors %s, tasks %s; rebalance delay %d ms", self.generation,
                 self.member.member_id, assignment.leader, assignment.leader_url, self.member.protocol,
                 list(assignment.connectors), [f"{c}-{n}" for c, n in assignment.tasks],
                 list(assignment.revoked_connectors), [f"{c}-{n}" for c, n in assignment.revoked_tasks],
                 assignment.delay)
        self._claim_or_relinquish_write_privileges(assignment.leader == self.member.member_id)
        running_connectors, running_tasks = set(self.worker.connectors()), set(self.worker.task_ids())
        self._kept = ({c for c in full.connectors if c in running_connectors}
                      | {c for c, n in full.tasks if TaskId(c, n) in running_tasks})
        self.assignment = self._held = full
        self.ready = True
        for name in full.connectors:
            if name not in running_connectors:
                self._start_connector(name)
        for name, n in full.tasks:
            if TaskId(name, n) not in running_tasks:
                self._start_task(TaskId(name, n))
        self._settled.set()
        if assignment.revoked_connectors or assignment.revoked_tasks:
            return False  # Kafka's workers rejoin after a revocation, for the freed work to be assigned
        if assignment.delay > 0:
            self._rejoin_at = time.monotonic() + assignment.delay / 1000
        return True

    def _on_coordinator_unreachable(self) -> None:
        """Kafka's WorkerCoordinator: a worker that cannot reach the coordinator may have been
        dropped from the group and its work given to others; it stops all it runs."""
        if self._held is not None or self.worker.task_ids() or self.worker.connectors():
            log.info("The group coordinator was unreachable for %d ms: stopping every connector and task "
                     "until this worker is in the group again", int(self.member.heartbeat_interval_s * 1000))
            self._held = None
            self._stop_work()

    def _apply(self, assignment: Assignment) -> Assignment:
        """Stop what ``assignment`` takes away; return everything this worker runs under it."""
        if self.member.protocol == EAGER:  # the whole share; stop what an earlier cooperative generation left
            keep_c, keep_t = set(assignment.connectors), set(assignment.tasks)
            self.worker.stop_tasks([t for t in self.worker.task_ids() if (t.connector, t.task) not in keep_t])
            for name in self.worker.connectors():
                if name not in keep_c:
                    self.worker.stop_connector(name)
            return assignment
        self.worker.stop_tasks([TaskId(c, n) for c, n in assignment.revoked_tasks])
        for name in assignment.revoked_connectors:
            self.worker.stop_connector(name)
        if assignment.revoked_connectors or assignment.revoked_tasks:
            self.status_log.flush()  # UNASSIGNED is written before the work starts elsewhere
        held = self._held
        gone_c, gone_t = set(assignment.revoked_connectors), set(assignment.revoked_tasks)
        connectors = [c for c in (held.connectors if held else ()) if c not in gone_c]
        tasks = [t for t in (held.tasks if held else ()) if t not in gone_t]
        return dataclasses.replace(
            assignment, connectors=tuple(connectors + [c for c in assignment.connectors if c not in connectors]),
            tasks=tuple(tasks + [t for t in assignment.tasks if t not in tasks]),
            revoked_connectors=(), revoked_tasks=(), delay=0)

    def _assign(self, leader: str, members: Mapping[str, WorkerState], last_generation: int) -> dict[str, Assignment]:
        """The leader's assignment for the protocol the group chose (eager or incremental)."""
        self.config_log.read_to_end()
        with self.config.lock:
            connectors = sorted(self.config.configs)
            counts = {c: len(self.config.tasks.get(c, [])) for c in connectors}
            offset = self.config.offset
        if self.member.protocol == EAGER:
            tasks = [(c, i) for c in connectors for i in range(counts[c])]
            given = assign_eager(leader, members, offset, connectors, tasks)
            self._given = {m: (members[m].url, a) for m, a in given.items()}
            return given
        result = self.assignor.perform_task_assignment(
            configured=counts, last_completed_generation_id=last_generation, generation_id=self.member.generation_id,
            members={m: (s.assignment.connectors, s.assignment.tasks) if s.assignment else ((), ())
                     for m, s in members.items()},
            now_ms=int(time.monotonic() * 1000))
        base = Assignment(error=0, leader=leader, leader_url=members[leader].url, config_offset=offset, connectors=(),
                          tasks=(), version=PROTOCOL_VERSIONS[self.member.protocol])
        self._given = {m: (members[m].url, dataclasses.replace(
            base, connectors=tuple(result.all_connectors.get(m, ())), tasks=tuple(result.all_tasks.get(m, ()))))
            for m in members}
        return {m: dataclasses.replace(
            base, connectors=tuple(result.assigned_connectors.get(m, ())), tasks=tuple(result.assigned_tasks.get(m, ())),
            revoked_connectors=tuple(result.revoked_connectors.get(m, ())),
            revoked_tasks=tuple(result.revoked_tasks.get(m, ())), delay=self.assignor.delay) for m in members}

    def _claim_or_relinquish_write_privileges(self, leader: bool) -> None:
        """A new leader claims the config topic (fencing earlier leaders' producers), as Kafka's
        herder after a rebalance; a failure is logged and the next write claims again."""
        if not self.config_writer.fencable:
            return
        if not leader:
            self.config_writer.relinquish_write_privileges()
            return
        try:
            self.config_writer.claim_write_privileges()
        except ConnectError as e:
            log.error("Unable to claim write privileges for config topic after being elected leader during "
                      "rebalance: %s", e)

    def _stop_work(self) -> None:
        self.worker.stop_tasks(self.worker.task_ids())
        for name in self.worker.connectors():
            self.worker.stop_connector(name)

    def _owns(self, name: str) -> bool:
        a = self.assignment
        return a is not None and name in a.connectors

    def _start_connector(self, name: str) -> None:
        try:
            config = self.connector_config(name)
        except KeyError:
            return
        target = self.target_state(name)
        if self.worker.start_connector(name, config, target) and target is not TargetState.STOPPED:
            self._reconfigure(name)

    def _reconfigure(self, name: str) -> None:
        """Ask the running connector for its task configs; write them if they changed."""
        if not self.worker.is_running(name):
            return
        config = self.connector_config(name)
        try:
            configs = self.worker.connector_task_configs(name, int(config.get("tasks.max", "1")))
        except Exception as e:  # noqa: BLE001 - the connector's failure is its status
            log.error("Failed to reconfigure connector's tasks (%s)", name, exc_info=e)
            self.on_connector_state(name, State.FAILED, str(e))
            return
        if configs == self.task_configs(name):
            return
        a = self.assignment
        if a is not None and a.leader == self.member.member_id:
            self._write_task_configs(name, configs)
            return
        log.info("Sending %d task configs of %s to the leader (target %s)", len(configs), name,
                 self.target_state(name).value)
        # Kafka's way: the leader writes them (POST /connectors/{name}/tasks); from a thread of
        # its own, so that this thread goes on heartbeating and rejoining meanwhile
        threading.Thread(target=self._send_task_configs, args=(name, configs), daemon=True,
                         name=f"task-configs-{name}").start()

    def _send_task_configs(self, name: str, configs: list[dict[str, str]]) -> None:
        import httpx

        a = self.assignment
        url = "" if a is None else a.leader_url.rstrip("/") + f"/connectors/{quote(name, safe='')}/tasks"
        try:
            if not url:
                raise httpx.TransportError("no leader")
            r = httpx.post(url, json=configs, timeout=60)
            if r.status_code < 300:
                return
            log.warning("The leader refused the task configs of %s: %s %s", name, r.status_code, r.text)
            if r.status_code == 404:  # the connector is gone
                return
            # else asked again, as Kafka's workers do (reconfigureConnectorTasksWithRetry): a
            # rebalance (409), or a target state the leader has not read as this worker has (400)
        except httpx.HTTPError as e:
            log.warning("Could not send the task configs of %s to the leader (%s); retrying", name, e)
        if not self._stopping.wait(1.0):
            self._events.put(("reconfigure", name, -1))

    def _write_task_configs(self, name: str, configs: list[dict[str, str]]) -> None:
        self._write(*[(f"task-{name}-{i}", {"properties": c}) for i, c in enumerate(configs)],
                    (f"commit-{name}", {"tasks": len(configs)}))

    def put_task_configs(self, name: str, configs: list[dict[str, str]]) -> None:
        self.check_leader()
        self._require(name)
        if configs and self.target_state(name) is TargetState.STOPPED:
            raise BadRequestError(f"Cannot submit non-empty set of task configs for stopped connector {name}")
        if configs != self.task_configs(name):
            self._write_task_configs(name, configs)

    def _start_task(self, tid: TaskId) -> None:
        configs = self.task_configs(tid.connector)
        if tid.task >= len(configs):
            return
        try:
            conn = self.connector_config(tid.connector)
        except KeyError:
            return
        self.worker.start_task(tid, conn, configs[tid.task], self.target_state(tid.connector))

    def _handle(self, kind: str, name: str, offset: int) -> bool:
        """React to one event; True if the group must rebalance."""
        a = self.assignment
        if kind == "stop" or a is None:
            return False
        if 0 <= offset < a.config_offset and name not in self._kept:
            return False  # the leader assigned with this record read, and the work started after it
        leader = a.leader == self.member.member_id
        mine = self.worker.task_ids(name)
        if kind == "connector":
            if name not in self.connectors():
                self.worker.stop_tasks(mine)
                self.worker.stop_connector(name)
                return leader
            if name not in a.connectors and not any(c == name for c, _ in a.tasks):
                return leader  # a new connector: the leader assigns it
            if self._owns(name):
                self.worker.stop_connector(name)
                self._start_connector(name)
            self.worker.stop_tasks(mine)  # new connector config: its tasks restart with it
            for tid in mine:
                self._start_task(tid)
            return False
        if kind == "commit":
            if self.member.protocol != EAGER:
                # new task configs: restart the tasks this worker keeps (Kafka's workers stop them and
                # start them after the rebalance the leader makes for added and removed tasks)
                self.worker.stop_tasks(mine)
                for tid in mine:
                    self._start_task(tid)
            # events may come after the state they announce has moved on (a stop and a resume
            # read together): the running connector's own task configs win over an empty set
            if self._owns(name) and self.target_state(name) is not TargetState.STOPPED:
                self._reconfigure(name)
            return leader
        if kind == "target":
            target = self.target_state(name)
            if target is TargetState.STOPPED:
                # its tasks stop before the connector reports STOPPED, so that offsets altered
                # once STOPPED shows are not overwritten by a task still closing
                self.worker.stop_tasks(mine)
            if self._owns(name):
                if target is TargetState.STOPPED or not self.worker.is_running(name):
                    self.worker.stop_connector(name)
                    self._start_connector(name)
                    return False
                self._reconfigure(name)
            self.worker.set_target_state(name, target)
            return False
        if kind == "reconfigure":
            if self._owns(name) and self.target_state(name) is not TargetState.STOPPED:
                self._reconfigure(name)
            return False
        if kind == "restart-task":
            connector, n = json.loads(name)
            tid = TaskId(connector, int(n))
            self.worker.stop_tasks([tid])
            self._start_task(tid)
            return False
        if kind.startswith("restart:"):
            request = json.loads(kind[len("restart:"):])
            only_failed = bool(request.get("only-failed"))
            with self.status_lock:
                conn_status = self.connector_status.get(name)
                failed = {t for t, s in self.task_status.items() if t.connector == name and s.state is State.FAILED}
            if self._owns(name) and (not only_failed or (conn_status is not None and conn_status.state is State.FAILED)):
                self.worker.stop_connector(name)
                self._start_connector(name)
            if request.get("include-tasks"):
                for tid in [TaskId(c, n) for c, n in a.tasks if c == name]:
                    if not only_failed or tid in failed:
                        self.worker.stop_tasks([tid])
                        self._start_task(tid)
            return False
        return False


def _int(props: Mapping[str, str], key: str, default: int) -> int:
    """An integer worker key, or a ConnectError worded as Kafka's ConfigException."""
    raw = props.get(key, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConnectError(f"Invalid value {raw} for configuration {key}: Not a number of type INT") from None


def _target_value(target: TargetState) -> dict[str, str]:
    """Kafka's TARGET_STATE_V1: ``state`` is what pre-KIP-875 workers understand."""
    return {"state": "PAUSED" if target is TargetState.STOPPED else target.value, "state.v2": target.value}
