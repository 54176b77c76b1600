"""Topic names, topic filters, shared subscriptions and topic matching (MQTT 5.0 section 4.7).

Theory of operation
-------------------
A *topic name* is what a PUBLISH carries: one or more levels separated by ``/``, no
wildcards. A *topic filter* is what a SUBSCRIBE carries: the same, except that a level may
be the single-level wildcard ``+`` and the last level may be the multi-level wildcard ``#``.
A filter of the form ``$share/{group}/{filter}`` is a *shared subscription*: each matching
message goes to one member of the group rather than to every subscriber.

Matching follows the MQTT specification, which differs from AWS IoT Core in one place:
MQTT says ``sport/#`` matches ``sport`` (``#`` includes the parent level); AWS IoT documents
that ``sensor/#`` does not match ``sensor``. We follow the specification, as MQTT clients
(and the conformance tests) expect.

Topics whose first character is ``$`` (``$SYS/...``, ``$aws/...``) are never matched by a
filter whose first level is a wildcard (spec 4.7.2): subscribing to ``#`` must not deliver
the broker's own reserved traffic.

Validation raises :class:`RemoteProtocolError` because topics come from the peer: an invalid
name is answered with reason code 0x90, an invalid filter with 0x8F. The AWS IoT quotas
(256 bytes, at most 7 slashes) are a separate, configurable check: :func:`check_topic_limits`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import RemoteProtocolError
from ._reason import ReasonCode

__all__ = [
    "SharedSubscription",
    "TopicLimits",
    "check_topic_limits",
    "parse_shared_subscription",
    "topic_matches",
    "validate_topic_filter",
    "validate_topic_name",
]

#: The longest UTF-8 encoded string MQTT can carry (a two-byte length prefix).
_MAX_UTF8_BYTES = 65535

_SHARE_PREFIX = "$share/"
_BASIC_INGEST_PREFIX = "$aws/rules/"


def _utf8_length(text: str, reason_code: ReasonCode, what: str) -> int:
    """The UTF-8 encoded length of ``text``.

    :raises RemoteProtocolError: with ``reason_code`` if ``text`` holds a lone surrogate,
        which no well-formed UTF-8 string can carry.
    """
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise RemoteProtocolError(f"{what} is not valid UTF-8", reason_code) from None


def _check_string(text: str, reason_code: ReasonCode, what: str) -> None:
    """The checks a topic name and a topic filter share: non-empty, no U+0000, length.

    :raises RemoteProtocolError: with ``reason_code`` when a check fails.
    """
    if not text:
        raise RemoteProtocolError(f"{what} is empty", reason_code)
    if "\x00" in text:
        raise RemoteProtocolError(f"{what} contains U+0000", reason_code)
    if _utf8_length(text, reason_code, what) > _MAX_UTF8_BYTES:
        raise RemoteProtocolError(f"{what} is longer than {_MAX_UTF8_BYTES} bytes", reason_code)


def validate_topic_name(topic: str) -> None:
    """Check that ``topic`` is a valid MQTT topic name (the topic of a PUBLISH).

    A topic name is non-empty, contains neither wildcard (``+``, ``#``) nor U+0000, and
    encodes to at most 65535 bytes of UTF-8.

    :param topic: the topic name received from the peer.
    :raises RemoteProtocolError: with reason code ``TOPIC_NAME_INVALID`` (0x90).
    """
    code = ReasonCode.TOPIC_NAME_INVALID
    _check_string(topic, code, "topic name")
    if "+" in topic or "#" in topic:
        raise RemoteProtocolError("topic name contains a wildcard", code)


def _check_filter_levels(topic_filter: str) -> None:
    """Check the wildcard placement of a (non-shared) topic filter.

    :raises RemoteProtocolError: with reason code ``TOPIC_FILTER_INVALID`` (0x8F).
    """
    if "+" not in topic_filter and "#" not in topic_filter:
        return
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != last):
            raise RemoteProtocolError(
                "'#' must be the whole last level of a topic filter",
                ReasonCode.TOPIC_FILTER_INVALID,
            )
        if "+" in level and level != "+":
            raise RemoteProtocolError(
                "'+' must be a whole level of a topic filter", ReasonCode.TOPIC_FILTER_INVALID
            )


@dataclass(frozen=True, slots=True)
class SharedSubscription:
    """The parts of a shared subscription ``$share/{group}/{topic_filter}``.

    :param group: the share name; non-empty, without ``/``, ``+`` or ``#``.
    :param topic_filter: the topic filter the group subscribes to.
    """

    group: str
    topic_filter: str


def _split_shared(topic_filter: str) -> SharedSubscription | None:
    """Split a ``$share/`` filter into its group and its filter, checking the group.

    :returns: ``None`` if ``topic_filter`` does not start with ``$share/``.
    :raises RemoteProtocolError: with reason code ``TOPIC_FILTER_INVALID`` if the group is
        missing or malformed, or if no filter follows it.
    """
    if not topic_filter.startswith(_SHARE_PREFIX):
        return None
    code = ReasonCode.TOPIC_FILTER_INVALID
    slash = topic_filter.find("/", len(_SHARE_PREFIX))
    if slash < 0:
        raise RemoteProtocolError("shared subscription has no topic filter", code)
    group = topic_filter[len(_SHARE_PREFIX) : slash]
    if not group:
        raise RemoteProtocolError("shared subscription has an empty share name", code)
    if "+" in group or "#" in group:
        raise RemoteProtocolError("share name contains a wildcard", code)
    inner = topic_filter[slash + 1 :]
    if not inner:
        raise RemoteProtocolError("shared subscription has an empty topic filter", code)
    return SharedSubscription(group, inner)


def validate_topic_filter(topic_filter: str) -> None:
    """Check that ``topic_filter`` is a valid MQTT topic filter (the filter of a SUBSCRIBE).

    A filter is non-empty, has no U+0000, encodes to at most 65535 bytes, uses ``+`` only as
    a whole level and ``#`` only as the whole last level. A filter starting with ``$share/``
    must be ``$share/{group}/{filter}`` with a non-empty group free of ``/ + #`` and a valid
    filter after it.

    :param topic_filter: the topic filter received from the peer.
    :raises RemoteProtocolError: with reason code ``TOPIC_FILTER_INVALID`` (0x8F).
    """
    _check_string(topic_filter, ReasonCode.TOPIC_FILTER_INVALID, "topic filter")
    shared = _split_shared(topic_filter)
    _check_filter_levels(topic_filter if shared is None else shared.topic_filter)


def parse_shared_subscription(topic_filter: str) -> SharedSubscription | None:
    """Parse a shared subscription ``$share/{group}/{filter}``.

    A filter that does not start with ``$share/`` is not shared; it is returned as ``None``
    without further checks (use :func:`validate_topic_filter` for that). A shared one is
    validated completely.

    :param topic_filter: a topic filter as received in a SUBSCRIBE.
    :returns: the group and inner filter, or ``None`` for a non-shared filter.
    :raises RemoteProtocolError: with reason code ``TOPIC_FILTER_INVALID`` if the filter
        starts with ``$share/`` but is not a valid shared subscription.
    """
    if not topic_filter.startswith(_SHARE_PREFIX):
        return None
    validate_topic_filter(topic_filter)
    return _split_shared(topic_filter)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic_filter`` matches the topic name ``topic``, per MQTT 5.0 section 4.7.

    * ``+`` matches exactly one level, including an empty one (``a/+`` matches ``a/``);
    * ``#`` matches its parent level and any number of child levels: ``sport/#`` matches
      ``sport``, ``sport/`` and ``sport/tennis/player1``. (AWS IoT Core documents that
      ``sensor/#`` does *not* match ``sensor``; we follow the MQTT specification.)
    * a topic starting with ``$`` is not matched by a filter whose first level is ``+`` or
      ``#``: ``#`` does not match ``$SYS/uptime``, ``$SYS/#`` does.
    * a shared subscription ``$share/{group}/{filter}`` matches what its ``filter`` matches.

    Both arguments are assumed valid (see :func:`validate_topic_filter` and
    :func:`validate_topic_name`); nothing is raised for invalid ones.

    :param topic_filter: the subscription's topic filter.
    :param topic: the topic name of a published message.
    :returns: ``True`` if the message is delivered to the subscription.
    """
    if topic_filter.startswith(_SHARE_PREFIX):
        slash = topic_filter.find("/", len(_SHARE_PREFIX))
        if slash < 0:
            return False
        topic_filter = topic_filter[slash + 1 :]
    if topic_filter == topic:
        return True
    filter_levels = topic_filter.split("/")
    if topic.startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    topic_levels = topic.split("/")
    depth = len(topic_levels)
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= depth:
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == depth


@dataclass(frozen=True, slots=True)
class TopicLimits:
    """Size quotas on topics and topic filters, AWS IoT Core's by default.

    :param max_topic_bytes: the longest topic, in UTF-8 bytes (AWS IoT: 256).
    :param max_levels: the most levels a topic may have (AWS IoT: 8, i.e. at most 7 ``/``).
    :raises ValueError: if a limit is smaller than 1.
    :raises TypeError: if a limit is not an ``int``.
    """

    max_topic_bytes: int = 256
    max_levels: int = 8

    def __post_init__(self) -> None:
        for name in ("max_topic_bytes", "max_levels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")


def _counted_part(topic_or_filter: str, is_filter: bool) -> str:
    """The part of a topic or filter the quotas apply to.

    AWS IoT does not count the ``$aws/rules/{rule}/`` prefix of a Basic Ingest topic; we
    likewise do not count the ``$share/{group}/`` prefix of a shared subscription.
    """
    if is_filter and topic_or_filter.startswith(_SHARE_PREFIX):
        slash = topic_or_filter.find("/", len(_SHARE_PREFIX))
        if slash >= 0:
            topic_or_filter = topic_or_filter[slash + 1 :]
    if topic_or_filter.startswith(_BASIC_INGEST_PREFIX):
        slash = topic_or_filter.find("/", len(_BASIC_INGEST_PREFIX))
        if slash >= 0:
            return topic_or_filter[slash + 1 :]
    return topic_or_filter


def check_topic_limits(
    topic_or_filter: str, limits: TopicLimits, *, is_filter: bool = False
) -> None:
    """Check a topic name (or, with ``is_filter=True``, a topic filter) against quotas.

    The Basic Ingest prefix ``$aws/rules/{rule}/`` and the shared-subscription prefix
    ``$share/{group}/`` do not count towards either quota. Call this after
    :func:`validate_topic_name` / :func:`validate_topic_filter`.

    :param topic_or_filter: the topic name or topic filter received from the peer.
    :param limits: the quotas to enforce.
    :param is_filter: ``True`` for a topic filter from a SUBSCRIBE or UNSUBSCRIBE.
    :raises RemoteProtocolError: with reason code ``TOPIC_NAME_INVALID`` (0x90), or
        ``TOPIC_FILTER_INVALID`` (0x8F) when ``is_filter`` is true, if a quota is exceeded.
    """
    code = ReasonCode.TOPIC_FILTER_INVALID if is_filter else ReasonCode.TOPIC_NAME_INVALID
    what = "topic filter" if is_filter else "topic name"
    counted = _counted_part(topic_or_filter, is_filter)
    if counted.count("/") >= limits.max_levels:
        raise RemoteProtocolError(f"{what} has more than {limits.max_levels} levels", code)
    if _utf8_length(counted, code, what) > limits.max_topic_bytes:
        raise RemoteProtocolError(f"{what} is longer than {limits.max_topic_bytes} bytes", code)
