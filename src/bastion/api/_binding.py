"""Request → operation parameters, driven by the operation's input shape.

Binding reads each member from where the model puts it (``location``): a path label
(``uri``), the query string (``querystring``; lists repeat the key, a map takes every
pair), a header (``header``; ``jsonvalue`` headers hold base64 of JSON) or a header
prefix (``headers``), the raw body (the ``payload`` member, when it is a blob or a
string), or the JSON body (every other member, keyed by its ``locationName``). Values are
converted to Python the way botocore's input looks: ``int``, ``float``, ``bool``,
``str``, ``bytes`` for blobs, timezone-aware ``datetime`` for timestamps, dicts and lists.
The result is keyed by member name, exactly like the ``**kwargs`` of a boto3 call.

Validation then checks the model's constraints — ``required``, ``enum``, ``pattern``
(full match, Java syntax translated), ``min``/``max`` (length of strings, blobs, lists and
maps; value of numbers) — and answers every violation at once, in AWS's words::

    400 InvalidRequestException
    1 validation error detected: Value 'bad name' at 'thingName' failed to satisfy
    constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import unquote

from botocore.model import ListShape, MapShape, OperationModel, Shape, StringShape, StructureShape

from ._errors import invalid_request
from ._nesting import loads_bounded

log = logging.getLogger("bastion.api")

Params = dict[str, Any]
HeaderLookup = Callable[[str], str | None]

MAX_REPORTED_ERRORS: Final = 10
_INTEGER_TEXT: Final = re.compile(r"[+-]?\d{1,19}")
_SHOWN_VALUE_LENGTH: Final = 200

# Java character classes found in AWS's models → Python equivalents. The first group keeps
# Java's ASCII semantics (the pattern compiles with re.ASCII); the second needs Unicode.
_JAVA_ASCII_CLASSES: Final = {
    r"\p{Graph}": "!-~",
    r"\p{Upper}": "A-Z",
    r"\p{Digit}": "0-9",
    r"\p{Cntrl}": r"\x00-\x1f\x7f",
    r"\p{C}": (r"\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u180e"
               r"\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
               r"\ufff9-\ufffb\ud800-\udfff\ue000-\uf8ff"),
}
_JAVA_UNICODE_CLASSES: Final = {r"\p{L}": r"\w", r"\p{N}": r"\d", r"\p{Z}": r"\s"}


def parse_query(raw_query: str) -> dict[str, list[str]]:
    """``a=1&b=2&a=3`` → ``{"a": ["1", "3"], "b": ["2"]}`` (percent-decoded; ``+`` is
    kept as ``+``, as SigV4 clients encode a space as ``%20``)."""
    result: dict[str, list[str]] = {}
    if not raw_query:
        return result
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        result.setdefault(unquote(key), []).append(unquote(value))
    return result


class ValidationErrors:
    """Collects constraint violations and raises them as one InvalidRequestException."""

    __slots__ = ("messages",)

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, path: str, shape: Shape, value: object, constraint: str) -> None:
        self.messages.append(f"{_show(value, shape)} at '{path}' failed to satisfy "
                             f"constraint: {constraint}")

    def raise_if_any(self) -> None:
        """:raises ApiError: 400 InvalidRequestException listing the violations."""
        if not self.messages:
            return
        count = len(self.messages)
        shown = "; ".join(self.messages[:MAX_REPORTED_ERRORS])
        noun = "error" if count == 1 else "errors"
        raise invalid_request(f"{count} validation {noun} detected: {shown}")


def bind_input(operation: OperationModel, labels: Mapping[str, str],
               query: Mapping[str, list[str]], header: HeaderLookup, body: bytes,
               *, validate: bool = True) -> Params:
    """The parameters of ``operation`` carried by a request.

    :param labels: the path labels, decoded (from the router).
    :param query: the query string, parsed with :func:`parse_query`.
    :param header: looks a header up by lower-case name.
    :param validate: check the model's constraints too.
    :raises ApiError: 400 InvalidRequestException for a malformed body or value, or (with
        ``validate``) a constraint violation.
    """
    shape = operation.input_shape
    if shape is None:
        return {}
    errors = ValidationErrors()
    params: Params = {}
    payload_name = shape.serialization.get("payload")
    body_members: dict[str, tuple[str, Shape]] = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        value: Any = None
        if location == "uri":
            text = labels.get(wire)
            value = None if text is None else _from_text(member, text, name, errors, "uri")
        elif location == "querystring":
            value = _from_query(member, wire, query, name, errors)
        elif location == "header":
            text = header(wire.lower())
            value = None if text is None else _from_header(member, text, name, errors)
        elif location == "headers":
            value = None  # a prefix map: no operation we serve uses one
        elif name == payload_name:
            value = _from_payload(member, body, name, errors)
        else:
            body_members[wire] = (name, member)
            continue
        if value is not None:
            params[name] = value
    if body_members:
        document = _json_body(body)
        for wire, (name, member) in body_members.items():
            if wire in document and document[wire] is not None:
                value = _from_json(member, document[wire], name, errors)
                if value is not None:
                    params[name] = value
    if validate:
        check_structure(shape, params, "", errors)
    errors.raise_if_any()
    return params


def check_structure(shape: StructureShape, value: Mapping[str, Any], path: str,
                    errors: ValidationErrors) -> None:
    """Check a bound structure against its shape's constraints (recursively)."""
    for name in shape.required_members:
        if value.get(name) is None:
            errors.add(_join(path, name), shape.members[name], None, "Member must not be null")
    for name, item in value.items():
        found = shape.members.get(name)
        if found is None or item is None:
            continue
        _check_value(found, item, _join(path, name), errors)


# -- reading values ---------------------------------------------------------------------


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        document = loads_bounded(body)
    except (UnicodeDecodeError, ValueError):
        raise invalid_request("The request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise invalid_request("The request body must be a JSON object")
    return document


def _from_payload(shape: Shape, body: bytes, path: str, errors: ValidationErrors) -> Any:
    if shape.type_name == "blob":
        return body
    if shape.type_name == "string":
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_request("The request body is not valid UTF-8") from None
    if not body.strip():
        return None
    return _from_json(shape, _json_body(body), path, errors)


def _from_query(shape: Shape, wire: str, query: Mapping[str, list[str]], path: str,
                errors: ValidationErrors) -> Any:
    if isinstance(shape, MapShape):
        return {key: values[-1] for key, values in query.items()} or None
    values = query.get(wire)
    if not values:
        return None
    if isinstance(shape, ListShape):
        return [_from_text(shape.member, text, f"{path}.{i + 1}.member", errors, "query")
                for i, text in enumerate(values)]
    return _from_text(shape, values[0], path, errors, "query")


def _from_header(shape: Shape, text: str, path: str, errors: ValidationErrors) -> Any:
    if isinstance(shape, ListShape):
        items = [item.strip() for item in text.split(",")]
        return [_from_text(shape.member, item, f"{path}.{i + 1}.member", errors, "header")
                for i, item in enumerate(items)]
    if shape.type_name == "string" and shape.serialization.get("jsonvalue"):
        try:
            return loads_bounded(base64.b64decode(text.strip(), validate=True),
                                 f"The header {path}")
        except (binascii.Error, ValueError):
            errors.add(path, shape, None, "Member must be base64-encoded JSON")
            return None
    return _from_text(shape, text, path, errors, "header")


def _from_text(shape: Shape, text: str, path: str, errors: ValidationErrors,
               where: str) -> Any:
    """A scalar from a path label, query value or header."""
    kind = shape.type_name
    if kind == "string":
        return text
    if kind in ("integer", "long"):
        if _INTEGER_TEXT.fullmatch(text.strip()):
            return int(text)
        errors.add(path, shape, text, f"Member must be of type {kind}")
        return None
    if kind in ("double", "float"):
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
        errors.add(path, shape, text, f"Member must be of type {kind}")
        return None
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        errors.add(path, shape, text, "Member must be of type boolean (true or false)")
        return None
    if kind == "timestamp":
        stamp = _parse_timestamp_text(text, header=where == "header")
        if stamp is None:
            errors.add(path, shape, text, "Member must be a timestamp")
        return stamp
    if kind == "blob":
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            errors.add(path, shape, None, "Member must be base64-encoded")
            return None
    errors.add(path, shape, text, f"Member of type {kind} cannot be sent in the {where}")
    return None


def _from_json(shape: Shape, value: Any, path: str, errors: ValidationErrors) -> Any:
    """A value of the JSON body, converted and type-checked."""
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            errors.add(path, shape, value, "Member must be a structure")
            return None
        result: Params = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            if wire in value and value[wire] is not None:
                item = _from_json(member, value[wire], _join(path, name), errors)
                if item is not None:
                    result[name] = item
        return result
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            errors.add(path, shape, value, "Member must be a list")
            return None
        return [_from_json(shape.member, item, f"{path}.{i + 1}.member", errors)
                for i, item in enumerate(value)]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            errors.add(path, shape, value, "Member must be a map")
            return None
        return {key: _from_json(shape.value, item, path, errors)
                for key, item in value.items()}
    if kind == "string":
        if isinstance(value, str):
            return value
    elif kind in ("integer", "long"):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind in ("double", "float"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind == "timestamp":
        stamp = _parse_timestamp_json(value)
        if stamp is not None:
            return stamp
    elif kind == "blob":
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except binascii.Error:
                pass
        errors.add(path, shape, None, "Member must be base64-encoded")
        return None
    else:
        return value
    errors.add(path, shape, value, f"Member must be of type {kind}")
    return None


def _parse_timestamp_text(text: str, *, header: bool) -> datetime | None:
    text = text.strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    if header:
        try:
            stamp = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            stamp = None
        if stamp is not None:
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _parse_timestamp_json(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (ValueError, OverflowError, OSError):
            return None
    if isinstance(value, str):
        return _parse_timestamp_text(value, header=False)
    return None


# -- constraints --------------------------------------------------------------------------


def _check_value(shape: Shape, value: Any, path: str, errors: ValidationErrors) -> None:
    for failure in _failures(shape, value):
        errors.add(path, shape, value, failure)
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        check_structure(shape, value, path, errors)
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for index, item in enumerate(value):
            if item is None:
                errors.add(f"{path}.{index + 1}.member", shape.member, None,
                           "Member must not be null")
            else:
                _check_value(shape.member, item, f"{path}.{index + 1}.member", errors)
    elif isinstance(shape, MapShape) and isinstance(value, Mapping):
        for key, item in value.items():
            key_failures = _failures(shape.key, key)
            if key_failures:
                errors.add(path, shape.key, key,
                           "Map keys must satisfy constraint: [" + ", ".join(key_failures) + "]")
            if item is None:
                continue
            value_failures = _failures(shape.value, item)
            if value_failures:
                errors.add(path, shape.value, item,
                           "Map value must satisfy constraint: ["
                           + ", ".join(value_failures) + "]")
            if isinstance(shape.value, StructureShape | ListShape | MapShape):
                _check_value(shape.value, item, path, errors)


def _failures(shape: Shape, value: Any) -> list[str]:
    """The constraints of ``shape`` that ``value`` (already of the right type) breaks."""
    failures: list[str] = []
    metadata = shape.metadata
    low, high = metadata.get("min"), metadata.get("max")
    kind = shape.type_name
    if kind in ("integer", "long", "double", "float"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            if high is not None and value > high:
                failures.append(f"Member must have value less than or equal to {high}")
            if low is not None and value < low:
                failures.append(f"Member must have value greater than or equal to {low}")
        return failures
    if kind in ("string", "blob", "list", "map") and isinstance(value, str | bytes | list | dict):
        size = len(value)
        if high is not None and size > high:
            failures.append(f"Member must have length less than or equal to {high}")
        if low is not None and size < low:
            failures.append(f"Member must have length greater than or equal to {low}")
    if isinstance(shape, StringShape) and isinstance(value, str):
        allowed = shape.enum
        if allowed and value not in allowed:
            failures.append("Member must satisfy enum value set: [" + ", ".join(allowed) + "]")
        pattern = metadata.get("pattern")
        if pattern:
            compiled = _compile_pattern(pattern)
            if compiled is not None and compiled.fullmatch(value) is None:
                failures.append(f"Member must satisfy regular expression pattern: {pattern}")
    return failures


@functools.lru_cache(maxsize=512)
def _compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """A model pattern (Java syntax) as a Python regex; ``None`` if it cannot be
    translated (the pattern is then not enforced, and that is logged once)."""
    text = pattern
    for java, python in _JAVA_ASCII_CLASSES.items():
        text = text.replace(java, python)
    unicode_classes = any(java in text for java in _JAVA_UNICODE_CLASSES)
    for java, python in _JAVA_UNICODE_CLASSES.items():
        text = text.replace(java, python)
    try:
        return re.compile(text, 0 if unicode_classes else re.ASCII)
    except re.error:
        log.warning("model pattern %r cannot be enforced (no Python equivalent)", pattern)
        return None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _show(value: object, shape: Shape) -> str:
    if value is None:
        return "Value null"
    if shape.metadata.get("sensitive") or isinstance(value, bytes):
        return "Value"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > _SHOWN_VALUE_LENGTH:
        text = text[:_SHOWN_VALUE_LENGTH] + "..."
    return f"Value '{text}'"

