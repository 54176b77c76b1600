"""Substitution templates: ``${expression}`` in an action's parameters.

``alerts/${topic(2)}/${upper(level)}`` is text with expressions in it. Each expression is
AWS IoT SQL, parsed when the rule is created (a bad one is the caller's
``SqlParseException``) and evaluated, when the rule runs, against the message the rule
received (not the SELECT's result), as AWS does. An Undefined value renders as the empty
string; a string as itself; anything else as its JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._ast import Expr
from ._errors import SqlParseError
from ._evaluate import MessageContext, evaluate_expression
from ._parse import parse_expression
from ._values import to_text


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text and expressions, in order."""

    source: str
    parts: tuple[str | Expr, ...]

    @property
    def is_constant(self) -> bool:
        return all(isinstance(part, str) for part in self.parts)

    def render(self, ctx: MessageContext) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(to_text(evaluate_expression(part, ctx)) or "")
        return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """The index of the ``}`` that ends the expression starting at ``start`` (quotes and
    nested braces skipped), or -1."""
    depth = 0
    quote: str | None = None
    index = start
    while index < len(text):
        char = text[index]
        if quote is not None:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "'\"`":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index
            depth -= 1
        index += 1
    return -1


def parse_template(text: str) -> Template:
    """Parse ``text``.

    :raises SqlParseError: an expression does not parse, or a ``${`` is not closed.
    """
    parts: list[str | Expr] = []
    position = 0
    while True:
        start = text.find("${", position)
        if start < 0:
            if position < len(text):
                parts.append(text[position:])
            return Template(text, tuple(parts))
        if start > position:
            parts.append(text[position:start])
        end = _closing_brace(text, start + 2)
        if end < 0:
            raise SqlParseError(f"the template {text!r} opens ${{ at offset {start} and "
                                "never closes it", offset=start)
        try:
            parts.append(parse_expression(text[start + 2:end]))
        except SqlParseError as error:
            raise SqlParseError(f"in the template {text!r}: {error.message}",
                                offset=start + 2 + error.offset) from None
        position = end + 1
