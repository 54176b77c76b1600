"""The fleet-indexing query language: text in, a query tree out (a pure core).

Theory of operation
-------------------
AWS IoT's fleet indexing takes a Lucene-like query string. This module reads the part of
it Bastion supports into a tree of frozen values, with a small recursive-descent parser
over a hand-written tokenizer:

    query    := or_expr
    or_expr  := and_expr ( "OR" and_expr )*
    and_expr := unary ( ["AND"] unary )*            (juxtaposition is AND, AWS's default)
    unary    := ( "NOT" | "-" ) unary | primary
    primary  := "(" or_expr ")" | clause | value    (a bare value searches every field)
    clause   := FIELD ":" target | FIELD ( ">" | ">=" | "<" | "<=" ) value
    target   := value | range | "(" values ")"      (field grouping: f:(a OR -b OR [1 TO 3]))
    range    := ( "[" | "{" ) bound "TO" bound ( "]" | "}" )      (bound may be "*")
    value    := WORD | "PHRASE"                     (WORD may hold the wildcards * and ?)

A backslash escapes the next character (``thingName:my\\:thing``). A ``:`` inside a value
needs no escape when it is not followed by a space (``thingName:a:b``). ``-`` negates only
at the start of a term (``my-thing`` is one word). Keywords are upper case, as in Lucene.

AWS's limits are checked here: at most :data:`MAX_TERMS` terms, at most one term with a
leading wildcard (and then a query of at most 100 characters), and none of the characters
AWS refuses (`` ` @ # % / ' ; , ``) outside quotes unless escaped. Every refusal raises
:class:`~bastion.index.InvalidQueryError`, which the API answers as AWS does: HTTP 400
``InvalidQueryException``.

Which field names exist depends on the index and its configuration: that is checked by
the service (:mod:`._fields`), not here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, TypeAlias

from ._errors import InvalidQueryError

MAX_TERMS: Final = 12
"""AWS: "The maximum number of terms in one query is 12"."""
MAX_LEADING_WILDCARD_QUERY: Final = 100
_REFUSED: Final = frozenset("`@#%/';,")
_SPECIAL: Final = frozenset('()[]{}:"<>')
_KEYWORDS: Final = frozenset({"AND", "OR", "NOT", "TO"})


# -- the tree ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    """``field:text``: an exact value (``field`` is ``None`` for a bare term: any field).
    ``text`` is unescaped; a quoted phrase never holds wildcards."""

    field: str | None
    text: str


@dataclass(frozen=True, slots=True)
class Wildcard:
    """``field:pattern`` where ``*`` is any run of characters and ``?`` one character."""

    field: str | None
    pattern: str


@dataclass(frozen=True, slots=True)
class Range:
    """``field:[low TO high]`` (``include_*`` false for ``{``/``}``); ``None`` is open.
    ``field>v`` is ``Range(field, v, None, False, True)``."""

    field: str
    low: str | None
    high: str | None
    include_low: bool
    include_high: bool


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Query


Query: TypeAlias = Term | Wildcard | Range | And | Or | Not
Leaf: TypeAlias = Term | Wildcard | Range


def leaves(query: Query) -> Iterator[Leaf]:
    """Every term of ``query``, left to right."""
    if isinstance(query, And | Or):
        for item in query.items:
            yield from leaves(item)
    elif isinstance(query, Not):
        yield from leaves(query.item)
    else:
        yield query


# -- tokens -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # WORD PHRASE ( ) [ ] { } : OP AND OR NOT TO MINUS END
    text: str
    start: int
    end: int
    wild: bool = False  # a WORD with an unescaped * or ?


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char.isspace():
            i += 1
            continue
        start = i
        if char == '"':
            i += 1
            text: list[str] = []
            while i < n and source[i] != '"':
                if source[i] == "\\" and i + 1 < n:
                    i += 1
                text.append(source[i])
                i += 1
            if i >= n:
                raise InvalidQueryError(f"Unterminated quoted value at position {start}")
            i += 1
            tokens.append(_Token("PHRASE", "".join(text), start, i))
            continue
        if char in "<>":
            i += 1
            if i < n and source[i] == "=":
                i += 1
            tokens.append(_Token("OP", source[start:i], start, i))
            continue
        if char in _SPECIAL:
            tokens.append(_Token(char, char, start, start + 1))
            i += 1
            continue
        if char == "=":
            raise InvalidQueryError(f"Unexpected '=' at position {start}")
        if char == "-" and _negation_allowed(tokens, source, start):
            tokens.append(_Token("MINUS", "-", start, start + 1))
            i += 1
            continue
        word: list[str] = []
        wild = False
        while i < n:
            char = source[i]
            if char == "\\":
                if i + 1 >= n:
                    raise InvalidQueryError("A query cannot end with a backslash")
                # an escaped wildcard is a literal character: keep the escape for the
                # pattern reader, drop it from plain text below
                word.append(source[i:i + 2])
                i += 2
                continue
            if char.isspace() or char in _SPECIAL or char == "=":
                # a ":" inside a value (a:b) belongs to it when a value follows at once
                if (char == ":" and tokens and tokens[-1].kind == ":" and i + 1 < n
                        and not source[i + 1].isspace() and source[i + 1] not in _SPECIAL):
                    word.append(char)
                    i += 1
                    continue
                break
            if char in _REFUSED:
                raise InvalidQueryError(
                    f"The character '{char}' at position {i} is not supported in queries")
            if char in "*?":
                wild = True
            word.append(char)
            i += 1
        raw = "".join(word)
        if raw in _KEYWORDS:
            tokens.append(_Token(raw, raw, start, i))
        else:
            tokens.append(_Token("WORD", raw, start, i, wild))
    tokens.append(_Token("END", "", n, n))
    return tokens


def _negation_allowed(tokens: list[_Token], source: str, at: int) -> bool:
    """Whether a ``-`` at ``at`` negates: it starts a term (not a value after ``:`` or an
    operator) and something follows it."""
    if at + 1 >= len(source) or source[at + 1].isspace():
        return False
    if tokens and tokens[-1].kind in {":", "OP", "TO", "[", "{"} and tokens[-1].end == at:
        return False
    return not tokens or tokens[-1].kind not in {"WORD", "PHRASE"} or tokens[-1].end < at


def _unescape(raw: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw):
            i += 1
        out.append(raw[i])
        i += 1
    return "".join(out)


# -- the parser -------------------------------------------------------------------------


class _Parser:
    __slots__ = ("_at", "_tokens")

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._at = 0

    def _peek(self) -> _Token:
        return self._tokens[self._at]

    def _take(self, kind: str | None = None) -> _Token:
        token = self._tokens[self._at]
        if kind is not None and token.kind != kind:
            found = "the end of the query" if token.kind == "END" else repr(token.text)
            wanted = "a value" if kind == "WORD" else repr(kind)
            raise InvalidQueryError(f"Expected {wanted} at position {token.start}, "
                                    f"found {found}")
        self._at += 1
        return token

    def parse(self) -> Query:
        if self._peek().kind == "END":
            raise InvalidQueryError("The query string is empty")
        query = self._or(None)
        token = self._peek()
        if token.kind != "END":
            raise InvalidQueryError(f"Unexpected {token.text!r} at position {token.start}")
        return query

    def _or(self, field: str | None) -> Query:
        items = [self._and(field)]
        while self._peek().kind == "OR":
            self._take()
            items.append(self._and(field))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _and(self, field: str | None) -> Query:
        items = [self._unary(field)]
        starts = {"WORD", "PHRASE", "(", "NOT", "MINUS"} | ({"[", "{"} if field else set())
        while True:
            kind = self._peek().kind
            if kind == "AND":
                self._take()
            elif kind not in starts:
                break
            items.append(self._unary(field))
        return items[0] if len(items) == 1 else And(tuple(items))

    def _unary(self, field: str | None) -> Query:
        if self._peek().kind in {"NOT", "MINUS"}:
            self._take()
            return Not(self._unary(field))
        return self._primary(field)

    def _primary(self, field: str | None) -> Query:
        token = self._peek()
        if token.kind == "(":
            self._take()
            inner = self._or(field)
            self._take(")")
            return inner
        if token.kind == "WORD" and field is None:
            after = self._tokens[self._at + 1]
            if after.kind == ":" and after.start == token.end:
                return self._clause()
            if after.kind == "OP":
                return self._comparison()
        if token.kind in {"WORD", "PHRASE"}:
            return self._value(field)
        if token.kind in {"[", "{"} and field is not None:
            return self._range(field)
        found = "the end of the query" if token.kind == "END" else repr(token.text)
        raise InvalidQueryError(f"Expected a term at position {token.start}, found {found}")

    def _field_name(self) -> str:
        token = self._take("WORD")
        if token.wild or "\\" in token.text:
            raise InvalidQueryError(f"Invalid field name {token.text!r}")
        return token.text

    def _clause(self) -> Query:
        field = self._field_name()
        self._take(":")
        token = self._peek()
        if token.kind == "(":
            self._take()
            inner = self._or(field)
            self._take(")")
            return inner
        if token.kind in {"[", "{"}:
            return self._range(field)
        if token.kind == "OP":
            return self._comparison(field)
        if token.kind not in {"WORD", "PHRASE"}:
            found = "the end of the query" if token.kind == "END" else repr(token.text)
            raise InvalidQueryError(f"Expected a value for {field} at position "
                                    f"{token.start}, found {found}")
        return self._value(field)

    def _comparison(self, field: str | None = None) -> Query:
        if field is None:
            field = self._field_name()
        operator = self._take("OP").text
        bound = self._bound()
        if bound is None:
            raise InvalidQueryError(f"{field}{operator} needs a value")
        if operator == ">":
            return Range(field, bound, None, False, True)
        if operator == ">=":
            return Range(field, bound, None, True, True)
        if operator == "<":
            return Range(field, None, bound, True, False)
        return Range(field, None, bound, True, True)

    def _range(self, field: str) -> Query:
        opening = self._take().kind
        low = self._bound()
        self._take("TO")
        high = self._bound()
        closing = self._peek()
        if closing.kind not in {"]", "}"}:
            raise InvalidQueryError(f"Expected ']' or '}}' at position {closing.start}")
        self._take()
        return Range(field, low, high, opening == "[", closing.kind == "]")

    def _bound(self) -> str | None:
        token = self._peek()
        if token.kind == "PHRASE":
            self._take()
            return token.text
        token = self._take("WORD")
        if token.text == "*":
            return None
        if token.wild:
            raise InvalidQueryError(f"A range bound cannot hold a wildcard: {token.text!r}")
        return _unescape(token.text)

    def _value(self, field: str | None) -> Query:
        token = self._take()
        if token.kind == "PHRASE":
            return Term(field, token.text)
        if token.wild:
            return Wildcard(field, token.text)
        return Term(field, _unescape(token.text))


def parse_query(source: str) -> Query:
    """The tree of ``source``.

    :raises TypeError: ``source`` is not a str.
    :raises InvalidQueryError: ``source`` is not a query Bastion supports, or breaks one
        of AWS's limits (see the module docstring).
    """
    if not isinstance(source, str):
        raise TypeError(f"the query must be a str, not {type(source).__name__}")
    query = _Parser(_tokenize(source)).parse()
    terms = list(leaves(query))
    if len(terms) > MAX_TERMS:
        raise InvalidQueryError(
            f"The query has {len(terms)} terms; at most {MAX_TERMS} are allowed")
    leading = [t for t in terms if isinstance(t, Wildcard)
               and t.pattern[:1] in {"*", "?"} and t.pattern != "*"]
    if len(leading) > 1:
        raise InvalidQueryError("Only one term of a query may start with a wildcard")
    if leading and len(source) > MAX_LEADING_WILDCARD_QUERY:
        raise InvalidQueryError(
            f"A query with a leading wildcard can be at most "
            f"{MAX_LEADING_WILDCARD_QUERY} characters long")
    return query
