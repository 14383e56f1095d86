"""The hand-written Produce and Fetch request decoders (protocol/request_decoders.py) read what
kio's generic decoder reads: on generated requests of every version they serve, the same
request field for field; on damaged ones (cut short, bytes overwritten, hostile counts) the same
outcome — the same error, or the same request."""

from __future__ import annotations

import struct
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tomyum.errors import ProtocolError
from tomyum.protocol.codec import build, decode_request, request_class
from tomyum.protocol.request_decoders import FAST_DECODERS, decode_fetch, decode_produce
from tomyum.testing.handlers import encode_request

SETTINGS = settings(max_examples=300, deadline=None)
PRODUCE_VERSIONS = range(FAST_DECODERS[0][0], FAST_DECODERS[0][1] + 1)
FETCH_VERSIONS = range(FAST_DECODERS[1][0], FAST_DECODERS[1][1] + 1)


def ints(bits: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=-(2 ** (bits - 1)), max_value=2 ** (bits - 1) - 1)


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
client_ids = st.none() | text
#: the null id (all zero) read as None, as kio reads it
topic_ids = st.none() | st.uuids() | st.just(uuid.UUID(int=0))

produce_bodies = st.fixed_dictionaries({
    "transactional_id": st.none() | text,
    "acks": ints(16),
    "timeout": st.integers(min_value=0, max_value=2**31 - 1),
    "topic_data": st.lists(st.fixed_dictionaries({
        "name": text,
        "partition_data": st.lists(st.fixed_dictionaries({
            "index": ints(32),
            "records": st.none() | st.binary(max_size=80),
        }), max_size=3),
    }), max_size=3),
})

fetch_bodies = st.fixed_dictionaries({
    "replica_id": ints(32),
    "max_wait": st.integers(min_value=0, max_value=2**31 - 1),
    "min_bytes": ints(32),
    "max_bytes": ints(32),
    "isolation_level": ints(8),
    "session_id": ints(32),
    "session_epoch": ints(32),
    "topics": st.lists(st.fixed_dictionaries({
        "topic": text,  # v4-12
        "topic_id": topic_ids,  # v13+
        "partitions": st.lists(st.fixed_dictionaries({
            "partition": ints(32),
            "current_leader_epoch": ints(32),
            "fetch_offset": ints(64),
            "last_fetched_epoch": ints(32),
            "log_start_offset": ints(64),
            "partition_max_bytes": ints(32),
        }), max_size=3),
    }), max_size=3),
    "forgotten_topics_data": st.lists(st.fixed_dictionaries({
        "topic": text,
        "topic_id": topic_ids,
        "partitions": st.lists(ints(32), max_size=3),
    }), max_size=2),
    "rack_id": text,
})


def frame(api_key: int, version: int, correlation_id: int, client_id: str | None, body: dict[str, Any]) -> bytes:
    return encode_request(api_key, version, correlation_id, client_id, build(request_class(api_key, version), body))


def plain(value: Any) -> Any:
    """A decoded fast request as the plain data :func:`build` takes."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def as_kio(api_key: int, version: int, body: Any) -> Any:
    return build(request_class(api_key, version), plain(body))


def outcome(data: bytes, fast: bool) -> tuple[str, Any]:
    try:
        request = decode_request(data, fast=fast)
    except ProtocolError as e:
        return "error", (type(e), str(e))
    body = request.body
    if not hasattr(body, "__dataclass_fields__"):  # a fast decoder's tuple
        body = as_kio(request.header.api_key, request.header.api_version, body)
    return "request", (request.header, body)


requests = (st.tuples(st.just(0), st.sampled_from(PRODUCE_VERSIONS), client_ids, produce_bodies)
            | st.tuples(st.just(1), st.sampled_from(FETCH_VERSIONS), client_ids, fetch_bodies))


@SETTINGS
@given(requests)
def test_requests_decode_as_kio_decodes_them(request: tuple[Any, ...]) -> None:
    api_key, version, client_id, body = request
    data = frame(api_key, version, 7, client_id, body)
    decoder = decode_produce if api_key == 0 else decode_fetch
    fast = decoder(data, 10 + max(struct.unpack_from(">h", data, 8)[0], 0), version)
    assert fast is not None
    assert as_kio(api_key, version, fast) == decode_request(data, fast=False).body
    assert outcome(data, True) == outcome(data, False)



@SETTINGS
@given(requests, st.data())
def test_a_request_cut_short_fails_as_the_generic_decoder_fails(request: tuple[Any, ...], data: st.DataObject) -> None:
    whole = frame(request[0], request[1], 3, request[2], request[3])
    cut = data.draw(st.integers(min_value=10, max_value=len(whole)))
    assert outcome(whole[:cut], True) == outcome(whole[:cut], False)


@SETTINGS
@given(requests, st.data())
def test_a_damaged_request_fails_or_decodes_as_the_generic_decoder_does(request: tuple[Any, ...],
                                                                        data: st.DataObject) -> None:
    damaged = bytearray(frame(request[0], request[1], 3, request[2], request[3]))
    at = data.draw(st.integers(min_value=10, max_value=len(damaged) - 1))
    patch = data.draw(st.sampled_from([b"\xff", b"\x80", b"\x00", b"\x7f\xff\xff\xff", b"\xff\xff", b"\xc3\x28"])
                      | st.binary(min_size=1, max_size=4))
    damaged[at : at + len(patch)] = patch
    assert outcome(bytes(damaged), True) == outcome(bytes(damaged), False)


def test_a_hostile_count_is_refused_as_before() -> None:
    """An array count of 2**31-1 in a small Produce: the generic decoder's error, no allocation."""
    good = frame(0, 7, 1, "c", {"transactional_id": None, "acks": 1, "timeout": 100, "topic_data": []})
    hostile = good[:-4] + struct.pack(">i", 2**31 - 1)
    assert decode_produce(hostile, 11, 7) is None
    kind, (error, _) = outcome(hostile, True)
    assert (kind, error) == ("error", ProtocolError)
    assert outcome(hostile, True) == outcome(hostile, False)


def test_tagged_fields_leave_the_request_to_the_generic_decoder() -> None:
    """Fetch v12 with a cluster id (a tagged field) is not the shape the fast decoder reads: the
    generic decoder reads it, cluster id and all."""
    body = {"replica_id": -1, "max_wait": 500, "min_bytes": 1, "max_bytes": 1024, "isolation_level": 1,
            "session_id": 0, "session_epoch": -1, "topics": [], "forgotten_topics_data": [], "rack_id": "",
            "cluster_id": "my-cluster"}
    data = frame(1, 12, 4, "c", body)
    assert decode_fetch(data, 11, 12) is None
    assert decode_request(data).body.cluster_id == "my-cluster"


def test_records_are_a_view_of_the_frame_and_timeouts_milliseconds() -> None:
    body = {"transactional_id": "tx", "acks": -1, "timeout": 30000,
            "topic_data": [{"name": "t", "partition_data": [{"index": 2, "records": b"batch"}]}]}
    request = decode_request(frame(0, 9, 5, "c", body)).body
    (topic,) = request.topic_data
    (part,) = topic.partition_data
    assert (request.transactional_id, request.acks, request.timeout) == ("tx", -1, 30000)
    assert (topic.name, part.index, bytes(part.records)) == ("t", 2, b"batch")
    assert isinstance(part.records, memoryview)


def test_a_null_where_kafka_allows_none_fails_as_before() -> None:
    """A null topic name (length -1, or 0 in a compact string) and null records: the name is not
    nullable (the generic decoder's verdict stands), the records are (None)."""
    for version, null in ((7, b"\xff\xff"), (9, b"\x00")):
        body = {"transactional_id": None, "acks": 1, "timeout": 100,
                "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": None}]}]}
        good = frame(0, version, 1, "c", body)
        name = good.index(b"t", 11) - len(null)
        assert good[name : name + len(null)] == (b"\x00\x01" if version < 9 else b"\x02")
        bad = good[:name] + null + good[name + len(null) + 1 :]
        assert outcome(bad, True) == outcome(bad, False)
        assert outcome(good, True) == outcome(good, False)
        assert decode_request(good).body.topic_data[0].partition_data[0].records is None
