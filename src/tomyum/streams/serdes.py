"""Serdes: how keys and values become bytes on a topic and back, and the timestamp
extractor hook.

A :class:`Serde` is a pair of functions. ``None`` always maps to ``None`` (a tombstone or a
null key), as in Kafka. The built-in formats match Kafka's own serdes byte for byte, so a
Java or librdkafka application reading the same topic sees the same values:

=================  ============================================  =====================
``Serdes.bytes``   the bytes as they are                          ``Serdes.ByteArray``
``Serdes.string``  UTF-8                                          ``Serdes.String``
``Serdes.integer`` 4-byte big-endian signed                       ``Serdes.Integer``
``Serdes.long``    8-byte big-endian signed (Python ``int``)      ``Serdes.Long``
``Serdes.float``   4-byte IEEE 754 big-endian                     ``Serdes.Float``
``Serdes.double``  8-byte IEEE 754 big-endian (Python ``float``)  ``Serdes.Double``
``Serdes.json``    compact UTF-8 JSON                             (Connect's JsonSerde)
=================  ============================================  =====================

and, for the keys of windowed results, ``Serdes.time_windowed(inner, window_size_ms)`` and
``Serdes.session_windowed(inner)`` (Kafka's ``TimeWindowedSerde`` and ``SessionWindowedSerde``).

A user-defined serde is ``Serde(serializer, deserializer)``. A timestamp extractor is any
callable ``(record, partition_time) -> int`` (Kafka's ``TimestampExtractor``); the default
keeps the record's own timestamp.
"""

from __future__ import annotations

import builtins
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from tomyum.streams._record import Record
from tomyum.streams.windows import Window, Windowed

T = TypeVar("T")

__all__ = ["RecordTimestampExtractor", "Serde", "Serdes", "TimestampExtractor"]


@dataclass(frozen=True, slots=True)
class Serde(Generic[T]):
    """A serializer and its deserializer; both are called only with non-``None`` values."""

    serializer: Callable[[T], bytes]
    deserializer: Callable[[bytes], T]

    def serialize(self, data: T | None) -> bytes | None:
        return None if data is None else self.serializer(data)

    def deserialize(self, data: bytes | None) -> T | None:
        return None if data is None else self.deserializer(data)


_LONG = struct.Struct(">q")


def _to_bytes(value: builtins.bytes) -> builtins.bytes:
    # bytes(5) would be five zero bytes: refuse anything that is not already bytes.
    if not isinstance(value, (builtins.bytes, bytearray, memoryview)):
        raise TypeError(f"the bytes serde got a {type(value).__name__}; give this stream or topic a serde")
    return builtins.bytes(value)


def _struct_serde(fmt: str, cast: Callable[[Any], T]) -> Serde[T]:
    packer = struct.Struct(fmt)

    def deserialize(data: bytes) -> T:
        if len(data) != packer.size:
            raise ValueError(f"expected {packer.size} bytes for {fmt!r}, got {len(data)}")
        return cast(packer.unpack(data)[0])

    return Serde(lambda value: packer.pack(value), deserialize)


_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)  # made once: dumps() with options
_JSON_DECODER = json.JSONDecoder()                                       # builds an encoder per call


def _json_dumps(value: Any) -> bytes:
    return _JSON_ENCODER.encode(value).encode()


def _json_loads(data: bytes) -> Any:
    return _JSON_DECODER.decode(data.decode())


class Serdes:
    """The built-in serdes (see the module docstring for their formats)."""

    @staticmethod
    def bytes() -> Serde[bytes]:
        return Serde(_to_bytes, bytes)

    @staticmethod
    def string() -> Serde[str]:
        return Serde(str.encode, bytes.decode)

    @staticmethod
    def integer() -> Serde[int]:
        return _struct_serde(">i", int)

    @staticmethod
    def long() -> Serde[int]:
        return _struct_serde(">q", int)

    @staticmethod
    def float() -> Serde[builtins.float]:
        return _struct_serde(">f", float)

    @staticmethod
    def double() -> Serde[builtins.float]:
        return _struct_serde(">d", float)

    @staticmethod
    def json() -> Serde[Any]:
        return Serde(_json_dumps, _json_loads)

    @staticmethod
    def time_windowed(inner: Serde[T], window_size_ms: int) -> Serde[Windowed[T]]:
        """Kafka's ``TimeWindowedSerde``: the key's bytes, then the window start (8 bytes);
        the end is start + ``window_size_ms``."""

        def deserialize(data: bytes) -> Windowed[T]:
            start: int = _LONG.unpack(data[-8:])[0]
            return Windowed(inner.deserializer(data[:-8]), Window(start, start + window_size_ms))

        return Serde(lambda w: inner.serializer(w.key) + _LONG.pack(w.window.start_ms), deserialize)

    @staticmethod
    def session_windowed(inner: Serde[T]) -> Serde[Windowed[T]]:
        """Kafka's ``SessionWindowedSerde``: the key's bytes, the session end, the start."""

        def serialize(w: Windowed[T]) -> bytes:
            return inner.serializer(w.key) + _LONG.pack(w.window.end_ms) + _LONG.pack(w.window.start_ms)

        def deserialize(data: bytes) -> Windowed[T]:
            end, start = _LONG.unpack(data[-16:-8])[0], _LONG.unpack(data[-8:])[0]
            return Windowed(inner.deserializer(data[:-16]), Window(start, end))

        return Serde(serialize, deserialize)


class TimestampExtractor(Protocol):
    """Chooses a record's event time. ``partition_time`` is the largest timestamp seen so far
    on the record's partition (-1 before the first), for extractors that fall back to it."""

    def __call__(self, record: Record[Any, Any], partition_time: int) -> int: ...


def RecordTimestampExtractor(record: Record[Any, Any], partition_time: int) -> int:  # noqa: N802
    """Kafka's default: the timestamp the record carries (CreateTime or LogAppendTime)."""
    return record.timestamp
