"""The pure cores of the PostgreSQL connectors, from bytes and values alone: the pgoutput
decoder (messages built as PostgreSQL's protocol chapter lays them out), Debezium's type
mapping, the sink's statements, and where a CDC capture resumes from a stored offset (decoded
messages fed to it, no server)."""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tomyum.connect.connector import ExactlyOnceSupport
from tomyum.connect.postgres import pgoutput
from tomyum.connect.postgres.cdc import CdcConfig, PostgresCdc
from tomyum.connect.postgres.connector import PostgresConnector
from tomyum.connect.postgres.envelope import Table, TableColumn
from tomyum.connect.postgres.jdbc_sink import PostgresSink, _Row
from tomyum.connect.postgres.types import ColumnType, TypeOptions, map_type, parse_array


def cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def tuple_data(*values: str | None) -> bytes:
    out = struct.pack(">h", len(values))
    for v in values:
        out += b"n" if v is None else b"t" + struct.pack(">i", len(v.encode())) + v.encode()
    return out


def test_begin_commit_relation_and_changes_decode() -> None:
    assert pgoutput.decode(b"B" + struct.pack(">QqI", 0x16B374D848, 5, 731)) == pgoutput.Begin(
        final_lsn=0x16B374D848, commit_ts_us=5, xid=731)
    assert pgoutput.decode(b"C" + struct.pack(">bQQq", 0, 10, 20, 7)) == pgoutput.Commit(
        flags=0, commit_lsn=10, end_lsn=20, commit_ts_us=7)
    relation = (b"R" + struct.pack(">I", 16384) + cstr("public") + cstr("customers") + b"d" + struct.pack(">h", 2)
                + b"\x01" + cstr("id") + struct.pack(">Ii", 23, -1) + b"\x00" + cstr("name") + struct.pack(">Ii", 25, -1))
    assert pgoutput.decode(relation) == pgoutput.Relation(
        oid=16384, namespace="public", name="customers", replica_identity="d", columns=(
            pgoutput.Column(name="id", type_oid=23, type_modifier=-1, part_of_key=True),
            pgoutput.Column(name="name", type_oid=25, type_modifier=-1, part_of_key=False)))
    assert pgoutput.decode(b"I" + struct.pack(">I", 16384) + b"N" + tuple_data("1", None)) == pgoutput.Insert(
        relation_oid=16384, new=("1", None))
    update = b"U" + struct.pack(">I", 1) + b"O" + tuple_data("1", "a") + b"N" + tuple_data("1", "b")
    assert pgoutput.decode(update) == pgoutput.Update(relation_oid=1, old=("1", "a"), new=("1", "b"), old_is_key=False)
    toast = b"U" + struct.pack(">I", 1) + b"N" + struct.pack(">h", 2) + b"t" + struct.pack(">i", 1) + b"1" + b"u"
    assert pgoutput.decode(toast) == pgoutput.Update(relation_oid=1, old=None, new=("1", pgoutput.UNCHANGED_TOAST),
                                                     old_is_key=False)
    assert pgoutput.decode(b"D" + struct.pack(">I", 1) + b"K" + tuple_data("1", None)) == pgoutput.Delete(
        relation_oid=1, old=("1", None), old_is_key=True)
    assert pgoutput.decode(b"T" + struct.pack(">ibII", 2, 3, 7, 8)) == pgoutput.Truncate(
        relation_oids=(7, 8), cascade=True, restart_identity=True)
    assert pgoutput.decode(b"Y" + struct.pack(">I", 99) + cstr("public") + cstr("mood")) == pgoutput.TypeMessage(
        oid=99, namespace="public", name="mood")


@pytest.mark.parametrize("payload", [b"", b"Z", b"B\x00", b"I" + struct.pack(">I", 1) + b"X",
                                     b"B" + struct.pack(">QqI", 1, 2, 3) + b"extra",
                                     b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">h", 1) + b"q"])
def test_malformed_messages_raise_decode_error(payload: bytes) -> None:
    with pytest.raises(pgoutput.DecodeError):
        pgoutput.decode(payload)


@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_decode_error(payload: bytes) -> None:
    try:
        pgoutput.decode(payload)
    except pgoutput.DecodeError:
        pass  # the one error a malformed message may raise


def test_lsn_text_form_round_trips() -> None:
    assert pgoutput.format_lsn(0x16B374D848) == "16/B374D848"
    assert pgoutput.parse_lsn("16/B374D848") == 0x16B374D848


def col(name: str, typmod: int = -1, optional: bool = True) -> ColumnType:
    return ColumnType(type_name=name, type_modifier=typmod, optional=optional)


def test_types_map_as_debezium_does() -> None:
    assert map_type(col("int8", optional=False)).schema == {"type": "int64", "optional": False}
    numeric = map_type(col("numeric", typmod=((10 << 16) | 2) + 4))
    assert numeric.schema["name"] == "org.apache.kafka.connect.data.Decimal"
    assert numeric.schema["parameters"] == {"scale": "2", "connect.decimal.precision": "10"}
    assert numeric.parse("9.5") == Decimal("9.50")
    assert map_type(col("numeric"), TypeOptions(decimal_handling_mode="double")).parse("1.25") == 1.25
    assert map_type(col("numeric")).schema["name"] == "io.debezium.data.VariableScaleDecimal"
    assert map_type(col("numeric")).parse("-1.5") == {"scale": 1, "value": (-15).to_bytes(1, "big", signed=True)}
    ts = map_type(col("timestamp"))
    assert ts.schema["name"] == "io.debezium.time.MicroTimestamp" and ts.parse("1970-01-01 00:00:01.5") == 1_500_000
    assert map_type(col("timestamp", typmod=3)).schema["name"] == "io.debezium.time.Timestamp"
    assert map_type(col("timestamptz")).parse("2020-01-02 03:04:05.120+02") == "2020-01-02T01:04:05.12Z"
    assert map_type(col("date")).parse("1970-01-11") == 10
    assert map_type(col("time")).parse("00:00:01.000002") == 1_000_002
    assert map_type(col("uuid")).schema["name"] == "io.debezium.data.Uuid"
    assert map_type(col("jsonb")).schema["name"] == "io.debezium.data.Json"
    assert map_type(col("bytea")).parse("\\x0aff") == b"\x0a\xff"
    assert map_type(col("bool")).parse("t") is True
    arr = map_type(col("_int4"))
    assert arr.schema["items"] == {"type": "int32", "optional": True} and arr.parse("{1,NULL,3}") == [1, None, 3]


def test_array_literals_parse() -> None:
    assert parse_array("{}") == []
    assert parse_array('{a,"b,c","d\\"e",NULL,"NULL"}') == ["a", "b,c", 'd"e', None, "NULL"]


def test_sink_statements() -> None:
    schema = {"type": "int32", "optional": False}
    row = _Row("t", {"id": (schema, 1), "name": ({"type": "string", "optional": True}, "x")}, ("id",), delete=False)
    upsert, params = PostgresSink.statement(row, "upsert")
    assert upsert.as_string(None) == (
        'INSERT INTO "t" ("id", "name") VALUES (%s, %s) ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name"')
    assert params == [1, "x"]
    update, params = PostgresSink.statement(row, "update")
    assert update.as_string(None) == 'UPDATE "t" SET "name" = %s WHERE "id" = %s' and params == ["x", 1]
    delete, params = PostgresSink.statement(_Row("t", {"id": (schema, 1)}, ("id",), delete=True), "insert")
    assert delete.as_string(None) == 'DELETE FROM "t" WHERE "id" = %s' and params == [1]


def _cdc_after(stored: dict[str, object] | None) -> tuple[PostgresCdc, list[tuple[int, int, int]]]:
    """A capture resumed from ``stored``, and the stream PostgreSQL re-sends from its slot:
    transactions (commit lsn, end lsn) at 100 and 200, two inserts each, as (commit, change lsn, id)."""
    cdc = PostgresCdc(CdcConfig(dsn="", database="inventory", topic_prefix="pg"))
    cdc._stored = stored
    cdc._relations[7] = Table(schema="public", name="t", primary_key=("id",),
                              columns=(TableColumn(name="id", type=col("int4", optional=False)),))
    sent = []
    for commit, changes in ((100, (90, 95)), (200, (190, 195))):
        cdc._handle(pgoutput.Begin(final_lsn=commit, commit_ts_us=0, xid=commit), 0)
        for lsn in changes:
            cdc._handle(pgoutput.Insert(relation_oid=7, new=(str(lsn),)), lsn)
        for r in cdc._handle(pgoutput.Commit(flags=0, commit_lsn=commit, end_lsn=commit + 8, commit_ts_us=0),
                             commit + 8):
            assert r.record.value is not None
            sent.append((r.offset["lsn_commit"], r.offset["lsn"], r.record.value["after"]["id"]))
    return cdc, sent


@pytest.mark.parametrize(("stored", "expected"), [
    (None, [(100, 90, 90), (100, 108, 95), (200, 190, 190), (200, 208, 195)]),
    # the last committed record was a transaction's last change: its lsn is the commit's end
    ({"lsn": 108, "lsn_commit": 100}, [(200, 190, 190), (200, 208, 195)]),
    # a Kafka transaction ended inside a PostgreSQL one: the rest of it comes, nothing before
    ({"lsn": 190, "lsn_commit": 200}, [(200, 208, 195)]),
    ({"lsn": 208, "lsn_commit": 200}, []),
    # the snapshot's offset: everything streamed after it is new
    ({"lsn": 50, "lsn_commit": 50, "snapshot": True, "last_snapshot_record": True},
     [(100, 90, 90), (100, 108, 95), (200, 190, 190), (200, 208, 195)]),
])
def test_cdc_resumes_exactly_after_the_stored_offset(stored: dict[str, object] | None,
                                                     expected: list[tuple[int, int, int]]) -> None:
    """What the slot re-sends at or before the stored offset is skipped, the rest is sent once:
    exactly-once source rests on it."""
    assert _cdc_after(stored)[1] == expected


def test_cdc_connector_declares_exactly_once_support_as_debezium() -> None:
    assert PostgresConnector().exactly_once_support({}) is ExactlyOnceSupport.SUPPORTED
