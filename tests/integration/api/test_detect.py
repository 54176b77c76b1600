"""Device Defender detect through boto3: every Detect operation Bastion implements, with
AWS's request and response shapes, and violations raised by a real device."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.clients import Client, wait_for

from .conftest import ACCOUNT, REGION, ApiBastion, device_through_api

BEHAVIOR = {"name": "msgs", "metric": "aws:num-messages-sent",
            "criteria": {"comparisonOperator": "less-than", "value": {"count": 100},
                         "durationSeconds": 300, "consecutiveDatapointsToAlarm": 1,
                         "consecutiveDatapointsToClear": 1}}
PORTS = {"name": "ports", "metric": "aws:listening-tcp-ports",
         "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [443]}}}


def _code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def test_security_profile_lifecycle(iot: Any, unique: Callable[[str], str]) -> None:
    name = unique("sp")
    created = iot.create_security_profile(securityProfileName=name,
                                          securityProfileDescription="fleet",
                                          behaviors=[BEHAVIOR])
    assert created["securityProfileArn"] == \
        f"arn:aws:iot:{REGION}:{ACCOUNT}:securityprofile/{name}"
    described = iot.describe_security_profile(securityProfileName=name)
    assert described["version"] == 1
    assert described["behaviors"] == [{**BEHAVIOR, "suppressAlerts": False}]
    assert isinstance(described["creationDate"], datetime)
    with pytest.raises(ClientError) as caught:
        iot.create_security_profile(securityProfileName=name, behaviors=[])
    assert _code(caught) == "ResourceAlreadyExistsException"
    updated = iot.update_security_profile(securityProfileName=name, expectedVersion=1,
                                          behaviors=[BEHAVIOR, PORTS])
    assert updated["version"] == 2 and len(updated["behaviors"]) == 2
    with pytest.raises(ClientError) as caught:
        iot.update_security_profile(securityProfileName=name, expectedVersion=1,
                                    securityProfileDescription="stale")
    assert _code(caught) == "VersionConflictException"
    names = [p["name"] for p in iot.list_security_profiles()["securityProfileIdentifiers"]]
    assert name in names
    by_metric = iot.list_security_profiles(metricName="aws:listening-tcp-ports")
    assert name in [p["name"] for p in by_metric["securityProfileIdentifiers"]]

    target = f"arn:aws:iot:{REGION}:{ACCOUNT}:all/registered-things"
    iot.attach_security_profile(securityProfileName=name, securityProfileTargetArn=target)
    assert iot.list_targets_for_security_profile(securityProfileName=name)[
        "securityProfileTargets"] == [{"arn": target}]
    mappings = iot.list_security_profiles_for_target(securityProfileTargetArn=target)
    assert name in [m["securityProfileIdentifier"]["name"]
                    for m in mappings["securityProfileTargetMappings"]]
    iot.detach_security_profile(securityProfileName=name, securityProfileTargetArn=target)
    assert iot.list_targets_for_security_profile(securityProfileName=name)[
        "securityProfileTargets"] == []
    with pytest.raises(ClientError) as caught:
        iot.delete_security_profile(securityProfileName=name, expectedVersion=1)
    assert _code(caught) == "VersionConflictException"
    iot.delete_security_profile(securityProfileName=name, expectedVersion=2)
    with pytest.raises(ClientError) as caught:
        iot.describe_security_profile(securityProfileName=name)
    assert _code(caught) == "ResourceNotFoundException"


def test_validate_behaviors(iot: Any) -> None:
    assert iot.validate_security_profile_behaviors(behaviors=[BEHAVIOR])["valid"] is True
    bad = {**BEHAVIOR, "criteria": {"comparisonOperator": "in-cidr-set",
                                    "value": {"count": 1}}}
    result = iot.validate_security_profile_behaviors(behaviors=[bad])
    assert result["valid"] is False and result["validationErrors"][0]["errorMessage"]


def test_custom_metrics_and_dimensions(iot: Any, unique: Callable[[str], str]) -> None:
    metric = unique("temp").replace("-", "_")
    created = iot.create_custom_metric(metricName=metric, metricType="number",
                                       displayName="Temperature", clientRequestToken="t1")
    assert created["metricName"] == metric
    assert iot.describe_custom_metric(metricName=metric)["metricType"] == "number"
    assert iot.update_custom_metric(metricName=metric, displayName="T")["displayName"] == "T"
    assert metric in iot.list_custom_metrics()["metricNames"]
    iot.delete_custom_metric(metricName=metric)
    assert metric not in iot.list_custom_metrics()["metricNames"]

    dimension = unique("dim")
    iot.create_dimension(name=dimension, type="TOPIC_FILTER", stringValues=["telemetry/#"],
                         clientRequestToken="t2")
    assert iot.describe_dimension(name=dimension)["stringValues"] == ["telemetry/#"]
    assert iot.update_dimension(name=dimension, stringValues=["a/#"])["stringValues"] == \
        ["a/#"]
    assert dimension in iot.list_dimensions()["dimensionNames"]
    iot.delete_dimension(name=dimension)
    with pytest.raises(ClientError) as caught:
        iot.describe_dimension(name=dimension)
    assert _code(caught) == "ResourceNotFoundException"


def test_violations_from_a_real_device(api_bastion: ApiBastion, iot: Any,
                                       unique: Callable[[str], str], tmp_path: Path) -> None:
    thing = unique("dd")
    device = device_through_api(api_bastion, iot, thing, tmp_path)
    group = unique("ddgroup")
    iot.create_thing_group(thingGroupName=group)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    profile = unique("sp")
    iot.create_security_profile(securityProfileName=profile, behaviors=[PORTS])
    iot.attach_security_profile(
        securityProfileName=profile,
        securityProfileTargetArn=f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{group}")
    client = Client(device, api_bastion.mqtt_port, client_id=thing).connect()
    try:
        topic = f"$aws/things/{thing}/defender/metrics/json"
        client.subscribe(topic + "/accepted", qos=1)
        client.publish(topic, json.dumps({
            "header": {"report_id": 1, "version": "1.0"},
            "metrics": {"listening_tcp_ports": {"ports": [{"port": 443}, {"port": 23}]}}}),
            qos=1)
        assert json.loads(client.expect()[0].payload)["reportId"] == 1

        def active() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = iot.list_active_violations(
                thingName=thing)["activeViolations"]
            return found
        wait_for(active, what="an active violation")
        [violation] = active()
        assert violation["securityProfileName"] == profile
        assert violation["behavior"]["name"] == "ports"
        assert violation["lastViolationValue"] == {"ports": [23, 443]}
        iot.put_verification_state_on_violation(
            violationId=violation["violationId"], verificationState="TRUE_POSITIVE",
            verificationStateDescription="telnet")
        assert iot.list_active_violations(verificationState="TRUE_POSITIVE",
                                          thingName=thing)["activeViolations"]
        now = datetime.now(UTC)
        events = iot.list_violation_events(startTime=now - timedelta(hours=1),
                                           endTime=now + timedelta(hours=1),
                                           thingName=thing)["violationEvents"]
        assert [e["violationEventType"] for e in events] == ["in-alarm"]
        assert events[0]["verificationState"] == "TRUE_POSITIVE"
        datums = iot.list_metric_values(thingName=thing, metricName="aws:listening-tcp-ports",
                                        startTime=now - timedelta(hours=1),
                                        endTime=now + timedelta(hours=1))["metricDatumList"]
        assert [d["value"] for d in datums] == [{"ports": [23, 443]}]
        with pytest.raises(ClientError) as caught:
            iot.put_verification_state_on_violation(violationId="nope",
                                                    verificationState="UNKNOWN")
        assert _code(caught) == "InvalidRequestException"
    finally:
        client.disconnect()


def test_auditor_reads_but_cannot_create(api_bastion: ApiBastion) -> None:
    auditor = api_bastion.client(role="auditor")
    auditor.list_security_profiles()
    with pytest.raises(ClientError):
        auditor.create_security_profile(securityProfileName="nope", behaviors=[])


def test_metrics_export_config(iot: Any, unique: Callable[[str], str]) -> None:
    name = unique("sp")
    exported = {**BEHAVIOR, "exportMetric": True}
    config = {"mqttTopic": "export/fleet", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/export"}
    with pytest.raises(ClientError) as caught:
        iot.create_security_profile(securityProfileName=name, behaviors=[exported])
    assert _code(caught) == "InvalidRequestException"
    iot.create_security_profile(securityProfileName=name, behaviors=[exported],
                                metricsExportConfig=config)
    described = iot.describe_security_profile(securityProfileName=name)
    assert described["metricsExportConfig"] == config
    assert described["behaviors"][0]["exportMetric"] is True
    with pytest.raises(ClientError) as caught:  # the behavior still exports
        iot.update_security_profile(securityProfileName=name, deleteMetricsExportConfig=True)
    assert _code(caught) == "InvalidRequestException"
    updated = iot.update_security_profile(securityProfileName=name, behaviors=[BEHAVIOR],
                                          deleteMetricsExportConfig=True)
    assert "metricsExportConfig" not in updated
