"""Policies, versions, attachments, effective policies and TestAuthorization."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import ACCOUNT, REGION

Unique = Callable[[str], str]
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str, resource: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(action: str, resource: str) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def test_policy_versions(iot: Any, unique: Unique) -> None:
    name = unique("policy")
    first = document(allow("iot:Connect", "*"))
    created = iot.create_policy(policyName=name, policyDocument=first)
    assert created == {**created, "policyName": name, "policyArn": f"{ARN}:policy/{name}",
                       "policyDocument": first, "policyVersionId": "1"}
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_policy(policyName=name, policyDocument=first)
    with pytest.raises(iot.exceptions.MalformedPolicyException) as caught:
        iot.create_policy(policyName=unique("bad"), policyDocument='{"Version": "x"}')
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    got = iot.get_policy(policyName=name)
    assert (got["defaultVersionId"], got["policyDocument"]) == ("1", first)
    for index in range(2, 6):
        version = iot.create_policy_version(
            policyName=name, policyDocument=document(allow("iot:Publish", f"{ARN}:topic/{index}")),
            setAsDefault=index == 3)
        assert version["policyVersionId"] == str(index)
        assert version["isDefaultVersion"] is (index == 3)
    with pytest.raises(iot.exceptions.VersionsLimitExceededException) as caught:
        iot.create_policy_version(policyName=name, policyDocument=first)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    versions = iot.list_policy_versions(policyName=name)["policyVersions"]
    assert sorted(v["versionId"] for v in versions) == ["1", "2", "3", "4", "5"]
    assert [v["versionId"] for v in versions if v["isDefaultVersion"]] == ["3"]
    three = iot.get_policy_version(policyName=name, policyVersionId="3")
    assert three["isDefaultVersion"] and three["policyArn"] == f"{ARN}:policy/{name}"
    with pytest.raises(iot.exceptions.DeleteConflictException):
        iot.delete_policy_version(policyName=name, policyVersionId="3")
    iot.set_default_policy_version(policyName=name, policyVersionId="5")
    assert iot.get_policy(policyName=name)["defaultVersionId"] == "5"
    with pytest.raises(iot.exceptions.DeleteConflictException):
        iot.delete_policy(policyName=name)  # it still has other versions
    for version_id in ("1", "2", "3", "4"):
        iot.delete_policy_version(policyName=name, policyVersionId=version_id)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.get_policy_version(policyName=name, policyVersionId="1")
    iot.delete_policy(policyName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.get_policy(policyName=name)
    listed = {p["policyName"] for p in iot.list_policies(pageSize=250)["policies"]}
    assert name not in listed


def test_attachments_and_effective_policies(iot: Any, unique: Unique) -> None:
    cert_policy, group_policy = unique("cert-pol"), unique("group-pol")
    iot.create_policy(policyName=cert_policy,
                      policyDocument=document(allow("iot:Connect", "*")))
    iot.create_policy(policyName=group_policy,
                      policyDocument=document(allow("iot:Subscribe", "*")))
    cert = iot.create_keys_and_certificate(setAsActive=True)
    cert_arn = cert["certificateArn"]
    parent, group, thing = unique("pgroup"), unique("group"), unique("thing")
    iot.create_thing_group(thingGroupName=parent)
    group_arn = iot.create_thing_group(thingGroupName=group,
                                       parentGroupName=parent)["thingGroupArn"]
    parent_arn = group_arn.replace(group, parent)
    iot.create_thing(thingName=thing)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    iot.attach_policy(policyName=cert_policy, target=cert_arn)
    iot.attach_policy(policyName=group_policy, target=parent_arn)

    assert iot.list_targets_for_policy(policyName=cert_policy)["targets"] == [cert_arn]
    assert iot.list_targets_for_policy(policyName=group_policy)["targets"] == [parent_arn]
    assert iot.list_attached_policies(target=cert_arn)["policies"] == [
        {"policyName": cert_policy, "policyArn": f"{ARN}:policy/{cert_policy}"}]
    assert iot.list_attached_policies(target=group_arn)["policies"] == []
    assert [p["policyName"] for p in iot.list_attached_policies(
        target=group_arn, recursive=True)["policies"]] == [group_policy]
    assert [p["policyName"] for p in iot.list_principal_policies(
        principal=cert_arn)["policies"]] == [cert_policy]
    assert iot.list_policy_principals(policyName=cert_policy)["principals"] == [cert_arn]
    assert iot.list_policy_principals(policyName=group_policy)["principals"] == []

    effective = iot.get_effective_policies(principal=cert_arn, thingName=thing)
    assert sorted(p["policyName"] for p in effective["effectivePolicies"]) == sorted(
        [cert_policy, group_policy])
    assert all(p["policyDocument"] for p in effective["effectivePolicies"])
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.get_effective_policies()
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.get_effective_policies(thingName=unique("ghost"))

    with pytest.raises(iot.exceptions.DeleteConflictException):
        iot.delete_policy(policyName=cert_policy)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_policy(policyName=unique("missing"), target=cert_arn)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_policy(policyName=cert_policy, target=f"{ARN}:thinggroup/{unique('g')}")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.attach_policy(policyName=cert_policy, target=f"{ARN}:thing/{thing}")

    # The legacy principal-policy calls are the same attachment.
    iot.detach_principal_policy(policyName=cert_policy, principal=cert_arn)
    assert iot.list_targets_for_policy(policyName=cert_policy)["targets"] == []
    iot.attach_principal_policy(policyName=cert_policy, principal=cert_arn)
    assert iot.list_targets_for_policy(policyName=cert_policy)["targets"] == [cert_arn]
    iot.detach_policy(policyName=cert_policy, target=cert_arn)
    iot.detach_policy(policyName=group_policy, target=parent_arn)
    iot.delete_policy(policyName=cert_policy)


def test_ten_policies_per_target(iot: Any, unique: Unique) -> None:
    cert_arn = iot.create_keys_and_certificate()["certificateArn"]
    for _ in range(10):
        name = unique("many")
        iot.create_policy(policyName=name, policyDocument=document(allow("iot:Connect", "*")))
        iot.attach_policy(policyName=name, target=cert_arn)
    extra = unique("eleventh")
    iot.create_policy(policyName=extra, policyDocument=document(allow("iot:Connect", "*")))
    with pytest.raises(iot.exceptions.LimitExceededException) as caught:
        iot.attach_policy(policyName=extra, target=cert_arn)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410


def test_test_authorization(iot: Any, unique: Unique) -> None:
    thing = unique("sensor")
    allow_policy, deny_policy, extra_policy = unique("allow"), unique("deny"), unique("extra")
    iot.create_policy(policyName=allow_policy, policyDocument=document(
        allow("iot:Connect", f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"),
        allow("iot:Publish", f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}/*")))
    iot.create_policy(policyName=deny_policy, policyDocument=document(
        deny("iot:Publish", f"{ARN}:topic/{thing}/secret")))
    iot.create_policy(policyName=extra_policy, policyDocument=document(
        allow("iot:Subscribe", "*")))
    cert = iot.create_keys_and_certificate(setAsActive=True)
    cert_arn = cert["certificateArn"]
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=cert_arn)
    for name in (allow_policy, deny_policy):
        iot.attach_policy(policyName=name, target=cert_arn)

    results = iot.test_authorization(principal=cert_arn, clientId=thing, authInfos=[
        {"actionType": "CONNECT", "resources": [f"{ARN}:client/{thing}"]},
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/{thing}/temperature"]},
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/{thing}/secret"]},
        {"actionType": "SUBSCRIBE", "resources": [f"{ARN}:topicfilter/{thing}/#"]},
    ])["authResults"]
    connect, publish, secret, subscribe = results
    assert connect["authDecision"] == "ALLOWED"
    assert connect["allowed"]["policies"] == [
        {"policyName": allow_policy, "policyArn": f"{ARN}:policy/{allow_policy}"}]
    assert connect["authInfo"] == {"actionType": "CONNECT",
                                   "resources": [f"{ARN}:client/{thing}"]}
    assert publish["authDecision"] == "ALLOWED"
    assert secret["authDecision"] == "EXPLICIT_DENY"
    assert [p["policyName"] for p in secret["denied"]["explicitDeny"]["policies"]] == [
        deny_policy]
    assert subscribe["authDecision"] == "IMPLICIT_DENY"
    assert sorted(p["policyName"] for p in subscribe["denied"]["implicitDeny"]["policies"]) \
        == sorted([allow_policy, deny_policy])

    # Another client id: the thing variables resolve to nothing, so Connect is denied.
    other = iot.test_authorization(principal=cert_arn, clientId="someone-else", authInfos=[
        {"actionType": "CONNECT", "resources": [f"{ARN}:client/someone-else"]}])
    assert other["authResults"][0]["authDecision"] == "IMPLICIT_DENY"

    added = iot.test_authorization(
        principal=cert_arn, clientId=thing, policyNamesToAdd=[extra_policy],
        policyNamesToSkip=[deny_policy], authInfos=[
            {"actionType": "SUBSCRIBE", "resources": [f"{ARN}:topicfilter/{thing}/#"]},
            {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/{thing}/secret"]}])
    assert [r["authDecision"] for r in added["authResults"]] == ["ALLOWED", "ALLOWED"]

    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.test_authorization(principal=f"{ARN}:cert/{'0' * 64}", authInfos=[
            {"actionType": "CONNECT", "resources": [f"{ARN}:client/x"]}])
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.test_authorization(authInfos=[
            {"actionType": "CONNECT", "resources": [f"{ARN}:client/x"]}])
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.test_authorization(principal=cert_arn, authInfos=[
            {"actionType": "DANCE", "resources": [f"{ARN}:client/x"]}])
