"""The fast path: compile a policy set once, bind it to a context once, decide per topic.

Theory of operation
-------------------
``compile_policy_set`` flattens the statements of all policies and prepares what does not
depend on the requester: one regular expression per statement for its action patterns, a
plan for each resource pattern (:mod:`._resources`: which string test it becomes — equality,
``startswith``, ``endswith``, … — fixed by where its wildcards are), the finished matcher of
every statement whose resource patterns have no variables, and each condition with its
variable-free policy values already parsed (:class:`._conditions.CompiledCondition`).

``bind`` takes a request context — in the broker, once per connection — and finishes the job
without compiling anything in the common case: variables are substituted (same rules as the
reference evaluator, each looked up once per bind), each statement's resource patterns become
one matcher (all exact ARNs in one ``frozenset``, all prefixes in one ``startswith`` tuple, …),
and the statement's conditions are evaluated right away, because in AWS IoT every condition key
comes from the context and not from the individual request. A statement whose conditions fail
stays in the bound set only to report missing context values.

``BoundPolicySet.is_allowed(action, resource)`` then selects the statements for the action
(memoised per action as asked: there are only a handful) and runs at most one matcher per
statement, Deny statements first, returning at the first Deny or Allow that matches.
``decide`` does the complete pass and builds the same :class:`Decision` as
:func:`bastion.policy.evaluate`. Bound sets are immutable in behaviour; the per-action memo is
an internal cache. When a policy, the principal's thing or its attributes change, the broker
compiles/binds again — nothing here goes stale by itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ._actions import action_regex_source
from ._conditions import CompiledCondition, evaluate_compiled
from ._context import RequestContext
from ._decision import AuthDecision, Decision, PolicyRef, StatementRef
from ._model import Effect, Policy
from ._resources import CompiledPatterns, Matcher, arn_regex_source, compiled_regex
from ._variables import Variable, substitution, tokenize

__all__ = [
    "BoundPolicySet",
    "CompiledPolicySet",
    "arn_regex_source",  # the fallback matcher; tests compare it with the reference
    "bind",
    "compile_policy_set",
]

_ACTION_CACHE_LIMIT = 256


@dataclass(frozen=True, slots=True)
class _CompiledStatement:
    ref: StatementRef
    deny: bool
    action_fullmatch: Callable[[str], re.Match[str] | None]
    actions_negated: bool
    patterns: CompiledPatterns
    resources_negated: bool
    conditions: tuple[CompiledCondition, ...]

    def covers_action(self, lowered_action: str) -> bool:
        return (self.action_fullmatch(lowered_action) is not None) != self.actions_negated


class CompiledPolicySet:
    """A policy set prepared for fast evaluation; see :func:`compile_policy_set`.

    :ivar policies: the policies, in the order given.
    """

    __slots__ = ("_policies", "_refs", "_statements")

    def __init__(
        self, policies: tuple[Policy, ...], statements: tuple[_CompiledStatement, ...]
    ) -> None:
        self._policies = policies
        self._refs = tuple(PolicyRef(p.name, p.version_id) for p in policies)
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
                    action_fullmatch=compiled_regex(action_source).fullmatch,
                    actions_negated=statement.actions is None,
                    patterns=CompiledPatterns(
                        [
                            tokenize(p, variables=variables, wildcards=True)
                            for p in resource_patterns
                        ]
                    ),
                    resources_negated=statement.resources is None,
                    conditions=tuple(
                        CompiledCondition(c, variables=variables) for c in statement.conditions
                    ),
                )
            )
    return CompiledPolicySet(policy_list, tuple(statements))


@dataclass(frozen=True, slots=True)
class _BoundStatement:
    compiled: _CompiledStatement
    #: does any resource pattern match?
    resource_matches: Matcher
    conditions_hold: bool
    missing: frozenset[str]

    def covers_resource(self, resource: str) -> bool:
        return self.resource_matches(resource) != self.compiled.resources_negated


_Test = tuple[Matcher, bool]


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
        #: action as asked → (Deny tests, Allow tests).
        self._by_action: dict[str, tuple[tuple[_Test, ...], tuple[_Test, ...]]] = {}

    @property
    def context(self) -> RequestContext:
        """The context this set is bound to."""
        return self._context

    def _tests_for(self, action: str) -> tuple[tuple[_Test, ...], tuple[_Test, ...]]:
        lowered = action.lower()
        denies: list[_Test] = []
        allows: list[_Test] = []
        for statement in self._statements:
            compiled = statement.compiled
            if statement.conditions_hold and compiled.covers_action(lowered):
                test = (statement.resource_matches, compiled.resources_negated)
                (denies if compiled.deny else allows).append(test)
        result = (tuple(denies), tuple(allows))
        if len(self._by_action) < _ACTION_CACHE_LIMIT:
            self._by_action[action] = result
        return result

    def is_allowed(self, action: str, resource: str) -> bool:
        """Whether ``action`` on the resource ARN ``resource`` is allowed (no matching Deny,
        at least one matching Allow). Same verdict as :meth:`decide`, without the report."""
        tests = self._by_action.get(action)
        denies, allows = tests if tests is not None else self._tests_for(action)
        for matches, negated in denies:
            if matches(resource) != negated:
                return False
        for matches, negated in allows:
            if matches(resource) != negated:
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


class _Resolver:
    """Renders policy variables for one context, each looked up once."""

    __slots__ = ("_context", "_missing", "_texts")

    def __init__(self, context: RequestContext) -> None:
        self._context = context
        self._texts: dict[str, str] = {}
        self._missing: set[str] = set()

    def __call__(self, variable: Variable) -> str:
        text = self._texts.get(variable.name)
        if text is None:
            text, absent = substitution(variable, self._context)
            self._texts[variable.name] = text
            if absent:
                self._missing.add(variable.name)
        return text

    def missing(self, variables: tuple[Variable, ...]) -> frozenset[str]:
        """The names of ``variables`` the context has no value for."""
        for variable in variables:
            self(variable)
        if not self._missing:
            return _NOTHING_MISSING
        return frozenset(v.name for v in variables if v.name in self._missing)


_NOTHING_MISSING: frozenset[str] = frozenset()


def bind(compiled: CompiledPolicySet, context: RequestContext) -> BoundPolicySet:
    """Resolve ``compiled``'s policy variables and conditions for ``context``.

    :raises TypeError: wrong argument types.
    """
    if not isinstance(compiled, CompiledPolicySet):
        raise TypeError(f"compiled must be a CompiledPolicySet, not {type(compiled).__name__}")
    if not isinstance(context, RequestContext):
        raise TypeError(f"context must be a RequestContext, not {type(context).__name__}")
    resolve = _Resolver(context)
    bound: list[_BoundStatement] = []
    for statement in compiled._statements:
        if statement.conditions:
            holds, missing = evaluate_compiled(statement.conditions, context)
        else:
            holds, missing = True, _NOTHING_MISSING
        patterns = statement.patterns
        matches = patterns.matcher(resolve)
        if patterns.variables:
            absent = resolve.missing(patterns.variables)
            if absent:  # (an empty union would still be a new 216-byte set per binding)
                missing = missing | absent
        bound.append(_BoundStatement(statement, matches, holds, missing))
    return BoundPolicySet(context, compiled._refs, tuple(bound))
