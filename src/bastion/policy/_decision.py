"""The outcome of an authorization: :class:`Decision`, and :func:`explain` for humans."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._model import Effect


class AuthDecision(enum.Enum):
    """The verdict; values are AWS ``TestAuthorization``'s ``authDecision`` strings."""

    ALLOWED = "ALLOWED"
    EXPLICIT_DENY = "EXPLICIT_DENY"
    IMPLICIT_DENY = "IMPLICIT_DENY"


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """A policy, as reported in a decision (``policyName`` and its version)."""

    name: str
    version_id: str | None


@dataclass(frozen=True, slots=True)
class StatementRef:
    """One statement that matched a request.

    :ivar policy: the policy it belongs to.
    :ivar index: its 0-based position in the policy's ``Statement`` list.
    :ivar sid: its ``Sid``, if any.
    :ivar effect: its ``Effect``.
    """

    policy: PolicyRef
    index: int
    sid: str | None
    effect: Effect


def _unique(refs: tuple[StatementRef, ...]) -> tuple[PolicyRef, ...]:
    return tuple(dict.fromkeys(ref.policy for ref in refs))


@dataclass(frozen=True, slots=True)
class Decision:
    """The result of evaluating a request against a policy set.

    :ivar effect: ``ALLOWED`` if some Allow statement matched and no Deny did;
        ``EXPLICIT_DENY`` if a Deny statement matched; ``IMPLICIT_DENY`` otherwise.
    :ivar action: the requested action.
    :ivar resource: the requested resource ARN.
    :ivar allowed: every matching Allow statement, in policy and statement order.
    :ivar explicit_deny: every matching Deny statement, in policy and statement order.
    :ivar evaluated: every policy of the set, in order.
    :ivar missing_context_values: context keys and policy variables that statements for this
        action referred to but the request context did not provide, sorted.
    """

    effect: AuthDecision
    action: str
    resource: str
    allowed: tuple[StatementRef, ...] = ()
    explicit_deny: tuple[StatementRef, ...] = ()
    evaluated: tuple[PolicyRef, ...] = ()
    missing_context_values: tuple[str, ...] = ()

    @property
    def is_allowed(self) -> bool:
        """``effect is AuthDecision.ALLOWED``."""
        return self.effect is AuthDecision.ALLOWED

    @property
    def allowed_policies(self) -> tuple[PolicyRef, ...]:
        """Policies with a matching Allow statement (``allowed.policies``)."""
        return _unique(self.allowed)

    @property
    def explicit_deny_policies(self) -> tuple[PolicyRef, ...]:
        """Policies with a matching Deny statement (``denied.explicitDeny.policies``)."""
        return _unique(self.explicit_deny)

    @property
    def implicit_deny_policies(self) -> tuple[PolicyRef, ...]:
        """Policies with no matching statement at all (``denied.implicitDeny.policies``);
        empty when the request is allowed."""
        if self.effect is AuthDecision.ALLOWED:
            return ()
        matched = set(self.allowed_policies) | set(self.explicit_deny_policies)
        return tuple(p for p in dict.fromkeys(self.evaluated) if p not in matched)


def _describe(ref: StatementRef) -> str:
    version = f" version {ref.policy.version_id}" if ref.policy.version_id is not None else ""
    sid = f' (Sid "{ref.sid}")' if ref.sid else ""
    return f'policy "{ref.policy.name}"{version}, statement {ref.index}{sid}'


def explain(decision: Decision) -> str:
    """A human-readable, multi-line account of why ``decision`` came out as it did."""
    lines = [f"{decision.effect.value}: {decision.action} on {decision.resource}"]
    if decision.effect is AuthDecision.EXPLICIT_DENY:
        lines.append("Denied explicitly by:")
        lines.extend(f"  - {_describe(ref)}" for ref in decision.explicit_deny)
        if decision.allowed:
            lines.append("An explicit deny overrides the matching Allow statement(s):")
            lines.extend(f"  - {_describe(ref)}" for ref in decision.allowed)
    elif decision.effect is AuthDecision.ALLOWED:
        lines.append("Allowed by:")
        lines.extend(f"  - {_describe(ref)}" for ref in decision.allowed)
    else:
        if decision.evaluated:
            names = ", ".join(f'"{p.name}"' for p in dict.fromkeys(decision.evaluated))
            lines.append(
                f"No statement matched (implicit deny); policies evaluated: {names}."
            )
        else:
            lines.append("No statement matched (implicit deny): no policies are attached.")
    if decision.missing_context_values:
        lines.append(
            "Missing context values: " + ", ".join(decision.missing_context_values) + "."
        )
    return "\n".join(lines)
