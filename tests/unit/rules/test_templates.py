"""Substitution templates: ``${expression}`` in action parameters."""

from __future__ import annotations

import pytest

from bastion.rules import MessageContext, SqlParseError
from bastion.rules._templates import parse_template

CTX = MessageContext("sites/oslo/press-4", b'{"level": "high", "n": 3, "o": {"k": [1]}}',
                     client_id="press-4", timestamp_ms=1234)


@pytest.mark.parametrize(("text", "expected"), [
    ("plain/topic", "plain/topic"),
    ("alerts/${topic(2)}/${upper(level)}", "alerts/oslo/HIGH"),
    ("${n + 1}", "4"),
    ("${o}", '{"k":[1]}'),
    ("missing:${nothing}:end", "missing::end"),
    ("${concat('a}', 'b')}", "a}b"),
    ("${clientid()}-${timestamp()}", "press-4-1234"),
    ("{not a template}", "{not a template}"),
], ids=["plain", "topic-and-function", "arithmetic", "object-as-json", "undefined-empty",
        "brace-in-string", "message-functions", "lone-braces"])
def test_rendering(text: str, expected: str) -> None:
    assert parse_template(text).render(CTX) == expected


@pytest.mark.parametrize("text", ["a/${", "a/${1 +}", "${nope(1)}", "${}"])
def test_bad_templates_are_sql_parse_errors(text: str) -> None:
    with pytest.raises(SqlParseError):
        parse_template(text)
