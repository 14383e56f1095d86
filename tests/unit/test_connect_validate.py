"""Each built-in connector's ``validate`` (Kafka's Connector.validate) runs the checks its start
makes: a config a start would refuse gets, from ``/config/validate``, an error on the key at fault
with the start's own message."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from tomyum.connect.config import ConfigError
from tomyum.connect.connector import Connector
from tomyum.connect.http import HttpSinkConnector
from tomyum.connect.postgres.connector import JdbcSinkConnector, JdbcSourceConnector, PostgresConnector
from tomyum.connect.s3.sink import S3SinkConnector

pytestmark = pytest.mark.timeout(30)

JDBC = {"connection.url": "postgresql://localhost/db"}
S3 = {"s3.bucket.name": "b", "flush.size": "3", "format.class": "io.confluent.connect.s3.format.json.JsonFormat"}
CDC = {"database.dbname": "db", "topic.prefix": "pg"}
HTTP = {"http.api.url": "http://localhost:1/"}

CASES = [
    (JdbcSourceConnector, {**JDBC, "mode": "incrementing", "table.whitelist": "t"}, "incrementing.column.name",
     "mode=incrementing needs incrementing.column.name"),
    (JdbcSourceConnector, {**JDBC, "mode": "bulk"}, "table.whitelist",
     "table.whitelist: name at least one table, or set query"),
    (JdbcSourceConnector, {**JDBC, "mode": "bulk", "table.whitelist": "t", "query": "SELECT 1"}, "query",
     "query may not be combined with whole-table copying settings."),
    (JdbcSinkConnector, {**JDBC, "insert.mode": "upsert"}, "insert.mode",
     "insert.mode=upsert needs a primary key: set pk.mode"),
    (JdbcSinkConnector, {**JDBC, "delete.enabled": "true", "pk.mode": "kafka"}, "delete.enabled",
     "delete.enabled=true needs pk.mode=record_key"),
    (S3SinkConnector, {**S3, "partitioner.class": "FieldPartitioner"}, "partition.field.name",
     "FieldPartitioner needs partition.field.name"),
    (S3SinkConnector, {**S3, "rotate.schedule.interval.ms": "60000"}, "timezone",
     "rotate.schedule.interval.ms needs a timezone"),
    (HttpSinkConnector, {**HTTP, "auth.type": "BASIC", "connection.user": "ann"}, "connection.user",
     "BASIC auth needs connection.user and connection.password"),
    (HttpSinkConnector, {**HTTP, "headers": "X-Tenant=acme"}, "headers", "A header is Name:value, not 'X-Tenant=acme'"),
    (PostgresConnector, {**CDC, "table.include.list": "public.(orders"}, "table.include.list",
     "Not a regular expression: public.(orders (missing ), unterminated subpattern at position 7)"),
    (PostgresConnector, {**CDC, "skipped.operations": "c,x"}, "skipped.operations",
     "The operations are c, u, d and t, comma-separated, or none"),
]


@pytest.mark.parametrize(("cls", "props", "key", "message"), CASES,
                         ids=[f"{c[0].__name__}-{c[2]}" for c in CASES])
def test_validate_reports_what_start_refuses_on_its_key(cls: type[Connector], props: Mapping[str, str], key: str,
                                                        message: str) -> None:
    values = cls().validate(props)
    errors = {k: v.errors for k, v in values.items() if v.errors}
    assert errors == {key: [message]}
    with pytest.raises(ConfigError) as refused:
        cls().start(props)
    assert refused.value.name == key and refused.value.detail == message


@pytest.mark.parametrize("cls, props", [
    (JdbcSourceConnector, {**JDBC, "mode": "incrementing", "table.whitelist": "t", "incrementing.column.name": "id"}),
    (JdbcSinkConnector, {**JDBC, "insert.mode": "upsert", "pk.mode": "record_key"}),
    (S3SinkConnector, S3), (HttpSinkConnector, {**HTTP, "headers": "X-Tenant:acme"}),
    (PostgresConnector, {**CDC, "table.include.list": "public\\..*", "skipped.operations": "none"}),
])
def test_validate_accepts_what_start_accepts(cls: type[Connector], props: Mapping[str, str]) -> None:
    assert not [v.errors for v in cls().validate(props).values() if v.errors]
    connector = cls()
    connector.start(props)
    connector.stop()


def test_a_keys_own_error_is_reported_before_the_connectors_checks() -> None:
    errors = {k: v.errors for k, v in JdbcSourceConnector().validate({**JDBC, "mode": "sometimes"}).items() if v.errors}
    assert list(errors) == ["mode"] and errors["mode"][0].startswith("String must be one of")
