"""Reading shadow requests: AWS's checks, codes and messages; names; topics."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.shadow import (
    MAX_STATE_BYTES,
    InvalidShadowRequestError,
    ShadowError,
    ShadowOperation,
    ShadowTooLargeError,
    UnsupportedEncodingError,
    check_shadow_name,
    check_thing_name,
    parse_request_topic,
    parse_update_request,
    read_client_token,
    shadow_topic_prefix,
)


def nested(levels: int) -> dict[str, Any]:
    """An object ``levels`` deep, counting itself: nested(1) == {"k": 1}."""
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    return value


TOKEN = "tok-1"
REFUSALS = [
    pytest.param(b"{not json", 400, "Invalid JSON", None, id="not-json"),
    pytest.param(b"[1, 2]", 400, "Invalid JSON", None, id="not-an-object"),
    pytest.param(b'{"state": {"desired": {"a": NaN}}}', 400, "Invalid JSON", None, id="nan"),
    pytest.param(b'{"state": {"desired": {"a": 1e999}}}', 400, "Invalid JSON", None,
                 id="infinite-number"),
    pytest.param(b"\xff\xfe{}", 415,
                 "Unsupported documented encoding; supported encoding is UTF-8", None,
                 id="not-utf8"),
    pytest.param(json.dumps({"clientToken": "x" * 65, "state": {}}).encode(), 400,
                 "Invalid clientToken", None, id="token-too-long"),
    pytest.param(json.dumps({"clientToken": "é" * 33, "state": {}}).encode(), 400,
                 "Invalid clientToken", None, id="token-over-64-bytes"),
    pytest.param(json.dumps({"clientToken": 5, "state": {}}).encode(), 400,
                 "Invalid clientToken", None, id="token-not-string"),
    pytest.param(json.dumps({"clientToken": TOKEN}).encode(), 400,
                 "Missing required node: state", TOKEN, id="no-state"),
    pytest.param(json.dumps({"clientToken": TOKEN, "state": [1]}).encode(), 400,
                 "State node must be an object", TOKEN, id="state-not-object"),
    pytest.param(json.dumps({"clientToken": TOKEN, "state": {"delta": {}}}).encode(), 400,
                 "State contains an invalid node: 'delta'", TOKEN, id="invalid-node"),
    pytest.param(json.dumps({"clientToken": TOKEN, "state": {"desired": 3}}).encode(), 400,
                 "Desired node must be an object", TOKEN, id="desired-not-object"),
    pytest.param(json.dumps({"clientToken": TOKEN, "state": {"reported": []}}).encode(), 400,
                 "Reported node must be an object", TOKEN, id="reported-not-object"),
    pytest.param(json.dumps({"clientToken": TOKEN, "state": {}, "version": "1"}).encode(),
                 400, "Invalid version", TOKEN, id="version-string"),
    pytest.param(json.dumps({"clientToken": TOKEN, "state": {}, "version": -1}).encode(),
                 400, "Invalid version", TOKEN, id="version-negative"),
    pytest.param(json.dumps({"clientToken": TOKEN, "state": {}, "version": True}).encode(),
                 400, "Invalid version", TOKEN, id="version-bool"),
    pytest.param(json.dumps({"clientToken": TOKEN, "state": {}, "version": 1.5}).encode(),
                 400, "Invalid version", TOKEN, id="version-float"),
    pytest.param(json.dumps({"clientToken": TOKEN,
                             "state": {"desired": nested(7)}}).encode(), 400,
                 "JSON contains too many levels of nesting; maximum is 6", TOKEN,
                 id="seven-levels"),
    pytest.param(json.dumps({"state": {"reported": {"a": [[[[[[1]]]]]]}}}).encode(), 400,
                 "JSON contains too many levels of nesting; maximum is 6", None,
                 id="arrays-count-as-levels"),
    pytest.param(b'{"state": {"reported": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}}", 400,
                 "JSON contains too many levels of nesting; maximum is 6", None,
                 id="deeper-than-the-parser"),
    pytest.param(json.dumps({"clientToken": TOKEN,
                             "state": {"desired": {"a": [1, None]}}}).encode(), 400,
                 "Invalid JSON: arrays cannot contain null values", TOKEN, id="null-in-array"),
    pytest.param(json.dumps({"clientToken": TOKEN, "state": {
        "desired": {"a": "x" * MAX_STATE_BYTES}}}).encode(), 413,
                 "The payload exceeds the maximum size allowed", TOKEN, id="state-too-large"),
    pytest.param(b" " * (128 * 1024 + 1), 413,
                 "The payload exceeds the maximum size allowed", None, id="payload-too-large"),
]


@pytest.mark.parametrize(("payload", "code", "message", "token"), REFUSALS)
def test_refusals(payload: bytes, code: int, message: str, token: str | None) -> None:
    with pytest.raises(ShadowError) as caught:
        parse_update_request(payload)
    error = caught.value
    assert (error.http_status, error.message, error.client_token) == (code, message, token)
    assert error.document(5) == {"code": code, "message": message, "timestamp": 5,
                                 **({"clientToken": token} if token else {})}


def test_error_classes_carry_the_rest_error_types() -> None:
    assert InvalidShadowRequestError("x").aws_error_type == "InvalidRequestException"
    assert ShadowTooLargeError("x").aws_error_type == "RequestEntityTooLargeException"
    assert UnsupportedEncodingError("x").aws_error_type == "UnsupportedDocumentEncodingException"


ACCEPTED = [
    pytest.param(b'{"state": {"desired": {"a": 1}}}', {"desired": {"a": 1}}, None, None,
                 id="desired"),
    pytest.param(b'{"state": {"reported": null}, "version": 0, "clientToken": ""}',
                 {"reported": None}, "", 0, id="section-null-version-zero"),
    pytest.param(b'{"state": null}', None, None, None, id="state-null"),
    pytest.param(b'{"state": {}, "version": null}', {}, None, None, id="version-null-ignored"),
    pytest.param(b'{"state": {"desired": {}}, "metadata": {"x": 1}, "timestamp": 3}',
                 {"desired": {}}, None, None, id="other-members-ignored"),
    pytest.param(json.dumps({"state": {"desired": nested(6)}}).encode(),
                 {"desired": nested(6)}, None, None, id="six-levels"),
    pytest.param(json.dumps({"clientToken": "é" * 32, "state": {}}).encode(), {}, "é" * 32,
                 None, id="token-64-bytes"),
    pytest.param(json.dumps({"state": {"desired": {"a": "x" * (MAX_STATE_BYTES - 8)}}}
                            ).encode(), {"desired": {"a": "x" * (MAX_STATE_BYTES - 8)}}, None,
                 None, id="state-at-the-limit"),
]


@pytest.mark.parametrize(("payload", "state", "token", "version"), ACCEPTED)
def test_accepted_requests(payload: bytes, state: Any, token: str | None,
                           version: int | None) -> None:
    request = parse_update_request(payload)
    assert (request.state, request.client_token, request.version) == (state, token, version)


def test_client_token_of_get_and_delete() -> None:
    assert read_client_token(b"") is None
    assert read_client_token(b"  ") is None
    assert read_client_token(b'{"clientToken": "abc"}') == "abc"
    assert read_client_token(b"not json at all") is None  # the content is ignored
    assert read_client_token(b"[]") is None
    with pytest.raises(InvalidShadowRequestError, match="Invalid clientToken"):
        read_client_token(json.dumps({"clientToken": "x" * 65}).encode())
    with pytest.raises(TypeError):
        read_client_token("{}")  # type: ignore[arg-type]


@given(st.binary(max_size=200))
def test_any_bytes_are_either_a_request_or_a_shadow_error(payload: bytes) -> None:
    try:
        parse_update_request(payload)
    except ShadowError:
        pass


@pytest.mark.parametrize(("name", "valid"), [
    ("dev1", True), ("a:b_c-d", True), ("x" * 128, True), ("x" * 129, False), ("", False),
    ("has space", False), ("dev/1", False), ("$dev", False), ("+", False),
])
def test_thing_names(name: str, valid: bool) -> None:
    if valid:
        assert check_thing_name(name) == name
    else:
        with pytest.raises(InvalidShadowRequestError, match="Invalid thing name"):
            check_thing_name(name)


@pytest.mark.parametrize(("name", "valid"), [
    (None, True), ("s1", True), ("$package", True), ("x" * 64, True), ("x" * 65, False),
    ("", False), ("a/b", False), ("#", False),
])
def test_shadow_names(name: str | None, valid: bool) -> None:
    if valid:
        assert check_shadow_name(name) == name
    else:
        with pytest.raises(InvalidShadowRequestError, match="Invalid shadow name"):
            check_shadow_name(name)


TOPICS = [
    ("$aws/things/dev1/shadow/get", ("dev1", None, ShadowOperation.GET)),
    ("$aws/things/dev1/shadow/update", ("dev1", None, ShadowOperation.UPDATE)),
    ("$aws/things/dev1/shadow/delete", ("dev1", None, ShadowOperation.DELETE)),
    ("$aws/things/dev1/shadow/name/s1/update", ("dev1", "s1", ShadowOperation.UPDATE)),
    ("$aws/things/dev1/shadow/name/s1/get", ("dev1", "s1", ShadowOperation.GET)),
    ("$aws/things/dev1/shadow/update/accepted", None),
    ("$aws/things/dev1/shadow/update/delta", None),
    ("$aws/things/dev1/shadow/name/s1/update/documents", None),
    ("$aws/things/dev1/shadow/name/get", None),
    ("$aws/things/dev1/shadow/list", None),
    ("$aws/things/dev1/jobs/get", None),
    ("things/dev1/shadow/get", None),
    ("$aws/things/dev1/shadow", None),
]


@pytest.mark.parametrize(("topic", "expected"), TOPICS, ids=[t for t, _ in TOPICS])
def test_request_topics(topic: str, expected: tuple[str, str | None, ShadowOperation] | None
                        ) -> None:
    parsed = parse_request_topic(topic)
    if expected is None:
        assert parsed is None
        return
    assert parsed is not None
    assert (parsed.thing_name, parsed.shadow_name, parsed.operation) == expected
    assert parsed.topic == topic
    assert parsed.accepted == topic + "/accepted" and parsed.rejected == topic + "/rejected"


def test_topic_prefixes() -> None:
    assert shadow_topic_prefix("t") == "$aws/things/t/shadow"
    assert shadow_topic_prefix("t", "s") == "$aws/things/t/shadow/name/s"
