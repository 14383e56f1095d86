"""tomyum.streams: Kafka Streams' DSL in Python.

::

    builder = StreamsBuilder()
    (builder.stream("text", value_serde=Serdes.string())
        .flat_map_values(str.split)
        .group_by(lambda key, word: word, key_serde=Serdes.string(), value_serde=Serdes.string())
        .count(Materialized(store_name="counts"))
        .to_stream()
        .to("word-counts", value_serde=Serdes.long()))
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_input("text", None, "hello world hello", timestamp=0)

Serdes, the topology model, KStream / KTable operators, grouped and windowed aggregations,
suppression, joins, state stores (in memory and SQLite, logged to changelog topics), the test
driver, and :class:`tomyum.streams.runtime.KafkaStreams` to run a topology against a broker
(tasks per partition spread over an application's instances). The guide is docs/streams.md.
"""

from tomyum.streams._record import Change, Headers, Record
from tomyum.streams.builder import StreamsBuilder
from tomyum.streams._plan import TopologyError
from tomyum.streams.grouped import (
    KGroupedStream,
    KGroupedTable,
    SessionWindowedKStream,
    SlidingWindowedKStream,
    TimeWindowedKStream,
)
from tomyum.streams.kstream import BranchedKStream, KStream
from tomyum.streams.ktable import KTable
from tomyum.streams.processor import Processor, ProcessorContext, StreamsConfig
from tomyum.streams.punctuation import Cancellable, PunctuationType, Punctuator
from tomyum.streams.serdes import RecordTimestampExtractor, Serde, Serdes, TimestampExtractor
from tomyum.streams.testing import TopologyTestDriver
from tomyum.streams.topology import Materialized, Topology
from tomyum.streams.windows import (
    BufferConfig,
    EmitStrategy,
    JoinWindows,
    SessionWindows,
    SlidingWindows,
    Suppressed,
    TimeWindows,
    Window,
    Windowed,
)

__all__ = [
    "BranchedKStream",
    "BufferConfig",
    "Cancellable",
    "Change",
    "EmitStrategy",
    "Headers",
    "JoinWindows",
    "KGroupedStream",
    "KGroupedTable",
    "KStream",
    "KTable",
    "Materialized",
    "Processor",
    "ProcessorContext",
    "PunctuationType",
    "Punctuator",
    "Record",
    "RecordTimestampExtractor",
    "Serde",
    "Serdes",
    "SessionWindowedKStream",
    "SessionWindows",
    "SlidingWindowedKStream",
    "SlidingWindows",
    "StreamsBuilder",
    "StreamsConfig",
    "Suppressed",
    "TimeWindowedKStream",
    "TimeWindows",
    "TimestampExtractor",
    "Topology",
    "TopologyError",
    "TopologyTestDriver",
    "Window",
    "Windowed",
]
