"""The AWS IoT policy language: parse, validate, compile, evaluate, explain.

A pure package: values in, values out — no I/O, no clock, no storage.

Typical use::

    document = parse_policy(text)                       # MalformedPolicyError if invalid
    policies = [Policy("dev-policy", document, version_id="1")]

    # reference evaluation (TestAuthorization, tools, tests)
    decision = evaluate(policies, AuthRequest("iot:Publish", context.arn("topic", "a/b"), context))
    print(explain(decision))

    # broker hot path
    bound = bind(compile_policy_set(policies), context)  # once per connection
    bound.is_allowed("iot:Publish", context.arn("topic", "a/b"))
"""

from __future__ import annotations

from ._actions import IOT_POLICY_ACTIONS
from ._compile import BoundPolicySet, CompiledPolicySet, bind, compile_policy_set
from ._conditions import CONDITION_OPERATORS
from ._context import (
    ALTERNATIVE_NAME_TYPES,
    CERTIFICATE_NAME_ATTRIBUTES,
    AuthRequest,
    RequestContext,
)
from ._decision import AuthDecision, Decision, PolicyRef, StatementRef, explain
from ._errors import MalformedPolicyError, PolicyError
from ._evaluate import evaluate
from ._model import Condition, Effect, Policy, PolicyDocument, SetQualifier, Statement
from ._parse import DEFAULT_MAX_POLICY_LENGTH, parse_policy

__all__ = [
    "ALTERNATIVE_NAME_TYPES",
    "CERTIFICATE_NAME_ATTRIBUTES",
    "CONDITION_OPERATORS",
    "DEFAULT_MAX_POLICY_LENGTH",
    "IOT_POLICY_ACTIONS",
    "AuthDecision",
    "AuthRequest",
    "BoundPolicySet",
    "CompiledPolicySet",
    "Condition",
    "Decision",
    "Effect",
    "MalformedPolicyError",
    "Policy",
    "PolicyDocument",
    "PolicyError",
    "PolicyRef",
    "RequestContext",
    "SetQualifier",
    "Statement",
    "StatementRef",
    "bind",
    "compile_policy_set",
    "evaluate",
    "explain",
    "parse_policy",
]
