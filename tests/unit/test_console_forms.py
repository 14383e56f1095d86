"""The console's form parsing (tomyum.console._app): times, headers and reset positions, in the
words the page shows when they are wrong."""

from __future__ import annotations

import pytest

from tomyum.console import parse_listener
from tomyum.console._app import parse_headers, parse_time, position
from tomyum.console._kafka import _pretty, iso


def test_times_are_milliseconds_or_utc_dates() -> None:
    assert parse_time("1700000000123") == 1_700_000_000_123
    assert parse_time("2024-05-01T00:00") == 1_714_521_600_000
    assert parse_time("2024-05-01 00:00:30Z") == 1_714_521_630_000
    assert iso(1_714_521_630_007) == "2024-05-01 00:00:30.007Z"
    with pytest.raises(ValueError, match="is neither milliseconds nor"):
        parse_time("yesterday")


def test_headers_are_name_equals_value_lines() -> None:
    assert parse_headers("trace=a=b\n\nsource=console\n") == [("trace", "a=b"), ("source", "console")]
    with pytest.raises(ValueError, match="'oops' is not NAME=VALUE"):
        parse_headers("oops")


def test_positions() -> None:
    assert position("to", "earliest", "", ("earliest", "latest")) is None
    assert position("to", "offset", "42", ("earliest", "latest")) == 42
    assert position("start", "timestamp", "5", ("newest", "oldest")) == 5
    with pytest.raises(ValueError, match="start: 'sideways' is not newest, oldest, offset or timestamp"):
        position("start", "sideways", "", ("newest", "oldest"))
    with pytest.raises(ValueError, match="offset: 'x' is not a whole number"):
        position("to", "offset", "x", ("earliest", "latest"))


def test_json_values_are_pretty_printed_and_others_left_alone() -> None:
    assert _pretty('{"a":[1,2]}') == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert _pretty("{not json") is None
    assert _pretty("plain") is None


def test_listener_addresses() -> None:
    assert parse_listener("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listener(":8080") == ("0.0.0.0", 8080)
    for bad in ("nowhere", "host:99999", "host:x"):
        with pytest.raises(ValueError, match="is not HOST:PORT"):
            parse_listener(bad)
