"""Declared configuration (Kafka's ConfigDef): keys with a type, default, importance and doc,
parsed from string properties and validated key by key, so that ``/config/validate`` can answer
with every error at once."""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Mapping
from typing import Any


class ConfigError(Exception):
    """Kafka's ConfigException: a value that is missing, of the wrong type or refused by a validator."""

    def __init__(self, name: str, value: Any, message: str | None = None) -> None:
        self.name = name
        if message is None:
            super().__init__(name)
        else:
            super().__init__(f"Invalid value {value} for configuration {name}: {message}")
        self.detail = message or name


class ConfigType(enum.Enum):
    BOOLEAN = "BOOLEAN"
    STRING = "STRING"
    INT = "INT"
    SHORT = "SHORT"
    LONG = "LONG"
    DOUBLE = "DOUBLE"
    LIST = "LIST"
    CLASS = "CLASS"
    PASSWORD = "PASSWORD"


class Importance(enum.Enum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()

Validator = Callable[[str, Any], None]


def in_range(low: int | float | None = None, high: int | float | None = None) -> Validator:
    def check(name: str, value: Any) -> None:
        if value is None:
            raise ConfigError(name, value, "Value must be non-null")
        if low is not None and value < low:
            raise ConfigError(name, value, f"Value must be at least {low}")
        if high is not None and value > high:
            raise ConfigError(name, value, f"Value must be no more than {high}")
    return check


def valid_string(*allowed: str, case_insensitive: bool = False) -> Validator:
    def check(name: str, value: Any) -> None:
        v = value.lower() if case_insensitive and isinstance(value, str) else value
        options = [a.lower() for a in allowed] if case_insensitive else list(allowed)
        if v not in options:
            raise ConfigError(name, value, f"String must be one of: {', '.join(allowed)}")
    return check


def non_empty_string(name: str, value: Any) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigError(name, value, "String may not be empty")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConfigKey:
    name: str
    type: ConfigType
    default: Any
    importance: Importance
    documentation: str
    validator: Validator | None = None
    group: str | None = None
    order: int = -1
    display_name: str | None = None

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT


@dataclasses.dataclass(slots=True)
class ConfigValue:
    name: str
    value: Any = None
    recommended_values: list[Any] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    visible: bool = True


_TRUE = {"true"}
_FALSE = {"false"}


def parse_type(name: str, value: Any, type_: ConfigType) -> Any:
    """Kafka's ConfigDef.parseType for a string (or already-typed) value."""
    if value is None:
        return None
    try:
        if type_ is ConfigType.BOOLEAN:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ConfigError(name, value, "Expected value to be either true or false")
        if type_ in (ConfigType.STRING, ConfigType.CLASS):
            return str(value).strip() if type_ is ConfigType.CLASS else str(value)
        if type_ is ConfigType.PASSWORD:
            return str(value)
        if type_ in (ConfigType.INT, ConfigType.SHORT, ConfigType.LONG):
            if isinstance(value, bool):
                raise ValueError
            return int(str(value).strip())
        if type_ is ConfigType.DOUBLE:
            return float(str(value).strip())
        if type_ is ConfigType.LIST:
            if isinstance(value, list):
                return value
            s = str(value).strip()
            return [] if not s else [p.strip() for p in re.split(r"\s*,\s*", s)]
    except ValueError:
        kind = {ConfigType.INT: "32-bit integer", ConfigType.SHORT: "16-bit integer",
                ConfigType.LONG: "64-bit integer", ConfigType.DOUBLE: "double"}.get(type_, type_.value)
        raise ConfigError(name, value, f"Not a number of type {type_.value}" if kind else str(kind)) from None
    raise ConfigError(name, value, "Unknown type")


def _as_string(value: Any, type_: ConfigType) -> str | None:
    if value is None or value is NO_DEFAULT:
        return None
    if type_ is ConfigType.BOOLEAN:
        return "true" if value else "false"
    if type_ is ConfigType.LIST:
        return ",".join(value)
    if type_ is ConfigType.PASSWORD:
        return "[hidden]"
    return str(value)


class ConfigDef:
    """Kafka's ConfigDef: ``define`` keys, then ``parse`` (raises on the first error) or
    ``validate`` (a ConfigValue per key, each with its errors)."""

    def __init__(self, keys: Mapping[str, ConfigKey] | None = None) -> None:
        self.keys: dict[str, ConfigKey] = dict(keys or {})

    def define(self, name: str, type_: ConfigType, default: Any = NO_DEFAULT,
               importance: Importance = Importance.MEDIUM, documentation: str = "", *,
               validator: Validator | None = None, group: str | None = None, order: int = -1,
               display_name: str | None = None) -> ConfigDef:
        if name in self.keys:
            raise ConfigError(name, None, f"Configuration {name} is defined twice.")
        if default is not NO_DEFAULT and default is not None:
            default = parse_type(name, default, type_)
        self.keys[name] = ConfigKey(name=name, type=type_, default=default, importance=importance,
                                    documentation=documentation, validator=validator, group=group,
                                    order=order, display_name=display_name)
        return self

    def merged(self, other: ConfigDef) -> ConfigDef:
        merged = ConfigDef(self.keys)
        for k, v in other.keys.items():
            merged.keys.setdefault(k, v)
        return merged

    def _parse_one(self, key: ConfigKey, props: Mapping[str, Any]) -> Any:
        if key.name in props:
            value = parse_type(key.name, props[key.name], key.type)
        elif key.default is NO_DEFAULT:
            raise ConfigError(key.name, None,
                              f'Missing required configuration "{key.name}" which has no default value.')
        else:
            value = key.default
        if key.validator is not None:
            key.validator(key.name, value)
        return value

    def parse(self, props: Mapping[str, Any]) -> dict[str, Any]:
        parsed = {key.name: self._parse_one(key, props) for key in self.keys.values()}
        return parsed

    def validate(self, props: Mapping[str, Any]) -> dict[str, ConfigValue]:
        out: dict[str, ConfigValue] = {}
        for key in self.keys.values():
            cv = ConfigValue(key.name)
            try:
                cv.value = self._parse_one(key, props)
            except ConfigError as e:
                cv.value = props.get(key.name)
                cv.errors.append(e.detail if key.name in props or "Missing required" not in e.detail else
                                 f'Missing required configuration "{key.name}" which has no default value.')
            out[key.name] = cv
        return out

    def definition_json(self, key: ConfigKey) -> dict[str, Any]:
        """The ``definition`` object of a validate answer (Kafka's ConfigKeyInfo)."""
        return {"name": key.name, "type": key.type.value, "required": key.required,
                "default_value": None if key.required else _as_string(key.default, key.type),
                "importance": key.importance.value, "documentation": key.documentation,
                "group": key.group, "width": "NONE", "display_name": key.display_name or key.name,
                "dependents": [], "order": key.order}

    @staticmethod
    def value_json(cv: ConfigValue, type_: ConfigType) -> dict[str, Any]:
        value = cv.value
        shown = None if value is None else (_as_string(value, type_) if not isinstance(value, str) else
                                            ("[hidden]" if type_ is ConfigType.PASSWORD else value))
        return {"name": cv.name, "value": shown, "recommended_values": list(cv.recommended_values),
                "errors": list(cv.errors), "visible": cv.visible}


class AbstractConfig:
    """Parsed values of a ConfigDef with typed getters, plus the originals (for prefixes)."""

    def __init__(self, definition: ConfigDef, originals: Mapping[str, Any]) -> None:
        self.definition = definition
        self.originals: dict[str, Any] = dict(originals)
        self.values = definition.parse(originals)

    def get(self, name: str) -> Any:
        return self.values[name]

    def originals_with_prefix(self, prefix: str, strip: bool = True) -> dict[str, Any]:
        return {(k[len(prefix):] if strip else k): v for k, v in self.originals.items() if k.startswith(prefix)}
