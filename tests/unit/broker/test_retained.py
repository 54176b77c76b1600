"""Retained messages: set/replace/delete, matching by filter, listing, pruning."""

from __future__ import annotations

import pytest

from bastion.broker._retained import RetainedStore

TOPICS = [
    "sport",
    "sport/tennis",
    "sport/tennis/player1",
    "sport/tennis/player2",
    "sport/golf/player1",
    "sport/",
    "sport//player1",
    "/",
    "/news",
    "$SYS/uptime",
    "$SYS",
    "$aws/things/t1/shadow/update",
    "weather/a$",
]


@pytest.fixture
def store() -> RetainedStore[str]:
    retained: RetainedStore[str] = RetainedStore()
    for topic in TOPICS:
        retained.set(topic, f"m:{topic}")
    return retained


def test_set_get_replace_delete() -> None:
    store: RetainedStore[bytes] = RetainedStore()
    assert store.get("a/b") is None
    store.set("a/b", b"1")
    store.set("a/b", b"2")
    assert store.get("a/b") == b"2"
    assert len(store) == 1
    assert "a/b" in store
    assert store.delete("a/b") is True
    assert store.delete("a/b") is False
    assert store.get("a/b") is None
    assert len(store) == 0


def test_get_of_an_interior_level_is_none(store: RetainedStore[str]) -> None:
    assert store.get("sport/golf") is None
    assert store.delete("sport/golf") is False
    assert store.get("sport/golf/player1") == "m:sport/golf/player1"


@pytest.mark.parametrize(
    "topic",
    [
        pytest.param("", id="empty"),
        pytest.param("a/+", id="plus"),
        pytest.param("#", id="hash"),
        pytest.param("a\x00", id="nul"),
    ],
)
def test_set_rejects_invalid_topic(topic: str) -> None:
    store: RetainedStore[int] = RetainedStore()
    with pytest.raises(ValueError):
        store.set(topic, 1)
    assert len(store) == 0
    assert store._node_count() == 0


MATCHES = [
    pytest.param("sport", {"sport"}, id="exact"),
    pytest.param("sport/golf", set(), id="exact-interior-level"),
    pytest.param("nothing/here", set(), id="exact-missing"),
    pytest.param(
        "sport/#",
        {
            "sport",
            "sport/tennis",
            "sport/tennis/player1",
            "sport/tennis/player2",
            "sport/golf/player1",
            "sport/",
            "sport//player1",
        },
        id="hash-includes-parent",
    ),
    pytest.param(
        "sport/tennis/#",
        {"sport/tennis", "sport/tennis/player1", "sport/tennis/player2"},
        id="deeper-hash",
    ),
    pytest.param("sport/+", {"sport/tennis", "sport/"}, id="plus-incl-empty-level"),
    pytest.param(
        "sport/+/player1",
        {"sport/tennis/player1", "sport/golf/player1", "sport//player1"},
        id="plus-middle",
    ),
    pytest.param("+", {"sport"}, id="plus-skips-dollar"),
    pytest.param("+/+", {"sport/tennis", "sport/", "/news", "/", "weather/a$"}, id="plus-plus"),
    pytest.param(
        "#",
        {topic for topic in TOPICS if not topic.startswith("$")},
        id="hash-skips-dollar",
    ),
    pytest.param("$SYS/#", {"$SYS", "$SYS/uptime"}, id="dollar-hash"),
    pytest.param("$SYS/+", {"$SYS/uptime"}, id="dollar-plus"),
    pytest.param("$aws/things/+/shadow/#", {"$aws/things/t1/shadow/update"}, id="aws-shadow"),
    pytest.param("+/uptime", set(), id="plus-first-level-skips-dollar"),
    pytest.param("/#", {"/", "/news"}, id="empty-first-level-hash"),
    pytest.param("weather/+", {"weather/a$"}, id="dollar-not-first"),
    pytest.param("sport/tennis/player1/#", {"sport/tennis/player1"}, id="hash-below-leaf"),
    pytest.param("+/+/+/+", set(), id="too-deep"),
]


@pytest.mark.parametrize(("topic_filter", "expected"), MATCHES)
def test_match(store: RetainedStore[str], topic_filter: str, expected: set[str]) -> None:
    found = store.match(topic_filter)
    topics = [topic for topic, _ in found]
    assert len(topics) == len(set(topics))
    assert set(topics) == expected
    assert all(message == f"m:{topic}" for topic, message in found)


@pytest.mark.parametrize(
    "topic_filter",
    [
        pytest.param("a/#/b", id="invalid"),
        pytest.param("", id="empty"),
        pytest.param("$share/g/#", id="shared"),
        pytest.param("$share/g", id="shared-invalid"),
    ],
)
def test_match_rejects(topic_filter: str) -> None:
    store: RetainedStore[int] = RetainedStore()
    with pytest.raises(ValueError):
        store.match(topic_filter)


def test_topics_listing_and_paging(store: RetainedStore[str]) -> None:
    everything = store.topics()
    assert everything == sorted(TOPICS)
    pages: list[str] = []
    after: str | None = None
    while True:
        page = store.topics(after=after, limit=4)
        pages.extend(page)
        if len(page) < 4:
            break
        after = page[-1]
    assert pages == everything


@pytest.mark.parametrize(
    ("prefix", "after", "limit", "expected"),
    [
        pytest.param(
            "sport/",
            None,
            None,
            ["sport/", "sport//player1", "sport/golf/player1", "sport/tennis"]
            + ["sport/tennis/player1", "sport/tennis/player2"],
            id="prefix",
        ),
        pytest.param("sport/t", None, 2, ["sport/tennis", "sport/tennis/player1"], id="limit"),
        pytest.param("sport/t", "sport/tennis/player1", None, ["sport/tennis/player2"], id="after"),
        pytest.param("sport/", "a", 1, ["sport/"], id="after-before-prefix"),
        pytest.param("sport/", "zzz", None, [], id="after-past-prefix"),
        pytest.param(
            "$", None, None, ["$SYS", "$SYS/uptime", "$aws/things/t1/shadow/update"], id="dollar"
        ),
        pytest.param("nothing", None, None, [], id="no-match"),
        pytest.param(None, "sport/tennis/player2", None, ["weather/a$"], id="after-only"),
        pytest.param("", None, 1, ["$SYS"], id="empty-prefix"),
    ],
)
def test_topics_filters(
    store: RetainedStore[str],
    prefix: str | None,
    after: str | None,
    limit: int | None,
    expected: list[str],
) -> None:
    assert store.topics(prefix, after=after, limit=limit) == expected


def test_topics_rejects_bad_limit(store: RetainedStore[str]) -> None:
    with pytest.raises(ValueError):
        store.topics(limit=0)


def test_topics_follow_deletes(store: RetainedStore[str]) -> None:
    store.delete("sport/tennis")
    store.set("sport/tennis/player1", "again")
    assert "sport/tennis" not in store.topics()
    assert store.topics().count("sport/tennis/player1") == 1


def test_pruning_returns_node_count_to_zero(store: RetainedStore[str]) -> None:
    assert store._node_count() > 0
    for topic in reversed(TOPICS):
        assert store.delete(topic)
    assert len(store) == 0
    assert store._node_count() == 0
    assert store.topics() == []
    assert store.match("#") == []


def test_delete_prunes_only_empty_branches() -> None:
    store: RetainedStore[int] = RetainedStore()
    store.set("a/b", 1)
    store.set("a/b/c/d", 2)
    assert store._node_count() == 4
    store.delete("a/b/c/d")
    assert store._node_count() == 2
    assert store.match("a/#") == [("a/b", 1)]
    store.set("a/b/c/d", 2)
    store.delete("a/b")
    assert store._node_count() == 4
    assert store.match("a/+") == []
    assert store.match("a/+/+/d") == [("a/b/c/d", 2)]
