"""AWS IoT's name and value rules, checked at the service boundary.

A wrong *type* is our caller's bug (``TypeError``); a wrong *value* came from a remote
caller and is answered with ``InvalidRequestException``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from ._errors import InvalidRequestError

THING_NAME: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
ATTRIBUTE_NAME: Final = re.compile(r"[a-zA-Z0-9_.,@/:#-]{1,128}")
ATTRIBUTE_VALUE: Final = re.compile(r"[a-zA-Z0-9_.,@/:#=\[\]-]{0,800}")
POLICY_NAME: Final = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
CERTIFICATE_ID: Final = re.compile(r"[0-9a-f]{64}")
POLICY_VERSION_ID: Final = re.compile(r"[0-9]{1,10}")
MAX_DESCRIPTION: Final = 2028


def check_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


def check_name(value: object, what: str, pattern: re.Pattern[str] = THING_NAME) -> str:
    """Check a thing, thing type or thing group name (or, with ``pattern``, another one).

    :raises InvalidRequestError: the name breaks the pattern.
    """
    name = check_str(value, what)
    if not pattern.fullmatch(name):
        raise InvalidRequestError(
            f"1 validation error detected: Value '{name}' at '{what}' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {pattern.pattern}"
        )
    return name


def check_policy_name(value: object) -> str:
    return check_name(value, "policyName", POLICY_NAME)


def check_certificate_id(value: object) -> str:
    """Check a certificate id; upper-case hex is accepted and lower-cased.

    :raises InvalidRequestError: not 64 hex digits.
    """
    text = check_str(value, "certificateId").lower()
    if not CERTIFICATE_ID.fullmatch(text):
        raise InvalidRequestError(f"Invalid certificate id: '{value}' (expected 64 hex digits)")
    return text


def check_version_id(value: object) -> int:
    text = check_str(value, "policyVersionId")
    if not POLICY_VERSION_ID.fullmatch(text):
        raise InvalidRequestError(f"Invalid policy version id: '{text}'")
    return int(text)


def check_description(value: object) -> str | None:
    if value is None:
        return None
    text = check_str(value, "description")
    if len(text) > MAX_DESCRIPTION:
        raise InvalidRequestError(
            f"The description is longer than {MAX_DESCRIPTION} characters"
        )
    return text


def check_attributes(value: object) -> dict[str, str]:
    """Check an attribute map; returns a copy. An empty value is valid: it means "no such
    attribute" (with ``merge``, "remove the attribute").

    :raises TypeError: not a mapping of strings.
    :raises InvalidRequestError: a name or value breaks AWS's patterns.
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"attributes must be a mapping, not {type(value).__name__}")
    result: dict[str, str] = {}
    for key, item in value.items():
        check_str(key, "attribute name")
        check_str(item, "attribute value")
        if not ATTRIBUTE_NAME.fullmatch(key):
            raise InvalidRequestError(f"Invalid attribute name: '{key}'")
        if not ATTRIBUTE_VALUE.fullmatch(item):
            raise InvalidRequestError(f"Invalid value for attribute '{key}'")
        result[key] = item
    return result


def check_page_size(max_results: object, default: int = 50, maximum: int = 250) -> int:
    if max_results is None:
        return default
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise TypeError(f"max_results must be an int, not {type(max_results).__name__}")
    if not 1 <= max_results <= maximum:
        raise InvalidRequestError(f"maxResults must be between 1 and {maximum}")
    return max_results


def check_attribute_value(value: object) -> str:
    """:raises InvalidRequestError: the value breaks AWS's attribute value pattern."""
    text = check_str(value, "attribute value")
    if not ATTRIBUTE_VALUE.fullmatch(text):
        raise InvalidRequestError(f"Invalid attribute value: '{text}'")
    return text
