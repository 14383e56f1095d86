"""The handler test harness itself: it reads responses as strictly as a client does."""

from __future__ import annotations

import pytest

from tomyum.broker.dispatch import RawResponse
from tomyum.errors import UnsupportedVersion
from tomyum.testing.handlers import BlockingHarness, build_request, decode_response, encode_result

API_VERSIONS, HEARTBEAT = 18, 12


def test_fields_a_request_dict_leaves_out_take_kafkas_zero_values() -> None:
    request = build_request(HEARTBEAT, 4, {"group_id": "g"})
    assert (request.group_id, request.generation_id, request.member_id, request.group_instance_id) == ("g", 0, "", None)


def test_a_response_frame_with_bytes_after_its_body_is_refused() -> None:
    frame = encode_result(HEARTBEAT, 4, 7, {"throttle_time": 0, "error_code": 0})
    assert decode_response(HEARTBEAT, 4, frame, 7).error_code == 0
    padded = encode_result(HEARTBEAT, 4, 7, RawResponse(frame[9:] + b"\0"))
    with pytest.raises(AssertionError, match="ends at byte"):
        decode_response(HEARTBEAT, 4, padded, 7)


def test_a_response_with_another_correlation_id_is_refused() -> None:
    frame = encode_result(HEARTBEAT, 4, 7, {"throttle_time": 0, "error_code": 0})
    with pytest.raises(AssertionError, match="correlation id"):
        decode_response(HEARTBEAT, 4, frame, 8)


def test_a_version_the_handler_does_not_register_is_unsupported(kafka: BlockingHarness) -> None:
    with pytest.raises(UnsupportedVersion):
        kafka.call(API_VERSIONS, 5, {})
