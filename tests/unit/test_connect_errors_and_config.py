"""ConfigDef parsing and validation, the tolerance operator (retries with backoff, none vs all,
reporters) and the offsets store's Kafka-shaped keys."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tomyum.connect.config import NO_DEFAULT, ConfigDef, ConfigError, ConfigType, Importance, in_range
from tomyum.connect.connector import RetriableError
from tomyum.connect.data import DataError
from tomyum.connect.error_handling import (
    SKIPPED, ErrorConfig, ProcessingContext, RetryWithToleranceOperator, Stage, ToleranceExceeded,
)
from tomyum.connect.offsets import ConnectorOffsets, FileOffsetBackingStore, offset_key

pytestmark = pytest.mark.timeout(10)


def definition() -> ConfigDef:
    return (ConfigDef()
            .define("topic", ConfigType.STRING, NO_DEFAULT, Importance.HIGH, "where")
            .define("batch.size", ConfigType.INT, 2000, Importance.LOW, "how many", validator=in_range(1))
            .define("enabled", ConfigType.BOOLEAN, False)
            .define("hosts", ConfigType.LIST, "a, b"))


def test_config_def_parses_kafka_style_values() -> None:
    parsed = definition().parse({"topic": "t", "batch.size": " 10 ", "enabled": "TRUE"})
    assert parsed == {"topic": "t", "batch.size": 10, "enabled": True, "hosts": ["a", "b"]}
    with pytest.raises(ConfigError, match='Missing required configuration "topic"'):
        definition().parse({})
    with pytest.raises(ConfigError, match="Value must be at least 1"):
        definition().parse({"topic": "t", "batch.size": "0"})


def test_config_def_validate_reports_every_error() -> None:
    values = definition().validate({"batch.size": "x", "enabled": "maybe"})
    assert values["topic"].errors == ['Missing required configuration "topic" which has no default value.']
    assert values["batch.size"].errors and values["enabled"].errors and values["hosts"].errors == []
    key = definition().keys["batch.size"]
    assert definition().definition_json(key)["default_value"] == "2000"
    assert definition().definition_json(definition().keys["topic"])["required"] is True


def operator(**config: object) -> RetryWithToleranceOperator:
    return RetryWithToleranceOperator(ErrorConfig(**config), [], threading.Event())  # type: ignore[arg-type]


def test_tolerance_none_fails_and_all_skips_and_reports() -> None:
    def bad() -> None:
        raise DataError("broken")
    with pytest.raises(ToleranceExceeded, match="Tolerance exceeded in error handler"):
        operator().execute(bad, ProcessingContext(stage=Stage.VALUE_CONVERTER))
    reported: list[ProcessingContext] = []

    class Reporter:
        def report(self, context: ProcessingContext) -> None:
            reported.append(context)
    op = RetryWithToleranceOperator(ErrorConfig(tolerance_all=True), [Reporter()], threading.Event())
    assert op.execute(bad, ProcessingContext(stage=Stage.TRANSFORMATION)) is SKIPPED
    assert [c.stage for c in reported] == [Stage.TRANSFORMATION] and isinstance(reported[0].error, DataError)
    assert op.execute(lambda: 5, ProcessingContext()) == 5


def test_retriable_failures_are_retried_until_the_timeout() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RetriableError("not yet")
        return "done"
    op = operator(retry_timeout_ms=5000, retry_delay_max_ms=1)
    assert op.execute(flaky, ProcessingContext()) == "done" and len(calls) == 3
    no_retries = operator()
    with pytest.raises(ToleranceExceeded):
        no_retries.execute(lambda: (_ for _ in ()).throw(RetriableError("x")), ProcessingContext())


def test_error_config_reads_kafkas_keys() -> None:
    config = ErrorConfig.from_props({"errors.tolerance": "all", "errors.deadletterqueue.topic.name": "dlq",
                                     "errors.deadletterqueue.topic.replication.factor": "1",
                                     "errors.deadletterqueue.context.headers.enable": "true"})
    assert config.tolerance_all and config.dlq_topic == "dlq" and config.dlq_replication_factor == 1
    assert config.dlq_context_headers


def test_offsets_are_stored_under_kafkas_keys(tmp_path: Path) -> None:
    assert offset_key("c", {"filename": "a.txt"}) == b'["c",{"filename":"a.txt"}]'
    store = FileOffsetBackingStore(tmp_path / "offsets")
    ConnectorOffsets(store, "c").put({"filename": "a.txt"}, {"position": 12})
    reopened = ConnectorOffsets(FileOffsetBackingStore(tmp_path / "offsets"), "c")
    assert reopened.offset({"filename": "a.txt"}) == {"position": 12}
    assert reopened.all() == [({"filename": "a.txt"}, {"position": 12})]
    reopened.put({"filename": "a.txt"}, None)
    assert ConnectorOffsets(FileOffsetBackingStore(tmp_path / "offsets"), "c").all() == []
