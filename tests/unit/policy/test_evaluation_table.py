"""The checked-in evaluation table (cases/evaluation.json), run through both evaluators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bastion.policy import (
    AuthDecision,
    AuthRequest,
    Decision,
    Policy,
    RequestContext,
    bind,
    compile_policy_set,
    evaluate,
    parse_policy,
)

_TABLE = json.loads((Path(__file__).parent / "cases" / "evaluation.json").read_text("utf-8"))
CASES: list[dict[str, Any]] = _TABLE["cases"]


def _document_text(document: object) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def build_policies(case: dict[str, Any]) -> list[Policy]:
    if "policies" in case:
        return [
            Policy(p["name"], parse_policy(_document_text(p["document"])), p.get("version"))
            for p in case["policies"]
        ]
    if "document" in case:
        document = case["document"]
    else:
        document = {"Version": "2012-10-17", "Statement": case["statements"]}
    return [Policy("p", parse_policy(_document_text(document)), "1")]


def build_request(raw: dict[str, Any]) -> AuthRequest:
    fields: dict[str, Any] = {"region": "us-east-1", "account": "123456789012"}
    fields.update(raw.get("context", {}))
    context = RequestContext(**fields)
    resource = raw["resource"]
    if not resource.startswith("arn:"):
        resource = f"arn:{context.partition}:iot:{context.region}:{context.account}:{resource}"
    return AuthRequest(raw["action"], resource, context)


def _refs(decision_refs: Any) -> list[str]:
    return [f"{ref.policy.name}#{ref.index}" for ref in decision_refs]


def check(decision: Decision, case: dict[str, Any]) -> None:
    assert decision.effect is AuthDecision(case["expect"])
    if "allowed" in case:
        assert _refs(decision.allowed) == case["allowed"]
    if "denied" in case:
        assert _refs(decision.explicit_deny) == case["denied"]
    if "allowed_sids" in case:
        assert [ref.sid for ref in decision.allowed] == case["allowed_sids"]
    if "missing" in case:
        assert list(decision.missing_context_values) == case["missing"]


def test_case_ids_are_unique() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_reference_evaluator(case: dict[str, Any]) -> None:
    policies = build_policies(case)
    request = build_request(case["request"])
    check(evaluate(policies, request), case)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_compiled_fast_path(case: dict[str, Any]) -> None:
    policies = build_policies(case)
    request = build_request(case["request"])
    bound = bind(compile_policy_set(policies), request.context)
    decision = bound.decide(request.action, request.resource)
    check(decision, case)
    assert decision == evaluate(policies, request)
    assert bound.is_allowed(request.action, request.resource) is decision.is_allowed
    # evaluate() accepts the compiled form too.
    assert evaluate(compile_policy_set(policies), request) == decision
