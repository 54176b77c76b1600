"""Provisioning templates, versions and CreateProvisioningClaim through boto3; a claim
made over HTTPS then provisions a device over MQTT."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.clients import V311, Client, DeviceFiles

from .conftest import ACCOUNT, REGION, ApiBastion

Unique = Callable[[str], str]
CERT = {"Type": "AWS::IoT::Certificate",
        "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}}}


def body(**resources: Any) -> str:
    return json.dumps({"Parameters": {"Serial": {"Type": "String"}},
                       "Resources": {"certificate": CERT, **resources}})


THING = {"thing": {"Type": "AWS::IoT::Thing",
                   "Properties": {"ThingName": {"Fn::Sub": "api-${Serial}"}}}}


def test_template_lifecycle(iot: Any, unique: Unique) -> None:
    name = unique("tpl")[:36]
    created = iot.create_provisioning_template(
        templateName=name, templateBody=body(**THING), enabled=True, description="first",
        provisioningRoleArn=f"arn:aws:iam::{ACCOUNT}:role/Provisioning",
        preProvisioningHook={"targetArn": "https://hooks.example/provision",
                             "payloadVersion": "2020-04-01"})
    arn = f"arn:aws:iot:{REGION}:{ACCOUNT}:provisioningtemplate/{name}"
    assert (created["templateArn"], created["templateName"], created["defaultVersionId"]) == (
        arn, name, 1)
    described = iot.describe_provisioning_template(templateName=name)
    assert described["type"] == "FLEET_PROVISIONING"
    assert described["enabled"] is True
    assert described["preProvisioningHook"]["targetArn"] == "https://hooks.example/provision"
    assert json.loads(described["templateBody"])["Resources"]["thing"]

    version = iot.create_provisioning_template_version(templateName=name,
                                                       templateBody=body(), setAsDefault=True)
    assert (version["versionId"], version["isDefaultVersion"]) == (2, True)
    versions = iot.list_provisioning_template_versions(templateName=name)["versions"]
    assert [(v["versionId"], v["isDefaultVersion"]) for v in versions] == [(1, False), (2, True)]
    assert iot.describe_provisioning_template_version(
        templateName=name, versionId=1)["templateBody"] == body(**THING)
    iot.update_provisioning_template(templateName=name, defaultVersionId=1,
                                     removePreProvisioningHook=True, enabled=False)
    described = iot.describe_provisioning_template(templateName=name)
    assert (described["defaultVersionId"], described["enabled"]) == (1, False)
    assert "preProvisioningHook" not in described
    iot.delete_provisioning_template_version(templateName=name, versionId=2)
    names = [t["templateName"] for t in iot.get_paginator("list_provisioning_templates")
             .paginate().build_full_result()["templates"]]
    assert name in names
    iot.delete_provisioning_template(templateName=name)
    with pytest.raises(ClientError) as missing:
        iot.describe_provisioning_template(templateName=name)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


@pytest.mark.parametrize(("template_body", "message"), [
    ("{", "not valid JSON"),
    (json.dumps({"Resources": {"certificate": CERT,
                               "thing": {"Type": "AWS::IoT::Thing",
                                         "Properties": {"ThingName": {"Ref": "Nope"}}}}}),
     "Resources.thing.Properties.ThingName.Ref: Ref to parameter 'Nope'"),
], ids=["not-json", "missing-parameter"])
def test_a_bad_template_is_refused_with_the_place(iot: Any, unique: Unique, template_body: str,
                                                  message: str) -> None:
    with pytest.raises(ClientError) as refused:
        iot.create_provisioning_template(templateName=unique("bad")[:36],
                                         templateBody=template_body,
                                         provisioningRoleArn=f"arn:aws:iam::{ACCOUNT}:role/P")
    assert refused.value.response["Error"]["Code"] == "InvalidRequestException"
    assert message in refused.value.response["Error"]["Message"]


def test_errors(iot: Any, unique: Unique) -> None:
    name = unique("dup")[:36]
    role = f"arn:aws:iam::{ACCOUNT}:role/P"
    iot.create_provisioning_template(templateName=name, templateBody=body(),
                                     provisioningRoleArn=role)
    with pytest.raises(ClientError) as duplicate:
        iot.create_provisioning_template(templateName=name, templateBody=body(),
                                         provisioningRoleArn=role)
    assert duplicate.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as default:
        iot.delete_provisioning_template_version(templateName=name, versionId=1)
    assert default.value.response["Error"]["Code"] == "DeleteConflictException"
    for _ in range(4):
        iot.create_provisioning_template_version(templateName=name, templateBody=body())
    with pytest.raises(ClientError) as limit:
        iot.create_provisioning_template_version(templateName=name, templateBody=body())
    assert limit.value.response["Error"]["Code"] == "VersionsLimitExceededException"


def test_a_claim_made_over_https_provisions_a_device_over_mqtt(
        api_bastion: ApiBastion, iot: Any, unique: Unique, tmp_path: Path) -> None:
    name = unique("claim")[:36]
    iot.create_provisioning_template(templateName=name, templateBody=body(**THING),
                                     enabled=True,
                                     provisioningRoleArn=f"arn:aws:iam::{ACCOUNT}:role/P")
    claim = iot.create_provisioning_claim(templateName=name)
    assert len(claim["certificateId"]) == 64
    assert claim["expiration"].tzinfo is not None
    cert, key = tmp_path / "claim.cert.pem", tmp_path / "claim.key.pem"
    cert.write_text(claim["certificatePem"])
    key.write_text(claim["keyPair"]["PrivateKey"])
    files = DeviceFiles("claim", cert, key, api_bastion.datadir.ca_cert_path)

    client = Client(files, api_bastion.mqtt_port, version=V311).connect()
    try:
        client.subscribe("$aws/certificates/create/json/accepted", 1)
        client.publish("$aws/certificates/create/json", b"", qos=1)
        token = json.loads(client.expect(1)[0].payload)["certificateOwnershipToken"]
        topic = f"$aws/provisioning-templates/{name}/provision/json"
        client.subscribe(topic + "/accepted", 1)
        client.publish(topic, json.dumps({"certificateOwnershipToken": token,
                                          "parameters": {"Serial": "7"}}), qos=1)
        assert json.loads(client.expect(1)[0].payload) == {"deviceConfiguration": {},
                                                           "thingName": "api-7"}
    finally:
        client.disconnect()
    assert iot.describe_thing(thingName="api-7")["thingName"] == "api-7"
