"""AWS's own words: where AWS IoT's messages are known (captured from the service by SDK
users and emulators), Bastion answers with the same error code and text, through boto3.
And ``{"state": null}`` on a shadow is answered as AWS answers it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import OPEN_DOCUMENT

Unique = Callable[[str], str]


@dataclass(frozen=True)
class Case:
    """``call(iot, names)`` must fail with ``code`` and ``message`` (``{…}`` filled from
    ``names``)."""

    call: Callable[[Any, dict[str, str]], object]
    code: str
    message: str


def _active_certificate(iot: Any, names: dict[str, str]) -> None:
    created = iot.create_keys_and_certificate(setAsActive=True)
    names.update(cert=created["certificateId"], cert_arn=created["certificateArn"])
    iot.delete_certificate(certificateId=names["cert"])


def _certificate_with_thing(iot: Any, names: dict[str, str]) -> None:
    created = iot.create_keys_and_certificate(setAsActive=False)
    names.update(cert=created["certificateId"], cert_arn=created["certificateArn"])
    iot.create_thing(thingName=names["thing"])
    iot.attach_thing_principal(thingName=names["thing"], principal=names["cert_arn"])
    iot.delete_certificate(certificateId=names["cert"])


def _certificate_with_policy(iot: Any, names: dict[str, str]) -> None:
    created = iot.create_keys_and_certificate(setAsActive=False)
    names.update(cert=created["certificateId"], cert_arn=created["certificateArn"])
    iot.create_policy(policyName=names["policy"], policyDocument=OPEN_DOCUMENT)
    iot.attach_policy(policyName=names["policy"], target=names["cert_arn"])
    iot.delete_certificate(certificateId=names["cert"])


def _policy_twice(iot: Any, names: dict[str, str]) -> None:
    iot.create_policy(policyName=names["policy"], policyDocument=OPEN_DOCUMENT)
    iot.create_policy(policyName=names["policy"], policyDocument=OPEN_DOCUMENT)


def _attached_policy(iot: Any, names: dict[str, str]) -> None:
    created = iot.create_keys_and_certificate(setAsActive=False)
    iot.create_policy(policyName=names["policy"], policyDocument=OPEN_DOCUMENT)
    iot.attach_policy(policyName=names["policy"], target=created["certificateArn"])
    iot.delete_policy(policyName=names["policy"])


def _policy_with_versions(iot: Any, names: dict[str, str]) -> None:
    iot.create_policy(policyName=names["policy"], policyDocument=OPEN_DOCUMENT)
    iot.create_policy_version(policyName=names["policy"], policyDocument=OPEN_DOCUMENT)
    iot.delete_policy(policyName=names["policy"])


def _thing_with_principal(iot: Any, names: dict[str, str]) -> None:
    created = iot.create_keys_and_certificate(setAsActive=False)
    iot.create_thing(thingName=names["thing"])
    iot.attach_thing_principal(thingName=names["thing"], principal=created["certificateArn"])
    iot.delete_thing(thingName=names["thing"])


CASES = {
    "delete-active-certificate": Case(
        _active_certificate, "CertificateStateException",
        "Certificate must be deactivated (not ACTIVE) before deletion. Id: {cert}"),
    "delete-certificate-with-thing": Case(
        _certificate_with_thing, "DeleteConflictException",
        "Things must be detached before deletion (arn: {cert_arn})"),
    "delete-certificate-with-policy": Case(
        _certificate_with_policy, "DeleteConflictException",
        "Certificate policies must be detached before deletion (arn: {cert_arn})"),
    "create-policy-twice": Case(
        _policy_twice, "ResourceAlreadyExistsException",
        "Policy cannot be created - name already exists (name={policy})"),
    "delete-attached-policy": Case(
        _attached_policy, "DeleteConflictException",
        "The policy cannot be deleted as the policy is attached to one or more principals "
        "(name={policy})"),
    "delete-policy-with-versions": Case(
        _policy_with_versions, "DeleteConflictException",
        "Cannot delete the policy because it has one or more policy versions attached to it "
        "(name={policy})"),
    "delete-thing-with-principal": Case(
        _thing_with_principal, "InvalidRequestException",
        "Cannot delete. Thing {thing} is still attached to one or more principals"),
    "list-principals-of-missing-thing": Case(
        lambda iot, names: iot.list_thing_principals(thingName=names["thing"]),
        "ResourceNotFoundException",
        "Failed to list principals for thing {thing} because the thing does not exist in "
        "your account"),
    "describe-missing-thing": Case(
        lambda iot, names: iot.describe_thing(thingName=names["thing"]),
        "ResourceNotFoundException", "Thing {thing} cannot be found"),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_aws_error_messages(iot: Any, unique: Unique, case: Case) -> None:
    names = {"thing": unique("parity-thing"), "policy": unique("parity-policy")}
    with pytest.raises(iot.exceptions.ClientError) as caught:
        case.call(iot, names)
    error = caught.value.response["Error"]
    assert (error["Code"], error["Message"]) == (case.code, case.message.format(**names))


def test_state_null_is_answered_as_aws_does(iot: Any, iot_data: Any, unique: Unique) -> None:
    thing = unique("parity-shadow")
    iot.create_thing(thingName=thing)
    iot_data.update_thing_shadow(thingName=thing, payload=json.dumps(
        {"state": {"desired": {"on": True}, "reported": {"on": False}}}))
    answer = json.loads(iot_data.update_thing_shadow(
        thingName=thing, payload=json.dumps({"state": None}))["payload"].read())
    assert answer["state"] is None
    assert answer["metadata"] == {"timestamp": answer["timestamp"]}
    assert answer["version"] == 2
    assert set(answer) == {"state", "metadata", "version", "timestamp"}
    shadow = json.loads(iot_data.get_thing_shadow(thingName=thing)["payload"].read())
    assert shadow["state"] == {} and shadow["version"] == 2

