"""The broker's routing table: which subscriptions receive a message published on a topic.

Theory of operation
-------------------
Every subscription is a ``(topic_filter, key)`` pair holding a value ``V`` (the
subscription options); ``key`` identifies the subscriber (a session). Adding the same pair
again replaces the value, as an MQTT SUBSCRIBE does.

:meth:`SubscriptionIndex.match` runs once per published message, so the layout serves it:

* Filters without wildcards live in a dict keyed by the filter, so a topic's exact
  subscribers are one dict lookup away, whatever the size of the table.
* Filters with wildcards live in a trie of topic levels. A node has a dict of literal
  children, at most one ``+`` child and at most one ``#`` child. Matching splits the topic
  once and walks the trie level by level, keeping the set of live nodes in two lists that
  are swapped and reused, so the walk allocates nothing per level.
* The ``$`` rule (spec 4.7.2) falls out of the walk: for a topic starting with ``$`` the
  walk starts at the root's literal child for the first level, never at its ``+`` or ``#``
  children.
* Each terminal (a dict slot or trie node) keeps non-shared subscribers in a dict of
  prebuilt ``(key, value)`` tuples, so a match copies references without building tuples,
  and shared subscriptions ``$share/{group}/{filter}`` as one :class:`_Group` per group
  name. A group hands out one member per message, round robin.
* The result of a walk is cached per topic (non-shared matches, plus the shared groups,
  which still pick their member per message); any add or remove clears the cache.
* A reverse map ``key -> filters`` makes :meth:`SubscriptionIndex.remove_all` (session
  end) cost O(subscriptions of that key). Removal prunes trie nodes left empty, so the
  table does not grow with churn.

The index is a plain data structure: it neither locks nor awaits. Topic names passed to
:meth:`SubscriptionIndex.match` are assumed valid (the codec validates them).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

from bastion.mqtt._errors import RemoteProtocolError
from bastion.mqtt._topics import parse_shared_subscription, validate_topic_filter

__all__ = ["SubscriptionIndex"]

_CACHE_SIZE = 10_000
"""Topics whose matches are remembered; the cache starts over when it is full."""

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_SHARE_PREFIX = "$share/"


class _Group(Generic[K, V]):
    """The members of one shared subscription, served round robin.

    Members sit in a list; ``positions`` maps a key to its index so that removal is O(1)
    (the last member moves into the hole). A member added or moved later is served later.
    """

    __slots__ = ("cursor", "members", "positions")

    def __init__(self) -> None:
        self.members: list[tuple[K, V]] = []
        self.positions: dict[K, int] = {}
        self.cursor = 0

    def put(self, key: K, value: V) -> bool:
        """Add ``key``, or replace its value. :returns: ``True`` if ``key`` is new."""
        position = self.positions.get(key)
        if position is None:
            self.positions[key] = len(self.members)
            self.members.append((key, value))
            return True
        self.members[position] = (key, value)
        return False

    def discard(self, key: K) -> None:
        """Remove ``key``, which must be a member."""
        position = self.positions.pop(key)
        last = self.members.pop()
        if position < len(self.members):
            self.members[position] = last
            self.positions[last[0]] = position

    def pick(self) -> tuple[K, V]:
        """The next member in turn. The group must not be empty."""
        members = self.members
        index = self.cursor
        if index >= len(members):
            index = 0
        self.cursor = index + 1
        return members[index]


class _Node(Generic[K, V]):
    """A trie node, or an exact-filter slot (which only uses ``subs`` and ``groups``).

    Every field is ``None`` until needed: most nodes are internal, most slots have one kind
    of subscriber.
    """

    __slots__ = ("children", "groups", "hash", "plus", "subs")

    def __init__(self) -> None:
        self.children: dict[str, _Node[K, V]] | None = None
        self.plus: _Node[K, V] | None = None
        self.hash: _Node[K, V] | None = None
        self.subs: dict[K, tuple[K, V]] | None = None
        self.groups: dict[str, _Group[K, V]] | None = None

    def is_empty(self) -> bool:
        """Whether the node holds no subscription and has no child."""
        return (
            self.subs is None
            and self.groups is None
            and self.children is None
            and self.plus is None
            and self.hash is None
        )

    def put(self, group: str | None, key: K, value: V) -> bool:
        """Subscribe ``key`` here (in share ``group`` if given). :returns: ``True`` if new."""
        if group is None:
            subs = self.subs
            if subs is None:
                subs = self.subs = {}
            new = key not in subs
            subs[key] = (key, value)
            return new
        groups = self.groups
        if groups is None:
            groups = self.groups = {}
        members = groups.get(group)
        if members is None:
            members = groups[group] = _Group()
        return members.put(key, value)

    def discard(self, group: str | None, key: K) -> None:
        """Unsubscribe ``key``, which must be subscribed here (in share ``group`` if given)."""
        if group is None:
            subs = self.subs
            assert subs is not None
            del subs[key]
            if not subs:
                self.subs = None
            return
        groups = self.groups
        assert groups is not None
        members = groups[group]
        members.discard(key)
        if not members.members:
            del groups[group]
            if not groups:
                self.groups = None

    def collect(self, matched: list[tuple[K, V]], shared: list[_Group[K, V]]) -> None:
        """Append this node's subscribers to ``matched`` and its groups to ``shared``."""
        subs = self.subs
        if subs is not None:
            matched.extend(subs.values())
        groups = self.groups
        if groups is not None:
            shared.extend(groups.values())

    def child(self, level: str) -> _Node[K, V] | None:
        """The child for ``level`` (literal, ``+`` or ``#``), if there is one."""
        if level == "+":
            return self.plus
        if level == "#":
            return self.hash
        return None if self.children is None else self.children.get(level)

    def make_child(self, level: str) -> _Node[K, V]:
        """The child for ``level`` (literal, ``+`` or ``#``), created if missing."""
        child = self.child(level)
        if child is not None:
            return child
        child = _Node()
        if level == "+":
            self.plus = child
        elif level == "#":
            self.hash = child
        else:
            if self.children is None:
                self.children = {}
            self.children[level] = child
        return child

    def drop_child(self, level: str) -> None:
        """Detach the child for ``level``, which must exist."""
        if level == "+":
            self.plus = None
        elif level == "#":
            self.hash = None
        else:
            children = self.children
            assert children is not None
            del children[level]
            if not children:
                self.children = None


def _split(topic_filter: str) -> tuple[str | None, str]:
    """``(group, filter)`` of a filter already known to be valid; ``group`` is ``None``
    for a non-shared filter."""
    if topic_filter.startswith(_SHARE_PREFIX):
        slash = topic_filter.index("/", len(_SHARE_PREFIX))
        return topic_filter[len(_SHARE_PREFIX) : slash], topic_filter[slash + 1 :]
    return None, topic_filter


def _has_wildcard(topic_filter: str) -> bool:
    return "+" in topic_filter or "#" in topic_filter


class SubscriptionIndex(Generic[K, V]):
    """Subscriptions by topic filter, matched against published topics.

    ``K`` identifies a subscriber (e.g. a client id); ``V`` is the value stored with each
    subscription (e.g. its options). A subscriber has at most one subscription per filter.
    """

    __slots__ = ("_by_key", "_cache", "_count", "_exact", "_root", "_wildcards")

    def __init__(self) -> None:
        self._exact: dict[str, _Node[K, V]] = {}
        self._root: _Node[K, V] = _Node()
        self._by_key: dict[K, dict[str, None]] = {}
        self._count = 0
        self._wildcards = 0
        # topic -> (non-shared matches, shared groups or None); cleared by every change.
        self._cache: dict[str, tuple[list[tuple[K, V]], list[_Group[K, V]] | None]] = {}

    def add(self, topic_filter: str, key: K, value: V) -> bool:
        """Subscribe ``key`` to ``topic_filter`` with ``value``.

        :param topic_filter: a topic filter, possibly a shared ``$share/{group}/{filter}``.
        :param key: the subscriber.
        :param value: stored with the subscription and returned by :meth:`match`.
        :returns: ``True`` for a new subscription, ``False`` if ``key`` was already
            subscribed to ``topic_filter`` and its value was replaced.
        :raises ValueError: if ``topic_filter`` is not a valid topic filter (the caller
            should have rejected it with :func:`~bastion.mqtt._topics.validate_topic_filter`).
        """
        try:
            shared = parse_shared_subscription(topic_filter)
            if shared is None:
                validate_topic_filter(topic_filter)
        except RemoteProtocolError as exc:
            raise ValueError(f"invalid topic filter {topic_filter!r}: {exc}") from None
        group, inner = (
            (None, topic_filter) if shared is None else (shared.group, shared.topic_filter)
        )
        wildcard = _has_wildcard(inner)
        if wildcard:
            node = self._root
            for level in inner.split("/"):
                node = node.make_child(level)
        else:
            slot = self._exact.get(inner)
            if slot is None:
                slot = self._exact[inner] = _Node()
            node = slot
        self._cache.clear()
        if not node.put(group, key, value):
            return False
        self._count += 1
        if wildcard:
            self._wildcards += 1
        filters = self._by_key.get(key)
        if filters is None:
            filters = self._by_key[key] = {}
        filters[topic_filter] = None
        return True

    def remove(self, topic_filter: str, key: K) -> bool:
        """Unsubscribe ``key`` from ``topic_filter``.

        :returns: ``True`` if the subscription existed, ``False`` otherwise (including when
            ``topic_filter`` is not a valid filter, since it cannot have been added).
        """
        filters = self._by_key.get(key)
        if filters is None or topic_filter not in filters:
            return False
        self._detach(topic_filter, key)
        del filters[topic_filter]
        if not filters:
            del self._by_key[key]
        return True

    def remove_all(self, key: K) -> int:
        """Remove every subscription of ``key``, e.g. when its session ends.

        :returns: the number of subscriptions removed.
        """
        filters = self._by_key.pop(key, None)
        if filters is None:
            return 0
        for topic_filter in filters:
            self._detach(topic_filter, key)
        return len(filters)

    def _detach(self, topic_filter: str, key: K) -> None:
        """Remove an existing subscription from the dict or trie, pruning empty nodes."""
        self._cache.clear()
        group, inner = _split(topic_filter)
        self._count -= 1
        if not _has_wildcard(inner):
            slot = self._exact[inner]
            slot.discard(group, key)
            if slot.is_empty():
                del self._exact[inner]
            return
        self._wildcards -= 1
        path: list[tuple[_Node[K, V], str]] = []
        node = self._root
        for level in inner.split("/"):
            path.append((node, level))
            child = node.child(level)
            assert child is not None
            node = child
        node.discard(group, key)
        for parent, level in reversed(path):
            if not node.is_empty():
                break
            parent.drop_child(level)
            node = parent

    def match(self, topic: str, with_shared: bool = True) -> list[tuple[K, V]]:
        """The subscriptions that receive a message published on ``topic``.

        Every matching non-shared subscription appears once per ``(key, filter)``: a key
        subscribed through two overlapping filters appears twice, and the broker merges
        them (MQTT 5 section 3.3.4). Each matching shared subscription contributes exactly
        one member, chosen round robin, so calling this advances the groups' turns.

        The walk's result is cached per topic until the next change to the index (a
        fleet publishes on the same topics over and over); the returned list may be that
        cached list, so callers must not modify it.

        :param topic: a valid topic name.
        :param with_shared: include shared subscriptions (False: a cluster serves them
            across its nodes, see :meth:`pick`).
        :returns: ``(key, value)`` pairs, in no particular order.
        """
        cache = self._cache
        entry = cache.get(topic)
        if entry is None:
            matched: list[tuple[K, V]] = []
            shared: list[_Group[K, V]] = []
            self._walk(topic, matched, shared)
            entry = (matched, shared or None)
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[topic] = entry
        matched, groups = entry
        if groups is None or not with_shared:
            return matched
        return [*matched, *(members.pick() for members in groups)]

    def pick(self, share_filter: str) -> tuple[K, V] | None:
        """The next member in turn of the shared subscription ``share_filter``
        (``$share/{group}/{filter}``), or None when nobody here is in it."""
        shared = parse_shared_subscription(share_filter)
        if shared is None:
            return None
        inner = shared.topic_filter
        node: _Node[K, V] | None
        if _has_wildcard(inner):
            node = self._root
            for level in inner.split("/"):
                node = node.child(level)
                if node is None:
                    return None
        else:
            node = self._exact.get(inner)
        if node is None or node.groups is None:
            return None
        members = node.groups.get(shared.group)
        return None if members is None else members.pick()

    def _walk(self, topic: str, matched: list[tuple[K, V]],
              shared: list[_Group[K, V]]) -> None:
        slot = self._exact.get(topic)
        if slot is not None:
            slot.collect(matched, shared)
        if not self._wildcards:
            return
        levels = iter(topic.split("/"))
        if topic.startswith("$"):
            # $-topics are not matched by a wildcard at the first level (spec 4.7.2).
            children = self._root.children
            first = None if children is None else children.get(next(levels))
            if first is None:
                return
            frontier = [first]
        else:
            frontier = [self._root]
        following: list[_Node[K, V]] = []
        for level in levels:
            for node in frontier:
                hashed = node.hash
                if hashed is not None:
                    hashed.collect(matched, shared)
                children = node.children
                if children is not None:
                    child = children.get(level)
                    if child is not None:
                        following.append(child)
                plus = node.plus
                if plus is not None:
                    following.append(plus)
            if not following:
                return
            frontier, following = following, frontier
            following.clear()
        for node in frontier:
            # "a/#" matches "a" too: the parent level of '#' is a match.
            hashed = node.hash
            if hashed is not None:
                hashed.collect(matched, shared)
            node.collect(matched, shared)
        return

    def filters_of(self, key: K) -> list[str]:
        """The topic filters ``key`` is subscribed to, in subscription order."""
        return list(self._by_key.get(key, ()))

    def count(self, key: K) -> int:
        """The number of subscriptions of ``key``."""
        filters = self._by_key.get(key)
        return 0 if filters is None else len(filters)

    def __len__(self) -> int:
        """The number of subscriptions, all subscribers together."""
        return self._count

    def _node_count(self) -> int:
        """Trie nodes below the root plus exact-filter slots (for tests of pruning)."""
        total = len(self._exact)
        stack = [self._root]
        while stack:
            node = stack.pop()
            for child in (node.plus, node.hash):
                if child is not None:
                    total += 1
                    stack.append(child)
            if node.children is not None:
                total += len(node.children)
                stack.extend(node.children.values())
        return total
