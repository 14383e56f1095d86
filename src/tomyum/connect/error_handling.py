"""Error handling with Kafka's meaning (KIP-298): ``errors.tolerance``, retries with backoff,
``errors.log.*`` and, for sinks, the dead letter queue with ``__connect.errors.*`` headers.

:meth:`RetryWithToleranceOperator.execute` runs one stage (converter, transform, put) of one
record: a retriable failure is retried with exponential backoff (300 ms doubling, capped at
``errors.retry.delay.max.ms``) until ``errors.retry.timeout`` has passed; then, with tolerance
``none`` the task fails (:class:`ToleranceExceeded`), with ``all`` the failure is logged
and reported and the record skipped (``execute`` returns :data:`SKIPPED`).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from tomyum.connect.connector import ConnectError, RetriableError

log = logging.getLogger("tomyum.connect.errors")

T = TypeVar("T")

HEADER_PREFIX = "__connect.errors."
ERROR_HEADER_ORIG_TOPIC = HEADER_PREFIX + "topic"
ERROR_HEADER_ORIG_PARTITION = HEADER_PREFIX + "partition"
ERROR_HEADER_ORIG_OFFSET = HEADER_PREFIX + "offset"
ERROR_HEADER_CONNECTOR_NAME = HEADER_PREFIX + "connector.name"
ERROR_HEADER_TASK_ID = HEADER_PREFIX + "task.id"
ERROR_HEADER_STAGE = HEADER_PREFIX + "stage"
ERROR_HEADER_EXECUTING_CLASS = HEADER_PREFIX + "class.name"
ERROR_HEADER_EXCEPTION = HEADER_PREFIX + "exception.class.name"
ERROR_HEADER_EXCEPTION_MESSAGE = HEADER_PREFIX + "exception.message"
ERROR_HEADER_EXCEPTION_STACK_TRACE = HEADER_PREFIX + "exception.stacktrace"


class Stage(enum.Enum):
    KEY_CONVERTER = "KEY_CONVERTER"
    VALUE_CONVERTER = "VALUE_CONVERTER"
    HEADER_CONVERTER = "HEADER_CONVERTER"
    TRANSFORMATION = "TRANSFORMATION"
    TASK_PUT = "TASK_PUT"
    TASK_POLL = "TASK_POLL"
    KAFKA_PRODUCE = "KAFKA_PRODUCE"
    KAFKA_CONSUME = "KAFKA_CONSUME"


class ToleranceExceeded(ConnectError):
    def __init__(self, cause: BaseException) -> None:
        super().__init__("Tolerance exceeded in error handler")
        self.__cause__ = cause


class _Skipped:
    def __repr__(self) -> str:
        return "SKIPPED"


SKIPPED: Any = _Skipped()


@dataclasses.dataclass(slots=True, kw_only=True)
class ProcessingContext:
    """What failed, where: the original consumer record (sinks), stage, class, error."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    value: bytes | None = None
    headers: list[tuple[str, bytes | None]] = dataclasses.field(default_factory=list)
    stage: Stage = Stage.TASK_POLL
    executing_class: str = ""
    error: BaseException | None = None


class ErrorReporter(Protocol):
    def report(self, context: ProcessingContext) -> None: ...


def java_name(error: BaseException) -> str:
    """The exception's class name as reported in headers and status traces."""
    from tomyum.connect.data import DataError
    if isinstance(error, DataError):
        return "org.apache.kafka.connect.errors.DataException"
    if isinstance(error, RetriableError):
        return "org.apache.kafka.connect.errors.RetriableException"
    if isinstance(error, ConnectError):
        return "org.apache.kafka.connect.errors.ConnectException"
    return f"{type(error).__module__}.{type(error).__qualname__}"


class LogReporter:
    def __init__(self, task_id: str, include_messages: bool) -> None:
        self.task_id = task_id
        self.include_messages = include_messages

    def report(self, context: ProcessingContext) -> None:
        where = f"Error encountered in task {self.task_id}. Executing stage '{context.stage.value}' " \
                f"with class '{context.executing_class}'"
        if context.topic is not None:
            where += f", where consumed record is {{topic='{context.topic}', partition={context.partition}, " \
                     f"offset={context.offset}}}" if self.include_messages else ""
        log.error("%s.", where, exc_info=context.error)


class DeadLetterQueueReporter:
    """Produces the original record (raw key, value, headers) to the DLQ topic, with the
    ``__connect.errors.*`` context headers when ``errors.deadletterqueue.context.headers.enable``."""

    def __init__(self, produce: Callable[[str, bytes | None, bytes | None, list[tuple[str, bytes | None]]], None],
                 topic: str, connector: str, task: int, context_headers: bool) -> None:
        self._produce = produce
        self.topic = topic
        self.connector = connector
        self.task = task
        self.context_headers = context_headers

    def report(self, context: ProcessingContext) -> None:
        if context.topic is None:
            return  # Kafka's DLQ serves sink connectors only
        headers = list(context.headers)
        if self.context_headers:
            def add(key: str, value: object) -> None:
                headers.append((key, str(value).encode("utf-8")))
            add(ERROR_HEADER_ORIG_TOPIC, context.topic)
            add(ERROR_HEADER_ORIG_PARTITION, context.partition)
            add(ERROR_HEADER_ORIG_OFFSET, context.offset)
            add(ERROR_HEADER_CONNECTOR_NAME, self.connector)
            add(ERROR_HEADER_TASK_ID, self.task)
            add(ERROR_HEADER_STAGE, context.stage.value)
            add(ERROR_HEADER_EXECUTING_CLASS, context.executing_class)
            if context.error is not None:
                add(ERROR_HEADER_EXCEPTION, java_name(context.error))
                add(ERROR_HEADER_EXCEPTION_MESSAGE, str(context.error))
                add(ERROR_HEADER_EXCEPTION_STACK_TRACE,
                    "".join(traceback.format_exception(context.error)))
        self._produce(self.topic, context.key, context.value, headers)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ErrorConfig:
    tolerance_all: bool = False
    retry_timeout_ms: int = 0
    retry_delay_max_ms: int = 60_000
    log_enable: bool = False
    log_include_messages: bool = False
    dlq_topic: str = ""
    dlq_replication_factor: int = 3
    dlq_context_headers: bool = False

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> ErrorConfig:
        def b(key: str) -> bool:
            return str(props.get(key, "false")).strip().lower() == "true"
        tolerance = str(props.get("errors.tolerance", "none")).strip().lower()
        if tolerance not in ("none", "all"):
            raise ConnectError(f"Invalid value {tolerance} for configuration errors.tolerance: "
                               "String must be one of: none, all")
        return cls(tolerance_all=tolerance == "all",
                   retry_timeout_ms=int(props.get("errors.retry.timeout", "0")),
                   retry_delay_max_ms=int(props.get("errors.retry.delay.max.ms", "60000")),
                   log_enable=b("errors.log.enable"), log_include_messages=b("errors.log.include.messages"),
                   dlq_topic=str(props.get("errors.deadletterqueue.topic.name", "")).strip(),
                   dlq_replication_factor=int(props.get("errors.deadletterqueue.topic.replication.factor", "3")),
                   dlq_context_headers=b("errors.deadletterqueue.context.headers.enable"))


class RetryWithToleranceOperator:
    """Kafka's RetryWithToleranceOperator for one task (thread-confined but stoppable)."""

    INITIAL_BACKOFF_MS = 300

    def __init__(self, config: ErrorConfig, reporters: list[ErrorReporter], stopping: threading.Event) -> None:
        self.config = config
        self.reporters = reporters
        self.stopping = stopping
        self.total_failures = 0
        self.total_skipped = 0

    def execute(self, operation: Callable[[], T], context: ProcessingContext,
                tolerated: tuple[type[BaseException], ...] = (Exception,)) -> T:
        deadline = time.monotonic() + self.config.retry_timeout_ms / 1000
        backoff_ms = self.INITIAL_BACKOFF_MS
        while True:
            try:
                return operation()
            except RetriableError as e:
                if time.monotonic() < deadline and not self.stopping.is_set():
                    delay = min(backoff_ms, self.config.retry_delay_max_ms, max(0.0, (deadline - time.monotonic()) * 1000))
                    self.stopping.wait(delay / 1000)
                    backoff_ms *= 2
                    continue
                return self._failed(e, context)  # type: ignore[no-any-return]
            except tolerated as e:
                return self._failed(e, context)  # type: ignore[no-any-return]

    def execute_failed(self, error: BaseException, context: ProcessingContext) -> None:
        """Kafka's executeFailed: an operation that already failed (a sink's errant record) is
        counted and reported; with tolerance ``none`` the task fails (:class:`ToleranceExceeded`)."""
        self._failed(error, context)

    def _failed(self, error: BaseException, context: ProcessingContext) -> Any:
        self.total_failures += 1
        context.error = error
        if not self.config.tolerance_all:
            raise ToleranceExceeded(error)
        self.total_skipped += 1
        for r in self.reporters:
            r.report(context)
        return SKIPPED
