"""Tags on every kind of resource Bastion has, through boto3 over HTTPS with SigV4, and
through the ``aws`` CLI."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.clients import wait_for

from .conftest import ACCOUNT, OPEN_DOCUMENT, REGION, ApiBastion
from .test_cli import AWS, aws_env

Unique = Callable[[str], str]
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bastion"
TAGS = [{"Key": "env", "Value": "test"}, {"Key": "owner", "Value": "ops team"}]


def _tags(iot: Any, arn: str) -> dict[str, str]:
    pages = iot.get_paginator("list_tags_for_resource").paginate(resourceArn=arn)
    return {tag["Key"]: tag["Value"] for page in pages for tag in page["tags"]}


def _code(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = error.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _created_with_tags(iot: Any, unique: Unique) -> dict[str, str]:
    """One resource of every taggable kind, each created with TAGS: kind → ARN."""
    arns: dict[str, str] = {}
    name = unique("tagged").replace("-", "_")
    arns["thinggroup"] = iot.create_thing_group(thingGroupName=name, tags=TAGS)[
        "thingGroupArn"]
    arns["thingtype"] = iot.create_thing_type(thingTypeName=name, tags=TAGS)["thingTypeArn"]
    arns["policy"] = iot.create_policy(policyName=name, policyDocument=OPEN_DOCUMENT,
                                       tags=TAGS)["policyArn"]
    arns["billinggroup"] = iot.create_billing_group(billingGroupName=name, tags=TAGS)[
        "billingGroupArn"]
    thing = iot.create_thing(thingName=name)
    arns["job"] = iot.create_job(jobId=name, targets=[thing["thingArn"]],
                                 document='{"op": "noop"}', tags=TAGS)["jobArn"]
    arns["jobtemplate"] = iot.create_job_template(
        jobTemplateId=name, description="t", document='{"op": "noop"}', tags=TAGS)[
        "jobTemplateArn"]
    iot.create_topic_rule(ruleName=name, topicRulePayload={
        "sql": "SELECT * FROM 'tagged/#'", "actions": [{"republish": {
            "roleArn": ROLE, "topic": "out"}}]}, tags="env=test&owner=ops%20team")
    arns["rule"] = f"{ARN}:rule/{name}"
    arns["securityprofile"] = iot.create_security_profile(
        securityProfileName=name, behaviors=[], tags=TAGS)["securityProfileArn"]
    arns["custommetric"] = iot.create_custom_metric(
        metricName=name, metricType="number", clientRequestToken=name, tags=TAGS)[
        "metricArn"]
    arns["dimension"] = iot.create_dimension(
        name=name, type="TOPIC_FILTER", stringValues=["a/#"], clientRequestToken=name,
        tags=TAGS)["arn"]
    arns["scheduledaudit"] = iot.create_scheduled_audit(
        scheduledAuditName=name, frequency="DAILY",
        targetCheckNames=["LOGGING_DISABLED_CHECK"], tags=TAGS)["scheduledAuditArn"]
    arns["mitigationaction"] = iot.create_mitigation_action(
        actionName=name, roleArn=ROLE,
        actionParams={"enableIoTLoggingParams": {"roleArnForLogging": ROLE,
                                                 "logLevel": "ERROR"}}, tags=TAGS)["actionArn"]
    arns["provisioningtemplate"] = iot.create_provisioning_template(
        templateName=name, templateBody=json.dumps({"Resources": {"certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}}}}}),
        provisioningRoleArn=ROLE, tags=TAGS)["templateArn"]
    return arns


def test_tags_at_creation_and_after_on_every_kind(iot: Any, unique: Unique) -> None:
    arns = _created_with_tags(iot, unique)
    for kind, arn in arns.items():
        assert f":{kind}/" in arn
        assert _tags(iot, arn) == {"env": "test", "owner": "ops team"}, kind
        iot.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": "prod"},
                                                 {"Key": "tier", "Value": ""}])
        iot.untag_resource(resourceArn=arn, tagKeys=["owner", "never-there"])
        assert _tags(iot, arn) == {"env": "prod", "tier": ""}, kind


def test_tags_go_with_their_resource(iot: Any, unique: Unique) -> None:
    group, policy, rule = unique("gone"), unique("gone"), unique("gone").replace("-", "_")
    group_arn = iot.create_thing_group(thingGroupName=group, tags=TAGS)["thingGroupArn"]
    policy_arn = iot.create_policy(policyName=policy, policyDocument=OPEN_DOCUMENT,
                                   tags=TAGS)["policyArn"]
    iot.create_topic_rule(ruleName=rule, topicRulePayload={
        "sql": "SELECT * FROM 'x'", "actions": []}, tags="a=b")
    iot.delete_thing_group(thingGroupName=group)
    iot.delete_policy(policyName=policy)
    iot.delete_topic_rule(ruleName=rule)
    for arn in (group_arn, policy_arn, f"{ARN}:rule/{rule}"):
        with pytest.raises(iot.exceptions.ResourceNotFoundException):
            iot.list_tags_for_resource(resourceArn=arn)
    # Re-created under the same names, they start untagged.
    iot.create_thing_group(thingGroupName=group)
    iot.create_policy(policyName=policy, policyDocument=OPEN_DOCUMENT)
    assert _tags(iot, group_arn) == {}
    assert _tags(iot, policy_arn) == {}


def test_fifty_tags_at_most(iot: Any, unique: Unique) -> None:
    fifty = [{"Key": f"k{i:02}", "Value": str(i)} for i in range(50)]
    arn = iot.create_thing_group(thingGroupName=unique("many"), tags=fifty)["thingGroupArn"]
    assert len(_tags(iot, arn)) == 50
    with pytest.raises(ClientError) as refused:
        iot.tag_resource(resourceArn=arn, tags=[{"Key": "one-more", "Value": "x"}])
    assert _code(refused) == ("LimitExceededException", 410)
    # Replacing the value of a key the resource has does not count as one more.
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "k00", "Value": "changed"}])
    assert _tags(iot, arn)["k00"] == "changed"
    assert len(_tags(iot, arn)) == 50

    name = unique("toomany")
    with pytest.raises(ClientError) as refused:
        iot.create_thing_group(thingGroupName=name,
                               tags=[*fifty, {"Key": "k50", "Value": ""}])
    assert _code(refused) == ("InvalidRequestException", 400)
    # A refused tag list creates nothing.
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName=name)


@pytest.mark.parametrize("key", ["aws:owner", "AWS:Owner", "Aws:x"])
def test_reserved_keys_are_refused(iot: Any, unique: Unique, key: str) -> None:
    name = unique("reserved")
    arn = iot.create_billing_group(billingGroupName=name)["billingGroupArn"]
    with pytest.raises(ClientError) as refused:
        iot.tag_resource(resourceArn=arn, tags=[{"Key": key, "Value": "v"}])
    assert _code(refused) == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as refused:
        iot.untag_resource(resourceArn=arn, tagKeys=[key])
    assert _code(refused) == ("InvalidRequestException", 400)
    other = unique("reserved")
    with pytest.raises(ClientError) as refused:
        iot.create_policy(policyName=other, policyDocument=OPEN_DOCUMENT,
                          tags=[{"Key": key, "Value": "v"}])
    assert _code(refused) == ("InvalidRequestException", 400)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.get_policy(policyName=other)
    assert _tags(iot, arn) == {}


def test_keys_and_values_within_awss_limits(iot: Any, unique: Unique) -> None:
    arn = iot.create_thing_type(thingTypeName=unique("limits"))["thingTypeArn"]
    unicode_key = "Größe Ñandú 東京 ٣ @:/=+-._"
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "k" * 128, "Value": "v" * 256},
                                             {"Key": unicode_key, "Value": "../../x' OR 1=1"}])
    assert _tags(iot, arn) == {"k" * 128: "v" * 256, unicode_key: "../../x' OR 1=1"}
    for bad in ([{"Key": "k" * 129, "Value": ""}], [{"Key": "x", "Value": "v" * 257}],
                [{"Key": "semi;colon", "Value": ""}], [{"Key": "tab\there", "Value": ""}]):
        with pytest.raises(ClientError) as refused:
            iot.tag_resource(resourceArn=arn, tags=bad)
        assert _code(refused) == ("InvalidRequestException", 400), bad
    assert len(_tags(iot, arn)) == 2


def test_unknown_and_untaggable_arns(iot: Any, unique: Unique) -> None:
    thing_arn = iot.create_thing(thingName=unique("untaggable"))["thingArn"]
    certificate_arn = iot.create_keys_and_certificate()["certificateArn"]
    cases = {
        f"{ARN}:thinggroup/{unique('missing')}": ("ResourceNotFoundException", 404),
        f"{ARN}:billinggroup/{unique('missing')}": ("ResourceNotFoundException", 404),
        f"{ARN}:job/{unique('missing')}": ("ResourceNotFoundException", 404),
        # Another account or region: nothing of that ARN exists here.
        f"arn:aws:iot:eu-west-1:{ACCOUNT}:thinggroup/x": ("ResourceNotFoundException", 404),
        f"arn:aws:iot:{REGION}:999999999999:thinggroup/x": ("ResourceNotFoundException", 404),
        # AWS IoT tags no things and no certificates.
        thing_arn: ("InvalidRequestException", 400),
        certificate_arn: ("InvalidRequestException", 400),
        "not-an-arn": ("InvalidRequestException", 400),
        f"arn:aws:s3:::{unique('bucket')}": ("InvalidRequestException", 400),
    }
    calls: list[tuple[Callable[..., Any], dict[str, Any]]] = [
        (iot.list_tags_for_resource, {}), (iot.tag_resource, {"tags": TAGS}),
        (iot.untag_resource, {"tagKeys": ["env"]})]
    for arn, expected in cases.items():
        for call, extra in calls:
            with pytest.raises(ClientError) as refused:
                call(resourceArn=arn, **extra)
            assert _code(refused) == expected, arn
    group_arn = iot.create_thing_group(thingGroupName=unique("token"))["thingGroupArn"]
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.list_tags_for_resource(resourceArn=group_arn, nextToken="not-a-token")


def test_tag_changes_are_recorded_in_the_trail(api_bastion: ApiBastion, iot: Any,
                                               unique: Unique) -> None:
    arn = iot.create_billing_group(billingGroupName=unique("trail"))["billingGroupArn"]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "audited", "Value": "yes"}])
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.tag_resource(resourceArn=arn, tags=[{"Key": "aws:no", "Value": "x"}])
    iot.untag_resource(resourceArn=arn, tagKeys=["audited"])

    def records() -> list[Any]:
        return [r for r in api_bastion.trail.records
                if r.operation in ("TagResource", "UntagResource")
                and r.parameters.get("resourceArn") == arn]

    wait_for(lambda: len(records()) == 3, what="three trail records")
    tagged, refused, untagged = records()
    assert (tagged.operation, tagged.outcome, tagged.http_status) == (
        "TagResource", "allowed", 200)
    assert tagged.parameters["tags"] == [{"Key": "audited", "Value": "yes"}]
    assert (refused.outcome, refused.error_code, refused.http_status) == (
        "error", "InvalidRequestException", 400)
    assert (untagged.operation, untagged.parameters["tagKeys"]) == (
        "UntagResource", ["audited"])


def test_the_auditor_lists_but_does_not_tag(api_bastion: ApiBastion, iot: Any,
                                            unique: Unique) -> None:
    arn = iot.create_billing_group(billingGroupName=unique("audited"), tags=TAGS)[
        "billingGroupArn"]
    auditor = api_bastion.client(role="auditor")
    assert {t["Key"] for t in auditor.list_tags_for_resource(resourceArn=arn)["tags"]} == {
        "env", "owner"}
    with pytest.raises(ClientError) as refused:
        auditor.untag_resource(resourceArn=arn, tagKeys=["env"])
    assert _code(refused)[0] == "AccessDeniedException"
    assert "env" in _tags(iot, arn)


@pytest.mark.skipif(AWS is None, reason="the aws CLI is not installed (pip install awscli)")
def test_aws_cli_billing_groups_and_tags(api_bastion: ApiBastion, unique: Unique,
                                         tmp_path: Path) -> None:
    assert AWS is not None
    common = ["--endpoint-url", api_bastion.url, "--ca-bundle", str(api_bastion.verify),
              "--output", "json"]
    env = aws_env(tmp_path)
    name = unique("cli")

    def aws(*args: str) -> Any:
        done = subprocess.run([AWS, "iot", *args, *common], capture_output=True, text=True,
                              env=env, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    created = aws("create-billing-group", "--billing-group-name", name,
                  "--tags", "Key=site,Value=plant 7")
    arn = created["billingGroupArn"]
    assert arn == f"{ARN}:billinggroup/{name}"
    aws("tag-resource", "--resource-arn", arn, "--tags", "Key=line,Value=3")
    listed = aws("list-tags-for-resource", "--resource-arn", arn)
    assert sorted((t["Key"], t["Value"]) for t in listed["tags"]) == [
        ("line", "3"), ("site", "plant 7")]


def test_emulator_tags_name_the_requests_region(emulator: ApiBastion, unique: Unique) -> None:
    iot = emulator.client(region="eu-west-2", key=("AKIAANYTHING", "any secret"))
    name = unique("regional")
    arn = iot.create_billing_group(billingGroupName=name, tags=TAGS)["billingGroupArn"]
    assert arn == f"arn:aws:iot:eu-west-2:{ACCOUNT}:billinggroup/{name}"
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "zone", "Value": "b"}])
    assert _tags(iot, arn) == {"env": "test", "owner": "ops team", "zone": "b"}
    # The ARN of another region names nothing for this region's client.
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_tags_for_resource(resourceArn=arn.replace("eu-west-2", "us-east-1"))
