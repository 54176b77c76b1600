"""Values of the policy language: a validated policy document and its parts.

These are produced by :func:`bastion.policy.parse_policy` and never hold unvalidated data.
All strings are kept exactly as written (wildcards and ``${…}`` variables unexpanded);
interpretation happens in the evaluators.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: The policy language versions we accept. Only the current one enables policy variables
#: (IAM convention: under ``2008-10-17`` or without ``Version``, ``${…}`` is literal text).
CURRENT_VERSION = "2012-10-17"
LEGACY_VERSION = "2008-10-17"
SUPPORTED_VERSIONS = frozenset({CURRENT_VERSION, LEGACY_VERSION})


class Effect(enum.Enum):
    """The ``Effect`` of a statement."""

    ALLOW = "Allow"
    DENY = "Deny"


class SetQualifier(enum.Enum):
    """The set-operator prefix of a condition operator (``ForAnyValue:StringLike``)."""

    FOR_ANY_VALUE = "ForAnyValue"
    FOR_ALL_VALUES = "ForAllValues"


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``operator → key → values`` test of a statement's ``Condition`` block.

    A block such as ``{"StringEquals": {"k1": "a", "k2": ["b", "c"]}}`` becomes two
    :class:`Condition` values (keys are ANDed); the values of one condition are ORed (NORed
    for negated operators).

    :ivar base_operator: the operator without qualifier or ``IfExists`` (``"StringLike"``).
    :ivar key: the condition key as written (``"iot:Certificate.Subject.Organization.List"``).
    :ivar values: the policy values, as strings (JSON booleans and numbers are rendered as
        ``"true"``/``"false"`` and their decimal text); may contain policy variables.
    :ivar qualifier: ``ForAnyValue`` / ``ForAllValues`` or ``None``.
    :ivar if_exists: whether the operator carries the ``IfExists`` suffix.
    """

    base_operator: str
    key: str
    values: tuple[str, ...]
    qualifier: SetQualifier | None = None
    if_exists: bool = False

    @property
    def operator(self) -> str:
        """The operator as it is written in a policy (``"ForAllValues:StringEqualsIfExists"``)."""
        prefix = f"{self.qualifier.value}:" if self.qualifier is not None else ""
        suffix = "IfExists" if self.if_exists else ""
        return f"{prefix}{self.base_operator}{suffix}"


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a policy document.

    Exactly one of :attr:`actions` / :attr:`not_actions` is set, and exactly one of
    :attr:`resources` / :attr:`not_resources`; each set one is a non-empty tuple.
    """

    effect: Effect
    actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    conditions: tuple[Condition, ...] = ()
    sid: str | None = None
    not_actions: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """A parsed, validated policy document.

    :ivar version: the ``Version`` element, or ``None`` when absent.
    :ivar statements: the statements, in document order (a single statement object becomes a
        one-element tuple).
    :ivar id: the optional top-level ``Id`` element.
    """

    version: str | None
    statements: tuple[Statement, ...]
    id: str | None = None

    @property
    def supports_variables(self) -> bool:
        """Whether ``${…}`` policy variables are expanded (only under ``2012-10-17``)."""
        return self.version == CURRENT_VERSION


@dataclass(frozen=True, slots=True)
class Policy:
    """A named (and optionally versioned) policy, as attached to a principal.

    :ivar name: the policy name (reported in decisions).
    :ivar document: the parsed document.
    :ivar version_id: the policy version (``"1"``, ``"2"``, …) or ``None`` if unversioned.
    """

    name: str
    document: PolicyDocument
    version_id: str | None = None
