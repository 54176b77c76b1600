"""MQTT topic names and topic filters as NATS subjects, and back.

Theory of operation
-------------------
In cluster mode every message travels through NATS (JetStream) on a subject that encodes
its MQTT topic, and every subscription becomes NATS subscriptions, so that NATS's own
wildcard matching does MQTT's topic matching. The encoding is::

    topic               subject (prefix "bastion.msg")
    sport/tennis        bastion.msg.t.sport.tennis
    $aws/things/x/get   bastion.msg.d.aws.things.x.get
    a//b.c              bastion.msg.t.a.=.b=2Ec
    café/               bastion.msg.t.caf=C3=A9.=

* **Levels are tokens.** Each MQTT level becomes one NATS token; ``/`` becomes ``.``.
* **Escaping.** ASCII letters, digits, ``-`` and ``_`` stand for themselves. Every other
  byte of the level's UTF-8 encoding is written ``=XX`` (two upper-case hex digits, as in
  quoted-printable): ``.`` is ``=2E``, ``*`` is ``=2A``, a space is ``=20``, ``=`` itself
  is ``=3D``, ``é`` is ``=C3=A9``. An empty level is the token ``=`` alone, which no
  escape can be. Tokens therefore use only ``[A-Za-z0-9_=-]``: never empty, never
  whitespace, ``.``, ``*`` or ``>``, so they are valid NATS subject tokens, and the part
  after the prefix is also a valid NATS KV key (``[-/_=.A-Za-z0-9]``), which a ``~``
  escape would not be.
* **Namespaces.** After the prefix comes one namespace token: ``t`` for ordinary topics,
  ``d`` for topics starting with ``$``, whose first level is then written without its
  ``$``. MQTT (4.7.2) says a filter whose first level is ``+`` or ``#`` never matches a
  ``$`` topic; since wildcards only ever stand in the levels *after* the namespace token,
  ``#`` (``prefix.t.>``) and ``+/x`` (``prefix.t.*.x``) cannot reach ``prefix.d....``,
  while ``$SYS/#`` (``prefix.d.SYS`` and ``prefix.d.SYS.>``) can.
* **Wildcards.** In a filter, ``+`` becomes ``*`` and a trailing ``#`` becomes ``>``. NATS's
  ``>`` needs at least one token where MQTT's ``#`` also matches its parent level
  (``a/#`` matches ``a``), so a filter ending in ``/#`` is subscribed to as two subjects,
  ``prefix.t.a`` and ``prefix.t.a.>``. They are disjoint: a message matches at most one
  subject of a filter, so it is delivered once. ``#`` alone needs only ``prefix.t.>``:
  every topic has at least one level.

Decoding is the exact inverse: it accepts precisely the subjects encoding produces, and
raises :class:`ValueError` for anything else (a foreign prefix, ``=41`` for ``A``,
lower-case hex, an escaped ``/``, bytes that are not UTF-8, a topic MQTT forbids). The
slow path makes sure of it by re-encoding what it decoded and comparing.

Length
------
A topic of *B* UTF-8 bytes (``$`` and ``/`` included) becomes at most ``3 * B`` characters
after ``prefix.t.``: an escaped byte is three, a ``/`` is one ``.`` and leaves two for the
empty levels (``=``) on either side of it, a ``$`` topic's stripped ``$`` leaves its three
for an empty first level. So a subject is at most ``len(prefix) + 3 + 3 * B`` ASCII
characters, reached when every byte is escaped:
:meth:`SubjectCodec.max_subject_length`. With Bastion's default quota of 256 bytes that is
``771 + len(prefix)``. Topics up to MQTT's 65535 bytes are encoded all the same; whether
NATS accepts the subject (its ``max_control_line``, 4 KiB by default, bounds it) is for the
cluster's configuration to check with that bound.

Cost, per message: one regular expression over the whole topic (or subject) recognises the
common case, plain levels only, which is then a ``str.replace``; anything else is one
``str.translate`` over a precomputed 256-entry table (decoding: unescape, then re-encode to
compare). Nothing is cached.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bastion.mqtt import RemoteProtocolError, validate_topic_filter, validate_topic_name

__all__ = ["DEFAULT_SUBJECT_PREFIX", "SubjectCodec"]

#: The prefix of the subjects Bastion's messages travel on, unless configured otherwise.
DEFAULT_SUBJECT_PREFIX = "bastion.msg"

_ORDINARY = "t"
_DOLLAR = "d"
_ESCAPE = "="
_EMPTY_LEVEL = "="
_MAX_TOPIC_BYTES = 65535
_SHARE_PREFIX = "$share/"

_LITERAL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_LITERAL_BYTES = frozenset(_LITERAL.encode("ascii"))

#: ``str.translate`` table from code points 0-255 (the bytes of a level's UTF-8 encoding,
#: read as Latin-1) to their tokens' text. ``/`` separates levels; ``+`` and ``#`` can
#: only be whole levels of a valid filter (and are absent from a valid name), so they map
#: straight to NATS's wildcards.
_TRANSLATION: list[str] = [
    chr(byte) if byte in _LITERAL_BYTES else f"{_ESCAPE}{byte:02X}" for byte in range(256)
]
_TRANSLATION[ord("/")] = "."
_TRANSLATION[ord("+")] = "*"
_TRANSLATION[ord("#")] = ">"

#: Topics that need no escape: non-empty levels of literal characters only.
_PLAIN_TOPIC = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")
#: What decodes without unescaping: the part after the namespace token of a plain topic.
_PLAIN_SUBJECT = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_PREFIX_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def _encode_levels(text: str) -> str:
    """The tokens, joined by ``.``, of the ``/``-separated levels of ``text``.

    ``text`` is a topic or filter already validated (``+`` and ``#`` only as whole levels),
    possibly empty when it was a lone ``$`` that the namespace took.
    """
    if _PLAIN_TOPIC.fullmatch(text):
        return text.replace("/", ".")
    if not text.isascii():
        text = text.encode("utf-8").decode("latin-1")
    encoded = text.translate(_TRANSLATION)
    if not encoded or encoded[0] == "." or encoded[-1] == "." or ".." in encoded:
        encoded = ".".join(token or _EMPTY_LEVEL for token in encoded.split("."))
    return encoded


def _decode_token(token: str) -> str:
    """The level a token (not a wildcard) stands for, not yet checked to be canonical.

    :raises ValueError: if an escape is not two hex digits or the bytes are not UTF-8.
    """
    if token == _EMPTY_LEVEL:
        return ""
    if _ESCAPE not in token:
        return token
    head, *escaped = token.split(_ESCAPE)
    raw = bytearray(head.encode("utf-8"))
    for part in escaped:
        if len(part) < 2:
            raise ValueError(f"truncated escape in token {token!r}")
        raw += bytes.fromhex(part[:2])
        raw += part[2:].encode("utf-8")
    return raw.decode("utf-8")


@dataclass(frozen=True, slots=True)
class SubjectCodec:
    """Encodes MQTT topics and filters as NATS subjects under ``prefix``, and back.

    :param prefix: the subjects' first tokens, e.g. ``"bastion.msg"``: one or more
        non-empty tokens of ASCII letters, digits, ``-`` and ``_``, separated by ``.``.
        Two codecs whose prefixes nest (``a`` and ``a.t``) share subjects: give each
        cluster a prefix that no other one starts with.
    :raises TypeError: if ``prefix`` is not a ``str``.
    :raises ValueError: if ``prefix`` is not of that form.
    """

    prefix: str = DEFAULT_SUBJECT_PREFIX
    _ordinary_head: str = field(init=False, repr=False, compare=False)
    _dollar_head: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str):
            raise TypeError(f"prefix must be a str, not {type(self.prefix).__name__}")
        if not all(_PREFIX_TOKEN.fullmatch(token) for token in self.prefix.split(".")):
            raise ValueError(f"prefix {self.prefix!r} is not '.'-separated tokens of [A-Za-z0-9_-]")
        object.__setattr__(self, "_ordinary_head", f"{self.prefix}.{_ORDINARY}.")
        object.__setattr__(self, "_dollar_head", f"{self.prefix}.{_DOLLAR}.")

    @property
    def stream_subject(self) -> str:
        """``prefix.>``: the subject (of a JetStream stream, say) matching all of this codec's."""
        return f"{self.prefix}.>"

    def max_subject_length(self, topic_bytes: int) -> int:
        """The longest subject a topic or filter of ``topic_bytes`` UTF-8 bytes encodes to.

        :param topic_bytes: a topic's length in UTF-8 bytes (e.g. the configured quota).
        :returns: ``len(prefix) + 3 + 3 * topic_bytes``; subjects are ASCII, so this counts
            both characters and bytes.
        :raises ValueError: if ``topic_bytes`` is negative.
        """
        if topic_bytes < 0:
            raise ValueError(f"topic_bytes must not be negative, got {topic_bytes}")
        return len(self._ordinary_head) + 3 * topic_bytes

    def encode_topic(self, topic: str) -> str:
        """The subject a message published to ``topic`` travels on.

        :param topic: a valid MQTT topic name.
        :returns: ``prefix``, a namespace token and one token per level.
        :raises ValueError: if ``topic`` is not a valid topic name (empty, a wildcard,
            U+0000, a lone surrogate, longer than 65535 bytes).
        """
        try:
            validate_topic_name(topic)
        except RemoteProtocolError as exc:
            raise ValueError(f"{topic!r} is not a valid topic name: {exc}") from None
        if topic[0] == "$":
            return self._dollar_head + _encode_levels(topic[1:])
        return self._ordinary_head + _encode_levels(topic)

    def decode_topic(self, subject: str) -> str:
        """The topic name whose subject is ``subject``: the inverse of :meth:`encode_topic`.

        :param subject: a subject a message arrived on.
        :returns: the topic name ``t`` with ``encode_topic(t) == subject``.
        :raises ValueError: if no topic name encodes to ``subject``.
        """
        if subject.startswith(self._ordinary_head):
            dollar, rest = "", subject[len(self._ordinary_head) :]
        elif subject.startswith(self._dollar_head):
            dollar, rest = "$", subject[len(self._dollar_head) :]
        else:
            raise ValueError(f"subject {subject!r} is not under {self.prefix!r}.t or .d")
        if _PLAIN_SUBJECT.fullmatch(rest) and len(rest) + len(dollar) <= _MAX_TOPIC_BYTES:
            return dollar + rest.replace(".", "/")
        try:
            topic = dollar + "/".join(_decode_token(token) for token in rest.split("."))
            canonical = self.encode_topic(topic) == subject
        except ValueError as exc:
            raise ValueError(f"subject {subject!r} encodes no topic name: {exc}") from None
        if not canonical:
            raise ValueError(f"subject {subject!r} is not the encoding of a topic name")
        return topic

    def encode_filter(self, topic_filter: str) -> tuple[str, ...]:
        """The subjects to subscribe to so as to receive what ``topic_filter`` matches.

        One subject, or two for a filter ending in ``/#`` (the parent level, then the
        ``>`` wildcard). A message's subject matches at most one of them.

        :param topic_filter: a valid MQTT topic filter, not a shared subscription (the
            cluster handles ``$share/{group}/`` itself, with the inner filter).
        :returns: the subjects, the one ending in ``>`` (if any) last.
        :raises ValueError: if ``topic_filter`` is not a valid topic filter or is a shared
            subscription.
        """
        if topic_filter.startswith(_SHARE_PREFIX):
            raise ValueError(f"{topic_filter!r} is a shared subscription: encode its inner filter")
        try:
            validate_topic_filter(topic_filter)
        except RemoteProtocolError as exc:
            raise ValueError(f"{topic_filter!r} is not a valid topic filter: {exc}") from None
        if topic_filter[0] == "$":
            subject = self._dollar_head + _encode_levels(topic_filter[1:])
        else:
            subject = self._ordinary_head + _encode_levels(topic_filter)
        if subject.endswith(".>") and len(topic_filter) > 1:
            return (subject[:-2], subject)
        return (subject,)

    def decode_filter(self, subjects: Sequence[str]) -> str:
        """The topic filter whose subjects are ``subjects``: the inverse of
        :meth:`encode_filter`.

        :param subjects: the subjects exactly as :meth:`encode_filter` returned them (in
            order; a list or a tuple).
        :returns: the topic filter ``f`` with ``encode_filter(f) == tuple(subjects)``.
        :raises TypeError: if ``subjects`` is a single ``str``.
        :raises ValueError: if no topic filter encodes to ``subjects``.
        """
        if isinstance(subjects, str):
            raise TypeError("subjects must be a sequence of subjects, not one str")
        given = tuple(subjects)
        if not given:
            raise ValueError("no subjects to decode a topic filter from")
        subject = given[-1]
        if subject.startswith(self._ordinary_head):
            dollar, rest = "", subject[len(self._ordinary_head) :]
        elif subject.startswith(self._dollar_head):
            dollar, rest = "$", subject[len(self._dollar_head) :]
        else:
            raise ValueError(f"subject {subject!r} is not under {self.prefix!r}.t or .d")
        try:
            topic_filter = dollar + "/".join(
                "+" if token == "*" else "#" if token == ">" else _decode_token(token)
                for token in rest.split(".")
            )
            canonical = self.encode_filter(topic_filter) == given
        except ValueError as exc:
            raise ValueError(f"subjects {given!r} encode no topic filter: {exc}") from None
        if not canonical:
            raise ValueError(f"subjects {given!r} are not the encoding of a topic filter")
        return topic_filter
