"""Kafka's single message transforms and predicates in tomyum.connect, each on a schemaless
(map) and a schema'd (Struct) record, with the results Kafka's transforms give (read from their
sources and tests in Apache Kafka)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tomyum.connect.config import ConfigError
from tomyum.connect.data import (
    BOOLEAN_SCHEMA, FLOAT32_SCHEMA, INT8_SCHEMA, INT32_SCHEMA, INT64_SCHEMA, OPTIONAL_INT32_SCHEMA,
    STRING_SCHEMA, DataError, Headers, Schema, SchemaBuilder, SinkRecord, SourceRecord, Struct, Type,
    timestamp_schema,
)
from tomyum.connect.transforms import TransformationChain, predicate, transformation

pytestmark = pytest.mark.timeout(10)

T = "org.apache.kafka.connect.transforms."
SCHEMA = SchemaBuilder.struct().field("id", INT64_SCHEMA).field("name", STRING_SCHEMA) \
    .field("age", OPTIONAL_INT32_SCHEMA).build()


def struct() -> Struct:
    return Struct(SCHEMA).put("id", 42).put("name", "ann").put("age", 30)


def rec(value: Any, schema: Schema | None = None, **kw: Any) -> SinkRecord:
    base: dict[str, Any] = {"topic": "orders", "kafka_partition": 1, "kafka_offset": 9, "timestamp": 1_700_000_000_000}
    base.update(kw)
    return SinkRecord(value_schema=schema, value=value, **base)


def apply(type_: str, props: dict[str, str], record: SinkRecord) -> Any:
    return transformation(T + type_, props).apply(record)


def test_cast() -> None:
    out = apply("Cast$Value", {"spec": "id:int8,name:string,age:float64"}, rec({"id": 300, "name": "x", "age": 5}))
    assert out.value == {"id": 44, "name": "x", "age": 5.0}  # 300 wraps as Java's (byte) cast
    out = apply("Cast$Value", {"spec": "age:string,id:int32"}, rec(struct(), SCHEMA))
    assert out.value_schema.field("age").schema == Schema(type=Type.STRING, optional=True)
    assert out.value.get("age") == "30" and out.value.get("id") == 42
    assert apply("Cast$Value", {"spec": "boolean"}, rec(0)).value is False
    whole = apply("Cast$Value", {"spec": "int32"}, rec("17", STRING_SCHEMA))
    assert (whole.value_schema.type, whole.value) == (Type.INT32, 17)
    with pytest.raises(ConfigError):
        transformation(T + "Cast$Value", {"spec": "id:date"})


def test_drop_headers_and_insert_header() -> None:
    r = rec("v", headers=Headers().add("a", "1").add("b", "2").add("a", "3"))
    assert [h.key for h in apply("DropHeaders", {"headers": "a"}, r).headers] == ["b"]
    out = apply("InsertHeader", {"header": "h", "value.literal": "42"}, r)
    assert out.headers.last_with_name("h").value == 42
    assert len(r.headers) == 3  # the original record is untouched


def test_extract_field() -> None:
    assert apply("ExtractField$Value", {"field": "name"}, rec({"name": "z"})).value == "z"
    out = apply("ExtractField$Value", {"field": "name"}, rec(struct(), SCHEMA))
    assert (out.value_schema, out.value) == (STRING_SCHEMA, "ann")
    key = transformation(T + "ExtractField$Key", {"field": "k"}).apply(rec(None, key={"k": 1}))
    assert key.key == 1
    with pytest.raises(ValueError, match="Unknown field: nope"):
        apply("ExtractField$Value", {"field": "nope"}, rec(struct(), SCHEMA))


def test_filter_with_predicates_and_negate() -> None:
    chain = TransformationChain.from_props({
        "transforms": "dropTombstones", "transforms.dropTombstones.type": T + "Filter",
        "transforms.dropTombstones.predicate": "isTombstone",
        "predicates": "isTombstone", "predicates.isTombstone.type": T + "predicates.RecordIsTombstone"})
    assert chain.apply(rec(None)) is None
    assert chain.apply(rec("kept")) is not None
    negated = TransformationChain.from_props({
        "transforms": "onlyOrders", "transforms.onlyOrders.type": T + "Filter",
        "transforms.onlyOrders.predicate": "orders", "transforms.onlyOrders.negate": "true",
        "predicates": "orders", "predicates.orders.type": T + "predicates.TopicNameMatches",
        "predicates.orders.pattern": "ord.*"})
    assert negated.apply(rec("x")) is not None
    assert negated.apply(rec("x", topic="other")) is None


def test_predicates() -> None:
    has = predicate(T + "predicates.HasHeaderKey", {"name": "trace"})
    assert has.test(rec("v", headers=Headers().add("trace", "1")))
    assert not has.test(rec("v"))
    assert predicate(T + "predicates.TopicNameMatches", {"pattern": "or.*"}).test(rec("v"))
    assert not predicate(T + "predicates.TopicNameMatches", {"pattern": "or"}).test(rec("v"))  # whole name
    assert predicate(T + "predicates.RecordIsTombstone", {}).test(rec(None))


def test_flatten() -> None:
    nested = {"a": {"b": 1, "c": {"d": "x"}}, "e": True}
    assert apply("Flatten$Value", {}, rec(nested)).value == {"a.b": 1, "a.c.d": "x", "e": True}
    inner = SchemaBuilder.struct().field("b", INT32_SCHEMA).optional().build()
    schema = SchemaBuilder.struct().field("a", inner).field("e", BOOLEAN_SCHEMA).build()
    value = Struct(schema).put("a", Struct(inner).put("b", 5)).put("e", False)
    out = apply("Flatten$Value", {"delimiter": "_"}, rec(value, schema))
    assert [f.name for f in out.value_schema.fields] == ["a_b", "e"]
    assert out.value_schema.field("a_b").schema.optional  # under an optional parent
    assert out.value.get("a_b") == 5 and out.value.get("e") is False


def test_header_from() -> None:
    out = apply("HeaderFrom$Value", {"fields": "name", "headers": "who", "operation": "move"}, rec(struct(), SCHEMA))
    assert out.headers.last_with_name("who").value == "ann"
    assert [f.name for f in out.value_schema.fields] == ["id", "age"]
    copied = apply("HeaderFrom$Value", {"fields": "id", "headers": "i", "operation": "copy"}, rec({"id": 1}))
    assert copied.value == {"id": 1} and copied.headers.last_with_name("i").value == 1


def test_hoist_field_and_value_to_key() -> None:
    assert apply("HoistField$Value", {"field": "line"}, rec("hello")).value == {"line": "hello"}
    out = apply("HoistField$Value", {"field": "line"}, rec("hello", STRING_SCHEMA))
    assert out.value.get("line") == "hello" and out.value_schema.field("line").schema == STRING_SCHEMA
    keyed = apply("ValueToKey", {"fields": "id"}, rec(struct(), SCHEMA))
    assert keyed.key.get("id") == 42 and [f.name for f in keyed.key_schema.fields] == ["id"]
    assert apply("ValueToKey", {"fields": "id,name"}, rec({"id": 1, "name": "n", "x": 0})).key == {"id": 1, "name": "n"}


def test_insert_field() -> None:
    props = {"topic.field": "t", "partition.field": "p", "offset.field": "o!", "static.field": "s",
             "static.value": "v", "timestamp.field": "ts"}
    out = apply("InsertField$Value", props, rec({"a": 1}))
    assert out.value == {"a": 1, "t": "orders", "p": 1, "o": 9, "s": "v", "ts": 1_700_000_000_000}
    out = apply("InsertField$Value", props, rec(struct(), SCHEMA))
    assert out.value.get("t") == "orders" and out.value.get("o") == 9
    assert out.value_schema.field("o").schema.optional is False
    assert out.value_schema.field("ts").schema == timestamp_schema(True)
    assert out.value.get("ts") == datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc)
    with pytest.raises(DataError, match="only supported for sink"):
        transformation(T + "InsertField$Value", {"offset.field": "o"}).apply(SourceRecord(topic="x", value={}))


def test_mask_field() -> None:
    out = apply("MaskField$Value", {"fields": "name,age"}, rec({"name": "ann", "age": 30, "id": 1}))
    assert out.value == {"name": "", "age": 0, "id": 1}
    out = apply("MaskField$Value", {"fields": "age", "replacement": "99"}, rec(struct(), SCHEMA))
    assert out.value.get("age") == 99 and out.value.get("name") == "ann"


def test_regex_router_and_timestamp_router() -> None:
    out = apply("RegexRouter", {"regex": "(.*)ers", "replacement": "$1-routed"}, rec("v"))
    assert out.topic == "ord-routed"
    assert apply("RegexRouter", {"regex": "x", "replacement": "y"}, rec("v")).topic == "orders"
    routed = apply("TimestampRouter", {"topic.format": "${topic}_${timestamp}", "timestamp.format": "yyyy-MM-dd"}, rec("v"))
    assert routed.topic == "orders_2023-11-14"
    with pytest.raises(DataError, match="Timestamp missing"):
        apply("TimestampRouter", {}, rec("v", timestamp=None))


def test_replace_field() -> None:
    props = {"exclude": "age", "renames": "name:full_name"}
    assert apply("ReplaceField$Value", props, rec({"id": 1, "name": "a", "age": 3})).value == {"id": 1, "full_name": "a"}
    out = apply("ReplaceField$Value", {"include": "id,name", "renames": "id:key"}, rec(struct(), SCHEMA))
    assert [f.name for f in out.value_schema.fields] == ["key", "name"] and out.value.get("key") == 42


def test_set_schema_metadata() -> None:
    out = apply("SetSchemaMetadata$Value", {"schema.name": "com.example.Person", "schema.version": "2"},
                rec(struct(), SCHEMA))
    assert (out.value_schema.name, out.value_schema.version) == ("com.example.Person", 2)
    assert out.value.schema == out.value_schema and out.value.get("id") == 42
    with pytest.raises(DataError, match="Schema required"):
        apply("SetSchemaMetadata$Value", {"schema.name": "x"}, rec({"a": 1}))


def test_timestamp_converter() -> None:
    millis = 1_700_000_000_123
    out = apply("TimestampConverter$Value", {"target.type": "string", "format": "yyyy-MM-dd HH:mm:ss.SSS"},
                rec(millis, INT64_SCHEMA))
    assert (out.value_schema, out.value) == (STRING_SCHEMA, "2023-11-14 22:13:20.123")
    back = apply("TimestampConverter$Value", {"target.type": "unix", "format": "yyyy-MM-dd"}, rec("2023-11-14"))
    assert back.value == 1_699_920_000_000
    seconds = apply("TimestampConverter$Value", {"target.type": "unix", "unix.precision": "seconds"},
                    rec(datetime.datetime(1970, 1, 2, tzinfo=datetime.timezone.utc)))
    assert seconds.value == 86_400
    schema = SchemaBuilder.struct().field("ts", INT64_SCHEMA).field("n", INT8_SCHEMA).build()
    field = apply("TimestampConverter$Value", {"field": "ts", "target.type": "Timestamp"},
                  rec(Struct(schema).put("ts", 1000).put("n", 1), schema))
    assert field.value_schema.field("ts").schema == timestamp_schema()
    assert field.value.get("ts") == datetime.datetime(1970, 1, 1, 0, 0, 1, tzinfo=datetime.timezone.utc)


def test_unknown_transform_and_missing_predicate() -> None:
    from tomyum.connect.connector import ConnectError
    with pytest.raises(ConnectError, match="could not be found"):
        transformation("com.example.Nope", {})
    with pytest.raises(ConnectError, match="refers to predicate"):
        TransformationChain.from_props({"transforms": "f", "transforms.f.type": T + "Filter",
                                        "transforms.f.predicate": "p"})
    assert FLOAT32_SCHEMA.type is Type.FLOAT32


def test_what_kafkas_worker_showed() -> None:
    """Differences Kafka Connect's worker showed on the shared corpus (tests/interop/test_connect_transforms.py)."""
    # Cast and MaskField put every named field, a missing one as null, into a HashMap copy
    assert apply("Cast$Value", {"spec": "id:string,qty:int16"}, rec({"id": 1})).value == {"id": "1", "qty": None}
    assert apply("MaskField$Value", {"fields": "qty"}, rec({"id": 1})).value == {"qty": None, "id": 1}
    # Cast takes primitives only: a struct, map or list is refused, not printed
    for value, schema in ((struct(), SCHEMA), ({"a": 1}, None), ([1], None)):
        with pytest.raises(DataError, match="does not support casting"):
            apply("Cast$Value", {"spec": "string"}, rec(value, schema))
    # MaskField and HeaderFrom refuse tombstones; SetSchemaMetadata lets them through
    for type_, props in (("MaskField$Value", {"fields": "id"}),
                         ("HeaderFrom$Value", {"fields": "id", "headers": "h", "operation": "copy"})):
        with pytest.raises(DataError):
            apply(type_, props, rec(None))
    tombstone = rec(None)
    assert apply("SetSchemaMetadata$Value", {"schema.name": "x"}, tombstone) is tombstone
    # InsertField leaves out a partition it does not have (a source record's)
    source = SourceRecord(topic="t", value={"a": 1}, timestamp=5)
    got = transformation(T + "InsertField$Value", {"partition.field": "p", "timestamp.field": "ts"}).apply(source)
    assert got.value == {"a": 1, "ts": 5}


def test_file_sink_prints_dates_as_java(monkeypatch: pytest.MonkeyPatch) -> None:
    """The FileStream sink prints a Date/Timestamp as java.util.Date.toString() does, in the
    local time zone (Kafka's worker: the JVM's)."""
    import time
    from tomyum.connect.file import java_string
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert java_string(datetime.datetime(2024, 3, 1, tzinfo=datetime.timezone.utc)) == "Fri Mar 01 00:00:00 UTC 2024"
    finally:
        monkeypatch.undo()
        time.tzset()
