"""Reference matchers for patterns: plain globs and ARN patterns.

These are the straightforward, obviously-correct implementations used by
:func:`bastion.policy.evaluate` and by condition operators. The compiled fast path
(:mod:`._resources`) turns the same patterns into string tests or regular expressions;
property tests check that they agree.

Pattern semantics (AWS IoT): ``*`` matches any run of characters, **including** ``/``;
``?`` matches exactly one character; MQTT ``+`` and ``#`` are ordinary characters. In an ARN
pattern the first five colons written in the policy separate the ``arn``, partition,
service, region and account fields, and a wildcard in one of those fields does not cross a
colon; the sixth field (the resource, e.g. ``topic/a/b``) may itself contain colons. A
pattern with fewer than five colons (``*``) is matched against the whole string.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._variables import Part, Text, Wildcard

#: An atom is one literal character or one wildcard.
Atom = str | Wildcard

ARN_FIELDS = 6


def atoms(parts: Sequence[Part]) -> list[Atom]:
    """Flatten parts into single characters and wildcards."""
    out: list[Atom] = []
    for part in parts:
        if isinstance(part, Wildcard):
            out.append(part)
        else:
            out.extend(part.text)
    return out


def glob_match(pattern: Sequence[Atom], text: str) -> bool:
    """Does ``pattern`` match all of ``text``? (``*`` any run, ``?`` one character.)

    Greedy match with backtracking to the last ``*``: O(len(pattern) * len(text)).
    """
    p = t = 0
    star_p = -1
    star_t = 0
    while t < len(text):
        if p < len(pattern) and pattern[p] is Wildcard.ANY_RUN:
            star_p, star_t = p, t
            p += 1
        elif p < len(pattern) and (pattern[p] is Wildcard.ANY_CHAR or pattern[p] == text[t]):
            p += 1
            t += 1
        elif star_p >= 0:
            star_t += 1
            p, t = star_p + 1, star_t
        else:
            return False
    while p < len(pattern) and pattern[p] is Wildcard.ANY_RUN:
        p += 1
    return p == len(pattern)


def arn_fields(parts: Sequence[Part]) -> list[list[Atom]] | None:
    """Split a pattern into its six ARN fields at the first five colons *written in the
    policy* (a colon inside a substituted value is not a separator).

    :returns: six atom lists, or ``None`` if the pattern has fewer than five such colons.
    """
    fields: list[list[Atom]] = [[]]
    for part in parts:
        if isinstance(part, Wildcard):
            fields[-1].append(part)
        elif isinstance(part, Text):
            for ch in part.text:
                if ch == ":" and len(fields) < ARN_FIELDS:
                    fields.append([])
                else:
                    fields[-1].append(ch)
        else:
            fields[-1].extend(part.text)
    return fields if len(fields) == ARN_FIELDS else None


def arn_match(parts: Sequence[Part], arn: str) -> bool:
    """Does the ARN pattern ``parts`` match the request ARN ``arn``? (See module docs.)"""
    fields = arn_fields(parts)
    if fields is None:
        return glob_match(atoms(parts), arn)
    request_fields = arn.split(":", ARN_FIELDS - 1)
    if len(request_fields) != ARN_FIELDS:
        return False
    return all(glob_match(f, r) for f, r in zip(fields, request_fields, strict=True))
