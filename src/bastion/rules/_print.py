"""Statement → SQL text that :func:`~._parse.parse` reads back as the same tree.

Every operand that is itself an operation is parenthesized, so the printed text never
depends on precedence; attribute names that are keywords or not plain identifiers are
written in backticks.
"""

from __future__ import annotations

import re

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
from ._parse import KEYWORDS, quote_string

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def name_sql(name: str) -> str:
    """An attribute name or alias as SQL.

    :raises ValueError: the name contains a backtick (no SQL spelling for it).
    """
    if _PLAIN_NAME.fullmatch(name) and name.lower() not in KEYWORDS:
        return name
    if "`" in name or not name:
        raise ValueError(f"{name!r} cannot be written as an attribute name")
    return f"`{name}`"


def _literal(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, float):
        text = repr(value)
        return text if ("e" in text or "." in text) else text + ".0"
    return str(value)


def _operand(expr: Expr | Wildcard) -> str:
    text = expression_sql(expr)
    if isinstance(expr, (Binary, Unary)):
        return f"({text})"
    return text


def expression_sql(expr: Expr | Wildcard) -> str:
    """One expression (or ``*``) as SQL."""
    if isinstance(expr, Literal):
        return _literal(expr.value)
    if isinstance(expr, Ref):
        return name_sql(expr.name)
    if isinstance(expr, Wildcard):
        return "*"
    if isinstance(expr, Field):
        return f"{_target(expr.target)}.{name_sql(expr.name)}"
    if isinstance(expr, Index):
        return f"{_target(expr.target)}[{expression_sql(expr.index)}]"
    if isinstance(expr, Unary):
        if expr.op == "NOT":
            return f"NOT {_operand(expr.operand)}"
        return f"-{_operand(expr.operand)}"
    if isinstance(expr, Binary):
        return f"{_operand(expr.left)} {expr.op} {_operand(expr.right)}"
    if isinstance(expr, Call):
        return f"{expr.name}({', '.join(expression_sql(arg) for arg in expr.args)})"
    if isinstance(expr, Subquery):
        if expr.value:
            parts = ["(SELECT VALUE", expression_sql(expr.items[0].expr)]
        else:
            parts = ["(SELECT", ", ".join(_item(item) for item in expr.items)]
        parts += ["FROM", expression_sql(expr.source)]
        if expr.where is not None:
            parts += ["WHERE", expression_sql(expr.where)]
        return " ".join(parts) + ")"
    if isinstance(expr, Cast):
        return f"cast({expression_sql(expr.operand)} AS {expr.type_name})"
    if isinstance(expr, Case):
        parts = ["CASE"]
        if expr.operand is not None:
            parts.append(_operand(expr.operand))
        for when, then in expr.whens:
            parts += ["WHEN", _operand(when), "THEN", _operand(then)]
        if expr.default is not None:
            parts += ["ELSE", _operand(expr.default)]
        parts.append("END")
        return " ".join(parts)
    if isinstance(expr, ArrayLiteral):
        return "[" + ", ".join(expression_sql(item) for item in expr.items) + "]"
    if isinstance(expr, ObjectLiteral):
        return "{" + ", ".join(f"{quote_string(key)}: {expression_sql(value)}"
                               for key, value in expr.items) + "}"
    raise TypeError(f"not an expression: {type(expr).__name__}")


def _target(expr: Expr) -> str:
    """The left side of ``.name`` or ``[index]``: parenthesized unless it binds tighter."""
    text = expression_sql(expr)
    if isinstance(expr, (Ref, Field, Index, Call, Cast, ArrayLiteral, ObjectLiteral,
                         Subquery)):
        return text
    if isinstance(expr, Literal) and isinstance(expr.value, str):
        return text
    return f"({text})"


def _item(item: SelectItem) -> str:
    text = expression_sql(item.expr)
    return text if item.alias is None else f"{text} AS {name_sql(item.alias)}"


def statement_sql(statement: Statement) -> str:
    """The whole statement as SQL."""
    if statement.value:
        parts = ["SELECT VALUE", expression_sql(statement.items[0].expr)]
    else:
        parts = ["SELECT", ", ".join(_item(item) for item in statement.items)]
    if statement.topic_filter is not None:
        parts += ["FROM", quote_string(statement.topic_filter)]
    if statement.where is not None:
        parts += ["WHERE", expression_sql(statement.where)]
    return " ".join(parts)
