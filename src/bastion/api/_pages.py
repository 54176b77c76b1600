"""Opaque, stable page tokens for listings the API pages itself (retained messages, log
targets). Registry listings use the store's tokens.

A token is the sort key of the last item of the page, tagged with the listing's kind,
base64url-encoded: the next page starts strictly after that key, so tokens survive
inserts and deletes and never expire. A token of another listing, or garbage, is an
InvalidRequestException.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from ._errors import invalid_request

T = TypeVar("T")

MAX_TOKEN_LENGTH: Final = 4096


def encode_token(kind: str, key: str) -> str:
    raw = json.dumps({"k": kind, "a": key}, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(kind: str, token: str) -> str:
    """The sort key held by ``token``.

    :raises ApiError: 400 InvalidRequestException for a malformed or foreign token.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise invalid_request("The nextToken is not valid")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid_request("The nextToken is not valid") from None
    if not isinstance(data, dict) or data.get("k") != kind or not isinstance(data.get("a"), str):
        raise invalid_request("The nextToken is not valid")
    return str(data["a"])


def page_after(items: Sequence[T], key: Callable[[T], str], kind: str, limit: int,
               token: str | None) -> tuple[list[T], str | None]:
    """A page of ``items`` (sorted by ``key``) after ``token``.

    :raises ApiError: a bad token.
    """
    after = None if token is None else decode_token(kind, token)
    remaining = [item for item in items if after is None or key(item) > after]
    chosen = remaining[:limit]
    more = len(remaining) > limit
    return chosen, (encode_token(kind, key(chosen[-1])) if more and chosen else None)
