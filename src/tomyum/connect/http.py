"""The HTTP sink: records to an HTTP endpoint, in batches, with retries and auth headers.

Configured with the keys of Confluent's HTTP Sink connector (``io.confluent.connect.http.HttpSinkConnector``),
the ones most deployments set: ``http.api.url``, ``request.method``, ``headers`` (``Name:value``
pairs split by ``header.separator``), ``auth.type`` ``NONE``/``BASIC`` with ``connection.user``
and ``connection.password``, ``batch.max.size``, ``batch.prefix``/``batch.suffix``/``batch.separator``
or ``batch.json.as.array``, ``request.body.format`` ``string``/``json``, ``max.retries``,
``retry.backoff.ms``, ``retry.backoff.policy`` (``CONSTANT_VALUE`` or ``EXPONENTIAL_WITH_JITTER``:
``retry.backoff.ms`` doubled per attempt, a random part of the last half taken off),
``retry.on.status.codes`` (``400-``, ``500-599,429``…), ``behavior.on.null.values``
(``ignore``/``fail``), ``http.connect.timeout.ms``, ``http.request.timeout.ms``.

Each ``put`` batch is sent in order, ``batch.max.size`` records per request; a request answered
2xx is done. A status in ``retry.on.status.codes`` or a transport error is retried after the
backoff, up to ``max.retries`` times; what still fails — or gets a status not to retry — is a
failure of every record of that request: reported through the worker's errant record reporter,
so ``errors.tolerance=all`` logs them, sends them to the DLQ
(``errors.deadletterqueue.topic.name``, with the ``__connect.errors.*`` headers) and goes on,
and ``errors.tolerance=none`` (the default) fails the task, as Kafka's sinks do.
"""

from __future__ import annotations

import base64
import random
import threading
from collections.abc import Mapping
from typing import Any

import httpx

from tomyum.connect.config import ConfigDef, ConfigError, ConfigType, Importance, in_range, valid_string
from tomyum.connect.connector import ConnectError, SinkConnector, SinkTask, Task
from tomyum.connect.converters import JsonConverter, dumps
from tomyum.connect.data import SinkRecord

VERSION = "1.0"


def _status_ranges(text: str) -> list[tuple[int, int]]:
    """``400-``, ``500-599``, ``429``, comma-separated, as Confluent's sink reads them."""
    ranges = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            ranges.append((int(low), int(high) if high.strip() else 999) if sep else (int(low), int(low)))
        except ValueError:
            raise ConfigError("retry.on.status.codes", text, f"Invalid status code range: {part}") from None
    return ranges


def _codes(name: str, value: Any) -> None:
    _status_ranges(str(value or ""))


def http_sink_config() -> ConfigDef:
    return (ConfigDef()
            .define("http.api.url", ConfigType.STRING, importance=Importance.HIGH,
                    documentation="The URL records are sent to")
            .define("request.method", ConfigType.STRING, "POST", Importance.HIGH, "POST, PUT or PATCH",
                    validator=valid_string("POST", "PUT", "PATCH", case_insensitive=True))
            .define("headers", ConfigType.STRING, "", Importance.MEDIUM,
                    "Name:value pairs, separated by header.separator, sent with every request")
            .define("header.separator", ConfigType.STRING, "|", Importance.LOW, "The separator of headers")
            .define("auth.type", ConfigType.STRING, "NONE", Importance.HIGH, "NONE or BASIC",
                    validator=valid_string("NONE", "BASIC", case_insensitive=True))
            .define("connection.user", ConfigType.STRING, None, Importance.MEDIUM, "The user of BASIC auth")
            .define("connection.password", ConfigType.PASSWORD, None, Importance.MEDIUM,
                    "The password of BASIC auth")
            .define("batch.max.size", ConfigType.INT, 1, Importance.HIGH, "Records per request at most",
                    validator=in_range(1, 1_000_000))
            .define("batch.prefix", ConfigType.STRING, "", Importance.LOW, "Written before a batch")
            .define("batch.suffix", ConfigType.STRING, "", Importance.LOW, "Written after a batch")
            .define("batch.separator", ConfigType.STRING, ",", Importance.LOW, "Written between records")
            .define("batch.json.as.array", ConfigType.BOOLEAN, False, Importance.MEDIUM,
                    "Send a batch as a JSON array (prefix [, suffix ], separator ,)")
            .define("request.body.format", ConfigType.STRING, "string", Importance.MEDIUM,
                    "string: a record's value as text; json: its value as JSON",
                    validator=valid_string("string", "json", case_insensitive=True))
            .define("max.retries", ConfigType.INT, 10, Importance.MEDIUM, "Retries of a failed request",
                    validator=in_range(0))
            .define("retry.backoff.ms", ConfigType.INT, 3000, Importance.MEDIUM,
                    "The wait before the first retry", validator=in_range(0))
            .define("retry.backoff.policy", ConfigType.STRING, "EXPONENTIAL_WITH_JITTER", Importance.LOW,
                    "CONSTANT_VALUE or EXPONENTIAL_WITH_JITTER",
                    validator=valid_string("CONSTANT_VALUE", "EXPONENTIAL_WITH_JITTER", case_insensitive=True))
            .define("retry.on.status.codes", ConfigType.STRING, "400-", Importance.MEDIUM,
                    "The statuses retried: codes and ranges, 400- for 400 and up", validator=_codes)
            .define("behavior.on.null.values", ConfigType.STRING, "ignore", Importance.LOW,
                    "ignore or fail on a record with a null value",
                    validator=valid_string("ignore", "fail", case_insensitive=True))
            .define("http.connect.timeout.ms", ConfigType.INT, 30_000, Importance.LOW, "Connect timeout",
                    validator=in_range(1))
            .define("http.request.timeout.ms", ConfigType.INT, 30_000, Importance.LOW, "Request timeout",
                    validator=in_range(1)))


def _headers(c: Mapping[str, Any]) -> dict[str, str]:
    """The configured headers and BASIC auth of a parsed config (raises ConfigError)."""
    headers: dict[str, str] = {}
    for pair in str(c["headers"] or "").split(str(c["header.separator"] or "|")):
        name, sep, value = pair.partition(":")
        if pair.strip() and not sep:
            raise ConfigError("headers", c["headers"], f"A header is Name:value, not {pair!r}")
        if name.strip():
            headers[name.strip()] = value.strip()
    if str(c["auth.type"]).upper() == "BASIC":
        user, password = c["connection.user"], c["connection.password"]
        if user is None or password is None:
            raise ConfigError("connection.user", user, "BASIC auth needs connection.user and connection.password")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    return headers


class HttpSinkConnector(SinkConnector):
    version = VERSION

    def __init__(self) -> None:
        self._props: dict[str, str] = {}

    def config(self) -> ConfigDef:
        return http_sink_config()

    def check_config(self, props: Mapping[str, str]) -> None:
        """The header and auth checks a task's start makes (:func:`_headers`)."""
        _headers(http_sink_config().parse(props))

    def start(self, props: Mapping[str, str]) -> None:
        self.check_config(props)
        self._props = dict(props)

    def task_class(self) -> type[Task]:
        return HttpSinkTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self._props) for _ in range(max_tasks)]

    def stop(self) -> None:
        pass

    def alter_offsets(self, connector_config: Mapping[str, str], offsets: Mapping[tuple[str, int], int | None]) -> bool:
        return True  # the endpoint keeps no offsets


class HttpSinkTask(SinkTask):
    version = VERSION

    def __init__(self) -> None:
        self._client: httpx.Client | None = None
        self._stopping = threading.Event()
        self._json = JsonConverter()
        self._json.schemas_enable = False

    def start(self, props: Mapping[str, str]) -> None:
        c = http_sink_config().parse(props)
        self.url = str(c["http.api.url"])
        self.method = str(c["request.method"]).upper()
        self.batch_size = int(c["batch.max.size"])
        as_array = bool(c["batch.json.as.array"])
        self.prefix = "[" if as_array else str(c["batch.prefix"] or "")
        self.suffix = "]" if as_array else str(c["batch.suffix"] or "")
        self.separator = "," if as_array else str(c["batch.separator"] or "")
        self.json_body = str(c["request.body.format"]).lower() == "json"
        self.max_retries = int(c["max.retries"])
        self.backoff_ms = int(c["retry.backoff.ms"])
        self.exponential = str(c["retry.backoff.policy"]).upper() == "EXPONENTIAL_WITH_JITTER"
        self.retry_on = _status_ranges(str(c["retry.on.status.codes"] or ""))
        self.fail_on_null = str(c["behavior.on.null.values"]).lower() == "fail"
        headers = {"Content-Type": "application/json" if self.json_body or as_array else "text/plain",
                   **_headers(c)}
        timeout = httpx.Timeout(int(c["http.request.timeout.ms"]) / 1000,
                                connect=int(c["http.connect.timeout.ms"]) / 1000)
        self._stopping.clear()
        self._client = httpx.Client(headers=headers, timeout=timeout)

    def _format(self, record: SinkRecord) -> str:
        value = record.value
        if not self.json_body and isinstance(value, str):
            return value
        if not self.json_body and isinstance(value, (bytes, bytearray)):
            return bytes(value).decode("utf-8", errors="replace")
        return dumps(self._json.to_json(record.value_schema, value)).decode("utf-8")

    def put(self, records: list[SinkRecord]) -> None:
        sendable = []
        for r in records:
            if r.value is None:
                if self.fail_on_null:
                    self._failed([r], ConnectError(f"{r.topic}-{r.kafka_partition}@{r.kafka_offset}: null value "
                                                   "and behavior.on.null.values=fail"))
                continue
            sendable.append(r)
        for i in range(0, len(sendable), self.batch_size):
            batch = sendable[i:i + self.batch_size]
            body = self.prefix + self.separator.join(self._format(r) for r in batch) + self.suffix
            error = self._send(body.encode("utf-8"))
            if error is not None:
                self._failed(batch, error)

    def _retriable(self, status: int) -> bool:
        return any(low <= status <= high for low, high in self.retry_on)

    def _send(self, body: bytes) -> ConnectError | None:
        """Sends ``body``, retrying as configured: None once answered 2xx, else the last error."""
        assert self._client is not None
        attempt = 0
        while True:
            try:
                response = self._client.request(self.method, self.url, content=body)
                if 200 <= response.status_code < 300:
                    return None
                error = ConnectError(f"HTTP {response.status_code} from {self.method} {self.url}: "
                                     f"{response.text[:200]}")
                retry = self._retriable(response.status_code)
            except httpx.HTTPError as e:
                error, retry = ConnectError(f"{self.method} {self.url} failed: {e}"), True
            if not retry or attempt >= self.max_retries or self._stopping.is_set():
                return error
            delay: float = self.backoff_ms * (2 ** attempt if self.exponential else 1)
            if self.exponential:
                delay -= random.uniform(0, delay / 2)
            attempt += 1
            if self._stopping.wait(delay / 1000):
                return error

    def _failed(self, batch: list[SinkRecord], error: ConnectError) -> None:
        report = self.context.errant_record_reporter()
        if report is None:
            raise error
        for r in batch:
            report(r, error)

    def stop(self) -> None:
        self._stopping.set()
        if self._client is not None:
            self._client.close()
            self._client = None


__all__ = ["HttpSinkConnector", "HttpSinkTask", "http_sink_config"]
