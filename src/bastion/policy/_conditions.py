"""Condition operators: their vocabulary, value validation and evaluation.

Theory of operation
-------------------
IAM semantics, as AWS IoT applies them:

* All conditions of a statement must hold (AND) — across operators and across keys.
* The policy values of one condition are ORed; for a *negated* operator (``StringNotEquals``,
  ``NotIpAddress``, ``ArnNotLike``, …) the condition holds when the request value matches
  *none* of them (NOR).
* The request side of a key may hold several values (``iot:Certificate.Subject.X.List``,
  multi-valued ``extra`` keys). Without a set qualifier a positive operator needs one request
  value to match, a negated one needs every request value to match none. ``ForAnyValue:``
  needs the per-value test to hold for at least one request value, ``ForAllValues:`` for
  all of them.
* A key absent from the request context: the condition is false for positive operators and
  **true for negated ones** (IAM: "if the key is not present and the operator requires it not
  to match, the condition is true"); ``…IfExists`` makes it true; ``ForAllValues:`` is true
  and ``ForAnyValue:`` false on an absent/empty key; ``Null`` tests exactly that absence.
  Absent keys are reported as missing context values.
* Policy values may contain policy variables (substituted like resources); ``StringLike``,
  ``StringNotLike`` and the ``Arn*`` operators treat ``*``/``?`` as wildcards (``ArnEquals``
  behaves like ``ArnLike``, as in IAM). A policy value that does not parse for its operator
  (after substitution) matches nothing; a request value that does not parse matches nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ._context import RequestContext
from ._errors import MalformedPolicyError
from ._match import arn_match, atoms, glob_match
from ._model import Condition, SetQualifier
from ._variables import Part, Token, Variable, literal_text, lookup, substitute, tokenize

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_EPOCH = re.compile(r"-?\d+")


def _parse_number(text: str) -> Decimal | None:
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        return None


def _parse_date(text: str) -> datetime | None:
    try:
        if _EPOCH.fullmatch(text):
            return datetime.fromtimestamp(int(text), tz=UTC)
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_network(text: str) -> _IPNetwork | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _parse_address(text: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _parse_bool(text: str) -> str | None:
    lowered = text.lower()
    return lowered if lowered in ("true", "false") else None


@dataclass(frozen=True, slots=True)
class _Operator:
    """How one base operator prepares policy values and compares a request value."""

    negated: bool
    wildcards: bool
    #: policy parts (after substitution) → prepared value, or None if unusable.
    prepare: Callable[[tuple[Part, ...]], Any]
    #: (request value, prepared policy value) → match?
    compare: Callable[[str, Any], bool]
    #: parse-time check of a variable-free policy value; None if any string is fine.
    check: Callable[[str], object] | None = None
    kind: str = "string"


def _text(parts: tuple[Part, ...]) -> str | None:
    return literal_text(parts)


def _folded(parts: tuple[Part, ...]) -> str | None:
    text = literal_text(parts)
    return None if text is None else text.casefold()


def _with_text(parse: Callable[[str], Any]) -> Callable[[tuple[Part, ...]], Any]:
    def prepare(parts: tuple[Part, ...]) -> Any:
        text = literal_text(parts)
        return None if text is None else parse(text)

    return prepare


def _numeric(test: Callable[[Decimal, Decimal], bool]) -> Callable[[str, Any], bool]:
    def compare(request: str, policy: Any) -> bool:
        value = _parse_number(request)
        return value is not None and policy is not None and test(value, policy)

    return compare


def _dated(test: Callable[[datetime, datetime], bool]) -> Callable[[str, Any], bool]:
    def compare(request: str, policy: Any) -> bool:
        value = _parse_date(request)
        return value is not None and policy is not None and test(value, policy)

    return compare


def _in_network(request: str, policy: Any) -> bool:
    address = _parse_address(request)
    return address is not None and policy is not None and address in policy


def _string_op(negated: bool, *, fold: bool = False) -> _Operator:
    if fold:
        return _Operator(
            negated, False, _folded, lambda r, p: p is not None and r.casefold() == p
        )
    return _Operator(negated, False, _text, lambda r, p: p is not None and r == p)


def _like_op(negated: bool) -> _Operator:
    return _Operator(negated, True, atoms, lambda r, p: glob_match(p, r))


def _arn_op(negated: bool) -> _Operator:
    return _Operator(negated, True, lambda parts: parts, lambda r, p: arn_match(p, r))


def _numeric_op(negated: bool, test: Callable[[Decimal, Decimal], bool]) -> _Operator:
    return _Operator(
        negated, False, _with_text(_parse_number), _numeric(test), _parse_number, "number"
    )


def _date_op(negated: bool, test: Callable[[datetime, datetime], bool]) -> _Operator:
    return _Operator(negated, False, _with_text(_parse_date), _dated(test), _parse_date, "date")


_OPERATORS: dict[str, _Operator] = {
    "StringEquals": _string_op(False),
    "StringNotEquals": _string_op(True),
    "StringEqualsIgnoreCase": _string_op(False, fold=True),
    "StringNotEqualsIgnoreCase": _string_op(True, fold=True),
    "StringLike": _like_op(False),
    "StringNotLike": _like_op(True),
    "NumericEquals": _numeric_op(False, lambda r, p: r == p),
    "NumericNotEquals": _numeric_op(True, lambda r, p: r == p),
    "NumericLessThan": _numeric_op(False, lambda r, p: r < p),
    "NumericLessThanEquals": _numeric_op(False, lambda r, p: r <= p),
    "NumericGreaterThan": _numeric_op(False, lambda r, p: r > p),
    "NumericGreaterThanEquals": _numeric_op(False, lambda r, p: r >= p),
    "DateEquals": _date_op(False, lambda r, p: r == p),
    "DateNotEquals": _date_op(True, lambda r, p: r == p),
    "DateLessThan": _date_op(False, lambda r, p: r < p),
    "DateLessThanEquals": _date_op(False, lambda r, p: r <= p),
    "DateGreaterThan": _date_op(False, lambda r, p: r > p),
    "DateGreaterThanEquals": _date_op(False, lambda r, p: r >= p),
    "Bool": _Operator(
        False,
        False,
        _with_text(_parse_bool),
        lambda r, p: p is not None and r.lower() == p,
        _parse_bool,
        "boolean",
    ),
    "BinaryEquals": _string_op(False),
    "IpAddress": _Operator(
        False, False, _with_text(_parse_network), _in_network, _parse_network, "IP address"
    ),
    "NotIpAddress": _Operator(
        True, False, _with_text(_parse_network), _in_network, _parse_network, "IP address"
    ),
    "ArnEquals": _arn_op(False),
    "ArnLike": _arn_op(False),
    "ArnNotEquals": _arn_op(True),
    "ArnNotLike": _arn_op(True),
}
_NULL = "Null"

#: Every base operator name (without qualifier or ``IfExists``).
CONDITION_OPERATORS: frozenset[str] = frozenset(_OPERATORS) | {_NULL}


def parse_operator(text: str, path: str) -> tuple[str, SetQualifier | None, bool]:
    """Split an operator as written into ``(base, qualifier, if_exists)``.

    :raises MalformedPolicyError: unknown qualifier or operator, or ``Null`` with a qualifier
        or ``IfExists``.
    """
    qualifier: SetQualifier | None = None
    base = text
    if ":" in text:
        prefix, _, base = text.partition(":")
        try:
            qualifier = SetQualifier(prefix)
        except ValueError:
            raise MalformedPolicyError(
                f'unknown condition set qualifier "{prefix}" in "{text}" '
                '(expected "ForAnyValue" or "ForAllValues")',
                path,
            ) from None
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    if base not in CONDITION_OPERATORS:
        raise MalformedPolicyError(f'unknown condition operator "{text}"', path)
    if base == _NULL and (qualifier is not None or if_exists):
        raise MalformedPolicyError(
            f'condition operator "{text}": Null takes no set qualifier and no IfExists', path
        )
    return base, qualifier, if_exists


def check_value(base_operator: str, value: str, path: str) -> None:
    """Parse-time check of one policy value of a condition.

    Values containing a ``${`` (possible policy variable) are checked at evaluation time.

    :raises MalformedPolicyError: the value cannot be a valid operand of the operator.
    """
    if base_operator == _NULL:
        if value.lower() not in ("true", "false"):
            raise MalformedPolicyError(
                f'Null condition value must be "true" or "false", got "{value}"', path
            )
        return
    operator = _OPERATORS[base_operator]
    if operator.check is None or "${" in value:
        return
    if operator.check(value) is None:
        raise MalformedPolicyError(
            f'{base_operator} condition value "{value}" is not a valid {operator.kind}', path
        )


class CompiledCondition:
    """A condition with its policy values tokenized — and, when they hold no variables,
    prepared for its operator — once, ahead of evaluation. Evaluation only depends on the
    request context; see the module docs for the rules."""

    __slots__ = ("_condition", "_operator", "_prepared", "_tokens")

    def __init__(self, condition: Condition, *, variables: bool) -> None:
        """:param variables: whether policy values may contain variables (document version)."""
        self._condition = condition
        self._operator = (
            None if condition.base_operator == _NULL else _OPERATORS[condition.base_operator]
        )
        self._tokens: tuple[tuple[Token, ...], ...] = ()
        self._prepared: tuple[Any, ...] | None = None
        operator = self._operator
        if operator is None:  # Null
            return
        self._tokens = tuple(
            tokenize(value, variables=variables, wildcards=operator.wildcards)
            for value in condition.values
        )
        if not any(isinstance(t, Variable) for tokens in self._tokens for t in tokens):
            self._prepared = tuple(
                operator.prepare(tuple(t for t in tokens if not isinstance(t, Variable)))
                for tokens in self._tokens
            )

    def evaluate(self, context: RequestContext) -> tuple[bool, frozenset[str]]:
        """:returns: whether the condition holds in ``context``, and the context keys /
        variables it found missing."""
        condition = self._condition
        found = lookup(condition.key, context)
        request_values: Sequence[str] = found[0] if found is not None else ()
        operator = self._operator
        if operator is None:  # Null
            present = bool(request_values)
            return any((v.lower() == "true") != present for v in condition.values), frozenset()
        missing: set[str] = set()
        if not request_values:
            missing.add(condition.key)
            if condition.if_exists or condition.qualifier is SetQualifier.FOR_ALL_VALUES:
                return True, frozenset(missing)
            if condition.qualifier is SetQualifier.FOR_ANY_VALUE:
                return False, frozenset(missing)
            return operator.negated, frozenset(missing)
        prepared = self._prepared
        if prepared is None:
            prepared_values = []
            for tokens in self._tokens:
                parts, absent = substitute(tokens, context)
                missing |= absent
                prepared_values.append(operator.prepare(parts))
            prepared = tuple(prepared_values)
        per_value = [
            any(operator.compare(r, p) for p in prepared) != operator.negated
            for r in request_values
        ]
        if condition.qualifier is SetQualifier.FOR_ANY_VALUE:
            holds = any(per_value)
        elif condition.qualifier is SetQualifier.FOR_ALL_VALUES:
            holds = all(per_value)
        else:
            holds = all(per_value) if operator.negated else any(per_value)
        return holds, frozenset(missing)


def evaluate_condition(
    condition: Condition, context: RequestContext, *, variables: bool
) -> tuple[bool, frozenset[str]]:
    """Evaluate one condition against ``context`` (see the module docs for the rules).

    :param variables: whether policy values may contain variables (document version).
    :returns: whether it holds, and the context keys / variables it found missing.
    """
    return CompiledCondition(condition, variables=variables).evaluate(context)


def evaluate_conditions(
    conditions: Sequence[Condition], context: RequestContext, *, variables: bool
) -> tuple[bool, frozenset[str]]:
    """Evaluate all conditions of a statement (AND). Every condition is evaluated — there is
    no short-circuit — so the set of missing context values is complete and deterministic.
    """
    return evaluate_compiled(
        [CompiledCondition(c, variables=variables) for c in conditions], context
    )


def evaluate_compiled(
    conditions: Sequence[CompiledCondition], context: RequestContext
) -> tuple[bool, frozenset[str]]:
    """:func:`evaluate_conditions` for conditions compiled ahead of time."""
    holds = True
    missing: frozenset[str] = frozenset()
    for condition in conditions:
        result, absent = condition.evaluate(context)
        holds = holds and result
        missing |= absent
    return holds, missing
