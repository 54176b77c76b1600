"""Resource patterns on the fast path: their shape at compile time, string tests at bind time.

Theory of operation
-------------------
The reference matcher (:func:`._match.arn_match`) splits a pattern into ARN fields at the
first five colons written in the policy and globs each field. Compiling that into a regular
expression per connection costs tens of microseconds per pattern (``re.compile``), and the
``re`` cache is useless when every device has its own patterns. This module avoids regular
expressions for the common shapes.

Everything that decides a pattern's *shape* is known at compile time: where the wildcards
are and which colons separate ARN fields are both fixed by the policy text, because a
substituted value is always literal — it never acts as a wildcard or a separator (values
with ``*`` or ``?`` are not even substituted, :mod:`._variables`). So
:class:`CompiledPatterns` turns each pattern's tokens into a *plan* once, and at bind time
the plan only renders the variables into strings and files the result by shape:

* **Whole-string globs** — a pattern with fewer than five separators, or an ARN pattern
  whose first five fields (``arn:aws:iot:<region>:<account>:``) hold no wildcard. For the
  latter, globbing the whole request ARN is equivalent to globbing field by field: a request
  that starts with the literal header has its first five colons exactly where the pattern
  has them, and one that does not is refused by both. (A substituted value that puts a
  colon into a header field makes the pattern match nothing, as in the reference.) With
  only ``*`` wildcards, the glob ``S0*S1*…*Sk`` is decided with string methods: no ``*`` →
  equality (all of a statement's go into one ``frozenset``); ``S0*`` → ``startswith`` and
  ``*Sk`` → ``endswith`` (all of a statement's go into one tuple, a single C call);
  ``S0*Sk`` → both plus a length check; otherwise ``find`` for each middle segment,
  leftmost first, which never loses a match.
* **Wildcards in the header** (``arn:aws:iot:*:*:topic/…``) with no variable there: the
  header becomes a regular expression once, at compile time. At bind time the resource field
  is globbed as above on what follows the header match (which is unique: the header's five
  fields cannot contain a colon); a statement's patterns with the same header share one
  header match and one set of string tests (prefixes are tested in place, ``startswith``
  from the end of the match).
* **The rest** — ``?`` outside a precompiled header, or a header with both wildcards and
  variables — falls back to the regular expression of :func:`arn_regex_source` (compiled
  at compile time when the pattern has no variables, else per bind through an LRU cache).

A statement's patterns are collected by a :class:`MatcherBuilder` into one callable
``str -> bool``; the patterns of a statement without variables are collected at compile
time, so bind only adds the ones with variables.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from operator import methodcaller

from ._match import ARN_FIELDS, Atom, arn_fields, atoms
from ._variables import Part, Text, Token, Value, Variable, Wildcard

#: Whether a resource ARN matches (one pattern, or any pattern of a statement).
Matcher = Callable[[str], bool]
#: Renders a variable for the bound context: its value, or its literal ``${…}`` text.
Resolve = Callable[[Variable], str]
#: A run of pattern text without ``*``: literal text (already joined when it has no
#: variable) or literal pieces and variables.
Segment = str | tuple[str | Variable, ...]

#: Matches nothing.
NEVER: Matcher = frozenset[str]().__contains__


# --------------------------------------------------------------------------------------
# Regular expressions (the general case)


@functools.lru_cache(maxsize=4096)
def compiled_regex(source: str) -> re.Pattern[str]:
    """``re.compile(source, re.DOTALL)``, memoised."""
    return re.compile(source, re.DOTALL)


def _segment_regex(segment: Sequence[Atom], any_char: str) -> str:
    out: list[str] = []
    literal: list[str] = []
    for atom in segment:
        if isinstance(atom, str):
            literal.append(atom)
            continue
        if literal:
            out.append(re.escape("".join(literal)))
            literal.clear()
        out.append(any_char)
    if literal:
        out.append(re.escape("".join(literal)))
    return "".join(out)


def _atoms_regex(items: Sequence[Atom], *, within_field: bool) -> str:
    """Regex source for a glob, immune to catastrophic backtracking.

    The glob ``S0*S1*…*Sk`` (no ``*`` inside a segment, so each segment has a fixed length)
    matches iff ``S0`` is a prefix, ``S1…Sk-1`` occur in order after it, and ``Sk`` is a
    suffix after those. Taking the *leftmost* occurrence of each middle segment never loses
    a match, so each middle segment is an atomic group ``(?>.*?Si)`` that the engine cannot
    re-enter; only the last ``.*`` backtracks. Matching is O(len(text) · len(pattern)), where
    a naive ``.*S1.*S2…`` translation is exponential in the number of stars — and topics come
    from devices.
    """
    any_run, any_char = ("[^:]*", "[^:]") if within_field else (".*", ".")
    segments: list[list[Atom]] = [[]]
    for atom in items:
        if atom is Wildcard.ANY_RUN:
            segments.append([])
        else:
            segments[-1].append(atom)
    if len(segments) == 1:
        return _segment_regex(segments[0], any_char)
    first, *middle, last = segments
    out = [_segment_regex(first, any_char)]
    out.extend(f"(?>{any_run}?{_segment_regex(m, any_char)})" for m in middle if m)
    out.append(any_run + _segment_regex(last, any_char))
    return "".join(out)


def arn_regex_source(parts: Sequence[Part]) -> str | None:
    """Regex source equivalent to :func:`._match.arn_match` for ``parts``, or ``None`` when
    the pattern can match nothing (a substituted value put a colon into one of the first
    five ARN fields, which never contain one)."""
    fields = arn_fields(parts)
    if fields is None:
        return _atoms_regex(atoms(parts), within_field=False)
    if any(":" in field for field in fields[: ARN_FIELDS - 1]):
        return None
    head = [_atoms_regex(field, within_field=True) for field in fields[: ARN_FIELDS - 1]]
    return ":".join([*head, _atoms_regex(fields[-1], within_field=False)])


# --------------------------------------------------------------------------------------
# String tests


def star_glob(text: str, pos: int, first: str, middle: tuple[str, ...], last: str) -> bool:
    """Does ``text[pos:]`` match the glob ``first*m1*…*mk*last`` (``middle`` = the non-empty
    ``m1…mk``; no ``?``)? Each middle segment is taken at its leftmost occurrence."""
    end = len(text) - len(last)
    if end - pos < len(first) or not text.startswith(first, pos) or not text.endswith(last):
        return False
    pos += len(first)
    for segment in middle:
        found = text.find(segment, pos, end)
        if found < 0:
            return False
        pos = found + len(segment)
    return True


def _affixes(first: str, last: str) -> Matcher:
    shortest = len(first) + len(last)

    def matches(resource: str) -> bool:
        return (
            len(resource) >= shortest and resource.startswith(first) and resource.endswith(last)
        )

    return matches


def _infixes(first: str, middle: tuple[str, ...], last: str) -> Matcher:
    def matches(resource: str) -> bool:
        return star_glob(resource, 0, first, middle, last)

    return matches


def _after_header(header: Callable[[str], re.Match[str] | None], rest: MatcherBuilder) -> Matcher:
    prefixes = rest.only_prefixes()
    if prefixes is not None:  # the usual case: test in place, no slice

        def starts(resource: str) -> bool:
            found = header(resource)
            return found is not None and resource.startswith(prefixes, found.end())

        return starts
    rest_matches = rest.build()

    def matches(resource: str) -> bool:
        found = header(resource)
        return found is not None and rest_matches(resource[found.end() :])

    return matches


def _fullmatches(pattern: re.Pattern[str]) -> Matcher:
    fullmatch = pattern.fullmatch

    def matches(resource: str) -> bool:
        return fullmatch(resource) is not None

    return matches


def _any_of(tests: tuple[Matcher, ...]) -> Matcher:
    def matches(resource: str) -> bool:
        for test in tests:
            if test(resource):
                return True
        return False

    return matches


class MatcherBuilder:
    """Collects the patterns of one statement and builds one :data:`Matcher` for them."""

    __slots__ = ("_exact", "_headed", "_prefixes", "_sources", "_suffixes", "_tests")

    def __init__(self, seed: MatcherBuilder | None = None) -> None:
        """:param seed: start from a copy of another builder's patterns."""
        if seed is None:
            self._exact: list[str] = []
            self._prefixes: list[str] = []
            self._suffixes: list[str] = []
            self._tests: list[Matcher] = []
            self._sources: list[str] = []
            self._headed: dict[re.Pattern[str], MatcherBuilder] = {}
        else:
            self._exact = seed._exact.copy()
            self._prefixes = seed._prefixes.copy()
            self._suffixes = seed._suffixes.copy()
            self._tests = seed._tests.copy()
            self._sources = seed._sources.copy()
            self._headed = {h: MatcherBuilder(rest) for h, rest in seed._headed.items()}

    def add_glob(self, segments: list[str]) -> None:
        """Add the whole-string glob ``segments[0]*segments[1]*…`` (no ``?``)."""
        first = segments[0]
        if len(segments) == 1:
            self._exact.append(first)
            return
        last = segments[-1]
        middle = tuple(s for s in segments[1:-1] if s)
        if middle:
            self._tests.append(_infixes(first, middle, last))
        elif not last:
            self._prefixes.append(first)
        elif not first:
            self._suffixes.append(last)
        else:
            self._tests.append(_affixes(first, last))

    def add_after_header(self, header: re.Pattern[str], segments: list[str]) -> None:
        """Add a pattern whose start must ``match`` ``header`` and whose remainder is the glob
        ``segments`` (as :meth:`add_glob`). Patterns with the same header share its match."""
        rest = self._headed.get(header)
        if rest is None:
            rest = self._headed[header] = MatcherBuilder()
        rest.add_glob(segments)

    def add_source(self, source: str) -> None:
        """Add a pattern given as regex source (all of them become one alternation)."""
        self._sources.append(source)

    def only_prefixes(self) -> tuple[str, ...] | None:
        """The prefixes added, if :meth:`add_glob` added nothing but prefixes."""
        if self._exact or self._suffixes or self._tests or self._sources or self._headed:
            return None
        return tuple(self._prefixes) if self._prefixes else None

    def build(self) -> Matcher:
        """One test for all patterns added: does any of them match?"""
        tests: list[Matcher] = []
        if self._exact:
            tests.append(frozenset(self._exact).__contains__)
        for method, affixes in (("startswith", self._prefixes), ("endswith", self._suffixes)):
            if affixes:
                tests.append(
                    methodcaller(method, affixes[0] if len(affixes) == 1 else tuple(affixes))
                )
        tests.extend(self._tests)
        tests.extend(_after_header(h.match, rest) for h, rest in self._headed.items())
        if self._sources:
            alternation = "|".join(f"(?:{source})" for source in self._sources)
            tests.append(_fullmatches(compiled_regex(alternation)))
        if not tests:
            return NEVER
        if len(tests) == 1:
            return tests[0]
        return _any_of(tuple(tests))


# --------------------------------------------------------------------------------------
# Plans


def _render(segment: Segment, resolve: Resolve) -> str:
    if isinstance(segment, str):
        return segment
    return "".join([p if isinstance(p, str) else resolve(p) for p in segment])


class _Plan:
    """How one resource pattern is added to a statement's matcher for a context."""

    __slots__ = ()

    def add_to(self, builder: MatcherBuilder, resolve: Resolve) -> None:
        raise NotImplementedError


class _GlobPlan(_Plan):
    """A whole-string glob with ``*`` wildcards only."""

    __slots__ = ("_guarded", "_segments")

    def __init__(self, segments: tuple[Segment, ...], guarded: tuple[Variable, ...]) -> None:
        self._segments = segments
        #: variables in the ARN header: a value with a colon makes the pattern match nothing.
        self._guarded = guarded

    def add_to(self, builder: MatcherBuilder, resolve: Resolve) -> None:
        rendered = [_render(segment, resolve) for segment in self._segments]
        if any(":" in resolve(variable) for variable in self._guarded):
            return
        builder.add_glob(rendered)


class _HeaderPlan(_Plan):
    """A precompiled header regex followed by a resource field with ``*`` wildcards only."""

    __slots__ = ("_header", "_segments")

    def __init__(self, header: re.Pattern[str], segments: tuple[Segment, ...]) -> None:
        self._header = header
        self._segments = segments

    def add_to(self, builder: MatcherBuilder, resolve: Resolve) -> None:
        rendered = [_render(segment, resolve) for segment in self._segments]
        builder.add_after_header(self._header, rendered)


class _RegexPlan(_Plan):
    """Anything else: the regular expression of :func:`arn_regex_source`."""

    __slots__ = ("_tokens",)

    def __init__(self, tokens: tuple[Token, ...]) -> None:
        self._tokens = tokens

    def add_to(self, builder: MatcherBuilder, resolve: Resolve) -> None:
        parts = [Value(resolve(t)) if isinstance(t, Variable) else t for t in self._tokens]
        source = arn_regex_source(parts)
        if source is not None:
            builder.add_source(source)


def _split_fields(tokens: Sequence[Token]) -> list[list[Token]] | None:
    """Tokens per ARN field, split at the first five colons of :class:`Text` tokens (like
    :func:`._match.arn_fields`), or ``None`` with fewer than five such colons."""
    fields: list[list[Token]] = [[]]
    for token in tokens:
        if not isinstance(token, Text):
            fields[-1].append(token)
            continue
        head, *rest = token.text.split(":", ARN_FIELDS - len(fields))
        if head:
            fields[-1].append(Text(head))
        for piece in rest:
            fields.append([Text(piece)] if piece else [])
    return fields if len(fields) == ARN_FIELDS else None


def _segments(tokens: Sequence[Token]) -> tuple[Segment, ...]:
    """Split ``*``-only tokens into segments; join literal runs; a segment without variables
    becomes a plain string."""
    segments: list[list[str | Variable]] = [[]]
    for token in tokens:
        if token is Wildcard.ANY_RUN:
            segments.append([])
        elif isinstance(token, Text):
            pieces = segments[-1]
            if pieces and isinstance(pieces[-1], str):
                pieces[-1] += token.text
            else:
                pieces.append(token.text)
        elif isinstance(token, Variable):
            segments[-1].append(token)
        else:  # pragma: no cover - callers exclude "?"
            raise AssertionError(token)
    out: list[Segment] = []
    for pieces in segments:
        if all(isinstance(p, str) for p in pieces):
            out.append("".join(p for p in pieces if isinstance(p, str)))
        else:
            out.append(tuple(pieces))
    return tuple(out)


def _plan(tokens: tuple[Token, ...]) -> _Plan:
    fields = _split_fields(tokens)
    if fields is None:
        if Wildcard.ANY_CHAR in tokens:
            return _RegexPlan(tokens)
        return _GlobPlan(_segments(tokens), ())
    *header_fields, resource = fields
    if Wildcard.ANY_CHAR in resource:
        return _RegexPlan(tokens)
    header = [token for field in header_fields for token in field]
    guarded = tuple(t for t in header if isinstance(t, Variable))
    if not any(isinstance(t, Wildcard) for t in header):
        return _GlobPlan(_segments(tokens), guarded)
    if guarded:
        return _RegexPlan(tokens)
    header_source = "".join(
        _atoms_regex(atoms([t for t in field if not isinstance(t, Variable)]), within_field=True)
        + ":"
        for field in header_fields
    )
    return _HeaderPlan(compiled_regex(header_source), _segments(resource))


def _no_variables(variable: Variable) -> str:  # pragma: no cover - never called
    raise AssertionError(f"unexpected variable {variable.raw}")


class CompiledPatterns:
    """The resource patterns of one statement, prepared for :meth:`matcher`.

    :ivar variables: the policy variables the patterns use (one per name).
    """

    __slots__ = ("_dynamic", "_static", "_static_matcher", "variables")

    def __init__(self, patterns: Sequence[tuple[Token, ...]]) -> None:
        """:param patterns: the tokenized patterns (:func:`._variables.tokenize`)."""
        self._static = MatcherBuilder()
        dynamic: list[_Plan] = []
        variables: dict[str, Variable] = {}
        for tokens in patterns:
            plan = _plan(tokens)
            found = [t for t in tokens if isinstance(t, Variable)]
            if found:
                variables.update((v.name, v) for v in found)
                dynamic.append(plan)
            else:
                plan.add_to(self._static, _no_variables)
        self._dynamic = tuple(dynamic)
        self._static_matcher = None if dynamic else self._static.build()
        self.variables: tuple[Variable, ...] = tuple(variables.values())

    def matcher(self, resolve: Resolve) -> Matcher:
        """One test for all patterns, variables rendered with ``resolve``."""
        if self._static_matcher is not None:
            return self._static_matcher
        builder = MatcherBuilder(self._static)
        for plan in self._dynamic:
            plan.add_to(builder, resolve)
        return builder.build()
