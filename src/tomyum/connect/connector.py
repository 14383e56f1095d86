"""The connector API (Kafka's ``org.apache.kafka.connect.{connector,source,sink}``).

A connector is configured once (``start``), splits its work into ``task_configs(max_tasks)``
and declares its keys in ``config()`` (a :class:`ConfigDef`, used by ``/config/validate``).
Tasks run in a thread of their own, started and stopped by the worker:

- a :class:`SourceTask` returns batches of :class:`SourceRecord` from ``poll()`` (``[]`` or
  ``None`` when it has nothing); the worker converts, transforms and produces them, and
  periodically stores the last ``source_offset`` of each ``source_partition`` that Kafka has
  acknowledged; ``commit()`` is called after that, ``commit_record`` per acknowledged record.
  ``context.offset_storage_reader.offset(partition)`` reads what was stored.
- a :class:`SinkTask` gets batches in ``put(records)``; ``flush(offsets)`` / ``pre_commit`` are
  called before the worker commits consumer offsets.

Raise :class:`RetriableError` for a transient failure: the worker retries (source: poll again;
sink: redeliver the batch). Any other exception fails the task (its status becomes FAILED with
the trace), as in Kafka.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tomyum.connect.config import ConfigDef, ConfigError, ConfigValue
from tomyum.connect.data import SinkRecord, SourceRecord


class ConnectError(Exception):
    """Kafka's ConnectException: the connector or task cannot go on."""


class RetriableError(ConnectError):
    """Kafka's RetriableException: the operation may succeed if retried."""


class OffsetStorageReader(Protocol):
    def offset(self, partition: Mapping[str, Any]) -> Mapping[str, Any] | None: ...

    def offsets(self, partitions: list[Mapping[str, Any]]) -> dict[str, Mapping[str, Any] | None]: ...


class ConnectorContext(Protocol):
    def request_task_reconfiguration(self) -> None: ...

    def raise_error(self, error: BaseException) -> None: ...


class TransactionContext(Protocol):
    """Kafka's TransactionContext (KIP-618), offered to a source task only when its connector
    runs with ``transaction.boundary=connector`` on a worker with exactly-once source enabled.
    With a record, the transaction ends after that record; without, after the current batch."""

    def commit_transaction(self, record: SourceRecord | None = None) -> None: ...

    def abort_transaction(self, record: SourceRecord | None = None) -> None: ...


class SourceTaskContext(Protocol):
    @property
    def offset_storage_reader(self) -> OffsetStorageReader: ...

    def configs(self) -> Mapping[str, str]: ...

    @property
    def transaction_context(self) -> TransactionContext | None: ...


class ExactlyOnceSupport(enum.Enum):
    """What ``SourceConnector.exactly_once_support`` answers (Kafka's ExactlyOnceSupport)."""
    SUPPORTED = "SUPPORTED"
    UNSUPPORTED = "UNSUPPORTED"


class ConnectorTransactionBoundaries(enum.Enum):
    """What ``SourceConnector.can_define_transaction_boundaries`` answers."""
    SUPPORTED = "SUPPORTED"
    UNSUPPORTED = "UNSUPPORTED"


class SinkTaskContext(Protocol):
    def configs(self) -> Mapping[str, str]: ...

    def assignment(self) -> set[tuple[str, int]]: ...

    def offset(self, offsets: Mapping[tuple[str, int], int]) -> None: ...

    def request_commit(self) -> None: ...

    def pause(self, *partitions: tuple[str, int]) -> None: ...

    def resume(self, *partitions: tuple[str, int]) -> None: ...
    def errant_record_reporter(self) -> Callable[[SinkRecord, BaseException], None] | None:
        """Kafka's ErrantRecordReporter: report a record ``put`` could not write (to the log and
        the DLQ as ``errors.*`` say; raises to fail the task when ``errors.tolerance=none``)."""


class Connector(abc.ABC):
    """Kafka's Connector. ``version`` is reported by ``/connector-plugins``."""

    version: str = "unknown"
    context: ConnectorContext | None = None

    def initialize(self, context: ConnectorContext) -> None:
        self.context = context

    @abc.abstractmethod
    def start(self, props: Mapping[str, str]) -> None: ...

    @abc.abstractmethod
    def task_class(self) -> type[Task]: ...

    @abc.abstractmethod
    def task_configs(self, max_tasks: int) -> list[dict[str, str]]: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    def config(self) -> ConfigDef:
        return ConfigDef()

    def check_config(self, props: Mapping[str, str]) -> None:
        """The connector's own checks beyond each declared key's type and validator (those a
        ``start`` makes: keys that need each other, values a key's validator cannot judge alone).
        Raise :class:`ConfigError` naming the key at fault. ``start`` should call it, so that
        ``/config/validate`` and a start refuse a config with the same message."""

    def validate(self, props: Mapping[str, str]) -> dict[str, ConfigValue]:
        """Kafka's Connector.validate: the declared keys' values and errors, then, when every
        key is valid on its own, :meth:`check_config`'s error on the key it names."""
        values = self.config().validate(props)
        if any(v.errors for v in values.values()):
            return values
        try:
            self.check_config(props)
        except ConfigError as e:
            values.setdefault(e.name, ConfigValue(e.name, props.get(e.name))).errors.append(e.detail)
        return values


class Task(abc.ABC):
    version: str = "unknown"
    #: the Kafka class this task stands in for, written as ``task.class`` in its task config (a
    #: Kafka worker sharing a distributed cluster instantiates that); None: this Python class
    kafka_class: str | None = None

    @abc.abstractmethod
    def start(self, props: Mapping[str, str]) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...


class SourceTask(Task):
    context: SourceTaskContext

    def initialize(self, context: SourceTaskContext) -> None:
        self.context = context

    @abc.abstractmethod
    def poll(self) -> list[SourceRecord] | None:
        """Records available now, or None/[]; may block briefly, must return soon after ``stop``."""

    def commit(self) -> None:
        """Called after the worker has stored the offsets of what Kafka acknowledged."""

    def commit_record(self, record: SourceRecord, metadata: Any) -> None:
        """Called for each record once Kafka has acknowledged it (or it was filtered out);
        ``metadata`` is None: tomyum does not hand over the RecordMetadata yet."""


class SinkTask(Task):
    context: SinkTaskContext

    def initialize(self, context: SinkTaskContext) -> None:
        self.context = context

    @abc.abstractmethod
    def put(self, records: list[SinkRecord]) -> None: ...

    def flush(self, current_offsets: Mapping[tuple[str, int], int]) -> None:
        """Make everything ``put`` so far durable in the target."""

    def pre_commit(self, current_offsets: Mapping[tuple[str, int], int]) -> Mapping[tuple[str, int], int]:
        """The offsets safe to commit (next offset to read, per partition); flushes by default."""
        self.flush(current_offsets)
        return current_offsets

    def open(self, partitions: list[tuple[str, int]]) -> None:
        pass

    def close(self, partitions: list[tuple[str, int]]) -> None:
        pass


class SourceConnector(Connector):
    def exactly_once_support(self, connector_config: Mapping[str, str]) -> ExactlyOnceSupport | None:
        """KIP-618: whether this connector gives exactly-once delivery with this config; None
        (the default, as Kafka's) means it does not say, and ``exactly.once.support=required``
        then refuses the connector."""
        return None

    def can_define_transaction_boundaries(self, connector_config: Mapping[str, str]) -> ConnectorTransactionBoundaries:
        """KIP-618: whether its tasks use the TransactionContext (``transaction.boundary=connector``)."""
        return ConnectorTransactionBoundaries.UNSUPPORTED

    def alter_offsets(self, connector_config: Mapping[str, str],
                      offsets: Mapping[Mapping[str, Any], Mapping[str, Any] | None]) -> bool:
        """KIP-875: may check the offsets (raise ConnectError to refuse); True if the connector
        keeps no offsets of its own elsewhere."""
        return False


class SinkConnector(Connector):
    TOPICS_CONFIG = "topics"
    TOPICS_REGEX_CONFIG = "topics.regex"

    def alter_offsets(self, connector_config: Mapping[str, str],
                      offsets: Mapping[tuple[str, int], int | None]) -> bool:
        return False
