"""The inverted index answers every query exactly as the reference evaluator does, after
any sequence of puts, replacements and removals (Hypothesis); and the value rules, in a
table."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.index import (
    And,
    InvertedIndex,
    Not,
    Or,
    Query,
    Range,
    Term,
    Wildcard,
    matches,
    parse_query,
)
from bastion.index._document import Fields, Value

FIELDS = ["thingName", "attributes.color", "attributes.rev", "shadow.reported.temp",
          "shadow.reported.on", "thingGroupNames"]
WORDS = ["red", "Red", "blue", "tv-1", "tv-2", "plasma", "10", "2.5", "true", "a:b", ""]
NUMBERS = [0, 1, 2.5, 10, -3, 100]

values: st.SearchStrategy[Value] = st.one_of(
    st.sampled_from(WORDS), st.sampled_from(NUMBERS), st.booleans())
held = st.one_of(values, st.lists(values, min_size=1, max_size=3).map(tuple))  # bare or many
documents = st.dictionaries(st.sampled_from(FIELDS), held, max_size=5)
texts = st.sampled_from([*WORDS[:-1], "1", "2.50", "-3", "TRUE", "false", "zz"])
patterns = st.sampled_from(["*", "tv*", "t?-1", "*e*", "r*d", "pl?sma", "1*", "a\\:*"])
fields = st.one_of(st.none(), st.sampled_from(FIELDS))
bounds = st.one_of(st.none(), st.sampled_from(["0", "2", "10", "a", "m", "tv-1", "-5"]))

leaves = st.one_of(
    st.builds(Term, fields, texts),
    st.builds(Wildcard, fields, patterns),
    st.builds(Range, st.sampled_from(FIELDS), bounds, bounds, st.booleans(), st.booleans()),
)
queries: st.SearchStrategy[Query] = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
        inner.map(Not),
    ),
    max_leaves=6,
)


def _reference(docs: dict[str, Fields], query: Query) -> set[str]:
    return {name for name, fields in docs.items() if matches(query, fields)}


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from([f"t{i}" for i in range(12)]), documents, max_size=12),
       st.lists(st.tuples(st.sampled_from([f"t{i}" for i in range(12)]),
                          st.one_of(st.none(), documents)), max_size=8),
       st.lists(queries, min_size=1, max_size=4))
def test_the_index_agrees_with_the_reference(
        docs: dict[str, Fields], changes: list[tuple[str, Fields | None]],
        asked: list[Query]) -> None:
    index = InvertedIndex()
    for name, fields in docs.items():
        index.put(name, fields)
    current = dict(docs)
    for name, fields in changes:
        if fields is None:
            index.remove(name)
            current.pop(name, None)
        else:
            index.put(name, fields)
            current[name] = fields
    for query in asked:
        assert set(index.evaluate(query)) == _reference(current, query), query
    assert index.names == set(current)


DOC: Fields = {
    "thingName": "TV-Kitchen",
    "attributes.rev": "3.0",
    "attributes.room": ("kitchen 2",),
    "shadow.reported.temp": 21.5,
    "shadow.reported.on": True,
    "shadow.reported.tags": ("a", "b"),
    "thingGroupNames": ("living", "screens"),
}

RULES = [
    ("case-insensitive", "thingName:tv-kitchen", True),
    ("numeric-string-equals-number", "attributes.rev:3", True),
    ("number-equals", "shadow.reported.temp:21.5", True),
    ("boolean", "shadow.reported.on:true", True),
    ("boolean-other", "shadow.reported.on:false", False),
    ("phrase", 'attributes.room:"kitchen 2"', True),
    ("multi-valued", "shadow.reported.tags:b thingGroupNames:screens", True),
    ("prefix", "thingName:tv*", True),
    ("question-mark", "thingName:T?-kitchen", True),
    ("no-partial-word", "thingName:tv", False),
    ("numeric-range", "shadow.reported.temp:[20 TO 22]", True),
    ("exclusive-bound", "shadow.reported.temp:{21.5 TO 30]", False),
    ("greater", "attributes.rev>2", True),
    ("string-range", "thingName:[tv TO tw]", True),
    ("exists", "attributes.room:*", True),
    ("missing-field", "attributes.color:*", False),
    ("not", "NOT thingGroupNames:living", False),
    ("bare-term", "screens", True),
    ("or", "thingName:x OR attributes.rev:3", True),
]


@pytest.mark.parametrize(("source", "expected"), [(s, e) for _, s, e in RULES],
                         ids=[i for i, _, _ in RULES])
def test_value_rules(source: str, expected: bool) -> None:
    query = parse_query(source)
    assert matches(query, DOC) is expected
    index = InvertedIndex()
    index.put("x", DOC)
    assert (set(index.evaluate(query)) == {"x"}) is expected


def test_true_and_one_are_different_values() -> None:
    """Python says ``True == 1``; the index must not (Hypothesis found it)."""
    index = InvertedIndex()
    index.put("t", {"attributes.rev": True})
    index.put("t", {"attributes.rev": 1})
    assert set(index.evaluate(parse_query("attributes.rev:1"))) == {"t"}
    assert set(index.evaluate(parse_query("attributes.rev:true"))) == set()
    index.remove("t")
    assert set(index.evaluate(parse_query("*"))) == set()
