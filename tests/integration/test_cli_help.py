"""The ``tomyum`` command's own polish: ``--version``, help on a bare ``tomyum``, help readable in
80 columns, ``start`` taking ``serve``'s options (and ``make serve``'s rebalance delay), record
formats that keep null apart from empty and JSON as JSON, tables printed whole into a pipe."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import tomyum
from tests.integration.test_cli import free_port, ok, rows, tomyum_cmd
from tomyum.testing import BrokerProcess

COMMANDS = [[], ["serve"], ["start"], ["stop"], ["status"], ["produce"], ["consume"], ["version"], ["topics"],
            *[["topics", c] for c in ("list", "describe", "create", "delete", "alter")], ["groups"],
            *[["groups", c] for c in ("list", "describe", "reset-offsets", "delete")], ["configs"],
            ["configs", "describe"], ["configs", "set"], ["demo"]]


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with BrokerProcess(tmp_path_factory.mktemp("help") / "data") as broker:
        yield broker.bootstrap


def test_version_and_a_bare_tomyum() -> None:
    assert ok("--version") == ok("-V") == ok("version") == f"tomyum {tomyum.__version__}\n"
    bare = tomyum_cmd()
    assert bare.returncode == 0 and bare.stdout.startswith("Usage: tomyum [OPTIONS] COMMAND") and not bare.stderr


@pytest.mark.slow
def test_help_reads_well_in_80_columns() -> None:
    for command in COMMANDS:
        help_text = tomyum_cmd(*command, "--help", env={"COLUMNS": "80"}).stdout
        assert help_text.startswith("Usage: tomyum"), command
        for line in help_text.splitlines():
            assert len(line) <= 80, (command, line)
        assert "\t" not in help_text, command
        for typer_words in ("<bool>", "<int", "<float", "<list[", "<str>", "x>=", "[env var"):
            assert typer_words not in help_text, (command, typer_words)
        for variable in set(re.findall(r"TOMYUM_\w+", help_text)):
            assert help_text.count(variable) == 1, (command, variable)


def test_start_takes_serves_options_and_make_serves_rebalance_delay(tmp_path: Path, topic_name: str) -> None:
    d = ["--data-dir", str(tmp_path / "data")]
    address = f"127.0.0.1:{free_port()}"
    try:
        ok("start", "--listen", address, "--advertised", address, "--create-topic", f"{topic_name}:3",
           "--log-level", "WARNING", *d)
        assert [topic_name, "3", "1"] in rows(ok("topics", "list", "-b", address))
        assert ["group.initial.rebalance.delay.ms", "0", "static", "broker"] in \
            rows(ok("configs", "describe", "broker", "-b", address))
    finally:
        tomyum_cmd("stop", *d)


def test_null_and_empty_keys_and_json_values(bootstrap: str, topic_name: str) -> None:
    from confluent_kafka import Producer

    b = ["-b", bootstrap]
    ok("topics", "create", topic_name, *b)
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in [(None, b'{"n": 1, "ok": true}'), (b"", b"plain"), (b"k", None)]:
        producer.produce(topic_name, key=key, value=value)
    assert producer.flush(30) == 0
    everything = ["--from", "beginning", "--no-follow", *b]
    assert ok("consume", topic_name, "--format", "kv", "-K", "=", *everything).splitlines() == \
        ['null={"n": 1, "ok": true}', "=plain", "k=null"]
    records = [json.loads(line) for line in ok("consume", topic_name, "--format", "json", *everything).splitlines()]
    assert [(r["key"], r["value"]) for r in records] == [(None, {"n": 1, "ok": True}), ("", "plain"), ("k", None)]


def test_wide_tables_print_whole_into_a_pipe(bootstrap: str, topic_name: str) -> None:
    long_name = topic_name + "-" + "x" * 200
    ok("topics", "create", long_name, *["-b", bootstrap])
    assert [long_name, "1", "1"] in rows(tomyum_cmd("topics", "list", "-b", bootstrap,
                                                    env={"COLUMNS": "80"}).stdout.replace("\r", ""))
