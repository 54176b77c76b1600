"""Hypothesis: the parser never fails other than with a SqlParseError, printing a parsed
statement and parsing it again gives the same tree, and evaluation never raises."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.rules import (
    MessageContext,
    SqlParseError,
    UnsupportedSqlError,
    evaluate,
    parse,
    statement_sql,
)
from bastion.rules._ast import (
    ArrayLiteral,
    Binary,
    Call,
    Case,
    Cast,
    Expr,
    Field,
    Index,
    Literal,
    ObjectLiteral,
    Ref,
    SelectItem,
    Statement,
    Subquery,
    Unary,
    Wildcard,
)
from bastion.rules._compile import compile_statement

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

names = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
    st.sampled_from(["from", "select", "Value", "in", "end", "null"]),
    st.text(st.characters(blacklist_characters="`", blacklist_categories=("Cs",)),
            min_size=1, max_size=8),
)
literals = st.builds(Literal, st.one_of(
    st.none(), st.booleans(), st.integers(min_value=0, max_value=10**40),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)))

FUNCTIONS = {"abs": 1, "concat": 2, "topic": 1, "clientid": 0, "timestamp": 0, "get": 2,
             "substring": 3, "upper": 1, "encode": 2}
OPERATORS = ["+", "-", "*", "/", "%", "=", "<>", "<", "<=", ">", ">=", "AND", "OR", "IN"]


def _calls(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    def build(name: str) -> st.SearchStrategy[Expr]:
        count = FUNCTIONS[name]
        first: st.SearchStrategy[Expr | Wildcard] = children
        if name in ("encode", "get"):
            first = st.one_of(children, st.just(Wildcard()))
        if count == 0:
            return st.just(Call(name, ()))
        return st.tuples(first, st.lists(children, min_size=count - 1,
                                         max_size=count - 1)).map(
            lambda parts: Call(name, (parts[0], *parts[1])))
    return st.sampled_from(sorted(FUNCTIONS)).flatmap(build)


def _extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.builds(Field, children, names),
        st.builds(Index, children, children),
        st.builds(Unary, st.sampled_from(["-", "NOT"]), children),
        st.builds(Binary, st.sampled_from(OPERATORS), children, children),
        _calls(children),
        st.builds(Cast, children, st.sampled_from(["Int", "Decimal", "Boolean", "String"])),
        st.builds(lambda items, source, where: Subquery(tuple(items), source, where),
                  st.lists(st.builds(SelectItem, children, st.none() | names)
                           | st.just(SelectItem(Wildcard())), min_size=1, max_size=2),
                  children, st.none() | children),
        st.builds(lambda item, source: Subquery((SelectItem(item),), source, None, True),
                  children, children),
        st.builds(Case, st.none() | children,
                  st.lists(st.tuples(children, children), min_size=1, max_size=3).map(tuple),
                  st.none() | children),
        st.lists(children, max_size=3).map(lambda items: ArrayLiteral(tuple(items))),
        st.lists(st.tuples(st.text(max_size=5), children), max_size=3).map(
            lambda items: ObjectLiteral(tuple(items))),
    )


expressions = st.recursive(st.one_of(literals, st.builds(Ref, names)), _extend,
                           max_leaves=12)
filters = st.lists(st.one_of(st.from_regex(r"[a-z0-9-]{1,6}", fullmatch=True),
                             st.just("+")), min_size=1, max_size=4).map("/".join) | \
    st.just("#") | st.just("$aws/things/+/shadow/update")
items = st.one_of(st.builds(SelectItem, expressions, st.none() | names),
                  st.just(SelectItem(Wildcard())))
statements = st.one_of(
    st.builds(lambda i, f, w: Statement(tuple(i), f, w),
              st.lists(items, min_size=1, max_size=4), st.none() | filters,
              st.none() | expressions),
    st.builds(lambda e, f: Statement((SelectItem(e),), f, None, True), expressions,
              st.none() | filters),
)


@SETTINGS
@given(statements)
def test_print_then_parse_gives_the_same_tree(statement: Statement) -> None:
    text = statement_sql(statement)
    assert parse(text) == statement
    assert statement_sql(parse(text)) == text


@SETTINGS
@given(st.text(max_size=200))
def test_parser_never_crashes_on_text(text: str) -> None:
    try:
        parse(text)
    except (SqlParseError, UnsupportedSqlError) as error:
        assert error.message


SQL_ALPHABET = st.sampled_from(
    ["SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "IN", "CASE", "WHEN", "THEN",
     "ELSE", "END", "VALUE", "*", ",", "(", ")", "[", "]", "{", "}", ".", "'a/#'", "'x'",
     "\"y\"", "1", "2.5", "-", "+", "/", "%", "=", "<>", "<", ">=", "a", "b", "topic",
     "get", "encode", "`q`", ":", " ", "\n", "'", "\\", "cast", "Int"])


@SETTINGS
@given(st.lists(SQL_ALPHABET, max_size=30).map(" ".join))
def test_parser_never_crashes_on_near_sql(text: str) -> None:
    try:
        statement = parse(text)
    except (SqlParseError, UnsupportedSqlError) as error:
        assert error.line >= 1 and error.column >= 1 if isinstance(error, SqlParseError) \
            else True
        return
    assert parse(statement_sql(statement)) == statement


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                          allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b", "from", "x y"]), children, max_size=3),
    max_leaves=10)


@SETTINGS
@given(statements, json_values | st.binary(max_size=20), st.booleans())
def test_evaluation_never_raises(statement: Statement, payload: Any, v2016: bool) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    ctx = MessageContext("a/b/c", data, client_id="c", timestamp_ms=1,
                         whole_decimals_are_ints=v2016)
    output = evaluate(statement, ctx)
    if output is not None:
        output.payload()  # serializable


@SETTINGS
@given(statements, json_values | st.binary(max_size=20), st.booleans())
def test_the_compiled_fast_path_answers_as_the_reference(statement: Statement, payload: Any,
                                                         v2016: bool) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()

    def ctx() -> MessageContext:
        return MessageContext("a/b/c", data, client_id="c", principal="p", timestamp_ms=7,
                              whole_decimals_are_ints=v2016)

    expected = evaluate(statement, ctx())
    actual = compile_statement(statement).evaluate(ctx())
    assert actual == expected
