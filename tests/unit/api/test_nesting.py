"""JSON nesting depth: the pre-scan agrees with the real depth, and deep documents are
refused as 400 InvalidRequestException before ``json.loads`` can recurse."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.api import ApiError, load_catalog
from bastion.api._binding import bind_input
from bastion.api._nesting import MAX_JSON_DEPTH, loads_bounded, nesting_exceeds

CATALOG = load_catalog()
DEEP = 100_000


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(item) for item in value), default=0)
    return 0


# Strings full of brackets, quotes and backslashes: the scan must skip them all.
tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\ab\u00e9\u2028'), max_size=8)
documents = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner,
                                                                max_size=3),
    max_leaves=40)


@given(documents, st.integers(min_value=0, max_value=12), st.booleans())
def test_the_scan_measures_the_real_depth(document: Any, limit: int, ascii_only: bool) -> None:
    text = json.dumps(document, ensure_ascii=ascii_only)
    assert nesting_exceeds(text, limit) == (depth_of(document) > limit)
    assert nesting_exceeds(text.encode("utf-8"), limit) == (depth_of(document) > limit)


@pytest.mark.parametrize(("text", "depth"), [
    ("1", 0), ('"[[[["', 0), ("{}", 1), ("[1]", 1), ('{"a": [1]}', 2),
    ('["\\"[[[", [[]]]', 3), ("[[]][[]]", 2), ("]]]][[", 2), ("[[[[", 4),
    ('["unterminated [[[', 4),
], ids=["scalar", "brackets-in-string", "object", "array", "object-array",
        "escaped-quote", "siblings", "excess-closers", "unclosed", "unterminated-string"])
def test_depth_examples(text: str, depth: int) -> None:
    assert nesting_exceeds(text, depth) is False
    if depth > 0:
        assert nesting_exceeds(text, depth - 1) is True


def test_negative_limit_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        nesting_exceeds("[]", -1)


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_a_100000_deep_body_is_invalid_request(opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    body = ('{"attributePayload":' + opener * DEEP + "1" + closer * DEEP + "}").encode()
    operation = CATALOG.services["iot"].operation("CreateThing")
    with pytest.raises(ApiError) as caught:
        bind_input(operation, {"thingName": "t"}, {}, {}.get, body)
    assert (caught.value.http_status, caught.value.aws_error_type) == (
        400, "InvalidRequestException")
    assert f"at most {MAX_JSON_DEPTH} levels" in caught.value.message


def test_the_limit_itself_is_accepted() -> None:
    inner = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    assert loads_bounded('{"a":' + inner + "}") == {"a": json.loads(inner)}
    with pytest.raises(ApiError):
        loads_bounded('{"a":[' + inner + "]}")


def test_a_deep_jsonvalue_header_is_refused_not_a_crash() -> None:
    # iot-data Publish carries userProperties as base64 JSON in a header.
    deep = base64.b64encode(b"[" * 12_000 + b"]" * 12_000).decode()
    operation = CATALOG.services["iot-data"].operation("Publish")
    headers = {"x-amz-mqtt5-user-properties": deep}
    with pytest.raises(ApiError) as caught:
        bind_input(operation, {"topic": "a/b"}, {}, headers.get, b"")
    assert caught.value.aws_error_type == "InvalidRequestException"
