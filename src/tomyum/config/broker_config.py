"""Config values: the broker's layers (Kafka's ``KafkaConfig`` with ``DynamicBrokerConfig``)
and a topic's effective configuration (Kafka's ``LogConfig``), resolved from the tables.

Sources, lowest to highest precedence: built-in defaults, a ``server.properties``-style
file, ``TOMYUM_*`` environment variables (``TOMYUM_LOG_RETENTION_MS`` is
``log.retention.ms``), ``--set key=value``, then the dynamic cluster-wide default layer and
the dynamic per-broker layer (AlterConfigs). An unknown key is a :class:`ConfigError` naming
it; a key with ``implemented=False`` is accepted with a warning.

A topic config resolves to the topic's override, else its first broker synonym that is set
(converted to the topic's unit), else its default — one rule for every key, from the
synonyms its definition declares.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from tomyum.config.broker_defs import BROKER_CONFIGS
from tomyum.config.definition import ConfigDef, parse_value
from tomyum.config.topic_defs import TOPIC_CONFIGS
from tomyum.errors import ConfigError

log = logging.getLogger(__name__)

#: environment variables that belong to tomyum's tools, not to the broker's config (the CLI's;
#: the test kit's Kafka jar cache and browser, the streams benchmark's profile: a broker started
#: where one is set must not refuse it as an unknown key)
NON_CONFIG_ENV = frozenset({"TOMYUM_BOOTSTRAP", "TOMYUM_LOG_LEVEL", "TOMYUM_DATA_DIR", "TOMYUM_DEBUG",
                            "TOMYUM_TIMEOUT", "TOMYUM_KAFKA_CACHE", "TOMYUM_CHROMIUM", "TOMYUM_STREAMS_PROFILE"})

#: the layers of dynamic broker configs (AlterConfigs on a broker resource), highest first
DYNAMIC_BROKER = "dynamic-broker"    # resource name = this broker's node id
DYNAMIC_DEFAULT = "dynamic-default"  # resource name "" = the cluster-wide default
_UNSET = object()
LISTENER_PREFIX = "listener.name."
#: broker keys a listener may override
LISTENER_KEY_PREFIXES = ("ssl.", "sasl.", "connections.max.reauth.ms")
#: the listener keys that may change at run time, per broker only, as
#: ``listener.name.<listener>.<key>`` (Kafka's SslConfigs.RECONFIGURABLE_CONFIGS): the stores
DYNAMIC_LISTENER_KEYS = frozenset({
    "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
    "ssl.keystore.certificate.chain", "ssl.keystore.key", "ssl.truststore.type", "ssl.truststore.location",
    "ssl.truststore.password", "ssl.truststore.certificates"})
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI")
#: keys that exist per listener and mechanism: listener.name.<l>.<mechanism>.<key>
PER_MECHANISM_KEYS = frozenset({"sasl.jaas.config", "sasl.server.callback.handler.class",
                                "connections.max.reauth.ms"})

#: broker keys that stand in for one another, the one that wins first (Kafka's
#: DynamicBrokerConfig.brokerConfigSynonyms), derived from the topic configs' synonyms:
#: every key of a chain of two or more maps to the whole chain
BROKER_SYNONYMS: dict[str, tuple[str, ...]] = {
    s.name: tuple(x.name for x in d.synonyms)
    for d in TOPIC_CONFIGS.values() if len(d.synonyms) > 1 for s in d.synonyms
}


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


def _warn_not_implemented(kind: str, key: str) -> None:
    log.warning("%s config %s is not supported by tomyum and is ignored", kind, key)


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
        #: listener.name.<listener>.<key> overrides, by lower-case listener name
        self._listener: dict[str, dict[str, Any]] = {}
        #: topic_default and topic_default_source answers, read on every append: dropped whole
        #: by every change (a reader on another thread fills the dict it started with)
        self._topic_memo: dict[tuple[str, str], Any] = {}
        #: counts the changes: what is derived from topic configs is recomputed after one
        self.generation = 0
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
            if key.startswith(LISTENER_PREFIX):
                self._set_for_listener(key, value)
                continue
            d = BROKER_CONFIGS.get(key)
            if d is None:
                if key in TOPIC_CONFIGS:
                    synonyms = TOPIC_CONFIGS[key].synonyms
                    raise ConfigError(key, "is a topic config; set the broker default "
                                      f"{synonyms[0].name if synonyms else key} instead")
                raise ConfigError(key, "unknown config key")
            if not d.implemented:
                _warn_not_implemented("broker", key)
            self._values[key] = parse_value(d, value)
            self._explicit.add(key)
        self._changed()

    def _changed(self) -> None:
        self._topic_memo = {}
        self.generation += 1

    def _set_for_listener(self, key: str, value: Any) -> None:
        """``listener.name.<listener>.<key>``: a key for one listener (Kafka's per-listener
        overrides): ssl.*, sasl.* and ``<mechanism>.sasl.jaas.config``."""
        listener, _, rest = key[len(LISTENER_PREFIX):].partition(".")
        if not listener or not rest:
            raise ConfigError(key, "expected listener.name.<listener>.<config>")
        mechanism, _, per_mechanism = rest.partition(".")
        if per_mechanism in PER_MECHANISM_KEYS and mechanism.upper() in SASL_MECHANISMS:
            self._listener.setdefault(listener.lower(), {})[rest.lower()] = str(value)
            return
        d = BROKER_CONFIGS.get(rest)
        if d is None or not rest.startswith(LISTENER_KEY_PREFIXES):
            raise ConfigError(key, f"{rest} cannot be set per listener (ssl.*, sasl.*, "
                              "<mechanism>.sasl.jaas.config can)")
        self._listener.setdefault(listener.lower(), {})[rest] = parse_value(d, value)

    def for_listener(self, listener: str, key: str, dynamic: Mapping[str, Any] | None = None) -> Any:
        """``key`` as the listener sees it: its dynamic ``listener.name.<listener>.`` value (in the
        per-broker layer, or in ``dynamic`` standing in for that layer), else its static override,
        else the broker's value (``<mechanism>.sasl.jaas.config`` keys exist only per listener: None)."""
        layer = self._dynamic[DYNAMIC_BROKER] if dynamic is None else dynamic
        prefixed = f"{LISTENER_PREFIX}{listener.lower()}.{key}"
        if prefixed in layer:
            return layer[prefixed]
        overrides = self._listener.get(listener.lower(), {})
        if key in overrides:
            return overrides[key]
        return self[key] if key in BROKER_CONFIGS else None

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
        for ``log.retention.ms``), as Kafka lists a broker config's synonyms: from the first
        value of ``key`` itself on (so ``log.retention.hours`` does not open with
        ``log.retention.ms``)."""
        found = self.values_of(BROKER_SYNONYMS.get(key, (key,)))
        first = next((i for i, (name, _, _) in enumerate(found) if name == key), len(found))
        return found[first:]

    def values_of(self, names: Iterable[str]) -> list[tuple[str, str, Any]]:
        """The values set for ``names``, as Kafka lists synonyms: layer by layer, highest
        precedence first, within a layer in the order given; unset (None) values are left
        out. [(name, source, value)]; the first is where the effective value comes from."""
        names = tuple(names)
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
        self._changed()

    # Derived values, computed the way Kafka computes them.

    @property
    def node_id(self) -> int:
        return self["broker.id"] if self["broker.id"] >= 0 and self.is_default("node.id") else self["node.id"]

    def topic_default(self, topic_key: str) -> Any:
        """The broker-level default of a topic config: its first synonym that is set,
        converted to the topic config's unit, else the topic config's own default."""
        memo = self._topic_memo
        try:
            return memo[("value", topic_key)]
        except KeyError:
            value = memo[("value", topic_key)] = self._topic_default(topic_key)
            return value

    def topic_default_source(self, topic_key: str) -> str:
        """Where the broker-level default of a topic config comes from: the source of its
        first synonym that is set (a dynamic layer, "static", "default"), else "default"."""
        memo = self._topic_memo
        try:
            return str(memo[("source", topic_key)])
        except KeyError:
            found = self.values_of(s.name for s in TOPIC_CONFIGS[topic_key].synonyms)
            source = memo[("source", topic_key)] = found[0][1] if found else "default"
            return source

    def _topic_default(self, topic_key: str) -> Any:
        d = TOPIC_CONFIGS[topic_key]
        for synonym in d.synonyms:
            value = self[synonym.name]
            if value is not None:
                return value * synonym.factor if synonym.factor != 1 else value
        return d.default


def validate_topic_configs(raw: Mapping[str, str | None]) -> dict[str, Any]:
    """Parse topic config overrides; ConfigError names the first bad key."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        d = TOPIC_CONFIGS.get(key)
        if d is None:
            raise ConfigError(key, "unknown topic config")
        if not d.implemented:
            _warn_not_implemented("topic", key)
        out[key] = parse_value(d, value)
    return out


def dynamic_listener_key(key: str) -> tuple[str, str] | None:
    """(listener, key) if ``key`` is ``listener.name.<listener>.<key>`` with a key that may change
    at run time (:data:`DYNAMIC_LISTENER_KEYS`), the listener's name in lower case; else None."""
    if not key.startswith(LISTENER_PREFIX):
        return None
    listener, _, base = key[len(LISTENER_PREFIX):].partition(".")
    return (listener.lower(), base) if listener and base in DYNAMIC_LISTENER_KEYS else None


def broker_config_def(key: str) -> ConfigDef | None:
    """The definition of a broker key, or of a listener-prefixed key that may change at run
    time (named as given); None for an unknown key."""
    found = dynamic_listener_key(key)
    if found is not None:
        return replace(BROKER_CONFIGS[found[1]], name=key)
    return BROKER_CONFIGS.get(key)


def validate_dynamic_broker_configs(raw: Mapping[str, str | None], *, per_broker: bool = True) -> dict[str, Any]:
    """Parse broker configs set at run time (``per_broker``: for this broker, not the
    cluster-wide default). ConfigError names the first unknown key, or every key that cannot
    change while running (in Kafka's words), or the first bad value. A None value is dropped.

    A listener's stores change only per broker and with the listener prefix
    (``listener.name.<l>.ssl.keystore.location``), as in Kafka; the key comes back with the
    listener's name in lower case. Whether the new store fits the listener is the broker's to
    check (:func:`tomyum.security.listener.reconfigured`)."""
    listener_keys = {key: found for key in raw if (found := dynamic_listener_key(key)) is not None}
    unknown = [key for key in raw if key not in BROKER_CONFIGS and key not in listener_keys]
    if unknown:
        raise ConfigError(unknown[0], "unknown broker config")
    unprefixed = sorted(key for key in raw if key in DYNAMIC_LISTENER_KEYS)
    if unprefixed:
        raise ConfigError(", ".join(unprefixed), "These security configs can be dynamically updated only "
                          "per-listener using the listener prefix", refused=True)
    if listener_keys and not per_broker:
        raise ConfigError(", ".join(sorted(listener_keys)), "Cannot update these configs at default cluster "
                          "level, broker id must be specified", refused=True)
    listener_values = {f"{LISTENER_PREFIX}{listener}.{base}": parse_value(BROKER_CONFIGS[base], raw[key])
                       for key, (listener, base) in listener_keys.items() if raw[key] is not None}
    raw = {key: value for key, value in raw.items() if key not in listener_keys}
    # a Kafka key tomyum does not implement is accepted with a warning and ignored, at run time too
    static = [key for key in raw if not BROKER_CONFIGS[key].dynamic and BROKER_CONFIGS[key].implemented]
    if static:
        raise ConfigError(", ".join(static), "Cannot update these configs dynamically (static broker "
                          "configs: set them in the config file or with --set and restart)")
    for key in raw:
        if not BROKER_CONFIGS[key].implemented:
            _warn_not_implemented("broker", key)
    return {key: parse_value(BROKER_CONFIGS[key], value) for key, value in raw.items()
            if value is not None and BROKER_CONFIGS[key].implemented} | listener_values


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """A topic's effective configuration: its overrides over the broker's defaults."""

    broker: BrokerConfig
    overrides: Mapping[str, Any]
    #: :meth:`derived` answers, each with the broker config's generation it was computed in
    _derived: dict[Callable[..., Any], tuple[int, Any]] = field(default_factory=dict, compare=False, repr=False)

    def derived(self, compute: Callable[[TopicConfig], T]) -> T:
        """``compute(self)``, remembered until the broker's configs change (a topic's own
        overrides never change: a new TopicConfig comes with new ones). For what the hot paths
        read on every append, a dozen lookups through the config layers in one."""
        generation = self.broker.generation
        hit = self._derived.get(compute)
        if hit is not None and hit[0] == generation:
            return hit[1]  # type: ignore[no-any-return]
        value = compute(self)
        self._derived[compute] = (generation, value)
        return value

    def __getitem__(self, key: str) -> Any:
        if key == "segment.bytes" and self.overrides.get("internal.segment.bytes") is not None:
            return self.overrides["internal.segment.bytes"]
        if key in self.overrides:
            return self.overrides[key]
        return self.broker.topic_default(key)

    def synonyms(self, key: str) -> list[tuple[str, str, Any]]:
        """Where ``key``'s value may come from, highest precedence first, as Kafka lists a topic
        config's synonyms: the override ("topic"), then the broker's synonyms layer by layer.
        [(name, source, value)]; the first is where the effective value comes from."""
        out = [(key, "topic", self.overrides[key])] if key in self.overrides else []
        return out + self.broker.values_of(s.name for s in TOPIC_CONFIGS[key].synonyms)

    def source(self, key: str) -> str:
        """"topic" for an override, else where the broker's synonym comes from
        (a dynamic layer, "static" or "default")."""
        return "topic" if key in self.overrides else self.broker.topic_default_source(key)
