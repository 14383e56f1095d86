"""Header converters: Kafka's SimpleHeaderConverter (the worker's default ``header.converter``).

Strings are written as UTF-8, other values as their JSON; on the way in a header parses as a
boolean, number, or JSON array/object when it looks like one and as a string otherwise
(Kafka's Values.parseString, simplified)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tomyum.connect.converters import dumps
from tomyum.connect.data import (
    BOOLEAN_SCHEMA, FLOAT64_SCHEMA, INT64_SCHEMA, STRING_SCHEMA, Schema, Struct,
)


class SimpleHeaderConverter:
    def configure(self, configs: Mapping[str, Any]) -> None:
        pass

    def from_connect_header(self, topic: str, key: str, schema: Schema | None, value: Any) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, bool):
            return b"true" if value else b"false"
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, Struct):
            from tomyum.connect.converters import JsonConverter
            conv = JsonConverter()
            conv.schemas_enable = False
            return conv.from_connect_data(topic, value.schema, value)
        return dumps(value)

    def to_connect_header(self, topic: str, key: str, value: bytes | None) -> tuple[Schema | None, Any]:
        if value is None:
            return None, None
        text = value.decode("utf-8", errors="replace")
        if text in ("true", "false"):
            return BOOLEAN_SCHEMA, text == "true"
        try:
            n = int(text)
            return INT64_SCHEMA, n
        except ValueError:
            pass
        try:
            f = float(text)
            if text.strip().lower() not in ("nan", "inf", "-inf", "infinity", "-infinity"):
                return FLOAT64_SCHEMA, f
        except ValueError:
            pass
        if text[:1] in ("[", "{"):
            try:
                return None, json.loads(text)
            except ValueError:
                pass
        return STRING_SCHEMA, text
