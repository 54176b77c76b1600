"""The fast path: a statement compiled once into closures, held equal to the reference
evaluator (:mod:`._evaluate`) by Hypothesis (``tests/unit/rules/test_compiled.py``).

The reference evaluator walks the tree and dispatches on each node's type for every
message; the engine runs what :func:`compile_statement` builds instead, where that
dispatch happened once, when the rule was loaded. Both share the operator tables, the
functions and the conversions, so they differ only in how they walk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
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
from ._evaluate import (
    _NOT_JSON,
    MessageContext,
    RuleOutput,
    _arithmetic,
    _default_name,
    _finish,
)
from ._functions import call_function, get_member
from ._values import UNDEFINED, Value, cast_value, sql_equal, to_boolean, to_number

Compiled = Callable[[MessageContext], Value]
_RAW: Any = object()


def _literal(value: Value) -> Compiled:
    return lambda ctx: value


def _ref(name: str) -> Compiled:
    def run(ctx: MessageContext) -> Value:
        document = ctx.document
        return document.get(name, UNDEFINED) if isinstance(document, dict) else UNDEFINED
    return run


def _field(target: Compiled, name: str) -> Compiled:
    def run(ctx: MessageContext) -> Value:
        value = target(ctx)
        return value.get(name, UNDEFINED) if isinstance(value, dict) else UNDEFINED
    return run


def _wildcard(ctx: MessageContext) -> Value:
    document = ctx.document
    return ctx.payload if document is _NOT_JSON else document


def _binary(op: str, left: Compiled, right: Compiled) -> Compiled:
    if op in ("AND", "OR"):
        conjunction = op == "AND"

        def logic(ctx: MessageContext) -> Value:
            p, q = to_boolean(left(ctx)), to_boolean(right(ctx))
            if p is None or q is None:
                return UNDEFINED
            return (p and q) if conjunction else (p or q)
        return logic

    def run(ctx: MessageContext) -> Value:
        a, b = left(ctx), right(ctx)
        if a is UNDEFINED or b is UNDEFINED:
            return UNDEFINED
        if op == "=":
            return sql_equal(a, b)
        if op == "<>":
            return not sql_equal(a, b)
        if op == "IN":
            if not isinstance(b, list):
                return UNDEFINED
            return any(item is not UNDEFINED and sql_equal(a, item) for item in b)
        x, y = to_number(a), to_number(b)
        if x is None or y is None:
            return UNDEFINED
        try:
            return _arithmetic(op, x, y)
        except (OverflowError, ValueError):
            return UNDEFINED
    return run


def _unary(op: str, operand: Compiled) -> Compiled:
    if op == "NOT":
        def negate(ctx: MessageContext) -> Value:
            truth = to_boolean(operand(ctx))
            return UNDEFINED if truth is None else not truth
        return negate

    def minus(ctx: MessageContext) -> Value:
        number = to_number(operand(ctx))
        return UNDEFINED if number is None else -number
    return minus


def _call(name: str, args: tuple[Expr | Wildcard, ...]) -> Compiled:
    parts: list[Compiled] = []
    for arg in args:
        if isinstance(arg, Wildcard):
            parts.append(_raw_payload if name == "encode" else _wildcard)
        else:
            parts.append(compile_expression(arg))

    def run(ctx: MessageContext) -> Value:
        return call_function(name, ctx, [part(ctx) for part in parts])
    return run


def _raw_payload(ctx: MessageContext) -> Value:
    return ctx.payload


def _case(expr: Case) -> Compiled:
    whens = [(compile_expression(when), compile_expression(then))
             for when, then in expr.whens]
    default = None if expr.default is None else compile_expression(expr.default)
    operand = None if expr.operand is None else compile_expression(expr.operand)

    def run(ctx: MessageContext) -> Value:
        if operand is None:
            for when, then in whens:
                if to_boolean(when(ctx)) is True:
                    return then(ctx)
        else:
            value = operand(ctx)
            if value is not UNDEFINED:
                for when, then in whens:
                    candidate = when(ctx)
                    if candidate is not UNDEFINED and sql_equal(value, candidate):
                        return then(ctx)
        return UNDEFINED if default is None else default(ctx)
    return run


def _select(items: tuple[SelectItem, ...], value: bool
            ) -> Callable[[MessageContext], Value]:
    """The SELECT list (see :func:`._evaluate._select`): a value, ``None`` for nothing,
    or :data:`_RAW`."""
    if value:
        only = compile_expression(_expr(items[0].expr))

        def select_value(ctx: MessageContext) -> Value:
            result = only(ctx)
            return None if result is UNDEFINED else result
        return select_value
    count = len(items)
    plan: list[tuple[str, Compiled] | None] = []  # None: the wildcard
    for position, item in enumerate(items, start=1):
        if isinstance(item.expr, Wildcard):
            plan.append(None)
        else:
            plan.append((item.alias or _default_name(item.expr, position),
                         compile_expression(item.expr)))

    def select(ctx: MessageContext) -> Value:
        selected: dict[str, Value] = {}
        for step in plan:
            if step is None:
                document = ctx.document
                if document is _NOT_JSON:
                    if count == 1:
                        return _RAW
                    continue
                if isinstance(document, dict):
                    selected.update(document)
                elif count == 1:
                    return document
                continue
            name, run = step
            result = run(ctx)
            if result is not UNDEFINED:
                selected[name] = result
        return selected
    return select


def _expr(expr: Expr | Wildcard) -> Expr:
    assert not isinstance(expr, Wildcard)
    return expr


def _subquery(query: Subquery) -> Compiled:
    source = compile_expression(query.source)
    where = None if query.where is None else compile_expression(query.where)
    select = _select(query.items, query.value)

    def run(ctx: MessageContext) -> Value:
        elements = source(ctx)
        if isinstance(elements, dict):
            elements = [elements]
        if not isinstance(elements, list):
            return UNDEFINED
        results: list[Value] = []
        for element in elements:
            inner = dataclasses.replace(ctx, _document=element, _decoded=True)
            if where is not None and to_boolean(where(inner)) is not True:
                continue
            result = select(inner)
            if result is not None and result is not _RAW:
                results.append(result)
        return results
    return run


def compile_expression(expr: Expr | Wildcard) -> Compiled:
    """``expr`` as a function of the message (never raises for any message)."""
    if isinstance(expr, Literal):
        return _literal(expr.value)
    if isinstance(expr, Ref):
        return _ref(expr.name)
    if isinstance(expr, Field):
        return _field(compile_expression(expr.target), expr.name)
    if isinstance(expr, Index):
        target, index = compile_expression(expr.target), compile_expression(expr.index)
        return lambda ctx: get_member(target(ctx), index(ctx))
    if isinstance(expr, Binary):
        return _binary(expr.op, compile_expression(expr.left), compile_expression(expr.right))
    if isinstance(expr, Unary):
        return _unary(expr.op, compile_expression(expr.operand))
    if isinstance(expr, Call):
        return _call(expr.name, expr.args)
    if isinstance(expr, Cast):
        operand, type_name = compile_expression(expr.operand), expr.type_name
        return lambda ctx: cast_value(operand(ctx), type_name)
    if isinstance(expr, Case):
        return _case(expr)
    if isinstance(expr, ArrayLiteral):
        items = [compile_expression(item) for item in expr.items]
        return lambda ctx: [value for value in (item(ctx) for item in items)
                            if value is not UNDEFINED]
    if isinstance(expr, ObjectLiteral):
        members = [(key, compile_expression(value)) for key, value in expr.items]

        def build(ctx: MessageContext) -> Value:
            built = {key: value(ctx) for key, value in members}
            return {key: value for key, value in built.items() if value is not UNDEFINED}
        return build
    if isinstance(expr, Subquery):
        return _subquery(expr)
    if isinstance(expr, Wildcard):
        return _wildcard
    raise TypeError(f"not an expression: {type(expr).__name__}")


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    """A statement ready to run: :meth:`evaluate` answers as :func:`._evaluate.evaluate`."""

    statement: Statement
    _where: Compiled | None
    _select: Callable[[MessageContext], Value]

    def evaluate(self, ctx: MessageContext) -> RuleOutput | None:
        where = self._where
        if where is not None and to_boolean(where(ctx)) is not True:
            return None
        output = self._select(ctx)
        if output is None:
            return None
        if output is _RAW:
            return RuleOutput(None, raw=ctx.payload)
        return RuleOutput(_finish(output, ctx))


def compile_statement(statement: Statement) -> CompiledStatement:
    """Compile ``statement`` once (when its rule is loaded)."""
    where = None if statement.where is None else compile_expression(statement.where)
    return CompiledStatement(statement, where, _select(statement.items, statement.value))
