"""ML Detect end to end: real devices on mutual TLS, a real Bastion with its API,
boto3 for every ML operation, and a restart that keeps what the models learned.

The clock is moved by hand one interval per evaluation (``tick``), as in the other
detect tests; the devices' traffic is real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from bastion.api import Role, StaticCredentials
from bastion.config import ApiConfig, Config, DetectConfig, MQTTConfig
from bastion.datadir import DataDir
from bastion.defender.detect import ViolationEventType
from support.clients import Client, DeviceFiles
from support.clock import ManualClock
from support.running import RunningBastion

from .conftest import INTERVAL, TEST_LIMITS

KEYS = {"admin": ("AKIAMLADMIN00000001", "ml-admin-secret/abcdefghijklmnopqrstuvwx"),
        "auditor": ("AKIAMLAUDITOR000001", "ml-auditor-secret/abcdefghijklmnopqrstuv")}
ML = {"mlDetectionConfig": {"confidenceLevel": "MEDIUM"}, "consecutiveDatapointsToAlarm": 1,
      "consecutiveDatapointsToClear": 1}
DEVICES = 8


@dataclass
class MLBastion:
    running: RunningBastion
    clock: ManualClock
    datadir: DataDir

    def client(self, role: str = "admin") -> Any:
        api = self.running.app.api
        assert api is not None
        key_id, secret = KEYS[role]
        return boto3.client("iot", endpoint_url=api.url, region_name="us-east-1",
                            aws_access_key_id=key_id, aws_secret_access_key=secret,
                            verify=str(self.datadir.ca_cert_path),
                            config=BotoConfig(retries={"max_attempts": 1}))

    def tick(self) -> list[Any]:
        self.clock.advance(INTERVAL)
        events: list[Any] = self.running.run(self.running.app.detect.tick())
        return events


def _start(datadir: DataDir, clock: ManualClock) -> RunningBastion:
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0), limits=TEST_LIMITS,
                    api=ApiConfig(host="127.0.0.1", port=0),
                    detect=DetectConfig(interval=INTERVAL))
    credentials = StaticCredentials({k: (s, Role(r)) for r, (k, s) in KEYS.items()})
    return RunningBastion(config, datadir, clock=clock, credentials=credentials).start()


@pytest.fixture
def ml(datadir: DataDir) -> Iterator[MLBastion]:
    clock = ManualClock(datetime.fromtimestamp(1_800_000_000, UTC))
    running = _start(datadir, clock)
    try:
        yield MLBastion(running, clock, datadir)
    finally:
        running.stop()


def _fleet(ml: MLBastion, make_device: Callable[..., DeviceFiles]
           ) -> tuple[list[DeviceFiles], str]:
    """``DEVICES`` sensors of one thing type and firmware, in one group."""
    registry = ml.running.app.plane.registry
    kind = f"sensor-{uuid.uuid4().hex[:6]}"
    registry.create_thing_type(kind)
    group = f"ml-{uuid.uuid4().hex[:6]}"
    registry.create_thing_group(group)
    devices = [make_device() for _ in range(DEVICES)]
    for device in devices:
        registry.update_thing(device.name, thing_type_name=kind,
                              attributes={"firmware": "1.4.2"})
        registry.add_thing_to_thing_group(thing_group_name=group, thing_name=device.name)
    return devices, group


def _traffic(clients: list[Client], flood: int | None = None, count: int = 6) -> None:
    for i, client in enumerate(clients):
        for _ in range(200 if i == flood else count + i % 3):
            client.publish(f"telemetry/{i}", b"reading", qos=1)


def _captured(iot: Any, operation: str) -> list[dict[str, Any]]:
    """The raw JSON bodies of ``operation`` (boto3 drops members its model lacks)."""
    bodies: list[dict[str, Any]] = []

    def keep(http_response: Any, **_: Any) -> None:
        bodies.append(json.loads(http_response.content or b"{}"))

    iot.meta.events.register(f"after-call.iot.{operation}", keep)
    return bodies


def test_ml_detect_end_to_end_through_boto3(ml: MLBastion,
                                            make_device: Callable[..., DeviceFiles],
                                            datadir: DataDir) -> None:
    iot, auditor = ml.client(), ml.client("auditor")
    devices, group = _fleet(ml, make_device)
    behaviors = [{"name": "msgs-ml", "metric": "aws:num-messages-sent", "criteria": ML},
                 {"name": "bytes-ml", "metric": "aws:message-byte-size", "criteria": ML}]
    assert iot.validate_security_profile_behaviors(behaviors=behaviors)["valid"] is True
    refused = iot.validate_security_profile_behaviors(behaviors=[
        {"name": "ips", "metric": "aws:source-ip-address", "criteria": ML}])
    assert refused["valid"] is False and refused["validationErrors"]
    profile = f"ml-{uuid.uuid4().hex[:6]}"
    iot.create_security_profile(securityProfileName=profile, behaviors=behaviors)
    described = iot.describe_security_profile(securityProfileName=profile)
    assert described["behaviors"][0]["criteria"]["mlDetectionConfig"] == {
        "confidenceLevel": "MEDIUM"}
    arn = ml.running.app.detect.service.target_arn(f"thinggroup/{group}")
    iot.attach_security_profile(securityProfileName=profile, securityProfileTargetArn=arn)

    summaries = iot.get_behavior_model_training_summaries(securityProfileName=profile)
    assert [(s["behaviorName"], s["modelStatus"]) for s in summaries["summaries"]] == [
        ("msgs-ml", "PENDING_BUILD"), ("bytes-ml", "PENDING_BUILD")]

    clients = [Client(d, ml.running.port, client_id=d.name).connect() for d in devices]
    try:
        for _ in range(4):  # three refreshes build the models
            _traffic(clients)
            assert ml.tick() == []
        first = auditor.get_behavior_model_training_summaries(
            securityProfileName=profile, maxResults=1)
        assert first["summaries"][0]["modelStatus"] == "ACTIVE"
        assert first["summaries"][0]["datapointsCollectionPercentage"] == 100.0
        assert first["summaries"][0]["lastModelRefreshDate"] > \
            first["summaries"][0]["trainingDataCollectionStartDate"]
        second = auditor.get_behavior_model_training_summaries(
            securityProfileName=profile, maxResults=1, nextToken=first["nextToken"])
        assert second["summaries"][0]["behaviorName"] == "bytes-ml"
        assert "nextToken" not in second
        with pytest.raises(ClientError) as bad:
            iot.get_behavior_model_training_summaries(securityProfileName="no-such-profile")
        assert bad.value.response["Error"]["Code"] == "ResourceNotFoundException"

        _traffic(clients, flood=2)
        events = ml.tick()
        assert [(e.thing_name, e.behavior.name, e.event_type) for e in events] == [
            (devices[2].name, "msgs-ml", ViolationEventType.IN_ALARM)]

        raw = _captured(iot, "ListActiveViolations")
        active = iot.list_active_violations(behaviorCriteriaType="MACHINE_LEARNING",
                                            securityProfileName=profile)
        assert [v["thingName"] for v in active["activeViolations"]] == [devices[2].name]
        violation = active["activeViolations"][0]
        assert violation["violationEventAdditionalInfo"] == {"confidenceLevel": "MEDIUM"}
        explanation = raw[0]["activeViolations"][0]["bastionExplanation"]
        assert explanation["metric"] == "aws:num-messages-sent"
        assert explanation["observed"] == 200
        assert explanation["groupNormalRange"][1] < 200
        assert explanation["peers"] == DEVICES
        kind = ml.running.app.plane.registry.describe_thing(devices[2].name).thing_type_name
        assert explanation["peerGroup"] == f"group={group};type={kind};firmware=1.4.2"
        assert iot.list_active_violations(behaviorCriteriaType="STATIC",
                                          securityProfileName=profile)[
            "activeViolations"] == []
        start = datetime.fromtimestamp(ml.clock.time() - 3600, UTC)
        end = datetime.fromtimestamp(ml.clock.time() + 1, UTC)
        history = iot.list_violation_events(startTime=start, endTime=end,
                                            behaviorCriteriaType="MACHINE_LEARNING",
                                            securityProfileName=profile)
        assert [e["violationEventType"] for e in history["violationEvents"]] == ["in-alarm"]
        assert history["violationEvents"][0]["violationEventAdditionalInfo"][
            "confidenceLevel"] == "MEDIUM"

        # … and in the CLI, with the explanation
        shown = subprocess.run(
            [sys.executable, "-m", "bastion", "detect", "violations", "--data-dir",
             str(datadir.path), "--thing", devices[2].name, "--json"],
            capture_output=True, text=True, timeout=60, check=True)
        [listed] = json.loads(shown.stdout)
        assert listed["bastionExplanation"]["summary"].startswith("aws:num-messages-sent 200")
        table = subprocess.run(
            [sys.executable, "-m", "bastion", "detect", "violations", "--data-dir",
             str(datadir.path)], capture_output=True, text=True, timeout=60, check=True,
            env={**os.environ, "COLUMNS": "250"})
        assert "peer group normal up to" in table.stdout

        # the operator says it was a false positive: the same behaviour is now normal
        with pytest.raises(ClientError):
            auditor.put_verification_state_on_violation(
                violationId=violation["violationId"], verificationState="FALSE_POSITIVE")
        iot.put_verification_state_on_violation(violationId=violation["violationId"],
                                                verificationState="FALSE_POSITIVE")
        _traffic(clients, flood=2)
        events = ml.tick()
        assert [(e.thing_name, e.event_type) for e in events] == [
            (devices[2].name, ViolationEventType.ALARM_CLEARED)]
        _traffic(clients, flood=2)
        assert ml.tick() == []
    finally:
        for client in clients:
            client.disconnect()

    # a restart keeps the models: still ACTIVE, nothing to relearn
    ml.running.stop()
    ml.running = _start(datadir, ml.clock)
    after = ml.client().get_behavior_model_training_summaries(securityProfileName=profile)
    assert [s["modelStatus"] for s in after["summaries"]] == ["ACTIVE", "ACTIVE"]


def test_aws_training_mode_keeps_models_pending_and_refuses_set_metrics(
        datadir: DataDir) -> None:
    clock = ManualClock(datetime.fromtimestamp(1_800_000_000, UTC))
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0), limits=TEST_LIMITS,
                    api=ApiConfig(enabled=False),
                    detect=DetectConfig(interval=INTERVAL, ml_training="aws"))
    running = RunningBastion(config, datadir, clock=clock).start()
    try:
        service = running.app.detect.service
        with pytest.raises(Exception, match="does not support"):
            service.create_security_profile("ports", now=clock.time(), behaviors=[
                {"name": "p", "metric": "aws:listening-tcp-ports", "criteria": ML}])
        service.create_security_profile("strict", now=clock.time(), behaviors=[
            {"name": "m", "metric": "aws:num-messages-sent", "criteria": ML}])
        [summary] = service.training_summaries("strict")
        assert summary.status.status == "PENDING_BUILD"
    finally:
        running.stop()
