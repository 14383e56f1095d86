"""tomyum.connect's converters give Kafka's bytes: JsonConverter's envelope and schema layout
(as Kafka's JsonConverter writes them with Jackson), StringConverter, ByteArrayConverter."""

from __future__ import annotations

import datetime
import decimal

import pytest

from tomyum.connect.converters import ByteArrayConverter, JsonConverter, StringConverter
from tomyum.connect.data import (
    BOOLEAN_SCHEMA, BYTES_SCHEMA, FLOAT64_SCHEMA, INT32_SCHEMA, INT64_SCHEMA, OPTIONAL_STRING_SCHEMA,
    STRING_SCHEMA, DataError, SchemaBuilder, Struct, date_schema, decimal_schema, timestamp_schema,
)

pytestmark = pytest.mark.timeout(10)


def json_converter(schemas: bool = True) -> JsonConverter:
    c = JsonConverter()
    c.configure({"schemas.enable": str(schemas).lower()}, False)
    return c


@pytest.mark.parametrize(("schema", "value", "expected"), [
    (BOOLEAN_SCHEMA, True, b'{"schema":{"type":"boolean","optional":false},"payload":true}'),
    (INT32_SCHEMA, 42, b'{"schema":{"type":"int32","optional":false},"payload":42}'),
    (INT64_SCHEMA, -1, b'{"schema":{"type":"int64","optional":false},"payload":-1}'),
    (FLOAT64_SCHEMA, 12.5, b'{"schema":{"type":"double","optional":false},"payload":12.5}'),
    (STRING_SCHEMA, "ünï", '{"schema":{"type":"string","optional":false},"payload":"ünï"}'.encode()),
    (BYTES_SCHEMA, b"\x00\x01", b'{"schema":{"type":"bytes","optional":false},"payload":"AAE="}'),
    (OPTIONAL_STRING_SCHEMA, None, b'{"schema":{"type":"string","optional":true},"payload":null}'),
    (date_schema(), datetime.date(1970, 1, 11),
     b'{"schema":{"type":"int32","optional":false,"name":"org.apache.kafka.connect.data.Date","version":1},"payload":10}'),
    (timestamp_schema(), datetime.datetime(1970, 1, 1, 0, 0, 1, tzinfo=datetime.timezone.utc),
     b'{"schema":{"type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1},"payload":1000}'),
    (decimal_schema(2), decimal.Decimal("1.56"),
     b'{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,'
     b'"parameters":{"scale":"2"}},"payload":"AJw="}'),
])
def test_json_with_schemas_is_kafkas_bytes(schema: object, value: object, expected: bytes) -> None:
    c = json_converter()
    assert c.from_connect_data("t", schema, value) == expected  # type: ignore[arg-type]
    back_schema, back = c.to_connect_data("t", expected)
    assert back == value or (isinstance(value, datetime.date) and back is not None)


def test_json_struct_array_map_layout() -> None:
    inner = SchemaBuilder.array(INT32_SCHEMA).optional().build()
    schema = (SchemaBuilder.struct().name("com.example.Row").version(3).doc("a row")
              .field("id", INT64_SCHEMA).field("tags", inner)
              .field("attrs", SchemaBuilder.map(STRING_SCHEMA, INT32_SCHEMA).build())
              .field("pairs", SchemaBuilder.map(INT32_SCHEMA, STRING_SCHEMA).build()).build())
    value = Struct(schema).put("id", 7).put("tags", [1, 2]).put("attrs", {"a": 1}).put("pairs", {1: "x"})
    data = json_converter().from_connect_data("t", schema, value)
    assert data == (
        b'{"schema":{"type":"struct","fields":['
        b'{"type":"int64","optional":false,"field":"id"},'
        b'{"type":"array","items":{"type":"int32","optional":false},"optional":true,"field":"tags"},'
        b'{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"int32","optional":false},'
        b'"optional":false,"field":"attrs"},'
        b'{"type":"map","keys":{"type":"int32","optional":false},"values":{"type":"string","optional":false},'
        b'"optional":false,"field":"pairs"}],'
        b'"optional":false,"name":"com.example.Row","version":3,"doc":"a row"},'
        b'"payload":{"id":7,"tags":[1,2],"attrs":{"a":1},"pairs":[[1,"x"]]}}')
    back_schema, back = json_converter().to_connect_data("t", data)
    assert back_schema == schema and back == value


def test_json_without_schemas_and_tombstones() -> None:
    c = json_converter(schemas=False)
    assert c.from_connect_data("t", None, {"a": [1, "b", None], "c": True}) == b'{"a":[1,"b",null],"c":true}'
    assert c.from_connect_data("t", STRING_SCHEMA, "x") == b'"x"'
    assert c.from_connect_data("t", None, None) is None
    assert json_converter().from_connect_data("t", None, None) is None
    assert c.to_connect_data("t", b'{"n":1,"f":1.5}') == (None, {"n": 1, "f": 1.5})
    assert c.to_connect_data("t", None) == (None, None)


def test_json_refuses_what_kafka_refuses() -> None:
    with pytest.raises(DataError, match="requires \"schema\" and \"payload\" fields"):
        json_converter().to_connect_data("t", b'{"a":1}')
    with pytest.raises(DataError, match="Converting byte\\[\\] to Kafka Connect data failed"):
        json_converter(schemas=False).to_connect_data("t", b"not json")
    with pytest.raises(DataError, match="null value for field that is required"):
        json_converter().from_connect_data("t", STRING_SCHEMA, None)


def test_string_and_byte_array_converters() -> None:
    s = StringConverter()
    s.configure({}, False)
    assert s.from_connect_data("t", STRING_SCHEMA, "héllo") == "héllo".encode()
    assert s.from_connect_data("t", None, 12) == b"12"
    assert s.from_connect_data("t", None, None) is None
    assert s.to_connect_data("t", b"abc") == (OPTIONAL_STRING_SCHEMA, "abc")
    b = ByteArrayConverter()
    assert b.from_connect_data("t", BYTES_SCHEMA, b"\x01") == b"\x01"
    with pytest.raises(DataError):
        b.from_connect_data("t", STRING_SCHEMA, "x")


def test_schemaless_objects_come_back_in_java_hashmap_order() -> None:
    """Kafka's JsonConverter reads a schemaless object into a HashMap and writes it in that map's
    order; these orders are what Kafka Connect 4.3's worker wrote (tests/interop/test_connect_transforms.py)."""
    c = json_converter(schemas=False)
    doc = b'{"id":1,"name":"Ada","price":12.5,"active":true,"secret":"s","created":1,"epoch":2,"tags":[],' \
          b'"address":{"street":"1 Main","city":"Oslo","geo":{"lat":59.9,"lon":10.75}}}'
    _, value = c.to_connect_data("t", doc)
    assert c.from_connect_data("t", None, value) == (
        b'{"address":{"geo":{"lon":10.75,"lat":59.9},"city":"Oslo","street":"1 Main"},"price":12.5,"created":1,'
        b'"name":"Ada","active":true,"epoch":2,"id":1,"secret":"s","tags":[]}')


def test_java_hashmap_capacity_rules() -> None:
    from tomyum.connect.javamap import HashMapOrder, java_hash_map, java_string_hash
    assert java_string_hash("") == 0 and java_string_hash("a") == 97
    # over UTF-16 code units, as Java's (values from jshell's "…".hashCode())
    assert java_string_hash("ünïcödé ✓") == 2948285608 and java_string_hash("\U0001F600x") == 54959989
    keys = ["id", "name", "price", "active", "secret", "created", "epoch", "tags", "address"]
    assert list(java_hash_map((k, 0) for k in keys)) == [
        "address", "price", "created", "name", "active", "epoch", "id", "secret", "tags"]
    # new HashMap<>(map) sizes its table from the size (JDK 17), then grows as puts need
    copy = HashMapOrder.copy_of(dict.fromkeys(keys))
    assert copy.cap == 16 and list(copy.put("qty", 0).to_dict())[:4] == ["address", "price", "created", "qty"]
    assert HashMapOrder.copy_of({"a": 1, "b": 2, "c": 3}).cap == 8
    assert HashMapOrder(capacity=0).put("x", 1).cap == 2  # tableSizeFor(0) = 1, doubled by the first put
    assert list(java_hash_map([(1, "a"), (0, "b")])) == [1, 0]  # keys other than strings keep their order


@pytest.mark.parametrize(("value", "text"), [
    (12.5, b"12.5"), (0.0, b"0.0"), (-0.5, b"-0.5"), (9999999.0, b"9999999.0"), (1e7, b"1.0E7"),
    (1709164807.0, b"1.709164807E9"), (1e21, b"1.0E21"), (0.001, b"0.001"), (0.0001, b"1.0E-4"),
    (-2.5e-5, b"-2.5E-5"), (123456789.125, b"1.23456789125E8"),
])
def test_doubles_are_written_as_javas_double_to_string(value: float, text: bytes) -> None:
    assert json_converter(schemas=False).from_connect_data("t", FLOAT64_SCHEMA, value) == text
    assert json_converter(schemas=False).from_connect_data("t", None, {"v": value, "s": "\x00"}) \
        == b'{"v":' + text + b',"s":"\\u0000"}'


def test_logical_dates_and_times_come_back_as_instants() -> None:
    """Kafka's JsonConverter reads Date, Time and Timestamp into java.util.Date: an instant."""
    utc = datetime.timezone.utc
    c = json_converter()
    schema = SchemaBuilder.struct().field("d", date_schema()).field("t", timestamp_schema()).build()
    doc = c.from_connect_data("t", schema, Struct(schema).put("d", datetime.date(2024, 2, 29))
                              .put("t", datetime.datetime(2024, 2, 29, 0, 0, 0, 123000, tzinfo=utc)))
    assert doc is not None and doc.endswith(b'"payload":{"d":19782,"t":1709164800123}}')
    _, value = c.to_connect_data("t", doc)
    assert value.get("d") == datetime.datetime(2024, 2, 29, tzinfo=utc)
    assert value.get("t") == datetime.datetime(2024, 2, 29, 0, 0, 0, 123000, tzinfo=utc)
    assert c.from_connect_data("t", schema, value) == doc
