"""Emulator mode: the services beyond the registry take the request's region too — a job
made through an eu-west-1 client targets eu-west-1 things and is named in eu-west-1; the
same with a us-east-1 client; an ARN of the other region is refused. Rules, provisioning
templates and streams are named in the request's region."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from .conftest import ACCOUNT, ApiBastion

Unique = Callable[[str], str]
REGIONS = ("eu-west-1", "us-east-1")


@pytest.mark.parametrize(("region", "other"), [REGIONS, REGIONS[::-1]], ids=REGIONS)
def test_a_job_targets_things_of_its_own_region(emulator: ApiBastion, unique: Unique,
                                                region: str, other: str) -> None:
    iot = emulator.client(region=region, key=("AKIAREGIONAL", "x"))
    foreign = emulator.client(region=other, key=("AKIAREGIONAL", "x"))
    name = unique("regional-thing")
    thing_arn = iot.create_thing(thingName=name)["thingArn"]
    assert thing_arn == f"arn:aws:iot:{region}:{ACCOUNT}:thing/{name}"

    job_id = unique("regional-job")
    created = iot.create_job(jobId=job_id, targets=[thing_arn], document='{"op": "x"}')
    assert created["jobArn"] == f"arn:aws:iot:{region}:{ACCOUNT}:job/{job_id}"
    job = iot.describe_job(jobId=job_id)["job"]
    assert job["targets"] == [thing_arn]
    execution = iot.describe_job_execution(jobId=job_id, thingName=name)["execution"]
    assert execution["thingArn"] == thing_arn
    jobs_data = emulator.client("iot-jobs-data", region=region, key=("AKIAREGIONAL", "x"))
    pending = jobs_data.get_pending_job_executions(thingName=name)
    assert [e["jobId"] for e in pending["queuedJobs"]] == [job_id]

    # The other region's client names the same job in its own region, and refuses an ARN
    # of this one.
    assert foreign.describe_job(jobId=job_id)["job"]["jobArn"] == \
        f"arn:aws:iot:{other}:{ACCOUNT}:job/{job_id}"
    with pytest.raises(foreign.exceptions.ResourceNotFoundException) as caught:
        foreign.create_job(jobId=unique("cross"), targets=[thing_arn], document="{}")
    assert caught.value.response["Error"]["Message"] == \
        f"{thing_arn} does not exist in this account and region"


def test_rules_templates_and_streams_are_named_in_the_request_region(
        emulator: ApiBastion, unique: Unique) -> None:
    iot = emulator.client(region="eu-west-1", key=("AKIAREGIONAL", "x"))
    rule = unique("rule").replace("-", "_")
    iot.create_topic_rule(ruleName=rule, topicRulePayload={
        "sql": "SELECT * FROM 'a/b'", "actions": [{"republish": {
            "topic": "c/d", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/r"}}]})
    assert iot.get_topic_rule(ruleName=rule)["ruleArn"] == \
        f"arn:aws:iot:eu-west-1:{ACCOUNT}:rule/{rule}"
    template = unique("fleet")
    made = iot.create_provisioning_template(
        templateName=template, provisioningRoleArn=f"arn:aws:iam::{ACCOUNT}:role/p",
        templateBody=json.dumps({
            "Parameters": {"ThingName": {"Type": "String"}},
            "Resources": {
                "thing": {"Type": "AWS::IoT::Thing",
                          "Properties": {"ThingName": {"Ref": "ThingName"}}},
                "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
                    "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                    "Status": "Active"}}}}))
    assert made["templateArn"] == f"arn:aws:iot:eu-west-1:{ACCOUNT}:provisioningtemplate/{template}"
