"""tomyum.streams: Kafka Streams' DSL in Python.

::

    builder = StreamsBuilder()
    (builder.stream("text", value_serde=Serdes.string())
        .flat_map_values(str.split)
        .group_by(lambda key, word: word, key_serde=Serdes.string())
        .count(Materialized(store_name="counts"))
        .to_stream()
        .to("word-counts", value_serde=Serdes.long()))
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_input("text", None, "hello world hello", timestamp=0)

This release is the foundation: serdes, the topology model, KStream / KTable operators,
grouped and windowed aggregations, suppression, state stores (in memory and SQLite, with
changelog records) and the test driver. A runtime against a broker comes next (issue 10).
"""

from tomyum.streams._record import Change, Headers, Record
from tomyum.streams.builder import StreamsBuilder
from tomyum.streams.grouped import KGroupedStream, SessionWindowedKStream, SlidingWindowedKStream, TimeWindowedKStream
from tomyum.streams.kstream import BranchedKStream, KStream
from tomyum.streams.ktable import KTable
from tomyum.streams.processor import Processor, ProcessorContext, StreamsConfig
from tomyum.streams.punctuation import Cancellable, PunctuationType, Punctuator
from tomyum.streams.serdes import RecordTimestampExtractor, Serde, Serdes, TimestampExtractor
from tomyum.streams.testing import TopologyTestDriver
from tomyum.streams.topology import Materialized, Topology
from tomyum.streams.windows import SessionWindows, SlidingWindows, Suppressed, TimeWindows, Window, Windowed

__all__ = [
    "BranchedKStream",
    "Cancellable",
    "Change",
    "Headers",
    "KGroupedStream",
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
    "TopologyTestDriver",
    "Window",
    "Windowed",
]
