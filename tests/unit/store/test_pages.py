"""Pagination tokens (no database): opaque, round-tripping, and strict when decoding."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.store import InvalidPageTokenError, page_of_sorted
from bastion.store._pages import decode_token, encode_token

key_values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.datetimes(timezones=st.just(UTC)),
)


@given(kind=st.text(min_size=1, max_size=20), key=st.lists(key_values, min_size=1, max_size=3))
def test_tokens_round_trip(kind: str, key: list[object]) -> None:
    token = encode_token(kind, key)  # type: ignore[arg-type]
    assert token.isascii() and "=" not in token
    assert decode_token(kind, token, len(key)) == key


def test_datetimes_keep_their_instant() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    (decoded,) = decode_token("k", encode_token("k", [moment]), 1)
    assert decoded == moment


def test_a_token_belongs_to_one_listing() -> None:
    token = encode_token("things", ["dev-1"])
    with pytest.raises(InvalidPageTokenError, match="another listing"):
        decode_token("policies", token, 1)
    with pytest.raises(InvalidPageTokenError):
        decode_token("things", token, 2)


def _raw(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        "x" * 5000,
        _raw([1, 2]),
        _raw({"k": "things"}),
        _raw({"k": "things", "v": [["s", 1]]}),
        _raw({"k": "things", "v": [["i", True]]}),
        _raw({"k": "things", "v": [["t", "yesterday"]]}),
        _raw({"k": "things", "v": [["t", "2024-01-01T00:00:00"]]}),
        _raw({"k": "things", "v": [["z", "x"]]}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
    ids=["empty", "not-base64", "huge", "list", "no-values", "wrong-tag-type", "bool-as-int",
         "bad-date", "naive-date", "unknown-tag", "not-utf8"],
)
def test_garbage_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidPageTokenError):
        decode_token("things", token, 1)


def test_invalid_page_token_is_a_value_error() -> None:
    assert issubclass(InvalidPageTokenError, ValueError)


def test_unsupported_key_values_are_a_type_error() -> None:
    with pytest.raises(TypeError):
        encode_token("k", [True])
    with pytest.raises(TypeError):
        encode_token("k", [1.5])  # type: ignore[list-item]


def test_page_of_sorted_walks_every_item_once() -> None:
    items = [f"item-{index}" for index in range(7)]
    seen: list[str] = []
    token = None
    while True:
        page, token = page_of_sorted(items, str, kind="items", limit=3, token=token)
        seen.extend(page)
        if token is None:
            break
    assert seen == items
    assert page_of_sorted([], str, kind="items", limit=3, token=None) == ([], None)
    with pytest.raises(ValueError):
        page_of_sorted(items, str, kind="items", limit=0, token=None)
