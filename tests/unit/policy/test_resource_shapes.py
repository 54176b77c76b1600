"""The fast path's resource matchers (exact / prefix / suffix / affixes / infix / header /
regex) against the reference matcher, for patterns with and without policy variables."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.policy import (
    AuthRequest,
    Policy,
    RequestContext,
    bind,
    compile_policy_set,
    evaluate,
    parse_policy,
)
from bastion.policy._match import arn_match, atoms, glob_match
from bastion.policy._resources import CompiledPatterns, Matcher, star_glob
from bastion.policy._variables import Variable, Wildcard, substitute, substitution, tokenize

ARN = "arn:aws:iot:us-east-1:123456789012"


def ctx(**fields: object) -> RequestContext:
    return RequestContext(
        region="us-east-1", account="123456789012", **fields  # type: ignore[arg-type]
    )


def resolver(context: RequestContext) -> Callable[[Variable], str]:
    return lambda variable: substitution(variable, context)[0]


def compiled(patterns: list[str], context: RequestContext) -> Matcher:
    tokens = [tokenize(p, variables=True, wildcards=True) for p in patterns]
    return CompiledPatterns(tokens).matcher(resolver(context))


def reference(patterns: list[str], context: RequestContext, resource: str) -> bool:
    return any(
        arn_match(substitute(tokenize(p, variables=True, wildcards=True), context)[0], resource)
        for p in patterns
    )


def shape(matcher: Matcher) -> str:
    """Which string test a single-pattern matcher uses."""
    if isinstance(matcher, operator.methodcaller):
        return "prefix" if "startswith" in repr(matcher) else "suffix"
    if isinstance(getattr(matcher, "__self__", None), frozenset):
        return "exact" if matcher.__self__ else "never"  # type: ignore[attr-defined]
    return matcher.__qualname__.split(".")[0].lstrip("_")


# --------------------------------------------------------------------------------------
# Shapes, resources that must and must not match

CLIENT = ctx(client_id="dev1", thing_name="a:b", thing_attributes={"region": "us-east-1"})

T = f"{ARN}:topic/"  # short names keep the table readable
CID = "${iot:ClientId}"
THING = "${iot:Connection.Thing.ThingName}"
REGION = "${iot:Connection.Thing.Attributes[region]}"

SHAPES = [
    # pattern, expected shape, resources it matches, resources it refuses
    (f"{T}{CID}", "exact", [f"{T}dev1"], [f"{T}dev1/x", f"{T}dev", f"{T}dev2"]),
    (f"{T}{CID}/*", "prefix", [f"{T}dev1/", f"{T}dev1/a/b:c"], [f"{T}dev1", f"{T}dev2/x"]),
    (f"*/{CID}", "suffix", [f"{T}dev1", "/dev1", "a:b:c/dev1"], [f"{T}dev1/x", "dev1"]),
    (f"{T}*/{CID}", "affixes", [f"{T}/dev1", f"{T}a/b/dev1"], [f"{T}dev1", f"{T}a/dev2"]),
    (f"{T}*/{CID}/*/in", "infixes",
     [f"{T}x/dev1/y/in", f"{T}/dev1//in", f"{T}dev1/dev1/dev1/in"],
     [f"{T}x/dev1/in", f"{T}x/dev1/y/out", f"{T}dev1/in"]),
    (f"{T}{CID}/?", "fullmatches", [f"{T}dev1/x", f"{T}dev1/:"], [f"{T}dev1/", f"{T}dev1/xy"]),
    # wildcards in the header: precompiled header regex, string tests after it
    (f"arn:aws:iot:*:*:topic/{CID}", "after_header",
     [f"{T}dev1", "arn:aws:iot:::topic/dev1"],
     [f"{T}dev1/x", "arn:aws:iot:us-east-1:1:2:topic/dev1", "arn:aws:iot:a:topic/dev1"]),
    (f"arn:aws:iot:?s-east-1:*:topic/{CID}/*", "after_header",
     [f"{T}dev1/x", "arn:aws:iot:xs-east-1:9:topic/dev1/"],
     [f"{T}dev1", "arn:aws:iot:s-east-1:9:topic/dev1/x", "arn:aws:iot::s-east-1:9:topic/dev1/x"]),
    # a variable and a wildcard in the header: regex
    (f"arn:aws:iot:{REGION}:*:topic/x", "fullmatches",
     [f"{T}x"], ["arn:aws:iot:eu-west-1:1:topic/x", "arn:aws:iot:us-east-1:1:2:topic/x"]),
    # a variable in a literal header: whole-string test, guarded against colons
    (f"arn:aws:iot:{REGION}:123456789012:topic/*", "prefix",
     [f"{T}x"], ["arn:aws:iot:eu-west-1:123456789012:topic/x"]),
    # a colon substituted into a header field: matches nothing, not even its own text
    (f"arn:aws:iot:{THING}:123:topic/*", "never",
     [], ["arn:aws:iot:a:b:123:topic/x", "arn:aws:iot:a:b:123:topic/"]),
    # (with only four separators written, the pattern is one glob and the colon is text)
    (f"arn:aws:iot:{THING}:topic/*", "prefix",
     ["arn:aws:iot:a:b:topic/x"], ["arn:aws:iot:a:topic/x"]),
    # ... and in the resource field it is literal text
    (f"{T}{THING}/*", "prefix", [f"{T}a:b/x"], [f"{T}a/x"]),
    # an unsubstituted variable is its own literal text; its colon stays out of the header
    (f"{T}${{iot:Nope}}/*", "prefix", [f"{T}${{iot:Nope}}/x"], [f"{T}a/x"]),
    ("arn:aws:iot:${iot:Nope}:1:topic/x", "never", [], ["arn:aws:iot:${iot:Nope}:1:topic/x"]),
    # fewer than five separators: one glob over the whole string, "*" crosses colons
    ("*", "prefix", ["", f"{T}x"], []),
    (f"arn:*:topic/{CID}", "affixes", [f"{T}dev1", "arn::topic/dev1"], ["arn:topic/dev1"]),
    (CID, "exact", ["dev1"], [f"{T}dev1"]),
    ("**", "prefix", ["", "a:b"], []),
    ("a**b", "affixes", ["ab", "a:b", "a*b"], ["a", "b", "ba"]),
    ("${*}${?}", "exact", ["*?"], ["ab", "*a"]),
]


@pytest.mark.parametrize(
    ("pattern", "expected_shape", "matching", "refused"),
    SHAPES,
    ids=[f"{s[1]}:{s[0].replace(T, 'T/')}" for s in SHAPES],
)
def test_shape_and_matches(
    pattern: str, expected_shape: str, matching: list[str], refused: list[str]
) -> None:
    matcher = compiled([pattern], CLIENT)
    assert shape(matcher) == expected_shape
    for resource in matching:
        assert reference([pattern], CLIENT, resource), resource
        assert matcher(resource) is True, resource
    for resource in refused:
        assert not reference([pattern], CLIENT, resource), resource
        assert matcher(resource) is False, resource


def test_a_statements_patterns_share_one_test_per_shape() -> None:
    patterns = [f"{ARN}:topicfilter/broadcast/{i}/*" for i in range(10)]
    matcher = compiled(patterns, CLIENT)
    assert shape(matcher) == "prefix"  # one startswith over a tuple of ten prefixes
    assert matcher(f"{ARN}:topicfilter/broadcast/7/news")
    assert not matcher(f"{ARN}:topicfilter/broadcast/10/news")
    exact = compiled([f"{ARN}:client/${{iot:ClientId}}", f"{ARN}:client/x"], CLIENT)
    assert shape(exact) == "exact"
    assert exact(f"{ARN}:client/dev1") and exact(f"{ARN}:client/x")
    assert shape(compiled([], CLIENT)) == "never"


def test_patterns_after_the_same_header_share_its_match() -> None:
    header = "arn:aws:iot:*:*:"
    patterns = [f"{header}topic/broadcast/{i}/*" for i in range(10)] + [f"{header}client/{CID}"]
    matcher = compiled(patterns, CLIENT)
    assert shape(matcher) == "after_header"  # one header match, then string tests
    assert matcher(f"{T}broadcast/7/news") and matcher(f"{ARN}:client/dev1")
    assert not matcher(f"{T}broadcast/10/news")
    assert not matcher("arn:aws:iot:us-east-1:1:2:topic/broadcast/7/news")
    assert not matcher(f"{ARN}:client/dev1/x")


def test_patterns_without_variables_are_built_once() -> None:
    patterns = CompiledPatterns([tokenize(f"{ARN}:topic/a/*", variables=True, wildcards=True)])
    assert patterns.variables == ()
    assert patterns.matcher(resolver(CLIENT)) is patterns.matcher(resolver(ctx()))


def test_empty_value_is_substituted_as_empty_text() -> None:
    context = ctx(client_id="")
    for pattern, resource, expected in [
        (f"{ARN}:topic/${{iot:ClientId}}", f"{ARN}:topic/", True),
        (f"{ARN}:topic/${{iot:ClientId}}*", f"{ARN}:topic/x", True),
        ("*${iot:ClientId}", "x", True),
        (f"{ARN}:topic/${{iot:ClientId}}*/${{iot:ClientId}}", f"{ARN}:topic/", False),
        (f"{ARN}:topic/${{iot:ClientId}}*/${{iot:ClientId}}", f"{ARN}:topic//", True),
    ]:
        assert reference([pattern], context, resource) is expected, pattern
        assert compiled([pattern], context)(resource) is expected, pattern


def test_many_stars_against_a_long_topic_stay_linear() -> None:
    pattern = f"{ARN}:topic/" + "*a" * 12 + "*${iot:ClientId}"
    matcher = compiled([pattern], CLIENT)
    assert shape(matcher) == "infixes"
    assert not matcher(f"{ARN}:topic/" + "a" * 20000)
    assert matcher(f"{ARN}:topic/" + "a" * 20000 + "dev1")


# --------------------------------------------------------------------------------------
# Properties

PATTERN_PIECES = [
    "a", "b", "/", ":", "*", "*", "?", "$",
    "arn:aws:iot:", "us-east-1", "123", "topic/",
    "${iot:ClientId}", "${iot:Connection.Thing.ThingName}", "${iot:Nope}", "${*}", "${?}",
]
CLIENT_IDS = [None, "", "a", "b", "a:b", "a/b", ":", "a*", "#"]
RESOURCE_PIECES = ["a", "b", "/", ":", "ab", "arn:aws:iot:", "us-east-1", "123", "topic/",
                   "${iot:Nope}", "*", "?", "$", "\n"]


@st.composite
def pattern_and_resources(
    draw: st.DrawFn, patterns: st.SearchStrategy[str] | None = None
) -> tuple[list[str], RequestContext, list[str]]:
    pattern_list = draw(
        st.lists(
            st.lists(st.sampled_from(PATTERN_PIECES), max_size=10).map("".join)
            if patterns is None
            else patterns,
            min_size=1,
            max_size=4,
        )
    )
    context = ctx(
        client_id=draw(st.sampled_from(CLIENT_IDS)),
        thing_name=draw(st.sampled_from(CLIENT_IDS)),
    )
    resources = draw(
        st.lists(st.lists(st.sampled_from(RESOURCE_PIECES), max_size=10).map("".join), max_size=3)
    )
    # Requests that a pattern is likely to match: its rendering, wildcards filled in.
    for pattern in pattern_list:
        parts = substitute(tokenize(pattern, variables=True, wildcards=True), context)[0]
        filled = [
            draw(st.sampled_from(["", "a", ":", "a/b:", "?"]))
            if part is Wildcard.ANY_RUN
            else draw(st.sampled_from(["a", ":", "/"]))
            if part is Wildcard.ANY_CHAR
            else part.text
            for part in parts
        ]
        resources.append("".join(filled))
    return pattern_list, context, resources


#: Resource patterns a policy accepts: "*" or an ARN with a non-empty resource field.
FIELD_PIECES = ["", "us-east-1", "*", "?", "?s-east-1", "a*", "${iot:ClientId}", "${iot:Nope}"]
VALID_PATTERNS = st.one_of(
    st.just("*"),
    st.builds(
        lambda region, account, resource: f"arn:aws:iot:{region}:{account}:{resource}",
        st.sampled_from(FIELD_PIECES),
        st.sampled_from(["123", "*", "${iot:Connection.Thing.ThingName}"]),
        st.lists(st.sampled_from(PATTERN_PIECES), min_size=1, max_size=6).map("".join),
    ),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pattern_and_resources())
def test_compiled_patterns_agree_with_reference(
    case: tuple[list[str], RequestContext, list[str]],
) -> None:
    patterns, context, resources = case
    matcher = compiled(patterns, context)
    for resource in resources:
        assert matcher(resource) is reference(patterns, context, resource), resource


@settings(max_examples=1000, deadline=None)
@given(
    pattern=st.lists(st.sampled_from(["a", "b", "ab", ":", "*"]), max_size=7)
    .map(lambda pieces: "".join(pieces) + "*" if "*" not in pieces else "".join(pieces)),
    text=st.text(alphabet="ab:", max_size=8),
    pos=st.integers(0, 3),
)
def test_star_glob_agrees_with_reference_glob(pattern: str, text: str, pos: int) -> None:
    pos = min(pos, len(text))  # callers start at most at the end of the text
    first, *middle, last = pattern.split("*")
    glob = atoms(tokenize(pattern, variables=False, wildcards=True))  # type: ignore[arg-type]
    expected = glob_match(glob, text[pos:])
    assert star_glob(text, pos, first, tuple(m for m in middle if m), last) is expected


@pytest.mark.parametrize(
    ("text", "pos", "pattern", "expected"),
    [
        ("a", 0, "a*a", False),  # prefix and suffix must not overlap
        ("aa", 0, "a*a", True),
        ("xa", 1, "a*a", False),
        ("a", 0, "*a*a*", False),  # middle segments must not overlap either
        ("aa", 0, "*a*a*", True),
        ("aba", 0, "*ab*ba*", False),
        ("abba", 0, "*ab*ba*", True),
        ("ab", 0, "*b*a", False),  # nor run into the suffix
        ("xab", 1, "a*", True),
        ("xab", 1, "x*", False),
    ],
)
def test_star_glob_table(text: str, pos: int, pattern: str, expected: bool) -> None:
    first, *middle, last = pattern.split("*")
    assert star_glob(text, pos, first, tuple(m for m in middle if m), last) is expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pattern_and_resources(VALID_PATTERNS), negated=st.booleans())
def test_bound_policy_agrees_with_reference(
    case: tuple[list[str], RequestContext, list[str]], negated: bool
) -> None:
    patterns, context, resources = case
    key = "NotResource" if negated else "Resource"
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Publish", key: patterns}],
    }
    policies = [Policy("p", parse_policy(json.dumps(document), max_length=None))]
    bound = bind(compile_policy_set(policies), context)
    for resource in resources:
        expected = evaluate(policies, AuthRequest("iot:Publish", resource, context))
        assert bound.decide("iot:Publish", resource) == expected
        assert bound.is_allowed("iot:Publish", resource) is expected.is_allowed


def test_regex_source_is_still_the_reference_fallback() -> None:
    # The fallback for "?" outside a precompiled header must agree on ARN field rules.
    matcher = compiled(["arn:aws:iot:*:*:topic/?"], CLIENT)
    assert shape(matcher) == "fullmatches"
    assert matcher("arn:aws:iot:r:1:topic/x")
    assert not matcher("arn:aws:iot:r:1:2:topic/x")
    assert not matcher("arn:aws:iot:r:1:topic/xy")
