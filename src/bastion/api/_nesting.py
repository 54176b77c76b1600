"""JSON from a request, parsed only when it is nested no deeper than :data:`MAX_JSON_DEPTH`.

CPython's :func:`json.loads` recurses once per ``[`` or ``{``: a body of 100,000 opening
brackets raises :class:`RecursionError` deep inside the parser (and costs the stack to
get there). So the depth is measured first, without recursion:

1. **Fast path** — a document with no more opening brackets in total than the limit
   cannot be nested deeper than the limit (one ``bytes.count`` per bracket kind).
2. **Scan** — otherwise string literals are cut out with one regular expression (a
   bracket inside ``"…"``, escaped quotes included, is text, not structure), every byte
   but the four brackets is deleted with ``bytes.translate``, and the depth is tracked
   over what is left, stopping at the first bracket past the limit. An unterminated
   string is not cut out: its brackets count, which can only refuse a document that is
   not JSON anyway.

Depth counts containers: ``1`` and ``"x"`` are depth 0, ``{}`` and ``[1]`` depth 1,
``{"a": [1]}`` depth 2. Closing brackets are not matched against their openers (the
parser does that); an excess of closers cannot make the parser recurse.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from ._errors import ApiError, invalid_request

MAX_JSON_DEPTH: Final = 64

_STRING_LITERAL: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET: Final = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS: Final = frozenset(b"[{")


def nesting_exceeds(document: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``document`` (JSON text, valid or not) opens more than ``limit`` brackets
    that are not yet closed at some point, brackets inside string literals not counted.

    :raises ValueError: ``limit`` is negative.
    """
    if limit < 0:
        raise ValueError(f"the nesting limit must be >= 0, not {limit}")
    data = document.encode("utf-8", "surrogatepass") if isinstance(document, str) else document
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    structure = _STRING_LITERAL.sub(b"", data).translate(None, _NOT_A_BRACKET)
    depth = 0
    for byte in structure:
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif depth > 0:
            depth -= 1
    return False


def too_deep(what: str) -> ApiError:
    """``400 InvalidRequestException`` for JSON nested deeper than :data:`MAX_JSON_DEPTH`."""
    return invalid_request(
        f"{what} is nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and "
        "objects are accepted")


def loads_bounded(document: bytes | str, what: str = "The request body") -> Any:
    """``json.loads(document)`` once its nesting is known to be within the limit.

    :param what: names the document in the refusal (``"The request body"``).
    :raises ApiError: ``400 InvalidRequestException``: nested deeper than
        :data:`MAX_JSON_DEPTH`.
    :raises ValueError: not JSON (as :func:`json.loads`; ``UnicodeDecodeError`` included).
    """
    if nesting_exceeds(document):
        raise too_deep(what)
    return json.loads(document)
