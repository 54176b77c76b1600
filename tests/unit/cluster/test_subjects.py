"""The encoding of MQTT topics and filters as NATS subjects: examples, round trips, matching.

The property that matters is matching equivalence: NATS's wildcard matching over the
encoded subjects must agree with ``topic_matches`` over the MQTT originals. It is checked
against a small reference NATS matcher written here from the NATS rules (``*`` is one
token, ``>`` one or more trailing tokens), on levels drawn from a small alphabet of the
troublemakers (so that filters and topics collide often) and on arbitrary Unicode levels.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.cluster import DEFAULT_SUBJECT_PREFIX, SubjectCodec
from bastion.mqtt import topic_matches, validate_topic_filter, validate_topic_name

CODEC = SubjectCodec("bastion.msg")

#: A subject NATS accepts, within the conservative alphabet: non-empty tokens of letters,
#: digits, ``-``, ``_`` and ``=``; in a subscription also ``*`` tokens and a last ``>``.
NATS_SUBJECT = re.compile(r"[A-Za-z0-9_=-]+(?:\.[A-Za-z0-9_=-]+)*")
NATS_PATTERN = re.compile(r"(?:[A-Za-z0-9_=-]+|\*)(?:\.(?:[A-Za-z0-9_=-]+|\*))*(?:\.>)?")
#: A NATS KV key (nats.go's ``validKeyRe``).
KV_KEY = re.compile(r"[-/_=.a-zA-Z0-9]+")


def nats_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` matches exactly one token, a last ``>`` one or more."""
    pattern_tokens = pattern.split(".")
    subject_tokens = subject.split(".")
    for index, token in enumerate(pattern_tokens):
        if token == ">":
            assert index == len(pattern_tokens) - 1, "'>' must be the last token"
            return len(subject_tokens) > index
        if index >= len(subject_tokens):
            return False
        if token != "*" and token != subject_tokens[index]:
            return False
    return len(pattern_tokens) == len(subject_tokens)


def subscription_matches(codec: SubjectCodec, topic_filter: str, topic: str) -> bool:
    """Whether a subscription to ``topic_filter``'s subjects receives ``topic``, checking
    that at most one of the subjects matches (a message is delivered once)."""
    subject = codec.encode_topic(topic)
    matching = [s for s in codec.encode_filter(topic_filter) if nats_matches(s, subject)]
    assert len(matching) <= 1, matching
    return bool(matching)


# --- examples -----------------------------------------------------------------------------

TOPICS = [
    pytest.param("sport/tennis", "bastion.msg.t.sport.tennis", id="plain"),
    pytest.param("a", "bastion.msg.t.a", id="one-level"),
    pytest.param("Thing-1_x", "bastion.msg.t.Thing-1_x", id="literal-punctuation"),
    pytest.param(
        "$aws/things/x/shadow/update", "bastion.msg.d.aws.things.x.shadow.update", id="aws"
    ),
    pytest.param("$SYS/broker/uptime", "bastion.msg.d.SYS.broker.uptime", id="sys"),
    pytest.param("$", "bastion.msg.d.=", id="lone-dollar"),
    pytest.param("$$", "bastion.msg.d.=24", id="dollar-dollar"),
    pytest.param("$/a", "bastion.msg.d.=.a", id="dollar-empty-first-level"),
    pytest.param("a$/$", "bastion.msg.t.a=24.=24", id="dollar-not-first"),
    pytest.param("$share/g/a", "bastion.msg.d.share.g.a", id="share-is-just-a-name"),
    pytest.param("a/./b", "bastion.msg.t.a.=2E.b", id="dot-level"),
    pytest.param("a.b", "bastion.msg.t.a=2Eb", id="dot-inside-level"),
    pytest.param("a/*/>", "bastion.msg.t.a.=2A.=3E", id="nats-wildcards"),
    pytest.param("*", "bastion.msg.t.=2A", id="star-alone"),
    pytest.param("=/=3D", "bastion.msg.t.=3D.=3D3D", id="escape-character"),
    pytest.param("~", "bastion.msg.t.=7E", id="tilde"),
    pytest.param("a//b", "bastion.msg.t.a.=.b", id="empty-middle-level"),
    pytest.param("/a", "bastion.msg.t.=.a", id="leading-slash"),
    pytest.param("a/", "bastion.msg.t.a.=", id="trailing-slash"),
    pytest.param("/", "bastion.msg.t.=.=", id="two-empty-levels"),
    pytest.param("///", "bastion.msg.t.=.=.=.=", id="four-empty-levels"),
    pytest.param(" a b ", "bastion.msg.t.=20a=20b=20", id="spaces"),
    pytest.param("\t\r\n", "bastion.msg.t.=09=0D=0A", id="control-whitespace"),
    pytest.param("caf\u00e9/", "bastion.msg.t.caf=C3=A9.=", id="latin-1"),
    pytest.param("\u6e29\u5ea6", "bastion.msg.t.=E6=B8=A9=E5=BA=A6", id="cjk"),
    pytest.param("\U0001f600", "bastion.msg.t.=F0=9F=98=80", id="astral"),
    pytest.param("\u00ff", "bastion.msg.t.=C3=BF", id="y-diaeresis-not-latin-1"),
    pytest.param("\x7f", "bastion.msg.t.=7F", id="delete"),
]

FILTERS = [
    pytest.param("sport/tennis", ("bastion.msg.t.sport.tennis",), id="no-wildcard"),
    pytest.param("#", ("bastion.msg.t.>",), id="hash"),
    pytest.param("+", ("bastion.msg.t.*",), id="plus"),
    pytest.param("a/#", ("bastion.msg.t.a", "bastion.msg.t.a.>"), id="hash-with-parent"),
    pytest.param("+/#", ("bastion.msg.t.*", "bastion.msg.t.*.>"), id="plus-hash"),
    pytest.param("a/+/c", ("bastion.msg.t.a.*.c",), id="plus-middle"),
    pytest.param("+/+", ("bastion.msg.t.*.*",), id="plus-plus"),
    pytest.param("a//+", ("bastion.msg.t.a.=.*",), id="empty-level"),
    pytest.param("/#", ("bastion.msg.t.=", "bastion.msg.t.=.>"), id="empty-parent"),
    pytest.param("$SYS/#", ("bastion.msg.d.SYS", "bastion.msg.d.SYS.>"), id="sys-hash"),
    pytest.param(
        "$aws/things/+/shadow/#",
        (
            "bastion.msg.d.aws.things.*.shadow",
            "bastion.msg.d.aws.things.*.shadow.>",
        ),
        id="aws-shadow",
    ),
    pytest.param("$/#", ("bastion.msg.d.=", "bastion.msg.d.=.>"), id="lone-dollar-hash"),
    pytest.param("a/*/>", ("bastion.msg.t.a.=2A.=3E",), id="literal-nats-wildcards"),
    pytest.param("$share", ("bastion.msg.d.share",), id="share-without-slash"),
]


@pytest.mark.parametrize(("topic", "subject"), TOPICS)
def test_topic_examples(topic: str, subject: str) -> None:
    assert CODEC.encode_topic(topic) == subject
    assert CODEC.decode_topic(subject) == topic


@pytest.mark.parametrize(("topic_filter", "subjects"), FILTERS)
def test_filter_examples(topic_filter: str, subjects: tuple[str, ...]) -> None:
    assert CODEC.encode_filter(topic_filter) == subjects
    assert CODEC.decode_filter(subjects) == topic_filter
    assert CODEC.decode_filter(list(subjects)) == topic_filter


def test_default_prefix_and_stream_subject() -> None:
    assert SubjectCodec().prefix == DEFAULT_SUBJECT_PREFIX == "bastion.msg"
    assert SubjectCodec("x").encode_topic("a/b") == "x.t.a.b"
    assert SubjectCodec("x").stream_subject == "x.>"
    assert SubjectCodec("a-1.b_2.c").encode_filter("#") == ("a-1.b_2.c.t.>",)


@pytest.mark.parametrize(
    "topic_filter",
    ["#", "+/#", "+/things/#", "+/+/+/+/+", "+/things/x/shadow/update"],
)
def test_first_level_wildcards_do_not_reach_dollar_topics(topic_filter: str) -> None:
    topic = "$aws/things/x/shadow/update"
    assert not topic_matches(topic_filter, topic)
    assert not subscription_matches(CODEC, topic_filter, topic)
    assert subscription_matches(CODEC, topic_filter, "aws/things/x/shadow/update")


@pytest.mark.parametrize(
    "topic_filter", ["$aws/#", "$aws/things/+/shadow/update", "$aws/+/+/+/+", "$aws/things/#"]
)
def test_dollar_filters_reach_dollar_topics(topic_filter: str) -> None:
    assert subscription_matches(CODEC, topic_filter, "$aws/things/x/shadow/update")
    assert not subscription_matches(CODEC, topic_filter, "aws/things/x/shadow/update")


def test_hash_matches_its_parent_level_once() -> None:
    for topic in ["a", "a/", "a/b", "a/b/c"]:
        assert subscription_matches(CODEC, "a/#", topic)
    for topic in ["b", "ab", "$a", "/a"]:
        assert not subscription_matches(CODEC, "a/#", topic)


# --- errors -------------------------------------------------------------------------------

INVALID_TOPICS = [
    pytest.param("", id="empty"),
    pytest.param("a/+", id="plus"),
    pytest.param("a/#", id="hash"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\ud800", id="lone-surrogate"),
    pytest.param("x" * 65536, id="too-long"),
]


@pytest.mark.parametrize("topic", INVALID_TOPICS)
def test_invalid_topics_are_refused(topic: str) -> None:
    with pytest.raises(ValueError, match="not a valid topic name"):
        CODEC.encode_topic(topic)


INVALID_FILTERS = [
    pytest.param("", "not a valid topic filter", id="empty"),
    pytest.param("a/#/b", "not a valid topic filter", id="hash-not-last"),
    pytest.param("a#", "not a valid topic filter", id="hash-inside-level"),
    pytest.param("a+/b", "not a valid topic filter", id="plus-inside-level"),
    pytest.param("a\x00", "not a valid topic filter", id="nul"),
    pytest.param("$share/g/a", "shared subscription", id="shared"),
    pytest.param("$share/g/#", "shared subscription", id="shared-hash"),
    pytest.param("$share/g", "shared subscription", id="shared-without-filter"),
]


@pytest.mark.parametrize(("topic_filter", "message"), INVALID_FILTERS)
def test_invalid_and_shared_filters_are_refused(topic_filter: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CODEC.encode_filter(topic_filter)


MALFORMED_TOPIC_SUBJECTS = [
    pytest.param("other.t.a", id="foreign-prefix"),
    pytest.param("bastion.msgs.t.a", id="longer-prefix-token"),
    pytest.param("bastion.msg", id="prefix-only"),
    pytest.param("bastion.msg.t", id="no-levels"),
    pytest.param("bastion.msg.t.", id="empty-after-namespace"),
    pytest.param("bastion.msg.x.a", id="unknown-namespace"),
    pytest.param("bastion.msg.t.a..b", id="empty-token"),
    pytest.param("bastion.msg.t.a.", id="trailing-dot"),
    pytest.param("bastion.msg.t.=41", id="escaped-literal"),
    pytest.param("bastion.msg.t.=2e", id="lower-case-hex"),
    pytest.param("bastion.msg.t.=2", id="truncated-escape"),
    pytest.param("bastion.msg.t.a=", id="escape-at-end"),
    pytest.param("bastion.msg.t.==", id="double-escape"),
    pytest.param("bastion.msg.t.=G0", id="not-hex"),
    pytest.param("bastion.msg.t.= 2", id="space-in-escape"),
    pytest.param("bastion.msg.t.a=2Fb", id="escaped-slash"),
    pytest.param("bastion.msg.t.=00", id="escaped-nul"),
    pytest.param("bastion.msg.t.=2B", id="escaped-plus"),
    pytest.param("bastion.msg.t.a.=23", id="escaped-hash"),
    pytest.param("bastion.msg.t.=FF", id="not-utf-8"),
    pytest.param("bastion.msg.t.=C3", id="truncated-utf-8"),
    pytest.param("bastion.msg.t.=C0=AE", id="overlong-utf-8"),
    pytest.param("bastion.msg.t.=ED=A0=80", id="utf-8-surrogate"),
    pytest.param("bastion.msg.t.=24a", id="dollar-topic-in-ordinary-namespace"),
    pytest.param("bastion.msg.t.*", id="wildcard-star"),
    pytest.param("bastion.msg.t.a.>", id="wildcard-gt"),
    pytest.param("bastion.msg.t.a b", id="raw-space"),
    pytest.param("bastion.msg.t.a/b", id="raw-slash"),
    pytest.param("bastion.msg.t.caf\u00e9", id="raw-non-ascii"),
    pytest.param("bastion.msg.t.a~b", id="raw-tilde"),
    pytest.param("bastion.msg.t.a%41", id="percent-escape"),
    pytest.param("bastion.msg.t.=20=", id="empty-marker-after-escape"),
    pytest.param("bastion.msg.t." + "x" * 65536, id="too-long-plain"),
    pytest.param("bastion.msg.t." + "=20" * 65536, id="too-long-escaped"),
    pytest.param("bastion.msg.d." + "x" * 65535, id="too-long-with-dollar"),
]


@pytest.mark.parametrize("subject", MALFORMED_TOPIC_SUBJECTS)
def test_malformed_topic_subjects_are_refused(subject: str) -> None:
    with pytest.raises(ValueError, match="subject"):
        CODEC.decode_topic(subject)


def test_longest_topics_round_trip() -> None:
    for topic in ["x" * 65535, "$" + "x" * 65534, "\u00e9" * 32767, " " * 65535]:
        assert CODEC.decode_topic(CODEC.encode_topic(topic)) == topic


MALFORMED_FILTER_SUBJECTS = [
    pytest.param((), id="none"),
    pytest.param(("other.t.>",), id="foreign-prefix"),
    pytest.param(("bastion.msg.t.a.>",), id="hash-without-parent"),
    pytest.param(("bastion.msg.t.a.>", "bastion.msg.t.a"), id="parent-last"),
    pytest.param(("bastion.msg.t.b", "bastion.msg.t.a.>"), id="wrong-parent"),
    pytest.param(("bastion.msg.t.a", "bastion.msg.t.a"), id="parent-twice"),
    pytest.param(("bastion.msg.t.a", "bastion.msg.t.a", "bastion.msg.t.a.>"), id="three"),
    pytest.param(("bastion.msg.t.>.a",), id="gt-not-last"),
    pytest.param(("bastion.msg.t.a*",), id="star-inside-token"),
    pytest.param(("bastion.msg.t.=2B",), id="escaped-plus"),
    pytest.param(("bastion.msg.d.>",), id="dollar-hash"),
    pytest.param(("bastion.msg.d.*",), id="dollar-plus"),
    pytest.param(("bastion.msg.d.share.g.a",), id="shared"),
    pytest.param(("bastion.msg.t.=41",), id="escaped-literal"),
    pytest.param(("bastion.msg.t..*",), id="empty-token"),
]


@pytest.mark.parametrize("subjects", MALFORMED_FILTER_SUBJECTS)
def test_malformed_filter_subjects_are_refused(subjects: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="subject"):
        CODEC.decode_filter(subjects)


def test_decode_filter_wants_a_sequence_not_a_string() -> None:
    with pytest.raises(TypeError, match="sequence"):
        CODEC.decode_filter("bastion.msg.t.a")


@pytest.mark.parametrize(
    "prefix", ["", ".", "a.", ".a", "a..b", "a.*", "a.>", "a b", "a=b", "a~b", "\u00e9", "$JS"]
)
def test_invalid_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        SubjectCodec(prefix)


def test_prefix_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="prefix must be a str"):
        SubjectCodec(b"bastion")  # type: ignore[arg-type]


# --- length -------------------------------------------------------------------------------


def test_worst_case_expansion_is_three_per_byte() -> None:
    prefix_part = len("bastion.msg.t.")
    assert CODEC.max_subject_length(0) == prefix_part
    assert CODEC.max_subject_length(256) == prefix_part + 768
    worst = " " * 256  # every byte escaped
    assert len(CODEC.encode_topic(worst)) == CODEC.max_subject_length(256)
    assert len(CODEC.encode_topic("/" * 255)) < CODEC.max_subject_length(256)
    assert len(CODEC.encode_topic("\U0001f600" * 64)) == CODEC.max_subject_length(256)
    with pytest.raises(ValueError, match="negative"):
        CODEC.max_subject_length(-1)


# --- properties ---------------------------------------------------------------------------

#: Levels that stress the escaping: NATS's separators and wildcards, the escape character,
#: would-be escapes, ``$``, spaces, empty levels, non-ASCII.
TRICKY_LEVELS = st.sampled_from(
    ["a", "b", "", "$", "$a", ".", "*", ">", "=", "=2E", "=41", "~", " ", "\u00e9", "a.b"]
)
ANY_LEVEL = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="/+#\x00"), max_size=10
)
LEVELS = st.one_of(TRICKY_LEVELS, ANY_LEVEL)
PREFIXES = st.sampled_from(["bastion.msg", "x", "a-1.b_2.C3"])


def join_topic(levels: list[str]) -> str:
    topic = "/".join(levels)
    return topic if topic else "a"


topics = st.lists(LEVELS, min_size=1, max_size=8).map(join_topic)
tricky_topics = st.lists(TRICKY_LEVELS, min_size=1, max_size=5).map(join_topic)


@st.composite
def filters(draw: st.DrawFn, levels: st.SearchStrategy[str] = LEVELS) -> str:
    chosen = draw(st.lists(st.one_of(levels, st.just("+")), max_size=6))
    if not chosen or draw(st.booleans()):
        chosen.append("#")
    topic_filter = "/".join(chosen)
    return topic_filter if topic_filter else "#"


@st.composite
def filters_for(draw: st.DrawFn, topic: str) -> str:
    """A filter made from ``topic``: some levels turned into ``+``, perhaps cut by ``#``,
    perhaps one level changed (so that it may or may not match)."""
    levels = topic.split("/")
    chosen = ["+" if draw(st.integers(0, 3)) == 0 else level for level in levels]
    if draw(st.booleans()):
        chosen = chosen[: draw(st.integers(0, len(chosen)))] + ["#"]
    if draw(st.integers(0, 3)) == 0:
        index = draw(st.integers(0, len(chosen) - 1))
        if chosen[index] not in ("+", "#"):
            chosen[index] = draw(LEVELS)
    topic_filter = "/".join(chosen)
    return topic_filter if topic_filter else "#"


@given(topics)
def test_generated_topics_and_filters_are_valid(topic: str) -> None:
    validate_topic_name(topic)
    validate_topic_filter(topic)


@given(filters())
def test_generated_filters_are_valid(topic_filter: str) -> None:
    validate_topic_filter(topic_filter)


@given(PREFIXES, topics)
def test_topics_round_trip(prefix: str, topic: str) -> None:
    codec = SubjectCodec(prefix)
    subject = codec.encode_topic(topic)
    assert NATS_SUBJECT.fullmatch(subject)
    assert subject.startswith(prefix + ".")
    assert KV_KEY.fullmatch(subject[len(prefix) + 1 :])
    assert subject.count(".") == prefix.count(".") + 1 + topic.count("/") + 1
    assert len(subject) <= codec.max_subject_length(len(topic.encode("utf-8")))
    assert codec.decode_topic(subject) == topic


@given(PREFIXES, filters())
def test_filters_round_trip(prefix: str, topic_filter: str) -> None:
    codec = SubjectCodec(prefix)
    subjects = codec.encode_filter(topic_filter)
    assert len(subjects) == (2 if topic_filter.endswith("/#") else 1)
    for subject in subjects:
        assert NATS_PATTERN.fullmatch(subject)
        assert len(subject) <= codec.max_subject_length(len(topic_filter.encode("utf-8")))
    assert codec.decode_filter(subjects) == topic_filter


@given(topics, topics)
def test_distinct_topics_have_distinct_subjects(first: str, second: str) -> None:
    assert (CODEC.encode_topic(first) == CODEC.encode_topic(second)) is (first == second)


#: Text that looks like subjects: the codec's heads, tokens, escapes, and what is not allowed.
SUBJECT_PIECES = st.sampled_from(
    ["bastion.msg.t.", "bastion.msg.d.", "bastion.msg.", "a", "A", "_", "-", "0", "."]
    + ["=", "=2", "=2E", "=2e", "=41", "=C3", "=A9", "=FF", "=24", "=2F", "=00", "=3D"]
    + ["*", ">", " ", "$", "/", "\u00e9", "~"]
)
subject_like = st.lists(SUBJECT_PIECES, max_size=12).map("".join)


@settings(max_examples=500)
@given(subject_like)
def test_decoding_accepts_only_what_encoding_produces(subject: str) -> None:
    try:
        topic = CODEC.decode_topic(subject)
    except ValueError:
        pass
    else:
        assert CODEC.encode_topic(topic) == subject
    for subjects in [(subject,), (subject.removesuffix(".>"), subject)]:
        try:
            topic_filter = CODEC.decode_filter(subjects)
        except ValueError:
            continue
        assert CODEC.encode_filter(topic_filter) == subjects


@settings(max_examples=1000)
@given(filters(TRICKY_LEVELS), tricky_topics)
def test_nats_matching_equals_mqtt_matching(topic_filter: str, topic: str) -> None:
    assert subscription_matches(CODEC, topic_filter, topic) is topic_matches(topic_filter, topic)


@settings(max_examples=500)
@given(topics, st.data())
def test_nats_matching_equals_mqtt_matching_on_any_levels(topic: str, data: st.DataObject) -> None:
    topic_filter = data.draw(filters_for(topic))
    assert subscription_matches(CODEC, topic_filter, topic) is topic_matches(topic_filter, topic)


@given(filters(), topics)
def test_nats_matching_equals_mqtt_matching_on_unrelated_pairs(
    topic_filter: str, topic: str
) -> None:
    assert subscription_matches(CODEC, topic_filter, topic) is topic_matches(topic_filter, topic)


@given(tricky_topics)
def test_every_topic_matches_its_own_filter_and_hash_unless_dollar(topic: str) -> None:
    assert subscription_matches(CODEC, topic, topic)
    assert subscription_matches(CODEC, "#", topic) is not topic.startswith("$")
