"""tomyum connect: Kafka Connect in Python — the connector API, converters, transforms, a
worker with Kafka Connect's REST API, standalone mode, FileStream connectors.

A plain Kafka client (confluent-kafka): it imports nothing of the broker, so the same worker
runs against Apache Kafka. The layers: :mod:`~tomyum.connect.data` (Schema, Struct, records),
:mod:`~tomyum.connect.connector` (the API connectors implement), converters and transforms,
:mod:`~tomyum.connect.worker` (runs connectors and tasks, whatever the mode),
:mod:`~tomyum.connect.herder` / :mod:`~tomyum.connect.standalone` (which connectors run),
:mod:`~tomyum.connect.rest` (the REST API).
"""

from tomyum.connect.config import ConfigDef, ConfigType, Importance
from tomyum.connect.connector import (
    Connector, ConnectError, RetriableError, SinkConnector, SinkTask, SourceConnector, SourceTask,
)
from tomyum.connect.data import (
    Schema, SchemaBuilder, SinkRecord, SourceRecord, Struct, Type,
)

__all__ = ["ConfigDef", "ConfigType", "Importance", "Connector", "ConnectError", "RetriableError",
           "SinkConnector", "SinkTask", "SourceConnector", "SourceTask", "Schema", "SchemaBuilder",
           "SinkRecord", "SourceRecord", "Struct", "Type"]
