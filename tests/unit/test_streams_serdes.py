"""Serdes match Kafka's byte formats; None is always None; timestamp extractors decide
event time."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from tomyum.streams import (
    Record,
    Serde,
    Serdes,
    StreamsBuilder,
    StreamsConfig,
    TimeWindows,
    TopologyTestDriver,
    Window,
    Windowed,
)


@pytest.mark.parametrize(
    ("serde", "value", "encoded"),
    [
        (Serdes.bytes(), b"\x00\xff", b"\x00\xff"),
        (Serdes.string(), "héllo", "héllo".encode()),
        (Serdes.integer(), -2, b"\xff\xff\xff\xfe"),
        (Serdes.long(), 2**40, struct.pack(">q", 2**40)),
        (Serdes.float(), 1.5, struct.pack(">f", 1.5)),
        (Serdes.double(), -0.1, struct.pack(">d", -0.1)),
        (Serdes.json(), {"b": [1, 2], "a": None}, b'{"a":null,"b":[1,2]}'),
    ],
)
def test_round_trip_in_kafka_format(serde: Serde[Any], value: Any, encoded: bytes) -> None:
    assert serde.serialize(value) == encoded
    assert serde.deserialize(encoded) == value
    assert serde.serialize(None) is None
    assert serde.deserialize(None) is None


def test_wrong_width_or_type_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 8 bytes"):
        Serdes.long().deserialize(b"\x00\x01")
    with pytest.raises(TypeError, match="give this stream or topic a serde"):
        Serdes.bytes().serialize(5)  # type: ignore[arg-type]


def test_user_defined_serde_and_timestamp_extractor() -> None:
    point = Serde(lambda p: f"{p[0]},{p[1]}".encode(), lambda b: tuple(int(x) for x in b.split(b",")))

    def event_time(record: Record[Any, Any], partition_time: int) -> int:
        return int(record.value[0]) * 1000

    builder = StreamsBuilder()
    builder.stream("points", key_serde=Serdes.string(), value_serde=point, timestamp_extractor=event_time).to(
        "out"
    )
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_input("points", "p", (7, 9), timestamp=1)
        (record,) = driver.read_output("out")
    assert (record.key, record.value, record.timestamp) == ("p", (7, 9), 7000)


def test_defaults_come_from_the_config() -> None:
    builder = StreamsBuilder()
    builder.stream("in").map_values(lambda v: v * 2).to("out")
    config = StreamsConfig(default_key_serde=Serdes.string(), default_value_serde=Serdes.integer())
    with TopologyTestDriver(builder.build(), config) as driver:
        driver.pipe_input("in", "k", 21, timestamp=0)
        assert [(r.key, r.value) for r in driver.read_output("out")] == [("k", 42)]
        driver.pipe_input("in", "k", 1, timestamp=0)
        assert [r.value for r in driver.read_output("out", value_serde=Serdes.bytes())] == [b"\x00\x00\x00\x02"]


def test_negative_extracted_timestamp_is_dropped_and_counted() -> None:
    builder = StreamsBuilder()
    builder.stream("in", timestamp_extractor=lambda record, partition_time: -1).to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_input("in", b"k", b"v", timestamp=5)
        assert driver.read_output("out") == []
        assert driver.metrics()["dropped-records-total"] == 1


def test_windowed_serdes_in_kafka_layout() -> None:
    time_windowed = Serdes.time_windowed(Serdes.string(), 10)
    key = Windowed("k", Window(20, 30))
    assert time_windowed.serialize(key) == b"k" + struct.pack(">q", 20)
    assert time_windowed.deserialize(b"k" + struct.pack(">q", 20)) == key
    session = Serdes.session_windowed(Serdes.string())
    key = Windowed("k", Window(5, 9))
    assert session.serialize(key) == b"k" + struct.pack(">q", 9) + struct.pack(">q", 5)
    assert session.deserialize(session.serialize(key)) == key


def test_windowed_results_to_a_topic() -> None:
    builder = StreamsBuilder()
    builder.stream("in", key_serde=Serdes.string()).group_by_key().windowed_by(
        TimeWindows.of_size_with_no_grace(10)
    ).count().to_stream().to("out", key_serde=Serdes.time_windowed(Serdes.string(), 10), value_serde=Serdes.long())
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_input("in", "k", b"v", timestamp=12)
        (record,) = driver.read_output("out")
        assert (record.key, record.value) == (Windowed("k", Window(10, 20)), 1)


def test_a_record_the_serdes_cannot_read_fails_by_default_and_is_skipped_on_request() -> None:
    from tomyum.streams import Record, StreamsBuilder, StreamsConfig, TopologyTestDriver

    b = StreamsBuilder()
    b.stream("in", value_serde=Serdes.json()).map_values(lambda v: v["n"] * 2).to("out", value_serde=Serdes.long())
    bad = Record(key=None, value=b"{not json", timestamp=0, topic="in", partition=0, offset=7)
    with TopologyTestDriver(b.build(), StreamsConfig()) as driver, \
            pytest.raises(ValueError, match=r"cannot deserialize the record at in\[0\] offset 7.*log_and_continue"):
        driver.task.process(bad)
    with TopologyTestDriver(b.build(), StreamsConfig(deserialization_exception_handler="log_and_continue")) as driver:
        driver.task.process(bad)
        driver.pipe_input("in", None, {"n": 21}, timestamp=1)
        assert [r.value for r in driver.read_output("out")] == [42]
        assert driver.metrics() == {"dropped-records-total": 1}
    with pytest.raises(ValueError, match="log_and_fail or log_and_continue"):
        StreamsConfig(deserialization_exception_handler="ignore")  # type: ignore[arg-type]
