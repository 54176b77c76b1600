"""Retained messages: the last retained message of each topic (MQTT 5.0 section 3.3.1.3).

Theory of operation
-------------------
The store keeps at most one message per topic name. It does not interpret messages: the
broker decides that a retained PUBLISH with an empty payload means :meth:`RetainedStore.delete`.

Three views of the same entries serve three callers:

* a dict ``topic -> node`` answers :meth:`RetainedStore.get` and replacement in O(1);
* a trie of topic levels answers :meth:`RetainedStore.match` (a new subscription asks for
  every retained message its filter matches) by following literal levels and fanning out
  only at ``+`` and ``#``, so ``devices/42/+`` touches the children of ``devices/42``, not
  every retained topic. As for routing, a topic starting with ``$`` is not matched by a
  wildcard at the first level;
* a sorted list of topics answers :meth:`RetainedStore.topics`, the paged listing behind
  ListRetainedMessages.

Deleting a topic prunes the trie nodes it leaves empty.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from typing import Generic, TypeVar

from bastion.mqtt._errors import RemoteProtocolError
from bastion.mqtt._topics import (
    parse_shared_subscription,
    validate_topic_filter,
    validate_topic_name,
)

__all__ = ["RetainedStore"]

M = TypeVar("M")


class _TopicNode(Generic[M]):
    """One topic level. ``entry`` is ``(topic, message)`` if a message is retained here."""

    __slots__ = ("children", "entry")

    def __init__(self) -> None:
        self.children: dict[str, _TopicNode[M]] | None = None
        self.entry: tuple[str, M] | None = None


def _collect_below(node: _TopicNode[M], skip_dollar: bool, found: list[tuple[str, M]]) -> None:
    """Append the entries of every descendant of ``node`` (not ``node`` itself).

    :param skip_dollar: leave out children whose level starts with ``$`` (used at the
        root, for the ``$`` rule).
    """
    stack: list[_TopicNode[M]] = []
    children = node.children
    if children is None:
        return
    for level, child in children.items():
        if not (skip_dollar and level.startswith("$")):
            stack.append(child)
    while stack:
        current = stack.pop()
        if current.entry is not None:
            found.append(current.entry)
        if current.children is not None:
            stack.extend(current.children.values())


class RetainedStore(Generic[M]):
    """At most one retained message ``M`` per topic name."""

    __slots__ = ("_nodes", "_root", "_sorted")

    def __init__(self) -> None:
        self._root: _TopicNode[M] = _TopicNode()
        self._nodes: dict[str, _TopicNode[M]] = {}
        self._sorted: list[str] = []

    def set(self, topic: str, message: M) -> None:
        """Retain ``message`` on ``topic``, replacing any message retained there.

        :raises ValueError: if ``topic`` is not a valid topic name.
        """
        node = self._nodes.get(topic)
        if node is None:
            try:
                validate_topic_name(topic)
            except RemoteProtocolError as exc:
                raise ValueError(f"invalid topic name {topic!r}: {exc}") from None
            node = self._root
            for level in topic.split("/"):
                children = node.children
                if children is None:
                    children = node.children = {}
                child = children.get(level)
                if child is None:
                    child = children[level] = _TopicNode()
                node = child
            self._nodes[topic] = node
            insort(self._sorted, topic)
        node.entry = (topic, message)

    def delete(self, topic: str) -> bool:
        """Forget the message retained on ``topic``.

        :returns: ``True`` if there was one.
        """
        if self._nodes.pop(topic, None) is None:
            return False
        del self._sorted[bisect_left(self._sorted, topic)]
        path: list[tuple[_TopicNode[M], str]] = []
        node = self._root
        for level in topic.split("/"):
            path.append((node, level))
            assert node.children is not None
            node = node.children[level]
        node.entry = None
        for parent, level in reversed(path):
            if node.entry is not None or node.children is not None:
                break
            children = parent.children
            assert children is not None
            del children[level]
            if not children:
                parent.children = None
            node = parent
        return True

    def keep(self, topic: str, message: M) -> None:
        """:meth:`set`, for a message another cluster node retained (and wrote down):
        a subclass that writes changes down writes nothing here."""
        RetainedStore.set(self, topic, message)

    def drop(self, topic: str) -> bool:
        """:meth:`delete`, for a deletion another cluster node made (see :meth:`keep`)."""
        return RetainedStore.delete(self, topic)

    def get(self, topic: str) -> M | None:
        """The message retained on ``topic``, or ``None``."""
        node = self._nodes.get(topic)
        if node is None or node.entry is None:
            return None
        return node.entry[1]

    def match(self, topic_filter: str) -> list[tuple[str, M]]:
        """Every retained ``(topic, message)`` whose topic ``topic_filter`` matches.

        Matching follows :func:`~bastion.mqtt._topics.topic_matches`: ``a/#`` includes
        ``a``, ``+`` matches an empty level, and a wildcard first level does not match a
        topic starting with ``$``.

        :param topic_filter: a non-shared topic filter.
        :returns: the matches, in no particular order.
        :raises ValueError: if ``topic_filter`` is not a valid topic filter, or is a shared
            subscription (the spec sends no retained messages to those; the broker should
            not ask).
        """
        try:
            shared = parse_shared_subscription(topic_filter)
            if shared is None:
                validate_topic_filter(topic_filter)
        except RemoteProtocolError as exc:
            raise ValueError(f"invalid topic filter {topic_filter!r}: {exc}") from None
        if shared is not None:
            raise ValueError(f"shared subscription {topic_filter!r} gets no retained messages")
        found: list[tuple[str, M]] = []
        if "+" not in topic_filter and "#" not in topic_filter:
            node = self._nodes.get(topic_filter)
            if node is not None and node.entry is not None:
                found.append(node.entry)
            return found
        levels = topic_filter.split("/")
        last = len(levels) - 1
        stack: list[tuple[_TopicNode[M], int]] = [(self._root, 0)]
        while stack:
            node, depth = stack.pop()
            level = levels[depth]
            if level == "#":
                if node.entry is not None:
                    found.append(node.entry)  # "a/#" matches "a"
                _collect_below(node, depth == 0, found)
                continue
            children = node.children
            if children is None:
                continue
            if level == "+":
                candidates = [
                    child for name, child in children.items() if depth or not name.startswith("$")
                ]
            else:
                literal = children.get(level)
                if literal is None:
                    continue
                candidates = [literal]
            if depth == last:
                for child in candidates:
                    if child.entry is not None:
                        found.append(child.entry)
            else:
                stack.extend((child, depth + 1) for child in candidates)
        return found

    def topics(
        self, prefix: str | None = None, *, after: str | None = None, limit: int | None = None
    ) -> list[str]:
        """Retained topics in ascending order, for paged listing.

        :param prefix: only topics starting with this string.
        :param after: only topics sorting strictly after this one (the last topic of the
            previous page).
        :param limit: at most this many topics; ``None`` for all.
        :returns: the topics of the page; fewer than ``limit`` means the listing is done.
        :raises ValueError: if ``limit`` is smaller than 1.
        """
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        ordered = self._sorted
        start = 0 if after is None else bisect_right(ordered, after)
        if prefix:
            start = max(start, bisect_left(ordered, prefix))
        stop = len(ordered) if limit is None else min(len(ordered), start + limit)
        if prefix:
            # Topics sharing a prefix are contiguous in sorted order: stop at the first other.
            end = start
            while end < stop and ordered[end].startswith(prefix):
                end += 1
            stop = end
        return ordered[start:stop]

    def __len__(self) -> int:
        """The number of retained messages."""
        return len(self._nodes)

    def __contains__(self, topic: object) -> bool:
        return topic in self._nodes

    def _node_count(self) -> int:
        """Trie nodes below the root (for tests of pruning)."""
        total = 0
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.children is not None:
                total += len(node.children)
                stack.extend(node.children.values())
        return total
