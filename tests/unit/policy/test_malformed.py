"""Documents that must be rejected, with the reason given (cases/malformed.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bastion.policy import (
    DEFAULT_MAX_POLICY_LENGTH,
    MalformedPolicyError,
    PolicyError,
    parse_policy,
)

_TABLE = json.loads((Path(__file__).parent / "cases" / "malformed.json").read_text("utf-8"))
CASES: list[dict[str, Any]] = _TABLE["cases"]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_malformed_document_is_rejected(case: dict[str, Any]) -> None:
    document = case["document"]
    text = document if isinstance(document, str) else json.dumps(document)
    kwargs: dict[str, Any] = {}
    if "max_length" in case:
        kwargs["max_length"] = case["max_length"]
    with pytest.raises(MalformedPolicyError) as info:
        parse_policy(text, **kwargs)
    assert case["reason"] in str(info.value)
    if "path" in case:
        assert (info.value.path or "") == case["path"]


def test_case_ids_are_unique() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))


def _padded_policy(non_whitespace_length: int, *, spaces: int = 0) -> str:
    head = '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Publish",'
    tail = '"Resource":"arn:aws:iot:us-east-1:123456789012:topic/"}}'
    filler = "x" * (non_whitespace_length - len(head) - len(tail))
    text = head + tail[:-3] + filler + tail[-3:]
    assert len(text) == non_whitespace_length
    return text.replace(",", "," + " " * spaces, 1) if spaces else text


def test_default_limit_is_2048_characters() -> None:
    assert DEFAULT_MAX_POLICY_LENGTH == 2048
    parse_policy(_padded_policy(2048))
    with pytest.raises(MalformedPolicyError, match="2049 characters excluding whitespace"):
        parse_policy(_padded_policy(2049))


def test_whitespace_does_not_count_towards_the_limit() -> None:
    text = _padded_policy(2048, spaces=5000)
    assert len(text) > 7000
    parse_policy(text)


def test_limit_is_a_parameter() -> None:
    text = _padded_policy(3000)
    with pytest.raises(MalformedPolicyError, match="the maximum is 2048"):
        parse_policy(text)
    parse_policy(text, max_length=3000)
    parse_policy(text, max_length=None)
    with pytest.raises(MalformedPolicyError, match="the maximum is 100"):
        parse_policy(_padded_policy(200), max_length=100)


def test_error_carries_the_aws_error_shape() -> None:
    with pytest.raises(MalformedPolicyError) as info:
        parse_policy('{"Version":"2012-10-17","Statement":{"Effect":"Allow",'
                     '"Action":"iot:Publsh","Resource":"*"}}')
    error = info.value
    assert isinstance(error, PolicyError)
    assert error.aws_error_type == "MalformedPolicyException"
    assert error.http_status == 400
    assert error.path == "Statement.Action"
    assert error.reason == 'unknown action "iot:Publsh"'
    assert str(error) == 'Statement.Action: unknown action "iot:Publsh"'
    assert error.message == (
        'Policy document is Malformed: Statement.Action: unknown action "iot:Publsh"'
    )


def test_deep_nesting_is_malformed_not_a_crash() -> None:
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(MalformedPolicyError, match="not valid JSON"):
        parse_policy(text, max_length=None)


@pytest.mark.parametrize("document", [b"{}", None, {"Statement": []}])
def test_non_string_document_is_local_misuse(document: object) -> None:
    with pytest.raises(TypeError):
        parse_policy(document)  # type: ignore[arg-type]
