"""Parsing: policy text → :class:`PolicyDocument`.

The text is size-checked (AWS counts characters excluding whitespace), decoded as strict
JSON — duplicate object keys, ``NaN`` and ``Infinity`` are rejected, because two parsers
reading an ambiguous document differently is how authorization bugs happen — and then
validated element by element (:mod:`._validate`).
"""

from __future__ import annotations

import json
from decimal import Decimal

from ._actions import IOT_POLICY_ACTIONS
from ._errors import MalformedPolicyError
from ._model import PolicyDocument
from ._validate import validate_document

#: AWS's limit on a policy document: 2048 characters, not counting whitespace.
DEFAULT_MAX_POLICY_LENGTH = 2048


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedPolicyError(f'duplicate key "{key}" in a JSON object')
        result[key] = value
    return result


def _constant(name: str) -> object:
    raise MalformedPolicyError(f"the policy document is not valid JSON: {name} is not allowed")


def parse_policy(
    document: str,
    *,
    max_length: int | None = DEFAULT_MAX_POLICY_LENGTH,
    known_actions: frozenset[str] = IOT_POLICY_ACTIONS,
) -> PolicyDocument:
    """Parse and validate an IoT policy document.

    :param document: the policy document, as JSON text.
    :param max_length: the maximum number of non-whitespace characters, or ``None`` for no
        limit (default: AWS's 2048).
    :param known_actions: the ``iot:`` actions an exact action name must be one of.
    :returns: the validated document.
    :raises TypeError: ``document`` is not a ``str``.
    :raises MalformedPolicyError: the document is empty, too long, not JSON, or not a valid
        policy; the error says which element is wrong and why.
    """
    if not isinstance(document, str):
        raise TypeError(f"document must be str, not {type(document).__name__}")
    size = sum(1 for ch in document if not ch.isspace())
    if size == 0:
        raise MalformedPolicyError("the policy document is empty")
    if max_length is not None and size > max_length:
        raise MalformedPolicyError(
            f"the policy document is too long: {size} characters excluding whitespace, "
            f"the maximum is {max_length}"
        )
    try:
        raw = json.loads(
            document, object_pairs_hook=_object, parse_constant=_constant, parse_float=Decimal
        )
    except json.JSONDecodeError as exc:
        raise MalformedPolicyError(
            f"the policy document is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise MalformedPolicyError(f"the policy document is not valid JSON: {exc}") from None
    return validate_document(raw, known_actions=known_actions)
