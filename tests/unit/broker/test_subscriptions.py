"""The routing table: add/replace/remove, matching, shared groups and pruning."""

from __future__ import annotations

from collections import Counter

import pytest

from bastion.broker._subscriptions import SubscriptionIndex


def matched_keys(index: SubscriptionIndex[str, int], topic: str) -> Counter[str]:
    return Counter(key for key, _ in index.match(topic))


def test_empty_index_matches_nothing() -> None:
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    assert index.match("a/b") == []
    assert len(index) == 0
    assert index._node_count() == 0


def test_add_returns_true_for_new_and_false_for_replacement() -> None:
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    assert index.add("a/b", "c1", 1) is True
    assert index.add("a/b", "c1", 2) is False
    assert index.add("a/b", "c2", 3) is True
    assert sorted(index.match("a/b")) == [("c1", 2), ("c2", 3)]
    assert len(index) == 2
    assert index.count("c1") == 1


@pytest.mark.parametrize(
    "topic_filter",
    [
        pytest.param("a/+", id="plus"),
        pytest.param("a/#", id="hash"),
        pytest.param("$share/g/a/b", id="shared-exact"),
        pytest.param("$share/g/a/+", id="shared-wildcard"),
    ],
)
def test_replace_keeps_one_subscription(topic_filter: str) -> None:
    index: SubscriptionIndex[str, str] = SubscriptionIndex()
    assert index.add(topic_filter, "c1", "old")
    assert not index.add(topic_filter, "c1", "new")
    assert index.match("a/b") == [("c1", "new")]
    assert len(index) == 1
    assert index.filters_of("c1") == [topic_filter]


@pytest.mark.parametrize(
    "topic_filter",
    [
        pytest.param("", id="empty"),
        pytest.param("a/#/b", id="hash-not-last"),
        pytest.param("a+", id="plus-in-level"),
        pytest.param("$share//a", id="empty-group"),
        pytest.param("$share/g", id="shared-without-filter"),
    ],
)
def test_add_rejects_invalid_filter(topic_filter: str) -> None:
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    with pytest.raises(ValueError):
        index.add(topic_filter, "c1", 1)
    assert len(index) == 0
    assert index._node_count() == 0
    assert index.filters_of("c1") == []


def test_match_exact_and_wildcards_together() -> None:
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    index.add("sport/tennis/player1", "exact", 0)
    index.add("sport/+/player1", "plus", 0)
    index.add("sport/#", "hash", 0)
    index.add("#", "all", 0)
    index.add("+/+/+", "three", 0)
    index.add("sport/tennis", "other", 0)
    assert matched_keys(index, "sport/tennis/player1") == Counter(
        {"exact": 1, "plus": 1, "hash": 1, "all": 1, "three": 1}
    )
    assert matched_keys(index, "sport") == Counter({"hash": 1, "all": 1})
    assert matched_keys(index, "sport/tennis") == Counter({"hash": 1, "all": 1, "other": 1})


def test_overlapping_filters_of_one_key_appear_once_each() -> None:
    index: SubscriptionIndex[str, str] = SubscriptionIndex()
    index.add("a/b", "c1", "exact")
    index.add("a/+", "c1", "plus")
    index.add("#", "c1", "hash")
    assert sorted(index.match("a/b")) == [("c1", "exact"), ("c1", "hash"), ("c1", "plus")]


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        pytest.param("$SYS/uptime", {"sys-hash", "sys-plus", "sys-exact"}, id="sys"),
        pytest.param("$SYS", {"sys-hash"}, id="sys-parent"),
        pytest.param("$aws/things/t1/shadow/update", {"aws-shadow"}, id="aws"),
        pytest.param("plain/uptime", {"hash", "plus"}, id="plain"),
    ],
)
def test_dollar_topics_skip_first_level_wildcards(topic: str, expected: set[str]) -> None:
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    index.add("#", "hash", 0)
    index.add("+/uptime", "plus", 0)
    index.add("$SYS/#", "sys-hash", 0)
    index.add("$SYS/+", "sys-plus", 0)
    index.add("$SYS/uptime", "sys-exact", 0)
    index.add("$aws/things/+/shadow/#", "aws-shadow", 0)
    index.add("$share/g/#", "shared-hash", 0)
    assert set(matched_keys(index, topic)) == expected | (
        set() if topic.startswith("$") else {"shared-hash"}
    )


def test_shared_group_round_robin() -> None:
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    members = ["m1", "m2", "m3"]
    for member in members:
        index.add("$share/workers/jobs/+", member, 0)
    index.add("jobs/+", "observer", 0)
    picked = []
    for _ in range(6):
        keys = matched_keys(index, "jobs/1")
        assert keys["observer"] == 1
        group_keys = [key for key in keys if key != "observer"]
        assert len(group_keys) == 1 and keys[group_keys[0]] == 1
        picked.append(group_keys[0])
    assert picked[:3] == members
    assert picked[3:] == members


def test_each_group_gets_one_member_per_message() -> None:
    index: SubscriptionIndex[str, str] = SubscriptionIndex()
    index.add("$share/a/t/#", "a1", "a")
    index.add("$share/a/t/#", "a2", "a")
    index.add("$share/b/t/#", "b1", "b")
    index.add("$share/a/t/x", "ax", "a-exact")  # same name, different filter: another group
    for _ in range(4):
        values = Counter(value for _, value in index.match("t/x"))
        assert values == Counter({"a": 1, "b": 1, "a-exact": 1})


def test_shared_round_robin_survives_member_removal() -> None:
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    for member in ["m1", "m2", "m3", "m4"]:
        index.add("$share/g/t", member, 0)
    assert index.match("t") == [("m1", 0)]
    assert index.remove("$share/g/t", "m3")
    seen = [index.match("t")[0][0] for _ in range(6)]
    assert sorted(seen[:3]) == ["m1", "m2", "m4"]
    assert seen[3:] == seen[:3]
    assert index.remove("$share/g/t", "m1")
    assert index.remove("$share/g/t", "m2")
    assert index.remove("$share/g/t", "m4")
    assert index.match("t") == []
    assert index._node_count() == 0


def test_shared_and_plain_subscription_of_one_key_are_distinct() -> None:
    index: SubscriptionIndex[str, str] = SubscriptionIndex()
    assert index.add("a/b", "c1", "plain")
    assert index.add("$share/g/a/b", "c1", "shared")
    assert sorted(index.match("a/b")) == [("c1", "plain"), ("c1", "shared")]
    assert index.count("c1") == 2
    assert index.remove("a/b", "c1")
    assert index.match("a/b") == [("c1", "shared")]


def test_remove() -> None:
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    index.add("a/+", "c1", 1)
    index.add("a/+", "c2", 2)
    assert index.remove("a/+", "c1") is True
    assert index.remove("a/+", "c1") is False
    assert index.remove("a/b", "c2") is False
    assert index.remove("a/+", "nobody") is False
    assert index.remove("not/#/valid", "c2") is False
    assert index.match("a/x") == [("c2", 2)]
    assert len(index) == 1


def test_remove_all() -> None:
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    filters = ["a/b", "a/+", "#", "$share/g/a/#", "$SYS/+"]
    for topic_filter in filters:
        index.add(topic_filter, "gone", 0)
    index.add("a/+", "stays", 0)
    assert index.filters_of("gone") == filters
    assert index.count("gone") == 5
    assert index.remove_all("gone") == 5
    assert index.remove_all("gone") == 0
    assert index.filters_of("gone") == []
    assert index.count("gone") == 0
    assert index.match("a/b") == [("stays", 0)]
    assert index.match("$SYS/x") == []
    assert len(index) == 1


def test_len_counts_subscriptions_not_keys() -> None:
    index: SubscriptionIndex[int, None] = SubscriptionIndex()
    for key in range(3):
        index.add("x", key, None)
        index.add("y/#", key, None)
    assert len(index) == 6
    index.remove("x", 0)
    assert len(index) == 5


def test_pruning_returns_node_count_to_zero() -> None:
    index: SubscriptionIndex[int, int] = SubscriptionIndex()
    filters = [
        "a",
        "a/b/c",
        "a/+/c",
        "a/+/+",
        "a/#",
        "+/#",
        "#",
        "/+",
        "$SYS/#",
        "$share/g/a/+",
        "$share/h/a/b/c",
    ]
    for key in range(5):
        for topic_filter in filters:
            index.add(topic_filter, key, key)
    assert index._node_count() > 0
    for key in range(4):
        assert index.remove_all(key) == len(filters)
    assert index._node_count() > 0
    for topic_filter in reversed(filters):
        assert index.remove(topic_filter, 4)
    assert len(index) == 0
    assert index._node_count() == 0
    assert index.match("a/b/c") == []


def test_pruning_keeps_shared_prefixes() -> None:
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    index.add("a/+/c", "k", 0)
    index.add("a/+/d", "k", 0)
    before = index._node_count()
    index.add("a/+/c/e/+", "k", 0)
    assert index._node_count() == before + 2
    index.remove("a/+/c/e/+", "k")
    assert index._node_count() == before
    index.remove("a/+/c", "k")
    assert index.match("a/b/d") == [("k", 0)]
    assert index.match("a/b/c") == []


def test_cached_matches_follow_every_change() -> None:
    # match() remembers its result per topic; every add, replace and remove must be seen.
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    index.add("a/+", "c1", 1)
    assert index.match("a/b") == [("c1", 1)]
    index.add("a/b", "c2", 2)
    assert sorted(index.match("a/b")) == [("c1", 1), ("c2", 2)]
    index.add("a/+", "c1", 9)  # options replaced
    assert sorted(index.match("a/b")) == [("c1", 9), ("c2", 2)]
    index.remove("a/b", "c2")
    assert index.match("a/b") == [("c1", 9)]
    index.remove_all("c1")
    assert index.match("a/b") == []


def test_shared_groups_still_take_turns_when_the_topic_is_cached() -> None:
    index: SubscriptionIndex[str, int] = SubscriptionIndex()
    index.add("$share/g/a/#", "m1", 1)
    index.add("$share/g/a/#", "m2", 2)
    index.add("a/b", "plain", 0)
    picks = [index.match("a/b") for _ in range(4)]
    assert all(("plain", 0) in matched and len(matched) == 2 for matched in picks)
    members = [next(key for key, _ in matched if key != "plain") for matched in picks]
    assert members in (["m1", "m2", "m1", "m2"], ["m2", "m1", "m2", "m1"])
