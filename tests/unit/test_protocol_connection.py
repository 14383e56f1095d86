"""The sans-IO connection (protocol/connection.py), with bytes alone: framing however the bytes
are split, the size limit before the body is buffered, responses in request order whatever
order they complete in, the KIP-511 ApiVersions fallback, and a peer that closes mid-frame."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tomyum.errors import ErrorCode
from tomyum.protocol.codec import API_VERSIONS_KEY
from tomyum.protocol.connection import (
    NEED_DATA,
    Connection,
    ConnectionClosed,
    LocalProtocolError,
    RawResponse,
    RemoteProtocolError,
    RequestReceived,
)
from tomyum.protocol.primitives import read_uvarint

METADATA_KEY = 3
VERSIONS = {API_VERSIONS_KEY: (0, 3), METADATA_KEY: (0, 12)}
SETTINGS = settings(max_examples=100, deadline=None)


def frame(api_key: int, version: int, correlation_id: int, body: bytes = b"", client_id: bytes = b"test") -> bytes:
    """A request frame with a v1 (classic) request header."""
    payload = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id + body
    return struct.pack(">i", len(payload)) + payload


def api_versions_v0(correlation_id: int) -> bytes:
    return frame(API_VERSIONS_KEY, 0, correlation_id)


def metadata_v1(correlation_id: int) -> bytes:
    return frame(METADATA_KEY, 1, correlation_id, struct.pack(">i", -1))  # null topics: all of them


def some_frames(correlation_ids: list[int]) -> bytes:
    return b"".join((api_versions_v0 if i % 2 else metadata_v1)(i) for i in correlation_ids)


def connection(max_request_bytes: int = 1 << 20) -> Connection:
    return Connection(max_request_bytes=max_request_bytes, api_versions=VERSIONS)


def drain(conn: Connection) -> list[RequestReceived]:
    out = []
    while isinstance(request := conn.next_request(), RequestReceived):
        out.append(request)
    assert request is NEED_DATA
    return out


def summary(requests: list[RequestReceived]) -> list[tuple[int, int, int, str | None, int]]:
    return [(r.header.api_key, r.header.api_version, r.header.correlation_id, r.header.client_id, r.size)
            for r in requests]


def read_frames(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        (size,) = struct.unpack_from(">i", data, pos)
        out.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    assert pos == len(data)
    return out


def correlation_ids(buffers: list[Any]) -> list[int]:
    return [struct.unpack_from(">i", f)[0] for f in read_frames(b"".join(bytes(b) for b in buffers))]


def read_whole(data: bytes) -> list[RequestReceived]:
    conn = connection()
    conn.receive_data(data)
    return drain(conn)


STREAM = some_frames(list(range(6)))
EXPECTED = summary(read_whole(STREAM))


def test_pipelined_frames_in_one_chunk_are_read_in_order() -> None:
    assert [r[2] for r in EXPECTED] == list(range(6))
    assert {r[0] for r in EXPECTED} == {API_VERSIONS_KEY, METADATA_KEY}


def test_a_frame_split_at_every_byte_boundary_reads_the_same() -> None:
    for cut in range(1, len(STREAM)):
        conn = connection()
        conn.receive_data(STREAM[:cut])
        got = drain(conn)
        conn.receive_data(STREAM[cut:])
        assert summary(got + drain(conn)) == EXPECTED


def test_a_stream_fed_one_byte_at_a_time_reads_the_same() -> None:
    conn, got = connection(), []
    for i in range(len(STREAM)):
        conn.receive_data(STREAM[i : i + 1])
        got += drain(conn)
    assert summary(got) == EXPECTED


@SETTINGS
@given(st.lists(st.integers(1, 64), min_size=1, max_size=40))
def test_random_chunks_read_the_same(sizes: list[int]) -> None:
    conn, got, pos = connection(), [], 0
    while pos < len(STREAM):
        size = sizes[len(got) % len(sizes)]
        conn.receive_data(memoryview(STREAM)[pos : pos + size])
        pos += size
        got += drain(conn)
    assert summary(got) == EXPECTED


def test_reading_through_the_buffered_protocol_calls_reads_the_same() -> None:
    conn, pos = connection(), 0
    while pos < len(STREAM):
        with conn.get_buffer(-1) as into:
            n = min(len(into), 7, len(STREAM) - pos)
            into[:n] = STREAM[pos : pos + n]
        conn.buffer_updated(n)
        pos += n
    assert summary(drain(conn)) == EXPECTED


def test_an_oversized_frame_is_refused_from_its_length_before_its_body_is_buffered() -> None:
    conn = connection(max_request_bytes=100)
    conn.receive_data(metadata_v1(1))
    with pytest.raises(RemoteProtocolError, match=r"request of 101 bytes exceeds socket.request.max.bytes \(100\)"):
        conn.receive_data(struct.pack(">i", 101))  # the length alone, no body
    with pytest.raises(RemoteProtocolError):  # the connection stays failed
        conn.next_request()


def test_a_negative_frame_length_is_refused() -> None:
    conn = connection()
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(struct.pack(">i", -1))


def test_a_frame_of_exactly_the_limit_is_read() -> None:
    data = metadata_v1(1)
    conn = connection(max_request_bytes=len(data) - 4)
    conn.receive_data(data)
    assert len(drain(conn)) == 1


def test_a_big_frame_grows_the_buffer_only_as_its_bytes_arrive() -> None:
    conn = connection(max_request_bytes=100 << 20)
    conn.receive_data(struct.pack(">i", 64 << 20) + b"\0" * 10)
    assert len(conn.get_buffer()) < 1 << 20


def test_responses_given_out_of_order_leave_in_request_order() -> None:
    conn = connection()
    conn.receive_data(some_frames([10, 11, 12, 13]))
    requests = drain(conn)
    assert conn.pending_requests == 4
    raw = RawResponse(b"")
    assert conn.send_response(requests[2], raw) == []
    assert conn.send_response(requests[1], None) == []  # acks=0: no response, but its turn passes
    assert conn.send_response(requests[3], raw) == []
    assert conn.pending_requests == 4
    out = conn.send_response(requests[0], raw)
    assert correlation_ids(out) == [10, 12, 13]
    assert conn.pending_requests == 0


@SETTINGS
@given(st.permutations(list(range(8))))
def test_any_completion_order_leaves_in_request_order(order: list[int]) -> None:
    conn = connection()
    conn.receive_data(some_frames([100 + i for i in range(8)]))
    requests = drain(conn)
    out: list[Any] = []
    for i in order:
        out += conn.send_response(requests[i], RawResponse([b"x" * i]))
    assert correlation_ids(out) == [100 + i for i in range(8)]


def test_duplicate_correlation_ids_are_answered_each_in_its_turn() -> None:
    conn = connection()
    conn.receive_data(some_frames([7, 7]))
    first, second = drain(conn)
    assert conn.send_response(second, RawResponse(b"2")) == []
    out = b"".join(conn.send_response(first, RawResponse(b"1")))
    assert [f[4:] for f in read_frames(out)] == [b"1", b"2"]


def test_answering_a_request_twice_is_a_local_error() -> None:
    conn = connection()
    conn.receive_data(metadata_v1(1))
    (request,) = drain(conn)
    conn.send_response(request, None)
    with pytest.raises(LocalProtocolError):
        conn.send_response(request, None)


def test_a_dict_response_is_built_for_the_request_version() -> None:
    conn = connection()
    conn.receive_data(api_versions_v0(5))
    (request,) = drain(conn)
    out = conn.send_response(request, {"error_code": 0, "api_keys": [], "throttle_time": 0})
    assert correlation_ids(out) == [5]


def test_kip_511_a_newer_api_versions_is_answered_with_v0_and_the_supported_ranges() -> None:
    conn = connection()
    newer = frame(API_VERSIONS_KEY, 99, 42, b"garbage the broker cannot read")
    conn.receive_data(metadata_v1(41) + newer + metadata_v1(43))
    first = conn.next_request()
    assert isinstance(first, RequestReceived)
    third = conn.next_request()  # the fallback is answered by the connection itself
    assert isinstance(third, RequestReceived) and third.header.correlation_id == 43
    assert conn.data_to_send() == []  # it waits for the request before it
    assert conn.send_response(third, RawResponse(b"")) == []
    out = conn.send_response(first, RawResponse(b""))
    assert correlation_ids(out) == [41, 42, 43]
    fallback = read_frames(b"".join(out))[1]
    (error_code, count) = struct.unpack_from(">hi", fallback, 4)  # v0 header: correlation id only
    assert error_code == ErrorCode.unsupported_version
    ranges = [struct.unpack_from(">hhh", fallback, 10 + 6 * i) for i in range(count)]
    assert ranges == [(key, low, high) for key, (low, high) in sorted(VERSIONS.items())]


def test_kip_511_fallback_alone_is_ready_at_once() -> None:
    conn = connection()
    conn.receive_data(frame(API_VERSIONS_KEY, 4, 9))
    assert conn.next_request() is NEED_DATA
    assert correlation_ids(conn.data_to_send()) == [9]


@pytest.mark.parametrize(("data", "message"), [
    (frame(METADATA_KEY, 99, 1), "unsupported version 99 of API key 3"),
    (frame(1234, 0, 1), "unknown API key 1234"),
    (struct.pack(">i", 6) + b"\0" * 6, "shorter than a request header"),
    (frame(METADATA_KEY, 1, 1, b"\x7f\xff\xff\xff"), "malformed"),
])
def test_requests_the_broker_cannot_read_are_remote_errors(data: bytes, message: str) -> None:
    conn = connection()
    conn.receive_data(metadata_v1(0) + data)
    assert isinstance(conn.next_request(), RequestReceived)  # the one before is served
    with pytest.raises(RemoteProtocolError, match=message):
        conn.next_request()


def test_a_peer_closing_between_frames_is_a_clean_close() -> None:
    conn = connection()
    conn.receive_data(metadata_v1(1))
    conn.receive_data(b"")
    assert isinstance(conn.next_request(), RequestReceived)  # what came whole is still read
    assert conn.next_request() == ConnectionClosed()


@SETTINGS
@given(st.integers(1, len(metadata_v1(2)) - 1))
def test_a_partial_frame_then_eof_is_a_remote_error(cut: int) -> None:
    conn = connection()
    conn.receive_data(metadata_v1(1) + metadata_v1(2)[:cut])
    conn.receive_data(b"")
    assert isinstance(conn.next_request(), RequestReceived)
    with pytest.raises(RemoteProtocolError, match=f"closed the connection {cut} bytes into a request frame"):
        conn.next_request()


def test_abandon_hands_back_held_buffers_and_forgets_unread_frames() -> None:
    conn = connection()
    conn.receive_data(some_frames([1, 2, 3]))
    first, second = conn.next_request(), conn.next_request()
    assert isinstance(first, RequestReceived) and isinstance(second, RequestReceived)
    held = [b"slice"]
    conn.send_response(second, RawResponse(held))
    assert b"slice" in conn.abandon()
    assert conn.next_request() is NEED_DATA


def test_the_fallback_uses_compact_encodings_nowhere() -> None:
    # ApiVersions responses keep header v0 at every version (KIP-511): no tagged-field byte
    conn = connection()
    conn.receive_data(frame(API_VERSIONS_KEY, 3, 77, b"\x00\x01\x01\x00"))  # header tags, name, version, tags
    request = conn.next_request()
    assert isinstance(request, RequestReceived)
    (out,) = read_frames(b"".join(conn.send_response(request, {"error_code": 0, "api_keys": [], "throttle_time": 0})))
    assert struct.unpack_from(">ih", out) == (77, 0)
    assert read_uvarint(out, 6, len(out)) == (1, 7)  # compact array of 0 keys, right after


def test_strict_response_building_refuses_a_key_no_version_has() -> None:
    conn = connection()
    conn.receive_data(api_versions_v0(5))
    (request,) = drain(conn)
    with pytest.raises(LocalProtocolError, match=r"ApiVersionsResponse.throttle_time_ms: no version"):
        conn.send_response(request, {"error_code": 0, "api_keys": [], "throttle_time_ms": 0})


def test_strict_response_building_checks_nested_entities_and_allows_other_versions_fields() -> None:
    from tomyum.protocol.codec import build_response

    # throttle_time is not in v0 but is in later versions: dropped, not refused
    build_response(API_VERSIONS_KEY, 0, {"error_code": 0, "throttle_time": 0,
                                         "api_keys": [{"api_key": 0, "min_version": 0, "max_version": 1}]})
    with pytest.raises(TypeError, match=r"api_keys\[0\].max: no version"):
        build_response(API_VERSIONS_KEY, 0, {"error_code": 0, "api_keys": [{"api_key": 0, "max": 1}]})


def test_a_hand_encoded_response_answers_a_longer_request_quota_throttle_where_it_says() -> None:
    """Metadata is encoded by hand: the server writes a request-quota throttle (KIP-124) into
    its throttle_time_ms field when that is longer than the one it holds, and nowhere else."""
    body = struct.pack(">i", 0) + b"rest of the body"
    assert RawResponse(body, throttle_at=0).with_throttle(250).body == struct.pack(">i", 250) + b"rest of the body"
    longer = RawResponse(struct.pack(">i", 900) + b"x", throttle_at=0)
    assert longer.with_throttle(250) is longer
    unplaced = RawResponse(body)
    assert unplaced.with_throttle(250) is unplaced
    listed = RawResponse([body], throttle_at=0)
    assert listed.with_throttle(250) is listed
