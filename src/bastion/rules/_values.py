"""The values an AWS IoT SQL expression works on, and AWS's conversions between them.

A value is a JSON value as Python reads it (``None``, ``bool``, ``int``, ``float``,
``str``, ``list``, ``dict``) or :data:`UNDEFINED`: what AWS calls *Undefined*, the result of
reading an attribute that is not there, of a function given the wrong arguments, of an
operator given operands it does not take. Undefined is not ``null``: ``{"a": null}`` has an
``a`` that is ``null`` and a ``b`` that is Undefined. A select item that is Undefined is left
out of the result, and a WHERE clause that is Undefined does not match.

Under SQL version 2016-03-23 a whole-number decimal (``10.0``) is an Int (``10``); under
2015-10-08 and beta it stays a Decimal (:func:`normalize_number`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final


class _Undefined:
    """The one Undefined value (falsy, equal only to itself)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = _Undefined()

Value = Any
"""A JSON value or :data:`UNDEFINED` (``Any``: JSON is recursive)."""


@dataclass(frozen=True, slots=True)
class MqttProperties:
    """The MQTT 5 properties of a message that a statement may read
    (``get_mqtt_property``, ``get_user_properties``)."""

    payload_format_indicator: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    user_properties: tuple[tuple[str, str], ...] = ()


NO_MQTT_PROPERTIES: Final = MqttProperties()


def is_number(value: Value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_number(value: Value) -> int | float | None:
    """AWS's conversion to a number: numbers as they are, a string that spells a number
    (``"-5.1"``), nothing else (booleans, null, arrays, objects, Undefined: ``None``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def to_boolean(value: Value) -> bool | None:
    """AWS's conversion for AND, OR, NOT and WHERE: a Boolean, or the strings "true" and
    "false" in any case; anything else is ``None``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    return None


def to_text(value: Value) -> str | None:
    """A value as a string (for string functions and substitution templates): strings as
    they are, other JSON values as their JSON text, Undefined as ``None``."""
    import json

    if value is UNDEFINED:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def normalize_number(value: Value, *, whole_decimals_are_ints: bool) -> Value:
    """``10.0`` → ``10`` under 2016-03-23 (see the module docstring)."""
    if (whole_decimals_are_ints and isinstance(value, float) and value.is_integer()
            and abs(value) < 1e21):
        return int(value)
    return value


def sql_equal(left: Value, right: Value) -> bool:
    """AWS's ``=`` once neither side is Undefined: numbers by value, everything else by
    type and value (``true`` is not ``1``; ``"1"`` is not ``1``)."""
    if is_number(left) and is_number(right):
        return bool(left == right)
    if type(left) is not type(right):
        if isinstance(left, (int, float)) and isinstance(right, (int, float)):
            return False  # a bool against a number
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(sql_equal(a, b) for a, b in zip(left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(sql_equal(left[k], right[k]) for k in left)
    return bool(left == right)


def cast_value(value: Value, type_name: str) -> Value:
    """``cast(value AS type_name)`` as AWS's conversion tables say: numbers, booleans and
    strings that spell them convert; Undefined, null, arrays and objects do not (except
    to String, where arrays and objects become their JSON text)."""
    if value is UNDEFINED or value is None:
        return UNDEFINED
    if type_name == "String":
        if isinstance(value, bool):
            return "true" if value else "false"
        return to_text(value)
    if isinstance(value, (list, dict)):
        return UNDEFINED
    if type_name == "Boolean":
        if isinstance(value, str):
            return to_boolean(value) if to_boolean(value) is not None else UNDEFINED
        return bool(value)
    number: int | float | None
    if isinstance(value, bool):
        number = 1 if value else 0
    else:
        number = to_number(value)
    if number is None:
        return UNDEFINED
    if type_name == "Int":
        try:
            return math.floor(number)
        except (OverflowError, ValueError):
            return UNDEFINED
    return float(number)  # Decimal
