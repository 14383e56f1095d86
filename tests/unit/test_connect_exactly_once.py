"""Exactly-once source (KIP-618), its pure parts: the worker and connector keys are validated
with Kafka's words, transactions end where ``transaction.boundary`` says, and the config
topic's task count records decide when the leader must fence and what it writes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tomyum.connect.connector import (
    ConnectError, ConnectorTransactionBoundaries, ExactlyOnceSupport, SourceConnector, SourceTask,
)
from tomyum.connect.data import SourceRecord
from tomyum.connect.exactly_once import (
    BoundaryDecision, ExactlyOnceSource, ExactlyOnceSourceSupport, FencingState, TransactionBoundary,
    TransactionBoundaryManager, WorkerTransactionContext, boundary_manager, source_config_def, transactional_id,
    validate_source, worker_support,
)
from tomyum.connect.offsets import MemoryOffsetBackingStore
from tomyum.connect.standalone import StandaloneHerder
from tomyum.connect.worker import Worker, WorkerConfig

pytestmark = pytest.mark.timeout(10)


class _Task(SourceTask):
    def start(self, props: Mapping[str, str]) -> None:
        pass

    def poll(self) -> list[SourceRecord] | None:
        return None

    def stop(self) -> None:
        pass


class _Declaring(SourceConnector):
    """Says what its config asks it to say."""

    def start(self, props: Mapping[str, str]) -> None:
        pass

    def task_class(self) -> type[_Task]:
        return _Task

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [{}]

    def stop(self) -> None:
        pass

    def exactly_once_support(self, connector_config: Mapping[str, str]) -> ExactlyOnceSupport | None:
        answer = connector_config.get("answer")
        return None if answer is None else ExactlyOnceSupport(answer)

    def can_define_transaction_boundaries(self, connector_config: Mapping[str, str]) -> ConnectorTransactionBoundaries:
        return ConnectorTransactionBoundaries(connector_config.get("boundaries", "UNSUPPORTED"))


def _errors(config: dict[str, str], *, enabled: bool = True, connector: SourceConnector | None = None) -> dict[str, list[str]]:
    values = source_config_def().validate(config)
    validate_source(connector or _Declaring(), config, values, enabled)
    return {k: v.errors for k, v in values.items() if v.errors}


def test_worker_support_is_validated_with_kafkas_words() -> None:
    assert worker_support({}) is ExactlyOnceSourceSupport.DISABLED
    assert worker_support({"exactly.once.source.support": " Enabled "}) is ExactlyOnceSourceSupport.ENABLED
    assert worker_support({"exactly.once.source.support": "preparing"}) is ExactlyOnceSourceSupport.PREPARING
    with pytest.raises(ConnectError) as e:
        worker_support({"exactly.once.source.support": "always"})
    assert str(e.value) == ("Invalid value always for configuration exactly.once.source.support: "
                            "String must be one of (case insensitive): disabled, preparing, enabled")


def test_connector_keys_default_to_requested_and_poll() -> None:
    parsed = source_config_def().parse({})
    assert parsed == {"exactly.once.support": "requested", "transaction.boundary": "poll",
                      "transaction.boundary.interval.ms": None, "offsets.storage.topic": None}
    assert _errors({}) == {}
    assert _errors({"offsets.storage.topic": " "}) == {"offsets.storage.topic": ["String may not be empty"]}


def test_required_support_needs_the_worker_enabled_and_the_connector_to_say_supported() -> None:
    assert _errors({"exactly.once.support": "required", "answer": "SUPPORTED"}) == {}
    undeclared = _errors({"exactly.once.support": "REQUIRED"})["exactly.once.support"]
    assert len(undeclared) == 1 and undeclared[0].startswith(
        "The connector does not implement the API required for preflight validation of exactly-once source support.")
    assert _errors({"exactly.once.support": "required", "answer": "UNSUPPORTED"}) == {"exactly.once.support": [
        "The connector does not support exactly-once semantics with the provided configuration."]}
    assert _errors({"exactly.once.support": "required", "answer": "SUPPORTED"}, enabled=False) == {
        "exactly.once.support": ["This worker does not have exactly-once source support enabled."]}
    assert _errors({"exactly.once.support": "sometimes"}) == {"exactly.once.support": [
        "String must be one of (case insensitive): requested, required"]}


def test_connector_boundary_needs_a_connector_that_defines_them() -> None:
    assert _errors({"transaction.boundary": "connector", "boundaries": "SUPPORTED"}) == {}
    assert _errors({"transaction.boundary": "connector"}) == {"transaction.boundary": [
        "The connector does not support connector-defined transaction boundaries with the given configuration. "
        "Please reconfigure it to use a different transaction boundary definition."]}
    assert _errors({"transaction.boundary": "batch"}) == {"transaction.boundary": [
        "String must be one of (case insensitive): poll, interval, connector"]}
    assert _errors({"transaction.boundary.interval.ms": "-1"}) == {"transaction.boundary.interval.ms": [
        "Value must be at least 0"]}


def test_the_herder_validates_a_source_connector_with_the_exactly_once_keys(tmp_path: Any) -> None:
    config = WorkerConfig.from_props({"key.converter": "JsonConverter", "value.converter": "JsonConverter"}, "w:1")
    herder = StandaloneHerder(Worker(config, MemoryOffsetBackingStore(), listener=None))  # type: ignore[arg-type]
    infos = herder.validate({"connector.class": "FileStreamSource", "name": "f", "topic": "t",
                             "file": str(tmp_path / "in.txt"), "exactly.once.support": "required"})
    by_name = {c["definition"]["name"]: c for c in infos["configs"]}
    assert by_name["transaction.boundary"]["definition"]["group"] == "Exactly Once Support"
    assert "This worker does not have exactly-once source support enabled." in (
        by_name["exactly.once.support"]["value"]["errors"])


def _record(n: int) -> SourceRecord:
    return SourceRecord(source_partition={"p": 0}, source_offset={"n": n}, topic="t", value=n)


def test_poll_boundary_commits_every_batch_and_interval_only_when_due() -> None:
    poll = TransactionBoundaryManager(TransactionBoundary.POLL, 0, now_ms=0)
    assert [poll.after_batch(t) for t in (1, 2)] == [BoundaryDecision.COMMIT] * 2
    assert poll.after_record(_record(1)) is BoundaryDecision.NONE
    interval = boundary_manager({"transaction.boundary": "interval", "transaction.boundary.interval.ms": "100"},
                                offset_flush_interval_ms=60000, now_ms=1000, context=None)
    decisions = [interval.after_batch(t) for t in (1050, 1099, 1100, 1150, 1210)]
    assert decisions == [BoundaryDecision.NONE, BoundaryDecision.NONE, BoundaryDecision.COMMIT,
                         BoundaryDecision.NONE, BoundaryDecision.COMMIT]
    assert interval.at_stop(1211) is BoundaryDecision.COMMIT
    fallback = boundary_manager({"transaction.boundary": "INTERVAL"}, offset_flush_interval_ms=500, now_ms=0,
                                context=None)
    assert fallback.interval_ms == 500


def test_connector_boundary_follows_the_transaction_context() -> None:
    with pytest.raises(ValueError):
        TransactionBoundaryManager(TransactionBoundary.CONNECTOR, 0, now_ms=0)
    context = WorkerTransactionContext()
    manager = boundary_manager({"transaction.boundary": "connector"}, 1000, 0, context)
    first, second = _record(1), _record(2)
    assert manager.after_batch(5) is BoundaryDecision.NONE
    context.commit_transaction(second)
    assert (manager.after_record(first), manager.after_record(second)) == (BoundaryDecision.NONE,
                                                                           BoundaryDecision.COMMIT)
    assert manager.after_record(second) is BoundaryDecision.NONE  # asked once, taken once
    context.abort_transaction(first)
    assert manager.after_record(first) is BoundaryDecision.ABORT_THEN_COMMIT
    context.commit_transaction()
    assert manager.after_batch(6) is BoundaryDecision.COMMIT and manager.after_batch(7) is BoundaryDecision.NONE
    context.abort_transaction()
    assert manager.at_stop(8) is BoundaryDecision.ABORT_THEN_COMMIT
    assert manager.at_stop(9) is BoundaryDecision.NONE


def test_task_count_records_decide_the_fencing_round() -> None:
    state = FencingState()
    source = ExactlyOnceSource(group_id="g", client_config={}, offset_topic="o", rest_url="http://x",
                               read_offsets_to_end=lambda: None, offsets_committed=lambda values: None)
    source.fencing = state
    written: list[tuple[str, Any]] = []
    source.fence_zombies("c", 1, written.append)
    assert written == []  # no task configs yet: nothing pending
    state.apply("commit-c", {"tasks": 1})
    assert state.plan("c") == (True, 0)
    source.fence_zombies("c", 1, written.append)  # first generation: no producers to fence, a record
    assert written == [("tasks-fencing-c", {"task-count": 1})]
    state.apply("tasks-fencing-c", {"task-count": 1})
    assert state.plan("c") == (False, 0)
    state.apply("commit-c", {"tasks": 1})
    source.fence_zombies("c", 1, written.append)  # one task before and after: it fences itself
    assert written[-1] == ("tasks-fencing-c", {"task-count": 1})
    state.apply("tasks-fencing-c", {"task-count": 3})
    state.apply("commit-c", {"tasks": 2})
    assert state.plan("c") == (True, 3)
    state.apply("connector-c", None)
    assert state.plan("c") == (False, 0)
    assert transactional_id("connect-cluster", "c", 2) == "connect-cluster-c-2"


def _herder(support: str) -> Any:
    from tomyum.connect.distributed import DistributedHerder
    from tomyum.connect.offsets_topics import KafkaOffsetBackingStore
    props = {"key.converter": "JsonConverter", "value.converter": "JsonConverter", "group.id": "g",
             "config.storage.topic": "cfg", "offset.storage.topic": "off", "status.storage.topic": "sts",
             "exactly.once.source.support": support}
    worker = Worker(WorkerConfig.from_props(props, "w:1"), MemoryOffsetBackingStore(), listener=None)  # type: ignore[arg-type]
    return DistributedHerder(worker, KafkaOffsetBackingStore(), props, "http://w:1/")


@pytest.mark.parametrize(("support", "leader_id", "task_transactions"), [
    ("disabled", None, False), ("preparing", "connect-cluster-g", False), ("enabled", "connect-cluster-g", True)])
def test_preparing_makes_the_leader_transactional_but_not_the_tasks(support: str, leader_id: str | None,
                                                                     task_transactions: bool) -> None:
    """Kafka's rolling upgrade: ``preparing`` on every worker first (the leader's config-topic
    writes fence earlier leaders), then ``enabled`` (tasks write in transactions, zombies fenced)."""
    from tomyum.connect.worker import WorkerSourceTask
    herder = _herder(support)
    assert herder.config_writer.transactional_id == leader_id
    assert herder.exactly_once_enabled is task_transactions
    assert (herder.worker.source_task_factory is not WorkerSourceTask) is task_transactions


class _Producer:
    """A transactional producer that records what it is asked; ``fail`` names the step that raises."""

    def __init__(self, config: dict[str, Any], journal: list[str], fail: str = "") -> None:
        self.journal, self.fail = journal, fail
        journal.append(f"new {config['transactional.id']}")

    def _step(self, name: str) -> None:
        self.journal.append(name)
        if name == self.fail:
            raise RuntimeError(f"{name} failed")

    def init_transactions(self, timeout: float) -> None:
        self._step("init")

    def begin_transaction(self) -> None:
        self._step("begin")

    def produce(self, topic: str, key: bytes | None = None, value: bytes | None = None, **kwargs: Any) -> None:
        self._step(f"produce {topic} {key!r}")

    def commit_transaction(self, timeout: float) -> None:
        self._step("commit")

    def flush(self, timeout: float) -> int:
        return 0


def test_the_transactional_leader_claims_once_writes_in_transactions_and_gives_up_on_failure() -> None:
    from tomyum.connect.config_writer import ConfigTopicWriter
    from tomyum.connect.kafka_log import KafkaBasedLog
    journal: list[str] = []
    fail = {"step": ""}
    writer = ConfigTopicWriter(KafkaBasedLog("cfg", {}, lambda *a: None), {}, "connect-cluster-g",
                               producer_factory=lambda c: _Producer(c, journal, fail["step"]))
    writer.claim_write_privileges()
    writer.claim_write_privileges()  # already claimed: no second producer, nobody fenced
    writer.write([(b"connector-a", b"{}"), (b"commit-a", b"{}")])
    assert journal == ["new connect-cluster-g", "init", "begin", "produce cfg b'connector-a'",
                       "produce cfg b'commit-a'", "commit"]
    writer.relinquish_write_privileges()
    journal.clear()
    fail["step"] = "commit"
    with pytest.raises(ConnectError, match="^Failed to perform fencable send to config topic: commit failed$"):
        writer.write([(b"connector-a", None)])
    assert writer.producer is None  # a fenced or failed leader claims again before its next write
    fail["step"] = "init"
    with pytest.raises(ConnectError, match="Failed to create and initialize fencable producer for config topic"):
        writer.claim_write_privileges()
    assert writer.producer is None
