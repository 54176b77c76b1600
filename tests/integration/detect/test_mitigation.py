"""Violations reach the profile's alert targets (a webhook and SMTP with STARTTLS on
loopback) and its mitigation: the flooding device is added to a quarantine group whose
policy denies everything, and its live connection loses its publishing rights at once.
Every automated action is in the trail with the violation that caused it."""

from __future__ import annotations

import json
import uuid

from bastion.trail import export
from support.clients import V5, Client, wait_for

from .conftest import Detect, Mailbox, Webhook

DENY_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:*","Resource":"*"}]}'
FLOOD = {"name": "flood", "metric": "aws:num-messages-sent",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 20}}}


def test_quarantine_cuts_the_live_session_and_alerts_are_delivered(
        detect: Detect, webhook: Webhook, smtp_server: Mailbox, ca_file: str) -> None:
    plane = detect.app.plane
    suffix = uuid.uuid4().hex[:6]
    quarantine = f"quarantine-{suffix}"
    plane.registry.create_thing_group(quarantine)
    plane.policies.create_policy(f"deny-all-{suffix}", DENY_ALL)
    plane.policies.attach_policy(f"deny-all-{suffix}",
                                 plane.account.arn(f"thinggroup/{quarantine}"))
    detect.app.services.mitigation_actions.create_action(
        f"quarantine-{suffix}", "arn:aws:iam::123456789012:role/detect",
        {"addThingsToThingGroupParams": {"thingGroupNames": [quarantine]}})
    targets = detect.app.services.alerts.targets
    targets.create_webhook(f"hook-{suffix}", webhook.url, ca_file=ca_file)
    targets.create_email(f"mail-{suffix}", host="127.0.0.1", port=smtp_server.port,
                         sender="bastion@example.com", recipients=["soc@example.com"],
                         username="bastion", password="smtp-secret", ca_file=ca_file)
    role = "arn:aws:iam::123456789012:role/detect"
    flood, quiet = detect.make_device(), detect.make_device()
    group = detect.group(flood, quiet)
    profile = detect.profile(
        group, FLOOD, mitigation_actions=[f"quarantine-{suffix}"],
        alert_targets={"SNS": {"alertTargetArn": targets.arn(f"hook-{suffix}"),
                               "roleArn": role},
                       "EMAIL": {"alertTargetArn": targets.arn(f"mail-{suffix}"),
                                 "roleArn": role}})
    a = Client(flood, detect.running.port, version=V5, client_id=flood.name).connect()
    b = Client(quiet, detect.running.port, version=V5, client_id=quiet.name).connect()
    try:
        for _ in range(30):
            a.publish("telemetry/flood", b"x", qos=1)
        b.publish("telemetry/quiet", b"x", qos=1)
        events = detect.tick()
        assert [(e.thing_name, e.event_type.value) for e in events] == [
            (flood.name, "in-alarm")]
        violation_id = events[0].violation_id

        # The live connection lost its rights: the deny-all policy denies iot:Connect
        # too, so the broker closes it (a narrower policy would refuse its publishes).
        wait_for(a.disconnected.is_set, what="the quarantined session closed")
        assert a.disconnect_reason.is_failure
        info = b.publish("telemetry/quiet", b"x", qos=1)
        assert not b.acks[info.mid].is_failure
        assert [g.group_name for g in plane.registry.list_thing_groups_for_thing(
            flood.name)[0]] == sorted([group, quarantine])

        assert webhook.arrived.wait(10)
        document = webhook.received[0].document
        message = document.get("body", document)
        text = json.dumps(document)
        assert violation_id in text and flood.name in text and profile in text
        assert "in-alarm" in text
        assert isinstance(message, dict)
        assert smtp_server.arrived.wait(10)
        assert violation_id in smtp_server.messages[0].get_payload()

        mine = [json.dumps(r) for r in export(plane.store)
                if "system:detect" in json.dumps(r)]
        assert any("AddThingToThingGroup" in r and violation_id in r for r in mine)
    finally:
        a.disconnect()
        b.disconnect()


def test_severe_behavior_deactivates_the_certificate(detect: Detect) -> None:
    device = detect.make_device()
    group = detect.group(device)
    detect.profile(group, {**FLOOD, "severe": True})
    a = Client(device, detect.running.port, client_id=device.name).connect()
    try:
        for _ in range(25):
            a.publish("telemetry/flood", b"x", qos=1)
        events = detect.tick()
        assert [e.event_type.value for e in events] == ["in-alarm"]
        assert a.disconnected.wait(5)
        record = detect.app.plane.identity.describe_certificate(device.certificate_id)
        assert record.status.value == "INACTIVE"
        assert (events[0].violation_id, "UpdateCertificate", "allowed") in \
            detect.app.services.detect.response.actions_taken
    finally:
        a.disconnect()
