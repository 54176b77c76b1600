"""Reading shadow requests: names, client tokens, and update request documents.

An update request is ``{"state": {"desired": {…}, "reported": {…}}, "clientToken": "…",
"version": N}``; get and delete requests are empty or ``{"clientToken": "…"}``. The
checks, in the order AWS applies them, each with AWS's status and message:

1. the payload is at most :data:`MAX_REQUEST_BYTES` (413) and UTF-8 (415);
2. it is a JSON object (400 ``Invalid JSON``);
3. ``clientToken``, when present, is a string of at most 64 bytes (400 ``Invalid
   clientToken``) — from here on, refusals echo it;
4. ``state`` is present (400 ``Missing required node: state``) and an object or
   ``null`` (400 ``State node must be an object``) holding only ``desired`` and
   ``reported`` (400 ``State contains an invalid node: '<name>'``), each an object or
   ``null`` (400 ``Desired node must be an object`` / ``Reported …``);
5. ``version``, when present, is a non-negative integer (400 ``Invalid version``);
6. ``desired`` and ``reported`` nest at most :data:`MAX_DEPTH` levels — the section
   itself is the first, every object or array inside adds one (400 ``JSON contains too
   many levels of nesting; maximum is 6``) — and no array holds ``null`` (400);
7. the request's state is at most :data:`MAX_STATE_BYTES` (413).

Other top-level members (``metadata``, ``timestamp`` echoed back by a client) are
ignored, as AWS does.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ._errors import (
    InvalidShadowRequestError,
    ShadowTooLargeError,
    UnsupportedEncodingError,
)

MAX_STATE_BYTES: Final = 8 * 1024
"""The state (``desired`` plus ``reported``, compact JSON, metadata excluded) of a shadow
and of an update request."""
MAX_DEPTH: Final = 6
MAX_CLIENT_TOKEN_BYTES: Final = 64
MAX_REQUEST_BYTES: Final = 128 * 1024
"""A request payload, whitespace and ignored members included (AWS's message size)."""

THING_NAME: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
SHADOW_NAME: Final = re.compile(r"[$a-zA-Z0-9:_-]{1,64}")
SECTIONS: Final = ("desired", "reported")

TOO_LARGE: Final = "The payload exceeds the maximum size allowed"
TOO_DEEP: Final = f"JSON contains too many levels of nesting; maximum is {MAX_DEPTH}"


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    """A checked update request.

    :ivar state: the ``state`` node as sent: a mapping with ``desired`` and/or
        ``reported`` (each a dict or ``None``), or ``None`` for ``"state": null``.
    :ivar version: the expected current version (optimistic locking), if given.
    """

    state: Mapping[str, dict[str, Any] | None] | None
    client_token: str | None
    version: int | None


def check_thing_name(thing_name: str) -> str:
    """:raises InvalidShadowRequestError: not 1-128 of ``a-zA-Z0-9:_-``."""
    if not isinstance(thing_name, str):
        raise TypeError(f"thing_name must be a str, not {type(thing_name).__name__}")
    if not THING_NAME.fullmatch(thing_name):
        raise InvalidShadowRequestError("Invalid thing name")
    return thing_name


def check_shadow_name(shadow_name: str | None) -> str | None:
    """``None`` (the classic shadow) or a valid name.

    :raises InvalidShadowRequestError: not 1-64 of ``$a-zA-Z0-9:_-``.
    """
    if shadow_name is None:
        return None
    if not isinstance(shadow_name, str):
        raise TypeError(f"shadow_name must be a str or None, not {type(shadow_name).__name__}")
    if not SHADOW_NAME.fullmatch(shadow_name):
        raise InvalidShadowRequestError("Invalid shadow name")
    return shadow_name


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: valid JSON syntax, but no value we could write back
        raise ValueError(f"number {text} is out of range")
    return value


def _load(payload: bytes) -> Any:
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
    if len(payload) > MAX_REQUEST_BYTES:
        raise ShadowTooLargeError(TOO_LARGE)
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedEncodingError(
            "Unsupported documented encoding; supported encoding is UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise InvalidShadowRequestError(TOO_DEEP) from None
    except ValueError:
        raise InvalidShadowRequestError("Invalid JSON") from None


def _client_token(document: Mapping[str, Any]) -> str | None:
    if "clientToken" not in document:
        return None
    token = document["clientToken"]
    if not isinstance(token, str) or len(token.encode("utf-8")) > MAX_CLIENT_TOKEN_BYTES:
        raise InvalidShadowRequestError("Invalid clientToken")
    return token


def read_client_token(payload: bytes) -> str | None:
    """The ``clientToken`` of a get or delete request. An empty payload, or one that is
    not a JSON object, has none (AWS ignores the content of these requests).

    :raises InvalidShadowRequestError: the token is not a string of at most 64 bytes.
    :raises ShadowTooLargeError: the payload exceeds :data:`MAX_REQUEST_BYTES`.
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
    if not bytes(payload).strip():
        return None
    try:
        document = _load(payload)
    except (InvalidShadowRequestError, UnsupportedEncodingError):
        return None
    return _client_token(document) if isinstance(document, dict) else None


def state_size(section: Any) -> int:
    """The size a state section counts for: its compact UTF-8 JSON (0 when absent)."""
    if section is None:
        return 0
    return len(json.dumps(section, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _check_shape(value: Any, depth: int, token: str | None) -> None:
    """Depth (``value`` is at level ``depth``) and no ``null`` inside arrays."""
    if isinstance(value, dict):
        if depth > MAX_DEPTH:
            raise InvalidShadowRequestError(TOO_DEEP, client_token=token)
        for child in value.values():
            _check_shape(child, depth + 1, token)
    elif isinstance(value, list):
        if depth > MAX_DEPTH:
            raise InvalidShadowRequestError(TOO_DEEP, client_token=token)
        for child in value:
            if child is None:
                raise InvalidShadowRequestError(
                    "Invalid JSON: arrays cannot contain null values", client_token=token)
            _check_shape(child, depth + 1, token)


def parse_update_request(payload: bytes) -> UpdateRequest:
    """Read and check an update request (see the module docstring for the rules).

    :raises InvalidShadowRequestError: 400, with the client token once it was read.
    :raises ShadowTooLargeError: 413.
    :raises UnsupportedEncodingError: 415.
    """
    document = _load(payload)
    if not isinstance(document, dict):
        raise InvalidShadowRequestError("Invalid JSON")
    token = _client_token(document)
    if "state" not in document:
        raise InvalidShadowRequestError("Missing required node: state", client_token=token)
    state = document["state"]
    if state is not None and not isinstance(state, dict):
        raise InvalidShadowRequestError("State node must be an object", client_token=token)
    sections: dict[str, dict[str, Any] | None] | None = None
    if state is not None:
        sections = {}
        for name, section in state.items():
            if name not in SECTIONS:
                raise InvalidShadowRequestError(f"State contains an invalid node: '{name}'",
                                                client_token=token)
            if section is not None and not isinstance(section, dict):
                raise InvalidShadowRequestError(
                    f"{name.capitalize()} node must be an object", client_token=token)
            sections[name] = section
    version = document.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                or version < 0):
        raise InvalidShadowRequestError("Invalid version", client_token=token)
    if sections:
        for section in sections.values():
            if section is not None:
                _check_shape(section, 1, token)
        if sum(state_size(section) for section in sections.values()) > MAX_STATE_BYTES:
            raise ShadowTooLargeError(TOO_LARGE, client_token=token)
    return UpdateRequest(sections, token, version)
