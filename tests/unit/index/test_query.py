"""The query language: what each accepted query reads as, and every refusal."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.index import And, InvalidQueryError, Not, Or, Range, Term, Wildcard, parse_query

ACCEPTED = [
    ("field", "thingName:abc", Term("thingName", "abc")),
    ("implicit-and", "thingName:abc thingTypeName:xyz",
     And((Term("thingName", "abc"), Term("thingTypeName", "xyz")))),
    ("explicit-and-or", "a:1 AND b:2 OR c:3",
     Or((And((Term("a", "1"), Term("b", "2"))), Term("c", "3")))),
    ("not", "NOT a:1", Not(Term("a", "1"))),
    ("minus", "-a:1 b:2", And((Not(Term("a", "1")), Term("b", "2")))),
    ("parentheses", "(a:1 OR b:2) AND c:3",
     And((Or((Term("a", "1"), Term("b", "2"))), Term("c", "3")))),
    ("field-grouping", "thingName:(tv* AND -plasma)",
     And((Wildcard("thingName", "tv*"), Not(Term("thingName", "plasma"))))),
    ("grouped-ranges", "a:([1 TO 3] OR 7)",
     Or((Range("a", "1", "3", True, True), Term("a", "7")))),
    ("wildcards", "thingName:t?v*", Wildcard("thingName", "t?v*")),
    ("exists", "attributes.x:*", Wildcard("attributes.x", "*")),
    ("inclusive-range", "shadow.reported.t:[10 TO 20]",
     Range("shadow.reported.t", "10", "20", True, True)),
    ("exclusive-range", "a:{a TO m}", Range("a", "a", "m", False, False)),
    ("open-range", "a:[5 TO *]", Range("a", "5", None, True, True)),
    ("greater", "a>5", Range("a", "5", None, False, True)),
    ("at-least-spaced", "connectivity.timestamp >= 1557651600000",
     Range("connectivity.timestamp", "1557651600000", None, True, True)),
    ("less", "a<5", Range("a", None, "5", True, False)),
    ("at-most", "a:<=5", Range("a", None, "5", True, True)),
    ("quoted", 'attributes.room:"kitchen 2"', Term("attributes.room", "kitchen 2")),
    ("colon-in-value", "thingName:a:b", Term("thingName", "a:b")),
    ("escaped", "thingName:a\\:b", Term("thingName", "a:b")),
    ("hyphenated-value", "thingName:my-thing", Term("thingName", "my-thing")),
    ("negative-number", "a:-5", Term("a", "-5")),
    ("bare-term", "kitchen", Term(None, "kitchen")),
    ("match-all", "*", Wildcard(None, "*")),
]


@pytest.mark.parametrize(("source", "expected"), [(s, e) for _, s, e in ACCEPTED],
                         ids=[i for i, _, _ in ACCEPTED])
def test_accepted(source: str, expected: object) -> None:
    assert parse_query(source) == expected


REFUSED = [
    ("empty", "", "empty"),
    ("blank", "   ", "empty"),
    ("no-value", "thingName:", "value"),
    ("unclosed-paren", "(a:1", "'\\)'"),
    ("stray-paren", "a:1)", "Unexpected"),
    ("unclosed-range", "a:[1 TO", "a value"),
    ("range-without-to", "a:[1 2]", "TO"),
    ("dangling-and", "a:1 AND", "term"),
    ("dangling-or", "OR a:1", "term"),
    ("unterminated-quote", 'a:"abc', "Unterminated"),
    ("refused-character", "attributes.mail:a@b", "not supported"),
    ("refused-comma", "a:1,2", "not supported"),
    ("two-leading-wildcards", "thingName:*my thingGroupNames:*echo", "leading wildcard|start"),
    ("wildcard-bound", "a:[a* TO b]", "wildcard"),
    ("operator-without-value", "a>", "a value"),
    ("bare-equals", "a=1", "="),
    ("thirteen-terms", " ".join(f"a:{n}" for n in range(13)), "at most 12"),
    ("trailing-backslash", "a:b\\", "backslash"),
]


@pytest.mark.parametrize(("source", "message"), [(s, m) for _, s, m in REFUSED],
                         ids=[i for i, _, _ in REFUSED])
def test_refused(source: str, message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message) as caught:
        parse_query(source)
    assert caught.value.aws_error_type == "InvalidQueryException"
    assert caught.value.http_status == 400


def test_a_long_query_with_a_leading_wildcard_is_refused() -> None:
    parse_query("thingName:*abc")
    with pytest.raises(InvalidQueryError, match="100 characters"):
        parse_query("thingName:*abc " + "attributes.a:b " * 7)


def test_wrong_type() -> None:
    with pytest.raises(TypeError):
        parse_query(b"thingName:a")  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60))
def test_any_text_parses_or_is_refused_as_an_invalid_query(source: str) -> None:
    try:
        parse_query(source)
    except InvalidQueryError:
        pass


# -- round trip: any tree, written out, reads back as itself ---------------------------

_WORD = st.text(alphabet="abcxyz019._-:\"\\ ()", min_size=1, max_size=8).filter(
    lambda w: w.strip() == w and w not in {"AND", "OR", "NOT", "TO"})
_PATTERN = st.tuples(st.sampled_from("abc"), st.text(alphabet="ab1*?", max_size=5)).map(
    lambda p: p[0] + p[1] + "*")
_FIELD = st.sampled_from(["thingName", "attributes.color", "shadow.reported.temp"])


def _escape(text: str) -> str:
    return "".join("\\" + c if c in ' ()[]{}:"\\<>=*?-' else c for c in text)


def _render(query: object) -> str:
    if isinstance(query, Term):
        return f"{query.field}:{_escape(query.text)}" if query.field else _escape(query.text)
    if isinstance(query, Wildcard):
        return f"{query.field}:{query.pattern}" if query.field else query.pattern
    if isinstance(query, Range):
        low = "*" if query.low is None else _escape(query.low)
        high = "*" if query.high is None else _escape(query.high)
        opening, closing = "[" if query.include_low else "{", "]" if query.include_high else "}"
        return f"{query.field}:{opening}{low} TO {high}{closing}"
    if isinstance(query, Not):
        return f"NOT ({_render(query.item)})"
    joiner = " AND " if isinstance(query, And) else " OR "
    return joiner.join(f"({_render(item)})" for item in query.items)  # type: ignore[attr-defined]


_LEAVES = st.one_of(
    st.builds(Term, st.one_of(st.none(), _FIELD), _WORD),
    st.builds(Wildcard, st.one_of(st.none(), _FIELD), _PATTERN),
    st.builds(Range, _FIELD, st.one_of(st.none(), _WORD), st.one_of(st.none(), _WORD),
              st.booleans(), st.booleans()),
)
_TREES = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
    st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
    inner.map(Not)), max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(_TREES)
def test_a_written_out_tree_reads_back_as_itself(tree: object) -> None:
    source = _render(tree)
    assert parse_query(source) == tree, source
