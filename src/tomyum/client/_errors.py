"""The one error the client facade raises: a librdkafka error, with its code and flags."""

from __future__ import annotations

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException

from tomyum.errors import TomyumError


class ClientError(TomyumError):
    """A Kafka or librdkafka error seen by :mod:`tomyum.client`.

    ``code`` is librdkafka's number (Kafka's error codes, and negative numbers for local
    errors such as ``_TRANSPORT``); ``name`` its name; ``retriable`` and ``fatal`` as
    librdkafka reports them.
    """

    def __init__(self, error: RdKafkaError, context: str = "") -> None:
        self.code: int = error.code()
        self.name: str = error.name()
        self.retriable: bool = bool(error.retriable())
        self.fatal: bool = bool(error.fatal())
        detail = error.str()
        super().__init__(f"{context}: {self.name}: {detail}" if context else f"{self.name}: {detail}")

    @classmethod
    def wrap(cls, e: KafkaException, context: str = "") -> ClientError:
        """The :class:`ClientError` for a :class:`confluent_kafka.KafkaException`."""
        error = e.args[0] if e.args and isinstance(e.args[0], RdKafkaError) else RdKafkaError(
            RdKafkaError._FAIL, str(e))
        return cls(error, context)
