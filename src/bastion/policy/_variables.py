"""Policy variables: tokenizing policy strings and resolving context keys.

Theory of operation
-------------------
A policy string (a resource ARN pattern or a condition value) is tokenized once, at compile
time, into :class:`Text` (literal policy text), :class:`Wildcard` (``*``/``?``, only where the
string is a pattern) and :class:`Variable` (``${name}``) tokens. ``${*}``, ``${?}`` and
``${$}`` are literal ``*``, ``?`` and ``$``. Under policy versions other than ``2012-10-17``
there are no variables: ``${…}`` is plain text (IAM convention).

When a request context is known, :func:`substitute` replaces each variable by its value,
producing :class:`Value` parts. A value is always literal: it can never act as a wildcard or
as an ARN separator. A variable stays *unsubstituted* — its ``${name}`` text is kept, as a
literal :class:`Value`, so it only matches that very text — when

* the context has no value for it (it is then reported as a missing context value),
* it names a multi-valued key (``….List``, ``iot:Certificate.AvailableKeys``),
* the value contains one of ``* $ + ? #`` — so a client id ``#`` or ``*`` can never widen a
  policy written as ``topic/${iot:ClientId}/…`` — or is longer than 1024 characters.

:func:`lookup` is the single place that knows which context field backs which key; condition
evaluation uses it too (condition keys see raw values — the substitution restrictions above
do not apply to them). Key names are case-insensitive, except the attribute name inside
``iot:Connection.Thing.Attributes[…]``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ._context import ALTERNATIVE_NAME_TYPES, CERTIFICATE_NAME_ATTRIBUTES, RequestContext

#: Substituted values containing one of these characters are not substituted.
FORBIDDEN_IN_VALUES = frozenset("*$+?#")
#: Substituted values longer than this are not substituted.
MAX_VALUE_LENGTH = 1024
#: Multi-valued certificate attributes are truncated to this many items.
MAX_CERTIFICATE_ARRAY_ITEMS = 5

_LITERAL_ESCAPES = {"*": "*", "?": "?", "$": "$"}


class Wildcard(enum.Enum):
    """A wildcard in a pattern: ``*`` (any run, possibly empty) or ``?`` (one character)."""

    ANY_RUN = "*"
    ANY_CHAR = "?"


@dataclass(frozen=True, slots=True)
class Text:
    """Literal text written in the policy."""

    text: str


@dataclass(frozen=True, slots=True)
class Variable:
    """A ``${name}`` policy variable (``raw`` is the text as written, braces included)."""

    name: str
    raw: str


@dataclass(frozen=True, slots=True)
class Value:
    """Literal text that came from substitution (a value, or an unsubstituted ``${…}``)."""

    text: str


Token = Text | Wildcard | Variable
Part = Text | Value | Wildcard


def tokenize(text: str, *, variables: bool, wildcards: bool) -> tuple[Token, ...]:
    """Split a policy string into tokens.

    :param text: the string as written in the policy.
    :param variables: whether ``${…}`` is a variable (policy version ``2012-10-17``).
    :param wildcards: whether ``*`` and ``?`` are wildcards (patterns) or literal text.
    :returns: the tokens; adjacent literal text is merged into one :class:`Text`.
    """
    tokens: list[Token] = []
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            tokens.append(Text("".join(buffer)))
            buffer.clear()

    i = 0
    while i < len(text):
        ch = text[i]
        if variables and text.startswith("${", i):
            end = text.find("}", i + 2)
            if end >= 0:
                name = text[i + 2 : end]
                if name in _LITERAL_ESCAPES:
                    buffer.append(_LITERAL_ESCAPES[name])
                else:
                    flush()
                    tokens.append(Variable(name, text[i : end + 1]))
                i = end + 1
                continue
        if wildcards and ch in "*?":
            flush()
            tokens.append(Wildcard(ch))
        else:
            buffer.append(ch)
        i += 1
    flush()
    return tuple(tokens)


def variable_names(tokens: Sequence[Token]) -> tuple[str, ...]:
    """The names of the variables among ``tokens``, in order."""
    return tuple(token.name for token in tokens if isinstance(token, Variable))


def substitution_value(name: str, context: RequestContext) -> str | None:
    """The text ``${name}`` is replaced with, or ``None`` when it stays unsubstituted."""
    return _substitutable(lookup(name, context))


def _substitutable(found: tuple[tuple[str, ...], bool] | None) -> str | None:
    if found is None:
        return None
    values, multi = found
    if multi or len(values) != 1:
        return None
    value = values[0]
    if len(value) > MAX_VALUE_LENGTH or not FORBIDDEN_IN_VALUES.isdisjoint(value):
        return None
    return value


def substitution(variable: Variable, context: RequestContext) -> tuple[str, bool]:
    """What ``variable`` becomes in ``context``.

    :returns: the literal text that replaces it (its value, or its own ``${…}`` text when it
        stays unsubstituted), and whether the context has no value for it (a missing context
        value).
    """
    found = lookup(variable.name, context)
    value = _substitutable(found)
    return (variable.raw if value is None else value), found is None


def substitute(
    tokens: Sequence[Token], context: RequestContext
) -> tuple[tuple[Part, ...], frozenset[str]]:
    """Resolve the variables of ``tokens`` against ``context`` (see :func:`substitution`).

    :returns: the parts (variables replaced by :class:`Value`) and the names of variables the
        context has no value for (missing context values).
    """
    parts: list[Part] = []
    missing: set[str] = set()
    for token in tokens:
        if isinstance(token, Variable):
            text, absent = substitution(token, context)
            if absent:
                missing.add(token.name)
            parts.append(Value(text))
        else:
            parts.append(token)
    return tuple(parts), frozenset(missing)


def literal_text(parts: Sequence[Part]) -> str | None:
    """The parts as one literal string, or ``None`` if they contain a wildcard."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, Wildcard):
            return None
        out.append(part.text)
    return "".join(out)


# --------------------------------------------------------------------------------------
# Context keys


def lookup(key: str, context: RequestContext) -> tuple[tuple[str, ...], bool] | None:
    """The value(s) of a condition key / policy variable in ``context``.

    :param key: the key as written (``"iot:ClientId"``, ``"iot:Certificate.Subject.Country.1"``).
    :returns: ``(values, multi_valued)``, or ``None`` when the context has no value (the key is
        *missing*). Single-valued keys return exactly one value.
    """
    lowered = key.lower()
    single = _SINGLE_KEYS.get(lowered)
    if single is not None:
        return _one(single(context))
    if lowered.startswith(_ATTRIBUTES_PREFIX) and key.endswith("]"):
        return _one(context.thing_attributes.get(key[len(_ATTRIBUTES_PREFIX) : -1]))
    if lowered.startswith(_CERTIFICATE_PREFIX):
        found = _certificate_key(key[len(_CERTIFICATE_PREFIX) :], context)
        if found is not None:
            return found
    return _extra_key(key, lowered, context.extra)


def _one(value: str | None) -> tuple[tuple[str, ...], bool] | None:
    return None if value is None else ((value,), False)


def _is_attached(context: RequestContext) -> str | None:
    if context.is_attached is None:
        return None
    return "true" if context.is_attached else "false"


_SINGLE_KEYS: dict[str, Callable[[RequestContext], str | None]] = {
    "iot:clientid": lambda c: c.client_id,
    "aws:sourceip": lambda c: c.source_ip,
    "iot:connection.thing.thingname": lambda c: c.thing_name,
    "iot:connection.thing.thingtypename": lambda c: c.thing_type_name,
    "iot:connection.thing.isattached": _is_attached,
    "iot:certificate.serialnumber": lambda c: c.certificate_serial_number,
    "iot:certificateid": lambda c: c.certificate_id,
}
_ATTRIBUTES_PREFIX = "iot:connection.thing.attributes["
_CERTIFICATE_PREFIX = "iot:certificate."
_NAME_ATTRIBUTES = {name.lower(): name for name in CERTIFICATE_NAME_ATTRIBUTES}
_ALT_NAMES = {name.lower(): name for name in ALTERNATIVE_NAME_TYPES}
_ALT_PREFIX = "alternativename."


def _certificate_key(rest: str, context: RequestContext) -> tuple[tuple[str, ...], bool] | None:
    lowered = rest.lower()
    if lowered == "availablekeys":
        keys = available_certificate_keys(context)
        return (keys, True) if keys else None
    for side, names, alt_names in (
        ("subject.", context.certificate_subject, context.subject_alternative_names),
        ("issuer.", context.certificate_issuer, context.issuer_alternative_names),
    ):
        if not lowered.startswith(side):
            continue
        attr_part = rest[len(side) :]
        if attr_part.lower().startswith(_ALT_PREFIX):
            source, vocabulary = alt_names, _ALT_NAMES
            attr_part = attr_part[len(_ALT_PREFIX) :]
        else:
            source, vocabulary = names, _NAME_ATTRIBUTES
        attr, _, suffix = attr_part.partition(".")
        canonical = vocabulary.get(attr.lower())
        if canonical is None:
            return None
        values = tuple(_ci_get(source, canonical))[:MAX_CERTIFICATE_ARRAY_ITEMS]
        if not suffix:
            return ((values[0],), False) if values else None
        if suffix.lower() == "list":
            return (values, True) if values else None
        if suffix.isascii() and suffix.isdigit():
            index = int(suffix)
            return ((values[index],), False) if index < len(values) else None
        return None
    return None


def available_certificate_keys(context: RequestContext) -> tuple[str, ...]:
    """``iot:Certificate.AvailableKeys``: the certificate variables that have a value."""
    keys: list[str] = []
    for side, names, alt_names in (
        ("Subject", context.certificate_subject, context.subject_alternative_names),
        ("Issuer", context.certificate_issuer, context.issuer_alternative_names),
    ):
        keys.extend(
            f"iot:Certificate.{side}.{attr}"
            for attr in CERTIFICATE_NAME_ATTRIBUTES
            if _ci_get(names, attr)
        )
        keys.extend(
            f"iot:Certificate.{side}.AlternativeName.{kind}"
            for kind in ALTERNATIVE_NAME_TYPES
            if _ci_get(alt_names, kind)
        )
    if context.certificate_serial_number is not None:
        keys.append("iot:Certificate.SerialNumber")
    return tuple(keys)


def _ci_get(mapping: Mapping[str, Sequence[str]], name: str) -> Sequence[str]:
    found = mapping.get(name)
    if found is not None:
        return found
    lowered = name.lower()
    for key, values in mapping.items():
        if key.lower() == lowered:
            return values
    return ()


def _extra_key(
    key: str, lowered: str, extra: Mapping[str, str | Sequence[str]]
) -> tuple[tuple[str, ...], bool] | None:
    found = extra.get(key)
    if found is None:
        for name, values in extra.items():
            if name.lower() == lowered:
                found = values
                break
    if found is None:
        return None
    if isinstance(found, str):
        return ((found,), False)
    return (tuple(found), True) if found else None
