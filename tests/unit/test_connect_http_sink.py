"""The HTTP sink's configuration: Confluent's keys, defaults and refusals (its requests are
tested against a real server in tests/integration/test_connect_http_sink.py)."""

from __future__ import annotations

import pytest

from tomyum.connect.config import ConfigError
from tomyum.connect.http import HttpSinkTask, _status_ranges, http_sink_config

pytestmark = pytest.mark.timeout(10)


def test_status_code_ranges() -> None:
    assert _status_ranges("400-") == [(400, 999)]
    assert _status_ranges("429, 500-599") == [(429, 429), (500, 599)]
    assert _status_ranges("") == []
    with pytest.raises(ConfigError):
        _status_ranges("5xx")


def test_defaults_and_refusals() -> None:
    parsed = http_sink_config().parse({"http.api.url": "http://h/x"})
    assert (parsed["request.method"], parsed["batch.max.size"], parsed["max.retries"], parsed["retry.backoff.ms"],
            parsed["retry.on.status.codes"], parsed["auth.type"]) == ("POST", 1, 10, 3000, "400-", "NONE")
    with pytest.raises(ConfigError, match="http.api.url"):
        http_sink_config().parse({})
    with pytest.raises(ConfigError, match="request.method"):
        http_sink_config().parse({"http.api.url": "http://h/x", "request.method": "GET"})
    task = HttpSinkTask()
    with pytest.raises(ConfigError, match="connection.user"):
        task.start({"http.api.url": "http://h/x", "auth.type": "BASIC"})
    with pytest.raises(ConfigError, match="Name:value"):
        task.start({"http.api.url": "http://h/x", "headers": "X-Only"})
    task.stop()
