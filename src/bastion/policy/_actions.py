"""The ``iot:`` action vocabulary and action-name matching.

Action names are case-insensitive (IAM convention). A pattern is either ``*`` or
``<service>:<name>`` where the name may contain ``*`` (any run of characters) and ``?``
(exactly one character); the service prefix may not contain wildcards.

Only the ``iot:`` namespace is checked against a vocabulary: an exact ``iot:`` name that is
not a known action is a malformed policy. Other namespaces (``greengrass:*`` appears in
AWS-recommended IoT policies) are accepted as written and simply never match an ``iot:``
request. Wildcard patterns are not required to match a known action (AWS accepts
``iot:Describe*``-style patterns regardless).
"""

from __future__ import annotations

import re

from ._errors import MalformedPolicyError

#: Every action an AWS IoT Core policy can authorise (data plane, shadow and job-execution
#: HTTP actions, retained-message APIs and the credentials provider).
IOT_POLICY_ACTIONS: frozenset[str] = frozenset(
    {
        "iot:Connect",
        "iot:Publish",
        "iot:Subscribe",
        "iot:Receive",
        "iot:RetainPublish",
        "iot:GetRetainedMessage",
        "iot:ListRetainedMessages",
        "iot:GetThingShadow",
        "iot:UpdateThingShadow",
        "iot:DeleteThingShadow",
        "iot:ListNamedShadowsForThing",
        "iot:DescribeJobExecution",
        "iot:GetPendingJobExecutions",
        "iot:UpdateJobExecution",
        "iot:StartNextPendingJobExecution",
        "iot:AssumeRoleWithCertificate",
    }
)

_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_NAME = re.compile(r"[A-Za-z0-9*?_-]+")


def validate_action(
    pattern: str, path: str, known_actions: frozenset[str] = IOT_POLICY_ACTIONS
) -> None:
    """Check one ``Action``/``NotAction`` entry.

    :param pattern: the entry as written.
    :param path: its JSON path, for the error.
    :param known_actions: the ``iot:`` vocabulary exact names are checked against.
    :raises MalformedPolicyError: empty, not ``service:name``, more than one colon, a wildcard
        in the service prefix, or an unknown exact ``iot:`` action.
    """
    if pattern == "*":
        return
    if pattern.count(":") != 1:
        raise MalformedPolicyError(
            f'invalid action "{pattern}": an action must be "*" or "<service>:<action>" '
            "with exactly one colon",
            path,
        )
    service, name = pattern.split(":")
    if not _SERVICE.fullmatch(service):
        raise MalformedPolicyError(
            f'invalid action "{pattern}": the service prefix must be letters, digits or "-" '
            "(no wildcards)",
            path,
        )
    if not _NAME.fullmatch(name):
        raise MalformedPolicyError(
            f'invalid action "{pattern}": the action name must be letters, digits, "*" or "?"',
            path,
        )
    if service.lower() == "iot" and "*" not in name and "?" not in name:
        known = {action.lower() for action in known_actions}
        if pattern.lower() not in known:
            raise MalformedPolicyError(f'unknown action "{pattern}"', path)


def action_matches(pattern: str, action: str) -> bool:
    """Reference matcher: does the (validated) action ``pattern`` cover ``action``?

    Case-insensitive; ``*`` alone matches every action, otherwise the service prefixes must
    be equal and the names glob-match.
    """
    if pattern == "*":
        return True
    service, _, name = pattern.lower().partition(":")
    req_service, sep, req_name = action.lower().partition(":")
    if not sep or service != req_service:
        return False
    return _glob(name, req_name)


def _glob(pattern: str, text: str) -> bool:
    # Classic greedy wildcard match with single-star backtracking; O(len(p) * len(t)).
    p = t = 0
    star_p = -1
    star_t = 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star_p, star_t = p, t
            p += 1
        elif p < len(pattern) and (pattern[p] == "?" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif star_p >= 0:
            star_t += 1
            p, t = star_p + 1, star_t
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def action_regex_source(pattern: str) -> str:
    """Regex source (to be full-matched against ``action.lower()``) equivalent to
    :func:`action_matches` for the validated ``pattern``."""
    if pattern == "*":
        return r"(?s:.*)"
    service, _, name = pattern.lower().partition(":")
    body = "".join(
        "(?s:.*)" if ch == "*" else "(?s:.)" if ch == "?" else re.escape(ch) for ch in name
    )
    return re.escape(service) + ":" + body
