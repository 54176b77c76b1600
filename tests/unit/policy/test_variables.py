"""Policy variables: tokenizing, context lookup and the substitution rules."""

from __future__ import annotations

import json

import pytest

from bastion.policy import (
    AuthDecision,
    AuthRequest,
    Policy,
    RequestContext,
    bind,
    compile_policy_set,
    evaluate,
    parse_policy,
)
from bastion.policy._variables import (
    Text,
    Variable,
    Wildcard,
    lookup,
    substitution_value,
    tokenize,
)


def ctx(**fields: object) -> RequestContext:
    return RequestContext(region="us-east-1", account="123456789012", **fields)  # type: ignore[arg-type]


def test_tokenize_pattern_with_variables_and_escapes() -> None:
    assert tokenize("a/${iot:ClientId}/*${*}?${?}${$}", variables=True, wildcards=True) == (
        Text("a/"),
        Variable("iot:ClientId", "${iot:ClientId}"),
        Text("/"),
        Wildcard.ANY_RUN,
        Text("*"),
        Wildcard.ANY_CHAR,
        Text("?$"),
    )


def test_tokenize_without_variables_keeps_dollar_braces_literal() -> None:
    assert tokenize("${iot:ClientId}*", variables=False, wildcards=True) == (
        Text("${iot:ClientId}"),
        Wildcard.ANY_RUN,
    )


def test_tokenize_without_wildcards() -> None:
    assert tokenize("a*?", variables=True, wildcards=False) == (Text("a*?"),)


def test_unterminated_variable_is_text() -> None:
    assert tokenize("a${iot:ClientId", variables=True, wildcards=True) == (
        Text("a${iot:ClientId"),
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("iot:ClientId", (("dev1",), False)),
        ("aws:SourceIp", (("10.0.0.1",), False)),
        ("iot:Connection.Thing.ThingName", (("dev1",), False)),
        ("iot:Connection.Thing.ThingTypeName", (("sensor",), False)),
        ("iot:Connection.Thing.IsAttached", (("true",), False)),
        ("iot:Connection.Thing.Attributes[site]", (("berlin",), False)),
        ("iot:Connection.Thing.Attributes[Site]", None),
        ("iot:Certificate.Subject.CommonName", (("dev1",), False)),
        ("iot:certificate.subject.commonname", (("dev1",), False)),
        ("iot:Certificate.Subject.Country", (("DE",), False)),
        ("iot:Certificate.Subject.Country.0", (("DE",), False)),
        ("iot:Certificate.Subject.Country.1", (("FR",), False)),
        ("iot:Certificate.Subject.Country.2", None),
        ("iot:Certificate.Subject.Country.List", (("DE", "FR"), True)),
        ("iot:Certificate.Subject.Country.x", None),
        ("iot:Certificate.Subject.Bogus", None),
        ("iot:Certificate.Subject.Organization", None),
        ("iot:Certificate.Issuer.CommonName", (("Fleet CA",), False)),
        ("iot:Certificate.Subject.AlternativeName.DNSName", (("a.example",), False)),
        ("iot:Certificate.Subject.AlternativeName.DNSName.List", (("a.example", "b.example"), True)),
        ("iot:Certificate.Issuer.AlternativeName.RFC822Name", (("ca@example.com",), False)),
        ("iot:Certificate.SerialNumber", (("0a1b",), False)),
        ("iot:ConnectAttributes", (("PersistentConnect", "LastWill"), True)),
        ("iot:connectattributes", (("PersistentConnect", "LastWill"), True)),
        ("bastion:Single", (("one",), False)),
        ("iot:Nope", None),
    ],
)
def test_lookup(key: str, expected: object) -> None:
    context = ctx(
        client_id="dev1",
        source_ip="10.0.0.1",
        thing_name="dev1",
        thing_type_name="sensor",
        is_attached=True,
        thing_attributes={"site": "berlin"},
        certificate_subject={"CommonName": ["dev1"], "Country": ["DE", "FR"]},
        certificate_issuer={"CommonName": "Fleet CA"},
        subject_alternative_names={"DNSName": ["a.example", "b.example"]},
        issuer_alternative_names={"RFC822Name": ["ca@example.com"]},
        certificate_serial_number="0a1b",
        extra={"iot:ConnectAttributes": ["PersistentConnect", "LastWill"], "bastion:Single": "one"},
    )
    assert lookup(key, context) == expected


def test_available_keys_lists_present_certificate_variables() -> None:
    context = ctx(
        certificate_subject={"CommonName": ["d"], "Country": []},
        issuer_alternative_names={"DNSName": ["ca.example"]},
        certificate_serial_number="01",
    )
    assert lookup("iot:Certificate.AvailableKeys", context) == (
        (
            "iot:Certificate.Subject.CommonName",
            "iot:Certificate.Issuer.AlternativeName.DNSName",
            "iot:Certificate.SerialNumber",
        ),
        True,
    )
    assert lookup("iot:Certificate.AvailableKeys", ctx()) is None


def test_certificate_arrays_are_truncated_to_five_items() -> None:
    context = ctx(certificate_subject={"OrganizationalUnit": [f"u{i}" for i in range(7)]})
    assert lookup("iot:Certificate.Subject.OrganizationalUnit.List", context) == (
        ("u0", "u1", "u2", "u3", "u4"),
        True,
    )
    assert lookup("iot:Certificate.Subject.OrganizationalUnit.4", context) == (("u4",), False)
    assert lookup("iot:Certificate.Subject.OrganizationalUnit.5", context) is None


@pytest.mark.parametrize("bad", ["*", "a*", "$", "a+b", "?", "#", "x#"])
def test_values_with_wildcard_characters_are_not_substituted(bad: str) -> None:
    assert substitution_value("iot:ClientId", ctx(client_id=bad)) is None


def test_value_length_limit_is_1024() -> None:
    assert substitution_value("iot:ClientId", ctx(client_id="a" * 1024)) == "a" * 1024
    assert substitution_value("iot:ClientId", ctx(client_id="a" * 1025)) is None


def test_multi_valued_keys_are_not_substituted() -> None:
    context = ctx(certificate_subject={"Organization": ["Acme"]})
    assert substitution_value("iot:Certificate.Subject.Organization.List", context) is None
    assert substitution_value("iot:Certificate.Subject.Organization", context) == "Acme"


def _publish_allowed(client_id: str, topic: str) -> bool:
    document = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": {
                    "Effect": "Allow",
                    "Action": "iot:Publish",
                    "Resource": "arn:aws:iot:*:*:topic/${iot:ClientId}",
                },
            }
        )
    )
    context = ctx(client_id=client_id)
    request = AuthRequest("iot:Publish", context.arn("topic", topic), context)
    decision = evaluate([Policy("p", document)], request)
    bound = bind(compile_policy_set([Policy("p", document)]), context)
    assert bound.is_allowed(request.action, request.resource) is decision.is_allowed
    return decision.effect is AuthDecision.ALLOWED


def test_long_values_are_not_substituted_end_to_end() -> None:
    assert _publish_allowed("a" * 1024, "a" * 1024)
    assert not _publish_allowed("a" * 1025, "a" * 1025)


def test_empty_client_id_substitutes_as_empty() -> None:
    assert _publish_allowed("", "")
    assert not _publish_allowed("", "x")


def test_request_context_rejects_wrong_types() -> None:
    with pytest.raises(TypeError):
        ctx(client_id=5)
    with pytest.raises(TypeError):
        ctx(is_attached="true")
    with pytest.raises(TypeError):
        ctx(certificate_subject={"CommonName": [1]})
    with pytest.raises(TypeError):
        ctx(thing_attributes={"a": 1})
    with pytest.raises(TypeError):
        RequestContext(region=None, account="1")  # type: ignore[arg-type]


def test_request_context_freezes_its_mappings() -> None:
    subject = {"CommonName": ["dev1"]}
    context = ctx(certificate_subject=subject)
    subject["CommonName"].append("evil")
    subject["Country"] = ["XX"]
    assert dict(context.certificate_subject) == {"CommonName": ("dev1",)}
    with pytest.raises(TypeError):
        context.certificate_subject["x"] = ("y",)  # type: ignore[index]
    assert hash(context) == hash(ctx(certificate_subject={"CommonName": ["dev1"]}))


def test_arn_helper() -> None:
    context = RequestContext(region="eu-west-1", account="111122223333", partition="aws-cn")
    assert context.arn("topic", "a/b") == "arn:aws-cn:iot:eu-west-1:111122223333:topic/a/b"
