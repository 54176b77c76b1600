"""The audit in a running Bastion: a certificate shared by two live MQTT clients is found
from the connection journal and its mitigation drops both sessions at once; a scheduled
audit starts exactly when its time comes on a clock the test moves; the real ``aws``
CLI drives the audit API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bastion.defender.audit import AuditTaskType
from support.clients import Client, wait_for

from .conftest import ADMIN, REGION, AuditBastion, device_through_api

Unique = Callable[[str], str]
OPEN = json.dumps({"Version": "2012-10-17",
                   "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]})
AWS = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")


def _open_sessions(bastion: AuditBastion, certificate_id: str) -> int:
    with bastion.running.app.plane.store.transaction(readonly=True) as uow:
        return sum(1 for row in uow.connections.of_certificate(certificate_id)
                   if row.disconnected_at is None)


def test_shared_certificate_found_and_mitigated_live(audit_bastion: AuditBastion, iot: Any,
                                                     unique: Unique, tmp_path: Path) -> None:
    device = device_through_api(audit_bastion, iot, unique("shared"), tmp_path, OPEN)
    port = audit_bastion.running.port
    first = Client(device, port, client_id=f"{device.name}-a").connect()
    second = Client(device, port, client_id=f"{device.name}-b").connect()
    try:
        wait_for(lambda: _open_sessions(audit_bastion, device.certificate_id) == 2,
                 timeout=10, what="both sessions in the journal")
        # The shared-certificate window ends 2 hours before the audit: look from later.
        audit_bastion.clock.set(max(audit_bastion.clock.now(),
                                    datetime.now(UTC)) + timedelta(hours=3))
        check = "DEVICE_CERTIFICATE_SHARED_CHECK"
        task_id = iot.start_on_demand_audit_task(targetCheckNames=[check])["taskId"]
        audit_bastion.wait_task(iot, task_id)
        (finding,) = [f for f in iot.list_audit_findings(taskId=task_id)["findings"]
                      if f["nonCompliantResource"]["resourceIdentifier"]
                      == {"deviceCertificateId": device.certificate_id}]
        assert (finding["severity"], finding["reasonForNonComplianceCode"]) == (
            "CRITICAL", "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES")
        related = iot.list_related_resources_for_audit_finding(
            findingId=finding["findingId"])["relatedResources"]
        assert sorted(r["resourceIdentifier"]["clientId"] for r in related) == [
            f"{device.name}-a", f"{device.name}-b"]
        assert all(r["resourceType"] == "CLIENT_ID" and
                   "CONNECTION_TIME" in r["additionalInfo"] and
                   "DISCONNECTION_TIME" not in r["additionalInfo"] for r in related)
        action = unique("deactivate")
        iot.create_mitigation_action(
            actionName=action, roleArn="arn:aws:iam::123456789012:role/mitigation",
            actionParams={"updateDeviceCertificateParams": {"action": "DEACTIVATE"}})
        assert not first.disconnected.is_set() and not second.disconnected.is_set()
        iot.start_audit_mitigation_actions_task(
            taskId=unique("quarantine"), target={"auditTaskId": task_id,
                                                 "auditCheckToReasonCodeFilter": {
                                                     check: ["CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES"]}},
            auditCheckToActionsMapping={check: [action]}, clientRequestToken=unique("c"))
        # The same event path as any status change: both live sessions are dropped.
        assert first.disconnected.wait(10) and second.disconnected.wait(10)
        assert iot.describe_certificate(certificateId=device.certificate_id)[
            "certificateDescription"]["status"] == "INACTIVE"
        again = Client(device, port, client_id=f"{device.name}-c")
        try:
            again.connect(timeout=3, expect_success=False)
            assert again.connack.is_failure  # refused with a CONNACK ...
        except AssertionError as refused:
            assert "no CONNACK" in str(refused)  # ... or the connection simply closed
        finally:
            again.kill()
    finally:
        for client in (first, second):
            client.kill()


def test_audit_summary_published_on_an_mqtt_target(audit_bastion: AuditBastion, iot: Any,
                                                   unique: Unique, tmp_path: Path) -> None:
    """An MQTT alert target is a topic of this Bastion: a subscribed device gets the
    audit's completion summary."""
    device = device_through_api(audit_bastion, iot, unique("ops-console"), tmp_path, OPEN)
    topic = f"ops/{device.name}/alerts"
    target = audit_bastion.defender.alert_targets.create_mqtt(unique("feed"), topic, qos=1)
    listener = Client(device, audit_bastion.running.port).connect()
    try:
        listener.subscribe(topic, qos=1)
        iot.update_account_audit_configuration(auditNotificationTargetConfigurations={
            "SNS": {"targetArn": target.target.arn,
                    "roleArn": "arn:aws:iam::123456789012:role/sns", "enabled": True}})
        task_id = iot.start_on_demand_audit_task(
            targetCheckNames=["IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK"])["taskId"]
        (message,) = listener.expect(1, timeout=15)
        document = json.loads(message.payload)
        assert document["kind"] == "audit"
        summary = document["message"]
        assert (summary["taskId"], summary["taskType"]) == (task_id, "ON_DEMAND_AUDIT_TASK")
        # The device policy allows iot:*: the check is non-compliant.
        assert summary["nonCompliantChecksCount"] == 1
    finally:
        iot.update_account_audit_configuration(auditNotificationTargetConfigurations={
            "SNS": {"targetArn": target.target.arn,
                    "roleArn": "arn:aws:iam::123456789012:role/sns", "enabled": False}})
        listener.disconnect()


def test_scheduled_audit_runs_on_time(audit_bastion: AuditBastion, iot: Any,
                                      unique: Unique) -> None:
    clock = audit_bastion.clock
    defender = audit_bastion.defender
    start = clock.now()
    name = unique("nightly")
    iot.create_scheduled_audit(scheduledAuditName=name, frequency="DAILY",
                               targetCheckNames=["LOGGING_DISABLED_CHECK"])
    due = datetime.combine(start.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    assert defender.audit.describe_scheduled_audit(name).next_run_time == due

    def scheduled_tasks() -> list[dict[str, Any]]:
        tasks = iot.list_audit_tasks(startTime=start - timedelta(days=1),
                                     endTime=due + timedelta(days=2),
                                     taskType="SCHEDULED_AUDIT_TASK")["tasks"]
        return [t for t in tasks
                if iot.describe_audit_task(taskId=t["taskId"])["scheduledAuditName"] == name]

    try:
        # One second before its time the scheduler has looked and started nothing.
        rounds = defender.scheduler.rounds
        clock.set(due - timedelta(seconds=1))
        wait_for(lambda: defender.scheduler.rounds > rounds, what="a scheduler round")
        assert scheduled_tasks() == []
        clock.set(due)
        wait_for(lambda: len(scheduled_tasks()) == 1, timeout=10, what="the scheduled audit")
        (task,) = scheduled_tasks()
        described = audit_bastion.wait_task(iot, task["taskId"])
        assert described["taskType"] == AuditTaskType.SCHEDULED_AUDIT_TASK.value
        assert described["taskStartTime"] == due
        assert described["auditDetails"]["LOGGING_DISABLED_CHECK"]["checkRunStatus"] == \
            "COMPLETED_COMPLIANT"
        following = defender.audit.describe_scheduled_audit(name)
        assert (following.last_run_time, following.next_run_time) == (
            due, due + timedelta(days=1))
    finally:
        iot.delete_scheduled_audit(scheduledAuditName=name)


@pytest.mark.skipif(AWS is None, reason="the aws CLI is not installed (pip install awscli)")
def test_aws_cli_drives_the_audit(audit_bastion: AuditBastion, unique: Unique,
                                  tmp_path: Path) -> None:
    assert AWS is not None
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=ADMIN[0], AWS_SECRET_ACCESS_KEY=ADMIN[1],
               AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_MAX_ATTEMPTS="1")
    common = ["--endpoint-url", audit_bastion.url, "--ca-bundle",
              str(audit_bastion.datadir.ca_cert_path), "--output", "json"]

    def aws(*args: str) -> Any:
        done = subprocess.run([AWS, "iot", *args, *common], capture_output=True, text=True,
                              env=env, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    config = aws("describe-account-audit-configuration")
    assert config["auditCheckConfigurations"]["LOGGING_DISABLED_CHECK"]["enabled"] is True
    task_id = aws("start-on-demand-audit-task", "--target-check-names",
                  "LOGGING_DISABLED_CHECK", "IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK")["taskId"]
    wait_for(lambda: aws("describe-audit-task", "--task-id", task_id)["taskStatus"]
             == "COMPLETED", timeout=60, what="the audit task")
    findings = aws("list-audit-findings", "--task-id", task_id)["findings"]
    assert all(f["taskId"] == task_id for f in findings)
    name = unique("cli-sched")
    aws("create-scheduled-audit", "--scheduled-audit-name", name, "--frequency", "WEEKLY",
        "--day-of-week", "SUN", "--target-check-names", "LOGGING_DISABLED_CHECK")
    assert aws("describe-scheduled-audit", "--scheduled-audit-name", name)["dayOfWeek"] == "SUN"
    aws("delete-scheduled-audit", "--scheduled-audit-name", name)
    policy = unique("cli-policy")
    aws("create-audit-suppression", "--check-name", "IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK",
        "--resource-identifier",
        f"policyVersionIdentifier={{policyName={policy},policyVersionId=1}}",
        "--suppress-indefinitely", "--client-request-token", unique("tok"))
    suppressions = aws("list-audit-suppressions", "--check-name",
                       "IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK")["suppressions"]
    assert policy in {s["resourceIdentifier"]["policyVersionIdentifier"]["policyName"]
                      for s in suppressions}
    action = unique("cli-action")
    created = aws("create-mitigation-action", "--action-name", action, "--role-arn",
                  "arn:aws:iam::123456789012:role/mitigation", "--action-params",
                  json.dumps({"updateDeviceCertificateParams": {"action": "DEACTIVATE"}}))
    assert created["actionArn"].endswith(f":mitigationaction/{action}")
    assert aws("describe-mitigation-action", "--action-name", action)["actionType"] == \
        "UPDATE_DEVICE_CERTIFICATE"
