"""A config key's definition, in the shape of Kafka's ``ConfigDef``: name, type, default,
validator, documentation — and, for a topic config, its broker synonyms
(Kafka's ``ServerTopicConfigSynonyms``).

Everything else about configuration — parsing, defaults per topic, DescribeConfigs' types,
sources and synonyms, the generated ``docs/configuration.md`` — is derived from these
definitions, so a rule is written once, here or in the tables (:mod:`.broker_defs`,
:mod:`.topic_defs`).

A bad value is a :class:`~tomyum.errors.ConfigError` in Kafka's ConfigException words:
``Invalid value 3 for configuration segment.bytes: Value must be at least 1048576``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any

from tomyum.errors import ConfigError


class ConfigType(enum.IntEnum):
    """Kafka's ``ConfigDef.Type``; the value is DescribeConfigs' ``config_type`` code (KIP-569)."""

    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class Importance(enum.Enum):
    """Kafka's ``ConfigDef.Importance``: how much an operator should care about a key."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class Validator:
    """A check on a parsed value: ``check`` returns the reason a value is refused, or None;
    ``describe`` is the valid values or range as the docs show them."""

    check: Callable[[Any], str | None]
    describe: str

    def __call__(self, value: Any) -> str | None:
        return self.check(value)


def at_least(low: int | float) -> Validator:
    return Validator(lambda v: None if v >= low else f"Value must be at least {low}", f"[{low},...]")


def between(low: int | float, high: int | float) -> Validator:
    def check(v: Any) -> str | None:
        if v < low:
            return f"Value must be at least {low}"
        return f"Value must be no more than {high}" if v > high else None

    return Validator(check, f"[{low},...,{high}]")


def one_of(*allowed: str) -> Validator:
    return Validator(lambda v: None if v in allowed else f"String must be one of: {', '.join(allowed)}",
                     "[" + ", ".join(allowed) + "]")


def each_of(*allowed: str) -> Validator:
    def check(v: list[str]) -> str | None:
        bad = [x for x in v if x not in allowed]
        return f"Each value must be one of: {', '.join(allowed)} (not {', '.join(bad)})" if bad else None

    return Validator(check, "[" + ", ".join(allowed) + "]")


@dataclass(frozen=True, slots=True)
class Synonym:
    """A broker key that supplies a topic config's default, and the factor that converts its
    unit to the topic config's (``log.retention.hours`` ×3,600,000 for ``retention.ms``)."""

    name: str
    factor: int = 1


@dataclass(frozen=True, slots=True)
class ConfigDef:
    """One config key. ``implemented=False`` is a Kafka key tomyum accepts, with a warning, and
    ignores; ``dynamic`` keys may change at run time (AlterConfigs) — as in Kafka, a broker
    key that stands in for another (``log.retention.hours``) is static. Keys named
    ``internal.*`` are not listed by DescribeConfigs."""

    name: str
    type: ConfigType
    default: Any
    validator: Validator | None = None
    _: KW_ONLY
    doc: str
    importance: Importance | None = None
    #: for a topic config, the broker keys that supply its default, the one that wins first
    synonyms: tuple[Synonym, ...] = ()
    implemented: bool = True
    dynamic: bool = True

    @property
    def sensitive(self) -> bool:
        """A password: DescribeConfigs shows no value for it."""
        return self.type is ConfigType.PASSWORD

    @property
    def internal(self) -> bool:
        return self.name.startswith("internal.")


def defs(*items: ConfigDef) -> dict[str, ConfigDef]:
    return {d.name: d for d in items}


_INT_RANGE = {ConfigType.INT: 32, ConfigType.SHORT: 16, ConfigType.LONG: 64}


def _parse_typed(d: ConfigDef, raw: Any) -> Any:
    text = str(raw).strip()
    if d.type in _INT_RANGE:
        bits = _INT_RANGE[d.type]
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(d.name, f"Not a number of type {d.type.name}", value=raw) from None
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise ConfigError(d.name, f"Not a number of type {d.type.name}", value=raw)
        return value
    if d.type is ConfigType.DOUBLE:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(d.name, "Not a number of type DOUBLE", value=raw) from None
    if d.type is ConfigType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        if text.lower() not in ("true", "false"):
            raise ConfigError(d.name, "Expected value to be either true or false", value=raw)
        return text.lower() == "true"
    if d.type is ConfigType.LIST:
        return [x.strip() for x in raw.split(",") if x.strip()] if isinstance(raw, str) else list(raw)
    return text


def parse_value(d: ConfigDef, raw: Any) -> Any:
    """Parse a raw (usually string) value for ``d`` and validate it; a ConfigError in Kafka's
    words names the key and the value. None stays None (unset)."""
    if raw is None:
        return None
    value = _parse_typed(d, raw)
    if d.validator is not None and (problem := d.validator(value)) is not None:
        raise ConfigError(d.name, problem, value=raw)
    return value


def format_value(value: Any) -> str | None:
    """A config value as Kafka shows it (DescribeConfigs, the metadata log): lists joined by
    commas, booleans in lower case, unset as None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)
