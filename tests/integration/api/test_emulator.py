"""Emulator mode: any SigV4 credentials, the region from each request, a reset call;
and the system operations (endpoint, logging options)."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.clients import Client, wait_for

from .conftest import ACCOUNT, ApiBastion, device_through_api

Unique = Callable[[str], str]


def reset(emulator: ApiBastion) -> None:
    request = urllib.request.Request(emulator.url + "/_bastion/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_any_credentials_and_the_request_region(emulator: ApiBastion, unique: Unique) -> None:
    iot = emulator.client(region="eu-west-2", key=("AKIAANYTHING", "any secret"))
    name = unique("emulated")
    assert iot.create_thing(thingName=name)["thingArn"] == \
        f"arn:aws:iot:eu-west-2:{ACCOUNT}:thing/{name}"
    cert = iot.create_keys_and_certificate(setAsActive=True)
    assert cert["certificateArn"].startswith(f"arn:aws:iot:eu-west-2:{ACCOUNT}:cert/")
    iot.attach_thing_principal(thingName=name, principal=cert["certificateArn"])
    other = emulator.client(region="us-west-2", key=("AKIAOTHER", "x"))
    assert other.describe_thing(thingName=name)["thingArn"] == \
        f"arn:aws:iot:us-west-2:{ACCOUNT}:thing/{name}"
    record = emulator.trail.records[-1]
    assert record.caller is not None and record.caller.emulated
    assert (record.caller.region, record.caller.role.value) == ("us-west-2", "admin")
    with pytest.raises(iot.exceptions.ClientError) as caught:
        emulator.client(region="nowhere", key=("AK", "x")).list_things()
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_reset_wipes_everything(emulator: ApiBastion, unique: Unique, tmp_path: Path) -> None:
    iot = emulator.client()
    data = emulator.client("iot-data")
    device = device_through_api(emulator, iot, unique("connected"), tmp_path)
    client = Client(device, emulator.mqtt_port, client_id=device.name).connect()
    name, policy = unique("before-reset"), unique("policy")
    iot.create_thing(thingName=name)
    iot.create_thing_type(thingTypeName=unique("type"))
    iot.create_thing_group(thingGroupName=unique("group"))
    iot.create_policy(policyName=policy, policyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*",'
        '"Resource":"*"}]}'))
    iot.attach_policy(policyName=policy,
                      target=iot.create_keys_and_certificate()["certificateArn"])
    data.publish(topic=f"{name}/retained", payload=b"x", retain=True)
    rule = unique("rule").replace("-", "_")
    iot.create_topic_rule(ruleName=rule, topicRulePayload={
        "sql": "SELECT * FROM 'a/b'", "actions": [{"republish": {
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/r", "topic": "c"}}]})
    engine = emulator.running.app.rules
    assert engine is not None
    wait_for(lambda: rule in engine.enabled_rules(), what="the rule in the engine")
    reset(emulator)
    try:
        assert client.disconnected.wait(5), "the reset did not drop the MQTT session"
    finally:
        client.paho.loop_stop()
    assert iot.list_things()["things"] == []
    assert iot.list_thing_types()["thingTypes"] == []
    assert iot.list_thing_groups()["thingGroups"] == []
    assert iot.list_policies()["policies"] == []
    assert iot.list_certificates()["certificates"] == []
    assert data.list_retained_messages()["retainedTopics"] == []
    assert iot.list_topic_rules()["rules"] == []
    wait_for(lambda: not engine.enabled_rules(), what="the engine without rules")
    # Bastion's own CA is registered again: certificates can still be issued.
    assert len(iot.list_ca_certificates()["certificates"]) == 1
    assert iot.create_keys_and_certificate()["certificateId"]
    resets = [r for r in emulator.trail.records if r.operation == "ResetEmulator"]
    assert resets and (resets[-1].service, resets[-1].outcome) == ("bastion", "allowed")


def test_logging_options_drive_bastions_log_level(emulator: ApiBastion) -> None:
    iot = emulator.client()
    logger = logging.getLogger("bastion")
    original = logger.level
    try:
        reset(emulator)
        with pytest.raises(iot.exceptions.NotConfiguredException):
            iot.get_v2_logging_options()
        role = f"arn:aws:iam::{ACCOUNT}:role/iot-logging"
        iot.set_logging_options(loggingOptionsPayload={"roleArn": role, "logLevel": "WARN"})
        assert iot.get_logging_options()["logLevel"] == "WARN"
        assert logger.level == logging.WARNING
        iot.set_v2_logging_options(roleArn=role, defaultLogLevel="DEBUG")
        assert logger.level == logging.DEBUG
        got = iot.get_v2_logging_options()
        assert (got["roleArn"], got["defaultLogLevel"], got["disableAllLogs"]) == (
            role, "DEBUG", False)
        for index in range(5):
            iot.set_v2_logging_level(logTarget={"targetType": "CLIENT_ID",
                                                "targetName": f"client-{index}"},
                                     logLevel="INFO")
        iot.set_v2_logging_level(logTarget={"targetType": "DEFAULT"}, logLevel="ERROR")
        assert logger.level == logging.ERROR
        names: list[str] = []
        kwargs: dict[str, Any] = {"targetType": "CLIENT_ID", "maxResults": 2}
        while True:
            page = iot.list_v2_logging_levels(**kwargs)
            names.extend(c["logTarget"]["targetName"] for c in page["logTargetConfigurations"])
            if "nextToken" not in page:
                break
            kwargs["nextToken"] = page["nextToken"]
        assert names == [f"client-{index}" for index in range(5)]
        iot.delete_v2_logging_level(targetType="CLIENT_ID", targetName="client-0")
        assert len(iot.list_v2_logging_levels(targetType="CLIENT_ID")[
            "logTargetConfigurations"]) == 4
        iot.set_v2_logging_options(disableAllLogs=True)
        assert logger.level > logging.CRITICAL
    finally:
        reset(emulator)
        assert logger.level == original


def test_describe_endpoint(api_bastion: ApiBastion) -> None:
    iot = api_bastion.client()
    port = api_bastion.url.rsplit(":", 1)[1]
    assert iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"] == "127.0.0.1"
    assert iot.describe_endpoint()["endpointAddress"] == "127.0.0.1"
    assert iot.describe_endpoint(endpointType="iot:Jobs")["endpointAddress"] == \
        f"127.0.0.1:{port}"
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.describe_endpoint(endpointType="iot:CredentialProvider")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.describe_endpoint(endpointType="iot:Nothing")
