"""The command line's pure parts: positions, ``key=value``, ``topic:partitions``, durations,
sizes, and the error boundary that turns every failure into one line and an exit code."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import typer

from tomyum.cli.common import CliError, librdkafka_log, run, unreachable
from tomyum.cli.parsing import (
    Position,
    format_bytes,
    format_duration,
    parse_pairs,
    parse_position,
    parse_topic_partitions,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("beginning", Position(kind="earliest")), ("Earliest", Position(kind="earliest")),
    ("end", Position(kind="latest")), ("latest", Position(kind="latest")),
    ("42", Position(kind="offset", value=42)), ("0", Position(kind="offset", value=0)),
    ("-10", Position(kind="tail", value=10)),
    ("@1700000000000", Position(kind="timestamp", value=1700000000000)),
    ("2023-11-14T22:13:20+00:00", Position(kind="timestamp", value=1700000000000)),
    ("2023-11-14T22:13:20Z", Position(kind="timestamp", value=1700000000000)),
])
def test_positions(text: str, expected: Position) -> None:
    assert parse_position(text, "--from") == expected


def test_a_datetime_without_a_zone_is_local_time() -> None:
    local = datetime(2024, 5, 1, 12, 0).astimezone()
    assert parse_position("2024-05-01T12:00", "--to").value == int(local.timestamp() * 1000)
    assert parse_position("2024-05-01", "--to").value == int(datetime(2024, 5, 1).astimezone().timestamp() * 1000)


def test_a_bad_position_names_the_option_and_the_forms() -> None:
    with pytest.raises(CliError) as e:
        parse_position("yesterday", "--from")
    assert str(e.value).startswith("--from: 'yesterday' is not beginning, end, an offset")
    assert e.value.exit_code == 2


@pytest.mark.parametrize(("position", "expected"), [
    (Position(kind="earliest"), 10), (Position(kind="latest"), 20),
    (Position(kind="offset", value=15), 15), (Position(kind="offset", value=3), 10),
    (Position(kind="offset", value=99), 20), (Position(kind="tail", value=4), 16),
    (Position(kind="tail", value=50), 10),
])
def test_positions_resolve_within_the_log(position: Position, expected: int) -> None:
    assert position.resolve(10, 20) == expected


def test_a_time_resolves_to_what_list_offsets_found_or_the_end() -> None:
    at = Position(kind="timestamp", value=1)
    assert at.resolve(10, 20, 12) == 12
    assert at.resolve(10, 20, -1) == 20 and at.resolve(10, 20, None) == 20
    assert at.resolve(10, 20, 5) == 10


def test_pairs() -> None:
    assert parse_pairs(["a=1", "b=x=y", " c =", "a=2"], "--config") == {"a": "2", "b": "x=y", "c": ""}
    for bad in ("novalue", "=1"):
        with pytest.raises(CliError, match=f"--config: '{bad}' is not key=value"):
            parse_pairs([bad], "--config")


def test_topic_partitions() -> None:
    assert parse_topic_partitions("orders", "--topic") == ("orders", None)
    assert parse_topic_partitions("orders:2,0,2", "--topic") == ("orders", [0, 2])
    for bad in ("orders:", "orders:a", ":1", "orders:1,"):
        with pytest.raises(CliError, match="is not TOPIC or TOPIC:PARTITION"):
            parse_topic_partitions(bad, "--topic")


def test_durations_and_sizes() -> None:
    assert [format_duration(s) for s in (4.9, 192, 18120, 183600)] == ["4s", "3m 12s", "5h 02m", "2d 03h"]
    assert [format_bytes(n) for n in (512, 1536, 12 * 2**20, 3 * 2**40, 2**50)] == \
        ["512 B", "1.5 KiB", "12.0 MiB", "3.0 TiB", "1024.0 TiB"]


@pytest.mark.parametrize(("line", "reason"), [
    ("FAIL [rdkafka#producer-1] [thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 "
     "failed: Connection refused (after 0ms in state CONNECT, 1 identical error(s) suppressed)",
     "connection refused"),
    ("FAIL [rdkafka#consumer-1] [thrd:nohost:9092/bootstrap]: nohost:9092/bootstrap: Failed to resolve "
     "'nohost:9092': Name or service not known (after 2ms in state CONNECT)",
     "cannot resolve its host name"),
])
def test_why_no_broker_answered_comes_from_librdkafka_log(line: str, reason: str) -> None:
    librdkafka_log.error(line)
    assert str(unreachable("h:1", 2)) == (f"nothing answers at h:1 ({reason}): start one with 'tomyum start', "
                                          "or name another with --bootstrap HOST:PORT")


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def fail(kind: str, count: int = typer.Option(1, min=1)) -> None:
        if kind == "cli":
            raise CliError("unknown topic 'x'", 3)
        if kind == "bug":
            raise ValueError("multi\nline")
        if kind == "exit":
            raise typer.Exit(4)

    return app


@pytest.mark.parametrize(("args", "code", "message"), [
    (["cli"], 3, "error: unknown topic 'x'"),
    (["bug"], 1, "error: unexpected failure, multi line (TOMYUM_DEBUG=1 shows where)"),
    (["ok", "--count", "0"], 2, "error: --count: must be at least 1"),
    (["ok", "--colour"], 2, "error: No such option: --colour"),
])
def test_every_failure_is_one_line(args: list[str], code: int, message: str, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TOMYUM_DEBUG", raising=False)
    monkeypatch.setattr("sys.argv", ["tomyum", *args])
    assert run(_app()) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(message)


def test_exit_codes_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["tomyum", "exit"])
    assert run(_app()) == 4
    monkeypatch.setattr("sys.argv", ["tomyum", "fine"])
    assert run(_app()) == 0


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOMYUM_DEBUG", "1")
    monkeypatch.setattr("sys.argv", ["tomyum", "bug"])
    with pytest.raises(ValueError):
        run(_app())
