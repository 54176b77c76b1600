"""The inverted index: for each field and value, the set of things that have it.

Theory of operation
-------------------
Each field keeps three maps from a value key to the things holding that value — the
name alone when only one thing does (names, ids and serial numbers are unique: a set
each would cost ten times as much), else a set of names: lower-case strings, numbers
(numbers, and strings that read as numbers) and booleans (the value rules are
:mod:`._match`'s). A query is answered with set algebra:

* a term is one lookup per value kind; a bare term (no field) looks in every field;
* ``prefix*`` and ranges bisect a sorted list of the field's keys, built on first use
  and dropped when a key appears or disappears (not when only a set changes); other
  wildcards scan the field's distinct string keys, never the things;
* AND intersects, smallest first, and subtracts its negated parts; OR unites; a lone
  NOT subtracts from every thing.

So the cost of a query grows with the number of distinct values it touches and the size
of the sets it combines, not with one Python step per thing. The structure is not
thread-safe: its owner (:class:`~bastion.index.FleetIndex`) serializes access. Sets
returned by :meth:`InvertedIndex.evaluate` may be the index's own: read them, never
change them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from typing import TypeVar

from ._document import Fields, FieldValue, Value, values_of
from ._match import (
    TermProbe,
    as_number,
    literal_prefix,
    numeric_bounds,
    wildcard_regex,
)
from ._query import And, Not, Or, Query, Range, Term, Wildcard

_EMPTY: frozenset[str] = frozenset()
K = TypeVar("K", str, float, bool)


Posting = str | set[str]
"""The things holding one value: a name alone (most values of unique fields — names,
ids, serial numbers — belong to one thing, and a set costs ten times a reference), or a
set of names."""


class _FieldPostings:
    __slots__ = ("booleans", "numbers", "sorted_numbers", "sorted_strings", "strings")

    def __init__(self) -> None:
        self.strings: dict[str, Posting] = {}
        self.numbers: dict[float, Posting] = {}
        self.booleans: dict[bool, Posting] = {}
        self.sorted_strings: list[str] | None = None
        self.sorted_numbers: list[float] | None = None

    def add(self, value: Value, name: str) -> None:
        if isinstance(value, bool):
            _add(self.booleans, value, name)
            return
        if isinstance(value, str) and _add(self.strings, value.lower(), name):
            self.sorted_strings = None
        number = as_number(value)
        if number is not None and _add(self.numbers, number, name):
            self.sorted_numbers = None

    def discard(self, value: Value, name: str) -> None:
        if isinstance(value, bool):
            _discard(self.booleans, value, name)
            return
        if isinstance(value, str) and _discard(self.strings, value.lower(), name):
            self.sorted_strings = None
        number = as_number(value)
        if number is not None and _discard(self.numbers, number, name):
            self.sorted_numbers = None

    def empty(self) -> bool:
        return not (self.strings or self.numbers or self.booleans)

    def all_postings(self) -> Iterable[Posting]:
        yield from self.strings.values()
        yield from self.numbers.values()
        yield from self.booleans.values()

    def string_keys(self) -> list[str]:
        if self.sorted_strings is None:
            self.sorted_strings = sorted(self.strings)
        return self.sorted_strings

    def number_keys(self) -> list[float]:
        if self.sorted_numbers is None:
            self.sorted_numbers = sorted(self.numbers)
        return self.sorted_numbers


def _add(postings: dict[K, Posting], key: K, name: str) -> bool:
    """Add ``name`` under ``key``; whether the key is new."""
    found = postings.get(key)
    if found is None:
        postings[key] = name
        return True
    if isinstance(found, str):
        if found != name:
            postings[key] = {found, name}
    else:
        found.add(name)
    return False


def _discard(postings: dict[K, Posting], key: K, name: str) -> bool:
    """Remove ``name`` under ``key``; whether the key went away."""
    found = postings.get(key)
    if found is None:
        return False
    if isinstance(found, str):
        if found != name:
            return False
        del postings[key]
        return True
    found.discard(name)
    if len(found) == 1:
        postings[key] = next(iter(found))
    return False


def _same(one: FieldValue | None, other: FieldValue | None) -> bool:
    """Whether two field values are the same values of the same kinds (``True == 1`` in
    Python, but the index keeps them apart)."""
    if one is None or other is None:
        return one is other
    first, second = values_of(one), values_of(other)
    return len(first) == len(second) and all(
        type(a) is type(b) and a == b for a, b in zip(first, second, strict=True))


def _gather(postings: Iterable[Posting | None]) -> set[str] | frozenset[str]:
    """The union of ``postings`` (a single set is returned as it is: read it only)."""
    sets: list[set[str]] = []
    names: list[str] = []
    for posting in postings:
        if posting is None:
            continue
        if isinstance(posting, str):
            names.append(posting)
        else:
            sets.append(posting)
    if not names:
        return _union(sets)
    result = set(names)
    result.update(*sets)
    return result


def _union(sets: list[set[str]] | list[frozenset[str]] | list[set[str] | frozenset[str]]
           ) -> set[str] | frozenset[str]:
    if not sets:
        return _EMPTY
    if len(sets) == 1:
        return sets[0]
    return set().union(*sets)


class InvertedIndex:
    """Things' fields, indexed for :meth:`evaluate` (see the module docstring)."""

    __slots__ = ("_docs", "_fields", "names")

    def __init__(self) -> None:
        self._fields: dict[str, _FieldPostings] = {}
        self._docs: dict[str, Fields] = {}
        self.names: set[str] = set()
        """Every indexed thing."""

    def __len__(self) -> int:
        return len(self._docs)

    def fields_of(self, name: str) -> Fields | None:
        return self._docs.get(name)

    def field_names(self) -> Iterable[str]:
        return self._fields.keys()

    def put(self, name: str, fields: Fields) -> None:
        """Index ``name`` with ``fields``, replacing what it had."""
        old = self._docs.get(name)
        if old is not None:
            for field, values in old.items():
                if not _same(fields.get(field), values):
                    self._discard_field(field, values, name)
        for field, values in fields.items():
            if old is None or not _same(old.get(field), values):
                postings = self._fields.get(field)
                if postings is None:
                    postings = self._fields[field] = _FieldPostings()
                for value in values_of(values):
                    postings.add(value, name)
        self._docs[name] = fields
        self.names.add(name)

    def remove(self, name: str) -> None:
        old = self._docs.pop(name, None)
        if old is None:
            return
        for field, values in old.items():
            self._discard_field(field, values, name)
        self.names.discard(name)

    def _discard_field(self, field: str, values: FieldValue, name: str) -> None:
        postings = self._fields.get(field)
        if postings is None:
            return
        for value in values_of(values):
            postings.discard(value, name)
        if postings.empty():
            del self._fields[field]

    # -- evaluation ---------------------------------------------------------------------

    def evaluate(self, query: Query) -> set[str] | frozenset[str]:
        """The names of the things that satisfy ``query``."""
        if isinstance(query, And):
            return self._and(query)
        if isinstance(query, Or):
            return _union([self.evaluate(item) for item in query.items])
        if isinstance(query, Not):
            return self.names - self.evaluate(query.item)
        if query.field is None:
            return _union([self._leaf(query, postings) for postings in self._fields.values()])
        postings = self._fields.get(query.field)
        return _EMPTY if postings is None else self._leaf(query, postings)

    def _and(self, query: And) -> set[str] | frozenset[str]:
        positive = [self.evaluate(i) for i in query.items if not isinstance(i, Not)]
        negative = [self.evaluate(i.item) for i in query.items if isinstance(i, Not)]
        if positive:
            positive.sort(key=len)
            result: set[str] | frozenset[str] = positive[0]
            for other in positive[1:]:
                result = result & other
                if not result:
                    return _EMPTY
        else:
            result = self.names
        for excluded in negative:
            result = result - excluded
        return result

    def _leaf(self, leaf: Term | Wildcard | Range, postings: _FieldPostings
              ) -> set[str] | frozenset[str]:
        if isinstance(leaf, Term):
            probe = TermProbe.of(leaf.text)
            found = [postings.strings.get(probe.text)]
            if probe.number is not None:
                found.append(postings.numbers.get(probe.number))
            if probe.boolean is not None:
                found.append(postings.booleans.get(probe.boolean))
            return _gather(found)
        if isinstance(leaf, Wildcard):
            return self._wildcard(leaf.pattern, postings)
        return self._range(leaf, postings)

    @staticmethod
    def _wildcard(pattern: str, postings: _FieldPostings) -> set[str] | frozenset[str]:
        if pattern == "*":
            return _gather(postings.all_postings())
        prefix = literal_prefix(pattern)
        if prefix is not None:
            keys = postings.string_keys()
            start = bisect_left(keys, prefix)
            end = bisect_left(keys, prefix + "\U0010ffff")
            return _gather(postings.strings[k] for k in keys[start:end])
        regex = wildcard_regex(pattern)
        return _gather(names for key, names in postings.strings.items()
                       if regex.fullmatch(key))

    @staticmethod
    def _range(leaf: Range, postings: _FieldPostings) -> set[str] | frozenset[str]:
        if leaf.low is None and leaf.high is None:
            return _gather(postings.all_postings())
        numbers = numeric_bounds(leaf)
        if numbers is not None:
            low_n, high_n = numbers
            keys_n = postings.number_keys()
            start = 0 if low_n is None else (
                bisect_left(keys_n, low_n) if leaf.include_low else bisect_right(keys_n, low_n))
            end = len(keys_n) if high_n is None else (
                bisect_right(keys_n, high_n) if leaf.include_high
                else bisect_left(keys_n, high_n))
            return _gather(postings.numbers[k] for k in keys_n[start:end])
        keys = postings.string_keys()
        low = None if leaf.low is None else leaf.low.lower()
        high = None if leaf.high is None else leaf.high.lower()
        start = 0 if low is None else (
            bisect_left(keys, low) if leaf.include_low else bisect_right(keys, low))
        end = len(keys) if high is None else (
            bisect_right(keys, high) if leaf.include_high else bisect_left(keys, high))
        return _gather(postings.strings[k] for k in keys[start:end])
