"""Topic name and filter validation, shared subscriptions, matching and quotas."""

from __future__ import annotations

import pytest

from bastion.mqtt._errors import RemoteProtocolError
from bastion.mqtt._reason import ReasonCode
from bastion.mqtt._topics import (
    SharedSubscription,
    TopicLimits,
    check_topic_limits,
    parse_shared_subscription,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)

VALID_NAMES = [
    pytest.param("a", id="one-level"),
    pytest.param("sport/tennis/player1", id="three-levels"),
    pytest.param("/", id="two-empty-levels"),
    pytest.param("/finance", id="leading-slash"),
    pytest.param("finance/", id="trailing-slash"),
    pytest.param("a//b", id="empty-middle-level"),
    pytest.param("$SYS/broker/uptime", id="dollar-sys"),
    pytest.param("$aws/things/t1/shadow/update", id="dollar-aws"),
    pytest.param("$share/g/a", id="share-prefix-is-just-a-name"),
    pytest.param("caf\u00e9/\u6e29\u5ea6", id="non-ascii"),
    pytest.param(" a b ", id="spaces"),
    pytest.param("x" * 65535, id="max-length"),
    pytest.param("\u00e9" * 32767, id="max-length-two-byte-chars"),
]

INVALID_NAMES = [
    pytest.param("", id="empty"),
    pytest.param("a/+", id="plus"),
    pytest.param("a/#", id="hash"),
    pytest.param("#", id="only-hash"),
    pytest.param("a+b", id="plus-inside-level"),
    pytest.param("a#", id="hash-inside-level"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("x" * 65536, id="too-long"),
    pytest.param("\u00e9" * 32768, id="too-long-in-bytes"),
    pytest.param("a\ud800", id="lone-surrogate"),
]


@pytest.mark.parametrize("topic", VALID_NAMES)
def test_valid_topic_names(topic: str) -> None:
    validate_topic_name(topic)


@pytest.mark.parametrize("topic", INVALID_NAMES)
def test_invalid_topic_names(topic: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        validate_topic_name(topic)
    assert info.value.reason_code is ReasonCode.TOPIC_NAME_INVALID


VALID_FILTERS = [
    pytest.param("a", id="literal"),
    pytest.param("sport/tennis/player1", id="literal-levels"),
    pytest.param("#", id="only-hash"),
    pytest.param("+", id="only-plus"),
    pytest.param("sport/#", id="trailing-hash"),
    pytest.param("sport/tennis/#", id="deep-hash"),
    pytest.param("+/tennis/#", id="plus-and-hash"),
    pytest.param("sport/+/player1", id="middle-plus"),
    pytest.param("+/+", id="two-plus"),
    pytest.param("/+", id="plus-after-empty"),
    pytest.param("+/", id="plus-before-empty"),
    pytest.param("/#", id="hash-after-empty"),
    pytest.param("a//#", id="empty-level-then-hash"),
    pytest.param("$SYS/#", id="dollar-sys"),
    pytest.param("$aws/things/+/shadow/update/accepted", id="dollar-aws-plus"),
    pytest.param("$share/group/a/b", id="shared"),
    pytest.param("$share/group/#", id="shared-hash"),
    pytest.param("$share/group/+/x", id="shared-plus"),
    pytest.param("$share/g/$SYS/#", id="shared-dollar-filter"),
    pytest.param("$share/g//", id="shared-empty-levels"),
    pytest.param("$share", id="bare-share-level-is-not-shared"),
    pytest.param("$sharexyz/a", id="share-lookalike"),
    pytest.param("x" * 65535, id="max-length"),
]

INVALID_FILTERS = [
    pytest.param("", id="empty"),
    pytest.param("a\x00", id="nul"),
    pytest.param("sport/tennis#", id="hash-inside-level"),
    pytest.param("sport/#/ranking", id="hash-not-last"),
    pytest.param("#/", id="hash-then-empty-level"),
    pytest.param("##", id="double-hash"),
    pytest.param("sport+", id="plus-inside-level"),
    pytest.param("+a/b", id="plus-prefix"),
    pytest.param("a/++", id="double-plus"),
    pytest.param("x" * 65536, id="too-long"),
    pytest.param("$share/", id="shared-nothing"),
    pytest.param("$share/group", id="shared-no-filter"),
    pytest.param("$share/group/", id="shared-empty-filter"),
    pytest.param("$share//a", id="shared-empty-group"),
    pytest.param("$share/g+/a", id="shared-group-plus"),
    pytest.param("$share/g#/a", id="shared-group-hash"),
    pytest.param("$share/+/a", id="shared-group-is-plus"),
    pytest.param("$share/g/a/#/b", id="shared-bad-filter"),
    pytest.param("$share/g/a\x00", id="shared-nul"),
]


@pytest.mark.parametrize("topic_filter", VALID_FILTERS)
def test_valid_topic_filters(topic_filter: str) -> None:
    validate_topic_filter(topic_filter)


@pytest.mark.parametrize("topic_filter", INVALID_FILTERS)
def test_invalid_topic_filters(topic_filter: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        validate_topic_filter(topic_filter)
    assert info.value.reason_code is ReasonCode.TOPIC_FILTER_INVALID


@pytest.mark.parametrize(
    ("topic_filter", "expected"),
    [
        pytest.param("$share/g/a/b", SharedSubscription("g", "a/b"), id="plain"),
        pytest.param("$share/consumers/#", SharedSubscription("consumers", "#"), id="hash"),
        pytest.param("$share/g/+/x/#", SharedSubscription("g", "+/x/#"), id="wildcards"),
        pytest.param("$share/g/$aws/x", SharedSubscription("g", "$aws/x"), id="dollar-filter"),
        pytest.param("$share/g/a/", SharedSubscription("g", "a/"), id="trailing-empty-level"),
        pytest.param("$share/g//", SharedSubscription("g", "/"), id="empty-levels"),
        pytest.param("$share/\u00e9/a", SharedSubscription("\u00e9", "a"), id="non-ascii-group"),
        pytest.param("a/b", None, id="not-shared"),
        pytest.param("$share", None, id="bare-share"),
        pytest.param("$SHARE/g/a", None, id="case-sensitive"),
        pytest.param("share/g/a", None, id="no-dollar"),
    ],
)
def test_parse_shared_subscription(topic_filter: str, expected: SharedSubscription | None) -> None:
    assert parse_shared_subscription(topic_filter) == expected


@pytest.mark.parametrize(
    "topic_filter",
    [
        pytest.param("$share/group", id="no-filter"),
        pytest.param("$share//a", id="empty-group"),
        pytest.param("$share/a+b/c", id="wildcard-group"),
        pytest.param("$share/g/#/c", id="bad-inner-filter"),
    ],
)
def test_parse_shared_subscription_rejects(topic_filter: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_shared_subscription(topic_filter)
    assert info.value.reason_code is ReasonCode.TOPIC_FILTER_INVALID


def test_shared_subscription_is_a_frozen_value() -> None:
    shared = SharedSubscription("g", "a")
    with pytest.raises(AttributeError):
        shared.group = "h"  # type: ignore[misc]
    assert not hasattr(shared, "__dict__")


MATCHES = [
    # Literal filters.
    pytest.param("a/b", "a/b", True, id="literal-equal"),
    pytest.param("a/b", "a/c", False, id="literal-different"),
    pytest.param("a/b", "a/b/c", False, id="literal-shorter-filter"),
    pytest.param("a/b/c", "a/b", False, id="literal-longer-filter"),
    pytest.param("a", "A", False, id="case-sensitive"),
    pytest.param("/a", "a", False, id="leading-slash-is-a-level"),
    pytest.param("a/", "a", False, id="trailing-slash-is-a-level"),
    # '#'.
    pytest.param("#", "a", True, id="hash-one-level"),
    pytest.param("#", "a/b/c", True, id="hash-many-levels"),
    pytest.param("#", "/", True, id="hash-empty-levels"),
    pytest.param("sport/#", "sport", True, id="hash-matches-parent"),
    pytest.param("sport/#", "sport/", True, id="hash-matches-empty-child"),
    pytest.param("sport/#", "sport/tennis/player1", True, id="hash-matches-deep"),
    pytest.param("sport/#", "sports", False, id="hash-not-string-prefix"),
    pytest.param("sport/tennis/#", "sport", False, id="hash-needs-all-parents"),
    pytest.param("/#", "/a", True, id="hash-after-empty-level"),
    pytest.param("/#", "a", False, id="hash-after-empty-level-no-match"),
    # '+'.
    pytest.param("+", "a", True, id="plus-one-level"),
    pytest.param("+", "a/b", False, id="plus-only-one-level"),
    pytest.param("+", "/", False, id="plus-vs-two-levels"),
    pytest.param("+/+", "/", True, id="plus-matches-empty-levels"),
    pytest.param("+/", "a/", True, id="plus-then-empty"),
    pytest.param("a/+", "a/", True, id="plus-matches-empty-level"),
    pytest.param("a/+", "a", False, id="plus-needs-a-level"),
    pytest.param("sport/+/player1", "sport/tennis/player1", True, id="plus-middle"),
    pytest.param("sport/+/player1", "sport/tennis/player2", False, id="plus-middle-mismatch"),
    pytest.param("sport/+/player1", "sport//player1", True, id="plus-middle-empty"),
    pytest.param("+/+/+", "a/b", False, id="plus-too-many"),
    pytest.param("+/#", "a", True, id="plus-hash-parent"),
    pytest.param("+/#", "a/b/c", True, id="plus-hash-deep"),
    pytest.param("+/b/#", "a/b", True, id="plus-literal-hash-parent"),
    pytest.param("+/b/#", "a/c", False, id="plus-literal-hash-mismatch"),
    # The '$' rule.
    pytest.param("#", "$SYS/uptime", False, id="hash-skips-dollar"),
    pytest.param("#", "$SYS", False, id="hash-skips-dollar-single"),
    pytest.param("+/uptime", "$SYS/uptime", False, id="plus-skips-dollar"),
    pytest.param("+", "$aws", False, id="plus-skips-dollar-single"),
    pytest.param("+/#", "$aws/things/t/shadow/get", False, id="plus-hash-skips-dollar"),
    pytest.param("$SYS/#", "$SYS/uptime", True, id="dollar-literal-hash"),
    pytest.param("$SYS/#", "$SYS", True, id="dollar-literal-hash-parent"),
    pytest.param("$SYS/+", "$SYS/uptime", True, id="dollar-literal-plus"),
    pytest.param("$aws/things/+/shadow/#", "$aws/things/t1/shadow/update", True, id="aws-shadow"),
    pytest.param("$aws/things/+/shadow/#", "$aws/things/t1/jobs/get", False, id="aws-jobs"),
    pytest.param("$SYS/uptime", "$SYS/uptime", True, id="dollar-literal-equal"),
    pytest.param("a/$b", "a/$b", True, id="dollar-later-level-literal"),
    pytest.param("a/+", "a/$b", True, id="dollar-later-level-is-ordinary"),
    pytest.param("#", "a$", True, id="dollar-not-first-char"),
    # Shared subscriptions match what their filter matches.
    pytest.param("$share/g/a/+", "a/b", True, id="shared-plus"),
    pytest.param("$share/g/#", "x/y", True, id="shared-hash"),
    pytest.param("$share/g/#", "$SYS/x", False, id="shared-hash-skips-dollar"),
    pytest.param("$share/g/a", "$share/g/a", False, id="shared-is-not-literal"),
]


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), MATCHES)
def test_topic_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


LIMITS = TopicLimits()

WITHIN_LIMITS = [
    pytest.param("a/b/c/d/e/f/g/h", False, id="seven-slashes"),
    pytest.param("x" * 256, False, id="256-bytes"),
    pytest.param("\u00e9" * 128, False, id="256-bytes-two-byte-chars"),
    pytest.param("$aws/rules/myrule/a/b/c/d/e/f/g/h", False, id="basic-ingest-prefix-free"),
    pytest.param("$aws/rules/myrule/" + "x" * 256, False, id="basic-ingest-prefix-bytes-free"),
    pytest.param("a/+/c/d/e/f/g/#", True, id="filter-seven-slashes"),
    pytest.param("$share/group/a/b/c/d/e/f/g/#", True, id="shared-prefix-free"),
    pytest.param("$aws/rules/r/a/b/c/d/e/f/g/#", True, id="filter-basic-ingest"),
]

BEYOND_LIMITS = [
    pytest.param("a/b/c/d/e/f/g/h/i", False, id="eight-slashes"),
    pytest.param("x" * 257, False, id="257-bytes"),
    pytest.param("\u00e9" * 129, False, id="258-bytes-in-129-chars"),
    pytest.param("$aws/rules/myrule/a/b/c/d/e/f/g/h/i", False, id="basic-ingest-eight-slashes"),
    pytest.param("$aws/rules/myrule/" + "x" * 257, False, id="basic-ingest-257-bytes"),
    pytest.param("$aws/things/t/shadow/name/n/update/x/y", False, id="aws-prefix-counts"),
    pytest.param("a/+/c/d/e/f/g/h/#", True, id="filter-eight-slashes"),
    pytest.param("+/" + "x" * 255, True, id="filter-257-bytes"),
    pytest.param("$share/group/a/b/c/d/e/f/g/h/#", True, id="shared-eight-slashes"),
]


@pytest.mark.parametrize(("topic", "is_filter"), WITHIN_LIMITS)
def test_within_topic_limits(topic: str, is_filter: bool) -> None:
    check_topic_limits(topic, LIMITS, is_filter=is_filter)


@pytest.mark.parametrize(("topic", "is_filter"), BEYOND_LIMITS)
def test_beyond_topic_limits(topic: str, is_filter: bool) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        check_topic_limits(topic, LIMITS, is_filter=is_filter)
    expected = ReasonCode.TOPIC_FILTER_INVALID if is_filter else ReasonCode.TOPIC_NAME_INVALID
    assert info.value.reason_code is expected


def test_custom_topic_limits() -> None:
    limits = TopicLimits(max_topic_bytes=5, max_levels=2)
    check_topic_limits("ab/cd", limits)
    with pytest.raises(RemoteProtocolError):
        check_topic_limits("a/b/c", limits)
    with pytest.raises(RemoteProtocolError):
        check_topic_limits("abcdef", limits)


def test_topic_limits_defaults_are_aws_quotas() -> None:
    assert TopicLimits() == TopicLimits(max_topic_bytes=256, max_levels=8)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"max_topic_bytes": 0}, ValueError, id="zero-bytes"),
        pytest.param({"max_levels": 0}, ValueError, id="zero-levels"),
        pytest.param({"max_levels": -1}, ValueError, id="negative-levels"),
        pytest.param({"max_topic_bytes": 1.5}, TypeError, id="float"),
        pytest.param({"max_levels": True}, TypeError, id="bool"),
    ],
)
def test_topic_limits_reject_bad_values(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        TopicLimits(**kwargs)  # type: ignore[arg-type]
