"""Running a parsed statement against one message.

Theory of operation
-------------------
:func:`evaluate` reads the payload as JSON once (lazily: a statement that needs no
attribute never decodes it), checks the WHERE clause, and builds the result:

* WHERE matches only when its value is ``true`` (or the string ``"true"``); Undefined,
  ``null``, ``false`` and anything else do not match.
* ``*`` is the whole payload. A payload that is not JSON passes through ``SELECT *``
  unchanged (the binary-payload case); attribute references on it are Undefined.
* Each other item adds one key: its alias, else the last attribute name of a reference
  (``state.reported.t`` → ``t``), else ``_<n>`` for the n-th item. An item whose value is
  Undefined adds nothing; one that is ``null`` adds ``null``.
* ``SELECT VALUE expr`` returns the expression's value itself.

Operators follow AWS's tables: arithmetic takes numbers and strings that spell numbers
(Int with Int stays Int, integer division truncates toward zero); ordering converts
both sides to numbers; ``=`` compares numbers by value and everything else by type and
value; AND, OR, NOT take Booleans and the strings "true"/"false"; ``x IN array``; any
operand outside a table gives Undefined. Nothing here raises for any payload: a bad
value is Undefined.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from ._ast import (
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
from ._functions import call_function, get_member, modulo
from ._values import (
    NO_MQTT_PROPERTIES,
    UNDEFINED,
    MqttProperties,
    Value,
    cast_value,
    normalize_number,
    sql_equal,
    to_boolean,
    to_number,
)

SQL_VERSIONS = ("2015-10-08", "2016-03-23", "beta")
"""The ``awsIotSqlVersion`` values AWS accepts; 2015-10-08 is AWS's default."""

_NOT_JSON: Any = object()


@dataclass(slots=True)
class MessageContext:
    """One message as a statement sees it.

    :ivar principal: the publisher's certificate id (``principal()``), if known.
    :ivar timestamp_ms: when the broker accepted the message, in epoch milliseconds.
    :ivar whole_decimals_are_ints: SQL version 2016-03-23 (and beta): ``10.0`` is ``10``.
    """

    topic: str
    payload: bytes
    client_id: str | None = None
    principal: str | None = None
    timestamp_ms: int = 0
    whole_decimals_are_ints: bool = True
    properties: MqttProperties = NO_MQTT_PROPERTIES
    _document: Any = field(default=None, repr=False)
    _decoded: bool = field(default=False, repr=False)

    @property
    def document(self) -> Value:
        """The payload read as JSON, or a private marker when it is not JSON."""
        if not self._decoded:
            self._decoded = True
            try:
                if self.whole_decimals_are_ints:
                    self._document = json.loads(self.payload, parse_float=_whole_int,
                                                parse_constant=_no_constant)
                else:
                    self._document = json.loads(self.payload, parse_constant=_no_constant)
            except (ValueError, RecursionError):
                self._document = _NOT_JSON
        return self._document

    @property
    def is_json(self) -> bool:
        return self.document is not _NOT_JSON


def _whole_int(text: str) -> float | int:
    number = float(text)
    if number.is_integer() and abs(number) < 1e21:
        return int(number)
    return number


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


@dataclass(frozen=True, slots=True)
class RuleOutput:
    """What a matched statement produced.

    :ivar value: the result as a JSON value (an object for a SELECT list).
    :ivar raw: the payload itself when ``SELECT *`` passed a non-JSON payload through.
    """

    value: Value
    raw: bytes | None = None

    def payload(self) -> bytes:
        """The bytes an action sends: the raw payload, or the result as JSON."""
        if self.raw is not None:
            return self.raw
        return json.dumps(self.value, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")


def evaluate(statement: Statement, ctx: MessageContext) -> RuleOutput | None:
    """Run ``statement`` on one message: its output, or ``None`` when WHERE does not match
    (or ``SELECT VALUE`` is Undefined). Never raises for any payload."""
    if statement.where is not None:
        condition = _eval(statement.where, ctx)
        if to_boolean(condition) is not True:
            return None
    output = _select(statement.items, statement.value, ctx)
    if output is None:
        return None
    return RuleOutput(None, raw=ctx.payload) if output is _RAW else RuleOutput(
        _finish(output, ctx))


_RAW: Any = object()


def _select(items: tuple[SelectItem, ...], value: bool, ctx: MessageContext) -> Value:
    """The SELECT list's result for one document: a value, ``None`` for nothing (an
    Undefined ``SELECT VALUE``), or :data:`_RAW` for a non-JSON payload passed through."""
    if value:
        result = _eval(_expr(items[0].expr), ctx)
        return None if result is UNDEFINED else result
    selected: dict[str, Value] = {}
    for position, item in enumerate(items, start=1):
        expr = item.expr
        if isinstance(expr, Wildcard):
            document = ctx.document
            if document is _NOT_JSON:
                if len(items) == 1:
                    return _RAW
                continue
            if isinstance(document, dict):
                selected.update(document)
            elif len(items) == 1:
                return document
            continue
        result = _eval(expr, ctx)
        if result is UNDEFINED:
            continue
        selected[item.alias or _default_name(expr, position)] = result
    return selected


def _subquery(query: Subquery, ctx: MessageContext) -> Value:
    source = _eval(query.source, ctx)
    if isinstance(source, dict):
        source = [source]
    if not isinstance(source, list):
        return UNDEFINED
    results: list[Value] = []
    for element in source:
        inner = dataclasses.replace(ctx, _document=element, _decoded=True)
        if query.where is not None and to_boolean(_eval(query.where, inner)) is not True:
            continue
        result = _select(query.items, query.value, inner)
        if result is not None and result is not _RAW:
            results.append(result)
    return results


def _expr(expr: Expr | Wildcard) -> Expr:
    assert not isinstance(expr, Wildcard)
    return expr


def _default_name(expr: Expr, position: int) -> str:
    if isinstance(expr, Ref):
        return expr.name
    if isinstance(expr, Field):
        return expr.name
    return f"_{position}"


def _finish(value: Value, ctx: MessageContext) -> Value:
    """Drop what JSON cannot carry (Undefined inside arrays and objects built by the
    statement); whole decimals become ints under 2016-03-23."""
    if isinstance(value, dict):
        return {key: _finish(item, ctx) for key, item in value.items() if item is not UNDEFINED}
    if isinstance(value, list):
        return [_finish(item, ctx) for item in value if item is not UNDEFINED]
    if isinstance(value, float):
        return normalize_number(value, whole_decimals_are_ints=ctx.whole_decimals_are_ints)
    return value


def _eval(expr: Expr | Wildcard, ctx: MessageContext) -> Value:
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Ref):
        document = ctx.document
        if isinstance(document, dict):
            return document.get(expr.name, UNDEFINED)
        return UNDEFINED
    if isinstance(expr, Field):
        target = _eval(expr.target, ctx)
        if isinstance(target, dict):
            return target.get(expr.name, UNDEFINED)
        return UNDEFINED
    if isinstance(expr, Index):
        return get_member(_eval(expr.target, ctx), _eval(expr.index, ctx))
    if isinstance(expr, Binary):
        return _binary(expr, ctx)
    if isinstance(expr, Unary):
        operand = _eval(expr.operand, ctx)
        if expr.op == "NOT":
            truth = to_boolean(operand)
            return UNDEFINED if truth is None else not truth
        number = to_number(operand)
        return UNDEFINED if number is None else -number
    if isinstance(expr, Call):
        args: list[Value] = []
        for arg in expr.args:
            if isinstance(arg, Wildcard):
                document = ctx.document
                args.append(ctx.payload if document is _NOT_JSON or expr.name == "encode"
                            else document)
            else:
                args.append(_eval(arg, ctx))
        return call_function(expr.name, ctx, args)
    if isinstance(expr, Case):
        return _case(expr, ctx)
    if isinstance(expr, Cast):
        return cast_value(_eval(expr.operand, ctx), expr.type_name)
    if isinstance(expr, Subquery):
        return _subquery(expr, ctx)
    if isinstance(expr, ArrayLiteral):  # Undefined members are left out, as in results
        return [value for value in (_eval(item, ctx) for item in expr.items)
                if value is not UNDEFINED]
    if isinstance(expr, ObjectLiteral):
        built = {key: _eval(value, ctx) for key, value in expr.items}
        return {key: value for key, value in built.items() if value is not UNDEFINED}
    if isinstance(expr, Wildcard):
        document = ctx.document
        return ctx.payload if document is _NOT_JSON else document
    raise TypeError(f"not an expression: {type(expr).__name__}")


def _case(expr: Case, ctx: MessageContext) -> Value:
    if expr.operand is None:
        for when, then in expr.whens:
            if to_boolean(_eval(when, ctx)) is True:
                return _eval(then, ctx)
    else:
        operand = _eval(expr.operand, ctx)
        if operand is not UNDEFINED:
            for when, then in expr.whens:
                candidate = _eval(when, ctx)
                if candidate is not UNDEFINED and sql_equal(operand, candidate):
                    return _eval(then, ctx)
    return UNDEFINED if expr.default is None else _eval(expr.default, ctx)


def _binary(expr: Binary, ctx: MessageContext) -> Value:
    op = expr.op
    left = _eval(expr.left, ctx)
    right = _eval(expr.right, ctx)
    if op == "AND" or op == "OR":
        p, q = to_boolean(left), to_boolean(right)
        if p is None or q is None:
            return UNDEFINED
        return (p and q) if op == "AND" else (p or q)
    if left is UNDEFINED or right is UNDEFINED:
        return UNDEFINED
    if op == "=":
        return sql_equal(left, right)
    if op == "<>":
        return not sql_equal(left, right)
    if op == "IN":
        if not isinstance(right, list):
            return UNDEFINED
        return any(item is not UNDEFINED and sql_equal(left, item) for item in right)
    a, b = to_number(left), to_number(right)
    if a is None or b is None:
        return UNDEFINED
    try:
        return _arithmetic(op, a, b)
    except (OverflowError, ValueError):  # a float meeting an int too large for a float
        return UNDEFINED


def _arithmetic(op: str, a: float, b: float) -> Value:
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "+":
        return _finite(a + b)
    if op == "-":
        return _finite(a - b)
    if op == "*":
        return _finite(a * b)
    if op == "/":
        if b == 0:
            return UNDEFINED
        if isinstance(a, int) and isinstance(b, int):
            quotient = abs(a) // abs(b)
            return quotient if (a >= 0) == (b >= 0) else -quotient
        return _finite(a / b)
    if op == "%":
        return modulo(a, b)
    raise ValueError(f"unknown operator {op!r}")  # pragma: no cover - the parser's set


_INT_LIMIT = 10**34
"""AWS's Int has at most 34 digits; a larger result continues as a Decimal."""


def _finite(number: float) -> Value:
    if isinstance(number, int) and not -_INT_LIMIT < number < _INT_LIMIT:
        number = float(number)  # OverflowError past a float's range: Undefined
    if isinstance(number, float) and not math.isfinite(number):
        return UNDEFINED
    return number


def evaluate_expression(expr: Expr, ctx: MessageContext) -> Value:
    """One expression's value for one message (a substitution template's); never raises."""
    return _finish(_eval(expr, ctx), ctx)
