"""Property tests of topic validation and matching, and of the structures built on them.

``topic_matches`` is checked against an independent regular-expression oracle; the routing
table and the retained store are then checked against brute force over ``topic_matches``.
Levels are drawn from a small alphabet so that generated filters and topics collide often.
"""

from __future__ import annotations

import re
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.broker._retained import RetainedStore
from bastion.broker._subscriptions import SubscriptionIndex
from bastion.mqtt._errors import RemoteProtocolError
from bastion.mqtt._reason import ReasonCode
from bastion.mqtt._topics import (
    parse_shared_subscription,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)

LEVELS = st.sampled_from(["a", "b", "c", "", "$SYS", "$aws", "x$", "\u00e9"])
KEYS = st.sampled_from(["k1", "k2", "k3", "k4"])

topics = st.lists(LEVELS, min_size=1, max_size=5).map("/".join).filter(bool)


@st.composite
def plain_filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(st.one_of(LEVELS, st.just("+")), max_size=5))
    if not levels or draw(st.booleans()):
        levels.append("#")
    topic_filter = "/".join(levels)
    return topic_filter if topic_filter else "#"


@st.composite
def filters(draw: st.DrawFn) -> str:
    topic_filter = draw(plain_filters())
    if draw(st.integers(0, 3)) == 0:
        return f"$share/{draw(st.sampled_from(['g1', 'g2']))}/{topic_filter}"
    return topic_filter


def reference_matches(topic_filter: str, topic: str) -> bool:
    """The spec's matching rules as a regular expression (independent of topic_matches)."""
    shared = parse_shared_subscription(topic_filter)
    if shared is not None:
        topic_filter = shared.topic_filter
    levels = topic_filter.split("/")
    if topic.startswith("$") and levels[0] in ("+", "#"):
        return False
    parts = ["[^/]*" if level == "+" else re.escape(level) for level in levels if level != "#"]
    if levels[-1] != "#":
        pattern = "/".join(parts)
    elif parts:
        pattern = "/".join(parts) + "(?:/.*)?"
    else:
        pattern = ".*"
    return re.fullmatch(pattern, topic, re.DOTALL) is not None


def is_shared(topic_filter: str) -> bool:
    return topic_filter.startswith("$share/")


@given(topics)
def test_generated_topics_are_valid_names(topic: str) -> None:
    validate_topic_name(topic)


@given(filters())
def test_generated_filters_are_valid(topic_filter: str) -> None:
    validate_topic_filter(topic_filter)


@given(st.text(alphabet="ab/+#$\x00\u00e9", max_size=12))
def test_validation_fails_only_with_its_reason_code(text: str) -> None:
    try:
        validate_topic_name(text)
    except RemoteProtocolError as exc:
        assert exc.reason_code is ReasonCode.TOPIC_NAME_INVALID
    else:
        assert text and "+" not in text and "#" not in text and "\x00" not in text
    try:
        validate_topic_filter(text)
    except RemoteProtocolError as exc:
        assert exc.reason_code is ReasonCode.TOPIC_FILTER_INVALID
    else:
        # A valid non-shared filter is a name once its wildcards are made literal.
        plain = text.split("/", 2)[2] if is_shared(text) else text
        validate_topic_name(plain.replace("+", "p").replace("#", "h"))


@given(filters(), topics)
def test_topic_matches_agrees_with_reference(topic_filter: str, topic: str) -> None:
    assert topic_matches(topic_filter, topic) is reference_matches(topic_filter, topic)


@given(topics)
def test_a_filter_equal_to_a_topic_matches_it(topic: str) -> None:
    validate_topic_filter(topic)
    assert topic_matches(topic, topic)
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    index.add(topic, "k", 1)
    assert index.match(topic) == [("k", 1)]
    store: RetainedStore[int] = RetainedStore()
    store.set(topic, 1)
    assert store.match(topic) == [(topic, 1)]


@given(topics)
def test_hash_matches_every_topic_not_starting_with_dollar(topic: str) -> None:
    assert topic_matches("#", topic) is not topic.startswith("$")
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    index.add("#", "k", 1)
    assert bool(index.match(topic)) is not topic.startswith("$")


Value = tuple[str, int]


@settings(deadline=None)
@given(
    pool=st.lists(filters(), min_size=1, max_size=8, unique=True),
    probe_topics=st.lists(topics, min_size=1, max_size=8),
    data=st.data(),
)
def test_index_match_agrees_with_brute_force(
    pool: list[str], probe_topics: list[str], data: st.DataObject
) -> None:
    index: SubscriptionIndex[str, Value] = SubscriptionIndex()
    model: dict[tuple[str, str], Value] = {}
    pooled = st.sampled_from(pool)
    operations = st.one_of(
        st.tuples(st.just("add"), pooled, KEYS, st.integers(0, 3)),
        st.tuples(st.just("remove"), pooled, KEYS, st.just(0)),
        st.tuples(st.just("remove_all"), st.just(""), KEYS, st.just(0)),
    )
    for operation, topic_filter, key, version in data.draw(st.lists(operations, max_size=40)):
        if operation == "add":
            new = (topic_filter, key) not in model
            model[topic_filter, key] = (topic_filter, version)
            assert index.add(topic_filter, key, (topic_filter, version)) is new
        elif operation == "remove":
            existed = model.pop((topic_filter, key), None) is not None
            assert index.remove(topic_filter, key) is existed
        else:
            gone = [pair for pair in model if pair[1] == key]
            for pair in gone:
                del model[pair]
            assert index.remove_all(key) == len(gone)
        assert len(index) == len(model)

    for key in ["k1", "k2", "k3", "k4"]:
        assert sorted(index.filters_of(key)) == sorted(f for f, k in model if k == key)
        assert index.count(key) == sum(1 for _, k in model if k == key)

    for topic in probe_topics:
        matched = index.match(topic)
        plain = Counter(item for item in matched if not is_shared(item[1][0]))
        expected_plain = Counter(
            (key, value)
            for (topic_filter, key), value in model.items()
            if not is_shared(topic_filter) and topic_matches(topic_filter, topic)
        )
        assert plain == expected_plain
        shared = [item for item in matched if is_shared(item[1][0])]
        expected_groups = {
            topic_filter
            for topic_filter, _ in model
            if is_shared(topic_filter) and topic_matches(topic_filter, topic)
        }
        assert Counter(value[0] for _, value in shared) == Counter(expected_groups)
        for key, value in shared:
            assert model[value[0], key] == value

    for key in ["k1", "k2", "k3", "k4"]:
        index.remove_all(key)
    assert len(index) == 0
    assert index._node_count() == 0


@settings(deadline=None)
@given(
    members=st.lists(KEYS, min_size=1, max_size=4, unique=True),
    removed=st.lists(KEYS, max_size=3),
    warm_up=st.integers(0, 5),
    topic_filter=plain_filters(),
    topic=topics,
)
def test_shared_group_serves_each_member_once_per_round(
    members: list[str], removed: list[str], warm_up: int, topic_filter: str, topic: str
) -> None:
    shared_filter = f"$share/g/{topic_filter}"
    index: SubscriptionIndex[str, None] = SubscriptionIndex()
    for member in members:
        index.add(shared_filter, member, None)
    for _ in range(warm_up):
        index.match(topic)
    for member in removed:
        index.remove(shared_filter, member)
    remaining = sorted(set(members) - set(removed))
    rounds = [index.match(topic) for _ in range(len(remaining))]
    if not remaining or not topic_matches(topic_filter, topic):
        assert all(result == [] for result in rounds)
        return
    assert all(len(result) == 1 for result in rounds)
    assert sorted(result[0][0] for result in rounds) == remaining


@settings(deadline=None)
@given(
    pool=st.lists(topics, min_size=1, max_size=10, unique=True),
    probe_filters=st.lists(plain_filters(), min_size=1, max_size=8),
    data=st.data(),
)
def test_retained_match_agrees_with_brute_force(
    pool: list[str], probe_filters: list[str], data: st.DataObject
) -> None:
    store: RetainedStore[int] = RetainedStore()
    model: dict[str, int] = {}
    operations = st.tuples(st.booleans(), st.sampled_from(pool), st.integers(0, 9))
    for is_set, topic, message in data.draw(st.lists(operations, max_size=40)):
        if is_set:
            model[topic] = message
            store.set(topic, message)
        else:
            assert store.delete(topic) is (model.pop(topic, None) is not None)
        assert len(store) == len(model)

    for topic in pool:
        assert store.get(topic) == model.get(topic)
    for topic_filter in probe_filters:
        found = store.match(topic_filter)
        expected = {(t, m) for t, m in model.items() if topic_matches(topic_filter, t)}
        assert len(found) == len(expected)
        assert set(found) == expected

    assert store.topics() == sorted(model)
    page_size = data.draw(st.integers(1, 4))
    listed: list[str] = []
    after: str | None = None
    while True:
        page = store.topics(after=after, limit=page_size)
        listed.extend(page)
        if len(page) < page_size:
            break
        after = page[-1]
    assert listed == sorted(model)
    prefix = data.draw(st.sampled_from(["", "a", "a/", "$", "\u00e9/", "b/c"]))
    assert store.topics(prefix) == sorted(t for t in model if t.startswith(prefix))

    for topic in list(model):
        store.delete(topic)
    assert len(store) == 0
    assert store._node_count() == 0
