"""One error tree for tomyum.

::

    TomyumError                      anything tomyum raises on purpose
    ├── ConfigError                  a bad configuration key or value (names the key; a bad
    │                                value in Kafka's ConfigException words)
    ├── ProtocolError                bytes that are not a valid Kafka frame or request
    │   └── UnsupportedVersion       an API version this broker does not speak
    └── KafkaError                   carries a Kafka error code; handlers raise, the
        │                            dispatcher turns it into a per-partition / per-request code
        ├── CorruptRecord            CRC mismatch, bad length or magic (code 2)
        ├── RecordValidationError    records a batch may not hold (KIP-467: carries record_errors)
        ├── StorageError             an OSError inside storage, wrapped (code 56)
        └── ...                      one instance per code via ``KafkaError.of(code, message)``

Kafka codes come from kio's :class:`~kio.schema.errors.ErrorCode`, which knows each code's
number and whether it is retriable; :func:`for_code` maps a number back to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from kio.schema.errors import ErrorCode

__all__ = [
    "ConfigError",
    "CorruptRecord",
    "ErrorCode",
    "KafkaError",
    "ProtocolError",
    "RecordError",
    "RecordValidationError",
    "StorageError",
    "TomyumError",
    "UnsupportedVersion",
    "for_code",
]


class TomyumError(Exception):
    """Base of every error tomyum raises on purpose."""


_NO_VALUE = object()


class ConfigError(TomyumError, ValueError):
    """A configuration key or value is invalid; the message names the key. Given ``value``, the
    message is Kafka's ConfigException's: "Invalid value V for configuration K: reason"."""

    def __init__(self, key: str, message: str, *, value: object = _NO_VALUE, refused: bool = False) -> None:
        if value is _NO_VALUE:
            super().__init__(f"{key}: {message}")
        else:
            super().__init__(f"Invalid value {value} for configuration {key}: {message}")
        self.key = key
        #: True if the value was wrong (not the key), or the change was ``refused`` as Kafka's
        #: dynamic broker config validation refuses one: Kafka answers INVALID_REQUEST for a broker's
        self.bad_value = value is not _NO_VALUE or refused


class ProtocolError(TomyumError):
    """The peer sent bytes that are not a valid Kafka request; the connection closes."""


class UnsupportedVersion(ProtocolError):
    def __init__(self, api_key: int, api_version: int) -> None:
        super().__init__(f"unsupported version {api_version} of API key {api_key}")
        self.api_key = api_key
        self.api_version = api_version


class KafkaError(TomyumError):
    """An error with a Kafka error code, answered to the client in the response."""

    code: ErrorCode = ErrorCode.unknown_server_error

    def __init__(self, message: str = "", code: ErrorCode | None = None) -> None:
        if code is not None:
            self.code = code
        super().__init__(message or self.code.name)

    @property
    def retriable(self) -> bool:
        return bool(self.code.retriable)

    @classmethod
    def of(cls, code: ErrorCode, message: str = "") -> KafkaError:
        return cls(message, code)


class CorruptRecord(KafkaError):
    code = ErrorCode.corrupt_message


class RecordError(NamedTuple):
    """KIP-467: one record that made its batch fail, by its index, and why."""

    batch_index: int
    message: str | None


class RecordValidationError(KafkaError):
    """Records of a produced batch that Kafka's LogValidator refuses (INVALID_RECORD, or
    INVALID_TIMESTAMP); the whole batch fails and nothing of it is stored. ``record_errors``
    name the records at fault, answered in the Produce response (v8+)."""

    def __init__(self, message: str, code: ErrorCode, record_errors: Sequence[RecordError] = ()) -> None:
        super().__init__(message, code)
        self.record_errors = tuple(record_errors)


class StorageError(KafkaError):
    """An I/O failure in storage (disk full, read-only, gone). Never a bare OSError."""

    code = ErrorCode.kafka_storage_error


def for_code(code: int) -> ErrorCode:
    """The :class:`ErrorCode` for a Kafka error number; unknown numbers map to UNKNOWN_SERVER_ERROR."""
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.unknown_server_error
