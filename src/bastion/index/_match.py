"""What a query term means for one value, and the reference evaluator over one document.

The value rules (both evaluators share them):

* a term matches a string case-insensitively (AWS: "search is case insensitive");
* a term that reads as a number matches a number equal to it — and a string that reads
  as a number (registry attributes are strings: ``attributes.rev:3`` matches ``"3.0"``);
* ``true``/``false`` match booleans;
* a wildcard (``*`` any run, ``?`` one character) matches strings; ``field:*`` alone
  matches any value, so it asks "does the thing have this field";
* a range whose bounds read as numbers compares numerically (numbers, and strings that
  read as numbers); any other range compares strings, case-insensitively, in code-point
  order. ``*`` is an open bound.

:func:`matches` is the reference: the whole query against one thing's fields, plainly.
The inverted index (:mod:`._postings`) is the fast path; the tests hold the two equal.
Dynamic thing groups use :func:`matches` to judge one changed thing at a time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from ._document import Fields, Value, values_of
from ._query import And, Not, Or, Query, Range, Term, Wildcard

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_BOOLEANS = {"true": True, "false": False}


def as_number(value: Value | str) -> float | None:
    """``value`` as a number, when it is one or a string that reads as one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if _NUMBER.fullmatch(value.strip()):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def as_text(value: Value) -> str | None:
    """``value`` as a string key (lower case), when it is a string."""
    return value.lower() if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class TermProbe:
    """A term's text in each of the three value kinds."""

    text: str
    number: float | None
    boolean: bool | None

    @classmethod
    def of(cls, text: str) -> TermProbe:
        lowered = text.lower()
        return cls(lowered, as_number(text), _BOOLEANS.get(lowered))

    def matches(self, value: Value) -> bool:
        if isinstance(value, bool):
            return self.boolean is not None and value is self.boolean
        if isinstance(value, str) and value.lower() == self.text:
            return True
        number = as_number(value)
        return number is not None and self.number is not None and number == self.number


@lru_cache(maxsize=512)
def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression of a wildcard pattern (lower case; ``\\x`` is a literal)."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1].lower()))
            i += 2
            continue
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char.lower()))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


def literal_prefix(pattern: str) -> str | None:
    """The lower-case prefix of a pattern that is ``prefix*`` (no other wildcard), else
    ``None`` (the index answers such patterns from its sorted keys)."""
    if not pattern.endswith("*") or "\\" in pattern:
        return None
    head = pattern[:-1]
    if "*" in head or "?" in head or not head:
        return None
    return head.lower()


def numeric_bounds(query: Range) -> tuple[float | None, float | None] | None:
    """The bounds as numbers when every given bound reads as one, else ``None``."""
    bounds = [b for b in (query.low, query.high) if b is not None]
    if not bounds:
        return None
    low = None if query.low is None else as_number(query.low)
    high = None if query.high is None else as_number(query.high)
    if (query.low is not None and low is None) or (query.high is not None and high is None):
        return None
    return low, high


def in_range(key: float | str, low: float | str | None, high: float | str | None,
             include_low: bool, include_high: bool) -> bool:
    if low is not None and (key < low or (key == low and not include_low)):  # type: ignore[operator]
        return False
    return not (high is not None and (key > high or (key == high and not include_high)))  # type: ignore[operator]


def value_matches(leaf: Term | Wildcard | Range, value: Value) -> bool:
    """Whether one value satisfies one term."""
    if isinstance(leaf, Term):
        return TermProbe.of(leaf.text).matches(value)
    if isinstance(leaf, Wildcard):
        if leaf.pattern == "*":
            return True
        text = as_text(value)
        return text is not None and wildcard_regex(leaf.pattern).fullmatch(text) is not None
    if leaf.low is None and leaf.high is None:
        return True
    numbers = numeric_bounds(leaf)
    if numbers is not None:
        number = as_number(value)
        return number is not None and in_range(number, *numbers, leaf.include_low,
                                                leaf.include_high)
    text = as_text(value)
    low = None if leaf.low is None else leaf.low.lower()
    high = None if leaf.high is None else leaf.high.lower()
    return text is not None and in_range(text, low, high, leaf.include_low,
                                         leaf.include_high)


def matches(query: Query, fields: Fields) -> bool:
    """Whether a thing with ``fields`` satisfies ``query`` (the reference evaluator)."""
    if isinstance(query, And):
        return all(matches(item, fields) for item in query.items)
    if isinstance(query, Or):
        return any(matches(item, fields) for item in query.items)
    if isinstance(query, Not):
        return not matches(query.item, fields)
    if query.field is None:
        candidates = [v for held in fields.values() for v in values_of(held)]
    else:
        candidates = list(values_of(fields.get(query.field, ())))
    return any(value_matches(query, value) for value in candidates)
