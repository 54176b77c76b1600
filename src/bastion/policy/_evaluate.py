"""Evaluation: may this principal do this action on this resource?

Theory of operation
-------------------
A request (:class:`AuthRequest`) is an action (``iot:Publish``), a resource ARN
(``arn:aws:iot:<region>:<account>:topic/a/b``) and the requesting principal's context
(client id, thing, certificate fields, source IP, region, account, extra condition keys).
The policy set is every policy attached to the principal (certificate, thing groups, …).

A statement *matches* a request when all three hold:

1. **Action** — one of its ``Action`` patterns covers the action (case-insensitive; ``*``
   and ``?`` wildcards; ``iot:*``, ``iot:Pub*``, ``*``), or, for ``NotAction``, none does.
2. **Resource** — one of its ``Resource`` patterns matches the ARN, or, for
   ``NotResource``, none does. Policy variables in the pattern are first replaced with values
   from the context (:mod:`._variables`: values are literal; values containing
   ``* $ + ? #`` or longer than 1024 characters, multi-valued keys and keys the context
   lacks are left as their literal ``${…}`` text). Then ``*`` matches any run of characters
   *including* ``/``, ``?`` exactly one, and MQTT's ``+`` and ``#`` are plain characters
   (:mod:`._match`). The region and account fields are matched like the rest, so
   ``arn:aws:iot:*:*:topic/x`` covers every region and account while
   ``arn:aws:iot:eu-west-1:…`` covers only requests for that region.
3. **Conditions** — every condition holds (:mod:`._conditions`).

The decision follows IAM: if any matching statement is a Deny, the result is
``EXPLICIT_DENY``; otherwise if any is an Allow, ``ALLOWED``; otherwise ``IMPLICIT_DENY``.
Every matching statement is reported (not just the first), along with the context values
that statements for this action referred to but the context lacked.

Two implementations
-------------------
:func:`evaluate` below interprets :class:`Policy` documents directly with the plain
matchers of :mod:`._match`: it is the reference, written to be read. The broker uses the
fast path of :mod:`._compile`: :func:`compile_policy_set` once per policy set, :func:`bind`
once per connection (variables substituted and conditions evaluated once, since they only
depend on the context), then ``BoundPolicySet.is_allowed`` / ``decide`` per topic, which
only runs prepared string tests (:mod:`._resources`). Property tests check that both agree
on random policies and requests. Passing a :class:`CompiledPolicySet` to :func:`evaluate` uses the
fast path.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._actions import action_matches
from ._compile import CompiledPolicySet, bind
from ._conditions import evaluate_conditions
from ._context import AuthRequest, RequestContext
from ._decision import AuthDecision, Decision, PolicyRef, StatementRef
from ._match import arn_match
from ._model import Effect, Policy, Statement
from ._variables import substitute, tokenize


def evaluate(policies: Iterable[Policy] | CompiledPolicySet, request: AuthRequest) -> Decision:
    """Decide ``request`` against a policy set.

    :param policies: the policies attached to the principal, or their compiled form.
    :param request: the action, resource ARN and context.
    :returns: the decision, with every matching statement and the missing context values.
    :raises TypeError: an element of ``policies`` is not a :class:`Policy`, or ``request`` is
        not an :class:`AuthRequest`.
    """
    if not isinstance(request, AuthRequest):
        raise TypeError(f"request must be an AuthRequest, not {type(request).__name__}")
    if isinstance(policies, CompiledPolicySet):
        return bind(policies, request.context).decide(request.action, request.resource)
    policy_list = tuple(policies)
    for policy in policy_list:
        if not isinstance(policy, Policy):
            raise TypeError(f"policies must contain Policy values, not {type(policy).__name__}")
    allowed: list[StatementRef] = []
    denied: list[StatementRef] = []
    missing: set[str] = set()
    for policy in policy_list:
        policy_ref = PolicyRef(policy.name, policy.version_id)
        variables = policy.document.supports_variables
        for index, statement in enumerate(policy.document.statements):
            if not _covers_action(statement, request.action):
                continue
            resource_ok, resource_missing = _covers_resource(
                statement, request.resource, request.context, variables
            )
            conditions_ok, conditions_missing = evaluate_conditions(
                statement.conditions, request.context, variables=variables
            )
            missing |= resource_missing | conditions_missing
            if resource_ok and conditions_ok:
                ref = StatementRef(policy_ref, index, statement.sid, statement.effect)
                (denied if statement.effect is Effect.DENY else allowed).append(ref)
    if denied:
        effect = AuthDecision.EXPLICIT_DENY
    elif allowed:
        effect = AuthDecision.ALLOWED
    else:
        effect = AuthDecision.IMPLICIT_DENY
    return Decision(
        effect=effect,
        action=request.action,
        resource=request.resource,
        allowed=tuple(allowed),
        explicit_deny=tuple(denied),
        evaluated=tuple(PolicyRef(p.name, p.version_id) for p in policy_list),
        missing_context_values=tuple(sorted(missing)),
    )


def _covers_action(statement: Statement, action: str) -> bool:
    if statement.actions is not None:
        return any(action_matches(pattern, action) for pattern in statement.actions)
    assert statement.not_actions is not None
    return not any(action_matches(pattern, action) for pattern in statement.not_actions)


def _covers_resource(
    statement: Statement, resource: str, context: RequestContext, variables: bool
) -> tuple[bool, frozenset[str]]:
    patterns = statement.resources if statement.resources is not None else statement.not_resources
    assert patterns is not None
    matched = False
    missing: frozenset[str] = frozenset()
    for pattern in patterns:
        parts, absent = substitute(tokenize(pattern, variables=variables, wildcards=True), context)
        missing |= absent
        matched = arn_match(parts, resource) or matched
    return matched != (statement.resources is None), missing
