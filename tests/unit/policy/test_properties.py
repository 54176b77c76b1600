"""Hypothesis properties of evaluation and parsing."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.policy import (
    AuthDecision,
    AuthRequest,
    MalformedPolicyError,
    Policy,
    RequestContext,
    bind,
    compile_policy_set,
    evaluate,
    parse_policy,
)

SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
#: The differential test is the one that guards the broker's fast path: give it more examples.
DIFFERENTIAL = settings(SETTINGS, max_examples=400)

ACTION_PATTERNS = [
    "iot:Publish",
    "iot:Subscribe",
    "iot:Receive",
    "iot:Connect",
    "iot:RetainPublish",
    "iot:*",
    "*",
    "iot:Pub*",
    "iot:?ublish",
    "iot:*e",
    "IOT:PUBLISH",
    "greengrass:*",
]
REQUEST_ACTIONS = [
    "iot:Publish",
    "iot:Subscribe",
    "iot:Receive",
    "iot:Connect",
    "iot:RetainPublish",
    "greengrass:Discover",
]
REGION_PATTERNS = ["us-east-1", "*", "us-*", "?s-east-1", "${iot:Connection.Thing.Attributes[region]}"]
ACCOUNT_PATTERNS = ["123456789012", "*", "1234*"]
TYPES = ["topic", "topicfilter", "client"]
PATH_PIECES = [
    "a",
    "b",
    "/",
    "*",
    "?",
    "+",
    "#",
    "$",
    ":",
    "dev1",
    "${iot:ClientId}",
    "${iot:Connection.Thing.ThingName}",
    "${iot:Certificate.Subject.CommonName}",
    "${iot:Certificate.Subject.OrganizationalUnit}",
    "${iot:Certificate.Subject.OrganizationalUnit.1}",
    "${iot:Certificate.Subject.OrganizationalUnit.List}",
    "${iot:Certificate.Subject.AlternativeName.DNSName}",
    "${iot:Certificate.Issuer.CommonName}",
    "${iot:CertificateId}",
    "${iot:Nope}",
    "${*}",
    "${?}",
    "${$}",
]
REQUEST_PIECES = [
    "a", "b", "/", "+", "#", "*", "?", "$", ":", "\n", "dev1", "d.1", "a/b",
    "${iot:ClientId}", "${iot:Nope}", "{", "}", "eng", "ops", "dev1.example.com", "c0ffee",
]
#: Request actions that no policy action is written as (prefix and extension of real ones).
ODD_ACTIONS = ["iot:Pub", "iot:PublishX", "IoT:publish", "iot", ""]
CONDITION_BLOCKS: list[dict[str, Any]] = [
    {"StringEquals": {"iot:ClientId": "dev1"}},
    {"StringNotEquals": {"iot:ClientId": ["a", "#"]}},
    {"StringLike": {"iot:ClientId": "d*"}},
    {"StringNotLike": {"iot:Connection.Thing.ThingName": "a*"}},
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
    {"Null": {"iot:Connection.Thing.ThingName": "false"}},
    {"StringEqualsIfExists": {"iot:Connection.Thing.ThingName": "${iot:ClientId}"}},
    {"ForAllValues:StringEquals": {"iot:Certificate.Subject.CommonName.List": ["dev1", "a"]}},
    {"ForAnyValue:StringLike": {"iot:Certificate.Subject.CommonName.List": "d*"}},
    {"ForAnyValue:StringEquals": {"iot:Certificate.Subject.OrganizationalUnit.List": "ops"}},
    {"ForAllValues:StringEquals": {
        "iot:Certificate.Subject.OrganizationalUnit.List": ["eng", "ops"]}},
    {"ForAllValues:StringLike": {
        "iot:Certificate.Subject.AlternativeName.DNSName.List": "*.example.com"}},
    {"ForAnyValue:StringLike": {"iot:Certificate.Subject.AlternativeName.IPAddress.List": "10.*"}},
    {"StringEquals": {"iot:Certificate.Subject.OrganizationalUnit.1": "ops"}},
    {"StringEquals": {"iot:CertificateId": "c0ffee"}},
    {"StringEquals": {"iot:Certificate.Issuer.CommonName": "Bastion CA"}},
    {"StringLike": {"iot:Certificate.Subject.AlternativeName.RFC822Name": "*@example.com"}},
]


def _one_or_list(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, st.lists(strategy, min_size=1, max_size=3))


resource_patterns = st.one_of(
    st.just("*"),
    st.builds(
        lambda region, account, kind, pieces: (
            f"arn:aws:iot:{region}:{account}:{kind}/{''.join(pieces)}"
        ),
        st.sampled_from(REGION_PATTERNS),
        st.sampled_from(ACCOUNT_PATTERNS),
        st.sampled_from(TYPES),
        st.lists(st.sampled_from(PATH_PIECES), max_size=5),
    ),
)


@st.composite
def statements(draw: st.DrawFn, effect: str | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": effect or draw(st.sampled_from(["Allow", "Deny"])),
    }
    action_key = draw(st.sampled_from(["Action", "Action", "Action", "NotAction"]))
    statement[action_key] = draw(_one_or_list(st.sampled_from(ACTION_PATTERNS)))
    resource_key = draw(st.sampled_from(["Resource", "Resource", "Resource", "NotResource"]))
    statement[resource_key] = draw(_one_or_list(resource_patterns))
    blocks = draw(st.lists(st.sampled_from(CONDITION_BLOCKS), max_size=2))
    if blocks:
        condition: dict[str, Any] = {}
        for block in blocks:
            condition.update(copy.deepcopy(block))
        statement["Condition"] = condition
    return statement


@st.composite
def policy_documents(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "Version": draw(st.sampled_from(["2012-10-17", "2012-10-17", "2008-10-17"])),
        "Statement": draw(st.lists(statements(), min_size=1, max_size=4)),
    }


def to_policies(documents: list[dict[str, Any]]) -> list[Policy]:
    return [
        Policy(f"p{i}", parse_policy(json.dumps(doc), max_length=None), str(i + 1))
        for i, doc in enumerate(documents)
    ]


@st.composite
def requests(draw: st.DrawFn, actions: list[str] = REQUEST_ACTIONS) -> AuthRequest:
    context = RequestContext(
        region=draw(st.sampled_from(["us-east-1", "eu-west-1"])),
        account=draw(st.sampled_from(["123456789012", "999999999999"])),
        client_id=draw(st.sampled_from([None, "dev1", "a", "#", "*", "+", "a/b", "d.1", "a:b"])),
        thing_name=draw(st.sampled_from([None, "dev1", "a"])),
        is_attached=draw(st.sampled_from([None, True, False])),
        thing_attributes=draw(st.sampled_from([{}, {"region": "us-east-1"}, {"region": "*"}])),
        certificate_subject=draw(
            st.sampled_from([
                {}, {"CommonName": ["dev1"]}, {"CommonName": ["dev1", "x"]},
                {"CommonName": ["dev1"], "OrganizationalUnit": ["eng", "ops"]},
                {"OrganizationalUnit": ["ops"]},
                {"OrganizationalUnit": ["ops", "eng", "x", "y", "z", "eng"]},
            ])
        ),
        certificate_issuer=draw(st.sampled_from([{}, {"CommonName": ["Bastion CA"]}])),
        subject_alternative_names=draw(st.sampled_from([
            {},
            {"DNSName": ["dev1.example.com", "a.example.com"], "IPAddress": ["10.0.0.1"]},
            {"DNSName": ["dev1.example.org"], "RFC822Name": ["ops@example.com"]},
            {"IPAddress": ["192.0.2.1", "10.9.9.9"], "UniformResourceIdentifier": ["urn:x"]},
        ])),
        certificate_id=draw(st.sampled_from([None, "c0ffee", "d" * 64])),
        source_ip=draw(st.sampled_from([None, "10.1.2.3", "192.0.2.1", "2001:db8::1"])),
    )
    kind = draw(st.sampled_from(TYPES))
    path = "".join(draw(st.lists(st.sampled_from(REQUEST_PIECES), max_size=5)))
    if draw(st.booleans()):
        resource = f"arn:aws:iot:{context.region}:{context.account}:{kind}/{path}"
    else:
        region = draw(st.sampled_from(["us-east-1", "eu-west-1", "us-east-1:1", ""]))
        resource = f"arn:aws:iot:{region}:123456789012:{kind}/{path}"
    return AuthRequest(draw(st.sampled_from(actions)), resource, context)


def _escape_literal(text: str) -> str:
    """A 2012-10-17 resource pattern matching ``text`` (``$`` must not start a variable)."""
    return text.replace("$", "${$}")


@DIFFERENTIAL
@given(
    documents=st.lists(policy_documents(), max_size=3),
    request=requests(actions=REQUEST_ACTIONS + ODD_ACTIONS),
)
def test_fast_path_agrees_with_reference(
    documents: list[dict[str, Any]], request: AuthRequest
) -> None:
    policies = to_policies(documents)
    reference = evaluate(policies, request)
    bound = bind(compile_policy_set(policies), request.context)
    assert bound.decide(request.action, request.resource) == reference
    assert bound.is_allowed(request.action, request.resource) is reference.is_allowed
    # asked twice: the per-action memo must not change answers
    assert bound.is_allowed(request.action, request.resource) is reference.is_allowed


@SETTINGS
@given(
    documents=st.lists(policy_documents(), min_size=1, max_size=3),
    request=requests(),
    data=st.data(),
)
def test_matching_deny_always_wins(
    documents: list[dict[str, Any]], request: AuthRequest, data: st.DataObject
) -> None:
    resource = data.draw(st.sampled_from(["*", "exact"]))
    deny = {
        "Effect": "Deny",
        "Action": request.action,
        "Resource": "*" if resource == "*" else _escape_literal(request.resource),
    }
    target = data.draw(st.integers(0, len(documents)))
    if target == len(documents):
        documents = [*documents, {"Version": "2012-10-17", "Statement": [deny]}]
    else:
        documents[target]["Version"] = "2012-10-17"
        statements_ = documents[target]["Statement"]
        statements_.insert(data.draw(st.integers(0, len(statements_))), deny)
    policies = to_policies(documents)
    decision = evaluate(policies, request)
    assert decision.effect is AuthDecision.EXPLICIT_DENY
    assert not bind(compile_policy_set(policies), request.context).is_allowed(
        request.action, request.resource
    )


@SETTINGS
@given(
    documents=st.lists(policy_documents(), min_size=1, max_size=3),
    request=requests(),
    allow=statements(effect="Allow"),
    data=st.data(),
)
def test_adding_an_allow_never_takes_anything_away(
    documents: list[dict[str, Any]],
    request: AuthRequest,
    allow: dict[str, Any],
    data: st.DataObject,
) -> None:
    before = evaluate(to_policies(documents), request).effect
    target = data.draw(st.integers(0, len(documents) - 1))
    statements_ = documents[target]["Statement"]
    statements_.insert(data.draw(st.integers(0, len(statements_))), allow)
    after = evaluate(to_policies(documents), request).effect
    if before is AuthDecision.ALLOWED:
        assert after is AuthDecision.ALLOWED
    if before is AuthDecision.EXPLICIT_DENY:
        assert after is AuthDecision.EXPLICIT_DENY


@SETTINGS
@given(
    documents=st.lists(policy_documents(), min_size=1, max_size=3),
    request=requests(),
    deny=statements(effect="Deny"),
    data=st.data(),
)
def test_adding_a_deny_never_grants(
    documents: list[dict[str, Any]],
    request: AuthRequest,
    deny: dict[str, Any],
    data: st.DataObject,
) -> None:
    before = evaluate(to_policies(documents), request).effect
    target = data.draw(st.integers(0, len(documents) - 1))
    statements_ = documents[target]["Statement"]
    statements_.insert(data.draw(st.integers(0, len(statements_))), deny)
    after = evaluate(to_policies(documents), request).effect
    if before is not AuthDecision.ALLOWED:
        assert after is not AuthDecision.ALLOWED


DANGEROUS_IDS = st.text(alphabet="ab/*$+?#", min_size=1, max_size=8).filter(
    lambda s: any(c in s for c in "*$+?#")
)


@SETTINGS
@given(client_id=DANGEROUS_IDS, topic=st.text(alphabet="ab/*$+?#{}:", max_size=12))
def test_client_id_with_wildcard_characters_never_widens_a_policy(
    client_id: str, topic: str
) -> None:
    document = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["iot:Publish", "iot:Subscribe"],
                        "Resource": [
                            "arn:aws:iot:*:*:topic/${iot:ClientId}",
                            "arn:aws:iot:*:*:topicfilter/dev/${iot:ClientId}/in",
                        ],
                    }
                ],
            }
        )
    )
    context = RequestContext(region="us-east-1", account="123456789012", client_id=client_id)
    bound = bind(compile_policy_set([Policy("p", document)]), context)
    assert bound.is_allowed("iot:Publish", context.arn("topic", topic)) is (
        topic == "${iot:ClientId}"
    )
    assert bound.is_allowed("iot:Subscribe", context.arn("topicfilter", f"dev/{topic}/in")) is (
        topic == "${iot:ClientId}"
    )


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["Allow", "Deny", "iot:Publish", "iot:*", "*", "2012-10-17", "arn:aws:iot:*:*:topic/*"]),
)
GRAMMAR_KEYS = st.sampled_from(
    ["Version", "Statement", "Effect", "Action", "NotAction", "Resource", "NotResource",
     "Condition", "Sid", "StringEquals", "ForAnyValue:StringLike", "Null", "iot:ClientId", "x"]
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(GRAMMAR_KEYS, st.text(max_size=5)), children, max_size=5),
    ),
    max_leaves=25,
)


@SETTINGS
@given(value=JSON_VALUES)
def test_parser_accepts_or_rejects_cleanly(value: Any) -> None:
    try:
        document = parse_policy(json.dumps(value), max_length=None)
    except MalformedPolicyError as exc:
        assert str(exc)
    else:
        assert document.statements


@SETTINGS
@given(text=st.text(max_size=200))
def test_parser_on_arbitrary_text(text: str) -> None:
    try:
        parse_policy(text)
    except MalformedPolicyError:
        pass


@SETTINGS
@given(document=policy_documents())
def test_generated_documents_parse_to_their_statements(document: dict[str, Any]) -> None:
    parsed = parse_policy(json.dumps(document), max_length=None)
    assert parsed.version == document["Version"]
    assert len(parsed.statements) == len(document["Statement"])
    for raw, statement in zip(document["Statement"], parsed.statements, strict=True):
        assert statement.effect.value == raw["Effect"]
        key = "Action" if "Action" in raw else "NotAction"
        expected = raw[key] if isinstance(raw[key], list) else [raw[key]]
        got = statement.actions if key == "Action" else statement.not_actions
        assert got == tuple(expected)
