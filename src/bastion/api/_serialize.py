"""Operation results and errors → HTTP responses, driven by the output shape.

A handler returns a mapping keyed by output member names (like a boto3 response). Each
member goes where the model says: a header (``location: header``), the HTTP status
(``statusCode``), the raw body (the ``payload`` member, when a blob or a string) or the
JSON body under its ``locationName``. JSON values follow rest-json: timestamps as epoch
seconds (milliseconds kept as a fraction), blobs base64, ``None`` members left out. The
status is the operation's ``http.responseCode`` (default 200).

A result key the output shape does not have is a bug in the handler: it raises
:class:`TypeError` instead of silently vanishing. The one exception is Bastion's own
members, named ``bastion…`` (:data:`EXTENSION_PREFIX`; an ML violation's explanation),
inside a structure: they go into the JSON body as they are, and AWS's clients, which
ignore members their model lacks, never see them.

Errors are ``{"message": …}`` (plus any extra fields) with the code in
``x-amzn-ErrorType``, which is where botocore looks first.

The JSON protocol (``acm``) is answered the same way, with content type
``application/x-amz-json-1.1``; its errors also carry the code as ``__type`` in the
body, which is where botocore's JSON parser reads it.
"""

from __future__ import annotations

import base64
import calendar
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from enum import Enum
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from ._errors import ApiError

JSON_CONTENT_TYPE = "application/json"
AMZ_JSON_CONTENT_TYPE = "application/x-amz-json-1.1"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def success_status(operation: OperationModel) -> int:
    """The HTTP status of a successful call: the model's ``http.responseCode`` (200 by
    default). An output member bound to the status code (``location: statusCode``) may
    answer another one."""
    return int(operation.http.get("responseCode", 200))


def serialize_output(operation: OperationModel, result: Mapping[str, Any], *,
                     json_protocol: bool = False) -> Response:
    """The HTTP response for a successful call (``json_protocol``: of a JSON-protocol
    service).

    :raises TypeError: ``result`` has a key the output shape lacks, or a value of the
        wrong type.
    """
    status = success_status(operation)
    shape = operation.output_shape
    if shape is None:
        if result:
            raise TypeError(f"{operation.name} has no output, got {sorted(result)}")
        return Response(status, (("content-type", AMZ_JSON_CONTENT_TYPE if json_protocol
                                  else JSON_CONTENT_TYPE),), b"{}")
    unknown = set(result) - set(shape.members)
    if unknown:
        raise TypeError(f"{operation.name} output has no member(s) {sorted(unknown)}")
    headers: list[tuple[str, str]] = []
    payload_name = shape.serialization.get("payload")
    document: dict[str, Any] = {}
    raw_body: bytes | None = None
    content_type = AMZ_JSON_CONTENT_TYPE if json_protocol else JSON_CONTENT_TYPE
    for name, member in shape.members.items():
        value = result.get(name)
        if value is None:
            continue
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "header":
            headers.append((wire.lower(), _header_value(member, value)))
        elif location == "headers":
            for key, item in value.items():
                headers.append(((wire + key).lower(), str(item)))
        elif location == "statusCode":
            status = int(value)
        elif name == payload_name:
            if member.type_name == "blob":
                raw_body = bytes(value)
                content_type = "application/octet-stream"
            elif member.type_name == "string":
                raw_body = str(value).encode("utf-8")
                content_type = "text/plain; charset=utf-8"
            else:
                raw_body = _dumps(to_json(member, value, name))
        else:
            document[wire] = to_json(member, value, name)
    body = raw_body if raw_body is not None else _dumps(document)
    headers.append(("content-type", content_type))
    return Response(status, tuple(headers), body)


def serialize_error(error: ApiError, *, json_protocol: bool = False) -> Response:
    """The HTTP response for a refused call: ``x-amzn-ErrorType``, the HTTP status and
    ``{"message": …}`` plus the error's further body fields (and, for the JSON protocol,
    ``__type``)."""
    document: dict[str, str] = {"message": error.message}
    document.update(error.body_fields())
    if json_protocol:
        document["__type"] = error.aws_error_type
    headers = (("x-amzn-errortype", error.aws_error_type),
               ("content-type", AMZ_JSON_CONTENT_TYPE if json_protocol else JSON_CONTENT_TYPE))
    return Response(error.http_status, headers, _dumps(document))


EXTENSION_PREFIX = "bastion"


def to_json(shape: Shape, value: Any, path: str) -> Any:
    """``value`` as rest-json puts it in a JSON body.

    :raises TypeError: ``value`` does not fit ``shape``.
    """
    if isinstance(shape, StructureShape):
        if not isinstance(value, Mapping):
            raise TypeError(f"{path}: a structure needs a mapping, got {type(value).__name__}")
        extensions = {k: v for k, v in value.items()
                      if k.startswith(EXTENSION_PREFIX) and v is not None}
        unknown = set(value) - set(shape.members) - set(extensions)
        if unknown:
            raise TypeError(f"{path}: no member(s) {sorted(unknown)}")
        out = {
            member.serialization.get("name", name): to_json(member, value[name],
                                                            f"{path}.{name}")
            for name, member in shape.members.items()
            if value.get(name) is not None
        }
        out.update(extensions)
        return out
    if isinstance(shape, ListShape):
        if isinstance(value, str | bytes | Mapping):
            raise TypeError(f"{path}: a list needs a sequence, got {type(value).__name__}")
        return [to_json(shape.member, item, f"{path}[]") for item in value]
    if isinstance(shape, MapShape):
        if not isinstance(value, Mapping):
            raise TypeError(f"{path}: a map needs a mapping, got {type(value).__name__}")
        return {str(key): to_json(shape.value, item, f"{path}.{key}")
                for key, item in value.items()}
    kind = shape.type_name
    if isinstance(value, Enum):
        value = value.value
    if kind == "timestamp":
        return epoch_seconds(value, path)
    if kind == "blob":
        if not isinstance(value, bytes | bytearray):
            raise TypeError(f"{path}: a blob needs bytes, got {type(value).__name__}")
        return base64.b64encode(value).decode("ascii")
    if kind == "boolean":
        if not isinstance(value, bool):
            raise TypeError(f"{path}: a boolean needs bool, got {type(value).__name__}")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{path}: {kind} needs int, got {type(value).__name__}")
        return value
    if kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{path}: {kind} needs a number, got {type(value).__name__}")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise TypeError(f"{path}: a string needs str, got {type(value).__name__}")
        return value
    return value


def epoch_seconds(value: Any, path: str = "timestamp") -> int | float:
    """A timezone-aware datetime as epoch seconds (fraction only when there are ms)."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise TypeError(f"{path}: a timestamp needs an aware datetime, got {value!r}")
    moment = value.astimezone(UTC)
    seconds = calendar.timegm(moment.timetuple())
    millis = moment.microsecond // 1000
    return seconds + millis / 1000 if millis else seconds


def _header_value(shape: Shape, value: Any) -> str:
    if shape.type_name == "timestamp":
        return formatdate(epoch_seconds(value), usegmt=True)
    if shape.type_name == "boolean":
        return "true" if value else "false"
    if shape.type_name == "string" and shape.serialization.get("jsonvalue"):
        return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
