"""The functions an AWS IoT SQL statement may call, and the ones it may not.

Each function takes the evaluation context and its evaluated arguments and returns a
value; given arguments of the wrong kind it returns :data:`~._values.UNDEFINED`, as AWS
documents, and never raises. Arity is checked when the statement is parsed
(:func:`check_call`), so a rule that was created never meets an unknown function at run
time. Functions that call other AWS services (``aws_lambda``, ``get_thing_shadow``,
``get_secret``, …) are refused at parse time with :class:`~._errors.UnsupportedSqlError`.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import hashlib
import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ._ast import Call
from ._errors import UnsupportedSqlError
from ._time import format_millis, parse_to_millis
from ._values import UNDEFINED, MqttProperties, Value, is_number, to_number, to_text


class CallContext(Protocol):
    """What a function may know about the message being evaluated."""

    topic: str
    client_id: str | None
    principal: str | None
    timestamp_ms: int
    payload: bytes
    properties: MqttProperties


@dataclass(frozen=True, slots=True)
class _Function:
    low: int
    high: int | None  # None: any number of arguments from ``low``
    run: Callable[[CallContext, list[Value]], Value]


UNSUPPORTED = frozenset({
    "aws_lambda", "get_thing_shadow", "get_secret", "get_dynamodb", "get_registry_data",
    "machinelearning_predict",
})
"""AWS IoT SQL functions that call AWS services Bastion does not have."""


def _number_fn(fn: Callable[[float], float | int]) -> Callable[[CallContext, list[Value]], Value]:
    def run(ctx: CallContext, args: list[Value]) -> Value:
        number = to_number(args[0])
        if number is None:
            return UNDEFINED
        try:
            result = fn(number)
        except (ValueError, OverflowError, ZeroDivisionError):
            return UNDEFINED
        if isinstance(result, float) and not math.isfinite(result):
            return UNDEFINED
        return result
    return run


def _round(number: float) -> int:
    return math.floor(abs(number) + 0.5) * (1 if number >= 0 else -1)


def _sign(number: float) -> int:
    return 0 if number == 0 else (1 if number > 0 else -1)


def _abs(number: float) -> float | int:
    return abs(number)


def _power(ctx: CallContext, args: list[Value]) -> Value:
    base, exponent = to_number(args[0]), to_number(args[1])
    if base is None or exponent is None:
        return UNDEFINED
    try:
        result = math.pow(base, exponent)
    except (ValueError, OverflowError):
        return UNDEFINED
    return result if math.isfinite(result) else UNDEFINED


def _mod(ctx: CallContext, args: list[Value]) -> Value:
    return modulo(args[0], args[1])


def modulo(left: Value, right: Value) -> Value:
    """``%`` and ``mod()``: the remainder with the dividend's sign (as Java's, AWS's)."""
    a, b = to_number(left), to_number(right)
    if a is None or b is None or b == 0:
        return UNDEFINED
    if isinstance(a, int) and isinstance(b, int):
        return int(math.fmod(a, b)) if abs(a) < 2**53 else a - b * int(a / b)
    return math.fmod(a, b)


def _text_fn(fn: Callable[[str], Value]) -> Callable[[CallContext, list[Value]], Value]:
    def run(ctx: CallContext, args: list[Value]) -> Value:
        value = args[0]
        if not isinstance(value, str):
            return UNDEFINED
        return fn(value)
    return run


def _concat(ctx: CallContext, args: list[Value]) -> Value:
    if any(arg is UNDEFINED for arg in args):
        return UNDEFINED
    if all(isinstance(arg, list) for arg in args):
        joined: list[Value] = []
        for arg in args:
            joined.extend(arg)
        return joined
    texts = [to_text(arg) for arg in args]
    return "".join(text for text in texts if text is not None)


def _length(ctx: CallContext, args: list[Value]) -> Value:
    value = args[0]
    if isinstance(value, (str, list)):
        return len(value)
    return UNDEFINED


def _substring(ctx: CallContext, args: list[Value]) -> Value:
    text = args[0]
    start = to_number(args[1])
    if not isinstance(text, str) or start is None:
        return UNDEFINED
    begin = max(0, min(len(text), int(start)))
    if len(args) == 2:
        return text[begin:]
    end_number = to_number(args[2])
    if end_number is None:
        return UNDEFINED
    end = max(begin, min(len(text), int(end_number)))
    return text[begin:end]


def _strings(count: int, fn: Callable[..., Value]) -> Callable[[CallContext, list[Value]], Value]:
    def run(ctx: CallContext, args: list[Value]) -> Value:
        if not all(isinstance(arg, str) for arg in args[:count]):
            return UNDEFINED
        return fn(*args[:count])
    return run


def _regex(fn: Callable[..., Value]) -> Callable[..., Value]:
    def run(*args: str) -> Value:
        try:
            return fn(*args)
        except (re.error, IndexError):
            return UNDEFINED
    return run


def _regexp_substr(text: str, pattern: str) -> Value:
    found = re.search(pattern, text)
    return found.group(0) if found else ""


def _kind(test: Callable[[Value], bool]) -> Callable[[CallContext, list[Value]], Value]:
    def run(ctx: CallContext, args: list[Value]) -> Value:
        return test(args[0])
    return run


def _topic(ctx: CallContext, args: list[Value]) -> Value:
    if not args:
        return ctx.topic
    position = to_number(args[0])
    if not isinstance(position, int) or isinstance(position, bool) or position < 1:
        return UNDEFINED
    levels = ctx.topic.split("/")
    return levels[position - 1] if position <= len(levels) else UNDEFINED


def _clientid(ctx: CallContext, args: list[Value]) -> Value:
    return ctx.client_id if ctx.client_id is not None else "n/a"


def _principal(ctx: CallContext, args: list[Value]) -> Value:
    return ctx.principal if ctx.principal is not None else UNDEFINED


def _timestamp(ctx: CallContext, args: list[Value]) -> Value:
    return ctx.timestamp_ms


def _newuuid(ctx: CallContext, args: list[Value]) -> Value:
    return str(uuid.uuid4())


def _get(ctx: CallContext, args: list[Value]) -> Value:
    return get_member(args[0], args[1])


def get_member(container: Value, key: Value) -> Value:
    """``get(container, key)`` and ``container[key]``: an object's attribute by name, an
    array's element by 0-based position; Undefined when there is none."""
    if isinstance(container, dict) and isinstance(key, str):
        return container.get(key, UNDEFINED)
    if isinstance(container, list):
        position = to_number(key) if not isinstance(key, bool) else None
        if isinstance(position, float) and position.is_integer():
            position = int(position)
        if isinstance(position, int) and 0 <= position < len(container):
            return container[position]
    return UNDEFINED


def _encode(ctx: CallContext, args: list[Value]) -> Value:
    value, scheme = args
    if not isinstance(scheme, str) or scheme.lower() != "base64":
        return UNDEFINED
    if isinstance(value, bytes):
        data = value
    else:
        text = to_text(value)
        if text is None:
            return UNDEFINED
        data = text.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def _decode(ctx: CallContext, args: list[Value]) -> Value:
    value, scheme = args
    if not isinstance(value, str) or not isinstance(scheme, str) \
            or scheme.lower() != "base64":
        return UNDEFINED
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return UNDEFINED


def _digest(name: str) -> Callable[[CallContext, list[Value]], Value]:
    def run(ctx: CallContext, args: list[Value]) -> Value:
        value = args[0]
        data = value if isinstance(value, bytes) else None
        if data is None:
            text = to_text(value)
            if text is None:
                return UNDEFINED
            data = text.encode("utf-8")
        return hashlib.new(name, data).hexdigest()
    return run


def _mqtt_property(ctx: CallContext, args: list[Value]) -> Value:
    """``get_mqtt_property(name)``: ``format_indicator`` (``UNSPECIFIED_BYTES`` or
    ``UTF8_DATA``), ``content_type``, ``response_topic``, ``correlation_data`` (base64);
    Undefined when the message does not carry it."""
    name = args[0]
    props = ctx.properties
    if name == "format_indicator":
        indicator = props.payload_format_indicator
        return UNDEFINED if indicator is None else (
            "UTF8_DATA" if indicator == 1 else "UNSPECIFIED_BYTES")
    if name == "content_type":
        return UNDEFINED if props.content_type is None else props.content_type
    if name == "response_topic":
        return UNDEFINED if props.response_topic is None else props.response_topic
    if name == "correlation_data":
        data = props.correlation_data
        return UNDEFINED if data is None else base64.b64encode(data).decode("ascii")
    return UNDEFINED


def _user_properties(ctx: CallContext, args: list[Value]) -> Value:
    """``get_user_properties(key)``: the values of every user property named ``key``, in
    order (an MQTT 5 message may repeat a key); an empty array when there is none."""
    key = args[0]
    if not isinstance(key, str):
        return UNDEFINED
    return [value for name, value in ctx.properties.user_properties if name == key]


def _parse_time(ctx: CallContext, args: list[Value]) -> Value:
    """``parse_time(pattern, millis[, zone])``: the moment as text (:mod:`._time`)."""
    pattern, millis = args[0], to_number(args[1])
    zone = args[2] if len(args) == 3 else "UTC"
    if not isinstance(pattern, str) or millis is None or not isinstance(zone, str):
        return UNDEFINED
    text = format_millis(pattern, int(millis), zone)
    return UNDEFINED if text is None else text


def _time_to_epoch(ctx: CallContext, args: list[Value]) -> Value:
    """``time_to_epoch(text, pattern)``: milliseconds after the epoch (:mod:`._time`)."""
    text, pattern = args
    if not isinstance(text, str) or not isinstance(pattern, str):
        return UNDEFINED
    millis = parse_to_millis(text, pattern)
    return UNDEFINED if millis is None else millis


def _whole(value: Value) -> int | None:
    """A number (or a string that spells one) rounded down to an Int; None otherwise."""
    number = to_number(value)
    if number is None or not math.isfinite(number):
        return None
    return math.floor(number)


def _bits(fn: Callable[..., int]) -> Callable[[CallContext, list[Value]], Value]:
    def run(ctx: CallContext, args: list[Value]) -> Value:
        numbers = [_whole(arg) for arg in args]
        if any(number is None for number in numbers):
            return UNDEFINED
        return fn(*numbers)
    return run


def _chr(ctx: CallContext, args: list[Value]) -> Value:
    code = _whole(args[0])
    return chr(code) if code is not None and 0 <= code < 128 else UNDEFINED


MAX_PAD = 1000
"""lpad and rpad add at most this many spaces (AWS's bound); more gives Undefined."""


def _pad(left: bool) -> Callable[[CallContext, list[Value]], Value]:
    def run(ctx: CallContext, args: list[Value]) -> Value:
        text, count = to_text(args[0]), _whole(args[1])
        if text is None or count is None or not 0 <= count <= MAX_PAD:
            return UNDEFINED
        return " " * count + text if left else text + " " * count
    return run


def _nanvl(ctx: CallContext, args: list[Value]) -> Value:
    first = args[0]
    if first is UNDEFINED or first is None or (isinstance(first, float)
                                                and math.isnan(first)):
        return args[1]
    return first


def _numbytes(ctx: CallContext, args: list[Value]) -> Value:
    text = to_text(args[0])
    return UNDEFINED if text is None else len(text.encode("utf-8"))


def _trunc(ctx: CallContext, args: list[Value]) -> Value:
    number, places = to_number(args[0]), _whole(args[1])
    if number is None or places is None:
        return UNDEFINED
    if isinstance(number, int):
        return number
    if not math.isfinite(number):
        return UNDEFINED
    if number.is_integer():
        return int(number) if abs(number) < 2**53 else number
    places = max(0, min(34, places))
    # On the decimal digits the number prints as, so that trunc(2.88, 2) is 2.88 (in
    # binary, 2.88 * 100 is 287.99999999999997). A float with a fraction has at most 16
    # digits before the point: 64 digits of precision hold the 34 places after it.
    digits = decimal.Decimal(repr(number)).quantize(
        decimal.Decimal(1).scaleb(-places), rounding=decimal.ROUND_DOWN,
        context=decimal.Context(prec=64))
    truncated = float(digits)
    return int(truncated) if truncated.is_integer() else truncated


def _atan2(ctx: CallContext, args: list[Value]) -> Value:
    y, x = to_number(args[0]), to_number(args[1])
    if y is None or x is None:
        return UNDEFINED
    return math.atan2(y, x)


def _transform(ctx: CallContext, args: list[Value]) -> Value:
    """``transform('enrichArray', object, array)``: each object of ``array`` with the
    attributes of ``object`` added (the object's win); elements that are not objects
    are left out."""
    mode, extra, items = args
    if mode != "enrichArray" or not isinstance(extra, dict) or not isinstance(items, list):
        return UNDEFINED
    return [{**item, **extra} for item in items if isinstance(item, dict)]


def _rand(ctx: CallContext, args: list[Value]) -> Value:
    return random.random()


def _is_undefined(value: Value) -> bool:
    return value is UNDEFINED


_FUNCTIONS: dict[str, _Function] = {
    # numbers
    "abs": _Function(1, 1, _number_fn(_abs)),
    "ceil": _Function(1, 1, _number_fn(math.ceil)),
    "floor": _Function(1, 1, _number_fn(math.floor)),
    "round": _Function(1, 1, _number_fn(_round)),
    "sign": _Function(1, 1, _number_fn(_sign)),
    "sqrt": _Function(1, 1, _number_fn(math.sqrt)),
    "exp": _Function(1, 1, _number_fn(math.exp)),
    "ln": _Function(1, 1, _number_fn(math.log)),
    "log": _Function(1, 1, _number_fn(math.log10)),
    "power": _Function(2, 2, _power),
    "mod": _Function(2, 2, _mod),
    "remainder": _Function(2, 2, _mod),
    "trunc": _Function(2, 2, _trunc),
    "nanvl": _Function(2, 2, _nanvl),
    "rand": _Function(0, 0, _rand),
    "sin": _Function(1, 1, _number_fn(math.sin)),
    "cos": _Function(1, 1, _number_fn(math.cos)),
    "tan": _Function(1, 1, _number_fn(math.tan)),
    "asin": _Function(1, 1, _number_fn(math.asin)),
    "acos": _Function(1, 1, _number_fn(math.acos)),
    "atan": _Function(1, 1, _number_fn(math.atan)),
    "atan2": _Function(2, 2, _atan2),
    "sinh": _Function(1, 1, _number_fn(math.sinh)),
    "cosh": _Function(1, 1, _number_fn(math.cosh)),
    "tanh": _Function(1, 1, _number_fn(math.tanh)),
    "bitand": _Function(2, 2, _bits(lambda a, b: a & b)),
    "bitor": _Function(2, 2, _bits(lambda a, b: a | b)),
    "bitxor": _Function(2, 2, _bits(lambda a, b: a ^ b)),
    "bitnot": _Function(1, 1, _bits(lambda a: ~a)),
    # strings
    "concat": _Function(2, None, _concat),
    "chr": _Function(1, 1, _chr),
    "lpad": _Function(2, 2, _pad(left=True)),
    "rpad": _Function(2, 2, _pad(left=False)),
    "numbytes": _Function(1, 1, _numbytes),
    "transform": _Function(3, 3, _transform),
    "length": _Function(1, 1, _length),
    "lower": _Function(1, 1, _text_fn(str.lower)),
    "upper": _Function(1, 1, _text_fn(str.upper)),
    "trim": _Function(1, 1, _text_fn(str.strip)),
    "ltrim": _Function(1, 1, _text_fn(str.lstrip)),
    "rtrim": _Function(1, 1, _text_fn(str.rstrip)),
    "substring": _Function(2, 3, _substring),
    "startswith": _Function(2, 2, _strings(2, str.startswith)),
    "endswith": _Function(2, 2, _strings(2, str.endswith)),
    "replace": _Function(3, 3, _strings(3, str.replace)),
    "indexof": _Function(2, 2, _strings(2, str.find)),
    "regexp_matches": _Function(2, 2, _strings(2, _regex(
        lambda text, pattern: re.search(pattern, text) is not None))),
    "regexp_replace": _Function(3, 3, _strings(3, _regex(
        lambda text, pattern, repl: re.sub(pattern, repl, text)))),
    "regexp_substr": _Function(2, 2, _strings(2, _regex(_regexp_substr))),
    # kinds
    "isundefined": _Function(1, 1, _kind(_is_undefined)),
    "isnull": _Function(1, 1, _kind(lambda v: v is None)),
    "isstring": _Function(1, 1, _kind(lambda v: isinstance(v, str))),
    "isnumber": _Function(1, 1, _kind(is_number)),
    "isboolean": _Function(1, 1, _kind(lambda v: isinstance(v, bool))),
    "isarray": _Function(1, 1, _kind(lambda v: isinstance(v, list))),
    "isobject": _Function(1, 1, _kind(lambda v: isinstance(v, dict))),
    # the message
    "topic": _Function(0, 1, _topic),
    "clientid": _Function(0, 0, _clientid),
    "principal": _Function(0, 0, _principal),
    "timestamp": _Function(0, 0, _timestamp),
    "newuuid": _Function(0, 0, _newuuid),
    "get": _Function(2, 2, _get),
    "encode": _Function(2, 2, _encode),
    "decode": _Function(2, 2, _decode),
    "get_mqtt_property": _Function(1, 1, _mqtt_property),
    "get_user_properties": _Function(1, 1, _user_properties),
    "md5": _Function(1, 1, _digest("md5")),
    "sha1": _Function(1, 1, _digest("sha1")),
    "sha256": _Function(1, 1, _digest("sha256")),
    "sha512": _Function(1, 1, _digest("sha512")),
    # time
    "parse_time": _Function(2, 3, _parse_time),
    "time_to_epoch": _Function(2, 2, _time_to_epoch),
}

WILDCARD_FUNCTIONS = frozenset({"encode", "get", "md5", "sha1", "sha256", "sha512"})
"""Functions whose first argument may be ``*`` (the whole payload)."""

FUNCTION_NAMES = frozenset(_FUNCTIONS)


def check_call(call: Call) -> str | None:
    """Why ``call`` cannot be run (unknown function, wrong arity, ``*`` out of place), or
    ``None`` when it can.

    :raises UnsupportedSqlError: an AWS function Bastion does not offer.
    """
    from ._ast import Wildcard

    if call.name in UNSUPPORTED:
        raise UnsupportedSqlError(
            f"{call.name}() is not supported by Bastion: it calls an AWS service Bastion "
            "does not run; route the message with an action instead (see docs/rules.md)")
    function = _FUNCTIONS.get(call.name)
    if function is None:
        return f"unknown function {call.name}()"
    count = len(call.args)
    if count < function.low or (function.high is not None and count > function.high):
        if function.high is None:
            wanted = f"at least {function.low}"
        elif function.low == function.high:
            wanted = str(function.low)
        else:
            wanted = f"{function.low} to {function.high}"
        return f"{call.name}() takes {wanted} argument(s), not {count}"
    for position, arg in enumerate(call.args):
        if isinstance(arg, Wildcard) and (position != 0 or call.name not in WILDCARD_FUNCTIONS):
            return f"{call.name}() does not take * there"
    return None


def call_function(name: str, ctx: CallContext, args: list[Value]) -> Value:
    """Run a function :func:`check_call` accepted; wrong kinds of argument give Undefined."""
    return _FUNCTIONS[name].run(ctx, args)
