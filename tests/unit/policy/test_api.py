"""Public surface, parsed shapes, decisions and explanations."""

from __future__ import annotations

import json
from typing import Any

import pytest

import bastion.policy as policy_pkg
from bastion.policy import (
    IOT_POLICY_ACTIONS,
    AuthDecision,
    AuthRequest,
    Condition,
    Decision,
    Effect,
    Policy,
    PolicyRef,
    RequestContext,
    SetQualifier,
    Statement,
    StatementRef,
    bind,
    compile_policy_set,
    evaluate,
    explain,
    parse_policy,
)

CONTEXT = RequestContext(region="us-east-1", account="123456789012", client_id="dev1")


def doc(*statements: dict[str, Any], version: str = "2012-10-17") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


def test_public_names_are_exported_and_nothing_private() -> None:
    for name in policy_pkg.__all__:
        assert hasattr(policy_pkg, name), name
        assert not name.startswith("_")
    assert sorted(policy_pkg.__all__) == sorted(set(policy_pkg.__all__))


def test_known_actions_include_the_mqtt_data_plane() -> None:
    assert {
        "iot:Connect",
        "iot:Publish",
        "iot:Subscribe",
        "iot:Receive",
        "iot:RetainPublish",
    } <= IOT_POLICY_ACTIONS


def test_parsed_shape() -> None:
    document = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Id": "device-policy",
                "Statement": {
                    "Sid": "Pub",
                    "Effect": "Allow",
                    "Action": "iot:Publish",
                    "NotResource": ["arn:aws:iot:*:*:topic/admin/*"],
                    "Condition": {
                        "ForAnyValue:StringLikeIfExists": {"k:list": ["a*", "b"]},
                        "NumericLessThan": {"k:n": 1.50, "k:m": 7},
                        "Bool": {"k:b": True},
                    },
                },
            }
        )
    )
    assert document.version == "2012-10-17"
    assert document.id == "device-policy"
    assert document.supports_variables
    assert document.statements == (
        Statement(
            effect=Effect.ALLOW,
            sid="Pub",
            actions=("iot:Publish",),
            not_actions=None,
            resources=None,
            not_resources=("arn:aws:iot:*:*:topic/admin/*",),
            conditions=(
                Condition("StringLike", "k:list", ("a*", "b"), SetQualifier.FOR_ANY_VALUE, True),
                Condition("NumericLessThan", "k:n", ("1.5",)),
                Condition("NumericLessThan", "k:m", ("7",)),
                Condition("Bool", "k:b", ("true",)),
            ),
        ),
    )
    assert document.statements[0].conditions[0].operator == "ForAnyValue:StringLikeIfExists"
    assert document.statements[0].conditions[1].operator == "NumericLessThan"


def test_legacy_and_missing_version() -> None:
    assert not parse_policy(doc({"Effect": "Allow", "Action": "*", "Resource": "*"},
                                version="2008-10-17")).supports_variables
    missing = parse_policy(json.dumps({"Statement": {"Effect": "Allow", "Action": "*",
                                                     "Resource": "*"}}))
    assert missing.version is None
    assert not missing.supports_variables


def test_other_namespaces_are_accepted() -> None:
    document = parse_policy(doc({"Effect": "Allow", "Action": ["greengrass:*",
                                 "iot:Describe*"], "Resource": "*"}))
    assert document.statements[0].actions == ("greengrass:*", "iot:Describe*")


def test_known_actions_is_a_parameter() -> None:
    text = doc({"Effect": "Allow", "Action": "iot:DescribeThing", "Resource": "*"})
    with pytest.raises(policy_pkg.MalformedPolicyError):
        parse_policy(text)
    extended = IOT_POLICY_ACTIONS | {"iot:DescribeThing"}
    assert parse_policy(text, known_actions=extended).statements[0].actions == (
        "iot:DescribeThing",
    )


def _policies() -> list[Policy]:
    allow = parse_policy(
        doc(
            {"Sid": "Connect", "Effect": "Allow", "Action": "iot:Connect",
             "Resource": "arn:aws:iot:*:*:client/${iot:ClientId}"},
            {"Sid": "Pub", "Effect": "Allow", "Action": "iot:Publish",
             "Resource": "arn:aws:iot:*:*:topic/dev/*"},
        )
    )
    deny = parse_policy(
        doc({"Effect": "Deny", "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/dev/secret"},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "*",
             "Condition": {"StringEquals": {"iot:Connection.Thing.ThingName": "x"}}})
    )
    return [Policy("device", allow, "2"), Policy("guard", deny, None), Policy("empty-ish", deny)]


def _decide(action: str, resource: str) -> Decision:
    request = AuthRequest(action, CONTEXT.arn(*resource.split("/", 1)), CONTEXT)
    return evaluate(_policies(), request)


def test_decision_lists_match_test_authorization() -> None:
    denied = _decide("iot:Publish", "topic/dev/secret")
    assert denied.effect is AuthDecision.EXPLICIT_DENY
    assert denied.effect.value == "EXPLICIT_DENY"
    assert denied.allowed_policies == (PolicyRef("device", "2"),)
    assert denied.explicit_deny_policies == (PolicyRef("guard", None), PolicyRef("empty-ish", None))
    assert denied.implicit_deny_policies == ()
    assert denied.evaluated == (
        PolicyRef("device", "2"), PolicyRef("guard", None), PolicyRef("empty-ish", None)
    )

    allowed = _decide("iot:Publish", "topic/dev/data")
    assert allowed.is_allowed
    assert allowed.allowed == (StatementRef(PolicyRef("device", "2"), 1, "Pub", Effect.ALLOW),)
    assert allowed.implicit_deny_policies == ()

    nothing = _decide("iot:Subscribe", "topicfilter/dev/#")
    assert nothing.effect is AuthDecision.IMPLICIT_DENY
    assert nothing.implicit_deny_policies == nothing.evaluated
    assert nothing.missing_context_values == ("iot:Connection.Thing.ThingName",)


def test_explain_allowed() -> None:
    text = explain(_decide("iot:Connect", "client/dev1"))
    assert text.splitlines() == [
        "ALLOWED: iot:Connect on arn:aws:iot:us-east-1:123456789012:client/dev1",
        "Allowed by:",
        '  - policy "device" version 2, statement 0 (Sid "Connect")',
    ]


def test_explain_explicit_deny_names_the_deny_and_the_overridden_allow() -> None:
    text = explain(_decide("iot:Publish", "topic/dev/secret"))
    assert text.splitlines() == [
        "EXPLICIT_DENY: iot:Publish on arn:aws:iot:us-east-1:123456789012:topic/dev/secret",
        "Denied explicitly by:",
        '  - policy "guard", statement 0',
        '  - policy "empty-ish", statement 0',
        "An explicit deny overrides the matching Allow statement(s):",
        '  - policy "device" version 2, statement 1 (Sid "Pub")',
    ]


def test_explain_implicit_deny() -> None:
    text = explain(_decide("iot:Subscribe", "topicfilter/dev/#"))
    assert "No statement matched (implicit deny)" in text
    assert '"device", "guard", "empty-ish"' in text
    assert text.endswith("Missing context values: iot:Connection.Thing.ThingName.")
    empty = evaluate([], AuthRequest("iot:Connect", CONTEXT.arn("client", "x"), CONTEXT))
    assert "no policies are attached" in explain(empty)


def test_bound_set_memo_is_per_action() -> None:
    bound = bind(compile_policy_set(_policies()), CONTEXT)
    assert bound.context is CONTEXT
    topic = CONTEXT.arn("topic", "dev/data")
    for _ in range(3):
        assert bound.is_allowed("iot:Publish", topic)
        assert not bound.is_allowed("iot:Publish", CONTEXT.arn("topic", "dev/secret"))
        assert not bound.is_allowed("iot:Receive", topic)
        assert bound.is_allowed("IOT:PUBLISH", topic)
    for i in range(600):  # more distinct actions than the memo holds
        assert not bound.is_allowed(f"iot:Action{i}", topic)
    assert bound.is_allowed("iot:Publish", topic)


def test_bind_is_per_context() -> None:
    compiled = compile_policy_set(_policies())
    other = RequestContext(region="us-east-1", account="123456789012", client_id="dev2")
    assert bind(compiled, CONTEXT).is_allowed("iot:Connect", CONTEXT.arn("client", "dev1"))
    assert not bind(compiled, other).is_allowed("iot:Connect", CONTEXT.arn("client", "dev1"))
    assert "device" in repr(compiled)
    assert compiled.policies == tuple(_policies())


def test_type_errors_for_local_misuse() -> None:
    with pytest.raises(TypeError):
        compile_policy_set(["not a policy"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        bind(_policies(), CONTEXT)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        bind(compile_policy_set([]), {"client_id": "x"})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        evaluate(["x"], AuthRequest("iot:Connect", "*", CONTEXT))  # type: ignore[list-item]
    with pytest.raises(TypeError):
        evaluate(_policies(), ("iot:Connect", "*"))  # type: ignore[arg-type]
