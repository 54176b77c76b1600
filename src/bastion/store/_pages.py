"""Keyset pagination with opaque, stable tokens.

Theory of operation: every listing is ordered by a unique sort key (a name, or a
``(creation_date, id)`` pair). A page holds up to ``limit`` rows; when more follow, the
token is the sort key of the page's last row, tagged with the listing's *kind* and
base64url-encoded. The next page asks for rows strictly after that key. Tokens therefore
stay valid while rows are inserted or deleted: nothing is skipped or repeated except the
rows that changed, and a token never expires. A token from another listing, or garbage,
raises :class:`~bastion.store.InvalidPageTokenError`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

import sqlalchemy as sa

from ._errors import InvalidPageTokenError

T = TypeVar("T")

Page: TypeAlias = tuple[list[T], str | None]
"""A page of a listing: the items, and the token of the next page (``None`` at the end)."""

KeyValue: TypeAlias = str | int | datetime


def encode_token(kind: str, key: Sequence[KeyValue]) -> str:
    """The opaque token resuming listing ``kind`` after sort key ``key``."""
    parts: list[list[Any]] = []
    for value in key:
        if isinstance(value, datetime):
            parts.append(["t", value.isoformat()])
        elif isinstance(value, bool) or not isinstance(value, str | int):
            raise TypeError(f"unsupported sort key value {value!r}")
        elif isinstance(value, int):
            parts.append(["i", value])
        else:
            parts.append(["s", value])
    raw = json.dumps({"k": kind, "v": parts}, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(kind: str, token: str, arity: int) -> list[KeyValue]:
    """The sort key held by ``token``.

    :raises InvalidPageTokenError: ``token`` is malformed, or was issued by another listing
        or for a sort key of another shape.
    """
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise InvalidPageTokenError("invalid pagination token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidPageTokenError("invalid pagination token") from None
    if not isinstance(data, dict) or data.get("k") != kind:
        raise InvalidPageTokenError("pagination token belongs to another listing")
    parts = data.get("v")
    if not isinstance(parts, list) or len(parts) != arity:
        raise InvalidPageTokenError("invalid pagination token")
    key: list[KeyValue] = []
    for part in parts:
        if not (isinstance(part, list) and len(part) == 2):
            raise InvalidPageTokenError("invalid pagination token")
        tag, value = part
        if tag == "s" and isinstance(value, str) or tag == "i" and isinstance(value, int) and not isinstance(value, bool):
            key.append(value)
        elif tag == "t" and isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise InvalidPageTokenError("invalid pagination token") from None
            if moment.utcoffset() is None:
                raise InvalidPageTokenError("invalid pagination token")
            key.append(moment)
        else:
            raise InvalidPageTokenError("invalid pagination token")
    return key


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int, not {type(limit).__name__}")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


def keyset_page(
    conn: sa.Connection,
    stmt: sa.Select[Any],
    order_by: Sequence[sa.ColumnElement[Any]],
    *,
    kind: str,
    limit: int,
    token: str | None,
    descending: bool = False,
) -> tuple[list[sa.Row[Any]], str | None]:
    """Run ``stmt`` one page at a time.

    :param order_by: the sort key columns, a unique key, all selected by ``stmt``.
    :param kind: names the listing (and its filters' shape) inside the token.
    :raises InvalidPageTokenError: see :func:`decode_token`.
    :raises ValueError: ``limit`` < 1.
    """
    _check_limit(limit)
    if token is not None:
        key = decode_token(kind, token, len(order_by))
        stmt = stmt.where(_after(order_by, key, descending))
    ordering = [column.desc() if descending else column.asc() for column in order_by]
    rows = list(conn.execute(stmt.order_by(*ordering).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]._mapping
    return rows, encode_token(kind, [last[column] for column in order_by])


def _after(
    order_by: Sequence[sa.ColumnElement[Any]], key: Sequence[KeyValue], descending: bool
) -> sa.ColumnElement[bool]:
    # (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ... ; portable, unlike row-value comparison.
    clauses: list[sa.ColumnElement[bool]] = []
    for index, column in enumerate(order_by):
        equal = [order_by[i] == key[i] for i in range(index)]
        beyond = column < key[index] if descending else column > key[index]
        clauses.append(sa.and_(*equal, beyond))
    return sa.or_(*clauses)


def page_of_sorted(
    items: Sequence[T],
    sort_key: Callable[[T], str],
    *,
    kind: str,
    limit: int,
    token: str | None,
) -> Page[T]:
    """Paginate a small in-memory list already sorted by the unique ``sort_key``, with the
    same token format as :func:`keyset_page`.

    :raises InvalidPageTokenError: see :func:`decode_token`.
    :raises ValueError: ``limit`` < 1.
    """
    _check_limit(limit)
    start = 0
    if token is not None:
        (after,) = decode_token(kind, token, 1)
        start = next((i for i, item in enumerate(items) if sort_key(item) > str(after)), len(items))
    page = list(items[start : start + limit])
    if start + limit >= len(items):
        return page, None
    return page, encode_token(kind, [sort_key(page[-1])])
