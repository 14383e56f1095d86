"""Kafka's tools' habits work in the ``tomyum`` command where they do not clash with its own:
``--bootstrap-server``, ``--topic``, ``--from-beginning``, ``topics describe`` of every topic, and
``groups reset-offsets`` that only previews unless ``--execute`` is given."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.test_cli import fails, ok, rows
from tomyum.testing import BrokerProcess


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with BrokerProcess(tmp_path_factory.mktemp("habits") / "data",
                       settings={"group.initial.rebalance.delay.ms": "0"}) as broker:
        yield broker.bootstrap


def test_kafka_option_names(bootstrap: str, topic_name: str) -> None:
    b = ["--bootstrap-server", bootstrap]
    assert ok("topics", "create", "--topic", topic_name, "-p", "2", *b) == \
        f"created topic {topic_name} with 2 partitions\n"
    assert ok("produce", "--topic", topic_name, *b, input="a\nb\n") == f"produced 2 records to {topic_name}\n"
    assert sorted(ok("consume", "--topic", topic_name, "--from-beginning", "-n", "2", *b).split()) == ["a", "b"]
    assert sorted(ok("consume", topic_name, "--topic", topic_name, "--from-beginning", "--no-follow", *b).split()) \
        == ["a", "b"]
    assert "two topics named" in fails("consume", topic_name, "--topic", "other", *b, code=2)
    assert "name the topic" in fails("consume", *b, code=2)
    assert "give one" in fails("consume", topic_name, "--from-beginning", "--from", "end", *b, code=2)
    assert f"topic {topic_name}: 2 partitions" in ok("topics", "describe", "--topic", topic_name, *b)


def test_topics_describe_without_a_name_describes_every_topic(bootstrap: str, topic_name: str) -> None:
    b = ["-b", bootstrap]
    ok("topics", "create", topic_name, *b)
    ok("topics", "create", topic_name + "-2", "-p", "3", *b)
    described = ok("topics", "describe", *b)
    assert f"topic {topic_name}: 1 partition" in described
    assert f"topic {topic_name}-2: 3 partitions" in described
    assert "__consumer_offsets" not in described


def test_reset_offsets_previews_unless_executed(bootstrap: str, topic_name: str) -> None:
    b = ["-b", bootstrap]
    group = "g-" + topic_name
    ok("topics", "create", topic_name, *b)
    ok("produce", topic_name, *b, input="a\nb\nc\n")
    ok("consume", topic_name, "-g", group, "--from", "beginning", "--no-follow", *b)
    committed = lambda: [r[2] for r in rows(ok("groups", "describe", group, *b)) if r[0] == topic_name]  # noqa: E731
    assert committed() == ["3"]

    for preview in ([], ["--dry-run"]):
        out = ok("groups", "reset-offsets", group, "--to", "earliest", "--all-topics", *preview, *b)
        assert [topic_name, "0", "3", "0"] in rows(out)
        assert "nothing changed: this is a preview (--execute changes the offsets)" in out
        assert committed() == ["3"]
    out = ok("groups", "reset-offsets", group, "--to", "earliest", "--all-topics", "--execute", *b)
    assert f"reset offsets of group {group} on 1 partition" in out
    assert committed() == ["0"]
    assert "give one" in fails("groups", "reset-offsets", group, "--to", "0", "--all-topics", "--execute",
                               "--dry-run", *b, code=2)
