"""The template language: static checks (clear errors with the place) and evaluation of
every intrinsic function, conditions and the built-in certificate parameters."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bastion.provisioning import (
    CERTIFICATE_ID,
    OverrideAction,
    ParameterError,
    TemplateError,
    TemplateType,
    certificate_parameters,
    check_request_parameters,
    parse_template,
    plan_provisioning,
    resolve_parameters,
)

FLEET = TemplateType.FLEET_PROVISIONING
CERT = {"Type": "AWS::IoT::Certificate",
        "Properties": {"CertificateId": {"Ref": CERTIFICATE_ID}}}
CERT_ID = "ab" * 32


def template(**sections: Any) -> dict[str, Any]:
    """A valid template with a certificate resource, plus ``sections``."""
    body: dict[str, Any] = {"Resources": {"certificate": copy.deepcopy(CERT)}}
    resources = sections.pop("Resources", {})
    body["Resources"].update(resources)
    body.update(sections)
    return body


def thing_named(expression: Any, **sections: Any) -> dict[str, Any]:
    return template(Resources={"thing": {"Type": "AWS::IoT::Thing",
                                         "Properties": {"ThingName": expression}}},
                    **sections)


def evaluate(body: dict[str, Any], parameters: dict[str, str] | None = None,
             builtins: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    parsed = parse_template(json.dumps(body), FLEET)
    values = resolve_parameters(parsed, parameters or {},
                                {CERTIFICATE_ID: CERT_ID, **(builtins or {})})
    return plan_provisioning(parsed, values)


def thing_name(expression: Any, parameters: dict[str, str] | None = None,
               **sections: Any) -> str:
    plan = evaluate(thing_named(expression, **sections), parameters)
    assert plan.thing is not None
    return plan.thing.thing_name


P = {"Parameters": {"A": {"Type": "String"}, "B": {"Type": "String", "Default": "b"},
                    "List": {"Type": "String", "Default": "x,y,z"}}}
MAPS = {"Mappings": {"Sites": {"berlin": {"Prefix": "ber", "Zones": ["z1", "z2"]}}}}


# -- intrinsic functions -------------------------------------------------------------------

@pytest.mark.parametrize(("expression", "parameters", "expected"), [
    ("literal", {"A": "-"}, "literal"),
    ({"Ref": "A"}, {"A": "a1"}, "a1"),
    ({"Ref": "B"}, {"A": "-"}, "b"),
    ({"Ref": "B"}, {"A": "-", "B": "given"}, "given"),
    ({"Fn::Join": ["-", ["dev", {"Ref": "A"}, {"Ref": "B"}]]}, {"A": "1"}, "dev-1-b"),
    ({"Fn::Join": ["", ["only"]]}, {"A": "-"}, "only"),
    ({"Fn::Select": [1, ["p", "q", "r"]]}, {"A": "-"}, "q"),
    ({"Fn::Select": ["2", {"Fn::Split": [",", {"Ref": "List"}]}]}, {"A": "-"}, "z"),
    ({"Fn::Select": [0, {"Fn::Split": ["/", "a/b"]}]}, {"A": "-"}, "a"),
    ({"Fn::Sub": "dev-${A}-${B}"}, {"A": "7"}, "dev-7-b"),
    ({"Fn::Sub": ["${Pre}-${A}", {"Pre": {"Ref": "B"}}]}, {"A": "9"}, "b-9"),
    ({"Fn::Sub": "literal-${!A}"}, {"A": "x"}, "literal-${A}"),
    ({"Fn::Sub": "cert-${AWS::IoT::Certificate::Id}"}, {"A": "-"}, f"cert-{CERT_ID}"),
    ({"Fn::FindInMap": ["Sites", "berlin", "Prefix"]}, {"A": "-"}, "ber"),
    ({"Fn::FindInMap": ["Sites", {"Ref": "A"}, "Prefix"]}, {"A": "berlin"}, "ber"),
    ({"Fn::Select": [1, {"Fn::FindInMap": ["Sites", "berlin", "Zones"]}]}, {"A": "-"}, "z2"),
    ({"Ref": CERTIFICATE_ID}, {"A": "-"}, CERT_ID),
], ids=["literal", "ref", "default", "default-overridden", "join", "join-one", "select",
        "select-string-index", "split", "sub", "sub-variables", "sub-escape", "sub-builtin",
        "find-in-map", "find-in-map-ref", "find-in-map-list", "ref-builtin"])
def test_intrinsic_functions(expression: Any, parameters: dict[str, str],
                             expected: str) -> None:
    assert thing_name(expression, parameters, **P, **MAPS) == expected


@pytest.mark.parametrize(("expression", "parameters", "message"), [
    ({"Fn::Select": [5, ["a"]]}, {"A": "-"}, "index 5 is out of range"),
    ({"Fn::Select": [0, [None]]}, {"A": "-"}, "item 0 is null"),
    ({"Fn::FindInMap": ["Sites", {"Ref": "A"}, "Prefix"]}, {"A": "paris"},
     "mapping 'Sites' has no value for 'paris'"),
    ({"Fn::Join": ["-", [{"Fn::Split": [",", "a,b"]}]]}, {"A": "-"}, "expected a string"),
    ({"Fn::Select": [0, {"Ref": "A"}]}, {"A": "abc"}, "needs a list"),
    ({"Fn::Select": [{"Ref": "A"}, ["x"]]}, {"A": "one"}, "the index is not a number"),
], ids=["select-out-of-range", "select-null", "map-missing-key", "join-non-string",
        "select-not-a-list", "select-bad-index"])
def test_evaluation_errors_name_the_place(expression: Any, parameters: dict[str, str],
                                          message: str) -> None:
    with pytest.raises(ParameterError, match=message) as raised:
        thing_name(expression, parameters, **P, **MAPS)
    assert "Resources.thing.Properties.ThingName" in raised.value.message


# -- conditions ----------------------------------------------------------------------------

CONDITIONS = {
    "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
    "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
    "ProdInBerlin": {"Fn::And": [{"Condition": "IsProd"},
                                 {"Fn::Equals": [{"Ref": "Site"}, "berlin"]}]},
    "AnyTest": {"Fn::Or": [{"Fn::Equals": [{"Ref": "Stage"}, "test"]},
                           {"Fn::Equals": [{"Ref": "Stage"}, "qa"]}]},
}
STAGE = {"Parameters": {"Stage": {"Type": "String"},
                        "Site": {"Type": "String", "Default": "berlin"}},
         "Conditions": CONDITIONS}


@pytest.mark.parametrize(("condition", "stage", "site", "expected"), [
    ("IsProd", "prod", "berlin", True),
    ("IsProd", "dev", "berlin", False),
    ("NotProd", "dev", "berlin", True),
    ("ProdInBerlin", "prod", "berlin", True),
    ("ProdInBerlin", "prod", "paris", False),
    ("AnyTest", "qa", "berlin", True),
    ("AnyTest", "prod", "berlin", False),
])
def test_conditions_with_fn_if(condition: str, stage: str, site: str, expected: bool) -> None:
    name = thing_name({"Fn::If": [condition, "yes", "no"]}, {"Stage": stage, "Site": site},
                      **STAGE)
    assert name == ("yes" if expected else "no")


def test_a_resource_condition_and_no_value() -> None:
    body = template(
        Resources={
            "thing": {"Type": "AWS::IoT::Thing", "Properties": {
                "ThingName": "t",
                "AttributePayload": {"a": "1", "b": {"Fn::If": ["IsProd", "2",
                                                                 {"Ref": "AWS::NoValue"}]}},
                "ThingGroups": ["all", {"Fn::If": ["IsProd", "prod", {"Ref": "AWS::NoValue"}]}],
            }},
            "prodPolicy": {"Type": "AWS::IoT::Policy", "Condition": "IsProd",
                           "Properties": {"PolicyName": "prod-policy"}},
        }, **STAGE)
    dev = evaluate(body, {"Stage": "dev"})
    assert dev.thing is not None
    assert dev.thing.attributes == {"a": "1"}
    assert dev.thing.thing_groups == ("all",)
    assert dev.policies == ()
    prod = evaluate(body, {"Stage": "prod"})
    assert prod.thing is not None and prod.thing.attributes == {"a": "1", "b": "2"}
    assert prod.thing.thing_groups == ("all", "prod")
    assert [p.policy_name for p in prod.policies] == ["prod-policy"]


# -- parameters ----------------------------------------------------------------------------

def test_every_missing_parameter_is_listed() -> None:
    body = thing_named({"Fn::Join": ["", [{"Ref": "A"}, {"Ref": "C"}]]},
                       Parameters={"A": {"Type": "String"}, "C": {}, "D": {"Default": "d"}})
    with pytest.raises(ParameterError) as raised:
        evaluate(body, {})
    assert raised.value.message == "Missing parameters: A, C"
    assert raised.value.rejection() == (400, "InvalidParameters")


@pytest.mark.parametrize(("parameters", "message"), [
    ({"A": 1}, "must be a string"),
    ({"AWS::IoT::Certificate::Id": "f" * 64}, "reserved"),
    ("not an object", "must be an object"),
    ({"": "x"}, "non-empty"),
])
def test_request_parameters_are_checked(parameters: Any, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        check_request_parameters(parameters)


def test_builtins_cannot_be_set_by_the_device() -> None:
    parsed = parse_template(json.dumps(thing_named({"Ref": CERTIFICATE_ID})), FLEET)
    values = resolve_parameters(parsed, {CERTIFICATE_ID: "evil"}, {CERTIFICATE_ID: CERT_ID})
    assert values[CERTIFICATE_ID] == CERT_ID


def subject_certificate(**fields: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    oids = {"CommonName": NameOID.COMMON_NAME, "Country": NameOID.COUNTRY_NAME,
            "Organization": NameOID.ORGANIZATION_NAME,
            "OrganizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
            "DistinguishedNameQualifier": NameOID.DN_QUALIFIER,
            "StateName": NameOID.STATE_OR_PROVINCE_NAME, "SerialNumber": NameOID.SERIAL_NUMBER}
    name = x509.Name([x509.NameAttribute(oids[k], v) for k, v in fields.items()])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))


def test_certificate_subject_builtins() -> None:
    cert = subject_certificate(CommonName="robot-1", Country="DE", Organization="Acme",
                               OrganizationalUnit="Line 7", DistinguishedNameQualifier="q",
                               StateName="Berlin", SerialNumber="SN-42")
    assert certificate_parameters(cert, CERT_ID) == {
        CERTIFICATE_ID: CERT_ID,
        "AWS::IoT::Certificate::CommonName": "robot-1",
        "AWS::IoT::Certificate::Country": "DE",
        "AWS::IoT::Certificate::Organization": "Acme",
        "AWS::IoT::Certificate::OrganizationalUnit": "Line 7",
        "AWS::IoT::Certificate::DistinguishedNameQualifier": "q",
        "AWS::IoT::Certificate::StateName": "Berlin",
        "AWS::IoT::Certificate::SerialNumber": "SN-42",
    }
    body = thing_named({"Fn::Join": ["/", [{"Ref": "AWS::IoT::Certificate::Country"},
                                           {"Ref": "AWS::IoT::Certificate::CommonName"}]]},
                       Parameters={"AWS::IoT::Certificate::Country": {"Type": "String"}})
    parsed = parse_template(json.dumps(body), TemplateType.JITP)
    plan = plan_provisioning(parsed, resolve_parameters(
        parsed, {}, certificate_parameters(cert, CERT_ID)))
    assert plan.thing is not None and plan.thing.thing_name == "DE/robot-1"


def test_a_declared_builtin_the_certificate_lacks_is_missing() -> None:
    cert = subject_certificate(CommonName="robot-2")
    body = thing_named({"Ref": "AWS::IoT::Certificate::CommonName"},
                       Parameters={"AWS::IoT::Certificate::Country": {"Type": "String"}})
    parsed = parse_template(json.dumps(body), TemplateType.JITP)
    with pytest.raises(ParameterError, match="Missing parameters: AWS::IoT::Certificate::Country"):
        resolve_parameters(parsed, {}, certificate_parameters(cert, CERT_ID))


# -- the plan ------------------------------------------------------------------------------

def test_a_full_plan() -> None:
    body = template(
        Parameters={"Serial": {"Type": "String"}},
        Resources={
            "thing": {"Type": "AWS::IoT::Thing",
                      "Properties": {"ThingName": {"Fn::Sub": "dev-${Serial}"},
                                     "ThingTypeName": "sensor",
                                     "ThingGroups": ["g1", "g1", "g2"]},
                      "OverrideSettings": {"AttributePayload": "MERGE",
                                           "ThingGroups": "REPLACE"}},
            "named": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "existing"}},
            "inline": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                                                        "Action": "iot:Connect",
                                                        "Resource": "*"}]}}},
        },
        DeviceConfiguration={"url": {"Fn::Sub": "https://x/${Serial}"}, "fixed": "v"})
    body["Resources"]["certificate"]["Properties"]["Status"] = "Inactive"
    plan = evaluate(body, {"Serial": "9"})
    assert plan.thing is not None
    assert plan.thing.thing_name == "dev-9"
    assert plan.thing.thing_type_name == "sensor"
    assert plan.thing.thing_groups == ("g1", "g2")
    assert plan.thing.overrides == {"AttributePayload": OverrideAction.MERGE,
                                    "ThingGroups": OverrideAction.REPLACE}
    assert plan.certificate is not None
    assert (plan.certificate.certificate_id, plan.certificate.status) == (CERT_ID, "INACTIVE")
    named, inline = plan.policies
    assert (named.policy_name, named.document) == ("existing", None)
    assert inline.document is not None and len(inline.policy_name) == 64  # hash of document
    assert plan.device_configuration == {"url": "https://x/9", "fixed": "v"}


# -- static checks -------------------------------------------------------------------------

def body_with(**changes: Any) -> str:
    return json.dumps(template(**changes))


BAD_TEMPLATES = [
    ("not json", "{", "not valid JSON"),
    ("not an object", "[]", "must be a JSON object"),
    ("too long", json.dumps({"Description": "x" * 10241}), "longer than 10240"),
    ("unknown section", body_with(Outputs={}), "unknown section 'Outputs'"),
    ("no resources", json.dumps({"Parameters": {}}), "needs a Resources section"),
    ("no certificate", json.dumps({"Resources": {"p": {"Type": "AWS::IoT::Policy",
                                                       "Properties": {"PolicyName": "x"}}}}),
     "needs an AWS::IoT::Certificate resource"),
    ("unknown resource type",
     body_with(Resources={"q": {"Type": "AWS::SQS::Queue", "Properties": {}}}),
     "Resources.q: Type 'AWS::SQS::Queue' is not one of"),
    ("two things", body_with(Resources={
        "t1": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "a"}},
        "t2": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "b"}}}),
     "at most one AWS::IoT::Thing"),
    ("thing without name", body_with(Resources={"t": {"Type": "AWS::IoT::Thing",
                                                      "Properties": {}}}),
     "Resources.t.Properties: a thing needs a ThingName"),
    ("unknown property", body_with(Resources={"t": {"Type": "AWS::IoT::Thing", "Properties": {
        "ThingName": "a", "Colour": "red"}}}), "unknown property 'Colour'"),
    ("billing group", body_with(Resources={"t": {"Type": "AWS::IoT::Thing", "Properties": {
        "ThingName": "a", "BillingGroup": "b"}}}), "billing groups are not supported"),
    ("csr certificate", json.dumps({"Resources": {"c": {
        "Type": "AWS::IoT::Certificate", "Properties": {"CertificateSigningRequest": "x"}}}}),
     "bulk registration is not supported"),
    ("another certificate id", json.dumps({"Parameters": {"Id": {}}, "Resources": {"c": {
        "Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "Id"}}}}}),
     "CertificateId must be"),
    ("bad status", json.dumps({"Resources": {"c": {
        "Type": "AWS::IoT::Certificate", "Properties": {
            "CertificateId": {"Ref": CERTIFICATE_ID}, "Status": "REVOKED"}}}}),
     "Status must be ACTIVE or INACTIVE"),
    ("policy with both", body_with(Resources={"p": {"Type": "AWS::IoT::Policy", "Properties": {
        "PolicyName": "a", "PolicyDocument": "{}"}}}), "exactly one"),
    ("policy document not json", body_with(Resources={"p": {"Type": "AWS::IoT::Policy",
                                                            "Properties": {
                                                                "PolicyDocument": "{nope"}}}),
     "PolicyDocument is not valid JSON"),
    ("bad override", body_with(Resources={"t": {"Type": "AWS::IoT::Thing",
                                                "Properties": {"ThingName": "a"},
                                                "OverrideSettings": {"ThingTypeName": "MERGE"}}}),
     "'MERGE' is not one of"),
    ("policy override", body_with(Resources={"p": {"Type": "AWS::IoT::Policy",
                                                   "Properties": {"PolicyName": "a"},
                                                   "OverrideSettings": {"X": "FAIL"}}}),
     "have no OverrideSettings"),
    ("ref to missing parameter", json.dumps(thing_named({"Ref": "Nope"})),
     "Resources.thing.Properties.ThingName.Ref: Ref to parameter 'Nope', which is not declared"),
    ("sub with missing parameter", json.dumps(thing_named({"Fn::Sub": "x-${Nope}"})),
     "Ref to parameter 'Nope'"),
    ("unknown function", json.dumps(thing_named({"Fn::Base64": "x"})),
     "unknown intrinsic function 'Fn::Base64'"),
    ("function with extra key", json.dumps(thing_named({"Ref": "A", "Other": 1},
                                                       Parameters={"A": {}})),
     "must be the only key"),
    ("join shape", json.dumps(thing_named({"Fn::Join": ["-"]})), "takes [delimiter"),
    ("select negative", json.dumps(thing_named({"Fn::Select": [-1, ["a"]]})),
     "cannot be negative"),
    ("split empty delimiter", json.dumps(thing_named({"Fn::Split": ["", "a"]})),
     "non-empty string"),
    ("find in unknown map", json.dumps(thing_named({"Fn::FindInMap": ["Nope", "a", "b"]})),
     "mapping 'Nope' is not declared"),
    ("if unknown condition", json.dumps(thing_named({"Fn::If": ["Nope", "a", "b"]})),
     "condition 'Nope' is not declared"),
    ("condition function outside conditions",
     json.dumps(thing_named({"Fn::Equals": ["a", "a"]})),
     "can only be used in the Conditions section"),
    ("no value outside fn::if", json.dumps(thing_named({"Ref": "AWS::NoValue"})),
     "'AWS::NoValue', which is not declared"),
    ("condition cycle", body_with(Conditions={"A": {"Fn::Not": [{"Condition": "B"}]},
                                              "B": {"Condition": "A"}}),
     "cycle"),
    ("and with one operand", body_with(Conditions={"A": {"Fn::And": [{"Fn::Equals": ["a", "a"]}]}}),
     "takes 2 to 10 conditions"),
    ("not a condition", body_with(Conditions={"A": "yes"}), "a condition is"),
    ("functions in mappings", body_with(Mappings={"M": {"k": {"s": {"Ref": "A"}}}}),
     "no functions inside Mappings"),
    ("nested device configuration", body_with(DeviceConfiguration={"a": {"b": "c"}}),
     "must be flat"),
    ("number in device configuration", body_with(DeviceConfiguration={"a": 1}),
     "DeviceConfiguration values are strings"),
    ("parameter type", body_with(Parameters={"A": {"Type": "Number"}}),
     "Type 'Number' is not supported"),
    ("parameter default", body_with(Parameters={"A": {"Default": 1}}),
     "Default must be a string"),
    ("reserved parameter", body_with(Parameters={"AWS::Region": {}}),
     "not a built-in parameter"),
    ("resource condition", body_with(Resources={"p": {"Type": "AWS::IoT::Policy",
                                                      "Condition": "Nope",
                                                      "Properties": {"PolicyName": "a"}}}),
     "condition 'Nope' is not declared"),
]


@pytest.mark.parametrize(("body", "message"), [(b, m) for _, b, m in BAD_TEMPLATES],
                         ids=[name for name, _, _ in BAD_TEMPLATES])
def test_a_bad_template_is_refused_with_a_clear_error(body: str, message: str) -> None:
    with pytest.raises(TemplateError) as raised:
        parse_template(body, FLEET)
    assert message in str(raised.value)
    assert (raised.value.aws_error_type, raised.value.http_status) == (
        "InvalidRequestException", 400)


def test_a_policy_statement_condition_is_data_not_a_function() -> None:
    document = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
        "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}}]}
    plan = evaluate(template(Resources={"p": {"Type": "AWS::IoT::Policy",
                                              "Properties": {"PolicyDocument": document}}}))
    assert json.loads(plan.policies[0].document or "") == document
