"""The plugin registry: connectors, converters, transforms and predicates by class name.

A name is either one of Kafka's class names for a built-in (``org.apache.kafka.connect.file.
FileStreamSourceConnector``, ``org.apache.kafka.connect.transforms.Cast$Value``, and the short
aliases Kafka accepts: ``FileStreamSource``, ``FileStreamSourceConnector``), or a Python dotted
path ``package.module.ClassName`` importable from ``sys.path`` or the worker's ``plugin.path``
directories. Other connector packages (PostgreSQL CDC, JDBC) register themselves with
:func:`register` under their own names.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterable
from typing import Any

from tomyum.connect.connector import Connector, ConnectError, SinkConnector, SourceConnector

CONNECTOR = "connector"
CONVERTER = "converter"
TRANSFORMATION = "transformation"
PREDICATE = "predicate"
HEADER_CONVERTER = "header_converter"

_lock = threading.Lock()
# kind → Kafka class name → "python.module:attr"
_builtins: dict[str, dict[str, str]] = {CONNECTOR: {}, CONVERTER: {}, TRANSFORMATION: {}, PREDICATE: {},
                                        HEADER_CONVERTER: {}}
_loaded = False


def register(kind: str, kafka_name: str, target: str) -> None:
    """Register ``target`` ("module:Attr") under ``kafka_name`` for ``kind``."""
    with _lock:
        _builtins[kind][kafka_name] = target


def _ensure_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    conv = "tomyum.connect.converters"
    register(CONVERTER, "org.apache.kafka.connect.json.JsonConverter", f"{conv}:JsonConverter")
    register(CONVERTER, "org.apache.kafka.connect.storage.StringConverter", f"{conv}:StringConverter")
    register(CONVERTER, "org.apache.kafka.connect.converters.ByteArrayConverter", f"{conv}:ByteArrayConverter")
    register(HEADER_CONVERTER, "org.apache.kafka.connect.storage.SimpleHeaderConverter",
             "tomyum.connect.headers:SimpleHeaderConverter")
    register(CONNECTOR, "org.apache.kafka.connect.file.FileStreamSourceConnector",
             "tomyum.connect.file:FileStreamSourceConnector")
    register(CONNECTOR, "org.apache.kafka.connect.file.FileStreamSinkConnector",
             "tomyum.connect.file:FileStreamSinkConnector")
    register(CONNECTOR, "io.confluent.connect.http.HttpSinkConnector", "tomyum.connect.http:HttpSinkConnector")
    register(CONNECTOR, "io.confluent.connect.s3.S3SinkConnector", "tomyum.connect.s3.sink:S3SinkConnector")
    pg = "tomyum.connect.postgres.connector"
    register(CONNECTOR, "io.debezium.connector.postgresql.PostgresConnector", f"{pg}:PostgresConnector")
    register(CONNECTOR, "io.confluent.connect.jdbc.JdbcSourceConnector", f"{pg}:JdbcSourceConnector")
    register(CONNECTOR, "io.confluent.connect.jdbc.JdbcSinkConnector", f"{pg}:JdbcSinkConnector")
    from tomyum.connect import transforms
    for name, attr in transforms.KAFKA_NAMES.items():
        register(TRANSFORMATION, name, f"tomyum.connect.transforms:{attr}")
    for name, attr in transforms.PREDICATE_NAMES.items():
        register(PREDICATE, name, f"tomyum.connect.transforms:{attr}")


def add_plugin_path(paths: Iterable[str]) -> None:
    """Make the worker's ``plugin.path`` directories importable."""
    for p in paths:
        if p and p not in sys.path:
            sys.path.append(p)


def _short_names(kafka_name: str) -> list[str]:
    simple = kafka_name.rsplit(".", 1)[-1]
    names = [kafka_name, simple]
    if simple.endswith("Connector"):
        names.append(simple[: -len("Connector")])
    return names


def resolve(kind: str, name: str) -> type[Any]:
    """The class for ``name`` (a Kafka class name, alias, or Python dotted path)."""
    _ensure_builtins()
    name = name.strip()
    for kafka_name, target in _builtins[kind].items():
        if name in _short_names(kafka_name):
            return _import(target)
    module_name, _, attr = name.replace(":", ".").rpartition(".")
    if not module_name:
        raise ConnectError(f"Class {name} could not be found.")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, attr)
    except (ImportError, AttributeError) as e:
        raise ConnectError(f"Class {name} could not be found.") from e
    if not isinstance(cls, type):
        raise ConnectError(f"{name} is not a class.")
    return cls


def _import(target: str) -> type[Any]:
    module_name, _, attr = target.partition(":")
    cls: type[Any] = getattr(importlib.import_module(module_name), attr)
    return cls


def connector_type(cls: type[Any]) -> str:
    if issubclass(cls, SourceConnector):
        return "source"
    if issubclass(cls, SinkConnector):
        return "sink"
    return "unknown"


def connector_class(name: str) -> type[Connector]:
    cls = resolve(CONNECTOR, name)
    if not issubclass(cls, Connector):
        raise ConnectError(f"Class {name} is not a connector.")
    return cls


def listed(kind: str) -> list[tuple[str, type[Any]]]:
    """Built-in plugins of ``kind`` by Kafka class name (for ``/connector-plugins``)."""
    _ensure_builtins()
    return sorted((name, _import(target)) for name, target in _builtins[kind].items())


def kafka_name(kind: str, cls: type[Any]) -> str:
    """The name a plugin class is reported by: its Kafka class name for built-ins."""
    _ensure_builtins()
    for name, target in _builtins[kind].items():
        if _import(target) is cls:
            return name
    return f"{cls.__module__}.{cls.__qualname__}"
