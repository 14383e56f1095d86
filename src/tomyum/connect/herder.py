"""The herder: what the REST API talks to (Kafka's Herder / AbstractHerder).

:class:`AbstractHerder` holds what every mode shares — connector and task statuses reported by
the worker, config validation (``/config/validate``), plugin listing, offsets reading — and the
REST errors with Kafka's status codes. How configurations are stored and agreed on is the
subclass's: :class:`tomyum.connect.standalone.StandaloneHerder` keeps them in memory; a
distributed herder keeps them in the config topic and forwards writes to the leader.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping
from typing import Any

from tomyum.connect import exactly_once, plugins
from tomyum.connect.config import NO_DEFAULT, ConfigDef, ConfigType, ConfigValue, Importance
from tomyum.connect.connector import ConnectError, SinkConnector, SourceConnector
from tomyum.connect.transforms import TransformationChain
from tomyum.connect.worker import State, TargetState, TaskId, Worker

log = logging.getLogger("tomyum.connect.herder")


class RestError(Exception):
    """A REST failure with Kafka's status code; the body is ``{"error_code", "message"}``."""

    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NotFoundError(RestError):
    status = 404


class AlreadyExistsError(RestError):
    status = 409


class BadRequestError(RestError):
    status = 400


REBALANCING = "Cannot complete request because of a conflicting operation (e.g. worker rebalance)"


class ForwardError(RestError):
    """This worker cannot serve the request; ``url`` (the leader, or a task's owner) can. With
    no url (no leader known: a rebalance is under way) it answers 409, as Kafka does."""

    status = 409

    def __init__(self, url: str) -> None:
        super().__init__(REBALANCING if not url else f"Request should be handled by {url}")
        self.url = url


@dataclasses.dataclass(slots=True)
class Status:
    state: State
    worker_id: str
    trace: str | None = None

    def json(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = dict(extra)
        out["state"] = self.state.value
        out["worker_id"] = self.worker_id
        if self.trace is not None:
            out["trace"] = self.trace
        return out


def _common_config(sink: bool) -> ConfigDef:
    """ConnectorConfig's (and SinkConnectorConfig's) own keys, grouped as Kafka groups them."""
    d = ConfigDef()
    common, errs = "Common", "Error Handling"
    d.define("name", ConfigType.STRING, NO_DEFAULT, Importance.HIGH,
             "Globally unique name to use for this connector.", group=common, order=1, display_name="Connector name")
    d.define("connector.class", ConfigType.STRING, NO_DEFAULT, Importance.HIGH,
             "Name or alias of the class for this connector.", group=common, order=2, display_name="Connector class")
    d.define("tasks.max", ConfigType.INT, 1, Importance.HIGH, "Maximum number of tasks to use for this connector.",
             group=common, order=3, display_name="Tasks max",
             validator=lambda n, v: _at_least(n, v, 1))
    d.define("key.converter", ConfigType.CLASS, None, Importance.LOW, "Converter class used to convert between "
             "Kafka Connect format and the serialized form that is written to Kafka.", group=common, order=5)
    d.define("value.converter", ConfigType.CLASS, None, Importance.LOW, "Converter class used to convert between "
             "Kafka Connect format and the serialized form that is written to Kafka.", group=common, order=6)
    d.define("header.converter", ConfigType.CLASS, None, Importance.LOW, "HeaderConverter class.", group=common, order=7)
    d.define("transforms", ConfigType.LIST, "", Importance.LOW, "Aliases for the transformations to be applied to records.",
             group="Transforms", order=8)
    d.define("predicates", ConfigType.LIST, "", Importance.LOW, "Aliases for the predicates used by transformations.",
             group="Predicates", order=9)
    d.define("errors.retry.timeout", ConfigType.LONG, 0, Importance.MEDIUM,
             "The maximum duration in milliseconds that a failed operation will be reattempted.", group=errs, order=1)
    d.define("errors.retry.delay.max.ms", ConfigType.LONG, 60000, Importance.MEDIUM,
             "The maximum duration in milliseconds between consecutive retry attempts.", group=errs, order=2)
    d.define("errors.tolerance", ConfigType.STRING, "none", Importance.MEDIUM,
             "Behavior for tolerating errors during connector operation.", group=errs, order=3,
             validator=lambda n, v: _one_of(n, v, ("none", "all")))
    d.define("errors.log.enable", ConfigType.BOOLEAN, False, Importance.MEDIUM, "Log errors.", group=errs, order=4)
    d.define("errors.log.include.messages", ConfigType.BOOLEAN, False, Importance.MEDIUM,
             "Include the failed records in the log.", group=errs, order=5)
    if sink:
        d.define("topics", ConfigType.LIST, "", Importance.HIGH, "List of topics to consume.", group=common, order=4)
        d.define("topics.regex", ConfigType.STRING, "", Importance.HIGH, "Regular expression of topics to consume.",
                 group=common, order=4)
        d.define("errors.deadletterqueue.topic.name", ConfigType.STRING, "", Importance.MEDIUM,
                 "The name of the topic to be used as the dead letter queue.", group=errs, order=6)
        d.define("errors.deadletterqueue.topic.replication.factor", ConfigType.SHORT, 3, Importance.MEDIUM,
                 "Replication factor used to create the dead letter queue topic.", group=errs, order=7)
        d.define("errors.deadletterqueue.context.headers.enable", ConfigType.BOOLEAN, False, Importance.MEDIUM,
                 "Add headers containing error context to the DLQ records.", group=errs, order=8)
    return d


def _at_least(name: str, value: Any, low: int) -> None:
    from tomyum.connect.config import ConfigError
    if value is None or value < low:
        raise ConfigError(name, value, f"Value must be at least {low}")


def _one_of(name: str, value: Any, options: tuple[str, ...]) -> None:
    from tomyum.connect.config import ConfigError
    if str(value).lower() not in options:
        raise ConfigError(name, value, "String must be one of: " + ", ".join(options))


ALTERED = "The offsets for this connector have been altered successfully"
ALTERED_FRAMEWORK = ("The Connect framework-managed offsets for this connector have been altered successfully. "
                     "However, if this connector manages offsets externally, they will need to be manually altered "
                     "in the system that the connector uses.")
RESET = "The offsets for this connector have been reset successfully"
RESET_FRAMEWORK = ("The Connect framework-managed offsets for this connector have been reset successfully. "
                   "However, if this connector manages offsets externally, they will need to be manually reset "
                   "in the system that the connector uses.")


class AbstractHerder:
    """Statuses, validation and read-only views shared by every herder. Thread-safe."""

    def __init__(self, worker: Worker, kafka_cluster_id: str | None = None) -> None:
        self.worker = worker
        self.worker_id = worker.config.worker_id
        self.kafka_cluster_id = kafka_cluster_id
        self.lock = threading.RLock()
        #: guards the statuses only; tasks report through it while the herder holds ``lock``
        self.status_lock = threading.RLock()
        self.connector_status: dict[str, Status] = {}
        self.task_status: dict[TaskId, Status] = {}
        self.active_topics: dict[str, set[str]] = {}
        self.ready = False
        #: ``exactly.once.source.support=enabled`` (KIP-618): distributed workers only
        self.exactly_once_enabled = False

    # StatusListener -------------------------------------------------------------------------
    def on_connector_state(self, connector: str, state: State, trace: str | None) -> None:
        with self.status_lock:
            current = self.connector_status.get(connector)
            if state is State.UNASSIGNED and current is not None and current.state is State.FAILED:
                return
            self.connector_status[connector] = Status(state, self.worker_id, trace)

    def on_task_state(self, task: TaskId, state: State, trace: str | None) -> None:
        with self.status_lock:
            current = self.task_status.get(task)
            if state is State.UNASSIGNED and current is not None and current.state is State.FAILED:
                return
            self.task_status[task] = Status(state, self.worker_id, trace)

    def on_topic_used(self, connector: str, topic: str, task: int = 0) -> None:
        with self.status_lock:
            self.active_topics.setdefault(connector, set()).add(topic)

    # to be provided by the subclass ---------------------------------------------------------
    def connectors(self) -> list[str]:
        raise NotImplementedError

    def connector_config(self, name: str) -> dict[str, str]:
        raise NotImplementedError

    def target_state(self, name: str) -> TargetState:
        raise NotImplementedError

    def task_configs(self, name: str) -> list[dict[str, str]]:
        raise NotImplementedError

    # shared views -----------------------------------------------------------------------------
    def _require(self, name: str) -> dict[str, str]:
        try:
            return self.connector_config(name)
        except KeyError:
            raise NotFoundError(f"Connector {name} not found") from None

    def connector_type(self, config: Mapping[str, str]) -> str:
        try:
            return plugins.connector_type(plugins.connector_class(config.get("connector.class", "")))
        except ConnectError:
            return "unknown"

    def connector_info(self, name: str) -> dict[str, Any]:
        config = self._require(name)
        return {"name": name, "config": dict(config),
                "tasks": [{"connector": name, "task": i} for i in range(len(self.task_configs(name)))],
                "type": self.connector_type(config)}

    def connector_status_json(self, name: str) -> dict[str, Any]:
        config = self._require(name)
        with self.status_lock:
            status = self.connector_status.get(name, Status(State.UNASSIGNED, self.worker_id))
            tasks = sorted((t, s) for t, s in self.task_status.items() if t.connector == name)
        count = len(self.task_configs(name))
        return {"name": name, "connector": status.json(),
                "tasks": [s.json(id=t.task) for t, s in tasks if t.task < count],
                "type": self.connector_type(config)}

    def task_status_json(self, name: str, task: int) -> dict[str, Any]:
        self._require(name)
        with self.status_lock:
            status = self.task_status.get(TaskId(name, task))
        if status is None or task >= len(self.task_configs(name)):
            raise NotFoundError(f"No status found for task {name}-{task}")
        return status.json(id=task)

    def task_infos(self, name: str) -> list[dict[str, Any]]:
        self._require(name)
        return [{"id": {"connector": name, "task": i}, "config": c} for i, c in enumerate(self.task_configs(name))]

    def topics(self, name: str) -> dict[str, Any]:
        self._require(name)
        with self.status_lock:
            topics = sorted(self.active_topics.get(name, set()))
        return {name: {"connector": name, "topics": topics}}

    def reset_topics(self, name: str) -> None:
        self._require(name)
        with self.status_lock:
            self.active_topics.pop(name, None)

    # validation ---------------------------------------------------------------------------------
    def validate(self, config: Mapping[str, str]) -> dict[str, Any]:
        """Kafka's validateConnectorConfig: the ConfigInfos body of ``/config/validate``."""
        class_name = config.get("connector.class")
        if not class_name:
            raise BadRequestError("Connector config " + str(dict(config)) + " contains no connector type")
        try:
            cls = plugins.connector_class(class_name)
        except ConnectError as e:
            raise BadRequestError(f"Failed to find any class that implements Connector and which name matches "
                                  f"{class_name}, available connectors are: "
                                  + ", ".join(n for n, _ in plugins.listed(plugins.CONNECTOR))) from e
        sink = issubclass(cls, SinkConnector)
        common = _common_config(sink)
        values: dict[str, ConfigValue] = common.validate(config)
        defs: list[tuple[ConfigDef, str]] = [(common, n) for n in common.keys]
        if sink:
            topics = config.get("topics", "").strip()
            regex = config.get("topics.regex", "").strip()
            if topics and regex:
                msg = "topics and topics.regex are mutually exclusive options, but both are set."
                values["topics"].errors.append(msg)
                values["topics.regex"].errors.append(msg)
            elif not topics and not regex:
                msg = "Must configure one of topics or topics.regex"
                values["topics"].errors.append(msg)
                values["topics.regex"].errors.append(msg)
        try:
            TransformationChain.from_props(config)
        except Exception as e:  # a transform or predicate that does not configure
            values["transforms"].errors.append(str(e))
        connector = cls()
        own_def = connector.config()
        own = connector.validate(config)
        for k, v in own.items():
            if k in values:
                values[k].errors.extend(e for e in v.errors if e not in values[k].errors)
            else:
                values[k] = v
                if k in own_def.keys:  # an undeclared key's error still counts in error_count
                    defs.append((own_def, k))
        if isinstance(connector, SourceConnector):
            eos_def = exactly_once.source_config_def()
            eos_values = eos_def.validate(config)
            exactly_once.validate_source(connector, config, eos_values, self.exactly_once_enabled)
            for k, v in eos_values.items():
                if k not in values:
                    values[k] = v
                    defs.append((eos_def, k))
        configs = []
        groups: list[str] = []
        for d, name in defs:
            key = d.keys[name]
            if key.group and key.group not in groups:
                groups.append(key.group)
            configs.append({"definition": d.definition_json(key), "value": ConfigDef.value_json(values[name], key.type)})
        errors = sum(len(v.errors) for v in values.values())
        return {"name": plugins.kafka_name(plugins.CONNECTOR, cls), "error_count": errors,
                "groups": groups, "configs": configs}

    def check_valid(self, config: Mapping[str, str]) -> None:
        infos = self.validate(config)
        if infos["error_count"]:
            lines = [f"Connector configuration is invalid and contains the following {infos['error_count']} error(s):"]
            for c in infos["configs"]:
                lines.extend(c["value"]["errors"])
            lines.append("You can also find the above list of errors at the endpoint "
                         "`/connector-plugins/{connectorType}/config/validate`")
            raise BadRequestError("\n".join(lines))

    # plugins ------------------------------------------------------------------------------------
    @staticmethod
    def connector_plugins(connectors_only: bool = True) -> list[dict[str, Any]]:
        out = [{"class": n, "type": plugins.connector_type(c), "version": getattr(c, "version", "unknown")}
               for n, c in plugins.listed(plugins.CONNECTOR)]
        if not connectors_only:
            for kind, label in ((plugins.TRANSFORMATION, "transformation"), (plugins.PREDICATE, "predicate"),
                                (plugins.CONVERTER, "converter"), (plugins.HEADER_CONVERTER, "header_converter")):
                out.extend({"class": n, "type": label, "version": "4.4.0"} for n, _ in plugins.listed(kind))
        return out

    def plugin_config(self, plugin: str) -> list[dict[str, Any]]:
        try:
            cls = plugins.connector_class(plugin)
        except ConnectError:
            raise NotFoundError(f"Unknown plugin {plugin}.") from None
        d = cls().config()
        return [d.definition_json(k) for k in d.keys.values()]

    # writes shared by every mode ----------------------------------------------------------------
    @staticmethod
    def check_name(name: str, config: Mapping[str, str]) -> dict[str, str]:
        """The config as strings; a BadRequestError for a name Kafka rejects."""
        if not name or name.strip() != name or any(ord(c) < 32 for c in name):
            raise BadRequestError("Connector name configuration (name) is invalid: " + repr(name))
        return {str(k): str(v) for k, v in config.items()}

    def put_connector_config(self, name: str, config: Mapping[str, str], allow_replace: bool,
                             initial_state: TargetState = TargetState.STARTED) -> tuple[bool, dict[str, Any]]:
        raise NotImplementedError

    def fence_zombies(self, name: str) -> None:
        """``PUT /connectors/{name}/fence`` (KIP-618); the distributed herder does it."""
        raise RestError("Kafka Connect in standalone mode does not support exactly-once source connectors.")

    def _set_target(self, name: str, target: TargetState) -> None:
        raise NotImplementedError

    def catch_up(self) -> None:
        """Called after a request was forwarded to another worker; nothing to do in one process."""

    def put_task_configs(self, name: str, configs: list[dict[str, str]]) -> None:
        """Kafka's internal ``POST /connectors/{name}/tasks``: distributed workers only."""
        raise BadRequestError("This operation is only for inter-worker communications of distributed workers")

    def pause(self, name: str) -> None:
        self._set_target(name, TargetState.PAUSED)

    def resume(self, name: str) -> None:
        self._set_target(name, TargetState.STARTED)

    def stop_connector(self, name: str) -> None:
        self._set_target(name, TargetState.STOPPED)

    def patch_connector_config(self, name: str, patch: Mapping[str, str | None]) -> dict[str, Any]:
        with self.lock:
            config = self._require(name)
            for k, v in patch.items():
                if v is None:
                    config.pop(k, None)
                else:
                    config[k] = str(v)
            if config.get("name", name) != name:
                raise BadRequestError(f"Connector name configuration ({config['name']}) doesn't match connector "
                                      f"name in the URL ({name})")
            return self.put_connector_config(name, config, True)[1]

    # offsets (KIP-875) ----------------------------------------------------------------------
    def _is_sink(self, config: Mapping[str, str]) -> bool:
        try:
            return issubclass(plugins.connector_class(config["connector.class"]), SinkConnector)
        except (ConnectError, KeyError):
            return False

    def offsets(self, name: str) -> dict[str, Any]:
        config = self._require(name)
        if self._is_sink(config):
            return {"offsets": self.worker.sink_offsets(name, config)}
        return {"offsets": self.worker.source_offsets(name, config)}

    def _check_stopped(self, name: str) -> dict[str, str]:
        config = self._require(name)
        if self.target_state(name) is not TargetState.STOPPED or self.task_configs(name):
            raise BadRequestError("Connectors must be in the STOPPED state before their offsets can be modified. "
                                  "This can be done for the specified connector by issuing a 'PUT' request to the "
                                  f"'/connectors/{name}/stop' endpoint")
        return config

    def alter_offsets(self, name: str, offsets: list[dict[str, Any]]) -> str:
        with self.lock:
            config = self._check_stopped(name)
            try:
                if self._is_sink(config):
                    parsed = []
                    for entry in offsets:
                        p, o = entry.get("partition"), entry.get("offset")
                        if not isinstance(p, dict) or "kafka_topic" not in p or "kafka_partition" not in p:
                            raise BadRequestError("Partitions / offsets need to be provided for an alter offsets request")
                        offset = None if o is None else o.get("kafka_offset")
                        if offset is not None and (not isinstance(offset, int) or offset < 0):
                            raise BadRequestError("Kafka offsets must be non-negative integers")
                        parsed.append((str(p["kafka_topic"]), int(p["kafka_partition"]), offset))
                    managed = self.worker.alter_sink_offsets(name, config, parsed)
                else:
                    pairs = []
                    for entry in offsets:
                        p, o = entry.get("partition"), entry.get("offset")
                        if not isinstance(p, dict) or (o is not None and not isinstance(o, dict)):
                            raise BadRequestError("Partitions / offsets need to be provided for an alter offsets request")
                        pairs.append((p, o))
                    managed = self.worker.alter_source_offsets(name, config, pairs)
            except ConnectError as e:
                raise BadRequestError(f"Failed to alter offsets for connector {name}: {e}") from e
            return ALTERED if managed else ALTERED_FRAMEWORK

    def reset_offsets(self, name: str) -> str:
        with self.lock:
            config = self._check_stopped(name)
            try:
                if self._is_sink(config):
                    managed = self.worker.reset_sink_offsets(name, config)
                else:
                    managed = self.worker.reset_source_offsets(name, config)
            except ConnectError as e:
                raise BadRequestError(f"Failed to reset offsets for connector {name}: {e}") from e
            return RESET if managed else RESET_FRAMEWORK
