"""What queries answer besides the thing index itself: the thing-group index (read from
the store at each query: groups are few), page sizes and page tokens, and the values an
aggregation works on."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Final

from bastion.store import Store

from ._document import Fields, values_of
from ._errors import InvalidAggregationError, InvalidIndexRequestError
from ._match import as_number

MAX_PAGE: Final = 100
"""SearchIndex answers at most 100 things a page (AWS: "This maximum number cannot
exceed 100")."""


def group_documents(store: Store) -> list[tuple[dict[str, Any], Fields]]:
    """Every thing group as ``(ThingGroupDocument, fields)``, read from ``store``."""
    with store.transaction(readonly=True) as uow:
        rows = uow.thing_groups.all_groups()
    parents = {row.name: row.parent_name for row in rows}
    found = []
    for row in rows:
        ancestors: list[str] = []
        parent = row.parent_name
        while parent is not None and parent not in ancestors:
            ancestors.append(parent)
            parent = parents.get(parent)
        document: dict[str, Any] = {
            "thingGroupName": row.name, "thingGroupId": row.thing_group_id,
            "attributes": dict(row.attributes), "parentGroupNames": ancestors}
        fields: Fields = {"thingGroupName": (row.name,),
                          "thingGroupId": (row.thing_group_id,)}
        if row.description:
            document["thingGroupDescription"] = row.description
            fields["thingGroupDescription"] = (row.description,)
        if ancestors:
            fields["parentGroupNames"] = tuple(ancestors)
        for key, value in row.attributes.items():
            fields[f"attributes.{key}"] = (value,)
        found.append((document, fields))
    return found


def numbers_of(matched: list[Fields], field_name: str) -> list[float]:
    """The numbers among the values of ``field_name`` in ``matched``.

    :raises InvalidAggregationError: the field has values, none of them a number.
    """
    values = [v for fields in matched for v in values_of(fields.get(field_name, ()))]
    numbers = [n for n in (as_number(v) for v in values) if n is not None]
    if values and not numbers:
        raise InvalidAggregationError(f"{field_name} is not a numeric field")
    return numbers


def value_key(value: Any) -> str:
    """A value as a bucket or cardinality key (``3.0`` and ``3`` are one key)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def page_size(max_results: int | None) -> int:
    """:raises InvalidIndexRequestError: ``max_results`` below 1 (above 100 is 100)."""
    if max_results is None:
        return MAX_PAGE
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise TypeError("max_results must be an int")
    if max_results < 1:
        raise InvalidIndexRequestError("maxResults must be at least 1")
    return min(max_results, MAX_PAGE)


def _digest(query_string: str) -> str:
    return hashlib.sha256(query_string.encode()).hexdigest()[:16]


def make_token(after: str, query_string: str) -> str:
    """A ``nextToken``: the last name of the page, bound to its query."""
    raw = json.dumps({"a": after, "q": _digest(query_string)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_token(token: str | None, query_string: str) -> str | None:
    """The name a page starts after.

    :raises InvalidIndexRequestError: not a token :func:`make_token` made for this query.
    """
    if token is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        after, digest = data["a"], data["q"]
    except (ValueError, KeyError, TypeError):
        raise InvalidIndexRequestError("The nextToken is not valid") from None
    if not isinstance(after, str) or digest != _digest(query_string):
        raise InvalidIndexRequestError("The nextToken is not valid for this query")
    return after
