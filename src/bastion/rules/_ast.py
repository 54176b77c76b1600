"""The parsed form of an AWS IoT SQL statement: frozen values, compared by value.

The parser (:mod:`._parse`) builds these, the printer (:mod:`._print`) turns them back
into text, and the evaluator (:mod:`._evaluate`) runs them against a message. Operators
are kept in one spelling (``<>`` for ``!=`` too; ``AND``, ``OR``, ``NOT``, ``IN`` in
upper case; function names in lower case), so that two spellings of one statement parse
to the same tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

LiteralValue: TypeAlias = None | bool | int | float | str


@dataclass(frozen=True, slots=True)
class Literal:
    """``'text'``, ``12``, ``1.5``, ``true``, ``false``, ``null``."""

    value: LiteralValue


@dataclass(frozen=True, slots=True)
class Ref:
    """A top-level attribute of the payload: ``temperature``."""

    name: str


@dataclass(frozen=True, slots=True)
class Field:
    """An attribute of an object: ``state.reported``."""

    target: Expr
    name: str


@dataclass(frozen=True, slots=True)
class Index:
    """An element of an array: ``readings[0]``."""

    target: Expr
    index: Expr


@dataclass(frozen=True, slots=True)
class Unary:
    """``-x`` or ``NOT x``."""

    op: str
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    """``+ - * / %``, ``= <> < <= > >=``, ``AND``, ``OR``, ``IN``."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Wildcard:
    """``*``: the whole payload (a select item, or a function argument as in
    ``encode(*, 'base64')``)."""


@dataclass(frozen=True, slots=True)
class Call:
    """A function call; ``name`` is lower case."""

    name: str
    args: tuple[Expr | Wildcard, ...]


@dataclass(frozen=True, slots=True)
class Cast:
    """``cast(operand AS Int)``; ``type_name`` is one of :data:`CAST_TYPES`."""

    operand: Expr
    type_name: str


CAST_TYPES = ("Int", "Decimal", "Boolean", "String")


@dataclass(frozen=True, slots=True)
class Case:
    """``CASE [operand] WHEN w THEN t ... [ELSE d] END``. Without an operand each ``WHEN``
    is a condition; with one, each is a value compared with it."""

    operand: Expr | None
    whens: tuple[tuple[Expr, Expr], ...]
    default: Expr | None


@dataclass(frozen=True, slots=True)
class ArrayLiteral:
    """``[1, 'two', x]``."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class ObjectLiteral:
    """``{'a': 1, 'b': x}``."""

    items: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True, slots=True)
class Subquery:
    """A nested object query: ``(SELECT [VALUE] items FROM source [WHERE condition])``.
    ``source`` is an expression of the enclosing query (an array, or an object taken as
    an array of one); items and condition read each of its elements. The value is the
    array of the elements' results (SQL version 2016-03-23 and later)."""

    items: tuple[SelectItem, ...]
    source: Expr
    where: Expr | None = None
    value: bool = False


Expr: TypeAlias = (Literal | Ref | Field | Index | Unary | Binary | Call | Cast | Case
                   | ArrayLiteral | ObjectLiteral | Subquery)


@dataclass(frozen=True, slots=True)
class SelectItem:
    """One item of the SELECT list: ``*`` or an expression, with an optional alias."""

    expr: Expr | Wildcard
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class Statement:
    """``SELECT [VALUE] items [FROM 'filter'] [WHERE condition]``.

    :ivar value: ``SELECT VALUE expr``: the result is the expression's value itself, not
        an object of the items.
    :ivar topic_filter: the FROM clause's MQTT topic filter; ``None`` for a rule that
        only Basic Ingest (``$aws/rules/<name>/...``) triggers.
    """

    items: tuple[SelectItem, ...]
    topic_filter: str | None
    where: Expr | None = None
    value: bool = False


def walk(node: Statement | SelectItem | Expr | Wildcard) -> Iterator[Expr | Wildcard]:
    """Every expression in ``node`` (itself included when it is one), depth first."""
    if isinstance(node, Statement):
        for item in node.items:
            yield from walk(item)
        if node.where is not None:
            yield from walk(node.where)
        return
    if isinstance(node, SelectItem):
        yield from walk(node.expr)
        return
    yield node
    children: list[Expr | Wildcard] = []
    if isinstance(node, (Field, Index)):
        children.append(node.target)
        if isinstance(node, Index):
            children.append(node.index)
    elif isinstance(node, Unary):
        children.append(node.operand)
    elif isinstance(node, Binary):
        children += [node.left, node.right]
    elif isinstance(node, Call):
        children += node.args
    elif isinstance(node, Cast):
        children.append(node.operand)
    elif isinstance(node, Case):
        children += [part for pair in node.whens for part in pair]
        children += [part for part in (node.operand, node.default) if part is not None]
    elif isinstance(node, ArrayLiteral):
        children += node.items
    elif isinstance(node, ObjectLiteral):
        children += [value for _, value in node.items]
    elif isinstance(node, Subquery):
        children += [item.expr for item in node.items]
        children.append(node.source)
        if node.where is not None:
            children.append(node.where)
    for child in children:
        yield from walk(child)
