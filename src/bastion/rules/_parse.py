"""The AWS IoT SQL parser: text in, a :class:`~._ast.Statement` out, or
:class:`~._errors.SqlParseError` with the line, column and offset of what is wrong.

Theory of operation
-------------------
The grammar below is LALR(1) and compiled once by ``lark`` at import. Precedence, loosest
first: ``OR``; ``AND``; ``NOT``; comparisons (``= <> != < <= > >=``) and ``IN``; ``+ -``;
``* / %``; unary ``-``; attribute access (``a.b``) and indexing (``a[0]``). Keywords are
case-insensitive. String literals take single or double quotes with backslash escapes
(``\\'``, ``\\\\``, ``\\n``, ``\\uXXXX``…); an attribute whose name is a keyword or not a
plain identifier is written in backticks (```from```, ```my attr```).

``*`` is a select item (the whole payload) or a function argument (``encode(*,
'base64')``); nowhere else. The FROM clause is a quoted MQTT topic filter, checked as a
subscription's would be. What is not a syntax error but still cannot be run (an unknown
function, a wrong number of arguments) is refused here too, with its position, so that a
rule that was created never fails to compile later.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    VisitError,
)

from bastion.mqtt import RemoteProtocolError, validate_topic_filter

from ._ast import (
    CAST_TYPES,
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
from ._errors import RulesError, SqlParseError

MAX_SQL_LENGTH = 4096
"""The longest statement accepted (a rule's SQL is at most a few hundred characters)."""

MAX_NESTING = 64
"""Parentheses, brackets and CASEs nested deeper than this are refused."""

_GRAMMAR = r"""
?start: statement

statement: _SELECT select_body [from_clause] [where_clause]
select_body: _VALUE expr                        -> select_value
           | select_item ("," select_item)*     -> select_items
select_item: "*"                                -> select_star
           | expr (_AS? alias)?                 -> select_expr
alias: NAME | QUOTED_NAME
from_clause: _FROM STRING
where_clause: _WHERE expr

?expr: or_expr
?or_expr: and_expr | or_expr _OR and_expr       -> or_
?and_expr: not_expr | and_expr _AND not_expr    -> and_
?not_expr: comparison | _NOT not_expr           -> not_
?comparison: sum
           | sum COMPARE sum                    -> compare
           | sum _IN sum                        -> in_
?sum: product
    | sum "+" product                           -> add
    | sum "-" product                           -> subtract
?product: unary
        | product "*" unary                     -> multiply
        | product "/" unary                     -> divide
        | product "%" unary                     -> remainder
?unary: postfix | "-" unary                     -> neg
?postfix: primary
        | postfix "." (NAME | QUOTED_NAME)      -> field
        | postfix "[" expr "]"                  -> index
?primary: literal
        | NAME                                  -> ref
        | QUOTED_NAME                           -> ref
        | NAME "(" [arguments] ")"              -> call
        | NAME "(" expr _AS NAME ")"            -> cast
        | case
        | "[" [expr ("," expr)*] "]"            -> array
        | "{" [member ("," member)*] "}"        -> object
        | "(" expr ")"
        | "(" _SELECT select_body _FROM expr [where_clause] ")"  -> subquery
arguments: argument ("," argument)*
?argument: expr | "*"                           -> star_argument
member: (STRING | NAME | QUOTED_NAME) ":" expr
case: _CASE expr? when+ (_ELSE expr)? _END
when: _WHEN expr _THEN expr
?literal: INT                                   -> integer
        | DECIMAL                               -> decimal
        | STRING                                -> string
        | _TRUE                                 -> true
        | _FALSE                                -> false
        | _NULL                                 -> null

_SELECT: "select"i
_VALUE: "value"i
_AS: "as"i
_FROM: "from"i
_WHERE: "where"i
_OR: "or"i
_AND: "and"i
_NOT: "not"i
_IN: "in"i
_CASE: "case"i
_WHEN: "when"i
_THEN: "then"i
_ELSE: "else"i
_END: "end"i
_TRUE: "true"i
_FALSE: "false"i
_NULL: "null"i

NAME: /[A-Za-z_][A-Za-z0-9_]*/i
QUOTED_NAME: /`[^`]+`/
COMPARE: "<>" | "!=" | "<=" | ">=" | "=" | "<" | ">"
INT: /[0-9]+/
DECIMAL: /[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?/ | /[0-9]+[eE][+-]?[0-9]+/
STRING: /'(?:[^'\\]|\\.)*'/s | /"(?:[^"\\]|\\.)*"/s

%import common.WS
%ignore WS
"""

KEYWORDS = frozenset({"select", "value", "as", "from", "where", "or", "and", "not", "in",
                      "case", "when", "then", "else", "end", "true", "false", "null"})

# The basic lexer makes keywords reserved everywhere (a contextual one would read FROM
# as an attribute name where no clause may start, and accept "SELECT FROM").
_PARSER = Lark(_GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=True)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


def _unquote(token: Token) -> str:
    """The text of a string literal token (quotes removed, escapes resolved)."""
    body = token[1:-1]

    def resolve(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 5:
            return chr(int(code[1:], 16))
        return _ESCAPES.get(code, code)

    return _ESCAPE.sub(resolve, body)


def _name(token: Token) -> str:
    return token[1:-1] if token.startswith("`") else str(token)


def _position_error(message: str, token: Token | None) -> SqlParseError:
    if token is None or token.line is None:
        return SqlParseError(message)
    return SqlParseError(f"{message} at line {token.line}, column {token.column}",
                         line=token.line, column=token.column or 1,
                         offset=token.start_pos or 0)


class _Build(Transformer[Token, Any]):
    """Parse tree → :mod:`._ast` values."""

    @v_args(inline=True)
    def statement(self, body: tuple[tuple[SelectItem, ...], bool],
                  topic: str | None = None, where: Expr | None = None) -> Statement:
        items, value = body
        return Statement(items, topic, where, value)

    @v_args(inline=True)
    def subquery(self, body: tuple[tuple[SelectItem, ...], bool], source: Expr,
                 where: Expr | None) -> Expr:
        items, value = body
        return Subquery(items, source, where, value)

    @v_args(inline=True)
    def select_value(self, expr: Expr) -> tuple[tuple[SelectItem, ...], bool]:
        return (SelectItem(expr),), True

    def select_items(self, items: list[SelectItem]) -> tuple[tuple[SelectItem, ...], bool]:
        return tuple(items), False

    def select_star(self, _: list[Any]) -> SelectItem:
        return SelectItem(Wildcard())

    @v_args(inline=True)
    def select_expr(self, expr: Expr, alias: str | None = None) -> SelectItem:
        return SelectItem(expr, alias)

    @v_args(inline=True)
    def alias(self, token: Token) -> str:
        return _name(token)

    @v_args(inline=True)
    def from_clause(self, token: Token) -> str:
        topic_filter = _unquote(token)
        try:
            validate_topic_filter(topic_filter)
        except (RemoteProtocolError, ValueError) as error:
            raise _position_error(f"FROM {topic_filter!r} is not a valid topic filter "
                                  f"({error})", token) from None
        if topic_filter.startswith("$share/"):
            raise _position_error("FROM cannot name a shared subscription", token)
        return topic_filter

    @v_args(inline=True)
    def where_clause(self, expr: Expr) -> Expr:
        return expr

    @v_args(inline=True)
    def or_(self, left: Expr, right: Expr) -> Expr:
        return Binary("OR", left, right)

    @v_args(inline=True)
    def and_(self, left: Expr, right: Expr) -> Expr:
        return Binary("AND", left, right)

    @v_args(inline=True)
    def not_(self, operand: Expr) -> Expr:
        return Unary("NOT", operand)

    @v_args(inline=True)
    def compare(self, left: Expr, op: Token, right: Expr) -> Expr:
        return Binary("<>" if op == "!=" else str(op), left, right)

    @v_args(inline=True)
    def in_(self, left: Expr, right: Expr) -> Expr:
        return Binary("IN", left, right)

    @v_args(inline=True)
    def add(self, left: Expr, right: Expr) -> Expr:
        return Binary("+", left, right)

    @v_args(inline=True)
    def subtract(self, left: Expr, right: Expr) -> Expr:
        return Binary("-", left, right)

    @v_args(inline=True)
    def multiply(self, left: Expr, right: Expr) -> Expr:
        return Binary("*", left, right)

    @v_args(inline=True)
    def divide(self, left: Expr, right: Expr) -> Expr:
        return Binary("/", left, right)

    @v_args(inline=True)
    def remainder(self, left: Expr, right: Expr) -> Expr:
        return Binary("%", left, right)

    @v_args(inline=True)
    def neg(self, operand: Expr) -> Expr:
        return Unary("-", operand)

    @v_args(inline=True)
    def field(self, target: Expr, name: Token) -> Expr:
        return Field(target, _name(name))

    @v_args(inline=True)
    def index(self, target: Expr, index: Expr) -> Expr:
        return Index(target, index)

    @v_args(inline=True)
    def ref(self, token: Token) -> Expr:
        return Ref(_name(token))

    @v_args(inline=True)
    def call(self, name: Token, arguments: tuple[Expr | Wildcard, ...] | None) -> Expr:
        from ._functions import check_call  # the function table imports the AST only

        call = Call(str(name).lower(), arguments or ())
        problem = check_call(call)
        if problem is not None:
            raise _position_error(problem, name)
        return call

    @v_args(inline=True)
    def cast(self, name: Token, operand: Expr, type_name: Token) -> Expr:
        if str(name).lower() != "cast":
            raise _position_error(f"{name}() does not take AS (only cast() does)", name)
        for known in CAST_TYPES:
            if known.lower() == str(type_name).lower():
                return Cast(operand, known)
        raise _position_error(f"cast() to {type_name} is not possible; the types are "
                              f"{', '.join(CAST_TYPES)}", type_name)

    def arguments(self, args: list[Expr | Wildcard]) -> tuple[Expr | Wildcard, ...]:
        return tuple(args)

    def star_argument(self, _: list[Any]) -> Wildcard:
        return Wildcard()

    def array(self, items: list[Expr | None]) -> Expr:
        return ArrayLiteral(tuple(item for item in items if item is not None))

    def object(self, members: list[tuple[str, Expr] | None]) -> Expr:
        return ObjectLiteral(tuple(member for member in members if member is not None))

    @v_args(inline=True)
    def member(self, key: Token, value: Expr) -> tuple[str, Expr]:
        if key.type == "STRING":
            return _unquote(key), value
        return _name(key), value

    def case(self, parts: list[Any]) -> Expr:
        operand: Expr | None = None
        default: Expr | None = None
        whens: list[tuple[Expr, Expr]] = []
        for index, part in enumerate(parts):
            if isinstance(part, tuple):
                whens.append(part)
            elif index == 0:
                operand = part
            else:
                default = part
        return Case(operand, tuple(whens), default)

    @v_args(inline=True)
    def when(self, condition: Expr, result: Expr) -> tuple[Expr, Expr]:
        return condition, result

    @v_args(inline=True)
    def integer(self, token: Token) -> Expr:
        return Literal(int(token))

    @v_args(inline=True)
    def decimal(self, token: Token) -> Expr:
        value = float(token)
        if not math.isfinite(value):
            raise _position_error(f"the number {token} is out of range", token)
        return Literal(value)

    @v_args(inline=True)
    def string(self, token: Token) -> Expr:
        return Literal(_unquote(token))

    def true(self, _: list[Any]) -> Expr:
        return Literal(True)

    def false(self, _: list[Any]) -> Expr:
        return Literal(False)

    def null(self, _: list[Any]) -> Expr:
        return Literal(None)


_BUILD = _Build()
_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")


def _check_nesting(sql: str) -> None:
    """Refuse absurd nesting before the parser recurses over it (a cheap scan that
    ignores quoting: it can only over-count, and only past the limit)."""
    depth = 0
    deepest = 0
    for char in sql:
        if char in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif char in _CLOSERS:
            depth -= 1
    depth = len(re.findall(r"(?i)\bcase\b", sql))
    if deepest > MAX_NESTING or depth > MAX_NESTING:
        raise SqlParseError(f"the statement nests deeper than {MAX_NESTING} levels")


def _describe(error: UnexpectedInput, sql: str) -> str:
    if isinstance(error, UnexpectedEOF):
        return "the statement ends too early"
    if isinstance(error, UnexpectedCharacters):
        position = error.pos_in_stream or 0
        return f"unexpected character {sql[position:position + 1]!r}"
    token = getattr(error, "token", None)
    if token is None or token.type == "$END":
        return "the statement ends too early"
    return f"unexpected {str(token)!r}"


def parse(sql: str) -> Statement:
    """Parse one AWS IoT SQL statement.

    :raises TypeError: ``sql`` is not a string.
    :raises SqlParseError: it is not a statement Bastion can run; ``line``, ``column``
        and ``offset`` say where.
    """
    if not isinstance(sql, str):
        raise TypeError(f"sql must be a string, not {type(sql).__name__}")
    if len(sql) > MAX_SQL_LENGTH:
        raise SqlParseError(f"the statement is longer than {MAX_SQL_LENGTH} characters")
    _check_nesting(sql)
    try:
        tree = _PARSER.parse(sql)
        statement = _BUILD.transform(tree)
    except UnexpectedInput as error:
        line = getattr(error, "line", 1)
        column = getattr(error, "column", 1)
        offset = getattr(error, "pos_in_stream", None)
        token = getattr(error, "token", None)
        at_end = isinstance(error, UnexpectedEOF) or (
            token is not None and getattr(token, "type", None) == "$END")
        if at_end or not isinstance(line, int) or line < 1:
            line, column, offset = _end_position(sql)
        message = _describe(error, sql)
        raise SqlParseError(f"{message} at line {line}, column {column}", line=line,
                            column=column, offset=offset or 0) from None
    except VisitError as error:  # a transformer's refusal, wrapped by lark
        if isinstance(error.orig_exc, RulesError):
            raise error.orig_exc from None
        raise SqlParseError(f"the statement cannot be parsed: {error.orig_exc}") from None
    except LarkError as error:
        raise SqlParseError(f"the statement cannot be parsed: {error}") from None
    except RecursionError:
        raise SqlParseError(f"the statement nests deeper than {MAX_NESTING} levels") from None
    assert isinstance(statement, Statement)
    return statement


def _end_position(sql: str) -> tuple[int, int, int]:
    lines = sql.split("\n")
    return len(lines), len(lines[-1]) + 1, len(sql)


def quote_string(text: str) -> str:
    """``text`` as a single-quoted SQL string literal that :func:`parse` reads back."""
    body = json.dumps(text, ensure_ascii=False)[1:-1]
    return "'" + body.replace('\\"', '"').replace("'", "\\'") + "'"


_EXPRESSION_PREFIX = "SELECT VALUE "


def parse_expression(text: str) -> Expr:
    """Parse one expression (a substitution template's ``${...}``).

    :raises SqlParseError: it is not an expression; the position is within ``text``.
    """
    try:
        statement = parse(_EXPRESSION_PREFIX + text)
    except SqlParseError as error:
        if error.line == 1 and error.column > len(_EXPRESSION_PREFIX):
            column = error.column - len(_EXPRESSION_PREFIX)
            message = re.sub(r" at line 1, column \d+$", "", error.message)
            raise SqlParseError(f"{message} at column {column}", line=1, column=column,
                                offset=max(0, error.offset - len(_EXPRESSION_PREFIX))
                                ) from None
        raise
    if statement.topic_filter is not None or statement.where is not None:
        raise SqlParseError("a substitution template holds one expression")
    expr = statement.items[0].expr
    assert not isinstance(expr, Wildcard)
    return expr
