"""Every audit operation through boto3 against a running Bastion: account configuration,
on-demand tasks, findings and related resources, suppressions, scheduled audits,
mitigation actions and audit mitigation tasks."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from support.clients import wait_for

from .conftest import ACCOUNT, AUDITOR, REGION, AuditBastion

Unique = Callable[[str], str]
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
POLICY_CHECKS = ["IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK", "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"]


def _admin_policy(iot: Any, name: str) -> None:
    iot.create_policy(policyName=name, policyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}))


def _policy_identifier(name: str) -> dict[str, Any]:
    return {"policyVersionIdentifier": {"policyName": name, "policyVersionId": "1"}}


def _findings_for(iot: Any, task_id: str, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"taskId": task_id, "maxResults": 2}
    while True:
        answer = iot.list_audit_findings(**kwargs)
        found.extend(answer["findings"])
        if not answer.get("nextToken"):
            break
        kwargs["nextToken"] = answer["nextToken"]
    return [f for f in found
            if f["nonCompliantResource"]["resourceIdentifier"].get(
                "policyVersionIdentifier", {}).get("policyName") == name]


def test_account_audit_configuration(audit_bastion: AuditBastion, iot: Any,
                                     webhook: Any, ca_file: str, unique: Unique) -> None:
    config = iot.describe_account_audit_configuration()
    checks = config["auditCheckConfigurations"]
    assert checks["DEVICE_CERTIFICATE_SHARED_CHECK"] == {"enabled": True}
    assert checks["DEVICE_CERTIFICATE_AGE_CHECK"] == {
        "enabled": False, "configuration": {"CERT_AGE_THRESHOLD_IN_DAYS": "365"}}
    assert checks["DEVICE_CERTIFICATE_EXPIRING_CHECK"]["configuration"] == {
        "CERT_EXPIRATION_THRESHOLD_IN_DAYS": "30"}
    assert "CLAIM_PROVISIONING_TEMPLATE_WITHOUT_HOOK_CHECK" in checks
    iot.update_account_audit_configuration(
        roleArn="arn:aws:iam::123456789012:role/audit",
        auditCheckConfigurations={
            "DEVICE_CERTIFICATE_AGE_CHECK": {
                "enabled": True, "configuration": {"CERT_AGE_THRESHOLD_IN_DAYS": "90"}},
            "DEVICE_CERTIFICATE_EXPIRING_CHECK": {
                "enabled": True, "configuration": {"CERT_EXPIRATION_THRESHOLD_IN_DAYS": "60"}}})
    config = iot.describe_account_audit_configuration()
    assert config["roleArn"] == "arn:aws:iam::123456789012:role/audit"
    assert config["auditCheckConfigurations"]["DEVICE_CERTIFICATE_AGE_CHECK"] == {
        "enabled": True, "configuration": {"CERT_AGE_THRESHOLD_IN_DAYS": "90"}}
    for bad in ({"DEVICE_CERTIFICATE_AGE_CHECK": {
                     "configuration": {"CERT_AGE_THRESHOLD_IN_DAYS": "29"}}},
                {"DEVICE_CERTIFICATE_SHARED_CHECK": {
                     "configuration": {"CERT_AGE_THRESHOLD_IN_DAYS": "90"}}},
                {"NO_SUCH_CHECK": {"enabled": True}}):
        with pytest.raises(iot.exceptions.InvalidRequestException):
            iot.update_account_audit_configuration(auditCheckConfigurations=bad)
    # SNS targets are Bastion alert targets.
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_account_audit_configuration(auditNotificationTargetConfigurations={
            "SNS": {"targetArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:nope",
                    "roleArn": "arn:aws:iam::123456789012:role/sns", "enabled": True}})
    target = unique("hook")
    created = audit_bastion.defender.alert_targets.create_webhook(target, webhook.url,
                                                                  ca_file=ca_file)
    iot.update_account_audit_configuration(auditNotificationTargetConfigurations={
        "SNS": {"targetArn": created.target.arn,
                "roleArn": "arn:aws:iam::123456789012:role/sns", "enabled": True}})
    # An audit's completion is announced to the target, in AWS's message shape.
    task_id = iot.start_on_demand_audit_task(
        targetCheckNames=["LOGGING_DISABLED_CHECK"])["taskId"]
    audit_bastion.wait_task(iot, task_id)
    assert webhook.arrived.wait(10)
    message = webhook.received[-1].document["message"]
    assert (message["taskId"], message["taskStatus"], message["totalChecksCount"]) == (
        task_id, "COMPLETED", 1)
    assert message["auditDetails"][0]["checkName"] == "LOGGING_DISABLED_CHECK"
    iot.update_account_audit_configuration(auditNotificationTargetConfigurations={
        "SNS": {"targetArn": created.target.arn,
                "roleArn": "arn:aws:iam::123456789012:role/sns", "enabled": False}})
    # Reading is the auditor's right; changing is not.
    reader = audit_bastion.client(key=AUDITOR)
    assert reader.describe_account_audit_configuration()["auditCheckConfigurations"]
    with pytest.raises(reader.exceptions.ClientError) as caught:
        reader.start_on_demand_audit_task(targetCheckNames=["LOGGING_DISABLED_CHECK"])
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"


def test_on_demand_task_findings_and_related_resources(audit_bastion: AuditBastion,
                                                       iot: Any, unique: Unique) -> None:
    name = unique("admin-policy")
    _admin_policy(iot, name)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.start_on_demand_audit_task(targetCheckNames=["NO_SUCH_CHECK"])
    started_after = audit_bastion.clock.now() - timedelta(seconds=1)
    task_id = iot.start_on_demand_audit_task(targetCheckNames=POLICY_CHECKS)["taskId"]
    task = audit_bastion.wait_task(iot, task_id)
    assert (task["taskStatus"], task["taskType"]) == ("COMPLETED", "ON_DEMAND_AUDIT_TASK")
    assert task["taskStatistics"]["totalChecks"] == 2
    assert task["taskStatistics"]["nonCompliantChecks"] == 2
    details = task["auditDetails"]["IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK"]
    assert details["checkRunStatus"] == "COMPLETED_NON_COMPLIANT"
    assert details["checkCompliant"] is False
    assert details["nonCompliantResourcesCount"] >= 1
    listed = iot.list_audit_tasks(startTime=started_after,
                                  endTime=audit_bastion.clock.now() + timedelta(seconds=1),
                                  taskType="ON_DEMAND_AUDIT_TASK")["tasks"]
    assert {"taskId": task_id, "taskStatus": "COMPLETED",
            "taskType": "ON_DEMAND_AUDIT_TASK"} in listed
    findings = {f["checkName"]: f for f in _findings_for(iot, task_id, name)}
    assert set(findings) == set(POLICY_CHECKS)
    everything = findings["IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK"]
    assert everything["severity"] == "HIGH"
    assert everything["reasonForNonComplianceCode"] == "ALLOWS_ALL_IOT_ACTIONS"
    broad = findings["IOT_POLICY_OVERLY_PERMISSIVE_CHECK"]
    assert (broad["severity"], broad["reasonForNonComplianceCode"]) == (
        "CRITICAL", "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS")
    assert broad["nonCompliantResource"] == {
        "resourceType": "IOT_POLICY", "resourceIdentifier": _policy_identifier(name),
        "additionalInfo": broad["nonCompliantResource"]["additionalInfo"]}
    assert broad["isSuppressed"] is False
    described = iot.describe_audit_finding(findingId=broad["findingId"])["finding"]
    assert described["reasonForNonCompliance"] == broad["reasonForNonCompliance"]
    # By check and time range, narrowed to the resource.
    by_resource = iot.list_audit_findings(
        checkName="IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
        resourceIdentifier=_policy_identifier(name), startTime=started_after,
        endTime=audit_bastion.clock.now() + timedelta(seconds=1))["findings"]
    assert [f["findingId"] for f in by_resource] == [broad["findingId"]]
    assert iot.list_related_resources_for_audit_finding(
        findingId=broad["findingId"])["relatedResources"] == []
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.list_audit_findings(checkName="IOT_POLICY_OVERLY_PERMISSIVE_CHECK")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.cancel_audit_task(taskId=task_id)  # no longer in progress
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_audit_task(taskId="0" * 32)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_audit_finding(findingId="no-such-finding")


def test_related_resources_of_a_multi_thing_certificate(audit_bastion: AuditBastion,
                                                        iot: Any, unique: Unique) -> None:
    created = iot.create_keys_and_certificate(setAsActive=True)
    things = [unique("hub"), unique("hub")]
    for thing in things:
        iot.create_thing(thingName=thing)
        iot.attach_thing_principal(thingName=thing, principal=created["certificateArn"])
    check = "DEVICE_CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS_CHECK"
    task_id = iot.start_on_demand_audit_task(targetCheckNames=[check])["taskId"]
    audit_bastion.wait_task(iot, task_id)
    (finding,) = [f for f in iot.list_audit_findings(taskId=task_id)["findings"]
                  if f["nonCompliantResource"]["resourceIdentifier"] ==
                  {"deviceCertificateId": created["certificateId"]}]
    assert finding["reasonForNonComplianceCode"] == "CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS"
    info = finding["nonCompliantResource"]["additionalInfo"]
    assert sorted(info["THING_NAMES"].split(",")) == sorted(things)


def test_suppressions(audit_bastion: AuditBastion, iot: Any, unique: Unique) -> None:
    name = unique("suppressed-policy")
    _admin_policy(iot, name)
    check = "IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK"
    ident = _policy_identifier(name)
    later = audit_bastion.clock.now() + timedelta(days=7)
    iot.create_audit_suppression(checkName=check, resourceIdentifier=ident,
                                 expirationDate=later, description="known lab policy",
                                 clientRequestToken=unique("token"))
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_audit_suppression(checkName=check, resourceIdentifier=ident,
                                     suppressIndefinitely=True,
                                     clientRequestToken=unique("token"))
    described = iot.describe_audit_suppression(checkName=check, resourceIdentifier=ident)
    assert (described["description"], described["suppressIndefinitely"]) == (
        "known lab policy", False)
    assert abs(described["expirationDate"].timestamp() - later.timestamp()) < 1
    iot.update_audit_suppression(checkName=check, resourceIdentifier=ident,
                                 suppressIndefinitely=True, description="forever")
    listed = iot.list_audit_suppressions(checkName=check)["suppressions"]
    assert {"checkName": check, "resourceIdentifier": ident, "suppressIndefinitely": True,
            "description": "forever"} in listed
    task_id = iot.start_on_demand_audit_task(targetCheckNames=[check])["taskId"]
    task = audit_bastion.wait_task(iot, task_id)
    (finding,) = _findings_for(iot, task_id, name)
    assert finding["isSuppressed"] is True
    assert task["auditDetails"][check]["suppressedNonCompliantResourcesCount"] >= 1
    only_suppressed = iot.list_audit_findings(taskId=task_id,
                                              listSuppressedFindings=True)["findings"]
    assert finding["findingId"] in {f["findingId"] for f in only_suppressed}
    assert all(f["isSuppressed"] for f in only_suppressed)
    unsuppressed = iot.list_audit_findings(taskId=task_id,
                                           listSuppressedFindings=False)["findings"]
    assert finding["findingId"] not in {f["findingId"] for f in unsuppressed}
    iot.delete_audit_suppression(checkName=check, resourceIdentifier=ident)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_audit_suppression(checkName=check, resourceIdentifier=ident)
    with pytest.raises(iot.exceptions.InvalidRequestException):  # expiry in the past
        iot.create_audit_suppression(
            checkName=check, resourceIdentifier=ident,
            expirationDate=audit_bastion.clock.now() - timedelta(days=1),
            clientRequestToken=unique("token"))


def test_scheduled_audits(audit_bastion: AuditBastion, iot: Any, unique: Unique) -> None:
    weekly, monthly = unique("weekly"), unique("monthly")
    created = iot.create_scheduled_audit(scheduledAuditName=weekly, frequency="WEEKLY",
                                         dayOfWeek="MON",
                                         targetCheckNames=["LOGGING_DISABLED_CHECK"])
    assert created["scheduledAuditArn"] == f"{ARN}:scheduledaudit/{weekly}"
    iot.create_scheduled_audit(scheduledAuditName=monthly, frequency="MONTHLY",
                               dayOfMonth="LAST", targetCheckNames=POLICY_CHECKS)
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_scheduled_audit(scheduledAuditName=weekly, frequency="DAILY",
                                   targetCheckNames=["LOGGING_DISABLED_CHECK"])
    for bad in ({"frequency": "WEEKLY"}, {"frequency": "MONTHLY", "dayOfMonth": "32"},
                {"frequency": "DAILY", "dayOfWeek": "MON"}):
        with pytest.raises(iot.exceptions.InvalidRequestException):
            iot.create_scheduled_audit(scheduledAuditName=unique("bad"),
                                       targetCheckNames=["LOGGING_DISABLED_CHECK"], **bad)
    described = iot.describe_scheduled_audit(scheduledAuditName=monthly)
    assert (described["frequency"], described["dayOfMonth"], described["targetCheckNames"]) \
        == ("MONTHLY", "LAST", POLICY_CHECKS)
    iot.update_scheduled_audit(scheduledAuditName=weekly, frequency="BIWEEKLY",
                               dayOfWeek="FRI")
    assert iot.describe_scheduled_audit(scheduledAuditName=weekly)["dayOfWeek"] == "FRI"
    # A check used by a scheduled audit cannot be disabled.
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_account_audit_configuration(
            auditCheckConfigurations={"LOGGING_DISABLED_CHECK": {"enabled": False}})
    names = {a["scheduledAuditName"]: a for a in iot.list_scheduled_audits(
        maxResults=250)["scheduledAudits"]}
    assert names[weekly]["frequency"] == "BIWEEKLY"
    assert names[monthly]["scheduledAuditArn"] == f"{ARN}:scheduledaudit/{monthly}"
    for name in (weekly, monthly):
        iot.delete_scheduled_audit(scheduledAuditName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_scheduled_audit(scheduledAuditName=weekly)


def test_mitigation_actions(iot: Any, unique: Unique) -> None:
    role = "arn:aws:iam::123456789012:role/mitigation"
    names = {kind: unique(kind.lower().replace("_", "-")) for kind in (
        "UPDATE_DEVICE_CERTIFICATE", "UPDATE_CA_CERTIFICATE", "ADD_THINGS_TO_THING_GROUP",
        "REPLACE_DEFAULT_POLICY_VERSION", "ENABLE_IOT_LOGGING", "PUBLISH_FINDING_TO_SNS")}
    params = {
        "UPDATE_DEVICE_CERTIFICATE": {"updateDeviceCertificateParams": {"action": "DEACTIVATE"}},
        "UPDATE_CA_CERTIFICATE": {"updateCACertificateParams": {"action": "DEACTIVATE"}},
        "ADD_THINGS_TO_THING_GROUP": {"addThingsToThingGroupParams": {
            "thingGroupNames": ["quarantine"], "overrideDynamicGroups": False}},
        "REPLACE_DEFAULT_POLICY_VERSION": {"replaceDefaultPolicyVersionParams": {
            "templateName": "BLANK_POLICY"}},
        "ENABLE_IOT_LOGGING": {"enableIoTLoggingParams": {
            "roleArnForLogging": role, "logLevel": "ERROR"}},
        "PUBLISH_FINDING_TO_SNS": {"publishFindingToSnsParams": {
            "topicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"}},
    }
    for kind, name in names.items():
        created = iot.create_mitigation_action(actionName=name, roleArn=role,
                                               actionParams=params[kind])
        assert created["actionArn"] == f"{ARN}:mitigationaction/{name}"
        described = iot.describe_mitigation_action(actionName=name)
        assert (described["actionType"], described["actionParams"]) == (kind, params[kind])
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_mitigation_action(actionName=names["ENABLE_IOT_LOGGING"], roleArn=role,
                                     actionParams=params["ENABLE_IOT_LOGGING"])
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_mitigation_action(actionName=unique("two"), roleArn=role, actionParams={
            **params["UPDATE_CA_CERTIFICATE"], **params["UPDATE_DEVICE_CERTIFICATE"]})
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_mitigation_action(actionName=unique("off"), roleArn=role, actionParams={
            "enableIoTLoggingParams": {"roleArnForLogging": role, "logLevel": "DISABLED"}})
    iot.update_mitigation_action(actionName=names["ENABLE_IOT_LOGGING"], actionParams={
        "enableIoTLoggingParams": {"roleArnForLogging": role, "logLevel": "WARN"}})
    assert iot.describe_mitigation_action(actionName=names["ENABLE_IOT_LOGGING"])[
        "actionParams"]["enableIoTLoggingParams"]["logLevel"] == "WARN"
    listed = iot.list_mitigation_actions(actionType="ENABLE_IOT_LOGGING")["actionIdentifiers"]
    assert names["ENABLE_IOT_LOGGING"] in {a["actionName"] for a in listed}
    assert names["UPDATE_CA_CERTIFICATE"] not in {a["actionName"] for a in listed}
    iot.delete_mitigation_action(actionName=names["UPDATE_CA_CERTIFICATE"])
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_mitigation_action(actionName=names["UPDATE_CA_CERTIFICATE"])


def test_audit_mitigation_task(audit_bastion: AuditBastion, iot: Any, webhook: Any,
                               ca_file: str, unique: Unique) -> None:
    """A policy finding: its default version replaced by a blank one, and the finding sent
    to a webhook target; a suppressed finding is skipped."""
    broad, quiet = unique("broad"), unique("quiet")
    for name in (broad, quiet):
        _admin_policy(iot, name)
    check = "IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK"
    iot.create_audit_suppression(checkName=check, resourceIdentifier=_policy_identifier(quiet),
                                 suppressIndefinitely=True, clientRequestToken=unique("t"))
    task_id = iot.start_on_demand_audit_task(targetCheckNames=[check])["taskId"]
    audit_bastion.wait_task(iot, task_id)
    target = audit_bastion.defender.alert_targets.create_webhook(unique("sink"), webhook.url,
                                                                 ca_file=ca_file)
    role = "arn:aws:iam::123456789012:role/mitigation"
    blank, publish, deactivate = unique("blank"), unique("publish"), unique("deactivate")
    iot.create_mitigation_action(actionName=blank, roleArn=role, actionParams={
        "replaceDefaultPolicyVersionParams": {"templateName": "BLANK_POLICY"}})
    iot.create_mitigation_action(actionName=publish, roleArn=role, actionParams={
        "publishFindingToSnsParams": {"topicArn": target.target.arn}})
    iot.create_mitigation_action(actionName=deactivate, roleArn=role, actionParams={
        "updateDeviceCertificateParams": {"action": "DEACTIVATE"}})
    findings = {f["nonCompliantResource"]["resourceIdentifier"]["policyVersionIdentifier"][
        "policyName"]: f for f in iot.list_audit_findings(taskId=task_id)["findings"]}
    ids = [findings[broad]["findingId"], findings[quiet]["findingId"]]
    # A certificate action on a policy check is refused before anything runs.
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.start_audit_mitigation_actions_task(
            taskId=unique("refused"), target={"findingIds": ids},
            auditCheckToActionsMapping={check: [deactivate]}, clientRequestToken=unique("c"))
    mitigation_id = unique("mitigate")
    token = unique("c")
    assert iot.start_audit_mitigation_actions_task(
        taskId=mitigation_id, target={"findingIds": ids},
        auditCheckToActionsMapping={check: [blank, publish]},
        clientRequestToken=token)["taskId"] == mitigation_id
    with pytest.raises(iot.exceptions.TaskAlreadyExistsException):
        iot.start_audit_mitigation_actions_task(
            taskId=mitigation_id, target={"findingIds": ids},
            auditCheckToActionsMapping={check: [blank]}, clientRequestToken=unique("c"))

    def finished() -> bool:
        status = iot.describe_audit_mitigation_actions_task(taskId=mitigation_id)["taskStatus"]
        return bool(status != "IN_PROGRESS")
    wait_for(finished, timeout=20, what="mitigation task")
    described = iot.describe_audit_mitigation_actions_task(taskId=mitigation_id)
    assert described["taskStatus"] == "COMPLETED"
    assert described["taskStatistics"][check] == {
        "totalFindingsCount": 4, "failedFindingsCount": 0, "succeededFindingsCount": 2,
        "skippedFindingsCount": 2, "canceledFindingsCount": 0}
    assert {a["name"] for a in described["actionsDefinition"]} == {blank, publish}
    assert described["target"] == {"findingIds": ids}
    executions = iot.list_audit_mitigation_actions_executions(
        taskId=mitigation_id, findingId=findings[quiet]["findingId"])["actionsExecutions"]
    assert {e["status"] for e in executions} == {"SKIPPED"}
    done = iot.list_audit_mitigation_actions_executions(
        taskId=mitigation_id, findingId=findings[broad]["findingId"],
        actionStatus="COMPLETED")["actionsExecutions"]
    assert {e["actionName"] for e in done} == {blank, publish}
    # The broad policy's default version is now the blank one; the suppressed one is not.
    policy = iot.get_policy(policyName=broad)
    assert policy["defaultVersionId"] == "2"
    assert json.loads(policy["policyDocument"])["Statement"][0]["Effect"] == "Deny"
    assert iot.get_policy(policyName=quiet)["defaultVersionId"] == "1"
    assert webhook.arrived.wait(10)
    sent = [r.document["message"] for r in webhook.received
            if r.document["message"].get("findingId") == findings[broad]["findingId"]]
    assert sent and sent[0]["checkName"] == check
    now = audit_bastion.clock.now()
    tasks = iot.list_audit_mitigation_actions_tasks(
        startTime=now - timedelta(hours=1), endTime=now + timedelta(hours=1),
        findingId=findings[broad]["findingId"])["tasks"]
    assert [t["taskId"] for t in tasks] == [mitigation_id]
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.cancel_audit_mitigation_actions_task(taskId=mitigation_id)


def test_logging_disabled_and_enable_iot_logging(audit_bastion: AuditBastion, iot: Any,
                                                 unique: Unique) -> None:
    """The check reads the API's logging options; the mitigation turns logging back on in
    the running API (GetV2LoggingOptions shows it at once)."""
    role = "arn:aws:iam::123456789012:role/logging"
    iot.set_v2_logging_options(roleArn=role, defaultLogLevel="INFO", disableAllLogs=True)
    check = "LOGGING_DISABLED_CHECK"
    task_id = iot.start_on_demand_audit_task(targetCheckNames=[check])["taskId"]
    audit_bastion.wait_task(iot, task_id)
    (finding,) = iot.list_audit_findings(taskId=task_id)["findings"]
    assert finding["nonCompliantResource"]["resourceType"] == "ACCOUNT_SETTINGS"
    assert finding["nonCompliantResource"]["resourceIdentifier"] == {"account": ACCOUNT}
    assert (finding["severity"], finding["reasonForNonComplianceCode"]) == (
        "LOW", "LOGGING_DISABLED")
    action = unique("logs-on")
    iot.create_mitigation_action(actionName=action, roleArn=role, actionParams={
        "enableIoTLoggingParams": {"roleArnForLogging": role, "logLevel": "WARN"}})
    mitigation = unique("logging")
    iot.start_audit_mitigation_actions_task(
        taskId=mitigation, target={"auditTaskId": task_id},
        auditCheckToActionsMapping={check: [action]}, clientRequestToken=unique("c"))
    wait_for(lambda: iot.describe_audit_mitigation_actions_task(taskId=mitigation)[
        "taskStatus"] == "COMPLETED", timeout=20, what="the mitigation")
    options = iot.get_v2_logging_options()
    assert (options["disableAllLogs"], options["defaultLogLevel"]) == (False, "WARN")
    again = iot.start_on_demand_audit_task(targetCheckNames=[check])["taskId"]
    assert audit_bastion.wait_task(iot, again)["auditDetails"][check]["checkRunStatus"] == \
        "COMPLETED_COMPLIANT"


def test_cancel_tasks_and_delete_configuration(audit_bastion: AuditBastion, iot: Any,
                                               unique: Unique) -> None:
    """Tasks canceled while queued behind a busy audit worker; the configuration reset."""
    release = threading.Event()
    audit_bastion.defender.audit.executor(lambda: release.wait(30))  # occupy the worker
    try:
        task_id = iot.start_on_demand_audit_task(
            targetCheckNames=["LOGGING_DISABLED_CHECK"])["taskId"]
        assert iot.describe_audit_task(taskId=task_id)["taskStatus"] == "IN_PROGRESS"
        iot.cancel_audit_task(taskId=task_id)
        task = iot.describe_audit_task(taskId=task_id)
        assert task["taskStatus"] == "CANCELED"
        assert task["taskStatistics"]["canceledChecks"] == 1
        # A mitigation task queued behind the busy worker, canceled too.
        done = iot.start_on_demand_audit_task(targetCheckNames=POLICY_CHECKS)["taskId"]
        action = unique("sns")
        iot.create_mitigation_action(
            actionName=action, roleArn="arn:aws:iam::123456789012:role/mitigation",
            actionParams={"publishFindingToSnsParams": {
                "topicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:nowhere"}})
        release.set()
        audit_bastion.wait_task(iot, done)
        release.clear()
        audit_bastion.defender.audit.executor(lambda: release.wait(30))
        mitigation = unique("held")
        iot.start_audit_mitigation_actions_task(
            taskId=mitigation, target={"auditTaskId": done},
            auditCheckToActionsMapping={check: [action] for check in POLICY_CHECKS},
            clientRequestToken=unique("c"))
        iot.cancel_audit_mitigation_actions_task(taskId=mitigation)
        described = iot.describe_audit_mitigation_actions_task(taskId=mitigation)
        assert described["taskStatus"] == "CANCELED"
        assert all(s["canceledFindingsCount"] == s["totalFindingsCount"]
                   for s in described["taskStatistics"].values())
    finally:
        release.set()
    name = unique("kept")
    iot.create_scheduled_audit(scheduledAuditName=name, frequency="DAILY",
                               targetCheckNames=["LOGGING_DISABLED_CHECK"])
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.delete_account_audit_configuration()
    iot.delete_account_audit_configuration(deleteScheduledAudits=True)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_scheduled_audit(scheduledAuditName=name)
    config = iot.describe_account_audit_configuration()
    assert config["auditCheckConfigurations"]["DEVICE_CERTIFICATE_AGE_CHECK"]["enabled"] is False
    assert "roleArn" not in config
