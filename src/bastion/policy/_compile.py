"""The fast path: compile a policy set once, bind it to a context once, decide per topic.

Theory of operation
-------------------
``compile_policy_set`` flattens the statements of all policies and prepares what does not
depend on the requester: one regular expression per statement for its action patterns, and
for each resource pattern either a finished regular expression (no variables) or its tokens
(with variables).

``bind`` takes a request context — in the broker, once per connection — and finishes the job:
variables are substituted (same rules as the reference evaluator), each statement's resource
patterns become a single alternation regex, and the statement's conditions are evaluated
right away, because in AWS IoT every condition key comes from the context and not from the
individual request. A statement whose conditions fail stays in the bound set only to report
missing context values.

``BoundPolicySet.is_allowed(action, resource)`` then selects the statements for the action
(memoised per action: there are only a handful) and runs at most one ``fullmatch`` per
statement, Deny statements first, returning at the first Deny or Allow that matches.
``decide`` does the complete pass and builds the same :class:`Decision` as
:func:`bastion.policy.evaluate`. Bound sets are immutable in behaviour; the per-action memo is
an internal cache. When a policy, the principal's thing or its attributes change, the broker
compiles/binds again — nothing here goes stale by itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ._actions import action_regex_source
from ._conditions import evaluate_conditions
from ._context import RequestContext
from ._decision import AuthDecision, Decision, PolicyRef, StatementRef
from ._match import ARN_FIELDS, Atom, arn_fields, atoms
from ._model import Condition, Effect, Policy
from ._variables import Part, Token, Variable, Wildcard, substitute, tokenize

_ACTION_CACHE_LIMIT = 256


@functools.lru_cache(maxsize=4096)
def _regex(source: str) -> re.Pattern[str]:
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


@dataclass(frozen=True, slots=True)
class _ResourcePattern:
    tokens: tuple[Token, ...]
    #: finished regex source when the pattern has no variables (None: matches nothing).
    static: str | None
    has_variables: bool


@dataclass(frozen=True, slots=True)
class _CompiledStatement:
    ref: StatementRef
    deny: bool
    action_fullmatch: Callable[[str], re.Match[str] | None]
    actions_negated: bool
    patterns: tuple[_ResourcePattern, ...]
    resources_negated: bool
    conditions: tuple[Condition, ...]
    variables: bool

    def covers_action(self, lowered_action: str) -> bool:
        return (self.action_fullmatch(lowered_action) is not None) != self.actions_negated


class CompiledPolicySet:
    """A policy set prepared for fast evaluation; see :func:`compile_policy_set`.

    :ivar policies: the policies, in the order given.
    """

    __slots__ = ("_policies", "_statements")

    def __init__(
        self, policies: tuple[Policy, ...], statements: tuple[_CompiledStatement, ...]
    ) -> None:
        self._policies = policies
        self._statements = statements

    @property
    def policies(self) -> tuple[Policy, ...]:
        """The policies, in the order given."""
        return self._policies

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self._policies)
        return f"<CompiledPolicySet [{names}] {len(self._statements)} statements>"


def compile_policy_set(policies: Iterable[Policy]) -> CompiledPolicySet:
    """Prepare ``policies`` for :func:`bind`.

    :raises TypeError: an element is not a :class:`Policy`.
    """
    policy_list = tuple(policies)
    statements: list[_CompiledStatement] = []
    for policy in policy_list:
        if not isinstance(policy, Policy):
            raise TypeError(f"policies must contain Policy values, not {type(policy).__name__}")
        policy_ref = PolicyRef(policy.name, policy.version_id)
        variables = policy.document.supports_variables
        for index, statement in enumerate(policy.document.statements):
            action_patterns = statement.actions or statement.not_actions or ()
            resource_patterns = statement.resources or statement.not_resources or ()
            action_source = "|".join(f"(?:{action_regex_source(a)})" for a in action_patterns)
            statements.append(
                _CompiledStatement(
                    ref=StatementRef(policy_ref, index, statement.sid, statement.effect),
                    deny=statement.effect is Effect.DENY,
                    action_fullmatch=_regex(action_source).fullmatch,
                    actions_negated=statement.actions is None,
                    patterns=tuple(
                        _resource_pattern(p, variables=variables) for p in resource_patterns
                    ),
                    resources_negated=statement.resources is None,
                    conditions=statement.conditions,
                    variables=variables,
                )
            )
    return CompiledPolicySet(policy_list, tuple(statements))


def _resource_pattern(pattern: str, *, variables: bool) -> _ResourcePattern:
    tokens = tokenize(pattern, variables=variables, wildcards=True)
    if any(isinstance(t, Variable) for t in tokens):
        return _ResourcePattern(tokens, None, True)
    parts: tuple[Part, ...] = tuple(t for t in tokens if not isinstance(t, Variable))
    return _ResourcePattern(tokens, arn_regex_source(parts), False)


@dataclass(frozen=True, slots=True)
class _BoundStatement:
    compiled: _CompiledStatement
    #: fullmatch of the alternation of all resource patterns; None: no pattern can match.
    resource_fullmatch: Callable[[str], re.Match[str] | None] | None
    conditions_hold: bool
    missing: frozenset[str]

    def covers_resource(self, resource: str) -> bool:
        fullmatch = self.resource_fullmatch
        matched = fullmatch is not None and fullmatch(resource) is not None
        return matched != self.compiled.resources_negated


_Test = tuple[Callable[[str], "re.Match[str] | None"] | None, bool]


class BoundPolicySet:
    """A compiled policy set with one request context's variables and conditions resolved.

    Create with :func:`bind`. Cheap to query; safe to share between threads.
    """

    __slots__ = ("_by_action", "_context", "_policies", "_statements")

    def __init__(
        self,
        context: RequestContext,
        policies: tuple[PolicyRef, ...],
        statements: tuple[_BoundStatement, ...],
    ) -> None:
        self._context = context
        self._policies = policies
        self._statements = statements
        self._by_action: dict[str, tuple[tuple[_Test, ...], tuple[_Test, ...]]] = {}

    @property
    def context(self) -> RequestContext:
        """The context this set is bound to."""
        return self._context

    def _tests_for(self, action: str) -> tuple[tuple[_Test, ...], tuple[_Test, ...]]:
        lowered = action.lower()
        cached = self._by_action.get(lowered)
        if cached is not None:
            return cached
        denies: list[_Test] = []
        allows: list[_Test] = []
        for statement in self._statements:
            compiled = statement.compiled
            if statement.conditions_hold and compiled.covers_action(lowered):
                test = (statement.resource_fullmatch, compiled.resources_negated)
                (denies if compiled.deny else allows).append(test)
        result = (tuple(denies), tuple(allows))
        if len(self._by_action) < _ACTION_CACHE_LIMIT:
            self._by_action[lowered] = result
        return result

    def is_allowed(self, action: str, resource: str) -> bool:
        """Whether ``action`` on the resource ARN ``resource`` is allowed (no matching Deny,
        at least one matching Allow). Same verdict as :meth:`decide`, without the report."""
        denies, allows = self._tests_for(action)
        for fullmatch, negated in denies:
            if ((fullmatch is not None and fullmatch(resource) is not None) != negated):
                return False
        for fullmatch, negated in allows:
            if ((fullmatch is not None and fullmatch(resource) is not None) != negated):
                return True
        return False

    def decide(self, action: str, resource: str) -> Decision:
        """The full :class:`Decision` for ``action`` on ``resource`` (see
        :func:`bastion.policy.evaluate`)."""
        lowered = action.lower()
        allowed: list[StatementRef] = []
        denied: list[StatementRef] = []
        missing: set[str] = set()
        for statement in self._statements:
            compiled = statement.compiled
            if not compiled.covers_action(lowered):
                continue
            missing |= statement.missing
            if statement.conditions_hold and statement.covers_resource(resource):
                (denied if compiled.deny else allowed).append(compiled.ref)
        if denied:
            effect = AuthDecision.EXPLICIT_DENY
        elif allowed:
            effect = AuthDecision.ALLOWED
        else:
            effect = AuthDecision.IMPLICIT_DENY
        return Decision(
            effect=effect,
            action=action,
            resource=resource,
            allowed=tuple(allowed),
            explicit_deny=tuple(denied),
            evaluated=self._policies,
            missing_context_values=tuple(sorted(missing)),
        )


def bind(compiled: CompiledPolicySet, context: RequestContext) -> BoundPolicySet:
    """Resolve ``compiled``'s policy variables and conditions for ``context``.

    :raises TypeError: wrong argument types.
    """
    if not isinstance(compiled, CompiledPolicySet):
        raise TypeError(f"compiled must be a CompiledPolicySet, not {type(compiled).__name__}")
    if not isinstance(context, RequestContext):
        raise TypeError(f"context must be a RequestContext, not {type(context).__name__}")
    bound: list[_BoundStatement] = []
    for statement in compiled._statements:
        holds, missing = evaluate_conditions(
            statement.conditions, context, variables=statement.variables
        )
        sources: list[str] = []
        for pattern in statement.patterns:
            if pattern.has_variables:
                parts, absent = substitute(pattern.tokens, context)
                missing |= absent
                source = arn_regex_source(parts)
            else:
                source = pattern.static
            if source is not None:
                sources.append(source)
        fullmatch = (
            _regex("|".join(f"(?:{s})" for s in sources)).fullmatch if sources else None
        )
        bound.append(_BoundStatement(statement, fullmatch, holds, missing))
    policies = tuple(PolicyRef(p.name, p.version_id) for p in compiled.policies)
    return BoundPolicySet(context, policies, tuple(bound))
