"""Pattern matching: the reference glob/ARN matchers against the compiled regexes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.policy._compile import arn_regex_source
from bastion.policy._match import arn_match, atoms, glob_match
from bastion.policy._variables import Part, Text, Value, Wildcard

parts_strategy = st.lists(
    st.one_of(
        st.builds(Text, st.text(alphabet="a:/+#", max_size=3)),
        st.builds(Value, st.text(alphabet="a:/", max_size=3)),
        st.sampled_from([Wildcard.ANY_RUN, Wildcard.ANY_CHAR]),
    ),
    max_size=12,
)


@settings(max_examples=600, deadline=None)
@given(parts=parts_strategy, text=st.text(alphabet="a:/+#\n", max_size=12))
def test_compiled_arn_regex_agrees_with_reference(parts: list[Part], text: str) -> None:
    source = arn_regex_source(parts)
    compiled = source is not None and re.fullmatch(source, text, re.DOTALL) is not None
    assert compiled == arn_match(parts, text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="a:/+#*?", max_size=12))
def test_pattern_written_from_text_matches_it(text: str) -> None:
    # A pattern always matches its own text (wildcards match themselves); a trailing *
    # extends any match.
    as_pattern: list[Part] = [Wildcard(ch) if ch in "*?" else Text(ch) for ch in text]
    assert arn_match(as_pattern, text)
    assert arn_match([Value(text)], text)
    assert glob_match(atoms([Text(text)]), text)
    assert glob_match(atoms([Text(text), Wildcard.ANY_RUN]), text + "/anything")


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("a*", "a/b/c", True),
        ("a?c", "a/c", True),
        ("a?c", "ac", False),
        ("*", "", True),
        ("**", "x", True),
        ("a*b*c", "a-b-b-c", True),
        ("a*b*c", "a-b-b-d", False),
        ("+", "x", False),
        ("#", "#", True),
    ],
)
def test_glob(pattern: str, text: str, expected: bool) -> None:
    pieces: list[Part] = [Wildcard(ch) if ch in "*?" else Text(ch) for ch in pattern]
    assert glob_match(atoms(pieces), text) is expected


def test_wildcards_in_the_first_five_fields_stay_in_their_field() -> None:
    pattern: list[Part] = [Text("arn:aws:iot:"), Wildcard.ANY_RUN, Text(":123:topic/x")]
    assert arn_match(pattern, "arn:aws:iot:us-east-1:123:topic/x")
    assert not arn_match(pattern, "arn:aws:iot:us-east-1:999:123:topic/x")
    source = arn_regex_source(pattern)
    assert source is not None
    assert not re.fullmatch(source, "arn:aws:iot:us-east-1:999:123:topic/x", re.DOTALL)


def test_substituted_colon_in_a_header_field_matches_nothing() -> None:
    pattern: list[Part] = [Text("arn:aws:iot:"), Value("r:1"), Text(":123:topic/x")]
    assert arn_regex_source(pattern) is None
    assert not arn_match(pattern, "arn:aws:iot:r:1:123:topic/x")


def test_many_stars_against_a_long_topic_do_not_backtrack_catastrophically() -> None:
    # A naive ".*a.*a…" translation would not finish within the test timeout.
    pattern: list[Part] = [
        Text("arn:aws:iot:"), Wildcard.ANY_RUN, Text("a"), Wildcard.ANY_RUN, Text("b"),
        Text(":123:topic/"),
    ]
    for _ in range(12):
        pattern += [Wildcard.ANY_RUN, Text("a")]
    pattern += [Wildcard.ANY_RUN, Text("b")]
    source = arn_regex_source(pattern)
    assert source is not None
    # The header fields match; the resource holds no "b", so every split must be refuted.
    long_topic = "arn:aws:iot:" + "a" * 5000 + "b:123:topic/" + "a" * 20000
    assert re.fullmatch(source, long_topic, re.DOTALL) is None
    assert re.fullmatch(source, long_topic + "b", re.DOTALL)
