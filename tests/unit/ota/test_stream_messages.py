"""The streams topics' messages: AWS's short keys in JSON and CBOR, the bounds of a get
request with AWS's error codes, and the block plan (a count or a bitmap from an offset,
at most 128 KB, never past the end of the file)."""

from __future__ import annotations

import base64
import json
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.ota import (
    GetStreamRequest,
    StreamErrorCode,
    StreamRequestRefused,
    data_message,
    decode_request,
    description_message,
    encode,
    parse_get_request,
    plan_blocks,
    rejection_message,
)

# AWS's own example: blocks 20, 21, 24 and 43 of 256 bytes, offset 20, bitmap 0x130080.
AWS_BITMAP_EXAMPLE = {"c": "1", "s": 1, "l": 256, "f": 1, "o": 20, "n": 32, "b": "0x130080"}


def refused(data: dict[str, Any]) -> StreamRequestRefused:
    with pytest.raises(StreamRequestRefused) as caught:
        parse_get_request(data)
    return caught.value


def test_aws_bitmap_example_asks_for_its_four_blocks() -> None:
    request = parse_get_request(AWS_BITMAP_EXAMPLE)
    assert request == GetStreamRequest(file_id=1, block_size=256, offset=20, count=32,
                                       bitmap=bytes.fromhex("130080"), stream_version=1,
                                       client_token="1")
    assert plan_blocks(request, 100 * 256) == [20, 21, 24, 43]
    # The same bitmap as CBOR bytes (what FreeRTOS's OTA agent sends).
    raw = dict(AWS_BITMAP_EXAMPLE, b=bytes.fromhex("130080"))
    assert plan_blocks(parse_get_request(decode_request(cbor2.dumps(raw), "cbor")),
                       100 * 256) == [20, 21, 24, 43]


@pytest.mark.parametrize(("data", "code"), [
    ({"f": 0}, StreamErrorCode.BLOCK_SIZE_OUT_OF_BOUNDS),
    ({"f": 0, "l": 255}, StreamErrorCode.BLOCK_SIZE_OUT_OF_BOUNDS),
    ({"f": 0, "l": 131_073}, StreamErrorCode.BLOCK_SIZE_OUT_OF_BOUNDS),
    ({"f": 0, "l": 256, "o": -1}, StreamErrorCode.OFFSET_OUT_OF_BOUNDS),
    ({"f": 0, "l": 256, "o": 98_305}, StreamErrorCode.OFFSET_OUT_OF_BOUNDS),
    ({"f": 0, "l": 256, "n": 98_305}, StreamErrorCode.BLOCK_COUNT_LIMIT_EXCEEDED),
    ({"f": 0, "l": 256, "b": "ff" * 12_288}, StreamErrorCode.BLOCK_BITMAP_LIMIT_EXCEEDED),
    ({"f": 0, "l": 256, "b": "xyz"}, StreamErrorCode.INVALID_REQUEST),
    ({"f": 0, "l": 256, "b": 5}, StreamErrorCode.INVALID_REQUEST),
    ({"l": 256}, StreamErrorCode.INVALID_REQUEST),
    ({"f": 256, "l": 256}, StreamErrorCode.INVALID_REQUEST),
    ({"f": "0", "l": 256}, StreamErrorCode.INVALID_REQUEST),
    ({"f": True, "l": 256}, StreamErrorCode.INVALID_REQUEST),
    ({"f": 0, "l": 256, "s": "1"}, StreamErrorCode.INVALID_REQUEST),
], ids=["no-size", "small-block", "large-block", "negative-offset", "large-offset",
        "many-blocks", "large-bitmap", "bitmap-not-hex", "bitmap-number", "no-file",
        "file-id-256", "file-id-text", "file-id-bool", "version-text"])
def test_bad_get_requests_get_aws_codes(data: dict[str, Any], code: StreamErrorCode) -> None:
    error = refused(dict(data, c="tok"))
    assert error.code is code
    assert rejection_message(error) == {"o": code.value, "m": error.message, "c": "tok"}


def test_a_long_client_token_is_refused_and_not_echoed() -> None:
    error = refused({"c": "é" * 33, "f": 0, "l": 256})  # 66 bytes
    assert error.code is StreamErrorCode.INVALID_REQUEST
    assert "c" not in rejection_message(error)
    assert parse_get_request({"c": "a" * 64, "f": 0, "l": 256}).client_token == "a" * 64


@pytest.mark.parametrize(("payload", "payload_format", "code"), [
    (b"{nope", "json", StreamErrorCode.INVALID_JSON),
    (b"\xff\xfe", "json", StreamErrorCode.INVALID_JSON),
    (b"\xbf", "cbor", StreamErrorCode.INVALID_CBOR),
    (b"[1]", "json", StreamErrorCode.INVALID_REQUEST),
    (cbor2.dumps([1]), "cbor", StreamErrorCode.INVALID_REQUEST),
], ids=["json", "json-utf8", "cbor", "json-list", "cbor-list"])
def test_undecodable_requests(payload: bytes, payload_format: str,
                              code: StreamErrorCode) -> None:
    with pytest.raises(StreamRequestRefused) as caught:
        decode_request(payload, payload_format)
    assert caught.value.code is code


def test_an_empty_payload_is_an_empty_request() -> None:
    assert decode_request(b"", "json") == {} == decode_request(b"  ", "cbor")


def test_a_count_stops_at_128_kb_and_at_the_end_of_the_file() -> None:
    request = GetStreamRequest(file_id=0, block_size=4096, offset=2, count=100)
    assert plan_blocks(request, 1_000_000) == list(range(2, 2 + 32))  # 32 × 4 KB = 128 KB
    assert plan_blocks(request, 5 * 4096 + 1) == [2, 3, 4, 5]
    # No count: 131072 / l blocks.
    assert plan_blocks(GetStreamRequest(file_id=0, block_size=1024), 10**7) == list(range(128))
    # An empty file has one (empty) block.
    assert plan_blocks(GetStreamRequest(file_id=0, block_size=256), 0) == [0]


def test_an_offset_past_the_file_and_an_empty_bitmap_are_refused() -> None:
    with pytest.raises(StreamRequestRefused) as caught:
        plan_blocks(GetStreamRequest(file_id=0, block_size=256, offset=4), 1024)
    assert caught.value.code is StreamErrorCode.OFFSET_OUT_OF_BOUNDS
    with pytest.raises(StreamRequestRefused) as caught:
        plan_blocks(GetStreamRequest(file_id=0, block_size=256, bitmap=b"\x00\xf0"), 1024)
    assert caught.value.code is StreamErrorCode.RESOURCE_NOT_FOUND


@given(size=st.integers(0, 600_000), block_size=st.integers(256, 131_072),
       offset=st.integers(0, 3000), bitmap=st.binary(max_size=64) | st.none(),
       count=st.integers(1, 98_304) | st.none())
def test_the_plan_is_within_the_file_within_128_kb_and_as_asked(
        size: int, block_size: int, offset: int, bitmap: bytes | None,
        count: int | None) -> None:
    request = GetStreamRequest(file_id=0, block_size=block_size, offset=offset, count=count,
                               bitmap=bitmap)
    blocks_in_file = max(1, -(-size // block_size))
    try:
        planned = plan_blocks(request, size)
    except StreamRequestRefused as error:
        assert error.code in (StreamErrorCode.OFFSET_OUT_OF_BOUNDS,
                              StreamErrorCode.RESOURCE_NOT_FOUND)
        wanted = [] if bitmap is None else [
            offset + index for index in range(len(bitmap) * 8)
            if bitmap[index // 8] & (1 << index % 8)]
        assert offset >= blocks_in_file or not [b for b in wanted if b < blocks_in_file]
        return
    assert planned, "a plan that is not refused sends something"
    assert planned == sorted(set(planned))
    assert all(offset <= block < blocks_in_file for block in planned)
    assert len(planned) * block_size <= max(131_072, block_size)
    assert count is None or len(planned) <= count
    if bitmap is not None:
        assert all(bitmap[(b - offset) // 8] & (1 << (b - offset) % 8) for b in planned)
    else:
        assert planned[0] == offset


def test_answers_use_aws_short_keys_in_both_formats() -> None:
    block = data_message(file_id=3, block_id=7, data=b"\x00\x01binary", client_token="t")
    as_json = json.loads(encode(block, "json"))
    assert as_json == {"c": "t", "f": 3, "l": 8, "i": 7,
                       "p": base64.b64encode(b"\x00\x01binary").decode()}
    assert cbor2.loads(encode(block, "cbor")) == {"c": "t", "f": 3, "l": 8, "i": 7,
                                                  "p": b"\x00\x01binary"}
    described = description_message(version=2, description="fw", files=[(0, 10), (4, 99)],
                                     client_token=None)
    assert json.loads(encode(described, "json")) == {
        "s": 2, "d": "fw", "r": [{"f": 0, "z": 10}, {"f": 4, "z": 99}]}
    with pytest.raises(ValueError):
        encode(described, "xml")
