"""Typed configuration with Kafka's key names and defaults.

Sources, lowest to highest precedence: built-in defaults, a ``server.properties``-style
file, ``TOMYUM_*`` environment variables (``TOMYUM_LOG_RETENTION_MS`` is
``log.retention.ms``), then ``--set key=value``. An unknown key is a :class:`ConfigError`
naming it; a key Kafka has but tomyum does not implement is accepted with a warning.

Topic configs (``retention.ms``, ``cleanup.policy``, ...) resolve per topic: the topic's own
override, else the broker's synonym (``log.retention.ms``), else the default.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tomyum.errors import ConfigError

log = logging.getLogger(__name__)

Validator = Callable[[Any], str | None]


def at_least(low: int | float) -> Validator:
    return lambda v: None if v >= low else f"must be at least {low}"


def between(low: float, high: float) -> Validator:
    return lambda v: None if low <= v <= high else f"must be between {low} and {high}"


def one_of(*allowed: str) -> Validator:
    return lambda v: None if v in allowed else f"must be one of {', '.join(allowed)}"


def each_of(*allowed: str) -> Validator:
    def check(v: list[str]) -> str | None:
        bad = [x for x in v if x not in allowed]
        return f"values must be among {', '.join(allowed)} (not {', '.join(bad)})" if bad else None

    return check


@dataclass(frozen=True, slots=True)
class ConfigDef:
    name: str
    type: str  # int, long, bool, string, list, double
    default: Any
    validator: Validator | None = None
    supported: bool = True
    #: for a topic config, the broker key that supplies its default
    synonym: str | None = None
    #: can be changed while running (AlterConfigs). As in Kafka, a log config is dynamic under
    #: its primary name only (``log.retention.ms``, not ``log.retention.hours``)
    dynamic: bool = True
    sensitive: bool = False


def parse_value(d: ConfigDef, raw: Any) -> Any:
    """Parse a raw (usually string) value for ``d``; raise ConfigError naming the key."""
    if raw is None:
        return None
    try:
        if d.type in ("int", "long"):
            value: Any = int(str(raw).strip())
            if d.type == "int" and not -(2**31) <= value < 2**31:
                raise ValueError("out of the int32 range")
        elif d.type == "double":
            value = float(str(raw).strip())
        elif d.type == "bool":
            text = str(raw).strip().lower()
            if text not in ("true", "false"):
                raise ValueError("expected true or false")
            value = text == "true"
        elif d.type == "list":
            value = [x.strip() for x in raw.split(",") if x.strip()] if isinstance(raw, str) else list(raw)
        else:
            value = str(raw).strip()
    except (TypeError, ValueError) as e:
        raise ConfigError(d.name, f"invalid value {raw!r} for a {d.type}: {e}") from None
    if d.validator is not None and (problem := d.validator(value)) is not None:
        raise ConfigError(d.name, f"invalid value {raw!r}: {problem}")
    return value


def _defs(*defs: ConfigDef) -> dict[str, ConfigDef]:
    return {d.name: d for d in defs}


DAY_MS = 24 * 3600 * 1000
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
#: KIP-1030 (Kafka 4.0): a segment is at least 1 MiB, so that no client can make the broker
#: open a segment (and its files) per batch
MIN_SEGMENT_BYTES = 1 << 20
COMPRESSION = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")

BROKER_CONFIGS = _defs(
    ConfigDef("node.id", "int", 1, at_least(0), dynamic=False),
    ConfigDef("broker.id", "int", -1, dynamic=False),
    ConfigDef("cluster.id", "string", "", dynamic=False),
    ConfigDef("log.dirs", "string", "./data", dynamic=False),
    ConfigDef("log.dir", "string", "", dynamic=False),
    ConfigDef("listeners", "list", ["PLAINTEXT://127.0.0.1:9092"], dynamic=False),
    ConfigDef("advertised.listeners", "list", [], dynamic=False),
    ConfigDef("listener.security.protocol.map", "list",
              ["PLAINTEXT:PLAINTEXT", "SSL:SSL", "SASL_PLAINTEXT:SASL_PLAINTEXT", "SASL_SSL:SASL_SSL"],
              dynamic=False),
    ConfigDef("num.partitions", "int", 1, at_least(1), dynamic=False),
    ConfigDef("default.replication.factor", "int", 1, at_least(1), dynamic=False),
    ConfigDef("auto.create.topics.enable", "bool", True, dynamic=False),
    ConfigDef("delete.topic.enable", "bool", True, dynamic=False),
    ConfigDef("message.max.bytes", "int", 1048588, at_least(0), synonym=None),
    # Kafka's default is 50; an asyncio accept loop is slower than Kafka's acceptor thread, so
    # a burst of connections waits in a longer queue instead of being refused
    # tomyum's own: the most partitions one topic may have (each is a directory and open files)
    ConfigDef("topic.max.partitions", "int", 10000, at_least(1)),
    # tomyum's own: topics auto-created (Metadata, auto.create.topics.enable) get at most this
    # many partitions a second, a burst of twice as many; over it the topic is not created
    ConfigDef("auto.create.topics.partitions.per.second", "double", 10.0, at_least(0.001), dynamic=False),
    # the most partitions this broker holds (the limit KIP-578 proposed): each is a directory
    # and open files; a creation over it is POLICY_VIOLATION
    ConfigDef("max.broker.partitions", "int", 20000, at_least(1)),
    ConfigDef("socket.listen.backlog.size", "int", 1024, at_least(1), dynamic=False),
    ConfigDef("socket.request.max.bytes", "int", 104857600, at_least(1), dynamic=False),
    ConfigDef("log.segment.bytes", "int", 1073741824, at_least(MIN_SEGMENT_BYTES)),
    ConfigDef("log.roll.ms", "long", None),
    ConfigDef("log.roll.hours", "int", 168, at_least(1), dynamic=False),
    ConfigDef("log.retention.ms", "long", None),
    ConfigDef("log.retention.minutes", "int", None, dynamic=False),
    ConfigDef("log.retention.hours", "int", 168, dynamic=False),
    ConfigDef("log.retention.bytes", "long", -1),
    ConfigDef("log.retention.check.interval.ms", "long", 300000, at_least(1), dynamic=False),
    ConfigDef("log.index.interval.bytes", "int", 4096, at_least(0)),
    ConfigDef("log.index.size.max.bytes", "int", 10485760, at_least(4)),
    ConfigDef("log.message.timestamp.type", "string", "CreateTime", one_of("CreateTime", "LogAppendTime")),
    ConfigDef("log.flush.interval.messages", "long", 2**63 - 1, at_least(1)),
    ConfigDef("log.flush.interval.ms", "long", None),
    ConfigDef("log.flush.scheduler.interval.ms", "long", 2**63 - 1, dynamic=False),
    ConfigDef("log.cleanup.policy", "list", ["delete"], each_of("delete", "compact")),
    ConfigDef("log.cleaner.delete.retention.ms", "long", DAY_MS, at_least(0)),
    ConfigDef("log.cleaner.min.cleanable.ratio", "double", 0.5, between(0, 1)),
    ConfigDef("log.cleaner.min.compaction.lag.ms", "long", 0, at_least(0)),
    ConfigDef("log.cleaner.max.compaction.lag.ms", "long", 2**63 - 1, at_least(1)),
    ConfigDef("log.cleaner.enable", "bool", True, dynamic=False),
    ConfigDef("log.cleaner.backoff.ms", "long", 15000, at_least(0)),
    ConfigDef("log.preallocate", "bool", False),
    ConfigDef("log.message.timestamp.before.max.ms", "long", 2**63 - 1, at_least(0)),
    ConfigDef("log.message.timestamp.after.max.ms", "long", 3600000, at_least(0)),
    ConfigDef("compression.type", "string", "producer", one_of(*COMPRESSION)),
    ConfigDef("min.insync.replicas", "int", 1, at_least(1)),
    ConfigDef("unclean.leader.election.enable", "bool", False),
    ConfigDef("offsets.topic.num.partitions", "int", 50, at_least(1), dynamic=False),
    ConfigDef("offsets.topic.replication.factor", "int", 1, at_least(1), dynamic=False),
    ConfigDef("offsets.retention.minutes", "int", 10080, at_least(1), dynamic=False),
    ConfigDef("offsets.retention.check.interval.ms", "int", 600000, at_least(1), dynamic=False),
    ConfigDef("group.initial.rebalance.delay.ms", "int", 3000, at_least(0), dynamic=False),
    ConfigDef("group.min.session.timeout.ms", "int", 6000, at_least(0), dynamic=False),
    ConfigDef("group.max.session.timeout.ms", "int", 1800000, at_least(0), dynamic=False),
    ConfigDef("group.consumer.heartbeat.interval.ms", "int", 5000, at_least(1), dynamic=False),
    ConfigDef("group.consumer.session.timeout.ms", "int", 45000, at_least(1), dynamic=False),
    ConfigDef("transaction.state.log.num.partitions", "int", 50, at_least(1), dynamic=False),
    ConfigDef("transaction.state.log.replication.factor", "int", 1, at_least(1), dynamic=False),
    ConfigDef("transaction.state.log.min.isr", "int", 1, at_least(1), dynamic=False),
    ConfigDef("transactional.id.expiration.ms", "int", 604800000, at_least(1), dynamic=False),
    ConfigDef("transaction.max.timeout.ms", "int", 900000, at_least(1), dynamic=False),
    ConfigDef("producer.id.expiration.ms", "int", 86400000, at_least(1), dynamic=False),
    ConfigDef("producer.id.expiration.check.interval.ms", "int", 600000, at_least(1), dynamic=False),
    ConfigDef("transaction.abort.timed.out.transaction.cleanup.interval.ms", "int", 10000, at_least(1),
              dynamic=False),
    ConfigDef("transaction.remove.expired.transaction.cleanup.interval.ms", "int", 3600000, at_least(1),
              dynamic=False),
    ConfigDef("connections.max.idle.ms", "long", 600000, dynamic=False),
    # tomyum's own: fetched record ranges of at least this many bytes leave by sendfile
    # (zero copy) on plaintext listeners; -1 reads them into memory instead. Read when a
    # connection opens, so a dynamic change applies to new connections
    ConfigDef("fetch.zero.copy.min.bytes", "int", 65536, at_least(-1)),
    ConfigDef("request.timeout.ms", "int", 30000, at_least(0), dynamic=False),
    # ACLs: Kafka's StandardAuthorizer (org.apache.kafka.metadata.authorizer.StandardAuthorizer);
    # empty: no authorizer (ACL APIs answer SECURITY_DISABLED, everyone may do everything)
    ConfigDef("authorizer.class.name", "string", "", one_of("", STANDARD_AUTHORIZER), dynamic=False),
    # principals allowed everything, separated by ";" as Kafka writes them (User:admin;User:ops)
    ConfigDef("super.users", "string", "", dynamic=False),
    ConfigDef("allow.everyone.if.no.acl.found", "bool", False, dynamic=False),
    ConfigDef("shutdown.timeout.ms", "int", 10000, at_least(0), dynamic=False),
)

#: Kafka keys tomyum accepts and ignores, with a warning that says so.
UNSUPPORTED_BROKER_KEYS = frozenset({
    "num.network.threads", "num.io.threads", "num.recovery.threads.per.data.dir",
    "socket.send.buffer.bytes", "socket.receive.buffer.bytes", "zookeeper.connect",
    "zookeeper.connection.timeout.ms", "process.roles", "controller.quorum.voters",
    "controller.quorum.bootstrap.servers", "controller.listener.names",
    "inter.broker.listener.name", "num.replica.fetchers", "replica.lag.time.max.ms",
    "auto.leader.rebalance.enable", "log.cleaner.threads", "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.max.bytes.per.second", "log.cleaner.io.buffer.size", "log.cleaner.io.buffer.load.factor",
    "queued.max.requests", "background.threads", "group.coordinator.rebalance.protocols",
    "share.coordinator.state.topic.replication.factor", "share.coordinator.state.topic.min.isr",
    "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
    "ssl.truststore.location", "ssl.truststore.password", "ssl.client.auth",
    "sasl.enabled.mechanisms", "sasl.mechanism.inter.broker.protocol",

    "metric.reporters", "confluent.support.metrics.enable",
})

TOPIC_CONFIGS = _defs(
    ConfigDef("cleanup.policy", "list", ["delete"], each_of("delete", "compact"), synonym="log.cleanup.policy"),
    ConfigDef("compression.type", "string", "producer", one_of(*COMPRESSION), synonym="compression.type"),
    ConfigDef("delete.retention.ms", "long", DAY_MS, at_least(0), synonym="log.cleaner.delete.retention.ms"),
    ConfigDef("file.delete.delay.ms", "long", 60000, at_least(0)),
    ConfigDef("flush.messages", "long", 2**63 - 1, at_least(1), synonym="log.flush.interval.messages"),
    ConfigDef("flush.ms", "long", 2**63 - 1, at_least(0), synonym="log.flush.interval.ms"),
    ConfigDef("index.interval.bytes", "int", 4096, at_least(0), synonym="log.index.interval.bytes"),
    ConfigDef("max.compaction.lag.ms", "long", 2**63 - 1, at_least(1), synonym="log.cleaner.max.compaction.lag.ms"),
    ConfigDef("max.message.bytes", "int", 1048588, at_least(0), synonym="message.max.bytes"),
    ConfigDef("message.timestamp.type", "string", "CreateTime", one_of("CreateTime", "LogAppendTime"),
              synonym="log.message.timestamp.type"),
    ConfigDef("message.timestamp.before.max.ms", "long", 2**63 - 1, at_least(0),
              synonym="log.message.timestamp.before.max.ms"),
    ConfigDef("message.timestamp.after.max.ms", "long", 3600000, at_least(0),
              synonym="log.message.timestamp.after.max.ms"),
    ConfigDef("message.timestamp.difference.max.ms", "long", 2**63 - 1, at_least(0), supported=False),
    ConfigDef("min.cleanable.dirty.ratio", "double", 0.5, between(0, 1), synonym="log.cleaner.min.cleanable.ratio"),
    ConfigDef("min.compaction.lag.ms", "long", 0, at_least(0), synonym="log.cleaner.min.compaction.lag.ms"),
    ConfigDef("min.insync.replicas", "int", 1, at_least(1), synonym="min.insync.replicas"),
    ConfigDef("preallocate", "bool", False, synonym="log.preallocate"),
    ConfigDef("retention.bytes", "long", -1, synonym="log.retention.bytes"),
    ConfigDef("retention.ms", "long", 7 * DAY_MS, at_least(-1), synonym="log.retention.ms"),
    ConfigDef("segment.bytes", "int", 1073741824, at_least(MIN_SEGMENT_BYTES), synonym="log.segment.bytes"),
    # Kafka 4's internal override of segment.bytes below its 1 MiB minimum, for tests (KIP-1030);
    # not listed by DescribeConfigs
    ConfigDef("internal.segment.bytes", "int", None, at_least(14)),
    ConfigDef("segment.index.bytes", "int", 10485760, at_least(4), synonym="log.index.size.max.bytes"),
    ConfigDef("segment.jitter.ms", "long", 0, at_least(0)),
    ConfigDef("segment.ms", "long", 7 * DAY_MS, at_least(1), synonym="log.roll.ms"),
    ConfigDef("unclean.leader.election.enable", "bool", False, synonym="unclean.leader.election.enable"),
    ConfigDef("message.downconversion.enable", "bool", True, supported=False),
    ConfigDef("local.retention.ms", "long", -2, supported=False),
    ConfigDef("local.retention.bytes", "long", -2, supported=False),
    ConfigDef("remote.storage.enable", "bool", False, supported=False),
    ConfigDef("follower.replication.throttled.replicas", "list", [], supported=False),
    ConfigDef("leader.replication.throttled.replicas", "list", [], supported=False),
)

#: environment variables that belong to tomyum's tools, not to the broker's config
NON_CONFIG_ENV = frozenset({"TOMYUM_BOOTSTRAP", "TOMYUM_LOG_LEVEL", "TOMYUM_DATA_DIR", "TOMYUM_DEBUG",
                            "TOMYUM_TIMEOUT"})


def read_properties(path: Path) -> dict[str, str]:
    """Read a Java-style ``.properties`` file (``key=value`` or ``key: value``, # and ! comments)."""
    out: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(str(path), f"cannot read config file: {e.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        sep = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if sep <= 0:
            raise ConfigError(f"{path}:{number}", f"expected key=value, got {line!r}")
        out[line[:sep].strip()] = line[sep + 1 :].strip()
    return out


def env_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """Broker configs from ``TOMYUM_*`` variables; those of tomyum's own tools (the CLI's, the
    test kit's ``TOMYUM_TEST_*``) are not configs."""
    return {
        name[len("TOMYUM_"):].lower().replace("_", "."): value
        for name, value in environ.items()
        if name.startswith("TOMYUM_") and name not in NON_CONFIG_ENV and not name.startswith("TOMYUM_TEST_")
    }


#: broker keys that stand in for one another, the one that wins first (Kafka's
#: DynamicBrokerConfig.brokerConfigSynonyms): a time in ms, else in minutes, else in hours
BROKER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "log.retention.ms": ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
    "log.roll.ms": ("log.roll.ms", "log.roll.hours"),
}

#: the layers of dynamic broker configs (AlterConfigs on a broker resource), highest first
DYNAMIC_BROKER = "dynamic-broker"    # resource name = this broker's node id
DYNAMIC_DEFAULT = "dynamic-default"  # resource name "" = the cluster-wide default
_UNSET = object()


class BrokerConfig:
    """The broker's configuration: parsed, validated values by Kafka key name.

    Precedence, highest first: the dynamic per-broker layer, the dynamic cluster-wide
    default layer (both set by AlterConfigs at run time), the static configuration (file,
    environment, ``--set``), Kafka's default. Every reader sees a change at once.
    """

    def __init__(self, raw: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = {k: d.default for k, d in BROKER_CONFIGS.items()}
        self._explicit: set[str] = set()
        self._dynamic: dict[str, dict[str, Any]] = {DYNAMIC_BROKER: {}, DYNAMIC_DEFAULT: {}}
        self.update(raw or {})

    @classmethod
    def load(
        cls,
        file: Path | None = None,
        settings: Iterable[tuple[str, str]] = (),
        environ: Mapping[str, str] | None = None,
    ) -> BrokerConfig:
        raw: dict[str, Any] = {}
        if file is not None:
            raw.update(read_properties(file))
        raw.update(env_settings(os.environ if environ is None else environ))
        raw.update(dict(settings))
        return cls(raw)

    def update(self, raw: Mapping[str, Any]) -> None:
        for key, value in raw.items():
            d = BROKER_CONFIGS.get(key)
            if d is None:
                if key in UNSUPPORTED_BROKER_KEYS:
                    log.warning("config %s is not supported by tomyum and is ignored", key)
                    continue
                if key in TOPIC_CONFIGS:
                    raise ConfigError(key, "is a topic config; set the broker default "
                                      f"{TOPIC_CONFIGS[key].synonym or key} instead")
                raise ConfigError(key, "unknown config key")
            self._values[key] = parse_value(d, value)
            self._explicit.add(key)

    def __getitem__(self, key: str) -> Any:
        # one lookup per layer: set_dynamic swaps a layer whole while the cleaner thread reads
        for layer in (self._dynamic[DYNAMIC_BROKER], self._dynamic[DYNAMIC_DEFAULT]):
            value = layer.get(key, _UNSET)
            if value is not _UNSET:
                return value
        return self._values[key]

    def is_default(self, key: str) -> bool:
        return self.source(key) == "default"

    def source(self, key: str) -> str:
        """Where the value of ``key`` comes from: a dynamic layer, "static" or "default"."""
        for layer in (DYNAMIC_BROKER, DYNAMIC_DEFAULT):
            if key in self._dynamic[layer]:
                return layer
        return "static" if key in self._explicit else "default"

    def layers(self, key: str) -> list[tuple[str, Any]]:
        """Every place ``key`` has a value, highest precedence first: [(source, value)]."""
        out = [(layer, self._dynamic[layer][key]) for layer in (DYNAMIC_BROKER, DYNAMIC_DEFAULT)
               if key in self._dynamic[layer]]
        if key in self._explicit:
            out.append(("static", self._values[key]))
        out.append(("default", BROKER_CONFIGS[key].default))
        return out

    def synonyms(self, key: str) -> list[tuple[str, str, Any]]:
        """Every value set for ``key`` or a key that stands in for it (``log.retention.hours``
        for ``log.retention.ms``), as Kafka lists a config's synonyms: layer by layer, highest
        precedence first, within a layer ``key`` before its fallbacks; unset (None) values are
        left out. [(name, source, value)]; the first is where the effective value comes from."""
        names = BROKER_SYNONYMS.get(key, (key,))
        out = [(n, layer, self._dynamic[layer][n]) for layer in (DYNAMIC_BROKER, DYNAMIC_DEFAULT)
               for n in names if self._dynamic[layer].get(n) is not None]
        out += [(n, "static", self._values[n]) for n in names
                if n in self._explicit and self._values[n] is not None]
        out += [(n, "default", BROKER_CONFIGS[n].default) for n in names if BROKER_CONFIGS[n].default is not None]
        return out

    def items(self) -> Iterable[tuple[str, Any]]:
        return ((k, self[k]) for k in self._values)

    def dynamic(self, layer: str) -> Mapping[str, Any]:
        return self._dynamic[layer]

    def set_dynamic(self, layer: str, values: Mapping[str, Any]) -> None:
        """Replace a dynamic layer with parsed ``values`` (see :func:`validate_dynamic_broker_configs`)."""
        self._dynamic[layer] = dict(values)

    # Derived values, computed the way Kafka computes them.

    @property
    def node_id(self) -> int:
        return self["broker.id"] if self["broker.id"] >= 0 and self.is_default("node.id") else self["node.id"]

    def topic_default(self, topic_key: str) -> Any:
        """The broker-level default of a topic config, with Kafka's ms/minutes/hours fallbacks."""
        d = TOPIC_CONFIGS[topic_key]
        if topic_key == "retention.ms":
            if self["log.retention.ms"] is not None:
                return self["log.retention.ms"]
            if self["log.retention.minutes"] is not None:
                return self["log.retention.minutes"] * 60_000
            return self["log.retention.hours"] * 3_600_000
        if topic_key == "segment.ms":
            return self["log.roll.ms"] if self["log.roll.ms"] is not None else self["log.roll.hours"] * 3_600_000
        if topic_key == "flush.ms":
            return self["log.flush.interval.ms"] if self["log.flush.interval.ms"] is not None else d.default
        if d.synonym is not None and d.synonym in self._values:
            return self[d.synonym]
        return d.default


def validate_topic_configs(raw: Mapping[str, str | None]) -> dict[str, Any]:
    """Parse topic config overrides; ConfigError names the first bad key."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        d = TOPIC_CONFIGS.get(key)
        if d is None:
            raise ConfigError(key, "unknown topic config")
        if not d.supported:
            log.warning("topic config %s is not supported by tomyum and is ignored", key)
        out[key] = parse_value(d, value)
    return out


def validate_dynamic_broker_configs(raw: Mapping[str, str | None]) -> dict[str, Any]:
    """Parse broker configs set at run time. ConfigError names the first unknown key, or every
    key that cannot change while running (in Kafka's words), or the first bad value. A None
    value is dropped."""
    unknown = [key for key in raw if key not in BROKER_CONFIGS]
    if unknown:
        raise ConfigError(unknown[0], "unknown broker config")
    static = [key for key in raw if not BROKER_CONFIGS[key].dynamic]
    if static:
        raise ConfigError(", ".join(static), "Cannot update these configs dynamically (static broker "
                          "configs: set them in the config file or with --set and restart)")
    return {key: parse_value(BROKER_CONFIGS[key], value) for key, value in raw.items() if value is not None}


def format_value(value: Any) -> str | None:
    """A config value as Kafka shows it in DescribeConfigs."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """A topic's effective configuration: its overrides over the broker's defaults."""

    broker: BrokerConfig
    overrides: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        if key == "segment.bytes" and self.overrides.get("internal.segment.bytes") is not None:
            return self.overrides["internal.segment.bytes"]
        if key in self.overrides:
            return self.overrides[key]
        return self.broker.topic_default(key)

    def source(self, key: str) -> str:
        """"topic" for an override, else where the broker's synonym comes from
        (a dynamic layer, "static" or "default")."""
        if key in self.overrides:
            return "topic"
        d = TOPIC_CONFIGS[key]
        found = self.broker.synonyms(d.synonym) if d.synonym else []
        return found[0][1] if found else "default"
